"""Every ``mmap.mmap`` method through ``mmapd.mmap``, checked against CPython's own ``mmap``."""

from __future__ import annotations

import mmap as local
import os
import pathlib
from typing import Any, Callable, Tuple

import pytest

import mmapd

from conftest import Server


def outcome(fn: Callable[[Any], Any], module: Any) -> Tuple[str, Any]:
    try:
        return ("ok", fn(module))
    except Exception as exc:  # noqa: BLE001 - the class and message are what we compare
        return (type(exc).__name__, str(exc))


def same(fn: Callable[[Any], Any]) -> Any:
    """Runs ``fn`` with the local ``mmap`` module and with ``mmapd``; both must agree."""
    want = outcome(fn, local)
    got = outcome(fn, mmapd)
    assert got == want
    return got


def test_constants_are_the_local_modules() -> None:
    for name in dir(local):
        if name.startswith(("ACCESS_", "MADV_", "MAP_", "PROT_")) or name in ("PAGESIZE", "ALLOCATIONGRANULARITY"):
            assert getattr(mmapd, name) == getattr(local, name), name


def test_every_method_on_an_anonymous_map(default_env: None) -> None:
    def run(M: Any) -> Any:
        m = M.mmap(-1, 64)
        out = [m.write(b"hello\nworld\n"), m.tell(), len(m)]
        m.seek(0)
        out += [m.readline(), m.read(3), m.read_byte(), m.tell()]
        m.write_byte(ord("X"))
        out += [m[:12], m.find(b"o"), m.find(b"o", 0), m.find(b"o", 0, 5), m.rfind(b"o"), m.rfind(b"l", 0, -1)]
        m.seek(-4, os.SEEK_END)
        out += [m.tell(), m.read(), m.read(5)]
        m.seek(2)
        m.seek(3, os.SEEK_CUR)
        out.append(m.tell())
        m.move(20, 0, 5)
        out.append(m[20:25])
        m[0] = 65
        m[-1] = 66
        m[1:4] = b"xyz"
        m[30:40:3] = b"1234"
        m[::-16] = b"abcd"
        out += [m[0], m[-1], m[-64], m[:], m[::-1], m[50:10:-7], m[-5:], m[100:200], m[5:2]]
        out += [list(m)[:3], list(reversed(m))[:2], b"xyz" in m, b"A" in m]
        m.flush()
        m.flush(0, local.PAGESIZE if len(m) >= local.PAGESIZE else len(m))
        m.madvise(M.MADV_NORMAL)
        m.madvise(M.MADV_WILLNEED, 0, 64)
        m.seek(0)
        with m as entered:
            out.append(entered.read(2))
        out.append(m.closed)
        m.close()
        return out

    same(run)


def test_every_method_on_a_file(server: Server, default_env: None) -> None:
    path = server.root / "methods.bin"

    def run(M: Any) -> Any:
        path.write_bytes(bytes(range(256)) * 16)
        with open(path, "r+b") as f:
            m = M.mmap(f.fileno(), 0)
            out = [len(m), m.size(), m[:4], m[-3:]]
            m.resize(8192)
            out += [len(m), m.size(), os.path.getsize(path)]
            m.resize(100)
            out += [len(m), m.size(), m[-1]]
            m[0:3] = b"abc"
            m.flush()
            m.close()
        with open(path, "rb") as f:
            r = M.mmap(f.fileno(), 50, access=M.ACCESS_READ, offset=0)
            out += [r[:5], len(r), r.size()]
            r.close()
        return out, path.read_bytes()

    same(run)


@pytest.mark.parametrize(
    "case",
    [
        lambda M: M.mmap(-1, 0),
        lambda M: M.mmap(-1, -1),
        lambda M: M.mmap(-1, 10, offset=-1),
        lambda M: M.mmap(-1, 10, access=7),
        lambda M: M.mmap(-1, 10, flags=M.MAP_PRIVATE, access=M.ACCESS_READ),
        lambda M: M.mmap("x", 10),
        lambda M: M.mmap(-1, 2**70),
        lambda M: M.mmap(-1, 8).write("text"),
        lambda M: M.mmap(-1, 8).write(b"123456789"),
        lambda M: M.mmap(-1, 8).seek(9),
        lambda M: M.mmap(-1, 8).seek(0, 3),
        lambda M: M.mmap(-1, 8).seek("a"),
        lambda M: M.mmap(-1, 8).read("a"),
        lambda M: M.mmap(-1, 8).read(2**70),
        lambda M: M.mmap(-1, 8)[8],
        lambda M: M.mmap(-1, 8)[-9],
        lambda M: M.mmap(-1, 8)[2**70],
        lambda M: M.mmap(-1, 8)["a"],
        lambda M: M.mmap(-1, 8)[::0],
        lambda M: M.mmap(-1, 8)["a":],
        lambda M: M.mmap(-1, 8).__setitem__(8, 1),
        lambda M: M.mmap(-1, 8).__setitem__(0, 256),
        lambda M: M.mmap(-1, 8).__setitem__(0, "a"),
        lambda M: M.mmap(-1, 8).__setitem__(9, "a"),
        lambda M: M.mmap(-1, 8).__setitem__(0, 2**70),
        lambda M: M.mmap(-1, 8).__setitem__("a", 1),
        lambda M: M.mmap(-1, 8).__setitem__(slice(0, 2), b"abc"),
        lambda M: M.mmap(-1, 8).__setitem__(slice(0, 2), "ab"),
        lambda M: M.mmap(-1, 8).__delitem__(0),
        lambda M: M.mmap(-1, 8).__delitem__(slice(0, 2)),
        lambda M: M.mmap(-1, 8).write_byte(256),
        lambda M: M.mmap(-1, 8).write_byte(-1),
        lambda M: M.mmap(-1, 8).write_byte("a"),
        lambda M: M.mmap(-1, 8).move(0, 4, 5),
        lambda M: M.mmap(-1, 8).move(-1, 0, 1),
        lambda M: M.mmap(-1, 8).find("a"),
        lambda M: M.mmap(-1, 8).flush(1, 1),
        lambda M: M.mmap(-1, 8).flush(0, 9),
        lambda M: M.mmap(-1, 8).madvise(M.MADV_NORMAL, 1),
        lambda M: M.mmap(-1, 8).madvise(M.MADV_NORMAL, 0, -1),
        lambda M: M.mmap(-1, 8).resize(-1),
        lambda M: M.mmap(-1, 8).read(1, 2),
        lambda M: M.mmap(-1, 8).read(n=1),
        lambda M: M.mmap(-1, 8).readline(1),
        lambda M: M.mmap(-1, 8).tell(x=1),
        lambda M: M.mmap(-1, 8).move(1),
        lambda M: M.mmap(-1, 8).seek(),
        lambda M: M.mmap(-1, 8).find(b"", 1, 2, 3),
        lambda M: M.mmap(-1, 8).resize(),
    ],
)
def test_errors_match_cpython(case: Callable[[Any], Any], default_env: None) -> None:
    kind, _ = same(case)
    assert kind != "ok"


