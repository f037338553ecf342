"""The explicit client: sessions and leases, server-level errors, streams, sharing, pipelines, admin."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import signal
import socket
import time

import grpc
import pytest

import mmapd
from conftest import Server

MiB = 1024 * 1024


def test_lease_is_renewed_in_the_background(server: Server) -> None:
    with server.connect(session_ttl=1) as c:
        m = c.mmap(-1, 16)
        m[0] = 7
        sid = c.session_id
        # Three leases long: only the renewal thread keeps the session alive.
        time.sleep(3.2)
        assert m[0] == 7
        assert any(s.session_id == sid and s.ttl_seconds == 1 for s in c.sessions())
    assert m.closed, "closing the client closes its maps"
    with pytest.raises(ValueError, match="mmap closed or invalid"):
        m[0]
    m.close()
    with server.connect() as other:
        assert all(s.session_id != sid for s in other.sessions()), "close() ends the session"


def test_a_server_restart_is_a_lost_session_then_maps_work_again(tmp_path: pathlib.Path) -> None:
    srv = Server(tmp_path)
    try:
        with srv.connect() as c:
            m = c.mmap(-1, 8)
            m[0] = 1
            srv.restart()
            with pytest.raises(mmapd.SessionLost) as info:
                m[0]
            assert info.value.reason == "SESSION_NOT_FOUND"
            with pytest.raises(mmapd.SessionLost):
                m.read()
            m.close()  # closing a map of a lost session is quiet
            fresh = c.mmap(-1, 8)
            fresh[0] = 2
            assert fresh[0] == 2
    finally:
        srv.stop()


def test_unreachable_server_fails_fast() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    start = time.monotonic()
    with pytest.raises(mmapd.Unavailable) as info:
        mmapd.connect(f"127.0.0.1:{port}", timeout=5)
    assert isinstance(info.value, ConnectionError)
    assert time.monotonic() - start < 5


def test_dead_server_mid_session_is_an_exception_not_a_hang(tmp_path: pathlib.Path) -> None:
    srv = Server(tmp_path)
    c = srv.connect(timeout=3)
    m = c.mmap(-1, 8)
    srv.stop()
    start = time.monotonic()
    with pytest.raises(mmapd.Unavailable):
        m[0]
    assert time.monotonic() - start < 4
    c.close()


def _wait_until_stopped(pid: int) -> None:
    """SIGSTOP is delivered asynchronously: wait until the kernel shows the
    process stopped ('T'), so no call can slip in before it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


def test_a_hung_server_is_a_timeout(tmp_path: pathlib.Path) -> None:
    srv = Server(tmp_path)
    c = srv.connect(timeout=1)
    m = c.mmap(-1, 8)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGSTOP)
    try:
        _wait_until_stopped(srv.proc.pid)
        start = time.monotonic()
        with pytest.raises(mmapd.Timeout) as info:
            m[0]
        assert isinstance(info.value, TimeoutError) and info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - start < 3
    finally:
        srv.proc.send_signal(signal.SIGCONT)
        c.close()
        srv.stop()


def test_server_level_errors_have_their_classes(tmp_path: pathlib.Path, client: mmapd.Client, server: Server) -> None:
    with pytest.raises(mmapd.MappingNotFound) as nf:
        client.attach("no-such-mapping")
    assert isinstance(nf.value, FileNotFoundError) and nf.value.reason == "MAPPING_NOT_FOUND"
    (server.root / "conflict.bin").write_bytes(b"x" * 8192)
    a = client.open("conflict.bin", 4096, name="conflicting")
    with pytest.raises(mmapd.MappingConflict):
        client.open("conflict.bin", 100, name="conflicting")
    a.close()
    with pytest.raises(FileNotFoundError) as missing:
        client.open("missing.bin")
    assert missing.value.errno == 2
    with pytest.raises(PermissionError) as escape:
        client.open("../escape.bin")
    assert escape.value.errno == 13

    limited = Server(tmp_path, ["--max-handles-per-session", "2", "--max-message-size", "1M"])
    try:
        with limited.connect() as c:
            maps = [c.mmap(-1, 8), c.mmap(-1, 8)]
            with pytest.raises(mmapd.QuotaExceeded) as quota:
                c.mmap(-1, 8)
            assert quota.value.metadata["limit"] and quota.value.code is not None
            big = maps[0]
            big.resize(2 * MiB)
            with pytest.raises(mmapd.MessageTooLarge):
                big.pipeline().getslice(0, 2 * MiB).execute()
            assert len(big[:]) == 2 * MiB, "slices past the message limit stream instead"
    finally:
        limited.stop()


