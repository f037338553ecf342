//! tokio `AsyncRead`, `AsyncWrite` and `AsyncSeek` for [`RemoteMmap`].
//!
//! Poll-based callers such as `tokio::io::copy` ask for 8 KiB at a time, so
//! reads are served from a read-ahead buffer refilled by 1 MiB `Read` calls
//! and writes collect in a write-behind buffer sent as 1 MiB `Write` calls.
//! The server cursor therefore runs ahead of the caller by the unconsumed
//! read-ahead and behind by the unsent writes; [`RemoteMmap::settle`] closes
//! that gap before anything else observes the cursor (every method call and
//! every seek). At most one call is in flight, kept as a boxed future that
//! owns a clone of the stub so it survives across polls.
//!
//! A failed call loses nothing the caller was told about: the bytes of a
//! failed `Write` go back into the write-behind buffer (so every later flush
//! fails too, until a seek or a method call reports and drops them), and a
//! failed `Seek` keeps the read-ahead, since the server cursor did not move.

use std::{
    fmt,
    future::{Future, poll_fn},
    io::{self, SeekFrom},
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::{
    error::{Error, unary},
    pb,
    remote::RemoteMmap,
};

/// Bytes asked for per `Read` when the read-ahead buffer runs dry.
const READ_AHEAD: usize = 1024 * 1024;

/// Buffered write bytes that trigger a `Write` without waiting for a flush.
const WRITE_BEHIND: usize = 1024 * 1024;

/// What a finished in-flight call left behind.
enum Outcome {
    Read(Bytes),
    Wrote(u64),
    Position(u64),
}

type Call = Pin<Box<dyn Future<Output = Result<Outcome, Error>> + Send>>;

/// What `poll_pending` reports once an outcome is recorded.
enum Done {
    /// A Read; `eof` when it returned nothing.
    Read {
        eof: bool,
    },
    Wrote,
    Position(u64),
}

/// The buffers and in-flight call behind the I/O traits. Invariant: the two
/// buffers are never both non-empty, so the caller's position is always
/// `server cursor - read_buf.len() + write_buf.len()`.
#[derive(Default)]
pub(crate) struct IoState {
    read_buf: Bytes,
    write_buf: Vec<u8>,
    pending: Option<Call>,
    /// The server cursor when known without asking; forgotten by method
    /// calls, which may move it in ways not worth mirroring.
    server_pos: Option<u64>,
    /// The target passed to `start_seek`, until `poll_complete` sends it.
    seek_request: Option<SeekFrom>,
    /// Whether the in-flight call answers a `poll_complete`.
    seek_in_flight: bool,
    /// The bytes of the in-flight `Write`, put back in `write_buf` if it
    /// fails so they are neither lost nor reported as flushed.
    unacked_write: Bytes,
    /// Whether `write_buf` holds bytes whose `Write` failed; a seek discards
    /// them, anything else retries (and so reports the failure again).
    write_failed: bool,
    /// The read-ahead dropped when the in-flight `Seek` was sent, restored if
    /// it fails: a failed seek leaves the server cursor where it was.
    unread_before_seek: Bytes,
}

impl fmt::Debug for IoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoState")
            .field("read_ahead", &self.read_buf.len())
            .field("write_behind", &self.write_buf.len())
            .field("call_in_flight", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl IoState {
    pub(crate) fn set_server_position(&mut self, position: u64) {
        self.server_pos = Some(position);
    }

    /// The caller's position given the server cursor (at most one buffer
    /// is non-empty).
    fn caller_position(&self, server_pos: u64) -> u64 {
        (server_pos + self.write_buf.len() as u64).saturating_sub(self.read_buf.len() as u64)
    }
}

impl RemoteMmap {
    fn start(&mut self, call: impl Future<Output = Result<Outcome, Error>> + Send + 'static) {
        debug_assert!(self.io.pending.is_none(), "one call in flight at a time");
        self.io.pending = Some(Box::pin(call));
    }

    fn start_read(&mut self) {
        let mut stub = self.stub.clone();
        let request = pb::ReadRequest {
            handle: self.handle.clone(),
            n: Some(READ_AHEAD as i64),
        };
        self.start(async move { Ok(Outcome::Read(unary(stub.read(request).await)?.data)) });
    }

    fn start_write(&mut self) {
        let mut stub = self.stub.clone();
        let data = Bytes::from(std::mem::take(&mut self.io.write_buf));
        self.io.unacked_write = data.clone();
        let request = pb::WriteRequest {
            handle: self.handle.clone(),
            data,
        };
        self.start(async move { Ok(Outcome::Wrote(unary(stub.write(request).await)?.written)) });
    }

    fn start_seek_call(&mut self, pos: i64, whence: pb::Whence) {
        let mut stub = self.stub.clone();
        let request = pb::SeekRequest {
            handle: self.handle.clone(),
            pos,
            whence: whence.into(),
        };
        self.start(async move { Ok(Outcome::Position(unary(stub.seek(request).await)?.position)) });
    }

    fn start_tell(&mut self) {
        let mut stub = self.stub.clone();
        let request = pb::TellRequest {
            handle: self.handle.clone(),
        };
        self.start(async move { Ok(Outcome::Position(unary(stub.tell(request).await)?.position)) });
    }

    /// Hands the unconsumed read-ahead back by moving the server cursor.
    fn start_rewind(&mut self) {
        let unread = std::mem::take(&mut self.io.read_buf).len();
        self.start_seek_call(-(unread as i64), pb::Whence::Cur);
    }

    /// Drives the in-flight call, if any, to completion and records its
    /// outcome.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Done>, Error>> {
        let Some(call) = self.io.pending.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let outcome = ready!(call.as_mut().poll(cx));
        self.io.pending = None;
        let io = &mut self.io;
        let unacked_write = std::mem::take(&mut io.unacked_write);
        let unread_before_seek = std::mem::take(&mut io.unread_before_seek);
        Poll::Ready(match outcome {
            Ok(Outcome::Read(data)) => {
                io.server_pos = io.server_pos.map(|pos| pos + data.len() as u64);
                io.read_buf = data;
                Ok(Some(Done::Read {
                    eof: io.read_buf.is_empty(),
                }))
            }
            Ok(Outcome::Wrote(n)) => {
                io.write_failed = false;
                io.server_pos = io.server_pos.map(|pos| pos + n);
                Ok(Some(Done::Wrote))
            }
            Ok(Outcome::Position(pos)) => {
                io.server_pos = Some(pos);
                Ok(Some(Done::Position(pos)))
            }
            Err(err) => {
                // A failed call leaves the cursor unknown.
                io.server_pos = None;
                if !unacked_write.is_empty() {
                    // Keep the bytes (nothing else was buffered meanwhile) so
                    // a retried flush fails again rather than losing them.
                    io.write_buf = Vec::from(unacked_write);
                    io.write_failed = true;
                }
                if !unread_before_seek.is_empty() {
                    // The server cursor did not move, so it is still past
                    // this read-ahead: keep serving it.
                    io.read_buf = unread_before_seek;
                }
                Err(err)
            }
        })
    }

    /// Finishes the in-flight call and sends buffered writes; with `rewind`
    /// also gives back unconsumed read-ahead, leaving the server cursor where
    /// the caller believes it is.
    fn poll_settle(&mut self, cx: &mut Context<'_>, rewind: bool) -> Poll<Result<(), Error>> {
        loop {
            if ready!(self.poll_pending(cx))?.is_some() {
                continue;
            }
            if !self.io.write_buf.is_empty() {
                self.start_write();
            } else if rewind && !self.io.read_buf.is_empty() {
                self.start_rewind();
            } else {
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Makes the server state match the I/O-trait view before a method call,
    /// which may move the cursor, so the cached cursor is forgotten too.
    pub(crate) async fn settle(&mut self, rewind: bool) -> Result<(), Error> {
        let settled = poll_fn(|cx| self.poll_settle(cx, rewind)).await;
        if settled.is_err() && self.io.write_failed {
            // Reported to this method call; drop the bytes rather than fail
            // every later call too.
            self.io.write_buf.clear();
            self.io.write_failed = false;
        }
        self.io.server_pos = None;
        self.io.seek_request = None;
        self.io.seek_in_flight = false;
        settled
    }

    /// Turns a `SeekFrom` into Seek arguments, allowing for the read-ahead
    /// the server cursor has already passed.
    fn seek_target(&self, target: SeekFrom) -> io::Result<(i64, pb::Whence)> {
        let overflow = || io::Error::new(io::ErrorKind::InvalidInput, "seek position out of range");
        match target {
            SeekFrom::Start(pos) => {
                Ok((i64::try_from(pos).map_err(|_| overflow())?, pb::Whence::Set))
            }
            SeekFrom::Current(delta) => {
                let unread = i64::try_from(self.io.read_buf.len()).map_err(|_| overflow())?;
                Ok((
                    delta.checked_sub(unread).ok_or_else(overflow)?,
                    pb::Whence::Cur,
                ))
            }
            SeekFrom::End(delta) => Ok((delta, pb::Whence::End)),
        }
    }
}

impl AsyncRead for RemoteMmap {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match ready!(this.poll_pending(cx))? {
                // The end of the mapping: report it rather than asking again.
                Some(Done::Read { eof: true }) => return Poll::Ready(Ok(())),
                Some(Done::Read { eof: false } | Done::Wrote | Done::Position(_)) => continue,
                None => {}
            }
            if !this.io.write_buf.is_empty() {
                this.start_write();
            } else if this.io.read_buf.is_empty() {
                this.start_read();
            } else {
                break;
            }
        }
        let n = buf.remaining().min(this.io.read_buf.len());
        buf.put_slice(&this.io.read_buf.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for RemoteMmap {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if ready!(this.poll_pending(cx))?.is_some() {
                continue;
            }
            if !this.io.read_buf.is_empty() {
                this.start_rewind();
            } else if this.io.write_buf.len() >= WRITE_BEHIND {
                this.start_write();
            } else {
                break;
            }
        }
        let n = data.len().min(WRITE_BEHIND - this.io.write_buf.len());
        this.io.write_buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_settle(cx, false)
            .map_err(io::Error::from)
    }

    /// Only flushes: the handle stays open until [`RemoteMmap::close`].
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl AsyncSeek for RemoteMmap {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        this.io.seek_request = Some(position);
        this.io.seek_in_flight = false;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        loop {
            match ready!(this.poll_pending(cx))? {
                Some(Done::Position(pos)) if this.io.seek_in_flight => {
                    this.io.seek_in_flight = false;
                    return Poll::Ready(Ok(this.io.caller_position(pos)));
                }
                Some(Done::Read { .. } | Done::Wrote | Done::Position(_)) => continue,
                None => {}
            }
            if this.io.write_failed && this.io.seek_request.is_some() {
                // Seeking away abandons writes the server already refused.
                this.io.write_buf.clear();
                this.io.write_failed = false;
            }
            if !this.io.write_buf.is_empty() && !this.io.write_failed {
                this.start_write();
            } else if let Some(target) = this.io.seek_request.take() {
                let (pos, whence) = this.seek_target(target)?;
                this.io.unread_before_seek = std::mem::take(&mut this.io.read_buf);
                this.start_seek_call(pos, whence);
                this.io.seek_in_flight = true;
            } else if let Some(pos) = this.io.server_pos {
                // No seek requested (tokio calls this first to finish any
                // earlier seek): report the position without a call.
                return Poll::Ready(Ok(this.io.caller_position(pos)));
            } else {
                this.start_tell();
                this.io.seek_in_flight = true;
            }
        }
    }
}
