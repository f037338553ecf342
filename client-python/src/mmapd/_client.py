"""The connection to an mmapd server: sessions, leases, admin calls, file management and transfer.

A :class:`Client` owns one gRPC channel and (opened at the first map) one
session, renewed from a background thread until the client is closed or the
interpreter exits. Message limits come from the server's ``GetServerInfo``.
"""

from __future__ import annotations

import atexit
import errno
import io
import operator
import os
import threading
import weakref
from typing import IO, Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc

from . import _errors
from ._errors import SessionLost
from .v1 import mmapd_pb2 as pb
from .v1 import mmapd_pb2_grpc as pb_grpc

__all__ = ["Client", "connect", "default_client", "DEFAULT_ENDPOINT", "DEFAULT_TIMEOUT"]

DEFAULT_ENDPOINT = "127.0.0.1:50051"
"""Endpoint used when neither an argument nor ``MMAPD_ENDPOINT`` names one."""

DEFAULT_TIMEOUT = 30.0
"""Seconds a unary call may take before it fails with :class:`mmapd.Timeout`."""

# A unary message carries its payload plus a few fields; keep this much of
# the server's message limit for them.
_MESSAGE_SLACK = 64 * 1024

Progress = Callable[[int, int], None]
"""A transfer progress callback: ``progress(done_bytes, total_bytes)``."""

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]

StrPath = Union[str, "os.PathLike[str]"]
"""A server path relative to its data root."""