def test_tokens_and_roles(tmp_path: pathlib.Path) -> None:
    def ident(name: str, token: str, role: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()
        return f'[[identity]]\nname = "{name}"\ntoken_sha256 = "{digest}"\nrole = "{role}"\npaths = [""]\n'

    access = tmp_path / "access.toml"
    access.write_text(ident("rw", "rw-token", "readwrite") + ident("ro", "ro-token", "read"))
    root = tmp_path / "root"
    root.mkdir()
    (root / "f.bin").write_bytes(b"abc" * 10)
    srv = Server(root, ["--access-file", str(access)])
    try:
        with pytest.raises(mmapd.Unauthenticated):
            srv.connect()
        with srv.connect(token="rw-token") as rw:
            assert rw.open("f.bin")[:3] == b"abc"
        with srv.connect(token="ro-token") as ro:
            assert ro.open("f.bin", access=mmapd.ACCESS_READ)[:3] == b"abc"
            with pytest.raises(mmapd.AccessDenied) as denied:
                ro.open("f.bin", access=mmapd.ACCESS_WRITE)
            assert isinstance(denied.value, PermissionError) and denied.value.reason == "ACCESS_DENIED"
    finally:
        srv.stop()


def test_64_mib_read_and_write_go_through_streams(client: mmapd.Client) -> None:
    size = 64 * MiB
    assert size > client.unary_limit
    m = client.mmap(-1, size)
    data = os.urandom(MiB) * 64
    assert m.write(data) == size
    assert m.tell() == size
    m.seek(0)
    assert m.read() == data
    assert m[:] == data
    m[:] = data[::-1]
    assert m[: -size - 1 : -1] == data
    assert m[1::2] == data[::-1][1::2]
    m.seek(size - 3)
    with pytest.raises(ValueError, match="data out of range"):
        m.write(data)
    m.close()


def test_upload_and_download_stream_files(client: mmapd.Client, server: Server, tmp_path: pathlib.Path) -> None:
    src = tmp_path / "src.bin"
    payload = os.urandom(3 * MiB + 5)
    src.write_bytes(payload)
    seen = []
    assert client.upload(src, "up.bin", create=True, progress=lambda d, t: seen.append((d, t))) == len(payload)
    assert (server.root / "up.bin").read_bytes() == payload
    assert seen[-1] == (len(payload), len(payload))
    shorter = io.BytesIO(b"short")
    assert client.upload(shorter, "up.bin") == 5
    assert (server.root / "up.bin").read_bytes() == b"short"
    out = io.BytesIO()
    assert client.download("up.bin", out) == 5 and out.getvalue() == b"short"
    dest = tmp_path / "down.bin"
    client.upload(src, "up.bin")
    client.download("up.bin", dest)
    assert dest.read_bytes() == payload


def test_named_sharing_between_two_clients(server: Server) -> None:
    with server.connect() as a, server.connect() as b:
        region = a.mmap(-1, 4096)
        joined = b.attach(region.name)
        region[0:5] = b"hello"
        assert joined[0:5] == b"hello"
        joined.seek(100)
        assert region.tell() == 0, "each handle keeps its own cursor"
        joined.resize(8192)
        assert len(region) == 8192
        (server.root / "shared.bin").write_bytes(b"\0" * 4096)
        fa = a.open("shared.bin", name="shared-file")
        fb = b.attach("shared-file")
        fb[10] = 42
        assert fa[10] == 42
        names = {m.name for m in a.mappings()}
        assert {"shared-file", region.name} <= names


def test_fileno_maps_see_local_writes(server: Server, default_env: None) -> None:
    path = server.root / "fd.bin"
    path.write_bytes(b"a" * 100)
    with open(path, "r+b") as f:
        m = mmapd.mmap(f.fileno(), 0)
        f.seek(0)
        f.write(b"LOCAL")
        f.flush()
        assert m[:5] == b"LOCAL"
        m[5:10] = b"REMOT"
        m.flush()
        f.seek(5)
        assert f.read(5) == b"REMOT"


def test_pipeline_runs_a_batch_in_order(client: mmapd.Client) -> None:
    m = client.mmap(-1, 16)
    with m.pipeline() as p:
        p.write(b"abc").seek(0).read(2).read_byte().tell().getitem(0).setitem(1, 66)
        p.getslice(0, 3).find(b"c", 0).rfind(b"a", 0).find(b"c").size().len().move(4, 0, 3).setslice(8, 10, None, b"zz")
        p.readline().seek(0).write_byte(1).flush().madvise(mmapd.MADV_NORMAL).resize(32)
    assert p.results == [3, None, b"ab", 99, 3, 97, None, b"aBc", 2, 0, -1, 16, 16, None, None, b"\0aBc\0zz" + b"\0" * 6, None, None, None, None, None]
    assert len(m) == 32
    q = m.pipeline()
    q.seek(100).read(1)
    results = q.execute(raise_on_error=False)
    assert isinstance(results[0], ValueError) and results[1] == b"B"
    with pytest.raises(ValueError, match="seek out of range"):
        m.pipeline().seek(100).execute()
    assert m.pipeline().execute() == []


def test_admin_calls(client: mmapd.Client) -> None:
    info = client.server_info()
    assert info.max_message_size == client.max_message_size and info.page_size == mmapd.PAGESIZE
    m = client.mmap(-1, 8)
    assert any(s.session_id == client.session_id and s.handles >= 1 for s in client.sessions())
    assert any(x.name == m.name for x in client.mappings())


def test_default_client_is_lazy_and_configured_from_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mmapd._client as module

    monkeypatch.setattr(module, "_default", None)
    monkeypatch.setenv("MMAPD_ENDPOINT", server.addr)
    assert module._default is None
    m = mmapd.mmap(-1, 8)
    assert module._default is not None and module._default.endpoint == server.addr
    assert mmapd.default_client() is module._default
    m.close()
    module._default.close()
