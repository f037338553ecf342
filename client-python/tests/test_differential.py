"""Random operations through ``mmapd.mmap`` and CPython's ``mmap.mmap`` side by side.

Each op's result (or exception class and message) must be the same, and so
must the final bytes of the two files.
"""

from __future__ import annotations

import mmap as local
import os
import random
from typing import Any, Callable, List, Tuple

import pytest

import mmapd
from conftest import Server

PAGE = local.PAGESIZE
# Advice that changes a VMA's flags on part of a map splits the VMA, after which
# CPython's resize (mremap) fails with EFAULT; mmapd resizes anyway, so only
# advice that leaves the flags alone is compared.
ADVICE = [local.MADV_NORMAL, local.MADV_WILLNEED, local.MADV_DONTNEED]

Op = Tuple[str, Callable[[Any], Any]]


def random_op(rng: random.Random) -> Op:
    def num(scale: int = 2 * PAGE) -> int:
        return rng.choice([rng.randrange(-scale, scale), rng.randrange(0, scale), rng.randrange(0, 64), 0, -1])

    def data() -> bytes:
        return bytes(rng.choice(b"ab\ncd\x00") for _ in range(rng.choice([0, 1, 3, 17, 100])))

    def opt() -> Any:
        return rng.choice([None, num(), num(64)])

    kind = rng.randrange(22)
    if kind == 0:
        n = rng.choice([None, num(), num(64), -5])
        return f"read({n})", lambda m: m.read(n)
    if kind == 1:
        return "read_byte()", lambda m: m.read_byte()
    if kind == 2:
        return "readline()", lambda m: m.readline()
    if kind == 3:
        d = data()
        return f"write({d!r})", lambda m: m.write(d)
    if kind == 4:
        v = rng.choice([0, 10, 255, 256, -1, rng.randrange(256)])
        return f"write_byte({v})", lambda m: m.write_byte(v)
    if kind == 5:
        pos, whence = num(), rng.choice([0, 1, 2, 0, 1, 2, 3])
        return f"seek({pos}, {whence})", lambda m: m.seek(pos, whence)
    if kind == 6:
        return "tell()", lambda m: m.tell()
    if kind == 7:
        return "size()", lambda m: m.size()
    if kind == 8:
        return "len()", lambda m: len(m)
    if kind in (9, 10):
        sub = rng.choice([b"a", b"\n", b"cd", b"zz", b"", data()[:3]])
        args = [sub] + [num() for _ in range(rng.randrange(3))]
        name = "find" if kind == 9 else "rfind"
        return f"{name}{tuple(args)}", lambda m: getattr(m, name)(*args)
    if kind == 11:
        args = [rng.choice([0, PAGE, 1, num()]), rng.choice([num(), PAGE, 0])][: rng.randrange(3)]
        return f"flush{tuple(args)}", lambda m: m.flush(*args)
    if kind == 12:
        a = (num(), num(), rng.choice([num(64), num()]))
        return f"move{a}", lambda m: m.move(*a)
    if kind == 13:
        n = rng.choice([1, 100, PAGE, PAGE + 7, 3 * PAGE, rng.randrange(1, 3 * PAGE), -1])
        return f"resize({n})", lambda m: m.resize(n)
    if kind == 14:
        args = [rng.choice(ADVICE), rng.choice([0, PAGE, 1, num()]), num()][: rng.randrange(1, 4)]
        return f"madvise{tuple(args)}", lambda m: m.madvise(*args)
    if kind in (15, 16):
        i = num()
        return f"m[{i}]", lambda m: m[i]
    if kind == 17:
        i, v = num(), rng.choice([0, 65, 255, 256, -1])
        return f"m[{i}] = {v}", lambda m: m.__setitem__(i, v)
    if kind in (18, 19):
        s = slice(opt(), opt(), rng.choice([None, 1, 2, -1, -3, 0]))
        return f"m[{s}]", lambda m: m[s]
    if kind == 20:
        s = slice(opt(), opt(), rng.choice([None, 1, 2, -1, -3]))

        def set_slice(m: Any) -> Any:
            n = len(range(*s.indices(len(m))))
            payload = bytes(rng_payload[:n]) if rng_payload_ok else bytes(n + 1)
            m[s] = payload

        rng_payload = bytes(rng.choice(b"xyz\n") for _ in range(3 * PAGE + 10))
        rng_payload_ok = rng.random() < 0.85
        return f"m[{s}] = ...", set_slice
    return "list(m)[:3]", lambda m: list(m)[:3]


def outcome(op: Callable[[Any], Any], m: Any) -> Tuple[str, Any]:
    try:
        return ("ok", op(m))
    except Exception as exc:  # noqa: BLE001 - class and message are compared
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_match_cpython(seed: int, server: Server, default_env: None) -> None:
    rng = random.Random(seed)
    start = bytes(rng.choice(b"ab\ncd") for _ in range(2 * PAGE + 123))
    mine, theirs = server.root / f"diff-{seed}-remote.bin", server.root / f"diff-{seed}-local.bin"
    mine.write_bytes(start)
    theirs.write_bytes(start)
    history: List[str] = []
    with open(mine, "r+b") as fr, open(theirs, "r+b") as fl:
        remote = mmapd.mmap(fr.fileno(), 0)
        here = local.mmap(fl.fileno(), 0)
        for step in range(700):
            name, op = random_op(rng)
            history.append(name)
            got, want = outcome(op, remote), outcome(op, here)
            assert got == want, f"seed {seed} step {step}: {name}; last ops {history[-8:]}"
        remote.close()
        here.close()
    assert mine.read_bytes() == theirs.read_bytes()
    os.remove(mine)
    os.remove(theirs)