def _read_file(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class _Session:
    """One server session and its renewal thread."""

    def __init__(self, session_id: str, ttl: int) -> None:
        self.id = session_id
        self.ttl = ttl
        self.lost = False
        self.closed = threading.Event()

    def renew_forever(self, stub: pb_grpc.MmapStub, metadata: Any, timeout: float) -> None:
        interval = max(self.ttl / 3.0, 0.1)
        while not self.closed.wait(interval):
            try:
                stub.KeepAlive(
                    pb.KeepAliveRequest(session_id=self.id),
                    timeout=min(timeout, interval),
                    metadata=metadata,
                )
                interval = max(self.ttl / 3.0, 0.1)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    self.lost = True
                    return
                # The server may be restarting: try again soon, within the lease.
                interval = max(self.ttl / 6.0, 0.1)


def _close_at_exit(ref: "weakref.ReferenceType[Client]") -> None:
    client = ref()
    if client is not None:
        client.close()


class Client:
    """A connection to one mmapd server; a context manager that closes its session.

    Prefer :func:`connect` to build one. Every method is thread-safe.
    """

    endpoint: str
    """The endpoint this client talks to."""
    timeout: float
    """Seconds a unary call may take."""
    local_root: Optional[str]
    """The local view of the server's data root (``MMAPD_LOCAL_ROOT``), for file-descriptor maps."""

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        token: Optional[str] = None,
        ca_cert: Optional[str] = None,
        cert: Optional[str] = None,
        key: Optional[str] = None,
        session_ttl: Optional[int] = None,
        timeout: Optional[float] = None,
        local_root: Optional[str] = None,
        client_name: str = "mmapd-python",
    ) -> None:
        endpoint = endpoint or os.environ.get("MMAPD_ENDPOINT") or DEFAULT_ENDPOINT
        self.endpoint = endpoint
        self.timeout = float(timeout if timeout is not None else os.environ.get("MMAPD_TIMEOUT", DEFAULT_TIMEOUT))
        self.local_root = local_root
        self._client_name = client_name
        self._session_ttl = int(session_ttl or 0)
        self._metadata: Optional[Tuple[Tuple[str, str], ...]] = (
            (("authorization", "Bearer " + token),) if token else None
        )
        target = endpoint
        secure = bool(ca_cert or cert or key)
        if endpoint.startswith("https://"):
            target, secure = endpoint[len("https://") :], True
        elif endpoint.startswith("http://"):
            if secure:
                raise ValueError(f"TLS files given with a plaintext endpoint {endpoint!r}; use https://")
            target = endpoint[len("http://") :]
        self._target = target
        self._credentials = (
            grpc.ssl_channel_credentials(_read_file(ca_cert), _read_file(key), _read_file(cert)) if secure else None
        )
        self._lock = threading.RLock()
        self._session: Optional[_Session] = None
        self._closed = False
        # Learn the message limits first, then open the channel sized for them.
        boot = self._channel([])
        try:
            info = pb_grpc.AdminStub(boot).GetServerInfo(
                pb.GetServerInfoRequest(), timeout=self.timeout, metadata=self._metadata
            )
        except grpc.RpcError as err:
            raise _errors.from_rpc_error(err) from None
        finally:
            boot.close()
        self._info = info
        limit = int(info.max_message_size) or 4 * 1024 * 1024
        self.max_message_size = limit
        """The server's message limit in bytes (from ``GetServerInfo``)."""
        self.unary_limit = max(limit - _MESSAGE_SLACK, 1024)
        """Payloads larger than this go through ``ReadStream``/``WriteStream``."""
        self.chunk_size = max(1024, min(int(info.max_chunk_size) or 4 * 1024 * 1024, self.unary_limit))
        """Bytes per stream chunk."""
        grpc_limit = limit + _MESSAGE_SLACK
        self._chan = self._channel(
            [
                ("grpc.max_send_message_length", grpc_limit),
                ("grpc.max_receive_message_length", grpc_limit),
                ("grpc.keepalive_time_ms", 30000),
                ("grpc.keepalive_timeout_ms", 10000),
            ]
        )
        self._stub = pb_grpc.MmapStub(self._chan)
        self._admin = pb_grpc.AdminStub(self._chan)
        self._files = pb_grpc.FilesStub(self._chan)
        atexit.register(_close_at_exit, weakref.ref(self))

    def _channel(self, options: Sequence[Tuple[str, Any]]) -> grpc.Channel:
        if self._credentials is not None:
            return grpc.secure_channel(self._target, self._credentials, options=list(options))
        return grpc.insecure_channel(self._target, options=list(options))

    # -- sessions ----------------------------------------------------------

    def _live_session(self) -> _Session:
        """The session new maps go to, opening one (and its renewal thread) if needed."""
        with self._lock:
            if self._closed:
                raise ValueError("mmapd client is closed")
            session = self._session
            if session is None or session.lost:
                try:
                    resp = self._stub.OpenSession(
                        pb.OpenSessionRequest(client_name=self._client_name, ttl_seconds=self._session_ttl),
                        timeout=self.timeout,
                        metadata=self._metadata,
                    )
                except grpc.RpcError as err:
                    raise _errors.from_rpc_error(err) from None
                session = _Session(resp.session_id, resp.ttl_seconds or 60)
                threading.Thread(
                    target=session.renew_forever,
                    args=(self._stub, self._metadata, self.timeout),
                    name="mmapd-lease",
                    daemon=True,
                ).start()
                self._session = session
            return session

    @property
    def session_id(self) -> Optional[str]:
        """The id of the current session, or ``None`` before the first map."""
        session = self._session
        return session.id if session is not None else None

    def _translate(self, err: grpc.RpcError, session: Optional[_Session]) -> BaseException:
        """The exception for ``err``; a handle the server forgot means a lost session if the lease agrees."""
        return self._check_lost(_errors.from_rpc_error(err), session)

    def _check_lost(self, exc: BaseException, session: Optional[_Session]) -> BaseException:
        """``exc``, or :class:`SessionLost` when it comes from a session the server no longer knows."""
        # A server that lost the session (a restart, an expired lease) no longer
        # knows the handle and calls it closed; the map is open here, so ask.
        forgotten = isinstance(exc, _errors.HandleNotFound) or (
            type(exc) is ValueError and str(exc) == "mmap closed or invalid"
        )
        if session is not None and (forgotten or isinstance(exc, SessionLost)):
            if not session.lost:
                try:
                    self._stub.KeepAlive(
                        pb.KeepAliveRequest(session_id=session.id), timeout=self.timeout, metadata=self._metadata
                    )
                except grpc.RpcError as probe:
                    if probe.code() == grpc.StatusCode.NOT_FOUND:
                        session.lost = True
            if session.lost or isinstance(exc, SessionLost):
                session.lost = True
                session.closed.set()
                return _lost(session)
        return exc

    def close(self) -> None:
        """Closes the session (and so every map of it) and the channel. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            session, self._session = self._session, None
        if session is not None:
            session.closed.set()
            if not session.lost:
                try:
                    self._stub.CloseSession(
                        pb.CloseSessionRequest(session_id=session.id),
                        timeout=min(self.timeout, 5.0),
                        metadata=self._metadata,
                    )
                except grpc.RpcError:
                    pass  # the lease ends it anyway
        self._chan.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- maps ----------------------------------------------------------------

    def mmap(self, fileno: int, length: int, flags: int = 1, prot: int = 3, access: int = 0, offset: int = 0) -> Any:
        """``mmap.mmap(fileno, length, flags, prot, access, offset)`` on this client's server.

        ``fileno=-1`` maps an anonymous region; any other descriptor is an open
        file under :attr:`local_root` (``MMAPD_LOCAL_ROOT``), mapped on the server
        at the same path relative to its data root.
        """
        from ._mmap import mmap

        return mmap(fileno, length, flags, prot, access, offset, client=self)

    def open(
        self,
        path: str,
        length: int = 0,
        *,
        access: int = 2,
        offset: int = 0,
        name: Optional[str] = None,
        create: bool = False,
    ) -> Any:
        """Maps the file at ``path`` (relative to the server's data root) and returns an :class:`mmapd.mmap`.

        ``length=0`` maps the whole file from ``offset``; ``name`` names the
        shared mapping (default: the path); ``create`` makes a missing file of
        ``offset + length`` zero bytes.
        """
        from ._mmap import mmap

        return mmap._map(self, pb.MapRequest(path=path, length=length, offset=offset, access=access, name=name or "", create=create))  # type: ignore[arg-type]

    def attach(self, name: str, access: int = 2) -> Any:
        """Joins the named mapping ``name`` (shared with every other handle of that name)."""
        from ._mmap import mmap

        return mmap._map(self, pb.MapRequest(name=name, access=access))  # type: ignore[arg-type]

    # -- admin -----------------------------------------------------------------

    def _unary(self, rpc: Any, request: Any, session: Optional[_Session] = None) -> Any:
        try:
            return rpc(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise self._translate(err, session) from None

    def server_info(self) -> pb.ServerInfo:
        """The server's version, page size, limits and counters (``Admin.GetServerInfo``)."""
        return self._unary(self._admin.GetServerInfo, pb.GetServerInfoRequest())

    def sessions(self) -> List[pb.SessionInfo]:
        """Every live session this identity may see (``Admin.ListSessions``, all pages)."""
        return self._pages(self._admin.ListSessions, pb.ListSessionsRequest, "sessions")

    def mappings(self) -> List[pb.MappingInfo]:
        """Every live mapping this identity may see (``Admin.ListMappings``, all pages)."""
        return self._pages(self._admin.ListMappings, pb.ListMappingsRequest, "mappings")

    def _pages(self, rpc: Any, request: Callable[..., Any], field: str) -> List[Any]:
        """Every item of a paged listing, following ``next_page_token``."""
        out: List[Any] = []
        token = ""
        while True:
            resp = self._unary(rpc, request(page_token=token))
            out.extend(getattr(resp, field))
            token = resp.next_page_token
            if not token:
                return out

    # -- files (the Files service: os's calls beneath the server's data root) -----

    def listdir(self, path: StrPath = "", recursive: bool = False) -> List[pb.FileEntry]:
        """The entries of the server folder ``path`` (``""`` is the root), in path order (``Files.List``, all pages).

        Like ``os.scandir``, but each :class:`FileEntry` has its ``path``
        relative to the data root, ``kind`` (``FILE_KIND_FILE``, ``_DIR``,
        ``_SYMLINK``, ``_OTHER``), ``size``, ``mtime``, ``mode``, ``mapped`` and
        ``symlink_target``. ``recursive`` lists the whole tree beneath it
        (links are listed, not followed). A file is ``NotADirectoryError``.
        """
        path, recursive = os.fspath(path), bool(recursive)
        return self._pages(
            self._files.List,
            lambda page_token: pb.ListRequest(path=path, recursive=recursive, page_token=page_token),
            "entries",
        )

    def stat(self, path: StrPath) -> pb.FileEntry:
        """The :class:`FileEntry` of the server path ``path`` (``Files.StatPath``; like ``os.stat``, links are followed)."""
        return self._unary(self._files.StatPath, pb.StatPathRequest(path=os.fspath(path)))

    def mkdir(self, path: StrPath, parents: bool = False) -> bool:
        """Makes the server folder ``path`` (``Files.MakeDir``): ``os.mkdir``, or with ``parents``
        ``os.makedirs(path, exist_ok=True)``. Returns whether it was made (``False``: it existed).
        """
        resp = self._unary(self._files.MakeDir, pb.MakeDirRequest(path=os.fspath(path), parents=bool(parents)))
        return bool(resp.created)

    def remove(self, path: StrPath, recursive: bool = False) -> int:
        """Removes a server file, symlink or empty folder (``Files.Remove``: ``os.remove``/``os.rmdir``),
        or with ``recursive`` a whole tree (``shutil.rmtree``). Returns how many entries went.

        A file a live mapping uses is refused with :class:`MappingBusy`.
        """
        resp = self._unary(self._files.Remove, pb.RemoveRequest(path=os.fspath(path), recursive=bool(recursive)))
        return int(resp.removed)

    def rename(self, src: StrPath, dst: StrPath, replace: bool = False) -> None:
        """Renames the server path ``src`` to ``dst`` (``Files.Rename``): ``os.rename`` refusing an
        existing ``dst`` with ``FileExistsError``, or ``os.replace`` with ``replace``.
        """
        # `from` is a Python keyword, so the request is built from a dict.
        fields = {"from": os.fspath(src), "to": os.fspath(dst), "replace": bool(replace)}
        self._unary(self._files.Rename, pb.RenameRequest(**fields))

    def truncate(self, path: StrPath, size: int, create: bool = False) -> pb.FileEntry:
        """Sets the size of the server file ``path`` (``Files.Truncate``, like ``os.truncate``); with
        ``create`` a missing file (and its folders) is made first. Returns its new :class:`FileEntry`.
        """
        # operator.index: a float or a str is a TypeError, as in os.truncate.
        path, size = os.fspath(path), operator.index(size)
        if size < 0:
            # What os.truncate says; the request's size is unsigned.
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        return self._unary(self._files.Truncate, pb.TruncateRequest(path=path, size=size, create=bool(create)))

    def touch(self, path: StrPath) -> pb.FileEntry:
        """Makes ``path`` an empty file (and its folders) if it does not exist, in one call; an existing
        file is left as it is, so a file another client made a moment ago is never cut (like
        ``open(path, O_CREAT)``). Returns its :class:`FileEntry`.
        """
        request = pb.TruncateRequest(path=os.fspath(path), size=0, create=True, keep_existing=True)
        return self._unary(self._files.Truncate, request)

    # -- streams -----------------------------------------------------------------

    def _stream_timeout(self, nbytes: int) -> float:
        # Large transfers get time in proportion, at a pessimistic 4 MiB/s.
        return self.timeout + nbytes / (4 * 1024 * 1024)

    def _read_stream(
        self,
        session: _Session,
        handle: str,
        offset: Optional[int],
        length: int,
        sink: Optional[Callable[[bytes], None]] = None,
        progress: Optional[Progress] = None,
    ) -> bytes:
        req = pb.ReadStreamRequest(handle=handle, length=length, chunk_size=self.chunk_size)
        if offset is not None:
            req.offset = offset
        out = bytearray()
        done = 0
        try:
            for chunk in self._stub.ReadStream(req, timeout=self._stream_timeout(length), metadata=self._metadata):
                if sink is not None:
                    sink(chunk.data)
                else:
                    out += chunk.data
                done += len(chunk.data)
                if progress is not None:
                    progress(done, length)
        except grpc.RpcError as err:
            raise self._translate(err, session) from None
        return bytes(out)

    def _write_stream(
        self,
        session: _Session,
        handle: str,
        offset: Optional[int],
        chunks: Iterator[bytes],
        total: int,
        progress: Optional[Progress] = None,
    ) -> int:
        def requests() -> Iterator[pb.WriteChunk]:
            first = True
            done = 0
            for data in chunks:
                if first:
                    msg = pb.WriteChunk(handle=handle, data=data)
                    if offset is not None:
                        msg.offset = offset
                    first = False
                else:
                    msg = pb.WriteChunk(data=data)
                yield msg
                done += len(data)
                if progress is not None:
                    progress(done, total)
            if first:
                msg = pb.WriteChunk(handle=handle)
                if offset is not None:
                    msg.offset = offset
                yield msg

        try:
            resp = self._stub.WriteStream(requests(), timeout=self._stream_timeout(total), metadata=self._metadata)
        except grpc.RpcError as err:
            raise self._translate(err, session) from None
        return int(resp.written)

    def _chunks(self, data: Union[bytes, memoryview]) -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), self.chunk_size):
            yield bytes(view[start : start + self.chunk_size])

    def download(self, path: str, local_file: PathOrFile, *, progress: Optional[Progress] = None) -> int:
        """Streams the server file ``path`` into ``local_file`` (a path or a binary file object).

        Returns the number of bytes copied; ``progress(done, total)`` is called after each chunk.
        """
        from ._mmap import mmap

        m = mmap._map(self, pb.MapRequest(path=path, access=pb.ACCESS_READ))
        try:
            total = len(m)
            if isinstance(local_file, (str, bytes, os.PathLike)):
                with open(local_file, "wb") as f:
                    self._read_stream(m._session, m._handle, 0, total, f.write, progress)  # type: ignore[arg-type]
            else:
                self._read_stream(m._session, m._handle, 0, total, local_file.write, progress)  # type: ignore[arg-type]
            return total
        finally:
            m.close()

    def upload(
        self, local_file: PathOrFile, path: str, create: bool = False, *, progress: Optional[Progress] = None
    ) -> int:
        """Streams ``local_file`` (a path or a binary file object) into the server file ``path``.

        The server file ends up exactly as long as the upload; ``create`` makes
        it if it is missing. Returns the number of bytes written.
        """
        from ._mmap import mmap

        if isinstance(local_file, (str, bytes, os.PathLike)):
            with open(local_file, "rb") as f:
                data = f.read()
        else:
            data = local_file.read()
        size = len(data)
        if size == 0:
            raise ValueError("cannot upload an empty file (mmap cannot map zero bytes)")
        try:
            m = mmap._map(self, pb.MapRequest(path=path, length=size, access=pb.ACCESS_WRITE, create=create))
        except ValueError:
            # The file exists but is shorter: map all of it and grow it.
            m = mmap._map(self, pb.MapRequest(path=path, access=pb.ACCESS_WRITE))
            m.resize(size)
        try:
            if m.size() != size:
                m.resize(size)
            return self._write_stream(m._session, m._check_valid(), 0, self._chunks(data), size, progress)
        finally:
            m.close()


