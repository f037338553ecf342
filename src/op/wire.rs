//! Op ⇄ wire: a `pb::Op` (which is also each unary request, by variant)
//! becomes a handle id and an [`Op`] and back, and a [`Value`] becomes the
//! `pb::OpResult` of the same call and back. The unary RPCs, Pipeline and
//! the clients all convert through here, so they cannot drift apart.

use crate::{
    op::{Op, Value},
    pb::{self, op::Op as PbOp, op_result::Result as PbResult},
};

/// `google.rpc.Status`, the error result of one pipelined op.
pub type StatusProto = tonic_types::Status;

impl Op {
    /// A wire op → the handle it names and the op.
    pub fn from_pb(op: PbOp) -> (String, Op) {
        match op {
            PbOp::Read(r) => (r.handle, Op::Read { n: r.n }),
            PbOp::ReadByte(r) => (r.handle, Op::ReadByte),
            PbOp::ReadLine(r) => (r.handle, Op::ReadLine),
            PbOp::Write(r) => (r.handle, Op::Write { data: r.data }),
            PbOp::WriteByte(r) => (r.handle, Op::WriteByte { value: r.value }),
            PbOp::Seek(r) => (
                r.handle,
                Op::Seek {
                    pos: r.pos,
                    whence: r.whence,
                },
            ),
            PbOp::Tell(r) => (r.handle, Op::Tell),
            PbOp::Size(r) => (r.handle, Op::Size),
            PbOp::Len(r) => (r.handle, Op::Len),
            PbOp::Find(r) => (
                r.handle,
                Op::Find {
                    sub: r.sub,
                    start: r.start,
                    end: r.end,
                },
            ),
            PbOp::Rfind(r) => (
                r.handle,
                Op::RFind {
                    sub: r.sub,
                    start: r.start,
                    end: r.end,
                },
            ),
            PbOp::Flush(r) => (
                r.handle,
                Op::Flush {
                    offset: r.offset,
                    size: r.size,
                },
            ),
            PbOp::Move(r) => (
                r.handle,
                Op::Move {
                    dest: r.dest,
                    src: r.src,
                    count: r.count,
                },
            ),
            PbOp::Resize(r) => (
                r.handle,
                Op::Resize {
                    new_size: r.new_size,
                },
            ),
            PbOp::Madvise(r) => (
                r.handle,
                Op::Madvise {
                    option: r.option,
                    start: r.start,
                    length: r.length,
                },
            ),
            PbOp::GetItem(r) => (r.handle, Op::GetItem { index: r.index }),
            PbOp::SetItem(r) => (
                r.handle,
                Op::SetItem {
                    index: r.index,
                    value: r.value,
                },
            ),
            PbOp::GetSlice(r) => (
                r.handle,
                Op::GetSlice {
                    start: r.start,
                    stop: r.stop,
                    step: r.step,
                },
            ),
            PbOp::SetSlice(r) => (
                r.handle,
                Op::SetSlice {
                    start: r.start,
                    stop: r.stop,
                    step: r.step,
                    data: r.data,
                },
            ),
            PbOp::Stat(r) => (r.handle, Op::Stat),
        }
    }

