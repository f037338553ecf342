//! Authentication at the transport: each request's bearer token or client
//! certificate is resolved, through the [`Policy`], into the [`Caller`] the
//! services read from its extensions. A request with no valid credential
//! ends here as UNAUTHENTICATED (health checks excepted, so probes work).
#![forbid(unsafe_code)]

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tonic::{Status, body::Body, transport::server::TlsConnectInfo};
use tower::{Layer, Service};

use crate::{
    access::{Caller, Policy},
    error::{Error, Result},
    net::ConnInfo,
};

/// Calls that need no credential: load balancers and kubelets probe these.
const HEALTH: &str = "/grpc.health.v1.Health/";

/// The layer; see the module doc.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    policy: Arc<Policy>,
}

impl AuthLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: Arc<Policy>) -> AuthLayer {
        AuthLayer { policy }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> Service<Request<Body>> for Auth<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        match identify(&self.policy, &req) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                Box::pin(self.inner.call(req))
            }
            Err(err) => {
                let status = Status::from(err);
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// The caller the layer found for a request, and its message. A request
/// that did not pass through the layer has none and is refused: the
/// services fail closed.
pub fn split<T>(req: tonic::Request<T>) -> Result<(Caller, T)> {
    let (_, mut extensions, message) = req.into_parts();
    let caller = extensions
        .remove::<Caller>()
        .ok_or(Error::Unauthenticated("the request was not authenticated"))?;
    Ok((caller, message))
}

/// The caller of `req`, or why it has none.
fn identify(policy: &Policy, req: &Request<Body>) -> Result<Caller> {
    let method = req.uri().path();
    if !policy.enforced() || method.starts_with(HEALTH) {
        return Ok(Caller::open());
    }
    let token = match req.headers().get(http::header::AUTHORIZATION) {
        Some(value) => Some(bearer(value).ok_or(Error::Unauthenticated(
            "the authorization metadata must be `Bearer <token>`",
        ))?),
        None => None,
    };
    let cert = certificate_name(req.extensions());
    match policy.identify(token, cert) {
        Ok(caller) => Ok(caller.calling(method)),
        Err(err) => {
            let peer = crate::layers::conn_info(req.extensions()).map(|c| c.remote);
            tracing::warn!(
                method,
                peer = ?peer,
                certificate = cert.unwrap_or_default(),
                reason = "UNAUTHENTICATED",
                "call denied: {err}"
            );
            Err(err)
        }
    }
}

/// The token of an `authorization: Bearer <token>` value.
fn bearer(value: &http::HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The subject CN of the verified client certificate, if the connection
/// has one; parsed once per connection.
fn certificate_name(extensions: &http::Extensions) -> Option<&str> {
    let tls = extensions.get::<TlsConnectInfo<ConnInfo>>()?;
    let certs = tls.peer_certs()?;
    tls.get_ref()
        .state
        .peer_name(|| common_name(certs.first()?.as_ref()))
}

/// The first CN of a DER certificate's subject.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_takes_the_token_of_a_bearer_value_only() {
        let v = |s: &'static str| http::HeaderValue::from_static(s);
        assert_eq!(bearer(&v("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&v("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&v("Basic abc")), None);
        assert_eq!(bearer(&v("Bearer ")), None);
        assert_eq!(bearer(&v("abc")), None);
    }
}
