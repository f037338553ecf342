//! Pipelined calls: a [`Batch`] collects mmap method calls on one handle,
//! and one `Pipeline` round trip runs them all, in order, on the server.
//! Each call added to a batch returns a typed [`Slot`]; the [`Results`] of
//! the batch hand back that call's value or its own error. A failed call
//! does not stop the ones after it: this is a pipeline, not a transaction.

use std::marker::PhantomData;

use bytes::Bytes;
use futures::channel::mpsc;
use tonic::Streaming;

use crate::{
    RemoteMmap,
    error::{Error, unary},
    op::{Op, Value},
    pb::{self, op_result::Result as PbResult},
};

/// Calls to run on one handle in one round trip, in the order added.
/// Method names and arguments are those of [`RemoteMmap`]; [`Batch::op`]
/// adds any [`Op`].
#[derive(Debug, Clone)]
pub struct Batch {
    handle: String,
    ops: Vec<Op>,
}

/// Where the result of one call of a [`Batch`] will be, and its type.
#[derive(Debug)]
pub struct Slot<T> {
    index: usize,
    _value: PhantomData<fn() -> T>,
}

/// The results of one [`Batch`], one per call.
#[derive(Debug)]
pub struct Results {
    results: Vec<Option<PbResult>>,
}

/// A value a call returns: implemented for the return types of
/// [`RemoteMmap`]'s methods, and for [`Value`] itself (any call).
pub trait OpValue: Sized {
    /// The value in `value`, or `None` when it is the value of another call.
    #[doc(hidden)]
    fn from_value(value: Value) -> Option<Self>;
}

impl OpValue for Value {
    fn from_value(value: Value) -> Option<Self> {
        Some(value)
    }
}

impl OpValue for Bytes {
    fn from_value(value: Value) -> Option<Self> {
        if let Value::Read(data) | Value::ReadLine(data) | Value::GetSlice(data) = value {
            Some(data)
        } else {
            None
        }
    }
}

impl OpValue for u8 {
    fn from_value(value: Value) -> Option<Self> {
        if let Value::ReadByte(b) | Value::GetItem(b) = value {
            Some(b)
        } else {
            None
        }
    }
}

impl OpValue for u64 {
    fn from_value(value: Value) -> Option<Self> {
        if let Value::Write(n)
        | Value::Seek(n)
        | Value::Tell(n)
        | Value::Size(n)
        | Value::Len(n)
        | Value::Resize(n) = value
        {
            Some(n)
        } else {
            None
        }
    }
}

impl OpValue for i64 {
    fn from_value(value: Value) -> Option<Self> {
        if let Value::Find(i) | Value::RFind(i) = value {
            Some(i)
        } else {
            None
        }
    }
}

impl OpValue for () {
    fn from_value(value: Value) -> Option<Self> {
        matches!(
            value,
            Value::WriteByte
                | Value::Flush
                | Value::Move
                | Value::Madvise
                | Value::SetItem
                | Value::SetSlice
        )
        .then_some(())
    }
}

impl OpValue for pb::StatResponse {
    fn from_value(value: Value) -> Option<Self> {
        if let Value::Stat(stat) = value {
            Some(stat)
        } else {
            None
        }
    }
}

/// `value` as the type its call returns, or a protocol error naming the
/// call that got another call's value.
pub(crate) fn typed<T: OpValue>(what: &dyn std::fmt::Display, value: Value) -> Result<T, Error> {
    let wrong = format!("{what} answered with another call's value: {value:?}");
    T::from_value(value).ok_or(Error::Protocol(wrong))
}

impl Batch {
    /// An empty batch of calls on `handle`.
    pub(crate) fn new(handle: String) -> Self {
        Batch {
            handle,
            ops: Vec::new(),
        }
    }

    /// Calls added so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no call was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Adds any op; its slot gives back the untyped [`Value`].
    pub fn op(&mut self, op: Op) -> Slot<Value> {
        self.push(op)
    }

    fn push<T>(&mut self, op: Op) -> Slot<T> {
        self.ops.push(op);
        Slot {
            index: self.ops.len() - 1,
            _value: PhantomData,
        }
    }

