//! The one vocabulary of handle operations: an [`Op`] is one method call on
//! a CPython `mmap` object, with its arguments as Python passes them, and a
//! [`Value`] is what that call returned. [`Handle::apply`] is the single
//! dispatch from an op to the handle method that implements it, so the
//! unary RPCs and Pipeline cannot drift apart. Nothing here knows tonic.
#![forbid(unsafe_code)]

use bytes::Bytes;

use crate::{
    access::Action,
    error::Result,
    handle::{Handle, Stat},
};

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
/// result of an op converts back to the response of the same call.
#[derive(Debug, Clone)]
pub enum Value {
    /// The bytes read.
    Read(Vec<u8>),
    /// The byte read.
    ReadByte(u8),
    /// The line read.
    ReadLine(Vec<u8>),
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
    GetSlice(Vec<u8>),
    /// `None`.
    SetSlice,
    /// The description.
    Stat(Stat),
}

/// How an op should be run by an async adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Cheap: run it inline.
    Inline,
    /// Touches about this many bytes of the mapping: run it off the async
    /// workers when that is a lot.
    Bytes(u64),
    /// A system call that may wait on the disk or the kernel (msync,
    /// mremap, madvise): always run it off the async workers.
    Blocking,
}

impl Op {
    /// The access-control action the op needs beyond owning the handle.
    pub fn action(&self) -> Option<Action> {
        match self {
            Op::Flush { .. } => Some(Action::Flush),
            Op::Move { .. } => Some(Action::Move),
            Op::Resize { .. } => Some(Action::Resize),
            Op::Read { .. }
            | Op::ReadByte
            | Op::ReadLine
            | Op::Write { .. }
            | Op::WriteByte { .. }
            | Op::Seek { .. }
            | Op::Tell
            | Op::Size
            | Op::Len
            | Op::Find { .. }
            | Op::RFind { .. }
            | Op::Madvise { .. }
            | Op::GetItem { .. }
            | Op::SetItem { .. }
            | Op::GetSlice { .. }
            | Op::SetSlice { .. }
            | Op::Stat => None,
        }
    }

    /// How expensive the op is on a mapping of `len` bytes. An estimate:
    /// a missing start counts from 0, which overestimates.
    pub fn cost(&self, len: u64) -> Cost {
        match self {
            Op::Read { n } => {
                Cost::Bytes(n.filter(|&n| n >= 0).map_or(len, |n| (n as u64).min(len)))
            }
            Op::Find { start, end, .. } | Op::RFind { start, end, .. } => {
                Cost::Bytes(span(len, *start, *end))
            }
            Op::GetSlice { start, stop, .. } => Cost::Bytes(span(len, *start, *stop)),
            Op::Write { data } | Op::SetSlice { data, .. } => Cost::Bytes(data.len() as u64),
            Op::Flush { .. } | Op::Resize { .. } | Op::Madvise { .. } => Cost::Blocking,
            Op::ReadByte
            | Op::ReadLine
            | Op::WriteByte { .. }
            | Op::Seek { .. }
            | Op::Tell
            | Op::Size
            | Op::Len
            | Op::Move { .. }
            | Op::GetItem { .. }
            | Op::SetItem { .. }
            | Op::Stat => Cost::Inline,
        }
    }
}

impl Op {
    /// Bytes the op writes into the mapping when it succeeds (for the I/O
    /// counters).
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
    /// Bytes the op read from the mapping (for the I/O counters).
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

/// Bytes a `[start, end)` request may touch in a mapping of `len` bytes
/// (negative indices count from the end, as in Python).
pub fn span(len: u64, start: Option<i64>, end: Option<i64>) -> u64 {
    let at = |i: i64| {
        if i < 0 {
            len.saturating_sub(i.unsigned_abs())
        } else {
            (i as u64).min(len)
        }
    };
    let (start, end) = (start.map_or(0, at), end.map_or(len, at));
    end.saturating_sub(start)
}

impl Handle {
    /// Runs `op` on this handle. Replies larger than `max` bytes fail with
    /// [`crate::error::Error::TooLarge`]. Each handle method owns its own
    /// locking and cursor movement; this is only the dispatch.
    pub fn apply(&self, op: Op, max: u64) -> Result<Value> {
        Ok(match op {
            Op::Read { n } => Value::Read(self.read(n, max)?),
            Op::ReadByte => Value::ReadByte(self.read_byte()?),
            Op::ReadLine => Value::ReadLine(self.readline(max)?),
            Op::Write { data } => Value::Write(self.write(&data)?),
            Op::WriteByte { value } => {
                self.write_byte(value)?;
                Value::WriteByte
            }
            Op::Seek { pos, whence } => Value::Seek(self.seek(pos, whence)?),
            Op::Tell => Value::Tell(self.tell()?),
            Op::Size => Value::Size(self.size()?),
            Op::Len => Value::Len(self.length()?),
            Op::Find { sub, start, end } => Value::Find(self.find(&sub, start, end, false)?),
            Op::RFind { sub, start, end } => Value::RFind(self.find(&sub, start, end, true)?),
            Op::Flush { offset, size } => {
                self.flush(offset, size)?;
                Value::Flush
            }
            Op::Move { dest, src, count } => {
                self.move_(dest, src, count)?;
                Value::Move
            }
            Op::Resize { new_size } => Value::Resize(self.resize(new_size)?),
            Op::Madvise {
                option,
                start,
                length,
            } => {
                self.madvise(option, start, length)?;
                Value::Madvise
            }
            Op::GetItem { index } => Value::GetItem(self.get_item(index)?),
            Op::SetItem { index, value } => {
                self.set_item(index, value)?;
                Value::SetItem
            }
            Op::GetSlice { start, stop, step } => {
                Value::GetSlice(self.get_slice(start, stop, step, max)?)
            }
            Op::SetSlice {
                start,
                stop,
                step,
                data,
            } => {
                self.set_slice(start, stop, step, &data)?;
                Value::SetSlice
            }
            Op::Stat => Value::Stat(self.stat()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_counts_python_indices() {
        assert_eq!(span(10, None, None), 10);
        assert_eq!(span(10, Some(-3), None), 3);
        assert_eq!(span(10, Some(4), Some(2)), 0);
        assert_eq!(span(10, Some(2), Some(100)), 8);
    }

    #[test]
    fn privileged_ops_name_their_action() {
        assert_eq!(Op::Resize { new_size: 1 }.action(), Some(Action::Resize));
        assert_eq!(
            Op::Flush {
                offset: None,
                size: None
            }
            .action(),
            Some(Action::Flush)
        );
        assert_eq!(
            Op::Move {
                dest: 0,
                src: 0,
                count: 0
            }
            .action(),
            Some(Action::Move)
        );
        assert_eq!(Op::Tell.action(), None);
    }
}
