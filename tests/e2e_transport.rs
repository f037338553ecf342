//! End-to-end tests of the transport, against an in-process server with
//! small limits: statuses tonic makes itself get one ErrorInfo, the
//! connection cap and idle timeout, the unary and stream byte budgets, and
//! a shutdown that cuts a stalled stream after the grace. Each also checks
//! that another client is served and that earlier writes are kept.

mod support;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures::StreamExt;
use mmapd::pb::{self, Access};
use support::{Fixture, TestServer, assert_error, rq};
use tokio::{io::AsyncReadExt, net::TcpStream, time::timeout};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel,
};

/// Sends and receives message bytes as they are, to put malformed
/// protobuf on the wire.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

async fn raw_call(server: &TestServer, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        PathAndQuery::from_static(path),
        Raw,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A fixture whose file `f` (`len` bytes) is mapped for writing, with
/// `b"kept"` written at its start.
async fn mapped(server: TestServer, len: usize) -> (Fixture, String) {
    let mut fx = Fixture::on_with_file(server, "f", vec![0u8; len]).await;
    let h = fx.map_file("f", Access::Write).await;
    fx.c.write(rq::write(&h, "kept")).await.unwrap();
    (fx, h)
}

/// The other client is served, and the bytes written first are there.
async fn still_served(fx: &mut Fixture, h: &str) {
    let (mut other, _) = fx.server.clients().await;
    let read = other
        .get_slice(pb::GetSliceRequest {
            handle: h.into(),
            start: Some(0),
            stop: Some(4),
            step: None,
        })
        .await
        .expect("another client is served")
        .into_inner();
    assert_eq!(&read.data[..], b"kept");
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_request() {
    let (mut fx, h) = mapped(TestServer::start().await, 64).await;
    // Field 1 with wire type 7, which does not exist.
    let err = raw_call(
        &fx.server,
        "/mmapd.v1.Mmap/Stat",
        Bytes::from_static(&[0x0f, 0xff]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let message = err.message().to_owned();
    assert!(message.contains("decode"), "{message}");
    assert_error(&err, Code::InvalidArgument, "INVALID_REQUEST", &message);
    still_served(&mut fx, &h).await;
}

#[tokio::test]
async fn unknown_methods_are_unimplemented_with_error_info() {
    let (mut fx, h) = mapped(TestServer::start().await, 64).await;
    let err = raw_call(&fx.server, "/mmapd.v1.Mmap/NoSuchMethod", Bytes::new())
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::Unimplemented,
        "UNIMPLEMENTED",
        "method /mmapd.v1.Mmap/NoSuchMethod is not implemented by this server",
    );
    still_served(&mut fx, &h).await;
}

#[tokio::test]
async fn over_limit_messages_are_message_too_large() {
    let server = TestServer::start_with(|c| c.limits.max_message_size = 1 << 20).await;
    let (mut fx, h) = mapped(server, 4 << 20).await;
    let big = Bytes::from(vec![1u8; 2 << 20]);

    let err = fx.c.write(rq::write(&h, big.clone())).await.unwrap_err();
    let message = err.message().to_owned();
    assert!(message.contains("too large"), "{message}");
    assert_error(&err, Code::ResourceExhausted, "MESSAGE_TOO_LARGE", &message);

    // An over-limit chunk of a stream is refused the same way, in trailers.
    let chunk = pb::WriteChunk {
        handle: h.clone(),
        offset: Some(8),
        data: big,
    };
    let err =
        fx.c.write_stream(futures::stream::iter([chunk]))
            .await
            .unwrap_err();
    let message = err.message().to_owned();
    assert_error(&err, Code::ResourceExhausted, "MESSAGE_TOO_LARGE", &message);
    still_served(&mut fx, &h).await;
}

/// Reads from `stream` until the peer closes it; the bytes read first.
async fn read_until_closed(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

/// Whether the server speaks on a fresh connection (its HTTP/2 SETTINGS).
async fn greeted(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(n)) if n > 0
    )
}

async fn live_connections(fx: &mut Fixture) -> u32 {
    fx.admin
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .connections
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    // The fixture's channel is the first connection.
    let (mut fx, h) = mapped(server, 64).await;
    let mut second = TcpStream::connect(fx.server.addr).await.unwrap();
    assert!(
        greeted(&mut second).await,
        "the second connection is served"
    );
    assert_eq!(live_connections(&mut fx).await, 2);

    let mut third = TcpStream::connect(fx.server.addr).await.unwrap();
    let read = timeout(Duration::from_secs(5), read_until_closed(&mut third))
        .await
        .expect("the third connection is closed at once");
    assert_eq!(read, 0, "nothing is said to a refused connection");
    assert_eq!(live_connections(&mut fx).await, 2);
    let w = fx.c.write(rq::write(&h, "more")).await.unwrap();
    assert_eq!(w.into_inner().written, 4);

    // A closed connection frees its place.
    drop(second);
    timeout(Duration::from_secs(5), async {
        while live_connections(&mut fx).await != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the count falls when a connection closes");
    let mut fourth = TcpStream::connect(fx.server.addr).await.unwrap();
    assert!(greeted(&mut fourth).await);
}

#[tokio::test]
async fn idle_connections_close_and_busy_ones_stay() {
    let idle = Duration::from_millis(300);
    let server = TestServer::start_with(|c| c.limits.idle_timeout = idle).await;
    let (mut fx, h) = mapped(server, 1 << 20).await;

    let mut silent = TcpStream::connect(fx.server.addr).await.unwrap();
    timeout(Duration::from_secs(5), read_until_closed(&mut silent))
        .await
        .expect("a connection with no RPC is closed after the idle timeout");

    // A stream that stays open for several idle timeouts keeps its
    // connection: the call is in flight the whole time.
    let (mut c, _) = fx.server.clients().await;
    let mut chunks = c
        .read_stream(rq::read_stream(&h, Some(0), None, 64 << 10))
        .await
        .unwrap()
        .into_inner();
    let first = chunks.next().await.unwrap().unwrap();
    assert_eq!(&first.data[..4], b"kept");
    tokio::time::sleep(idle * 4).await;
    let mut total = first.data.len();
    while let Some(chunk) = chunks.next().await {
        total += chunk.expect("the busy connection stays open").data.len();
    }
    assert_eq!(total, 1 << 20);
    still_served(&mut fx, &h).await;
}

#[tokio::test]
async fn a_unary_flood_takes_turns_within_the_budget() {
    const N: usize = 16;
    const SIZE: usize = 2 << 20;
    // Room for two of the sixteen writes at a time.
    let server =
        TestServer::start_with(|c| c.limits.max_inflight_bytes = 2 * SIZE as u64 + 64).await;
    let (mut fx, h) = mapped(server, N * SIZE).await;
    let (c, _) = fx.server.clients().await;
    let writes = (0..N).map(|i| {
        let mut c = c.clone();
        let h = h.clone();
        async move {
            c.set_slice(pb::SetSliceRequest {
                handle: h,
                start: Some((i * SIZE) as i64 + 4),
                stop: Some(((i + 1) * SIZE) as i64),
                step: None,
                data: vec![i as u8 + 1; SIZE - 4].into(),
            })
            .await
        }
    });
    let results = timeout(Duration::from_secs(60), futures::future::join_all(writes))
        .await
        .expect("the writes take turns instead of deadlocking");
    for r in results {
        r.expect("every write succeeds once its turn comes");
    }
    let read =
        fx.c.get_slice(pb::GetSliceRequest {
            handle: h.clone(),
            start: Some((5 * SIZE) as i64 + 4),
            stop: Some((5 * SIZE) as i64 + 8),
            step: None,
        })
        .await
        .unwrap();
    assert_eq!(&read.into_inner().data[..], &[6u8; 4]);
    still_served(&mut fx, &h).await;
}

#[tokio::test]
async fn never_read_streams_hold_the_budget_until_they_close() {
    const CHUNK: u32 = 1 << 20;
    let server = TestServer::start_with(|c| {
        c.limits.max_stream_buffer_bytes = 4 * u64::from(CHUNK);
        c.limits.max_chunk = CHUNK as usize;
    })
    .await;
    let (mut fx, h) = mapped(server, 16 << 20).await;

    // Streams whose client never reads: they hold the whole budget.
    let (stalled, _) = fx.server.clients().await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut c = stalled.clone();
        held.push(
            c.read_stream(rq::read_stream(&h, Some(0), None, CHUNK))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    still_served(&mut fx, &h).await;

    // Once they are gone, their permits are back: a full stream runs.
    drop(held);
    drop(stalled);
    let (mut c, _) = fx.server.clients().await;
    let read = timeout(Duration::from_secs(20), async {
        let mut chunks = c
            .read_stream(rq::read_stream(&h, Some(0), None, CHUNK))
            .await
            .unwrap()
            .into_inner();
        let mut total = 0;
        while let Some(chunk) = chunks.next().await {
            total += chunk.unwrap().data.len();
        }
        total
    })
    .await
    .expect("the budget comes back when stalled streams close");
    assert_eq!(read, 16 << 20);
}

#[tokio::test]
async fn shutdown_cuts_a_stalled_stream_after_the_grace() {
    let server = TestServer::start_with(|c| c.shutdown_grace = Duration::from_millis(500)).await;
    let (fx, h) = mapped(server, 16 << 20).await;
    let Fixture { server, mut c, .. } = fx;
    // A stream the client never reads keeps its call in flight.
    let stalled = c
        .read_stream(rq::read_stream(&h, Some(0), None, 4 << 20))
        .await
        .unwrap()
        .into_inner();
    // The harness fails the test if `run` has not returned in 20 s.
    let root = server.shutdown().await;
    let on_disk = std::fs::read(root.path().join("f")).unwrap();
    assert_eq!(&on_disk[..4], b"kept", "written bytes are flushed");
    drop(stalled);
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_and_closes_the_listener() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let server = TestServer::start_with(|c| c.shutdown_grace = Duration::from_secs(2)).await;
    let (fx, h) = mapped(server, 16 << 20).await;
    let Fixture { server, mut c, .. } = fx;
    let addr = server.addr;
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: "mmapd.v1.Mmap".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    // A stalled stream keeps the server in its grace period.
    let stalled = c
        .read_stream(rq::read_stream(&h, Some(0), None, 4 << 20))
        .await
        .unwrap()
        .into_inner();

    let stopping = tokio::spawn(server.shutdown());
    let next = timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("health changes at once")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    let refused = timeout(Duration::from_secs(5), async {
        loop {
            match TcpStream::connect(addr).await {
                Err(err) => return err,
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("the listener closes during the grace");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    let root = stopping.await.unwrap();
    assert_eq!(&std::fs::read(root.path().join("f")).unwrap()[..4], b"kept");
    drop(stalled);
}

#[tokio::test]
async fn a_connection_gets_the_configured_number_of_concurrent_calls() {
    let server = TestServer::start_with(|c| c.limits.max_streams_per_connection = 2).await;
    let (mut fx, h) = mapped(server, 16 << 20).await;
    let (c, _) = fx.server.clients().await;
    // Two streams nobody reads take both of the connection's slots.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut c = c.clone();
        stalled.push(
            c.read_stream(rq::read_stream(&h, Some(0), None, 1 << 20))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let (mut third, handle) = (c.clone(), h.clone());
    let mut waiting = Box::pin(async move { third.tell(rq::tell(&handle)).await });
    assert!(
        timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "a third call on the connection waits for a slot"
    );
    // Other connections are not affected.
    still_served(&mut fx, &h).await;
    drop(stalled);
    timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the third call runs once a slot is free")
        .unwrap();
}

/// A request body that sends the start of one message, then nothing.
struct Stalling(Option<Bytes>);

impl http_body::Body for Stalling {
    type Data = Bytes;
    type Error = Status;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        match self.0.take() {
            Some(start) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(start)))),
            None => std::task::Poll::Pending,
        }
    }
}

#[tokio::test]
async fn a_message_that_stalls_midway_gives_its_budget_back() {
    let server = TestServer::start_with(|c| {
        c.limits.max_inflight_bytes = 1 << 20;
        c.limits.keepalive_interval = Duration::from_millis(300);
        c.limits.keepalive_timeout = Duration::from_millis(300);
    })
    .await;
    let (mut fx, h) = mapped(server, 64).await;

    // The header declares 1 MiB (the whole budget); 100 bytes follow.
    let mut start = vec![0u8];
    start.extend_from_slice(&(1u32 << 20).to_be_bytes());
    start.extend_from_slice(&[0u8; 100]);
    let request = tonic::codegen::http::Request::post(format!(
        "{}/mmapd.v1.Mmap/Write",
        fx.server.endpoint()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(tonic::body::Body::new(Stalling(Some(start.into()))))
    .unwrap();
    let mut channel = Channel::from_shared(fx.server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    use tonic::codegen::Service;
    futures::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .unwrap();
    let stalled = timeout(Duration::from_secs(10), channel.call(request))
        .await
        .expect("a stalled message fails instead of holding the budget")
        .unwrap();
    let status = Status::from_header_map(stalled.headers()).expect("a trailers-only status");
    let message = status.message().to_owned();
    assert!(message.contains("stalled"), "{message}");
    assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST", &message);

    // The budget is whole again: a write goes through.
    let w = timeout(Duration::from_secs(5), fx.c.write(rq::write(&h, "more")))
        .await
        .expect("the stalled message's bytes are back")
        .unwrap();
    assert_eq!(w.into_inner().written, 4);
    still_served(&mut fx, &h).await;
}