    /// `m.read([n])`.
    pub fn read(&mut self, n: Option<i64>) -> Slot<Bytes> {
        self.push(Op::Read { n })
    }

    /// `m.read_byte()`.
    pub fn read_byte(&mut self) -> Slot<u8> {
        self.push(Op::ReadByte)
    }

    /// `m.readline()`.
    pub fn readline(&mut self) -> Slot<Bytes> {
        self.push(Op::ReadLine)
    }

    /// `m.write(data)`: the bytes written.
    pub fn write(&mut self, data: impl Into<Bytes>) -> Slot<u64> {
        self.push(Op::Write { data: data.into() })
    }

    /// `m.write_byte(value)`.
    pub fn write_byte(&mut self, value: i64) -> Slot<()> {
        self.push(Op::WriteByte { value })
    }

    /// `m.seek(pos, whence)`: the new cursor.
    pub fn seek(&mut self, pos: i64, whence: pb::Whence) -> Slot<u64> {
        let whence = whence.into();
        self.push(Op::Seek { pos, whence })
    }

    /// `m.tell()`.
    pub fn tell(&mut self) -> Slot<u64> {
        self.push(Op::Tell)
    }

    /// `m.size()`.
    pub fn size(&mut self) -> Slot<u64> {
        self.push(Op::Size)
    }

    /// `len(m)` (named apart from [`Batch::len`], the number of calls).
    pub fn length(&mut self) -> Slot<u64> {
        self.push(Op::Len)
    }

    /// `m.find(sub[, start[, end]])`.
    pub fn find(
        &mut self,
        sub: impl Into<Bytes>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Slot<i64> {
        let sub = sub.into();
        self.push(Op::Find { sub, start, end })
    }

    /// `m.rfind(sub[, start[, end]])`.
    pub fn rfind(
        &mut self,
        sub: impl Into<Bytes>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Slot<i64> {
        let sub = sub.into();
        self.push(Op::RFind { sub, start, end })
    }

    /// `m.flush([offset[, size]])`.
    pub fn flush(&mut self, offset: Option<i64>, size: Option<i64>) -> Slot<()> {
        self.push(Op::Flush { offset, size })
    }

    /// `m.move(dest, src, count)`.
    pub fn move_(&mut self, dest: i64, src: i64, count: i64) -> Slot<()> {
        self.push(Op::Move { dest, src, count })
    }

    /// `m.resize(newsize)`: the new length.
    pub fn resize(&mut self, new_size: i64) -> Slot<u64> {
        self.push(Op::Resize { new_size })
    }

    /// `m.madvise(option[, start[, length]])`.
    pub fn madvise(
        &mut self,
        option: pb::Advice,
        start: Option<i64>,
        length: Option<i64>,
    ) -> Slot<()> {
        let option = option.into();
        self.push(Op::Madvise {
            option,
            start,
            length,
        })
    }

    /// `m[index]`.
    pub fn get(&mut self, index: i64) -> Slot<u8> {
        self.push(Op::GetItem { index })
    }

    /// `m[index] = value`.
    pub fn set(&mut self, index: i64, value: i64) -> Slot<()> {
        self.push(Op::SetItem { index, value })
    }

    /// `m[start:stop:step]`.
    pub fn get_slice(
        &mut self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    ) -> Slot<Bytes> {
        self.push(Op::GetSlice { start, stop, step })
    }

    /// `m[start:stop:step] = data`.
    pub fn set_slice(
        &mut self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
        data: impl Into<Bytes>,
    ) -> Slot<()> {
        let data = data.into();
        self.push(Op::SetSlice {
            start,
            stop,
            step,
            data,
        })
    }

    /// Length, file size, cursor, access, name, path and offset.
    pub fn stat(&mut self) -> Slot<pb::StatResponse> {
        self.push(Op::Stat)
    }

    /// The request that carries this batch.
    fn into_request(self) -> pb::PipelineRequest {
        let handle = self.handle;
        let ops = self.ops.into_iter().map(|op| pb::Op {
            op: Some(op.into_pb(handle.clone())),
        });
        pb::PipelineRequest { ops: ops.collect() }
    }
}

impl Results {
    /// The number of results (the number of calls in the batch).
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// The value or error of the call behind `slot`. Each slot can be
    /// taken once; a slot of another batch is a protocol error, unless
    /// its index and type happen to fit.
    pub fn take<T: OpValue>(&mut self, slot: Slot<T>) -> Result<T, Error> {
        let missing = || Error::Protocol(format!("no result {} in the batch", slot.index));
        let result = self
            .results
            .get_mut(slot.index)
            .ok_or_else(missing)?
            .take()
            .ok_or_else(missing)?;
        let value = Value::from_pb(result).map_err(|status| Error::from_proto(&status))?;
        typed(&format_args!("call {} of the batch", slot.index), value)
    }
}

/// An open Pipeline stream on one handle: batches sent with
/// [`Pipeline::send`] run in the order sent, and [`Pipeline::recv`]
/// returns their results in the same order. Sending several batches before
/// receiving keeps the server busy across round trips; the server holds
/// back a sender that runs too far ahead. The handle is borrowed for the
/// life of the stream so that its buffered I/O cannot drift from the
/// server's cursor.
#[derive(Debug)]
pub struct Pipeline<'a> {
    handle: String,
    requests: mpsc::UnboundedSender<pb::PipelineRequest>,
    responses: Streaming<pb::PipelineResponse>,
    sent: Vec<usize>,
    _map: PhantomData<&'a mut RemoteMmap>,
}

impl Pipeline<'_> {
    /// An empty batch for this stream's handle.
    pub fn batch(&self) -> Batch {
        Batch::new(self.handle.clone())
    }

