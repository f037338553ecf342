"""``mmapd.mmap``: CPython's ``mmap.mmap`` over gRPC.

Arguments are checked here the way CPython checks them (same exception, same
message, same order: a closed map first, then argument types, then the
operation), so a bad argument never costs a round trip; everything that
depends on the mapping's state is decided by the server, which answers as
CPython would. Payloads larger than one gRPC message go through
``ReadStream``/``WriteStream`` transparently.
"""

from __future__ import annotations

import functools
import mmap as _local
import operator
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple, TypeVar, Union, cast

import grpc

from . import _errors
from ._errors import NotUnderRoot
from .v1 import mmapd_pb2 as pb

if TYPE_CHECKING:
    from ._client import Client, _Session
    from ._pipeline import Pipeline

__all__ = ["mmap"]

_SSIZE_MAX = sys.maxsize
_SSIZE_MIN = -sys.maxsize - 1
_INT_MAX = 2**31 - 1
_INT_MIN = -(2**31)
_MISSING: Any = object()
_ITER_CHUNK = 64 * 1024

BytesLike = Union[bytes, bytearray, memoryview]

_RETURNS_POSITION = sys.version_info >= (3, 13)  # seek() returns the new position from 3.13 on


F = TypeVar("F", bound=Callable[..., Any])


def _cpython_args(name: str, lo: int, hi: int) -> Callable[[F], F]:
    """Checks a method's arguments with CPython's messages: no keywords, ``lo`` to ``hi`` positionals.

    ``hi == 0`` is a ``METH_NOARGS`` method, checked before the map is; the
    others check the map first, as their C code does.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs:
                raise TypeError(f"mmap.{name}() takes no keyword arguments")
            n = len(args)
            if not lo <= n <= hi:
                if hi == 0:
                    raise TypeError(f"mmap.{name}() takes no arguments ({n} given)")
                self._check_valid()
                if lo == hi:
                    bound, count = "exactly", lo
                elif n < lo:
                    bound, count = "at least", lo
                else:
                    bound, count = "at most", hi
                plural = "" if count == 1 else "s"
                raise TypeError(f"{name}() takes {bound} {count} argument{plural} ({n} given)")
            return fn(self, *args)

        return cast(F, checked)

    return decorate


def _index(value: Any) -> int:
    """``operator.index`` with CPython's message for a non-integer."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer") from None


def _ssize(value: Any) -> int:
    """A ``Py_ssize_t`` argument (the ``n`` format)."""
    i = _index(value)
    if not _SSIZE_MIN <= i <= _SSIZE_MAX:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return i


def _cint(value: Any) -> int:
    """A C ``int`` argument (the ``i`` format)."""
    i = _index(value)
    if i > _INT_MAX:
        raise OverflowError("signed integer is greater than maximum")
    if i < _INT_MIN:
        raise OverflowError("signed integer is less than minimum")
    return i


def _longlong(value: Any) -> int:
    """A C ``long long`` argument (the ``L`` format)."""
    i = _index(value)
    if not -(2**63) <= i < 2**63:
        raise OverflowError("Python int too large to convert to C long long")
    return i


