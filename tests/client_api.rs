//! End-to-end tests of the client's API against a real server: admin calls,
//! session leases and their background renewal, the Python-named methods,
//! and how server errors and connection failures surface as `mmapd::Error`.

mod support;

use std::time::Duration;

use mmapd::{Access, Advice, Client, Error, MapOptions, Whence, code_name};
use support::TestServer;
use tonic::Code;

async fn client(server: &TestServer) -> Client {
    Client::connect(server.endpoint()).await.expect("connect")
}

/// Asserts `err` is a server error with `code` and `reason`, displayed as
/// `<message> (<CODE>, <REASON>)`.
#[track_caller]
fn assert_status(err: &Error, code: Code, reason: &str) {
    assert_eq!(err.code(), Some(code), "code of {err:?}");
    assert_eq!(err.reason(), Some(reason), "reason of {err:?}");
    assert!(!err.is_connect_error());
    let message = err.message().expect("a server error has a message");
    assert_eq!(
        err.to_string(),
        format!("{message} ({}, {reason})", code_name(code))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_calls_see_sessions_and_mappings() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let info = client.server_info().await.expect("server_info");
    assert!(info.page_size > 0 && info.allocation_granularity > 0);
    assert!(client.health("").await.expect("health"));

    let session = client
        .open_session("api-test", Some(Duration::from_secs(30)))
        .await
        .expect("open");
    assert_eq!(session.ttl(), Duration::from_secs(30));
    let sessions = client.list_sessions().await.expect("list_sessions");
    let listed = sessions
        .iter()
        .find(|s| s.session_id == session.id())
        .expect("session listed");
    assert_eq!(listed.client_name, "api-test");

    let map = session
        .map(MapOptions::anonymous(4096).name("anon"))
        .await
        .expect("map");
    assert_eq!(map.name(), "anon");
    // Asked with the default access, the handle says what it behaves as.
    assert_eq!(map.access(), Access::Write);
    let mappings = client.list_mappings().await.expect("list_mappings");
    assert!(
        mappings
            .iter()
            .any(|m| m.name == "anon" && m.length == 4096),
        "{mappings:?}"
    );

    let id = session.id().to_owned();
    session.close().await.expect("close");
    let sessions = client.list_sessions().await.expect("list_sessions");
    assert!(sessions.iter().all(|s| s.session_id != id));
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_renew_themselves_until_dropped() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let session = client
        .open_session("lease", Some(Duration::from_millis(1500)))
        .await
        .expect("open");
    // Sub-second remainders round up rather than falling back to the default.
    assert_eq!(session.ttl(), Duration::from_secs(2));
    let mut map = session.map(MapOptions::anonymous(16)).await.expect("map");

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(map.len().await.expect("handle outlives several TTLs"), 16);
    assert_eq!(
        session.keep_alive().await.expect("keep_alive"),
        Duration::from_secs(2)
    );

    let id = session.id().to_owned();
    drop(session);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sessions = client.list_sessions().await.expect("list_sessions");
    assert!(
        sessions.iter().all(|s| s.session_id != id),
        "a dropped session expires"
    );
    assert!(map.len().await.is_err(), "its handles die with it");
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_behave_like_python_mmap() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let session = client.open_session("methods", None).await.expect("open");
    let mut m = session.map(MapOptions::anonymous(16)).await.expect("map");

    assert_eq!(m.write(b"hello\nworld\n").await.expect("write"), 12);
    assert_eq!(m.seek(0, Whence::Set).await.expect("seek"), 0);
    assert_eq!(&m.readline().await.expect("readline")[..], b"hello\n");
    assert_eq!(m.read_byte().await.expect("read_byte"), b'w');
    assert_eq!(m.tell().await.expect("tell"), 7);
    // find starts at the cursor unless told otherwise.
    assert_eq!(m.find(b"o", None, None).await.expect("find"), 7);
    assert_eq!(m.find(b"o", Some(0), None).await.expect("find"), 4);
    assert_eq!(m.rfind(b"o", Some(0), Some(6)).await.expect("rfind"), 4);
    assert_eq!(m.find(b"zz", None, None).await.expect("find"), -1);
    assert_eq!(&m.read(Some(3)).await.expect("read")[..], b"orl");
    assert_eq!(m.seek(-1, Whence::End).await.expect("seek"), 15);
    m.write_byte(i64::from(b'!')).await.expect("write_byte");

    assert_eq!(m.get(0).await.expect("get"), b'h');
    assert_eq!(m.get(-1).await.expect("get"), b'!');
    m.set(0, i64::from(b'H')).await.expect("set");
    assert_eq!(
        &m.get_slice(None, Some(5), None).await.expect("get_slice")[..],
        b"Hello"
    );
    m.set_slice(Some(0), Some(5), Some(2), b"abc")
        .await
        .expect("set_slice");
    assert_eq!(
        &m.get_slice(None, Some(5), None).await.expect("get_slice")[..],
        b"aeblc"
    );
    m.move_(0, 6, 5).await.expect("move");
    assert_eq!(
        &m.get_slice(None, Some(5), None).await.expect("get_slice")[..],
        b"world"
    );
    assert_eq!(
        &m.get_slice(None, None, Some(-1)).await.expect("get_slice")[..2],
        b"!\0"
    );

    assert_eq!(m.len().await.expect("len"), 16);
    assert_eq!(m.size().await.expect("size"), 16);
    m.madvise(Advice::MadvNormal, None, None)
        .await
        .expect("madvise");
    m.flush(None, None).await.expect("flush");
    let stat = m.stat().await.expect("stat");
    assert_eq!(
        (stat.length, stat.position, stat.path.as_str()),
        (16, 16, "")
    );

    m.close().await.expect("close");
    m.close().await.expect("closing twice is fine");
    assert_status(
        &m.len().await.expect_err("closed"),
        Code::FailedPrecondition,
        "VALUE_ERROR",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_keep_their_reason() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let session = client.open_session("errors", None).await.expect("open");
    let mut m = session.map(MapOptions::anonymous(4)).await.expect("map");

    m.seek(0, Whence::End).await.expect("seek");
    assert_status(
        &m.read_byte().await.expect_err("at end"),
        Code::OutOfRange,
        "VALUE_ERROR",
    );
    assert_status(
        &m.get(4).await.expect_err("past end"),
        Code::OutOfRange,
        "INDEX_ERROR",
    );
    let err = m.write_byte(256).await.expect_err("not a byte");
    assert_eq!(err.reason(), Some("OVERFLOW_ERROR"));

    let err = session
        .map(MapOptions::file("missing.bin"))
        .await
        .expect_err("missing");
    assert_status(&err, Code::NotFound, "OS_ERROR");
    assert_eq!(err.errno(), Some(2));
    // Through the I/O traits the mmapd error stays reachable.
    let io = std::io::Error::from(err);
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    let inner = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .expect("inner mmapd::Error");
    assert_eq!(inner.errno(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_handles_refuse_writes() {
    let server = TestServer::start().await;
    std::fs::write(server.path("ro.bin"), b"0123456789").expect("seed file");
    let client = client(&server).await;
    let session = client.open_session("ro", None).await.expect("open");
    let mut m = session
        .map(MapOptions::file("ro.bin").access(Access::Read))
        .await
        .expect("map");
    assert_eq!(m.access(), Access::Read);
    assert_eq!(&m.read(None).await.expect("read")[..], b"0123456789");
    assert_status(
        &m.write(b"x").await.expect_err("read-only"),
        Code::FailedPrecondition,
        "TYPE_ERROR",
    );
    // A write buffered by AsyncWrite fails when it is sent, as an io::Error.
    tokio::io::AsyncWriteExt::write_all(&mut m, b"x")
        .await
        .expect("buffered");
    let err = tokio::io::AsyncWriteExt::flush(&mut m)
        .await
        .expect_err("read-only flush");
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .expect("inner");
    assert_eq!(inner.reason(), Some("TYPE_ERROR"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_servers_are_connection_errors() {
    // Bind then drop, so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Client::connect(format!("127.0.0.1:{port}"))
        .await
        .expect_err("nothing listens");
    assert!(err.is_connect_error(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to http://127.0.0.1:{port}: ")),
        "{err}"
    );

    let err = Client::connect("http://[bad").await.expect_err("invalid");
    assert!(matches!(err, Error::InvalidEndpoint { .. }), "{err:?}");
    assert!(!err.is_connect_error());

    // A server that goes away mid-session.
    let server = TestServer::start().await;
    let client = client(&server).await;
    server.shutdown().await;
    let err = client.server_info().await.expect_err("server gone");
    assert!(err.is_connect_error(), "{err:?}");
}
