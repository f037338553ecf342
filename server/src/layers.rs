//! The tower layer around the whole router. For every call it
//! - counts the call on its connection (for the idle timeout) from request
//!   start to the end of the response body;
//! - holds unary request bytes against a server-wide budget
//!   ([`Limits::max_inflight_bytes`]), see [`InflightBudget`];
//! - turns a panic in a handler, or in polling its response body, into
//!   INTERNAL, so the server keeps serving;
//! - gives every non-OK status one `google.rpc.ErrorInfo`, including the
//!   ones tonic makes itself (decode errors, over-limit messages, unknown
//!   methods), classified through [`Error`] (see `status`).
#![forbid(unsafe_code)]

use std::{
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::{Limits, error::Error, net::ConnInfo};

mod auth;
mod budget;
mod metrics;
mod status;

pub use auth::{AuthLayer, split};
pub use budget::InflightBudget;
use budget::{Budgeted, Hold};
pub use metrics::{Metered, MetricsLayer, Timed};
use status::give_error_info;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one method whose request bytes are not held: WriteStream writes
/// each chunk as it arrives, so its memory is one chunk at a time.
const WRITE_STREAM: &str = "/mmapd.v1.Mmap/WriteStream";

/// The connection a request came on, with or without TLS around it.
pub fn conn_info(extensions: &http::Extensions) -> Option<&ConnInfo> {
    extensions.get::<ConnInfo>().or_else(|| {
        extensions
            .get::<tonic::transport::server::TlsConnectInfo<ConnInfo>>()
            .map(|tls| tls.get_ref())
    })
}

/// The layer; see the module doc.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    budget: Arc<InflightBudget>,
}

impl RpcLayer {
    /// A layer with the unary budget from `limits`.
    pub fn new(limits: &Limits) -> RpcLayer {
        RpcLayer {
            budget: Arc::new(InflightBudget::new(
                limits.max_inflight_bytes,
                limits.max_message_size,
                // A live peer answers pings within this; one that sends
                // nothing mid-message for as long is stalling on purpose.
                limits.keepalive_interval + limits.keepalive_timeout,
            )),
        }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Rpc<S> {
        Rpc {
            inner,
            budget: Arc::clone(&self.budget),
        }
    }
}

/// The service [`RpcLayer`] makes.
#[derive(Debug, Clone)]
pub struct Rpc<S> {
    inner: S,
    budget: Arc<InflightBudget>,
}

impl<S, B> Service<Request<Body>> for Rpc<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Guarded<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let call = conn_info(req.extensions()).map(|info| info.state.begin());
        let hold = Arc::new(Hold::default());
        let req = if req.uri().path() == WRITE_STREAM {
            req
        } else {
            let budget = Arc::clone(&self.budget);
            let hold = Arc::clone(&hold);
            req.map(|body| Body::new(Budgeted::new(body, budget, hold)))
        };
        // The clone is ready only if polled; swap in the one that was.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guards = Guards {
            _call: call,
            _hold: hold,
        };
        // Reference-counted, not copied: see the metrics layer.
        let uri = req.uri().clone();
        let called = catch_unwind(AssertUnwindSafe(|| inner.call(req)));
        Box::pin(async move {
            let outcome = match called {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            let response = match outcome {
                Ok(Ok(response)) => response,
                Ok(Err(err)) => return Err(err),
                Err(panic) => return Ok(panicked(panic.as_ref(), guards)),
            };
            let (mut parts, body) = response.into_parts();
            give_error_info(&mut parts.headers, uri.path());
            Ok(Response::from_parts(
                parts,
                Guarded {
                    inner: Some(Box::pin(body)),
                    trailers: None,
                    guards: Some(guards),
                },
            ))
        })
    }
}

/// What a call holds until its response body ends.
#[derive(Debug)]
struct Guards {
    _call: Option<crate::net::RpcGuard>,
    _hold: Arc<Hold>,
}

/// A response body that fixes the status in its trailers, catches panics
/// while it is polled, and releases the call's guards when it ends.
pub struct Guarded<B> {
    inner: Option<Pin<Box<B>>>,
    /// Trailers still to send after the inner body is gone.
    trailers: Option<HeaderMap>,
    guards: Option<Guards>,
}

impl<B> std::fmt::Debug for Guarded<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded").finish_non_exhaustive()
    }
}

impl<B> HttpBody for Guarded<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            this.guards = None;
            return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
        };
        let polled = catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_frame(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(Ok(frame)))) => {
                Poll::Ready(Some(Ok(match frame.into_trailers() {
                    Ok(mut trailers) => {
                        give_error_info(&mut trailers, "");
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                })))
            }
            Ok(Poll::Ready(Some(Err(err)))) => {
                this.inner = None;
                this.guards = None;
                Poll::Ready(Some(Err(err.into())))
            }
            Ok(Poll::Ready(None)) => {
                this.inner = None;
                this.guards = None;
                Poll::Ready(None)
            }
            Err(panic) => {
                // The inner body's state is unknown after a panic: drop it
                // and end the stream with an INTERNAL status.
                this.inner = None;
                this.guards = None;
                let mut trailers = HeaderMap::new();
                panic_status(panic.as_ref()).add_header(&mut trailers).ok();
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(inner) => inner.is_end_stream(),
            None => self.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

/// The trailers-only response for a handler that panicked.
fn panicked<B>(panic: &(dyn std::any::Any + Send), guards: Guards) -> Response<Guarded<B>> {
    let (parts, ()) = panic_status(panic).into_http::<()>().into_parts();
    Response::from_parts(
        parts,
        Guarded {
            inner: None,
            trailers: None,
            guards: Some(guards),
        },
    )
}

fn panic_status(panic: &(dyn std::any::Any + Send)) -> Status {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic");
    tracing::error!(panic = what, "handler panicked; the server keeps serving");
    Error::Internal("internal error: the handler panicked".into()).into()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tonic::Code;

    use super::{status::tests::reason, *};

    /// A body whose first poll panics, as a panicking stream handler's would.
    struct Exploding;

    impl HttpBody for Exploding {
        type Data = Bytes;
        type Error = Status;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            panic!("stream handler bug")
        }
    }

    fn layered<F, Fut, B>(f: F) -> Rpc<tower::util::ServiceFn<F>>
    where
        F: FnMut(Request<Body>) -> Fut,
        Fut: Future<Output = Result<Response<B>, Infallible>>,
    {
        let limits = Limits {
            max_inflight_bytes: 1 << 20,
            ..Limits::default()
        };
        RpcLayer::new(&limits).layer(tower::service_fn(f))
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_internal_and_the_service_goes_on() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut svc = layered(move |_| {
            let first = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0;
            async move {
                assert!(!first, "handler bug");
                Ok(Response::new(Body::empty()))
            }
        });
        let response = svc.call(Request::new(Body::empty())).await.unwrap();
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(reason(&status), "INTERNAL");
        // The next call is served.
        let response = svc.call(Request::new(Body::empty())).await.unwrap();
        assert!(Status::from_header_map(response.headers()).is_none());
    }

    #[tokio::test]
    async fn a_panicking_response_body_ends_with_internal_trailers() {
        let mut svc = layered(|_| async { Ok(Response::new(Exploding)) });
        let mut body = svc
            .call(Request::new(Body::empty()))
            .await
            .unwrap()
            .into_body();
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .expect("a trailers frame")
            .unwrap();
        let status = Status::from_header_map(frame.trailers_ref().unwrap()).unwrap();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(reason(&status), "INTERNAL");
        let end = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(end.is_none(), "the body ends after the status");
    }
}