def _lost(session: _Session) -> SessionLost:
    return SessionLost(
        f"mmapd session {session.id} was lost (server restart or expired lease); map again",
        code=grpc.StatusCode.NOT_FOUND,
        reason="SESSION_NOT_FOUND",
        metadata={"session_id": session.id},
    )


def connect(
    endpoint: Optional[str] = None,
    *,
    token: Optional[str] = None,
    ca_cert: Optional[str] = None,
    cert: Optional[str] = None,
    key: Optional[str] = None,
    session_ttl: Optional[int] = None,
    timeout: Optional[float] = None,
    local_root: Optional[str] = None,
) -> Client:
    """Connects to an mmapd server and returns a :class:`Client`.

    ``endpoint`` defaults to ``MMAPD_ENDPOINT`` (else ``127.0.0.1:50051``); an
    ``https://`` endpoint or any TLS file means TLS. ``token`` is sent as
    ``authorization: Bearer``; ``ca_cert``, ``cert`` and ``key`` are PEM file
    paths (``cert``/``key`` for mTLS). ``session_ttl`` is the lease in seconds
    (0 or ``None``: the server's default).
    """
    return Client(
        endpoint,
        token=token,
        ca_cert=ca_cert,
        cert=cert,
        key=key,
        session_ttl=session_ttl,
        timeout=timeout,
        local_root=local_root,
    )


_default: Optional[Client] = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The lazily created client that :class:`mmapd.mmap` uses when given none.

    It is configured from the environment: ``MMAPD_ENDPOINT``, ``MMAPD_TOKEN``,
    ``MMAPD_CA_CERT``, ``MMAPD_CERT``, ``MMAPD_KEY``, ``MMAPD_SESSION_TTL``,
    ``MMAPD_TIMEOUT`` and ``MMAPD_LOCAL_ROOT``.
    """
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            env = os.environ.get
            ttl = env("MMAPD_SESSION_TTL")
            _default = Client(
                env("MMAPD_ENDPOINT"),
                token=env("MMAPD_TOKEN"),
                ca_cert=env("MMAPD_CA_CERT"),
                cert=env("MMAPD_CERT"),
                key=env("MMAPD_KEY"),
                session_ttl=int(ttl) if ttl else None,
            )
        return _default
