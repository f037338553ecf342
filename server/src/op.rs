//! The server's side of the op vocabulary ([`mmapd::op`], shared with the
//! client, the shell and the differential test): [`Handle::apply`] is the
//! single dispatch from an [`Op`] to the handle method that implements it,
//! so the unary RPCs and Pipeline cannot drift apart; [`action`] and
//! [`cost`] say what an op needs from access control and the scheduler.
//! Nothing here knows tonic.
#![forbid(unsafe_code)]

pub use mmapd::op::{Op, Value};

use crate::{access::Action, convert::stat_to_pb, error::Result, handle::Handle};

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

/// The access-control action `op` needs beyond owning the handle.
pub fn action(op: &Op) -> Option<Action> {
    needs(op, 0).0
}

/// How expensive `op` is on a mapping of `len` bytes. An estimate: a
/// missing start counts from 0, which overestimates.
pub fn cost(op: &Op, len: u64) -> Cost {
    needs(op, len).1
}

/// What `op` needs besides owning the handle, in one match so that a new op
/// is decided in one place: a privilege, and how to schedule it.
fn needs(op: &Op, len: u64) -> (Option<Action>, Cost) {
    let bytes = |n: u64| (None, Cost::Bytes(n));
    match op {
        Op::Read { n } => bytes(n.filter(|&n| n >= 0).map_or(len, |n| (n as u64).min(len))),
        Op::Find { start, end, .. } | Op::RFind { start, end, .. } => {
            bytes(span(len, *start, *end))
        }
        Op::GetSlice { start, stop, .. } => bytes(span(len, *start, *stop)),
        Op::Write { data } | Op::SetSlice { data, .. } => bytes(data.len() as u64),
        Op::Flush { .. } => (Some(Action::Flush), Cost::Blocking),
        Op::Resize { .. } => (Some(Action::Resize), Cost::Blocking),
        Op::Madvise { .. } => (None, Cost::Blocking),
        Op::Move { .. } => (Some(Action::Move), Cost::Inline),
        Op::ReadByte
        | Op::ReadLine
        | Op::WriteByte { .. }
        | Op::Seek { .. }
        | Op::Tell
        | Op::Size
        | Op::Len
        | Op::GetItem { .. }
        | Op::SetItem { .. }
        | Op::Stat => (None, Cost::Inline),
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
            Op::Read { n } => Value::Read(self.read(n, max)?.into()),
            Op::ReadByte => Value::ReadByte(self.read_byte()?),
            Op::ReadLine => Value::ReadLine(self.readline(max)?.into()),
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
                Value::GetSlice(self.get_slice(start, stop, step, max)?.into())
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
            Op::Stat => Value::Stat(stat_to_pb(self.stat()?)),
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
        assert_eq!(action(&Op::Resize { new_size: 1 }), Some(Action::Resize));
        let flush = Op::Flush {
            offset: None,
            size: None,
        };
        assert_eq!(action(&flush), Some(Action::Flush));
        let move_ = Op::Move {
            dest: 0,
            src: 0,
            count: 0,
        };
        assert_eq!(action(&move_), Some(Action::Move));
        assert_eq!(action(&Op::Tell), None);
    }
}
