"""mmapd: CPython's ``mmap.mmap`` on a remote mmapd server, over gRPC.

Drop-in use::

    import mmapd as mmap          # MMAPD_ENDPOINT, MMAPD_LOCAL_ROOT from the environment
    m = mmap.mmap(-1, 4096)       # an anonymous region on the server
    m[0:5] = b"hello"

Explicit use: :func:`connect` returns a :class:`Client` with ``mmap``,
``open``, ``attach``, ``upload``, ``download``, the file calls (``listdir``,
``stat``, ``mkdir``, ``remove``, ``rename``, ``truncate``) and the admin calls.
"""

from __future__ import annotations

import mmap as _local

from . import _errors
from ._client import DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, Client, connect, default_client
from ._errors import (
    AccessDenied,
    Error,
    HandleNotFound,
    InvalidRequest,
    MappingBroken,
    MappingBusy,
    MappingConflict,
    MappingNotFound,
    MessageTooLarge,
    NotUnderRoot,
    PathEscape,
    QuotaExceeded,
    ServerError,
    SessionLost,
    Timeout,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from ._mmap import mmap
from ._pipeline import Pipeline
from .v1.mmapd_pb2 import (
    FILE_KIND_DIR,
    FILE_KIND_FILE,
    FILE_KIND_OTHER,
    FILE_KIND_SYMLINK,
    FileEntry,
)

__version__ = "0.1.0"

# The constants of the local mmap module, with its values (the server is Linux too).
_CONSTANTS = [
    name
    for name in dir(_local)
    if name.startswith(("ACCESS_", "MADV_", "MAP_", "PROT_")) or name in ("PAGESIZE", "ALLOCATIONGRANULARITY")
]
globals().update({name: getattr(_local, name) for name in _CONSTANTS})

__all__ = [
    "mmap",
    "connect",
    "Client",
    "Pipeline",
    "default_client",
    "DEFAULT_ENDPOINT",
    "DEFAULT_TIMEOUT",
    "FileEntry",
    "FILE_KIND_FILE",
    "FILE_KIND_DIR",
    "FILE_KIND_SYMLINK",
    "FILE_KIND_OTHER",
    *_errors.__all__,
    *_CONSTANTS,
]
