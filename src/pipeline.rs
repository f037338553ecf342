//! Pipelined calls: a [`Batch`] collects mmap method calls on one handle,
//! and one `Pipeline` round trip runs them all, in order, on the server.
//! Each call added to a batch returns a typed [`Slot`]; the [`Results`] of
//! the batch hand back that call's value or its own error. A failed call
//! does not stop the ones after it: this is a pipeline, not a transaction.

use std::marker::PhantomData;

use bytes::Bytes;
use futures::channel::mpsc;
use prost::Message;
use tonic::Streaming;

use crate::{
    RemoteMmap,
    error::{Error, unary},
    pb::{self, op::Op as PbOp, op_result::Result as PbResult},
};

/// Calls to run on one handle in one round trip, in the order added.
/// Method names and arguments are those of [`RemoteMmap`].
#[derive(Debug, Clone)]
pub struct Batch {
    handle: String,
    ops: Vec<pb::Op>,
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

/// A value a pipelined call returns. Implemented for the return types of
/// [`RemoteMmap`]'s methods.
pub trait OpValue: Sized {
    /// The value in `result`, or `None` when the result is of another call.
    #[doc(hidden)]
    fn from_result(result: PbResult) -> Option<Self>;
}

impl OpValue for Bytes {
    fn from_result(result: PbResult) -> Option<Self> {
        if let PbResult::Read(pb::ReadResponse { data })
        | PbResult::ReadLine(pb::ReadLineResponse { data })
        | PbResult::GetSlice(pb::GetSliceResponse { data }) = result
        {
            Some(data)
        } else {
            None
        }
    }
}

impl OpValue for u8 {
    fn from_result(result: PbResult) -> Option<Self> {
        if let PbResult::ReadByte(pb::ReadByteResponse { value })
        | PbResult::GetItem(pb::GetItemResponse { value }) = result
        {
            u8::try_from(value).ok()
        } else {
            None
        }
    }
}

impl OpValue for u64 {
    fn from_result(result: PbResult) -> Option<Self> {
        if let PbResult::Write(pb::WriteResponse { written: n })
        | PbResult::Seek(pb::SeekResponse { position: n })
        | PbResult::Tell(pb::TellResponse { position: n })
        | PbResult::Size(pb::SizeResponse { size: n })
        | PbResult::Len(pb::LenResponse { length: n })
        | PbResult::Resize(pb::ResizeResponse { length: n }) = result
        {
            Some(n)
        } else {
            None
        }
    }
}

impl OpValue for i64 {
    fn from_result(result: PbResult) -> Option<Self> {
        if let PbResult::Find(r) | PbResult::Rfind(r) = result {
            Some(r.index)
        } else {
            None
        }
    }
}

impl OpValue for () {
    fn from_result(result: PbResult) -> Option<Self> {
        matches!(
            result,
            PbResult::WriteByte(_)
                | PbResult::Flush(_)
                | PbResult::Move(_)
                | PbResult::Madvise(_)
                | PbResult::SetItem(_)
                | PbResult::SetSlice(_)
        )
        .then_some(())
    }
}

impl OpValue for pb::StatResponse {
    fn from_result(result: PbResult) -> Option<Self> {
        if let PbResult::Stat(r) = result {
            Some(r)
        } else {
            None
        }
    }
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

    fn push<T>(&mut self, op: PbOp) -> Slot<T> {
        self.ops.push(pb::Op { op: Some(op) });
        Slot {
            index: self.ops.len() - 1,
            _value: PhantomData,
        }
    }

    fn h(&self) -> String {
        self.handle.clone()
    }

    /// `m.read([n])`.
    pub fn read(&mut self, n: Option<i64>) -> Slot<Bytes> {
        let handle = self.h();
        self.push(PbOp::Read(pb::ReadRequest { handle, n }))
    }

    /// `m.read_byte()`.
    pub fn read_byte(&mut self) -> Slot<u8> {
        let handle = self.h();
        self.push(PbOp::ReadByte(pb::ReadByteRequest { handle }))
    }

    /// `m.readline()`.
    pub fn readline(&mut self) -> Slot<Bytes> {
        let handle = self.h();
        self.push(PbOp::ReadLine(pb::ReadLineRequest { handle }))
    }

    /// `m.write(data)`: the bytes written.
    pub fn write(&mut self, data: impl Into<Bytes>) -> Slot<u64> {
        let handle = self.h();
        let data = data.into();
        self.push(PbOp::Write(pb::WriteRequest { handle, data }))
    }

    /// `m.write_byte(value)`.
    pub fn write_byte(&mut self, value: i64) -> Slot<()> {
        let handle = self.h();
        self.push(PbOp::WriteByte(pb::WriteByteRequest { handle, value }))
    }