    /// Sends `batch` without waiting for its results.
    pub fn send(&mut self, batch: Batch) -> Result<(), Error> {
        let n = batch.ops.len();
        self.requests
            .unbounded_send(batch.into_request())
            .map_err(|_| Error::Protocol("the Pipeline stream has ended".into()))?;
        self.sent.push(n);
        Ok(())
    }

    /// The results of the oldest batch sent and not yet received.
    pub async fn recv(&mut self) -> Result<Results, Error> {
        if self.sent.is_empty() {
            return Err(Error::Protocol("no batch is waiting for results".into()));
        }
        let expected = self.sent.remove(0);
        let response = match self.responses.message().await {
            Ok(Some(response)) => response,
            Ok(None) => {
                return Err(Error::Protocol(
                    "the Pipeline stream ended before a response".into(),
                ));
            }
            Err(status) => return Err(Error::from_status(&status)),
        };
        if response.results.len() != expected {
            return Err(Error::Protocol(format!(
                "{} results for a batch of {expected}",
                response.results.len()
            )));
        }
        Ok(Results {
            results: response.results.into_iter().map(|r| r.result).collect(),
        })
    }

    /// Sends `batch` and waits for its results; refused while batches sent
    /// with [`Pipeline::send`] still await [`Pipeline::recv`].
    pub async fn run(&mut self, batch: Batch) -> Result<Results, Error> {
        if !self.sent.is_empty() {
            return Err(Error::Protocol(
                "run() with batches outstanding; recv() them first".into(),
            ));
        }
        self.send(batch)?;
        self.recv().await
    }
}

impl RemoteMmap {
    /// An empty batch of calls on this handle, for [`RemoteMmap::run`].
    pub fn batch(&self) -> Batch {
        Batch::new(self.handle.clone())
    }

    /// Runs `batch` in one round trip and returns its results. Only a
    /// failure of the call itself is an `Err` here; each call's own error
    /// is in its slot.
    pub async fn run(&mut self, batch: Batch) -> Result<Results, Error> {
        self.pipeline().await?.run(batch).await
    }

    /// Opens a Pipeline stream on this handle for many batches.
    pub async fn pipeline(&mut self) -> Result<Pipeline<'_>, Error> {
        let handle = self.handle.clone();
        let (requests, rx) = mpsc::unbounded();
        let responses = unary(self.rpc().await?.pipeline(rx).await)?;
        Ok(Pipeline {
            handle,
            requests,
            responses,
            sent: Vec::new(),
            _map: PhantomData,
        })
    }
}