    /// The op as the wire message naming `handle` (the unary request of the
    /// same call, wrapped).
    pub fn into_pb(self, handle: String) -> PbOp {
        match self {
            Op::Read { n } => PbOp::Read(pb::ReadRequest { handle, n }),
            Op::ReadByte => PbOp::ReadByte(pb::ReadByteRequest { handle }),
            Op::ReadLine => PbOp::ReadLine(pb::ReadLineRequest { handle }),
            Op::Write { data } => PbOp::Write(pb::WriteRequest { handle, data }),
            Op::WriteByte { value } => PbOp::WriteByte(pb::WriteByteRequest { handle, value }),
            Op::Seek { pos, whence } => PbOp::Seek(pb::SeekRequest {
                handle,
                pos,
                whence,
            }),
            Op::Tell => PbOp::Tell(pb::TellRequest { handle }),
            Op::Size => PbOp::Size(pb::SizeRequest { handle }),
            Op::Len => PbOp::Len(pb::LenRequest { handle }),
            Op::Find { sub, start, end } => PbOp::Find(pb::FindRequest {
                handle,
                sub,
                start,
                end,
            }),
            Op::RFind { sub, start, end } => PbOp::Rfind(pb::FindRequest {
                handle,
                sub,
                start,
                end,
            }),
            Op::Flush { offset, size } => PbOp::Flush(pb::FlushRequest {
                handle,
                offset,
                size,
            }),
            Op::Move { dest, src, count } => PbOp::Move(pb::MoveRequest {
                handle,
                dest,
                src,
                count,
            }),
            Op::Resize { new_size } => PbOp::Resize(pb::ResizeRequest { handle, new_size }),
            Op::Madvise {
                option,
                start,
                length,
            } => PbOp::Madvise(pb::MadviseRequest {
                handle,
                option,
                start,
                length,
            }),
            Op::GetItem { index } => PbOp::GetItem(pb::GetItemRequest { handle, index }),
            Op::SetItem { index, value } => PbOp::SetItem(pb::SetItemRequest {
                handle,
                index,
                value,
            }),
            Op::GetSlice { start, stop, step } => PbOp::GetSlice(pb::GetSliceRequest {
                handle,
                start,
                stop,
                step,
            }),
            Op::SetSlice {
                start,
                stop,
                step,
                data,
            } => PbOp::SetSlice(pb::SetSliceRequest {
                handle,
                start,
                stop,
                step,
                data,
            }),
            Op::Stat => PbOp::Stat(pb::StatRequest { handle }),
        }
    }
}

impl From<Value> for PbResult {
    /// A value → the response of the call that produced it.
    fn from(value: Value) -> PbResult {
        match value {
            Value::Read(data) => PbResult::Read(pb::ReadResponse { data }),
            Value::ReadByte(value) => PbResult::ReadByte(pb::ReadByteResponse {
                value: value.into(),
            }),
            Value::ReadLine(data) => PbResult::ReadLine(pb::ReadLineResponse { data }),
            Value::Write(written) => PbResult::Write(pb::WriteResponse { written }),
            Value::WriteByte => PbResult::WriteByte(pb::WriteByteResponse {}),
            Value::Seek(position) => PbResult::Seek(pb::SeekResponse { position }),
            Value::Tell(position) => PbResult::Tell(pb::TellResponse { position }),
            Value::Size(size) => PbResult::Size(pb::SizeResponse { size }),
            Value::Len(length) => PbResult::Len(pb::LenResponse { length }),
            Value::Find(index) => PbResult::Find(pb::FindResponse { index }),
            Value::RFind(index) => PbResult::Rfind(pb::FindResponse { index }),
            Value::Flush => PbResult::Flush(pb::FlushResponse {}),
            Value::Move => PbResult::Move(pb::MoveResponse {}),
            Value::Resize(length) => PbResult::Resize(pb::ResizeResponse { length }),
            Value::Madvise => PbResult::Madvise(pb::MadviseResponse {}),
            Value::GetItem(value) => PbResult::GetItem(pb::GetItemResponse {
                value: value.into(),
            }),
            Value::SetItem => PbResult::SetItem(pb::SetItemResponse {}),
            Value::GetSlice(data) => PbResult::GetSlice(pb::GetSliceResponse { data }),
            Value::SetSlice => PbResult::SetSlice(pb::SetSliceResponse {}),
            Value::Stat(stat) => PbResult::Stat(stat),
        }
    }
}

