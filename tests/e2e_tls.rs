//! End-to-end tests of the client's credentials against a real server: over
//! TLS and mTLS with certificates made in the test (a trusted CA works, an
//! `https://` endpoint never falls back to plaintext and says TLS when it
//! fails, plaintext cannot reach a TLS server, mTLS admits only certificates
//! of its client CA), and the bearer token on every call, background
//! renewals included. Every failing dial is bounded so a hang fails the test.

mod support;

#[path = "support/certs.rs"]
mod certs;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use certs::{Ca, Pem};
use mmapd::{Client, ConnectOptions, Error, MapOptions, Whence};
use mmapd_server::TlsFiles;
use support::TestServer;
use tokio::sync::Notify;
use tonic::{
    body::Body,
    codegen::{Context, Poll, Service, http},
    server::NamedService,
    transport::Channel,
};

/// A failing dial must fail, not hang: the client's own connect timeout is
/// 10 s, so this is only the backstop.
const BOUND: Duration = Duration::from_secs(30);

async fn tls_server(server: &Pem, client_ca: Option<&Ca>) -> TestServer {
    let files = TlsFiles {
        cert: server.cert.clone().into_bytes(),
        key: server.key.clone().into_bytes(),
        client_ca: client_ca.map(|ca| ca.cert.clone().into_bytes()),
    };
    TestServer::start_with(|config| config.tls = Some(files)).await
}

fn https(server: &TestServer) -> String {
    format!("https://{}", server.addr)
}

fn trusting(ca: &Ca) -> ConnectOptions {
    ConnectOptions {
        ca_cert: Some(ca.cert.clone().into_bytes()),
        ..ConnectOptions::default()
    }
}

fn presenting(ca: &Ca, client: &Pem) -> ConnectOptions {
    ConnectOptions {
        cert: Some(client.cert.clone().into_bytes()),
        key: Some(client.key.clone().into_bytes()),
        ..trusting(ca)
    }
}

