"""Exceptions of the mmapd client and the translation of gRPC statuses into them.

The server names, in each status's single ``google.rpc.ErrorInfo``, the Python
exception CPython would raise; this module raises exactly that class with the
server's (CPython's) message. Conditions that have no CPython counterpart
(a lost session, a quota, a refused credential, a dead server) raise
:class:`Error` subclasses, which also derive from the builtin class the server
names so that ``except OSError`` keeps working around them.
"""

from __future__ import annotations

import builtins
import os
from typing import Dict, Mapping, Optional, Tuple, Type

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "Error",
    "SessionLost",
    "HandleNotFound",
    "QuotaExceeded",
    "AccessDenied",
    "Unauthenticated",
    "Unavailable",
    "Timeout",
    "MessageTooLarge",
    "MappingNotFound",
    "MappingConflict",
    "MappingBroken",
    "MappingBusy",
    "PathEscape",
    "InvalidRequest",
    "Unimplemented",
    "ServerError",
    "NotUnderRoot",
]

DOMAIN = "mmapd"


class Error(Exception):
    """Base class of the server-level conditions that CPython's mmap never raises.

    Attributes:
        code: the gRPC status code of the failed call (``None`` when the client
            raised it on its own).
        reason: the ``ErrorInfo.reason`` (for example ``"QUOTA_EXCEEDED"``), or a
            client-side reason such as ``"UNAVAILABLE"``.
        metadata: the ``ErrorInfo.metadata`` (for example ``{"limit": ..., "value": ...}``).
    """

    code: Optional[grpc.StatusCode]
    reason: str
    metadata: Dict[str, str]

    def __init__(
        self,
        message: str = "",
        *,
        code: Optional[grpc.StatusCode] = None,
        reason: str = "",
        metadata: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})


class SessionLost(Error, OSError):
    """The client's session is gone (the server restarted or the lease ran out); its maps are invalid."""


class HandleNotFound(Error, ValueError):
    """The handle is unknown to the server or belongs to another identity."""


class QuotaExceeded(Error, OSError):
    """A server limit refused the request; ``metadata["limit"]`` names it, ``metadata["value"]`` its value."""


class AccessDenied(Error, PermissionError):
    """The identity's role or paths do not allow the call (``ACCESS_DENIED``)."""


class Unauthenticated(Error, PermissionError):
    """The server requires a credential and the call had no valid one."""


class Unavailable(Error, ConnectionError):
    """The server could not be reached, or went away during the call."""


class Timeout(Unavailable, TimeoutError):
    """The call did not finish within its timeout."""


class MessageTooLarge(Error, MemoryError):
    """A message exceeded the gRPC message limit (``MESSAGE_TOO_LARGE``)."""


class MappingNotFound(Error, FileNotFoundError):
    """No mapping has the name given to :meth:`Client.attach`."""


class MappingConflict(Error, ValueError):
    """A mapping of that name exists with another path, offset or length."""