impl Value {
    /// A wire result → the value it carries, or the error status of a
    /// failed op. Byte values out of 0..=255 (a broken server) become an
    /// error status too, rather than a silently wrong byte.
    pub fn from_pb(result: PbResult) -> Result<Value, StatusProto> {
        let byte = |value: u32| {
            u8::try_from(value).map_err(|_| StatusProto {
                code: 13,
                message: format!("the server sent {value} as a byte value"),
                details: Vec::new(),
            })
        };
        Ok(match result {
            PbResult::Read(r) => Value::Read(r.data),
            PbResult::ReadByte(r) => Value::ReadByte(byte(r.value)?),
            PbResult::ReadLine(r) => Value::ReadLine(r.data),
            PbResult::Write(r) => Value::Write(r.written),
            PbResult::WriteByte(_) => Value::WriteByte,
            PbResult::Seek(r) => Value::Seek(r.position),
            PbResult::Tell(r) => Value::Tell(r.position),
            PbResult::Size(r) => Value::Size(r.size),
            PbResult::Len(r) => Value::Len(r.length),
            PbResult::Find(r) => Value::Find(r.index),
            PbResult::Rfind(r) => Value::RFind(r.index),
            PbResult::Flush(_) => Value::Flush,
            PbResult::Move(_) => Value::Move,
            PbResult::Resize(r) => Value::Resize(r.length),
            PbResult::Madvise(_) => Value::Madvise,
            PbResult::GetItem(r) => Value::GetItem(byte(r.value)?),
            PbResult::SetItem(_) => Value::SetItem,
            PbResult::GetSlice(r) => Value::GetSlice(r.data),
            PbResult::SetSlice(_) => Value::SetSlice,
            PbResult::Stat(r) => Value::Stat(r),
            PbResult::Error(status) => return Err(status),
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// One op of every kind, with every optional argument both set and not.
    fn every_op() -> Vec<Op> {
        let b = || Bytes::from_static(b"ab");
        vec![
            Op::Read { n: Some(-1) },
            Op::Read { n: None },
            Op::ReadByte,
            Op::ReadLine,
            Op::Write { data: b() },
            Op::WriteByte { value: 300 },
            Op::Seek { pos: -2, whence: 2 },
            Op::Tell,
            Op::Size,
            Op::Len,
            Op::Find {
                sub: b(),
                start: Some(1),
                end: None,
            },
            Op::RFind {
                sub: b(),
                start: None,
                end: Some(-1),
            },
            Op::Flush {
                offset: Some(0),
                size: None,
            },
            Op::Move {
                dest: 1,
                src: 2,
                count: 3,
            },
            Op::Resize { new_size: 9 },
            Op::Madvise {
                option: 4,
                start: None,
                length: Some(1),
            },
            Op::GetItem { index: -1 },
            Op::SetItem { index: 0, value: 7 },
            Op::GetSlice {
                start: None,
                stop: Some(3),
                step: Some(-1),
            },
            Op::SetSlice {
                start: Some(0),
                stop: None,
                step: None,
                data: b(),
            },
            Op::Stat,
        ]
    }

    #[test]
    fn every_op_survives_the_wire() {
        for op in every_op() {
            let back = Op::from_pb(op.clone().into_pb("h1".into()));
            assert_eq!(back, ("h1".to_owned(), op));
        }
    }

    #[test]
    fn every_value_survives_the_wire() {
        let b = || Bytes::from_static(b"xy");
        let values = [
            Value::Read(b()),
            Value::ReadByte(255),
            Value::ReadLine(b()),
            Value::Write(2),
            Value::WriteByte,
            Value::Seek(1),
            Value::Tell(1),
            Value::Size(5),
            Value::Len(4),
            Value::Find(-1),
            Value::RFind(3),
            Value::Flush,
            Value::Move,
            Value::Resize(8),
            Value::Madvise,
            Value::GetItem(0),
            Value::SetItem,
            Value::GetSlice(b()),
            Value::SetSlice,
            Value::Stat(pb::StatResponse {
                length: 1,
                name: "n".into(),
                ..Default::default()
            }),
        ];
        for value in values {
            assert_eq!(Value::from_pb(PbResult::from(value.clone())), Ok(value));
        }
    }

    #[test]
    fn a_byte_out_of_range_is_an_error_not_a_wrong_byte() {
        let result = PbResult::GetItem(pb::GetItemResponse { value: 256 });
        let status = Value::from_pb(result).unwrap_err();
        assert_eq!(status.code, 13);
        assert!(status.message.contains("256"), "{}", status.message);
    }
}
