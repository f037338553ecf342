//! Our own accept loop, handed to tonic as its incoming stream: a cap on
//! live connections, exponential backoff on accept errors, TCP keepalive,
//! and per-connection state that lets an idle connection be closed and
//! every connection be cut at the end of the shutdown grace.
//!
//! tonic's own `TcpIncoming` retries a failing `accept` at once, so with
//! the fd limit reached it spins at 100 % of a core while the backlog
//! locks every new client out; Go's `net/http` backs off instead, and so
//! do we.
#![forbid(unsafe_code)]

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use parking_lot::Mutex;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    time::{Instant, Sleep},
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::Connected;

use crate::Limits;

/// First and last delay after a failed `accept`, as in Go's `net/http`.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this interval about refused connections.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The live-connection count, shared with `GetServerInfo`.
#[derive(Debug, Default)]
pub struct Connections {
    live: AtomicUsize,
}

impl Connections {
    /// Connections accepted and not yet closed.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// Decrements the live count when its connection goes away.
#[derive(Debug)]
struct Live(Arc<Connections>);

impl Live {
    fn new(connections: &Arc<Connections>) -> Live {
        connections.live.fetch_add(1, Ordering::Relaxed);
        Live(Arc::clone(connections))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the RPC layer knows about one connection: how many calls are in
/// flight on it and when the last one started or ended.
#[derive(Debug)]
pub struct ConnState {
    inflight: AtomicUsize,
    last_active: Mutex<Instant>,
    /// The verified client certificate's name, parsed once per connection.
    peer_name: std::sync::OnceLock<Option<String>>,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            inflight: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
            peer_name: std::sync::OnceLock::new(),
        }
    }

    /// The client certificate's name, found by `parse` on the first call.
    pub fn peer_name(&self, parse: impl FnOnce() -> Option<String>) -> Option<&str> {
        self.peer_name.get_or_init(parse).as_deref()
    }

    /// Marks a call as started; it counts until the guard drops (the layer
    /// drops it when the response body ends).
    pub fn begin(self: &Arc<Self>) -> RpcGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        *self.last_active.lock() = Instant::now();
        RpcGuard(Arc::clone(self))
    }

    /// When the connection counts as idle since, or `None` while a call is
    /// in flight.
    fn idle_since(&self) -> Option<Instant> {
        let last = *self.last_active.lock();
        (self.inflight.load(Ordering::Acquire) == 0).then_some(last)
    }
}

/// One call in flight on a connection.
#[derive(Debug)]
pub struct RpcGuard(Arc<ConnState>);

impl Drop for RpcGuard {
    fn drop(&mut self) {
        *self.0.last_active.lock() = Instant::now();
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connect info tonic puts in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The connection's call count.
    pub state: Arc<ConnState>,
}

/// An accepted connection: the socket plus what closes it from our side.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    info: ConnInfo,
    idle_timeout: Duration,
    /// `None` when the idle timeout is 0 (off).
    idle: Option<Pin<Box<Sleep>>>,
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
    _live: Live,
}

impl Conn {
    /// `Some` when the connection must end now: killed at the end of the
    /// shutdown grace, or idle for longer than the timeout.
    fn ending(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.killed.as_mut().poll(cx).is_ready() {
            return Some(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "shutdown grace over",
            ));
        }
        let idle = self.idle.as_mut()?;
        while idle.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match self.info.state.idle_since() {
                Some(since) if since + self.idle_timeout <= now => {
                    tracing::debug!(remote = %self.info.remote, "closing idle connection");
                    return Some(io::Error::new(io::ErrorKind::TimedOut, "idle"));
                }
                Some(since) => idle.as_mut().reset(since + self.idle_timeout),
                // A call in flight; look again a timeout later.
                None => idle.as_mut().reset(now + self.idle_timeout),
            }
        }
        None
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(err) = this.ending(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(err) = this.ending(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(err) = this.ending(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Ends the accept loop and the connections it made.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Cancelled at shutdown: the listener closes, no new connections.
    pub accepting: CancellationToken,
    /// Cancelled when the grace is over: every connection is cut.
    pub connections: CancellationToken,
}

/// Starts the accept loop on `listener`; returns the stream of accepted
/// connections for tonic and their live count.
pub fn incoming(
    listener: TcpListener,
    limits: &Limits,
    stop: Stop,
) -> (ReceiverStream<io::Result<Conn>>, Arc<Connections>) {
    let connections = Arc::new(Connections::default());
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(accept_loop(
        listener,
        Settings::from(limits),
        stop,
        Arc::clone(&connections),
        tx,
    ));
    (ReceiverStream::new(rx), connections)
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    max_connections: usize,
    idle_timeout: Duration,
    keepalive: Duration,
}

impl From<&Limits> for Settings {
    fn from(l: &Limits) -> Settings {
        Settings {
            max_connections: l.max_connections as usize,
            idle_timeout: l.idle_timeout,
            keepalive: l.keepalive_interval,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    settings: Settings,
    stop: Stop,
    connections: Arc<Connections>,
    tx: mpsc::Sender<io::Result<Conn>>,
) {
    let mut backoff: Option<Duration> = None;
    let mut refused = 0u64;
    let mut refusal_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => {
                backoff = None;
                accepted
            }
            // The peer gave up before we got to it: nothing to back off for.
            Err(err) if is_peer_error(&err) => continue,
            Err(err) => {
                let delay = backoff.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX));
                backoff = Some(delay);
                tracing::warn!(%err, ?delay, "accept failed; backing off");
                tokio::select! {
                    _ = stop.accepting.cancelled() => break,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if connections.live() >= settings.max_connections {
            // Accepting and closing at once keeps the backlog moving, so
            // the refused client learns now instead of timing out.
            drop(stream);
            refused += 1;
            let now = Instant::now();
            if refusal_logged.is_none_or(|t| now >= t + REFUSAL_LOG_INTERVAL) {
                tracing::warn!(
                    refused,
                    max_connections = settings.max_connections,
                    "connection limit reached; closing new connections"
                );
                refusal_logged = Some(now);
                refused = 0;
            }
            continue;
        }
        if let Err(err) = configure(&stream, settings.keepalive) {
            tracing::debug!(%err, %remote, "cannot set socket options");
        }
        let conn = Conn {
            stream,
            info: ConnInfo {
                remote,
                state: Arc::new(ConnState::new()),
            },
            idle_timeout: settings.idle_timeout,
            idle: (!settings.idle_timeout.is_zero())
                .then(|| Box::pin(tokio::time::sleep(settings.idle_timeout))),
            killed: Box::pin(stop.connections.clone().cancelled_owned()),
            _live: Live::new(&connections),
        };
        // tonic stops taking connections at shutdown; the listener must
        // still close then, so the send gives way to the stop.
        let sent = tokio::select! {
            _ = stop.accepting.cancelled() => break,
            sent = tx.send(Ok(conn)) => sent,
        };
        if sent.is_err() {
            break;
        }
    }
    tracing::debug!("listener closed");
}

/// Without TCP_NODELAY, Nagle and delayed ACKs stall small replies by
/// ~40 ms: fatal for a service of many small calls. TCP keepalive finds
/// peers that vanished without a FIN even when HTTP/2 pings are off.
fn configure(stream: &TcpStream, keepalive: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if keepalive.is_zero() {
        return Ok(());
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(keepalive)
        .with_interval(keepalive);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// Errors about one failed handshake rather than the listener.
fn is_peer_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}
