#!/usr/bin/env python3
"""CPython oracle for the mmapd differential test (tests/differential/).

Usage: python3 mmap_oracle.py DATA_DIR

Drives real `mmap.mmap` objects over its own copy of the test files in
DATA_DIR. The protocol is JSON lines: one request per line on stdin, one reply
per line on stdout. The first line written is a greeting:

    {"hello": {"python": "3.11.7", "pagesize": 4096, "granularity": 4096}}

A request names an operation and, except for "map", the id of an earlier map:

    {"op": "map", "id": 3, "path": "small", "length": 0, "offset": 0, "access": 1}
    {"op": "map", "id": 4, "path": null, "length": 100, "offset": 0, "access": 0}
    {"op": "read", "id": 3, "n": 5}

"path": null is an anonymous map (`mmap.mmap(-1, ...)`). Byte strings travel as
lowercase hex, in requests ("data", "sub") and in results. Optional arguments
are null when unset; the unset-argument rules are the wire contract's (an
unset flush offset or madvise start is 0, an unset find start is the cursor).

Replies:

    {"ok": RESULT, "state": STATE}             the call returned RESULT
    {"err": "ValueError", "msg": str(exc), "errno": null, "state": STATE}
    {"deviation": KIND, "ok": RESULT, "state": STATE}
    {"skip": WHY}                              not run (see the end)
    {"fatal": WHY}                             malformed request

RESULT is null, an int or a hex string. STATE is {"len": len(m), "pos":
m.tell()} of the map the request named after the call, or null when that map
is closed (or was never created). Exceptions are reported by class: every
OSError subclass is "OSError" with its errno; any class other than the five
that mmap raises is reported by its own name, so that the test fails loudly.

Where mmapd deliberately differs from CPython (documented in
tests/differential/main.rs) the oracle does not run the crashing or
meaningless CPython call and answers with a "deviation" instead:

    resize_zero  resize(0) of an open resizable map: CPython truncates the file
                 and then fails, leaving a map that SIGBUSes; mmapd refuses
                 with VALUE_ERROR and changes nothing. Nothing is run.
    anon_grow    growing an anonymous map: CPython's mremap grows the mapping
                 but not the shared memory object behind it (touching the new
                 pages SIGBUSes); mmapd's memfd-backed regions really grow,
                 and like a file's, the bytes a grow adds read as zeros. The
                 oracle emulates that: a grow within the last page runs
                 CPython's (then harmless) resize and zeroes the added bytes;
                 a grow by pages makes a fresh anonymous map holding the old
                 bytes followed by zeros, at the same cursor. The fresh map
                 does not inherit madvise flags, which changes no result.
                 (mmapd also grows a map that madvise split into several
                 VMAs, where CPython's mremap fails with EFAULT.)
    anon_size    size() of an open anonymous map: CPython raises EBADF; mmapd
                 returns the length, which is the RESULT.
    resize_under_other_map
                 resize() of a file map that would make the file end before
                 the end of another open map of it: CPython truncates and the
                 other map SIGBUSes on its next access; mmapd refuses
                 (VALUE_ERROR, FAILED_PRECONDITION) and changes nothing.
                 Nothing is run.
    resize_split growing (by pages) a file map that madvise split into
                 several VMAs: CPython grows the file, then mremap fails with
                 EFAULT and the map keeps its old length; mmapd maps the file
                 afresh at the new length. The oracle emulates that: it grows
                 the file and makes a fresh map of it at the same cursor.

It refuses ("skip") what it cannot run: growing a map beyond GROW_LIMIT, and an
anonymous grow that would leave the cursor past the new end (the emulation
cannot represent it).
"""

import ctypes
import json
import mmap
import os
import sys

# Largest size a resize may grow a map to (keeps the files small and never lets
# ftruncate create a huge sparse file).
GROW_LIMIT = 1 << 20

RESIZABLE = (mmap.ACCESS_DEFAULT, mmap.ACCESS_WRITE)

# Exception classes in the order they are tested; the names are the
# ErrorInfo reasons' Python spelling.
CLASSES = (
    (OSError, "OSError"),
    (OverflowError, "OverflowError"),
    (IndexError, "IndexError"),
    (ValueError, "ValueError"),
    (TypeError, "TypeError"),
)


class Refused(Exception):
    """The request must not run in CPython; answered with "skip"."""