/// Connects and makes one call: with TLS 1.3 a server may refuse a client
/// certificate only after the client thinks the handshake is done, so the
/// refusal can surface at the first call rather than at connect.
async fn reach(endpoint: String, options: ConnectOptions) -> Result<(), Error> {
    let attempt = async {
        let client = Client::connect_with(endpoint, options).await?;
        client.server_info().await.map(drop)
    };
    tokio::time::timeout(BOUND, attempt)
        .await
        .expect("the attempt ends instead of hanging")
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_the_servers_ca_carries_data() {
    let ca = Ca::new("test CA");
    let server = tls_server(&ca.server(), None).await;
    let client = Client::connect_with(https(&server), trusting(&ca))
        .await
        .expect("connect over TLS");
    let session = client.open_session("tls", None).await.expect("session");
    let mut map = session
        .map(MapOptions::file("tls.bin").length(16).create(true))
        .await
        .expect("map");
    map.write(b"over tls").await.expect("write");
    map.seek(0, Whence::Set).await.expect("seek");
    assert_eq!(&map.read(Some(8)).await.expect("read")[..], b"over tls");
    map.close().await.expect("close handle");
    session.close().await.expect("close session");
    assert_eq!(
        std::fs::read(server.path("tls.bin")).expect("file")[..8],
        *b"over tls"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_plaintext_server_fails_naming_tls() {
    let ca = Ca::new("test CA");
    let server = TestServer::start().await;
    let err = reach(https(&server), trusting(&ca))
        .await
        .expect_err("a plaintext server cannot pass a TLS handshake");
    assert!(err.is_connect_error(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot connect to https://{}: ", server.addr)),
        "{text}"
    );
    assert!(text.contains("TLS handshake failed"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_never_trusts_an_unknown_certificate() {
    // No --ca-cert means the public webpki roots, which do not include the
    // test CA: the dial must fail rather than go on unverified.
    let ca = Ca::new("test CA");
    let server = tls_server(&ca.server(), None).await;
    let err = reach(https(&server), ConnectOptions::default())
        .await
        .expect_err("an untrusted certificate is refused");
    assert!(err.is_connect_error(), "{err:?}");
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");

    let other = Ca::new("other CA");
    let err = reach(https(&server), trusting(&other))
        .await
        .expect_err("a certificate from another CA is refused");
    assert!(err.is_connect_error(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_cannot_talk_to_a_tls_server() {
    let ca = Ca::new("test CA");
    let server = tls_server(&ca.server(), None).await;
    let err = reach(server.endpoint(), ConnectOptions::default())
        .await
        .expect_err("plaintext HTTP/2 to a TLS port fails");
    assert!(err.is_connect_error(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_material_with_a_plaintext_endpoint_is_refused() {
    let ca = Ca::new("test CA");
    for endpoint in ["http://127.0.0.1:1", "127.0.0.1:1"] {
        let err = Client::connect_with(endpoint, trusting(&ca))
            .await
            .expect_err("TLS options need https://");
        assert!(matches!(err, Error::Options(_)), "{err:?}");
        assert!(err.to_string().contains("https://"), "{err}");
        assert!(!err.is_connect_error());
    }
    let client = ca.client("alice");
    let half = ConnectOptions {
        key: None,
        ..presenting(&ca, &client)
    };
    let err = Client::connect_with("https://127.0.0.1:1", half)
        .await
        .expect_err("a certificate without its key");
    assert!(matches!(err, Error::Options(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_admits_only_certificates_of_the_client_ca() {
    let ca = Ca::new("test CA");
    let client_ca = Ca::new("client CA");
    let server = tls_server(&ca.server(), Some(&client_ca)).await;

    reach(https(&server), presenting(&ca, &client_ca.client("alice")))
        .await
        .expect("a certificate of the client CA is admitted");

    let stranger = Ca::new("stranger CA");
    let err = reach(https(&server), presenting(&ca, &stranger.client("alice")))
        .await
        .expect_err("a certificate of another CA is refused");
    assert!(err.is_connect_error(), "{err:?}");

    let err = reach(https(&server), trusting(&ca))
        .await
        .expect_err("no certificate is refused");
    assert!(err.is_connect_error(), "{err:?}");
}

/// What the server side of [`Recorder`] saw: each call's method path and
/// its `authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A gRPC pass-through for the data service that notes each request's
/// `authorization` header before forwarding it to the real server, so the
/// test sees exactly what the client put on the wire without depending on
/// the server's access control.
#[derive(Clone)]
struct Recorder {
    upstream: Channel,
    seen: Seen,
    changed: Arc<Notify>,
}

impl NamedService for Recorder {
    const NAME: &'static str = "mmapd.v1.Mmap";
}

impl Service<http::Request<Body>> for Recorder {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let authorization = request
            .headers()
            .get("authorization")
            .map(|value| value.to_str().expect("ASCII header").to_owned());
        self.seen
            .lock()
            .unwrap()
            .push((request.uri().path().to_owned(), authorization));
        self.changed.notify_one();
        let mut upstream = self.upstream.clone();
        Box::pin(async move {
            // A channel clone must be made ready before each call.
            let ready = std::future::poll_fn(|cx| upstream.poll_ready(cx)).await;
            if let Err(err) = ready {
                return Ok(tonic::Status::unavailable(err.to_string()).into_http());
            }
            Ok(match upstream.call(request).await {
                Ok(response) => response,
                Err(err) => tonic::Status::unavailable(err.to_string()).into_http(),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_goes_with_every_call_including_renewals() {
    let server = TestServer::start().await;
    let recorder = Recorder {
        upstream: Channel::from_shared(server.endpoint())
            .unwrap()
            .connect()
            .await
            .expect("upstream"),
        seen: Seen::default(),
        changed: Arc::new(Notify::new()),
    };
    let (seen, changed) = (Arc::clone(&recorder.seen), Arc::clone(&recorder.changed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let proxy_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(recorder)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let token = "s3cret-token";
    let options = ConnectOptions {
        token: Some(token.to_owned()),
        ..ConnectOptions::default()
    };
    let client = Client::connect_with(proxy, options).await.expect("connect");
    // The shortest lease renews every third of a second in the background.
    let session = client
        .open_session("token", Some(Duration::from_secs(1)))
        .await
        .expect("session");
    let map = session.map(MapOptions::anonymous(4096)).await.expect("map");
    let renewed = async {
        loop {
            let notified = changed.notified();
            let renewals = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|(path, _)| path.ends_with("/KeepAlive"))
                .count();
            if renewals > 0 {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(BOUND, renewed)
        .await
        .expect("the background task renews the lease");
    drop(map);
    session.close().await.expect("close");

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|(path, _)| path.as_str()).collect();
    for method in ["OpenSession", "Map", "KeepAlive", "CloseSession"] {
        assert!(
            paths
                .iter()
                .any(|path| path.ends_with(&format!("/{method}"))),
            "{method} missing from {paths:?}"
        );
    }
    let bearer = format!("Bearer {token}");
    for (path, authorization) in &seen {
        assert_eq!(authorization.as_deref(), Some(bearer.as_str()), "{path}");
    }
    proxy_task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_cannot_be_a_header_is_refused() {
    let options = ConnectOptions {
        token: Some("two\nlines".to_owned()),
        ..ConnectOptions::default()
    };
    let err = Client::connect_with("http://127.0.0.1:1", options)
        .await
        .expect_err("a token that cannot be a header");
    assert!(matches!(err, Error::Options(_)), "{err:?}");
    assert!(
        !err.to_string().contains("two"),
        "the token is not echoed: {err}"
    );
}
