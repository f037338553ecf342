"""Per-call cost of ``m[i:i+64]`` through the mmapd client, next to a bare grpcio unary ``GetSlice``.

Usage: ``python bench.py [--calls N] [--rounds R]``. Uses ``MMAPD_ENDPOINT`` if
set, else starts ``$MMAPD_BIN`` (default ``target/release/mmapd``) on a
temporary root. Both loops run on the same channel kind, in alternating
rounds, in this one process; the difference is the client's own overhead.
Not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time
from typing import Callable, List, Optional

import grpc

import mmapd
from mmapd.v1 import mmapd_pb2 as pb
from mmapd.v1 import mmapd_pb2_grpc as pb_grpc

REPO = pathlib.Path(__file__).resolve().parent.parent


def start_server(root: str) -> "tuple[subprocess.Popen[str], str]":
    binary = os.environ.get("MMAPD_BIN", str(REPO / "target" / "release" / "mmapd"))
    proc = subprocess.Popen(
        [binary, "--root", root, "--listen", "127.0.0.1:0", "--log-format", "json"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    addr = json.loads(proc.stderr.readline())["fields"]["addr"]
    return proc, addr


def per_call_us(fn: Callable[[int], object], calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    proc: Optional[subprocess.Popen[str]] = None
    tmp = tempfile.TemporaryDirectory()
    endpoint = os.environ.get("MMAPD_ENDPOINT")
    if not endpoint:
        proc, endpoint = start_server(tmp.name)
    try:
        with mmapd.connect(endpoint) as client:
            size = 1 << 20
            m = client.mmap(-1, size)
            m[:64] = b"x" * 64
            span = size - 64

            def via_client(i: int) -> object:
                j = (i * 4096) % span
                return m[j : j + 64]

            channel = grpc.insecure_channel(endpoint)
            stub = pb_grpc.MmapStub(channel)
            handle = m._handle

            def via_grpc(i: int) -> object:
                j = (i * 4096) % span
                return stub.GetSlice(pb.GetSliceRequest(handle=handle, start=j, stop=j + 64), timeout=30).data

            for fn in (via_client, via_grpc):
                per_call_us(fn, 200)  # warm up connections and caches
            client_us: List[float] = []
            grpc_us: List[float] = []
            for _ in range(args.rounds):
                client_us.append(per_call_us(via_client, args.calls))
                grpc_us.append(per_call_us(via_grpc, args.calls))
            c, g = statistics.median(client_us), statistics.median(grpc_us)
            print(f"m[i:i+64] via mmapd client : {c:8.1f} us/call (median of {args.rounds} x {args.calls})")
            print(f"bare grpcio unary GetSlice : {g:8.1f} us/call (same run, same server)")
            print(f"client overhead            : {c - g:8.1f} us/call ({c / g:.2f}x)")
            with m.pipeline() as p:
                for i in range(100):
                    p.getslice(i * 64, i * 64 + 64)
            start = time.perf_counter()
            for _ in range(args.rounds):
                with m.pipeline() as p:
                    for i in range(100):
                        p.getslice(i * 64, i * 64 + 64)
            pipe = (time.perf_counter() - start) / (args.rounds * 100) * 1e6
            print(f"pipelined, 100 per batch   : {pipe:8.1f} us/slice")
            channel.close()
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
