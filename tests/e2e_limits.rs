//! End-to-end tests of the registry's quotas over real gRPC: each refusal is
//! RESOURCE_EXHAUSTED / QUOTA_EXCEEDED naming its limit and value, nothing
//! is half-done, and a bystander client keeps being served with its data
//! intact. Also: huge names and paths, and paged listings.

mod support;

use mmapd::pb::{self, Access, admin_client::AdminClient, mmap_client::MmapClient};
use prost::Message;
use support::{Fixture, TestServer, assert_error, map, map_req, rq, session};
use tonic::{Code, Status, transport::Channel};

const PAGE: i64 = 4096;

/// Asserts `status` is the `limit` quota with `value`.
#[track_caller]
fn assert_quota(status: &Status, limit: &str, value: u64) {
    let md = assert_error(
        status,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        &format!("{limit} limit of {value} reached"),
    );
    assert_eq!(md["limit"], limit);
    assert_eq!(md["value"], value.to_string());
}

/// Another client, on its own connection and session, with one mapped
/// file holding bytes it wrote before the attack.
struct Bystander {
    c: MmapClient<Channel>,
    handle: String,
}

impl Bystander {
    async fn join(server: &TestServer) -> Bystander {
        let (mut c, _) = server.clients().await;
        let sid = session(&mut c, 0).await;
        let req = pb::MapRequest {
            create: true,
            length: PAGE,
            ..map_req(&sid, "bystander.bin", "", Access::Default)
        };
        let handle = map(&mut c, req).await.expect("bystander map").handle;
        c.write(rq::write(&handle, "kept")).await.expect("write");
        Bystander { c, handle }
    }

    /// Still served, and its bytes are still there.
    async fn still_served(&mut self) {
        let pos = pb::Whence::Set as i32;
        self.c.seek(rq::seek(&self.handle, 0, pos)).await.unwrap();
        let read = self.c.read(rq::read(&self.handle, Some(4))).await;
        assert_eq!(
            &read.expect("bystander read").into_inner().data[..],
            b"kept"
        );
    }
}

