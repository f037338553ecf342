"""The committed stubs match proto/: regenerate the descriptor with grpcio-tools and compare."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2

from mmapd.v1 import mmapd_pb2, mmapd_pb2_grpc

PROTO = pathlib.Path(__file__).resolve().parents[2] / "proto"

REGENERATE = (
    "python -m grpc_tools.protoc -I proto --python_out=client-python/src --pyi_out=client-python/src "
    "--grpc_python_out=client-python/src proto/mmapd/v1/mmapd.proto  (with grpcio-tools==1.62.3, whose "
    "code runs on every protobuf runtime from 4.21 on)"
)


def test_committed_stubs_match_the_proto(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("grpc_tools")
    out = tmp_path / "set.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO}", f"--descriptor_set_out={out}", "mmapd/v1/mmapd.proto"],
        check=True,
    )
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (proto,) = [f for f in fresh.file if f.name == "mmapd/v1/mmapd.proto"]
    # protoc adds json_name to descriptor sets but not to generated code.
    for message in _messages(proto.message_type):
        for field in message.field:
            field.ClearField("json_name")
    committed = descriptor_pb2.FileDescriptorProto.FromString(mmapd_pb2.DESCRIPTOR.serialized_pb)
    assert committed == proto, f"the stubs drifted from proto/; regenerate them: {REGENERATE}"


def _messages(messages):  # type: ignore[no-untyped-def]
    for message in messages:
        yield message
        yield from _messages(message.nested_type)


def test_grpc_stubs_cover_every_method() -> None:
    for service in mmapd_pb2.DESCRIPTOR.services_by_name.values():
        stub = getattr(mmapd_pb2_grpc, service.name + "Stub")
        servicer = getattr(mmapd_pb2_grpc, service.name + "Servicer")
        for method in service.methods:
            assert hasattr(servicer, method.name), f"{service.name}.{method.name} missing: {REGENERATE}"
        assert stub is not None
