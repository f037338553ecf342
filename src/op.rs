//! The one vocabulary of mmap operations, shared by the server, the Rust
//! client, mmapctl's shell and the differential test: an [`Op`] is one method
//! call on a CPython `mmap` object, with its arguments as Python passes them,
//! and a [`Value`] is what that call returned. The wire conversions live
//! next to them (`wire`), so a unary request, a Pipeline op and a shell line
//! all become the same `Op`. Nothing here knows tonic; the only wire types
//! are the prost messages.

use bytes::Bytes;

use crate::pb;

mod wire;

pub use wire::StatusProto;

/// One mmap method call on a handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `m.read([n])`.
    Read {
        /// Bytes to read; `None` or negative reads to the end.
        n: Option<i64>,
    },
    /// `m.read_byte()`.
    ReadByte,
    /// `m.readline()`.
    ReadLine,
    /// `m.write(data)`.
    Write {
        /// The bytes to write at the cursor.
        data: Bytes,
    },
    /// `m.write_byte(value)`.
    WriteByte {
        /// The byte value; CPython range-checks it.
        value: i64,
    },
    /// `m.seek(pos, whence)`.
    Seek {
        /// The distance.
        pos: i64,
        /// `os.SEEK_*`.
        whence: i32,
    },
    /// `m.tell()`.
    Tell,
    /// `m.size()`.
    Size,
    /// `len(m)`.
    Len,
    /// `m.find(sub, start, end)`.
    Find {
        /// The bytes to look for.
        sub: Bytes,
        /// Start; `None` is the cursor.
        start: Option<i64>,
        /// End; `None` is the end.
        end: Option<i64>,
    },
    /// `m.rfind(sub, start, end)`.
    RFind {
        /// The bytes to look for.
        sub: Bytes,
        /// Start; `None` is the cursor.
        start: Option<i64>,
        /// End; `None` is the end.
        end: Option<i64>,
    },
    /// `m.flush([offset[, size]])`.
    Flush {
        /// Start of the range.
        offset: Option<i64>,
        /// Length of the range.
        size: Option<i64>,
    },
    /// `m.move(dest, src, count)`.
    Move {
        /// Destination index.
        dest: i64,
        /// Source index.
        src: i64,
        /// Bytes to move.
        count: i64,
    },
    /// `m.resize(new_size)`.
    Resize {
        /// The new length.
        new_size: i64,
    },
    /// `m.madvise(option[, start[, length]])`.
    Madvise {
        /// `mmap.MADV_*`.
        option: i32,
        /// Start of the range.
        start: Option<i64>,
        /// Length of the range.
        length: Option<i64>,
    },
    /// `m[index]`.
    GetItem {
        /// The index; negative counts from the end.
        index: i64,
    },
    /// `m[index] = value`.
    SetItem {
        /// The index; negative counts from the end.
        index: i64,
        /// The byte value.
        value: i64,
    },
    /// `m[start:stop:step]`.
    GetSlice {
        /// Slice start.
        start: Option<i64>,
        /// Slice stop.
        stop: Option<i64>,
        /// Slice step.
        step: Option<i64>,
    },
    /// `m[start:stop:step] = data`.
    SetSlice {
        /// Slice start.
        start: Option<i64>,
        /// Slice stop.
        stop: Option<i64>,
        /// Slice step.
        step: Option<i64>,
        /// The replacement bytes.
        data: Bytes,
    },
    /// The handle's description (no Python method; `Stat`).
    Stat,
}

/// What an [`Op`] returned: one variant per op, named alike, so that the
/// value of an op converts back to the response of the same call.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The bytes read.
    Read(Bytes),
    /// The byte read.
    ReadByte(u8),
    /// The line read.
    ReadLine(Bytes),
    /// Bytes written.
    Write(u64),
    /// `None`.
    WriteByte,
    /// The new position.
    Seek(u64),
    /// The position.
    Tell(u64),
    /// The file size.
    Size(u64),
    /// The length.
    Len(u64),
    /// The index found, or -1.
    Find(i64),
    /// The index found, or -1.
    RFind(i64),
    /// `None`.
    Flush,
    /// `None`.
    Move,
    /// The new length.
    Resize(u64),
    /// `None`.
    Madvise,
    /// The byte.
    GetItem(u8),
    /// `None`.
    SetItem,
    /// The bytes selected.
    GetSlice(Bytes),
    /// `None`.
    SetSlice,
    /// The handle's description.
    Stat(pb::StatResponse),
}

impl Op {
    /// The Python method this op calls (`m[i]` is `__getitem__`), for
    /// messages and logs.
    pub fn method(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::ReadByte => "read_byte",
            Op::ReadLine => "readline",
            Op::Write { .. } => "write",
            Op::WriteByte { .. } => "write_byte",
            Op::Seek { .. } => "seek",
            Op::Tell => "tell",
            Op::Size => "size",
            Op::Len => "__len__",
            Op::Find { .. } => "find",
            Op::RFind { .. } => "rfind",
            Op::Flush { .. } => "flush",
            Op::Move { .. } => "move",
            Op::Resize { .. } => "resize",
            Op::Madvise { .. } => "madvise",
            Op::GetItem { .. } | Op::GetSlice { .. } => "__getitem__",
            Op::SetItem { .. } | Op::SetSlice { .. } => "__setitem__",
            Op::Stat => "stat",
        }
    }

    /// Bytes the op writes into the mapping when it succeeds.
    pub fn bytes_written(&self) -> usize {
        match self {
            Op::Write { data } | Op::SetSlice { data, .. } => data.len(),
            Op::WriteByte { .. } | Op::SetItem { .. } => 1,
            Op::Read { .. }
            | Op::ReadByte
            | Op::ReadLine
            | Op::Seek { .. }
            | Op::Tell
            | Op::Size
            | Op::Len
            | Op::Find { .. }
            | Op::RFind { .. }
            | Op::Flush { .. }
            | Op::Move { .. }
            | Op::Resize { .. }
            | Op::Madvise { .. }
            | Op::GetItem { .. }
            | Op::GetSlice { .. }
            | Op::Stat => 0,
        }
    }
}

impl Value {
    /// Bytes the op read from the mapping.
    pub fn bytes_read(&self) -> usize {
        match self {
            Value::Read(data) | Value::ReadLine(data) | Value::GetSlice(data) => data.len(),
            Value::ReadByte(_) | Value::GetItem(_) => 1,
            Value::Write(_)
            | Value::WriteByte
            | Value::Seek(_)
            | Value::Tell(_)
            | Value::Size(_)
            | Value::Len(_)
            | Value::Find(_)
            | Value::RFind(_)
            | Value::Flush
            | Value::Move
            | Value::Resize(_)
            | Value::Madvise
            | Value::SetItem
            | Value::SetSlice
            | Value::Stat(_) => 0,
        }
    }
}
