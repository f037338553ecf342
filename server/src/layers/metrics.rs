//! The metrics layer, outermost around the router: it times every call
//! from request to the end of its response body (streams included) and
//! counts it by method and status code, and a non-OK status by its
//! ErrorInfo reason. Unary errors are trailers-only (the status is in the
//! response headers); other calls carry it in the trailers, so the body is
//! wrapped to see them. A call whose response is dropped before a status
//! was seen (the client went away) counts as CANCELLED.
#![forbid(unsafe_code)]

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::{Code, Status, body::Body};
use tonic_types::StatusExt;
use tower::{Layer, Service};

use crate::metrics::RpcMetrics;

/// The layer; see the module doc.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    rpc: Arc<RpcMetrics>,
}

impl MetricsLayer {
    /// A layer recording into `rpc`.
    pub fn new(rpc: Arc<RpcMetrics>) -> MetricsLayer {
        MetricsLayer { rpc }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            rpc: Arc::clone(&self.rpc),
        }
    }
}

/// The service [`MetricsLayer`] makes.
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    rpc: Arc<RpcMetrics>,
}

impl<S, B> Service<Request<Body>> for Metered<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Response = Response<Timed<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let mut call = Call {
            rpc: Arc::clone(&self.rpc),
            // A reference-counted clone: h2 builds the URI over the
            // request's shared bytes, so no path is copied per call.
            uri: req.uri().clone(),
            start: Instant::now(),
            status: None,
        };
        // The clone is ready only if polled; swap in the one that was.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = inner.call(req);
        Box::pin(async move {
            let response = match future.await {
                Ok(response) => response,
                Err(err) => {
                    call.status.get_or_insert((Code::Unknown, String::new()));
                    return Err(err);
                }
            };
            call.see(response.headers());
            Ok(response.map(|inner| Timed {
                inner,
                call: Some(call),
            }))
        })
    }
}

/// One call being timed; recorded when dropped.
struct Call {
    rpc: Arc<RpcMetrics>,
    uri: http::Uri,
    start: Instant,
    /// The code and ErrorInfo reason, once seen.
    status: Option<(Code, String)>,
}

impl Call {
    /// Takes the status from response headers or trailers that have one.
    fn see(&mut self, headers: &HeaderMap) {
        let Some(code) = headers.get(Status::GRPC_STATUS) else {
            return;
        };
        let code = Code::from_bytes(code.as_bytes());
        // Only failures are decoded: OK is the hot path.
        let reason = if code == Code::Ok {
            String::new()
        } else {
            Status::from_header_map(headers)
                .and_then(|status| status.get_error_details().error_info().cloned())
                .map(|info| info.reason)
                .unwrap_or_default()
        };
        self.status = Some((code, reason));
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let (code, reason) = self
            .status
            .take()
            .unwrap_or((Code::Cancelled, String::new()));
        self.rpc
            .record(self.uri.path(), code, &reason, self.start.elapsed());
    }
}

/// A response body that records its call when it ends or is dropped.
pub struct Timed<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> std::fmt::Debug for Timed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed").finish_non_exhaustive()
    }
}

impl<B> Timed<B> {
    /// Records the call now; `fallback` is its code if no status was seen.
    fn finish(&mut self, fallback: Code) {
        if let Some(mut call) = self.call.take() {
            call.status.get_or_insert((fallback, String::new()));
        }
    }
}

impl<B> HttpBody for Timed<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(call)) = (frame.trailers_ref(), this.call.as_mut()) {
                    call.see(trailers);
                }
            }
            // A body that ends without a status is no gRPC response.
            Poll::Ready(None) => this.finish(Code::Unknown),
            Poll::Ready(Some(Err(_))) => this.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::{error::Error, metrics::Metrics};

    fn metrics() -> Metrics {
        let root = tempfile::tempdir().unwrap();
        let limits = crate::Limits::default();
        let root = crate::paths::Root::open(root.path()).unwrap();
        let registry =
            crate::registry::Registry::new(root, std::time::Duration::from_secs(5), limits);
        Metrics::new(Arc::new(registry))
    }

    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(line_start)?.trim().parse().ok())
    }

    #[tokio::test]
    async fn trailers_only_errors_and_dropped_bodies_are_counted() {
        let metrics = metrics();
        let mut svc = MetricsLayer::new(metrics.rpc()).layer(tower::service_fn(
            |req: Request<Body>| async move {
                let response = match req.uri().path() {
                    "/mmapd.v1.Mmap/Read" => {
                        let status = Status::from(Error::Quota {
                            limit: "max_sessions",
                            value: 1,
                        });
                        status.into_http::<Body>()
                    }
                    _ => Response::new(Body::empty()),
                };
                Ok::<_, Infallible>(response)
            },
        ));
        let req = |path: &str| Request::builder().uri(path).body(Body::empty()).unwrap();
        drop(svc.call(req("/mmapd.v1.Mmap/Read")).await.unwrap());
        drop(svc.call(req("/no.Such/Thing")).await.unwrap());
        let text = metrics.encode();
        let read = "mmapd_rpcs_total{method=\"/mmapd.v1.Mmap/Read\",code=\"RESOURCE_EXHAUSTED\"}";
        assert_eq!(sample(&text, read), Some(1.0), "{text}");
        let quota = "mmapd_quota_refusals_total{reason=\"QUOTA_EXCEEDED\"}";
        assert_eq!(sample(&text, quota), Some(1.0), "{text}");
        let gone = "mmapd_rpcs_total{method=\"unknown\",code=\"CANCELLED\"}";
        assert_eq!(sample(&text, gone), Some(1.0), "{text}");
    }

    #[tokio::test]
    async fn auth_failures_are_counted_by_reason_and_path_escapes_are_not() {
        let metrics = metrics();
        let mut svc = MetricsLayer::new(metrics.rpc()).layer(tower::service_fn(
            |req: Request<Body>| async move {
                let (code, reason) = match req.uri().path() {
                    "/mmapd.v1.Mmap/Read" => (Code::Unauthenticated, "UNAUTHENTICATED"),
                    "/mmapd.v1.Mmap/Write" => (Code::PermissionDenied, "ACCESS_DENIED"),
                    _ => (Code::PermissionDenied, "OS_ERROR"),
                };
                let details = tonic_types::ErrorDetails::with_error_info(
                    reason,
                    "mmapd",
                    std::collections::HashMap::new(),
                );
                let status = Status::with_error_details(code, "no", details);
                Ok::<_, Infallible>(status.into_http::<Body>())
            },
        ));
        for path in [
            "/mmapd.v1.Mmap/Read",
            "/mmapd.v1.Mmap/Write",
            "/mmapd.v1.Mmap/Map",
        ] {
            let req = Request::builder().uri(path).body(Body::empty()).unwrap();
            drop(svc.call(req).await.unwrap());
        }
        let text = metrics.encode();
        for (reason, n) in [
            ("UNAUTHENTICATED", Some(1.0)),
            ("ACCESS_DENIED", Some(1.0)),
            ("OS_ERROR", None),
        ] {
            let auth = format!("mmapd_auth_failures_total{{reason=\"{reason}\"}}");
            assert_eq!(sample(&text, &auth), n, "{text}");
            let errors = format!("mmapd_rpc_errors_total{{reason=\"{reason}\"}}");
            assert_eq!(sample(&text, &errors), Some(1.0), "{text}");
        }
    }
}