async fn info(admin: &mut AdminClient<Channel>) -> pb::ServerInfo {
    admin
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn anon(sid: &str, length: i64) -> pb::MapRequest {
    pb::MapRequest {
        length,
        ..map_req(sid, "", "", Access::Default)
    }
}

fn open(name: &str) -> pb::OpenSessionRequest {
    pb::OpenSessionRequest {
        client_name: name.into(),
        ttl_seconds: 0,
    }
}

#[tokio::test]
async fn sessions_and_client_names_are_capped() {
    let server = TestServer::start_with(|c| {
        c.limits.max_sessions = 3;
        c.limits.max_client_name_length = 16;
    })
    .await;
    let mut by = Bystander::join(&server).await;
    let mut fx = Fixture::on(server).await;
    session(&mut fx.c, 0).await;
    let err = fx.c.open_session(open("x")).await.unwrap_err();
    assert_quota(&err, "max_sessions", 3);
    let err = fx.c.open_session(open(&"n".repeat(17))).await.unwrap_err();
    assert_quota(&err, "max_client_name_length", 16);
    let server_info = info(&mut fx.admin).await;
    assert_eq!(server_info.sessions, 3);
    assert_eq!(server_info.limits.unwrap().max_sessions, 3);
    by.still_served().await;
    // Closing one makes room again.
    let close = pb::CloseSessionRequest {
        session_id: fx.sid.clone(),
    };
    fx.c.close_session(close).await.unwrap();
    session(&mut fx.c, 0).await;
}

#[tokio::test]
async fn handles_per_session_are_capped() {
    let server = TestServer::start_with(|c| c.limits.max_handles_per_session = 2).await;
    let mut by = Bystander::join(&server).await;
    let mut fx = Fixture::on(server).await;
    let first = fx.handle(anon(&fx.sid, PAGE)).await;
    fx.handle(anon(&fx.sid, PAGE)).await;
    let err = fx.map(anon(&fx.sid, PAGE)).await.unwrap_err();
    assert_quota(&err, "max_handles_per_session", 2);
    assert_eq!(info(&mut fx.admin).await.mappings, 3);
    by.still_served().await;
    fx.c.close(rq::close(&first)).await.unwrap();
    fx.handle(anon(&fx.sid, PAGE)).await;
}

#[tokio::test]
async fn mappings_are_capped_and_a_refused_create_makes_no_file() {
    let server = TestServer::start_with(|c| c.limits.max_mappings = 2).await;
    let mut by = Bystander::join(&server).await;
    let mut fx = Fixture::on(server).await;
    fx.handle(anon(&fx.sid, PAGE)).await;
    let create = pb::MapRequest {
        create: true,
        length: PAGE,
        ..fx.file_req("new.bin", Access::Default)
    };
    let err = fx.map(create).await.unwrap_err();
    assert_quota(&err, "max_mappings", 2);
    assert!(!fx.server.path("new.bin").exists());
    // Attaching to a live mapping takes no new one; a private copy does.
    fx.handle(fx.named_req("", "bystander.bin", Access::Write))
        .await;
    let copy = fx.named_req("", "bystander.bin", Access::Copy);
    assert_quota(&fx.map(copy).await.unwrap_err(), "max_mappings", 2);
    assert_eq!(info(&mut fx.admin).await.mappings, 2);
    by.still_served().await;
}

#[tokio::test]
async fn mapping_length_is_capped_at_map_and_resize() {
    let max = 4 * PAGE as u64;
    let server = TestServer::start_with(|c| c.limits.max_mapping_length = max).await;
    let mut by = Bystander::join(&server).await;
    let mut fx = Fixture::on(server).await;
    let err = fx.map(anon(&fx.sid, 5 * PAGE)).await.unwrap_err();
    assert_quota(&err, "max_mapping_length", max);
    let create = pb::MapRequest {
        create: true,
        length: 5 * PAGE,
        ..fx.file_req("big.bin", Access::Default)
    };
    assert_quota(
        &fx.map(create).await.unwrap_err(),
        "max_mapping_length",
        max,
    );
    assert!(!fx.server.path("big.bin").exists());
    let h = fx.handle(anon(&fx.sid, PAGE)).await;
    let err = fx.c.resize(rq::resize(&h, 5 * PAGE)).await.unwrap_err();
    assert_quota(&err, "max_mapping_length", max);
    let len = fx.c.len(pb::LenRequest { handle: h.clone() }).await;
    assert_eq!(len.unwrap().into_inner().length, PAGE as u64);
    // CPython's own argument checks still come first.
    let err = fx.c.resize(rq::resize(&h, -1)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    fx.c.resize(rq::resize(&h, 4 * PAGE)).await.unwrap();
    by.still_served().await;
}

#[tokio::test]
async fn a_terabyte_of_anonymous_memory_is_refused_at_once() {
    // The default limits: what a client gets from a stock server.
    let server = TestServer::start().await;
    let mut by = Bystander::join(&server).await;
    let mut fx = Fixture::on(server).await;
    let max = info(&mut fx.admin)
        .await
        .limits
        .unwrap()
        .max_anonymous_bytes;
    let err = fx.map(anon(&fx.sid, 1 << 40)).await.unwrap_err();
    assert_quota(&err, "max_anonymous_bytes", max);
    let h = fx.handle(anon(&fx.sid, PAGE)).await;
    fx.c.set_item(rq::set_item(&h, 0, 7)).await.unwrap();
    let err = fx.c.resize(rq::resize(&h, 1 << 40)).await.unwrap_err();
    assert_quota(&err, "max_anonymous_bytes", max);
    assert_eq!(info(&mut fx.admin).await.anonymous_bytes, PAGE as u64);
    let item = fx.c.get_item(rq::get_item(&h, 0)).await.unwrap();
    assert_eq!(item.into_inner().value, 7);
    by.still_served().await;
}

#[tokio::test]
async fn anonymous_bytes_are_charged_and_given_back() {
    let max = 4 * PAGE as u64;
    let server = TestServer::start_with(|c| c.limits.max_anonymous_bytes = max).await;
    let mut by = Bystander::join(&server).await;
    let mut fx = Fixture::on(server).await;
    let h = fx.handle(anon(&fx.sid, 2 * PAGE)).await;
    // A private copy of a file may dirty every page: it is charged too.
    let copy = fx.named_req("", "bystander.bin", Access::Copy);
    let copy = fx.handle(copy).await;
    assert_eq!(info(&mut fx.admin).await.anonymous_bytes, 3 * PAGE as u64);
    let err = fx.map(anon(&fx.sid, 2 * PAGE)).await.unwrap_err();
    assert_quota(&err, "max_anonymous_bytes", max);
    let err = fx.c.resize(rq::resize(&h, 4 * PAGE)).await.unwrap_err();
    assert_quota(&err, "max_anonymous_bytes", max);
    fx.c.resize(rq::resize(&h, 3 * PAGE)).await.unwrap();
    assert_eq!(info(&mut fx.admin).await.anonymous_bytes, max);
    fx.c.resize(rq::resize(&h, PAGE)).await.unwrap();
    fx.c.close(rq::close(&copy)).await.unwrap();
    assert_eq!(info(&mut fx.admin).await.anonymous_bytes, PAGE as u64);
    fx.c.close(rq::close(&h)).await.unwrap();
    assert_eq!(info(&mut fx.admin).await.anonymous_bytes, 0);
    by.still_served().await;
}

#[tokio::test]
async fn huge_names_and_paths_are_refused_with_small_replies() {
    let server = TestServer::start().await;
    let mut by = Bystander::join(&server).await;
    let mut fx = Fixture::on(server).await;
    let huge = "n".repeat(9 << 20);
    let err = fx.c.open_session(open(&huge)).await.unwrap_err();
    assert_quota(&err, "max_client_name_length", 1024);
    let named = pb::MapRequest {
        length: PAGE,
        ..fx.named_req("", &huge, Access::Default)
    };
    assert_quota(&fx.map(named).await.unwrap_err(), "max_name_length", 1024);
    let create = pb::MapRequest {
        create: true,
        length: PAGE,
        ..fx.file_req(&huge, Access::Default)
    };
    let err = fx.map(create).await.unwrap_err();
    let md = assert_error(
        &err,
        Code::InvalidArgument,
        "OS_ERROR",
        &format!("[Errno 36] File name too long: '{}...'", &huge[..64]),
    );
    assert_eq!(md["errno"], "36");
    // A garbage session id is not echoed back whole either.
    let err = fx.map(anon(&huge, PAGE)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().len() < 200, "{}", err.message().len());
    let sessions = fx.admin.list_sessions(pb::ListSessionsRequest::default());
    let sessions = sessions.await.unwrap().into_inner();
    let mappings = fx.admin.list_mappings(pb::ListMappingsRequest::default());
    let mappings = mappings.await.unwrap().into_inner();
    assert_eq!((sessions.sessions.len(), mappings.mappings.len()), (2, 1));
    assert!(sessions.encoded_len() + mappings.encoded_len() < 4096);
    by.still_served().await;
}

#[tokio::test]
async fn listings_page_in_a_stable_order() {
    let server = TestServer::start_with(|c| c.limits.max_page_size = 3).await;
    let mut fx = Fixture::on(server).await;
    for _ in 0..7 {
        session(&mut fx.c, 0).await;
    }
    for name in ["e", "a", "d", "b", "c"] {
        fx.handle(pb::MapRequest {
            length: PAGE,
            ..fx.named_req("", name, Access::Default)
        })
        .await;
    }
    fx.handle(fx.named_req("", "b", Access::Copy)).await;

    let (mut ids, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let req = pb::ListSessionsRequest {
            page_size: 0,
            page_token: token,
        };
        let page = fx.admin.list_sessions(req).await.unwrap().into_inner();
        assert!(page.sessions.len() <= 3);
        ids.extend(page.sessions.into_iter().map(|s| s.session_id));
        pages += 1;
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!((ids.len(), pages), (8, 3));
    assert!(ids.is_sorted() && ids.contains(&fx.sid));

    let (mut names, mut token) = (Vec::new(), String::new());
    loop {
        let req = pb::ListMappingsRequest {
            page_size: 2,
            page_token: token,
        };
        let page = fx.admin.list_mappings(req).await.unwrap().into_inner();
        assert!(page.mappings.len() <= 2);
        names.extend(page.mappings.into_iter().map(|m| (m.name, m.access)));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    // Mapped with ACCESS_DEFAULT, listed as the ACCESS_WRITE they behave as.
    let (w, c) = (Access::Write as i32, Access::Copy as i32);
    let expected = [("a", w), ("b", w), ("b", c), ("c", w), ("d", w), ("e", w)];
    let expected: Vec<(String, i32)> = expected.map(|(n, a)| (n.to_owned(), a)).into();
    assert_eq!(names, expected);

    let bad = pb::ListSessionsRequest {
        page_size: 0,
        page_token: "not a token".into(),
    };
    let err = fx.admin.list_sessions(bad).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "INVALID_REQUEST",
        "invalid page_token",
    );
    let bad = pb::ListMappingsRequest {
        page_size: 0,
        page_token: "zz:a".into(),
    };
    let err = fx.admin.list_mappings(bad).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "INVALID_REQUEST",
        "invalid page_token",
    );

    // The Rust client follows the pages and sees every row.
    let client = mmapd::Client::connect(fx.server.endpoint()).await.unwrap();
    assert_eq!(client.list_sessions().await.unwrap().len(), 8);
    assert_eq!(client.list_mappings().await.unwrap().len(), 6);
}