    /// `m.seek(pos, whence)`: the new cursor.
    pub fn seek(&mut self, pos: i64, whence: pb::Whence) -> Slot<u64> {
        let handle = self.h();
        let whence = whence.into();
        self.push(PbOp::Seek(pb::SeekRequest {
            handle,
            pos,
            whence,
        }))
    }

    /// `m.tell()`.
    pub fn tell(&mut self) -> Slot<u64> {
        let handle = self.h();
        self.push(PbOp::Tell(pb::TellRequest { handle }))
    }

    /// `m.size()`.
    pub fn size(&mut self) -> Slot<u64> {
        let handle = self.h();
        self.push(PbOp::Size(pb::SizeRequest { handle }))
    }

    /// `len(m)` (named apart from [`Batch::len`], the number of calls).
    pub fn length(&mut self) -> Slot<u64> {
        let handle = self.h();
        self.push(PbOp::Len(pb::LenRequest { handle }))
    }

    /// `m.find(sub[, start[, end]])`.
    pub fn find(
        &mut self,
        sub: impl Into<Bytes>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Slot<i64> {
        let request = self.find_request(sub.into(), start, end);
        self.push(PbOp::Find(request))
    }

    /// `m.rfind(sub[, start[, end]])`.
    pub fn rfind(
        &mut self,
        sub: impl Into<Bytes>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Slot<i64> {
        let request = self.find_request(sub.into(), start, end);
        self.push(PbOp::Rfind(request))
    }

    fn find_request(&self, sub: Bytes, start: Option<i64>, end: Option<i64>) -> pb::FindRequest {
        pb::FindRequest {
            handle: self.h(),
            sub,
            start,
            end,
        }
    }

    /// `m.flush([offset[, size]])`.
    pub fn flush(&mut self, offset: Option<i64>, size: Option<i64>) -> Slot<()> {
        let handle = self.h();
        self.push(PbOp::Flush(pb::FlushRequest {
            handle,
            offset,
            size,
        }))
    }

    /// `m.move(dest, src, count)`.
    pub fn move_(&mut self, dest: i64, src: i64, count: i64) -> Slot<()> {
        let handle = self.h();
        self.push(PbOp::Move(pb::MoveRequest {
            handle,
            dest,
            src,
            count,
        }))
    }

    /// `m.resize(newsize)`: the new length.
    pub fn resize(&mut self, new_size: i64) -> Slot<u64> {
        let handle = self.h();
        self.push(PbOp::Resize(pb::ResizeRequest { handle, new_size }))
    }

    /// `m.madvise(option[, start[, length]])`.
    pub fn madvise(
        &mut self,
        option: pb::Advice,
        start: Option<i64>,
        length: Option<i64>,
    ) -> Slot<()> {
        let handle = self.h();
        let option = option.into();
        self.push(PbOp::Madvise(pb::MadviseRequest {
            handle,
            option,
            start,
            length,
        }))
    }

    /// `m[index]`.
    pub fn get(&mut self, index: i64) -> Slot<u8> {
        let handle = self.h();
        self.push(PbOp::GetItem(pb::GetItemRequest { handle, index }))
    }

    /// `m[index] = value`.
    pub fn set(&mut self, index: i64, value: i64) -> Slot<()> {
        let handle = self.h();
        self.push(PbOp::SetItem(pb::SetItemRequest {
            handle,
            index,
            value,
        }))
    }

    /// `m[start:stop:step]`.
    pub fn get_slice(
        &mut self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    ) -> Slot<Bytes> {
        let handle = self.h();
        self.push(PbOp::GetSlice(pb::GetSliceRequest {
            handle,
            start,
            stop,
            step,
        }))
    }

    /// `m[start:stop:step] = data`.
    pub fn set_slice(
        &mut self,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
        data: impl Into<Bytes>,
    ) -> Slot<()> {
        let handle = self.h();
        let data = data.into();
        self.push(PbOp::SetSlice(pb::SetSliceRequest {
            handle,
            start,
            stop,
            step,
            data,
        }))
    }

    /// Length, file size, cursor, access, name, path and offset.
    pub fn stat(&mut self) -> Slot<pb::StatResponse> {
        let handle = self.h();
        self.push(PbOp::Stat(pb::StatRequest { handle }))
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
        if let PbResult::Error(status) = &result {
            return Err(Error::from_status(&tonic::Status::with_details(
                tonic::Code::from_i32(status.code),
                status.message.clone(),
                status.encode_to_vec().into(),
            )));
        }
        let wrong = format!("result {} is not of its call: {result:?}", slot.index);
        T::from_result(result).ok_or(Error::Protocol(wrong))
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
            .unbounded_send(pb::PipelineRequest { ops: batch.ops })
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