class _ServerOSError(Error, OSError):
    """A server-level condition that is also an ``OSError`` with an errno (and a path): it
    prints as the server's message, which says more than ``[Errno N] strerror: 'path'``.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MappingBroken(_ServerOSError):
    """The file under the mapping was truncated outside mmapd (``MAPPING_BROKEN``, errno 5)."""


class MappingBusy(_ServerOSError):
    """A file removal, rename or shrink refused because a live mapping uses the file
    (``MAPPING_BUSY``, errno 16); ``metadata["name"]`` names the mapping.
    """


class PathEscape(_ServerOSError, PermissionError):
    """A path, or a symlink on it, leads outside the server's data root (``PATH_ESCAPE``,
    errno 13, ``filename`` the path as given).
    """


class InvalidRequest(Error, ValueError):
    """The server refused a malformed request (``INVALID_REQUEST``)."""


class Unimplemented(Error, NotImplementedError):
    """The server does not implement the call."""


class ServerError(Error, SystemError):
    """A server bug (``INTERNAL``); the server keeps serving."""


class NotUnderRoot(Error, ValueError):
    """A file descriptor given to :class:`mmapd.mmap` names a file outside ``MMAPD_LOCAL_ROOT``."""


_BY_REASON: Dict[str, Type[Error]] = {
    "SESSION_NOT_FOUND": SessionLost,
    "HANDLE_NOT_FOUND": HandleNotFound,
    "QUOTA_EXCEEDED": QuotaExceeded,
    "ACCESS_DENIED": AccessDenied,
    "UNAUTHENTICATED": Unauthenticated,
    "MESSAGE_TOO_LARGE": MessageTooLarge,
    "MAPPING_NOT_FOUND": MappingNotFound,
    "MAPPING_CONFLICT": MappingConflict,
    "MAPPING_BROKEN": MappingBroken,
    "MAPPING_BUSY": MappingBusy,
    "PATH_ESCAPE": PathEscape,
    "INVALID_REQUEST": InvalidRequest,
    "UNIMPLEMENTED": Unimplemented,
    "INTERNAL": ServerError,
}

_BY_CODE: Dict[grpc.StatusCode, Type[Error]] = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.RESOURCE_EXHAUSTED: MessageTooLarge,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: AccessDenied,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: ServerError,
}

_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _error_info(details: "status_pb2.Status") -> Optional[error_details_pb2.ErrorInfo]:
    for any_ in details.details:
        if any_.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_.Unpack(info)
            return info
    return None


def _python_error(name: str, message: str, metadata: Mapping[str, str]) -> Optional[BaseException]:
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return None
    if issubclass(cls, OSError):
        errno_text = metadata.get("errno", "")
        if errno_text.lstrip("-").isdigit():
            errno = int(errno_text)
            path, path2 = metadata.get("path"), metadata.get("path2")
            # The server quotes paths as they are ('...'), where Python's
            # repr may escape them; either spelling names the path.
            def quoted(p: str) -> Tuple[str, str]:
                return (f"'{p}'", repr(p))

            if path is not None and path2 is not None and any(
                message.endswith(f": {a} -> {b}") for a, b in zip(quoted(path), quoted(path2))
            ):
                # A rename names both paths, as os.rename's OSError does.
                return cls(errno, os.strerror(errno), path, None, path2)
            if path is not None and any(message.endswith(": " + q) for q in quoted(path)):
                return cls(errno, os.strerror(errno), path)
            return cls(errno, os.strerror(errno))
    return cls(message)


def from_status(
    code: grpc.StatusCode, message: str, info: Optional[error_details_pb2.ErrorInfo]
) -> BaseException:
    """The exception for a failed call: ``code``, ``message`` and its ``ErrorInfo`` (if any)."""
    if info is not None and info.domain == DOMAIN:
        metadata = dict(info.metadata)
        server_cls = _BY_REASON.get(info.reason)
        if server_cls is not None:
            err: BaseException = server_cls(message, code=code, reason=info.reason, metadata=metadata)
            if isinstance(err, _ServerOSError):
                errno = int(metadata.get("errno", "0") or 0) or None
                err.errno = errno  # type: ignore[attr-defined]
                err.strerror = os.strerror(errno) if errno else None  # type: ignore[attr-defined]
                err.filename = metadata.get("path")  # type: ignore[attr-defined]
            return err
        py = _python_error(metadata.get("exception", ""), message, metadata)
        if py is not None:
            return py
        return Error(message, code=code, reason=info.reason, metadata=metadata)
    cls = _BY_CODE.get(code, Error)
    return cls(message or code.name, code=code, reason=code.name)


def from_rpc_error(err: grpc.RpcError) -> BaseException:
    """The exception for a ``grpc.RpcError`` raised by a call."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    message = (err.details() if hasattr(err, "details") else "") or ""  # type: ignore[attr-defined]
    info = None
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None  # type: ignore[attr-defined]
    for key, value in trailers or ():
        if key == "grpc-status-details-bin":
            try:
                info = _error_info(status_pb2.Status.FromString(value))
            except Exception:  # a garbled trailer is reported by the code alone
                info = None
    return from_status(code, message, info)


def from_status_proto(status: "status_pb2.Status") -> BaseException:
    """The exception for a ``google.rpc.Status`` (a failed Pipeline op)."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    return from_status(code, status.message, _error_info(status))