def test_end_of_map_errors(default_env: None) -> None:
    def at_end(M: Any) -> Any:
        m = M.mmap(-1, 4)
        m.seek(0, os.SEEK_END)
        results = []
        for op in (m.read_byte, lambda: m.write_byte(1), lambda: m.write(b"x")):
            results.append(outcome(lambda _: op(), None))
        results.append((m.read(), m.readline()))
        return results

    same(at_end)


def test_closed_map_raises_value_error_everywhere(default_env: None) -> None:
    def closed(M: Any) -> Any:
        m = M.mmap(-1, 4)
        m.close()
        m.close()
        calls = [
            m.read, m.read_byte, m.readline, lambda: m.write(b"a"), lambda: m.write_byte(1), lambda: m.seek(0),
            m.tell, m.size, lambda: len(m), lambda: m.find(b"a"), lambda: m.rfind(b"a"), m.flush,
            lambda: m.move(0, 0, 1), lambda: m.resize(8), lambda: m.madvise(M.MADV_NORMAL), lambda: m[0],
            lambda: m[0:1], lambda: m.__setitem__(0, 1), lambda: m.__enter__(), lambda: list(m),
        ]
        return m.closed, [outcome(lambda _: c(), None) for c in calls]

    same(closed)


def test_readonly_and_copy_maps(server: Server, default_env: None) -> None:
    path = server.root / "ro.bin"
    path.write_bytes(b"0123456789" * 500)

    def run(M: Any) -> Any:
        with open(path, "rb") as f:
            ro = M.mmap(f.fileno(), 0, access=M.ACCESS_READ)
            w = outcome(lambda _: ro.write(b"a"), None)
            s = outcome(lambda _: ro.__setitem__(0, 1), None)
            r = outcome(lambda _: ro.resize(10), None)
            m = outcome(lambda _: ro.move(0, 1, 1), None)
        with open(path, "r+b") as f:
            cp = M.mmap(f.fileno(), 0, access=M.ACCESS_COPY)
            cp[0:3] = b"abc"
            got = cp[0:4]
            rc = outcome(lambda _: cp.resize(10), None)
            cp.flush()
        return w, s, r, m, got, rc, path.read_bytes()[:4]

    same(run)


def test_fd_mode_and_file_errors_match_cpython(server: Server, default_env: None) -> None:
    empty = server.root / "empty.bin"
    empty.write_bytes(b"")
    small = server.root / "small.bin"
    small.write_bytes(b"abc")

    def run(M: Any) -> Any:
        out = []
        with open(empty, "r+b") as f:
            out.append(outcome(lambda _: M.mmap(f.fileno(), 0), None))
        with open(small, "r+b") as f:
            out.append(outcome(lambda _: M.mmap(f.fileno(), 10), None))
            out.append(outcome(lambda _: M.mmap(f.fileno(), 1, offset=100), None))
            out.append(outcome(lambda _: M.mmap(f.fileno(), 1, offset=1), None))
        with open(small, "rb") as f:
            out.append(outcome(lambda _: M.mmap(f.fileno(), 0), None))
        out.append(outcome(lambda _: M.mmap(9999, 1), None))
        return out

    same(run)


def test_file_outside_the_local_root_is_refused(tmp_path: pathlib.Path, default_env: None) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * 10)
    with open(outside, "r+b") as f:
        with pytest.raises(mmapd.NotUnderRoot):
            mmapd.mmap(f.fileno(), 0)


def test_iteration_follows_the_sequence_protocol(default_env: None) -> None:
    def run(M: Any) -> Any:
        m = M.mmap(-1, 70000)
        m[69998:70000] = b"yz"
        items = list(m)
        return len(items), items[-2:], items[0], list(reversed(m))[:2], b"z" in m, 0 in m

    same(run)


def test_client_mmap_open_and_map_identity(client: mmapd.Client, server: Server) -> None:
    (server.root / "opened.bin").write_bytes(b"q" * 100)
    m = client.open("opened.bin")
    assert (len(m), m.size(), m[:2], m.name) == (100, 100, b"qq", "opened.bin")
    created = client.open("created.bin", 10, create=True)
    assert (server.root / "created.bin").read_bytes() == b"\0" * 10
    anon = client.mmap(-1, 16)
    anon.write(b"abc")
    assert anon[:3] == b"abc" and anon.client is client
    assert "closed=False" in repr(anon)
    for x in (m, created, anon):
        x.close()
    assert "closed=True" in repr(anon)
