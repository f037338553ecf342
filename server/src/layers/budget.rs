//! The server-wide budget of unary request bytes in flight.
//!
//! Each gRPC message reserves its declared length (from the 5-byte frame
//! header) before its first byte is handed on, and the reservation is held
//! until the call completes. Reserving whole messages rather than frames is
//! what keeps it deadlock-free: a call waits while holding nothing, so
//! concurrent large messages take turns instead of each holding a part of
//! the budget and all waiting for the rest. While a call waits, its body is
//! not read, so HTTP/2 flow control holds the sender back.
//!
//! A client that declares a large message and then stops sending would
//! hold its reservation forever; a message that stalls mid-way for longer
//! than the keepalive interval plus timeout fails with INVALID_REQUEST and
//! gives its bytes back.
#![forbid(unsafe_code)]

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::{
    sync::{AcquireError, OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tonic::{Status, body::Body};

use crate::error::Error;

/// The budget: one permit per byte.
#[derive(Debug)]
pub struct InflightBudget {
    permits: Arc<Semaphore>,
    /// The whole budget: no reservation asks for more, so none can wait
    /// forever.
    total: u32,
    /// Largest message tonic accepts; a header claiming more is refused by
    /// tonic right after it, so reserving more would only block others.
    max_message: u64,
    /// How long a message may stall mid-way while it holds bytes.
    stall: Duration,
}

impl InflightBudget {
    /// A budget of `bytes` (at most 4 GiB) for messages of at most
    /// `max_message` bytes that may stall mid-way for at most `stall`.
    pub fn new(bytes: u64, max_message: usize, stall: Duration) -> InflightBudget {
        let total = bytes.clamp(1, u64::from(u32::MAX)) as u32;
        InflightBudget {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            max_message: max_message as u64 + HEADER as u64,
            stall,
        }
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    fn reservation(&self, declared: u64) -> u32 {
        declared.min(self.max_message).min(u64::from(self.total)) as u32
    }
}

/// A call's reservation, shared by its request body and its response body
/// so it lasts until both are gone.
#[derive(Debug, Default)]
pub struct Hold(Mutex<Option<OwnedSemaphorePermit>>);

/// gRPC's length-prefixed message header: a flag byte and a u32 length.
const HEADER: usize = 5;

/// Where the request stream is in gRPC's message framing.
#[derive(Debug, Default)]
struct Framing {
    header: [u8; HEADER],
    have: usize,
    remaining: u64,
}

impl Framing {
    /// Whether a message has begun and not ended.
    fn mid_message(&self) -> bool {
        self.remaining > 0 || self.have > 0
    }

    /// Bytes of the messages whose headers complete within `data`.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut declared = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining.min(data.len() as u64)) as usize;
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (HEADER - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == HEADER {
                self.have = 0;
                let len = (&self.header[1..]).get_u32();
                self.remaining = u64::from(len);
                declared += u64::from(len) + HEADER as u64;
            }
        }
        declared
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A request body that reserves each message's bytes before handing on the
/// frame that starts it.
pub struct Budgeted {
    inner: Body,
    budget: Arc<InflightBudget>,
    hold: Arc<Hold>,
    framing: Framing,
    waiting: Option<(Frame<Bytes>, Acquiring)>,
    /// Runs while a message holding bytes waits for its next frame.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Budgeted {
    pub(super) fn new(inner: Body, budget: Arc<InflightBudget>, hold: Arc<Hold>) -> Budgeted {
        Budgeted {
            inner,
            budget,
            hold,
            framing: Framing::default(),
            waiting: None,
            stalled: None,
        }
    }
}

impl Budgeted {
    /// Pending, unless a message holding bytes has waited too long for its
    /// next frame: then the call fails and the bytes go back.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if !self.framing.mid_message() || self.hold.0.lock().is_none() {
            return Poll::Pending;
        }
        let stall = self.budget.stall;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        ready!(timer.as_mut().poll(cx));
        self.hold.0.lock().take();
        self.framing = Framing::default();
        let err = Error::Protocol(
            format!("request message stalled for {stall:?} before its end; send it whole").into(),
        );
        Poll::Ready(Some(Err(err.into())))
    }
}

impl HttpBody for Budgeted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if let Some((_, acquiring)) = this.waiting.as_mut() {
            let permit = ready!(acquiring.as_mut().poll(cx));
            let (frame, _) = this.waiting.take().expect("waiting");
            // The semaphore is never closed; a permit is always granted.
            *this.hold.0.lock() = permit.ok();
            return Poll::Ready(Some(Ok(frame)));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let Poll::Ready(polled) = polled else {
            return this.poll_stall(cx);
        };
        this.stalled = None;
        let frame = match polled {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let declared = frame.data_ref().map_or(0, |d| this.framing.feed(d));
        if declared == 0 {
            return Poll::Ready(Some(Ok(frame)));
        }
        // The earlier message has fully arrived and is the handler's now;
        // a stream of messages holds only its latest one.
        this.hold.0.lock().take();
        let n = this.budget.reservation(declared);
        let acquiring = Box::pin(Arc::clone(&this.budget.permits).acquire_many_owned(n));
        this.waiting = Some((frame, acquiring));
        Pin::new(this).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(len: u32) -> Vec<u8> {
        let mut v = vec![0u8];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend(std::iter::repeat_n(7u8, len as usize));
        v
    }

    #[test]
    fn framing_finds_headers_split_across_frames() {
        let mut data = framed(10);
        data.extend(framed(3));
        let mut f = Framing::default();
        // Split inside the first header, then inside the second body.
        assert_eq!(f.feed(&data[..3]), 0);
        assert_eq!(f.feed(&data[3..16]), 15);
        assert_eq!(f.feed(&data[16..]), 8);
        assert_eq!(f.feed(&framed(0)), 5);
    }

    #[test]
    fn reservations_are_capped_at_the_budget_and_the_message_limit() {
        let budget = InflightBudget::new(100, 1 << 20, Duration::from_secs(1));
        assert_eq!(budget.reservation(1 << 30), 100);
        let budget = InflightBudget::new(1 << 30, 1000, Duration::from_secs(1));
        assert_eq!(budget.reservation(u64::from(u32::MAX)), 1005);
        assert_eq!(budget.reservation(50), 50);
    }
}