class Deviation(Exception):
    """The request hits a documented mmapd deviation; answered as such."""

    def __init__(self, kind, result=None):
        super().__init__(kind)
        self.kind = kind
        self.result = result


class Entry:
    """One mmap object and what was asked for when it was created."""

    def __init__(self, m, path, access, offset):
        self.m = m
        self.path = path
        self.access = access
        self.offset = offset

    @property
    def anonymous(self):
        return self.path is None


def unhex(text):
    return bytes.fromhex(text)


def state(entry):
    if entry is None or entry.m.closed:
        return None
    return {"len": len(entry.m), "pos": entry.m.tell()}


def pages(size):
    return -(-size // mmap.PAGESIZE)


def single_vma(m):
    """Whether one VMA covers the whole of `m` (else growing it with mremap
    fails with EFAULT), from /proc/self/maps."""
    view = (ctypes.c_char * len(m)).from_buffer(m)
    start = ctypes.addressof(view)
    del view  # releases the export that would block resize()
    with open("/proc/self/maps") as maps:
        for line in maps:
            low, high = (int(bound, 16) for bound in line.split()[0].split("-"))
            if low <= start < high:
                return start + len(m) <= high
    return False


def classify(exc):
    for cls, name in CLASSES:
        if isinstance(exc, cls):
            errno = exc.errno if isinstance(exc, OSError) else None
            return {"err": name, "msg": str(exc), "errno": errno}
    return {"err": type(exc).__name__, "msg": str(exc), "errno": None}


class Oracle:
    """The table of mmap objects and one method per operation."""

    def __init__(self, root):
        self.root = root
        self.maps = {}

    def handle(self, req):
        op = req.get("op")
        method = getattr(self, "op_" + str(op), None)
        if method is None:
            return {"fatal": "unknown op %r" % (op,)}
        map_id = req.get("id")
        if op != "map" and map_id not in self.maps:
            return {"fatal": "unknown map id %r" % (map_id,)}
        if op == "map" and map_id in self.maps:
            return {"fatal": "map id %r reused" % (map_id,)}
        try:
            reply = {"ok": method(req)}
        except Refused as why:
            return {"skip": str(why)}
        except Deviation as dev:
            reply = {"deviation": dev.kind, "ok": dev.result}
        except Exception as exc:  # noqa: BLE001 -- the class is the answer
            reply = classify(exc)
        reply["state"] = state(self.maps.get(map_id))
        return reply

    def m(self, req):
        return self.maps[req["id"]].m

    # -- construction and teardown -----------------------------------------

    def op_map(self, req):
        path, access = req["path"], req["access"]
        if path is None:
            m = mmap.mmap(-1, req["length"], access=access, offset=req["offset"])
        else:
            with open(os.path.join(self.root, path), "r+b") as f:
                m = mmap.mmap(f.fileno(), req["length"], access=access, offset=req["offset"])
        self.maps[req["id"]] = Entry(m, path, access, req["offset"])
        return len(m)

    def op_close(self, req):
        return self.m(req).close()

    # -- cursor I/O ----------------------------------------------------------

    def op_read(self, req):
        n = req["n"]
        data = self.m(req).read() if n is None else self.m(req).read(n)
        return data.hex()

    def op_read_byte(self, req):
        return self.m(req).read_byte()

    def op_read_line(self, req):
        return self.m(req).readline().hex()

    def op_write(self, req):
        return self.m(req).write(unhex(req["data"]))

    def op_write_byte(self, req):
        return self.m(req).write_byte(req["value"])

    def op_seek(self, req):
        m = self.m(req)
        m.seek(req["pos"], req["whence"])
        # CPython 3.11's seek returns None; mmapd returns the new cursor.
        return m.tell()

    def op_tell(self, req):
        return self.m(req).tell()

    # -- sizes ---------------------------------------------------------------

    def op_size(self, req):
        entry = self.maps[req["id"]]
        if entry.anonymous and not entry.m.closed:
            raise Deviation("anon_size", len(entry.m))
        return entry.m.size()

    def op_len(self, req):
        return len(self.m(req))

    def op_resize(self, req):
        entry = self.maps[req["id"]]
        m, new_size = entry.m, req["new_size"]
        reaches_resize = not m.closed and entry.access in RESIZABLE
        if reaches_resize and new_size == 0:
            raise Deviation("resize_zero")
        if reaches_resize and new_size > GROW_LIMIT:
            raise Refused("resize beyond GROW_LIMIT")
        if reaches_resize and new_size > 0 and entry.anonymous and new_size > len(m):
            raise Deviation("anon_grow", self.grow_anonymous(entry, new_size))
        if reaches_resize and new_size > 0 and not entry.anonymous:
            if entry.offset + new_size < self.others_end(req["id"]):
                raise Deviation("resize_under_other_map")
            if pages(new_size) > pages(len(m)) and not single_vma(m):
                # The stand-in below cannot place a fresh map's cursor past
                # its end, where CPython's own resize leaves it.
                if m.tell() > new_size:
                    raise Refused("cursor past the end of a split map being grown")
                raise Deviation("resize_split", self.remap_file(entry, new_size))
        m.resize(new_size)
        return len(m)

    def remap_file(self, entry, new_size):
        old, pos = entry.m, entry.m.tell()
        with open(os.path.join(self.root, entry.path), "r+b") as f:
            f.truncate(entry.offset + new_size)
            new = mmap.mmap(f.fileno(), new_size, access=entry.access, offset=entry.offset)
        new.seek(pos)
        old.close()  # shared pages: its writes are already the file's
        entry.m = new
        return len(new)

    def grow_anonymous(self, entry, new_size):
        old, old_len, pos = entry.m, len(entry.m), entry.m.tell()
        if pages(new_size) == pages(old_len):
            old.resize(new_size)  # no new page: CPython's mremap is harmless
            old[old_len:new_size] = bytes(new_size - old_len)
            return len(old)
        if pos > new_size:
            raise Refused("cursor past the end of the grown anonymous map")
        new = mmap.mmap(-1, new_size, access=entry.access)
        new[:old_len] = old[:]
        new.seek(pos)
        old.close()
        entry.m = new
        return len(new)

    def others_end(self, map_id):
        """The largest file offset another open map of the same file maps."""
        path = self.maps[map_id].path
        return max(
            (
                e.offset + len(e.m)
                for other_id, e in self.maps.items()
                if other_id != map_id and e.path == path and not e.m.closed
            ),
            default=0,
        )

    # -- searching -----------------------------------------------------------

    def find_args(self, req):
        args = [unhex(req["sub"])]
        start, end = req["start"], req["end"]
        if end is not None:
            args += [self.m(req).tell() if start is None else start, end]
        elif start is not None:
            args.append(start)
        return args

    def op_find(self, req):
        return self.m(req).find(*self.find_args(req))

    def op_rfind(self, req):
        return self.m(req).rfind(*self.find_args(req))

    # -- whole-map operations ------------------------------------------------

    def op_flush(self, req):
        offset, size = req["offset"], req["size"]
        if size is not None:
            return self.m(req).flush(0 if offset is None else offset, size)
        if offset is not None:
            return self.m(req).flush(offset)
        return self.m(req).flush()

    def op_move(self, req):
        return self.m(req).move(req["dest"], req["src"], req["count"])

    def op_madvise(self, req):
        start, length = req["start"], req["length"]
        if length is not None:
            return self.m(req).madvise(req["option"], 0 if start is None else start, length)
        if start is not None:
            return self.m(req).madvise(req["option"], start)
        return self.m(req).madvise(req["option"])

    # -- subscripts ----------------------------------------------------------

    def op_get_item(self, req):
        return self.m(req)[req["index"]]

    def op_set_item(self, req):
        self.m(req)[req["index"]] = req["value"]

    def op_get_slice(self, req):
        return self.m(req)[slice(req["start"], req["stop"], req["step"])].hex()

    def op_set_slice(self, req):
        self.m(req)[slice(req["start"], req["stop"], req["step"])] = unhex(req["data"])

    def op_contents(self, req):
        return self.m(req)[:].hex()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mmap_oracle.py DATA_DIR")
    oracle = Oracle(sys.argv[1])
    out = sys.stdout
    hello = {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "pagesize": mmap.PAGESIZE,
        "granularity": mmap.ALLOCATIONGRANULARITY,
    }
    out.write(json.dumps({"hello": hello}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError as exc:
            reply = {"fatal": "bad JSON: %s" % exc}
        else:
            reply = oracle.handle(req)
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
