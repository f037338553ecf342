from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Access(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_DEFAULT: _ClassVar[Access]
    ACCESS_READ: _ClassVar[Access]
    ACCESS_WRITE: _ClassVar[Access]
    ACCESS_COPY: _ClassVar[Access]

class Whence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WHENCE_SET: _ClassVar[Whence]
    WHENCE_CUR: _ClassVar[Whence]
    WHENCE_END: _ClassVar[Whence]

class Advice(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MADV_NORMAL: _ClassVar[Advice]
    MADV_RANDOM: _ClassVar[Advice]
    MADV_SEQUENTIAL: _ClassVar[Advice]
    MADV_WILLNEED: _ClassVar[Advice]
    MADV_DONTNEED: _ClassVar[Advice]
    MADV_FREE: _ClassVar[Advice]
    MADV_REMOVE: _ClassVar[Advice]
    MADV_DONTFORK: _ClassVar[Advice]
    MADV_DOFORK: _ClassVar[Advice]
    MADV_MERGEABLE: _ClassVar[Advice]
    MADV_UNMERGEABLE: _ClassVar[Advice]
    MADV_HUGEPAGE: _ClassVar[Advice]
    MADV_NOHUGEPAGE: _ClassVar[Advice]
    MADV_DONTDUMP: _ClassVar[Advice]
    MADV_DODUMP: _ClassVar[Advice]

class FileKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_KIND_UNSPECIFIED: _ClassVar[FileKind]
    FILE_KIND_FILE: _ClassVar[FileKind]
    FILE_KIND_DIR: _ClassVar[FileKind]
    FILE_KIND_SYMLINK: _ClassVar[FileKind]
    FILE_KIND_OTHER: _ClassVar[FileKind]
ACCESS_DEFAULT: Access
ACCESS_READ: Access
ACCESS_WRITE: Access
ACCESS_COPY: Access
WHENCE_SET: Whence
WHENCE_CUR: Whence
WHENCE_END: Whence
MADV_NORMAL: Advice
MADV_RANDOM: Advice
MADV_SEQUENTIAL: Advice
MADV_WILLNEED: Advice
MADV_DONTNEED: Advice
MADV_FREE: Advice
MADV_REMOVE: Advice
MADV_DONTFORK: Advice
MADV_DOFORK: Advice
MADV_MERGEABLE: Advice
MADV_UNMERGEABLE: Advice
MADV_HUGEPAGE: Advice
MADV_NOHUGEPAGE: Advice
MADV_DONTDUMP: Advice
MADV_DODUMP: Advice
FILE_KIND_UNSPECIFIED: FileKind
FILE_KIND_FILE: FileKind
FILE_KIND_DIR: FileKind
FILE_KIND_SYMLINK: FileKind
FILE_KIND_OTHER: FileKind

class FileEntry(_message.Message):
    __slots__ = ("path", "kind", "size", "mtime", "mapped", "mode", "symlink_target")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    MAPPED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SYMLINK_TARGET_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: FileKind
    size: int
    mtime: _timestamp_pb2.Timestamp
    mapped: bool
    mode: int
    symlink_target: str
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[_Union[FileKind, str]] = ..., size: _Optional[int] = ..., mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., mapped: bool = ..., mode: _Optional[int] = ..., symlink_target: _Optional[str] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("path", "recursive", "page_size", "page_token")
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    path: str
    recursive: bool
    page_size: int
    page_token: str
    def __init__(self, path: _Optional[str] = ..., recursive: bool = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[FileEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[FileEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StatPathRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class MakeDirRequest(_message.Message):
    __slots__ = ("path", "parents")
    PATH_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    path: str
    parents: bool
    def __init__(self, path: _Optional[str] = ..., parents: bool = ...) -> None: ...

class MakeDirResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: bool
    def __init__(self, created: bool = ...) -> None: ...

class RemoveRequest(_message.Message):
    __slots__ = ("path", "recursive")
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    path: str
    recursive: bool
    def __init__(self, path: _Optional[str] = ..., recursive: bool = ...) -> None: ...

class RemoveResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class RenameRequest(_message.Message):
    __slots__ = ("to", "replace")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    to: str
    replace: bool
    def __init__(self, to: _Optional[str] = ..., replace: bool = ..., **kwargs) -> None: ...

class RenameResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TruncateRequest(_message.Message):
    __slots__ = ("path", "size", "create", "keep_existing")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    KEEP_EXISTING_FIELD_NUMBER: _ClassVar[int]
    path: str
    size: int
    create: bool
    keep_existing: bool
    def __init__(self, path: _Optional[str] = ..., size: _Optional[int] = ..., create: bool = ..., keep_existing: bool = ...) -> None: ...

class OpenSessionRequest(_message.Message):
    __slots__ = ("client_name", "ttl_seconds")
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    client_name: str
    ttl_seconds: int
    def __init__(self, client_name: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class OpenSessionResponse(_message.Message):
    __slots__ = ("session_id", "ttl_seconds")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    ttl_seconds: int
    def __init__(self, session_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class KeepAliveRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class KeepAliveResponse(_message.Message):
    __slots__ = ("ttl_seconds",)
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ttl_seconds: int
    def __init__(self, ttl_seconds: _Optional[int] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MapRequest(_message.Message):
    __slots__ = ("session_id", "path", "length", "offset", "access", "name", "create")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    path: str
    length: int
    offset: int
    access: Access
    name: str
    create: bool
    def __init__(self, session_id: _Optional[str] = ..., path: _Optional[str] = ..., length: _Optional[int] = ..., offset: _Optional[int] = ..., access: _Optional[_Union[Access, str]] = ..., name: _Optional[str] = ..., create: bool = ...) -> None: ...

class MapResponse(_message.Message):
    __slots__ = ("handle", "length", "size", "access", "name")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    handle: str
    length: int
    size: int
    access: Access
    name: str
    def __init__(self, handle: _Optional[str] = ..., length: _Optional[int] = ..., size: _Optional[int] = ..., access: _Optional[_Union[Access, str]] = ..., name: _Optional[str] = ...) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class CloseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatRequest(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class StatResponse(_message.Message):
    __slots__ = ("length", "size", "position", "access", "name", "path", "offset")
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    length: int
    size: int
    position: int
    access: Access
    name: str
    path: str
    offset: int
    def __init__(self, length: _Optional[int] = ..., size: _Optional[int] = ..., position: _Optional[int] = ..., access: _Optional[_Union[Access, str]] = ..., name: _Optional[str] = ..., path: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("handle", "n")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    handle: str
    n: int
    def __init__(self, handle: _Optional[str] = ..., n: _Optional[int] = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ReadByteRequest(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class ReadByteResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class ReadLineRequest(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class ReadLineResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class WriteRequest(_message.Message):
    __slots__ = ("handle", "data")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    handle: str
    data: bytes
    def __init__(self, handle: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("written",)
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    written: int
    def __init__(self, written: _Optional[int] = ...) -> None: ...

class WriteByteRequest(_message.Message):
    __slots__ = ("handle", "value")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    value: int
    def __init__(self, handle: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...

class WriteByteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SeekRequest(_message.Message):
    __slots__ = ("handle", "pos", "whence")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    POS_FIELD_NUMBER: _ClassVar[int]
    WHENCE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    pos: int
    whence: Whence
    def __init__(self, handle: _Optional[str] = ..., pos: _Optional[int] = ..., whence: _Optional[_Union[Whence, str]] = ...) -> None: ...

class SeekResponse(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class TellRequest(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class TellResponse(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class SizeRequest(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class SizeResponse(_message.Message):
    __slots__ = ("size",)
    SIZE_FIELD_NUMBER: _ClassVar[int]
    size: int
    def __init__(self, size: _Optional[int] = ...) -> None: ...

class LenRequest(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class LenResponse(_message.Message):
    __slots__ = ("length",)
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    length: int
    def __init__(self, length: _Optional[int] = ...) -> None: ...

class FindRequest(_message.Message):
    __slots__ = ("handle", "sub", "start", "end")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    SUB_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    handle: str
    sub: bytes
    start: int
    end: int
    def __init__(self, handle: _Optional[str] = ..., sub: _Optional[bytes] = ..., start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class FindResponse(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    def __init__(self, index: _Optional[int] = ...) -> None: ...

class FlushRequest(_message.Message):
    __slots__ = ("handle", "offset", "size")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    offset: int
    size: int
    def __init__(self, handle: _Optional[str] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class FlushResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MoveRequest(_message.Message):
    __slots__ = ("handle", "dest", "src", "count")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DEST_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    handle: str
    dest: int
    src: int
    count: int
    def __init__(self, handle: _Optional[str] = ..., dest: _Optional[int] = ..., src: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class MoveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResizeRequest(_message.Message):
    __slots__ = ("handle", "new_size")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    new_size: int
    def __init__(self, handle: _Optional[str] = ..., new_size: _Optional[int] = ...) -> None: ...

class ResizeResponse(_message.Message):
    __slots__ = ("length",)
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    length: int
    def __init__(self, length: _Optional[int] = ...) -> None: ...

class MadviseRequest(_message.Message):
    __slots__ = ("handle", "option", "start", "length")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    OPTION_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    handle: str
    option: Advice
    start: int
    length: int
    def __init__(self, handle: _Optional[str] = ..., option: _Optional[_Union[Advice, str]] = ..., start: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class MadviseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetItemRequest(_message.Message):
    __slots__ = ("handle", "index")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    handle: str
    index: int
    def __init__(self, handle: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class GetItemResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class SetItemRequest(_message.Message):
    __slots__ = ("handle", "index", "value")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    index: int
    value: int
    def __init__(self, handle: _Optional[str] = ..., index: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...

class SetItemResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSliceRequest(_message.Message):
    __slots__ = ("handle", "start", "stop", "step")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    handle: str
    start: int
    stop: int
    step: int
    def __init__(self, handle: _Optional[str] = ..., start: _Optional[int] = ..., stop: _Optional[int] = ..., step: _Optional[int] = ...) -> None: ...

class GetSliceResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class SetSliceRequest(_message.Message):
    __slots__ = ("handle", "start", "stop", "step", "data")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    handle: str
    start: int
    stop: int
    step: int
    data: bytes
    def __init__(self, handle: _Optional[str] = ..., start: _Optional[int] = ..., stop: _Optional[int] = ..., step: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class SetSliceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadStreamRequest(_message.Message):
    __slots__ = ("handle", "offset", "length", "chunk_size")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    offset: int
    length: int
    chunk_size: int
    def __init__(self, handle: _Optional[str] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class ReadChunk(_message.Message):
    __slots__ = ("offset", "data")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class WriteChunk(_message.Message):
    __slots__ = ("handle", "offset", "data")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    handle: str
    offset: int
    data: bytes
    def __init__(self, handle: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class WriteStreamResponse(_message.Message):
    __slots__ = ("written",)
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    written: int
    def __init__(self, written: _Optional[int] = ...) -> None: ...

class PipelineRequest(_message.Message):
    __slots__ = ("ops",)
    OPS_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[Op]
    def __init__(self, ops: _Optional[_Iterable[_Union[Op, _Mapping]]] = ...) -> None: ...

class Op(_message.Message):
    __slots__ = ("read", "read_byte", "read_line", "write", "write_byte", "seek", "tell", "size", "len", "find", "rfind", "flush", "move", "resize", "madvise", "get_item", "set_item", "get_slice", "set_slice", "stat")
    READ_FIELD_NUMBER: _ClassVar[int]
    READ_BYTE_FIELD_NUMBER: _ClassVar[int]
    READ_LINE_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    WRITE_BYTE_FIELD_NUMBER: _ClassVar[int]
    SEEK_FIELD_NUMBER: _ClassVar[int]
    TELL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LEN_FIELD_NUMBER: _ClassVar[int]
    FIND_FIELD_NUMBER: _ClassVar[int]
    RFIND_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    MOVE_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    MADVISE_FIELD_NUMBER: _ClassVar[int]
    GET_ITEM_FIELD_NUMBER: _ClassVar[int]
    SET_ITEM_FIELD_NUMBER: _ClassVar[int]
    GET_SLICE_FIELD_NUMBER: _ClassVar[int]
    SET_SLICE_FIELD_NUMBER: _ClassVar[int]
    STAT_FIELD_NUMBER: _ClassVar[int]
    read: ReadRequest
    read_byte: ReadByteRequest
    read_line: ReadLineRequest
    write: WriteRequest
    write_byte: WriteByteRequest
    seek: SeekRequest
    tell: TellRequest
    size: SizeRequest
    len: LenRequest
    find: FindRequest
    rfind: FindRequest
    flush: FlushRequest
    move: MoveRequest
    resize: ResizeRequest
    madvise: MadviseRequest
    get_item: GetItemRequest
    set_item: SetItemRequest
    get_slice: GetSliceRequest
    set_slice: SetSliceRequest
    stat: StatRequest
    def __init__(self, read: _Optional[_Union[ReadRequest, _Mapping]] = ..., read_byte: _Optional[_Union[ReadByteRequest, _Mapping]] = ..., read_line: _Optional[_Union[ReadLineRequest, _Mapping]] = ..., write: _Optional[_Union[WriteRequest, _Mapping]] = ..., write_byte: _Optional[_Union[WriteByteRequest, _Mapping]] = ..., seek: _Optional[_Union[SeekRequest, _Mapping]] = ..., tell: _Optional[_Union[TellRequest, _Mapping]] = ..., size: _Optional[_Union[SizeRequest, _Mapping]] = ..., len: _Optional[_Union[LenRequest, _Mapping]] = ..., find: _Optional[_Union[FindRequest, _Mapping]] = ..., rfind: _Optional[_Union[FindRequest, _Mapping]] = ..., flush: _Optional[_Union[FlushRequest, _Mapping]] = ..., move: _Optional[_Union[MoveRequest, _Mapping]] = ..., resize: _Optional[_Union[ResizeRequest, _Mapping]] = ..., madvise: _Optional[_Union[MadviseRequest, _Mapping]] = ..., get_item: _Optional[_Union[GetItemRequest, _Mapping]] = ..., set_item: _Optional[_Union[SetItemRequest, _Mapping]] = ..., get_slice: _Optional[_Union[GetSliceRequest, _Mapping]] = ..., set_slice: _Optional[_Union[SetSliceRequest, _Mapping]] = ..., stat: _Optional[_Union[StatRequest, _Mapping]] = ...) -> None: ...

class PipelineResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[OpResult]
    def __init__(self, results: _Optional[_Iterable[_Union[OpResult, _Mapping]]] = ...) -> None: ...

class OpResult(_message.Message):
    __slots__ = ("read", "read_byte", "read_line", "write", "write_byte", "seek", "tell", "size", "len", "find", "rfind", "flush", "move", "resize", "madvise", "get_item", "set_item", "get_slice", "set_slice", "stat", "error")
    READ_FIELD_NUMBER: _ClassVar[int]
    READ_BYTE_FIELD_NUMBER: _ClassVar[int]
    READ_LINE_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    WRITE_BYTE_FIELD_NUMBER: _ClassVar[int]
    SEEK_FIELD_NUMBER: _ClassVar[int]
    TELL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LEN_FIELD_NUMBER: _ClassVar[int]
    FIND_FIELD_NUMBER: _ClassVar[int]
    RFIND_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    MOVE_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    MADVISE_FIELD_NUMBER: _ClassVar[int]
    GET_ITEM_FIELD_NUMBER: _ClassVar[int]
    SET_ITEM_FIELD_NUMBER: _ClassVar[int]
    GET_SLICE_FIELD_NUMBER: _ClassVar[int]
    SET_SLICE_FIELD_NUMBER: _ClassVar[int]
    STAT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    read: ReadResponse
    read_byte: ReadByteResponse
    read_line: ReadLineResponse
    write: WriteResponse
    write_byte: WriteByteResponse
    seek: SeekResponse
    tell: TellResponse
    size: SizeResponse
    len: LenResponse
    find: FindResponse
    rfind: FindResponse
    flush: FlushResponse
    move: MoveResponse
    resize: ResizeResponse
    madvise: MadviseResponse
    get_item: GetItemResponse
    set_item: SetItemResponse
    get_slice: GetSliceResponse
    set_slice: SetSliceResponse
    stat: StatResponse
    error: _status_pb2.Status
    def __init__(self, read: _Optional[_Union[ReadResponse, _Mapping]] = ..., read_byte: _Optional[_Union[ReadByteResponse, _Mapping]] = ..., read_line: _Optional[_Union[ReadLineResponse, _Mapping]] = ..., write: _Optional[_Union[WriteResponse, _Mapping]] = ..., write_byte: _Optional[_Union[WriteByteResponse, _Mapping]] = ..., seek: _Optional[_Union[SeekResponse, _Mapping]] = ..., tell: _Optional[_Union[TellResponse, _Mapping]] = ..., size: _Optional[_Union[SizeResponse, _Mapping]] = ..., len: _Optional[_Union[LenResponse, _Mapping]] = ..., find: _Optional[_Union[FindResponse, _Mapping]] = ..., rfind: _Optional[_Union[FindResponse, _Mapping]] = ..., flush: _Optional[_Union[FlushResponse, _Mapping]] = ..., move: _Optional[_Union[MoveResponse, _Mapping]] = ..., resize: _Optional[_Union[ResizeResponse, _Mapping]] = ..., madvise: _Optional[_Union[MadviseResponse, _Mapping]] = ..., get_item: _Optional[_Union[GetItemResponse, _Mapping]] = ..., set_item: _Optional[_Union[SetItemResponse, _Mapping]] = ..., get_slice: _Optional[_Union[GetSliceResponse, _Mapping]] = ..., set_slice: _Optional[_Union[SetSliceResponse, _Mapping]] = ..., stat: _Optional[_Union[StatResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "page_size", "allocation_granularity", "default_chunk_size", "max_chunk_size", "max_message_size", "default_ttl_seconds", "sessions", "mappings", "limits", "anonymous_bytes", "connections")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    version: str
    page_size: int
    allocation_granularity: int
    default_chunk_size: int
    max_chunk_size: int
    max_message_size: int
    default_ttl_seconds: int
    sessions: int
    mappings: int
    limits: ServerLimits
    anonymous_bytes: int
    connections: int
    def __init__(self, version: _Optional[str] = ..., page_size: _Optional[int] = ..., allocation_granularity: _Optional[int] = ..., default_chunk_size: _Optional[int] = ..., max_chunk_size: _Optional[int] = ..., max_message_size: _Optional[int] = ..., default_ttl_seconds: _Optional[int] = ..., sessions: _Optional[int] = ..., mappings: _Optional[int] = ..., limits: _Optional[_Union[ServerLimits, _Mapping]] = ..., anonymous_bytes: _Optional[int] = ..., connections: _Optional[int] = ...) -> None: ...

class ServerLimits(_message.Message):
    __slots__ = ("max_anonymous_bytes", "max_mapping_length", "max_sessions", "max_handles_per_session", "max_mappings", "max_map_areas", "max_name_length", "max_client_name_length", "max_path_length", "max_inflight_bytes", "max_streams_per_connection", "max_stream_buffer_bytes", "max_connections", "idle_timeout_seconds", "keepalive_interval_seconds", "keepalive_timeout_seconds", "max_page_size", "shutdown_grace_seconds", "max_tree_depth")
    MAX_ANONYMOUS_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MAPPING_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_HANDLES_PER_SESSION_FIELD_NUMBER: _ClassVar[int]
    MAX_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    MAX_MAP_AREAS_FIELD_NUMBER: _ClassVar[int]
    MAX_NAME_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_CLIENT_NAME_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_PATH_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_INFLIGHT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAMS_PER_CONNECTION_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAM_BUFFER_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    KEEPALIVE_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    KEEPALIVE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TREE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    max_anonymous_bytes: int
    max_mapping_length: int
    max_sessions: int
    max_handles_per_session: int
    max_mappings: int
    max_map_areas: int
    max_name_length: int
    max_client_name_length: int
    max_path_length: int
    max_inflight_bytes: int
    max_streams_per_connection: int
    max_stream_buffer_bytes: int
    max_connections: int
    idle_timeout_seconds: int
    keepalive_interval_seconds: int
    keepalive_timeout_seconds: int
    max_page_size: int
    shutdown_grace_seconds: int
    max_tree_depth: int
    def __init__(self, max_anonymous_bytes: _Optional[int] = ..., max_mapping_length: _Optional[int] = ..., max_sessions: _Optional[int] = ..., max_handles_per_session: _Optional[int] = ..., max_mappings: _Optional[int] = ..., max_map_areas: _Optional[int] = ..., max_name_length: _Optional[int] = ..., max_client_name_length: _Optional[int] = ..., max_path_length: _Optional[int] = ..., max_inflight_bytes: _Optional[int] = ..., max_streams_per_connection: _Optional[int] = ..., max_stream_buffer_bytes: _Optional[int] = ..., max_connections: _Optional[int] = ..., idle_timeout_seconds: _Optional[int] = ..., keepalive_interval_seconds: _Optional[int] = ..., keepalive_timeout_seconds: _Optional[int] = ..., max_page_size: _Optional[int] = ..., shutdown_grace_seconds: _Optional[int] = ..., max_tree_depth: _Optional[int] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionInfo]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "client_name", "ttl_seconds", "handles")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    client_name: str
    ttl_seconds: int
    handles: int
    def __init__(self, session_id: _Optional[str] = ..., client_name: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., handles: _Optional[int] = ...) -> None: ...

class ListMappingsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMappingsResponse(_message.Message):
    __slots__ = ("mappings", "next_page_token")
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    mappings: _containers.RepeatedCompositeFieldContainer[MappingInfo]
    next_page_token: str
    def __init__(self, mappings: _Optional[_Iterable[_Union[MappingInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MappingInfo(_message.Message):
    __slots__ = ("name", "path", "length", "access", "handles")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    length: int
    access: Access
    handles: int
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., length: _Optional[int] = ..., access: _Optional[_Union[Access, str]] = ..., handles: _Optional[int] = ...) -> None: ...