def _buffer(data: Any) -> bytes:
    """A bytes-like argument (the ``y*`` format)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'") from None
    return view.tobytes()


def _slice_index(value: Any) -> Optional[int]:
    """One slice bound, clamped as ``PySlice_Unpack`` clamps it."""
    if value is None:
        return None
    if not hasattr(type(value), "__index__"):
        raise TypeError("slice indices must be integers or None or have an __index__ method")
    return max(_SSIZE_MIN, min(_SSIZE_MAX, operator.index(value)))


def _unpack(key: slice) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """``PySlice_Unpack``: start, stop, step (``None`` where unset), step 0 refused."""
    step = _slice_index(key.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    if step is not None and step < -_SSIZE_MAX:
        step = -_SSIZE_MAX
    return _slice_index(key.start), _slice_index(key.stop), step


def _slice_request(cls: Any, handle: str, start: Optional[int], stop: Optional[int], step: Optional[int], **kw: Any) -> Any:
    req = cls(handle=handle, **kw)
    if start is not None:
        req.start = start
    if stop is not None:
        req.stop = stop
    if step is not None:
        req.step = step
    return req


def _slice_bound(start: Optional[int], stop: Optional[int], step: Optional[int]) -> Optional[int]:
    """An upper bound of the slice's length known without the map's length, if any."""
    if start is None or stop is None or (start < 0) != (stop < 0):
        return None
    return abs(stop - start) // abs(step or 1) + 1


def _effective_access(flags: int, prot: int, access: int) -> int:
    if access != _local.ACCESS_DEFAULT:
        return access
    if flags & _local.MAP_PRIVATE:
        return _local.ACCESS_COPY if prot & _local.PROT_WRITE else _local.ACCESS_READ
    if (prot & _local.PROT_READ) and (prot & _local.PROT_WRITE):
        return _local.ACCESS_DEFAULT
    if prot & _local.PROT_WRITE:
        return _local.ACCESS_WRITE
    return _local.ACCESS_READ


class mmap:  # noqa: N801 - the name of the class it replaces
    """A memory-mapped file or anonymous region held by an mmapd server.

    ``mmap(fileno, length, flags=MAP_SHARED, prot=PROT_WRITE|PROT_READ,
    access=ACCESS_DEFAULT, offset=0)`` behaves like ``mmap.mmap`` on Linux:
    ``fileno=-1`` maps an anonymous region; any other descriptor is an open
    file under ``MMAPD_LOCAL_ROOT``, mapped on the server at the same path
    relative to its data root. It uses the default client
    (:func:`mmapd.default_client`) unless ``client`` is given.

    Every method of ``mmap.mmap`` is here except the buffer protocol:
    ``memoryview(m)`` and ``re`` on ``m`` do not work; use slices.
    """

    _client: "Client"
    _session: "_Session"
    _handle: Optional[str]
    # The access the server says the handle behaves as (Map's reply: never
    # ACCESS_DEFAULT, which comes back as the ACCESS_WRITE it behaves as).
    _access: int
    _name: str

    def __init__(
        self,
        fileno: int,
        length: int,
        flags: int = _local.MAP_SHARED,
        prot: int = _local.PROT_WRITE | _local.PROT_READ,
        access: int = _local.ACCESS_DEFAULT,
        offset: int = 0,
        *,
        client: Optional["Client"] = None,
    ) -> None:
        self._handle = None
        fileno = _cint(fileno)
        length = _ssize(length)
        flags = _cint(flags)
        prot = _cint(prot)
        access = _cint(access)
        offset = _longlong(offset)
        if length < 0:
            raise OverflowError("memory mapped length must be positive")
        if offset < 0:
            raise OverflowError("memory mapped offset must be positive")
        if access != _local.ACCESS_DEFAULT and (
            flags != _local.MAP_SHARED or prot != (_local.PROT_WRITE | _local.PROT_READ)
        ):
            raise ValueError("mmap can't specify both access and flags, prot.")
        if access not in (_local.ACCESS_DEFAULT, _local.ACCESS_READ, _local.ACCESS_WRITE, _local.ACCESS_COPY):
            raise ValueError("mmap invalid access parameter.")
        if client is None:
            from ._client import default_client

            client = default_client()
        path = ""
        if fileno != -1:
            # The descriptor is a real local file: let CPython itself check it
            # (size, offset alignment, the descriptor's open mode), then map the
            # same file on the server.
            _local.mmap(fileno, length, flags=flags, prot=prot, access=access, offset=offset).close()
            path = self._server_path(client, fileno)
        req = pb.MapRequest(path=path, length=length, offset=offset, access=_effective_access(flags, prot, access))  # type: ignore[arg-type]
        self._open(client, req)

    @staticmethod
    def _server_path(client: "Client", fileno: int) -> str:
        root = client.local_root or os.environ.get("MMAPD_LOCAL_ROOT")
        if not root:
            raise NotUnderRoot(
                "mmapd.mmap of a file descriptor needs MMAPD_LOCAL_ROOT (the local view of the server's data root)",
                reason="NOT_UNDER_ROOT",
            )
        real = os.path.realpath(os.readlink(f"/proc/self/fd/{fileno}"))
        root_real = os.path.realpath(root)
        rel = os.path.relpath(real, root_real)
        if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            raise NotUnderRoot(
                f"{real!r} is not under MMAPD_LOCAL_ROOT {root_real!r}",
                reason="NOT_UNDER_ROOT",
                metadata={"path": real, "root": root_real},
            )
        return rel

    @classmethod
    def _map(cls, client: "Client", req: pb.MapRequest) -> "mmap":
        self = cls.__new__(cls)
        self._handle = None
        self._open(client, req)
        return self

    def _open(self, client: "Client", req: pb.MapRequest) -> None:
        session = client._live_session()
        req.session_id = session.id
        resp = client._unary(client._stub.Map, req, session)
        self._client = client
        self._session = session
        self._access = int(resp.access)
        self._name = resp.name
        self._handle = resp.handle

    # -- plumbing ----------------------------------------------------------------

    def _check_valid(self) -> str:
        handle = self._handle
        if handle is None or self._client._closed:
            # A closed client closed its session, and so every map of it.
            raise ValueError("mmap closed or invalid")
        if self._session.lost:
            from ._client import _lost

            raise _lost(self._session)
        return handle

    def _check_writable(self) -> None:
        if self._access == _local.ACCESS_READ:
            raise TypeError("mmap can't modify a readonly memory map.")

    def _call(self, rpc: Any, req: Any) -> Any:
        client = self._client
        try:
            return rpc(req, timeout=client.timeout, metadata=client._metadata)
        except grpc.RpcError as err:
            raise client._translate(err, self._session) from None

    def _stat(self) -> pb.StatResponse:
        return self._call(self._client._stub.Stat, pb.StatRequest(handle=self._handle))

    def _read_at(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``, through whichever call fits, without moving the cursor."""
        if length <= self._client.unary_limit:
            return self._call(
                self._client._stub.GetSlice,
                pb.GetSliceRequest(handle=self._handle, start=offset, stop=offset + length),
            ).data
        return self._client._read_stream(self._session, self._handle, offset, length)  # type: ignore[arg-type]

    def _write_at(self, offset: int, data: bytes) -> None:
        if len(data) <= self._client.unary_limit:
            self._call(
                self._client._stub.SetSlice,
                pb.SetSliceRequest(handle=self._handle, start=offset, stop=offset + len(data), data=data),
            )
        else:
            self._client._write_stream(
                self._session, self._handle, offset, self._client._chunks(data), len(data)  # type: ignore[arg-type]
            )

    # -- identity ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the map is closed (or its client is)."""
        return self._handle is None or self._client._closed

    @property
    def name(self) -> str:
        """The server's name of the mapping; other clients :meth:`Client.attach` to it by this name."""
        return self._name

    @property
    def client(self) -> "Client":
        """The client this map belongs to."""
        return self._client

    def __repr__(self) -> str:
        if self._handle is None:
            return "<mmapd.mmap closed=True>"
        return f"<mmapd.mmap closed=False, name={self._name!r}, access={self._access}>"

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle 'mmap.mmap' object")

    # -- lifetime ----------------------------------------------------------------

    @_cpython_args("close", 0, 0)
    def close(self) -> None:
        """Closes the map (``m.close()``); closing a closed map does nothing."""
        handle, self._handle = self._handle, None
        if handle is None or self._session.lost or self._client._closed:
            return
        client = self._client
        try:
            client._stub.Close(pb.CloseRequest(handle=handle), timeout=client.timeout, metadata=client._metadata)
        except grpc.RpcError:
            pass  # the session's end closes it; close() never fails in CPython

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", None) is not None and not sys.is_finalizing():
                self.close()
        except Exception:
            pass

    def __enter__(self) -> "mmap":
        self._check_valid()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the mmap methods ----------------------------------------------------------

    @_cpython_args("read", 0, 1)
    def read(self, n: Optional[int] = None, /) -> bytes:
        """``m.read([n])``: up to ``n`` bytes from the cursor (all of the rest when ``n`` is ``None`` or negative)."""
        handle = self._check_valid()
        if n is not None:
            if not hasattr(type(n), "__index__"):
                raise TypeError(f"argument should be integer or None, not '{type(n).__name__}'")
            n = operator.index(n)
            if not _SSIZE_MIN <= n <= _SSIZE_MAX:
                raise OverflowError("cannot fit 'int' into an index-sized integer")
        client = self._client
        if n is not None and 0 <= n <= client.unary_limit:
            return self._call(client._stub.Read, pb.ReadRequest(handle=handle, n=n)).data
        st = self._stat()
        remaining = max(0, st.length - st.position)
        want = remaining if n is None or n < 0 else min(n, remaining)
        if want <= client.unary_limit:
            req = pb.ReadRequest(handle=handle)
            if n is not None:
                req.n = n
            return self._call(client._stub.Read, req).data
        return client._read_stream(self._session, handle, None, want)

    @_cpython_args("read_byte", 0, 0)
    def read_byte(self) -> int:
        """``m.read_byte()``: the byte at the cursor, as an int; advances the cursor."""
        handle = self._check_valid()
        return self._call(self._client._stub.ReadByte, pb.ReadByteRequest(handle=handle)).value

    @_cpython_args("readline", 0, 0)
    def readline(self) -> bytes:
        """``m.readline()``: from the cursor up to and including the next newline."""
        handle = self._check_valid()
        return self._call(self._client._stub.ReadLine, pb.ReadLineRequest(handle=handle)).data

    @_cpython_args("write", 1, 1)
    def write(self, data: BytesLike, /) -> int:
        """``m.write(data)``: writes at the cursor, advances it, returns the number of bytes written."""
        handle = self._check_valid()
        buf = _buffer(data)
        client = self._client
        if len(buf) <= client.unary_limit:
            return self._call(client._stub.Write, pb.WriteRequest(handle=handle, data=buf)).written
        # A stream could land some chunks before failing: check what CPython checks first.
        self._check_writable()
        st = self._stat()
        if st.position > st.length or st.length - st.position < len(buf):
            raise ValueError("data out of range")
        return client._write_stream(self._session, handle, None, client._chunks(buf), len(buf))

    @_cpython_args("write_byte", 1, 1)
    def write_byte(self, byte: int, /) -> None:
        """``m.write_byte(byte)``: writes one byte at the cursor and advances it."""
        handle = self._check_valid()
        value = _index(byte)
        if value < 0:
            raise OverflowError("unsigned byte integer is less than minimum")
        if value > 255:
            raise OverflowError("unsigned byte integer is greater than maximum")
        self._call(self._client._stub.WriteByte, pb.WriteByteRequest(handle=handle, value=value))

    @_cpython_args("seek", 1, 2)
    def seek(self, pos: int, whence: int = os.SEEK_SET, /) -> Optional[int]:
        """``m.seek(pos[, whence])``: moves the cursor (``os.SEEK_SET``, ``SEEK_CUR`` or ``SEEK_END``)."""
        handle = self._check_valid()
        pos = _ssize(pos)
        whence = _cint(whence)
        resp = self._call(self._client._stub.Seek, pb.SeekRequest(handle=handle, pos=pos, whence=whence))  # type: ignore[arg-type]
        return int(resp.position) if _RETURNS_POSITION else None

    def seekable(self) -> bool:
        """Always ``True``, as ``mmap.mmap.seekable()``."""
        return True

    @_cpython_args("tell", 0, 0)
    def tell(self) -> int:
        """``m.tell()``: the cursor."""
        handle = self._check_valid()
        return int(self._call(self._client._stub.Tell, pb.TellRequest(handle=handle)).position)

    @_cpython_args("size", 0, 0)
    def size(self) -> int:
        """``m.size()``: the size of the underlying file (the length for anonymous regions)."""
        handle = self._check_valid()
        return int(self._call(self._client._stub.Size, pb.SizeRequest(handle=handle)).size)

    def __len__(self) -> int:
        """``len(m)``: the length of the mapping."""
        handle = self._check_valid()
        return int(self._call(self._client._stub.Len, pb.LenRequest(handle=handle)).length)

    def _find(self, rpc: Any, sub: BytesLike, start: Any, end: Any) -> int:
        handle = self._check_valid()
        req = pb.FindRequest(handle=handle, sub=_buffer(sub))
        if start is not _MISSING:
            req.start = _ssize(start)
        if end is not _MISSING:
            req.end = _ssize(end)
        return int(self._call(rpc, req).index)

    @_cpython_args("find", 1, 3)
    def find(self, sub: BytesLike, start: int = _MISSING, end: int = _MISSING, /) -> int:
        """``m.find(sub[, start[, end]])``: the lowest index of ``sub`` in ``[start, end)``, or -1."""
        return self._find(self._client._stub.Find if self._handle else None, sub, start, end)

    @_cpython_args("rfind", 1, 3)
    def rfind(self, sub: BytesLike, start: int = _MISSING, end: int = _MISSING, /) -> int:
        """``m.rfind(sub[, start[, end]])``: the highest index of ``sub`` in ``[start, end)``, or -1."""
        return self._find(self._client._stub.RFind if self._handle else None, sub, start, end)

    @_cpython_args("flush", 0, 2)
    def flush(self, offset: int = 0, size: int = _MISSING, /) -> None:
        """``m.flush([offset[, size]])``: msync; when it returns the range is durable on the server's disk."""
        handle = self._check_valid()
        req = pb.FlushRequest(handle=handle, offset=_ssize(offset))
        if size is not _MISSING:
            req.size = _ssize(size)
        self._call(self._client._stub.Flush, req)

    @_cpython_args("move", 3, 3)
    def move(self, dest: int, src: int, count: int, /) -> None:
        """``m.move(dest, src, count)``: copies ``count`` bytes from ``src`` to ``dest`` (memmove)."""
        handle = self._check_valid()
        req = pb.MoveRequest(handle=handle, dest=_ssize(dest), src=_ssize(src), count=_ssize(count))
        self._call(self._client._stub.Move, req)

    @_cpython_args("resize", 1, 1)
    def resize(self, newsize: int, /) -> None:
        """``m.resize(newsize)``: resizes the mapping and the file (for every handle of the mapping)."""
        handle = self._check_valid()
        self._call(self._client._stub.Resize, pb.ResizeRequest(handle=handle, new_size=_ssize(newsize)))

    @_cpython_args("madvise", 1, 3)
    def madvise(self, option: int, start: int = 0, length: int = _MISSING, /) -> None:
        """``m.madvise(option[, start[, length]])``; advice that would harm the server is refused."""
        handle = self._check_valid()
        req = pb.MadviseRequest(handle=handle, option=_cint(option), start=_ssize(start))  # type: ignore[arg-type]
        if length is not _MISSING:
            req.length = _ssize(length)
        self._call(self._client._stub.Madvise, req)

    # -- the sequence and mapping protocols ------------------------------------------

    def __getitem__(self, key: Union[int, slice]) -> Any:
        """``m[i]`` (an int) and ``m[start:stop:step]`` (bytes), negative indices and steps included."""
        handle = self._check_valid()
        client = self._client
        if isinstance(key, slice):
            start, stop, step = _unpack(key)
            bound = _slice_bound(start, stop, step)
            if bound is None or bound > client.unary_limit:
                return self._big_slice(start, stop, step)
            req = _slice_request(pb.GetSliceRequest, handle, start, stop, step)
            return self._call(client._stub.GetSlice, req).data
        if hasattr(type(key), "__index__"):
            i = operator.index(key)
            if not _SSIZE_MIN <= i <= _SSIZE_MAX:
                raise IndexError("cannot fit 'int' into an index-sized integer")
            return int(self._call(client._stub.GetItem, pb.GetItemRequest(handle=handle, index=i)).value)
        raise TypeError("mmap indices must be integers")

    def _big_slice(self, start: Optional[int], stop: Optional[int], step: Optional[int]) -> bytes:
        length = len(self)
        a, b, c = slice(start, stop, step).indices(length)
        rng = range(a, b, c)
        n = len(rng)
        if n <= self._client.unary_limit:
            req = _slice_request(pb.GetSliceRequest, self._handle, start, stop, step)  # type: ignore[arg-type]
            return self._call(self._client._stub.GetSlice, req).data
        lo, hi = min(rng[0], rng[-1]), max(rng[0], rng[-1]) + 1
        span = self._read_at(lo, hi - lo)
        if c == 1:
            return span
        rel_stop: Optional[int] = b - lo
        if b - lo < 0:
            rel_stop = None
        return span[a - lo : rel_stop : c]

    def __setitem__(self, key: Union[int, slice], value: Any) -> None:
        """``m[i] = byte`` and ``m[start:stop:step] = data`` (``data`` exactly as long as the slice)."""
        handle = self._check_valid()
        self._check_writable()
        client = self._client
        if isinstance(key, slice):
            start, stop, step = _unpack(key)
            buf = _buffer(value)
            if len(buf) <= client.unary_limit:
                req = _slice_request(pb.SetSliceRequest, handle, start, stop, step, data=buf)
                self._call(client._stub.SetSlice, req)
                return
            length = len(self)
            a, b, c = slice(start, stop, step).indices(length)
            rng = range(a, b, c)
            if len(rng) != len(buf):
                raise IndexError("mmap slice assignment is wrong size")
            if c == 1:
                self._write_at(a, buf)
                return
            lo, hi = min(rng[0], rng[-1]), max(rng[0], rng[-1]) + 1
            span = bytearray(self._read_at(lo, hi - lo))
            rel_stop: Optional[int] = b - lo
            if b - lo < 0:
                rel_stop = None
            span[a - lo : rel_stop : c] = buf
            self._write_at(lo, bytes(span))
            return
        if hasattr(type(key), "__index__"):
            i = operator.index(key)
            if not _SSIZE_MIN <= i <= _SSIZE_MAX:
                raise IndexError("cannot fit 'int' into an index-sized integer")
            if hasattr(type(value), "__index__"):
                v = operator.index(value)
                if _SSIZE_MIN <= v <= _SSIZE_MAX:
                    self._call(client._stub.SetItem, pb.SetItemRequest(handle=handle, index=i, value=v))
                    return
                self._check_index(i)
                raise TypeError("cannot fit 'int' into an index-sized integer")
            self._check_index(i)
            raise TypeError("mmap item value must be an int")
        raise TypeError("mmap indices must be integer")

    def _check_index(self, i: int) -> None:
        """CPython checks the index before the value: so must we, at the cost of a ``len``."""
        length = len(self)
        if i < 0:
            i += length
        if not 0 <= i < length:
            raise IndexError("mmap index out of range")

    def __delitem__(self, key: Union[int, slice]) -> None:
        """Always a ``TypeError``, after the checks CPython makes first."""
        self._check_valid()
        self._check_writable()
        if isinstance(key, slice):
            _unpack(key)
            raise TypeError("mmap object doesn't support slice deletion")
        if hasattr(type(key), "__index__"):
            i = operator.index(key)
            if not _SSIZE_MIN <= i <= _SSIZE_MAX:
                raise IndexError("cannot fit 'int' into an index-sized integer")
            self._check_index(i)
            raise TypeError("mmap doesn't support item deletion")
        raise TypeError("mmap indices must be integer")

    def __iter__(self) -> Iterator[bytes]:
        """Iterates as the sequence protocol does: one ``bytes`` of length 1 per byte."""
        i = 0
        while True:
            self._check_valid()
            chunk = self._read_at(i, _ITER_CHUNK)
            if not chunk:
                return
            for j in range(len(chunk)):
                yield chunk[j : j + 1]
            i += len(chunk)

    def __reversed__(self) -> Iterator[bytes]:
        """Iterates from the last byte to the first, one ``bytes`` of length 1 each."""
        end = len(self)

        def backwards() -> Iterator[bytes]:
            hi = end
            while hi > 0:
                lo = max(0, hi - _ITER_CHUNK)
                self._check_valid()
                chunk = self._read_at(lo, hi - lo)
                for j in range(len(chunk) - 1, -1, -1):
                    yield chunk[j : j + 1]
                hi = lo

        return backwards()

    # -- pipelining ----------------------------------------------------------------

    def pipeline(self) -> "Pipeline":
        """A batch of operations on this map sent in one round trip (see :class:`mmapd.Pipeline`).

        Use ``with m.pipeline() as p: p.seek(0); p.read(4)`` and read ``p.results``
        after the block, or call ``p.execute()``.
        """
        from ._pipeline import Pipeline

        self._check_valid()
        return Pipeline(self)
