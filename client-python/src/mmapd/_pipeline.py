"""Pipelines: many operations on one map in one round trip (the ``Pipeline`` RPC).

Like a redis-py pipeline (not a transaction): the operations are queued
locally, sent together, run on the server one after another in order, and a
failed one does not stop the others. Results come back in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

import grpc

from . import _errors
from ._mmap import _MISSING, _buffer, _cint, _index, _slice_request, _ssize, _unpack
from .v1 import mmapd_pb2 as pb

if TYPE_CHECKING:
    from ._mmap import mmap

__all__ = ["Pipeline"]

_Convert = Callable[[Any], Any]


def _none(_: Any) -> None:
    return None


class Pipeline:
    """A batch of operations on one :class:`mmapd.mmap`, sent in one round trip.

    Each method queues the operation of the ``mmap`` method of the same name
    (arguments are checked at once, as the method checks them) and returns the
    pipeline, so calls chain. :meth:`execute` sends the batch and returns one
    result per operation, as the method would have returned it. As a context
    manager the batch is executed when the block ends without an exception;
    the results are then in :attr:`results`.
    """

    results: Optional[List[Any]]
    """The results of the last :meth:`execute`, or ``None`` before it."""

    def __init__(self, m: "mmap") -> None:
        self._map = m
        self._ops: List[Tuple[pb.Op, str, _Convert]] = []
        self.results = None

    def __len__(self) -> int:
        return len(self._ops)

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None and self._ops:
            self.execute()

    def _add(self, field: str, request: Any, convert: _Convert) -> "Pipeline":
        op = pb.Op()
        getattr(op, field).CopyFrom(request)
        self._ops.append((op, field, convert))
        return self

    @property
    def _h(self) -> str:
        return self._map._check_valid()

    def read(self, n: Optional[int] = None) -> "Pipeline":
        """Queues ``m.read([n])``; its result is the bytes read."""
        req = pb.ReadRequest(handle=self._h)
        if n is not None:
            if not hasattr(type(n), "__index__"):
                raise TypeError(f"argument should be integer or None, not '{type(n).__name__}'")
            req.n = _ssize(n)
        return self._add("read", req, lambda r: r.data)

    def read_byte(self) -> "Pipeline":
        """Queues ``m.read_byte()``."""
        return self._add("read_byte", pb.ReadByteRequest(handle=self._h), lambda r: int(r.value))

    def readline(self) -> "Pipeline":
        """Queues ``m.readline()``."""
        return self._add("read_line", pb.ReadLineRequest(handle=self._h), lambda r: r.data)

    def write(self, data: Any) -> "Pipeline":
        """Queues ``m.write(data)``; its result is the number of bytes written."""
        return self._add("write", pb.WriteRequest(handle=self._h, data=_buffer(data)), lambda r: int(r.written))

    def write_byte(self, byte: int) -> "Pipeline":
        """Queues ``m.write_byte(byte)``."""
        h = self._h
        value = _index(byte)
        if value < 0:
            raise OverflowError("unsigned byte integer is less than minimum")
        if value > 255:
            raise OverflowError("unsigned byte integer is greater than maximum")
        return self._add("write_byte", pb.WriteByteRequest(handle=h, value=value), _none)

    def seek(self, pos: int, whence: int = 0) -> "Pipeline":
        """Queues ``m.seek(pos, whence)``; its result is ``None`` (the position from Python 3.13 on)."""
        from ._mmap import _RETURNS_POSITION

        req = pb.SeekRequest(handle=self._h, pos=_ssize(pos), whence=_cint(whence))  # type: ignore[arg-type]
        return self._add("seek", req, (lambda r: int(r.position)) if _RETURNS_POSITION else _none)

    def tell(self) -> "Pipeline":
        """Queues ``m.tell()``."""
        return self._add("tell", pb.TellRequest(handle=self._h), lambda r: int(r.position))

    def size(self) -> "Pipeline":
        """Queues ``m.size()``."""
        return self._add("size", pb.SizeRequest(handle=self._h), lambda r: int(r.size))

    def len(self) -> "Pipeline":
        """Queues ``len(m)``."""
        return self._add("len", pb.LenRequest(handle=self._h), lambda r: int(r.length))

    def _find(self, field: str, sub: Any, start: Any, end: Any) -> "Pipeline":
        req = pb.FindRequest(handle=self._h, sub=_buffer(sub))
        if start is not _MISSING:
            req.start = _ssize(start)
        if end is not _MISSING:
            req.end = _ssize(end)
        return self._add(field, req, lambda r: int(r.index))

    def find(self, sub: Any, start: int = _MISSING, end: int = _MISSING) -> "Pipeline":
        """Queues ``m.find(sub[, start[, end]])``."""
        return self._find("find", sub, start, end)

    def rfind(self, sub: Any, start: int = _MISSING, end: int = _MISSING) -> "Pipeline":
        """Queues ``m.rfind(sub[, start[, end]])``."""
        return self._find("rfind", sub, start, end)

    def flush(self, offset: int = 0, size: int = _MISSING) -> "Pipeline":
        """Queues ``m.flush([offset[, size]])``."""
        req = pb.FlushRequest(handle=self._h, offset=_ssize(offset))
        if size is not _MISSING:
            req.size = _ssize(size)
        return self._add("flush", req, _none)

    def move(self, dest: int, src: int, count: int) -> "Pipeline":
        """Queues ``m.move(dest, src, count)``."""
        req = pb.MoveRequest(handle=self._h, dest=_ssize(dest), src=_ssize(src), count=_ssize(count))
        return self._add("move", req, _none)

    def resize(self, newsize: int) -> "Pipeline":
        """Queues ``m.resize(newsize)``."""
        return self._add("resize", pb.ResizeRequest(handle=self._h, new_size=_ssize(newsize)), _none)

    def madvise(self, option: int, start: int = 0, length: int = _MISSING) -> "Pipeline":
        """Queues ``m.madvise(option[, start[, length]])``."""
        req = pb.MadviseRequest(handle=self._h, option=_cint(option), start=_ssize(start))  # type: ignore[arg-type]
        if length is not _MISSING:
            req.length = _ssize(length)
        return self._add("madvise", req, _none)

    def getitem(self, index: int) -> "Pipeline":
        """Queues ``m[index]`` (an int)."""
        req = pb.GetItemRequest(handle=self._h, index=_ssize(index))
        return self._add("get_item", req, lambda r: int(r.value))

    def setitem(self, index: int, value: int) -> "Pipeline":
        """Queues ``m[index] = value``."""
        req = pb.SetItemRequest(handle=self._h, index=_ssize(index), value=_ssize(value))
        return self._add("set_item", req, _none)

    def getslice(self, start: Optional[int] = None, stop: Optional[int] = None, step: Optional[int] = None) -> "Pipeline":
        """Queues ``m[start:stop:step]`` (bytes; the reply must fit one message)."""
        a, b, c = _unpack(slice(start, stop, step))
        return self._add("get_slice", _slice_request(pb.GetSliceRequest, self._h, a, b, c), lambda r: r.data)

    def setslice(self, start: Optional[int], stop: Optional[int], step: Optional[int], data: Any) -> "Pipeline":
        """Queues ``m[start:stop:step] = data``."""
        a, b, c = _unpack(slice(start, stop, step))
        req = _slice_request(pb.SetSliceRequest, self._h, a, b, c, data=_buffer(data))
        return self._add("set_slice", req, _none)

    def execute(self, raise_on_error: bool = True) -> List[Any]:
        """Sends the queued operations and returns their results, in order.

        A failed operation's result is its exception; with ``raise_on_error``
        (the default) the first one is raised after every result is in
        :attr:`results`. The queue is emptied either way.
        """
        ops, self._ops = self._ops, []
        if not ops:
            self.results = []
            return []
        m = self._map
        client = m._client
        request = pb.PipelineRequest(ops=[op for op, _, _ in ops])
        try:
            responses = client._stub.Pipeline(iter([request]), timeout=client.timeout, metadata=client._metadata)
            response = next(iter(responses))
            responses.cancel()
        except grpc.RpcError as err:
            raise client._translate(err, m._session) from None
        results: List[Any] = []
        first_error: Optional[BaseException] = None
        for (_, field, convert), result in zip(ops, response.results):
            kind = result.WhichOneof("result")
            if kind == "error":
                exc = _errors.from_status_proto(result.error)
                if isinstance(exc, (_errors.HandleNotFound, _errors.SessionLost)):
                    exc = client._check_lost(exc, m._session)
                results.append(exc)
                first_error = first_error or exc
            else:
                results.append(convert(getattr(result, field)))
        self.results = results
        if raise_on_error and first_error is not None:
            raise first_error
        return results
