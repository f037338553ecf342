//! End-to-end access control against a real server with an access file:
//! credentials (none or a wrong token is UNAUTHENTICATED, health needs
//! none), roles (`read` cannot write), path prefixes (alice cannot map
//! `bob/`), session ownership (another identity's sessions and handles are
//! NOT_FOUND), filtered listings, mTLS names, and SIGHUP reloads.

mod support;

#[path = "support/certs.rs"]
mod certs;

use std::{collections::HashMap, path::PathBuf, time::Duration};

use certs::Ca;
use mmapd::pb::{self, Access, admin_client::AdminClient, mmap_client::MmapClient};
use mmapd_server::{TlsFiles, access::token_hash};
use support::{TestServer, map_req, rq};
use tonic::{
    Code, Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_types::StatusExt;

type Stub = MmapClient<InterceptedService<Channel, Bearer>>;
type AdminStub = AdminClient<InterceptedService<Channel, Bearer>>;

/// Sends `authorization: Bearer <token>` when it has a token.
#[derive(Clone)]
struct Bearer(Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            let value = format!("Bearer {token}").parse().unwrap();
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    }
}

const IDENTITIES: [(&str, &str, &str); 4] = [
    ("alice", "readwrite", r#"["alice/", "shared/"]"#),
    ("bob", "readwrite", r#"["bob/", "shared/"]"#),
    ("reader", "read", r#"[""]"#),
    ("root", "admin", r#"[""]"#),
];

fn token(name: &str) -> String {
    format!("{name}-secret-token")
}

fn access_file(names: &[&str]) -> String {
    IDENTITIES
        .iter()
        .filter(|(n, ..)| names.contains(n))
        .map(|(name, role, paths)| {
            format!(
                "[[identity]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\npaths = {paths}\n\n",
                token_hash(&token(name))
            )
        })
        .collect()
}

/// A server whose access file (in its own temp dir) holds `names`.
async fn server(names: &[&str]) -> (TestServer, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.toml");
    std::fs::write(&file, access_file(names)).unwrap();
    let path = file.clone();
    let server = TestServer::start_with(|c| c.access_file = Some(path)).await;
    for d in ["alice", "bob", "shared"] {
        std::fs::create_dir(server.path(d)).unwrap();
        std::fs::write(server.path(&format!("{d}/f")), vec![b'.'; 4096]).unwrap();
    }
    (server, dir, file)
}

async fn stubs(server: &TestServer, token: Option<String>) -> (Stub, AdminStub) {
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (
        MmapClient::with_interceptor(channel.clone(), Bearer(token.clone())),
        AdminClient::with_interceptor(channel, Bearer(token)),
    )
}

async fn as_(server: &TestServer, name: &str) -> (Stub, AdminStub) {
    stubs(server, Some(token(name))).await
}

/// The code, reason and metadata of a status with exactly one ErrorInfo.
#[track_caller]
fn refusal(status: &Status) -> (Code, String, HashMap<String, String>) {
    let infos = status.get_error_details().error_info().cloned();
    let all = status.get_error_details_vec();
    assert_eq!(all.len(), 1, "exactly one detail in {status:?}");
    let info = infos.expect("an ErrorInfo");
    (status.code(), info.reason, info.metadata)
}

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    res: Result<T, Status>,
    code: Code,
    reason: &str,
) -> HashMap<String, String> {
    let status = res.expect_err("refused");
    let (c, r, md) = refusal(&status);
    assert_eq!((c, r.as_str()), (code, reason), "{status:?}");
    md
}

async fn session(stub: &mut Stub) -> String {
    stub.open_session(pb::OpenSessionRequest {
        client_name: "t".into(),
        ttl_seconds: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .session_id
}

async fn map(
    stub: &mut Stub,
    session: &str,
    path: &str,
    name: &str,
    access: Access,
) -> Result<String, Status> {
    let res = stub.map(map_req(session, path, name, access)).await?;
    Ok(res.into_inner().handle)
}

#[tokio::test]
async fn no_token_or_a_wrong_one_is_unauthenticated_but_health_answers() {
    let (server, _dir, _) = server(&["alice"]).await;
    for token in [None, Some("wrong".to_owned()), Some(String::new())] {
        let (mut mmap, mut admin) = stubs(&server, token).await;
        let open = mmap.open_session(pb::OpenSessionRequest::default()).await;
        assert_refused(open, Code::Unauthenticated, "UNAUTHENTICATED");
        let info = admin.get_server_info(pb::GetServerInfoRequest {}).await;
        assert_refused(info, Code::Unauthenticated, "UNAUTHENTICATED");
    }
    // A malformed header is refused the same way.
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = MmapClient::with_interceptor(channel.clone(), |mut req: Request<()>| {
        req.metadata_mut().insert(
            "authorization",
            format!("Basic {}", token("alice")).parse().unwrap(),
        );
        Ok(req)
    });
    let open = raw.open_session(pb::OpenSessionRequest::default()).await;
    assert_refused(open, Code::Unauthenticated, "UNAUTHENTICATED");

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no credential");
    assert_eq!(check.into_inner().status, 1, "SERVING");

    // The right token gets in on the same server.
    let (mut alice, _) = as_(&server, "alice").await;
    session(&mut alice).await;
}

#[tokio::test]
async fn read_role_cannot_write() {
    let (server, _dir, _) = server(&["reader"]).await;
    let (mut r, _) = as_(&server, "reader").await;
    let s = session(&mut r).await;
    for access in [Access::Write, Access::Default] {
        let md = assert_refused(
            map(&mut r, &s, "alice/f", "", access).await,
            Code::PermissionDenied,
            "ACCESS_DENIED",
        );
        assert_eq!(md["identity"], "reader");
        assert_eq!(md["target"], "alice/f");
        assert_eq!(md["exception"], "PermissionError");
    }
    // Creating a file is a write, even for a READ map.
    let create = pb::MapRequest {
        length: 4096,
        create: true,
        ..map_req(&s, "alice/new", "", Access::Read)
    };
    let md = assert_refused(r.map(create).await, Code::PermissionDenied, "ACCESS_DENIED");
    assert_eq!(md["action"], "create");
    assert!(!server.path("alice/new").exists());
    let h = map(&mut r, &s, "alice/f", "", Access::Read).await.unwrap();
    let data = r
        .read(rq::read(&h, Some(3)))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(&data[..], b"...");
    // Writing a READ map is CPython's TypeError; flush, resize and move are
    // the role's refusals.
    assert_refused(
        r.write(rq::write(&h, &b"x"[..])).await,
        Code::FailedPrecondition,
        "TYPE_ERROR",
    );
    assert_refused(
        r.flush(rq::flush(&h)).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    assert_refused(
        r.resize(rq::resize(&h, 8192)).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    let mv = pb::MoveRequest {
        handle: h.clone(),
        dest: 0,
        src: 1,
        count: 1,
    };
    let md = assert_refused(r.r#move(mv).await, Code::PermissionDenied, "ACCESS_DENIED");
    assert_eq!(md["action"], "move");
    // A private copy is the reader's own memory.
    let c = map(&mut r, &s, "alice/f", "", Access::Copy).await.unwrap();
    r.write(rq::write(&c, &b"xy"[..])).await.unwrap();
    assert_eq!(std::fs::read(server.path("alice/f")).unwrap()[..2], *b"..");
}

#[tokio::test]
async fn alice_cannot_map_bobs_paths_and_shares_only_what_both_cover() {
    let (server, _dir, _) = server(&["alice", "bob"]).await;
    let (mut a, _) = as_(&server, "alice").await;
    let (mut b, _) = as_(&server, "bob").await;
    let (sa, sb) = (session(&mut a).await, session(&mut b).await);
    for (path, name) in [
        ("bob/f", ""),
        ("", "bob/region"),
        ("alice/f", "bob/f"),
        ("", "region"),
    ] {
        let md = assert_refused(
            map(&mut a, &sa, path, name, Access::Write).await,
            Code::PermissionDenied,
            "ACCESS_DENIED",
        );
        assert_eq!(md["identity"], "alice");
        assert_eq!(md["action"], "map");
    }
    // Bob's named mapping of his own file: alice cannot attach to it.
    map(&mut b, &sb, "bob/f", "", Access::Write).await.unwrap();
    assert_refused(
        map(&mut a, &sa, "", "bob/f", Access::Write).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    // A name both cover is shared.
    let hb = map(&mut b, &sb, "shared/f", "", Access::Write)
        .await
        .unwrap();
    let ha = map(&mut a, &sa, "", "shared/f", Access::Write)
        .await
        .unwrap();
    b.write(rq::write(&hb, &b"hi"[..])).await.unwrap();
    let seen = a
        .read(rq::read(&ha, Some(2)))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(&seen[..], b"hi");
    // An unnamed anonymous region needs no prefix: its fresh name is nobody's.
    let anon = pb::MapRequest {
        length: 4096,
        ..map_req(&sa, "", "", Access::Write)
    };
    a.map(anon).await.unwrap();
}

#[tokio::test]
async fn alice_cannot_see_renew_close_or_use_bobs_sessions_and_handles() {
    let (server, _dir, _) = server(&["alice", "bob", "root"]).await;
    let (mut a, a_admin) = as_(&server, "alice").await;
    let (mut b, b_admin) = as_(&server, "bob").await;
    let (_, root) = as_(&server, "root").await;
    let sa = session(&mut a).await;
    let sb = session(&mut b).await;
    let ha = map(&mut a, &sa, "alice/f", "", Access::Write)
        .await
        .unwrap();
    let hb = map(&mut b, &sb, "bob/f", "", Access::Write).await.unwrap();

    let nf = |res: Result<_, Status>| assert_refused(res, Code::NotFound, "SESSION_NOT_FOUND");
    nf(a.keep_alive(pb::KeepAliveRequest {
        session_id: sb.clone(),
    })
    .await
    .map(drop));
    nf(a.close_session(pb::CloseSessionRequest {
        session_id: sb.clone(),
    })
    .await
    .map(drop));
    nf(map(&mut a, &sb, "shared/f", "", Access::Write)
        .await
        .map(drop));
    let hnf = |res: Result<_, Status>| assert_refused(res, Code::NotFound, "HANDLE_NOT_FOUND");
    hnf(a.read(rq::read(&hb, Some(1))).await.map(drop));
    hnf(a.write(rq::write(&hb, &b"x"[..])).await.map(drop));
    hnf(a.seek(rq::seek(&hb, 1, 0)).await.map(drop));
    hnf(a.close(rq::close(&hb)).await.map(drop));
    hnf(a
        .read_stream(rq::read_stream(&hb, None, None, 0))
        .await
        .map(drop));

    // Bob's session and handle are untouched.
    b.keep_alive(pb::KeepAliveRequest {
        session_id: sb.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        b.tell(rq::tell(&hb)).await.unwrap().into_inner().position,
        0
    );
    let read = b
        .read(rq::read(&hb, Some(1)))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(&read[..], b".");

    // Listings: each sees their own, the admin everything.
    let sessions = |mut admin: AdminStub| async move {
        let rows = admin
            .list_sessions(pb::ListSessionsRequest::default())
            .await
            .unwrap();
        let mut ids: Vec<String> = rows
            .into_inner()
            .sessions
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        ids.sort();
        ids
    };
    let mappings = |mut admin: AdminStub| async move {
        let rows = admin
            .list_mappings(pb::ListMappingsRequest::default())
            .await
            .unwrap();
        rows.into_inner()
            .mappings
            .into_iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(sessions(a_admin.clone()).await, std::slice::from_ref(&sa));
    assert_eq!(sessions(b_admin.clone()).await, std::slice::from_ref(&sb));
    let mut both = vec![sa.clone(), sb.clone()];
    both.sort();
    assert_eq!(sessions(root.clone()).await, both);
    assert_eq!(mappings(a_admin.clone()).await, ["alice/f"]);
    assert_eq!(mappings(b_admin.clone()).await, ["bob/f"]);
    assert_eq!(mappings(root.clone()).await, ["alice/f", "bob/f"]);

    // The owner can close what the intruder could not.
    a.close(rq::close(&ha)).await.unwrap();
    b.close_session(pb::CloseSessionRequest { session_id: sb })
        .await
        .unwrap();
}

fn tls_files(server: &certs::Pem, ca: &Ca) -> TlsFiles {
    TlsFiles {
        cert: server.cert.clone().into_bytes(),
        key: server.key.clone().into_bytes(),
        client_ca: Some(ca.cert.clone().into_bytes()),
    }
}

async fn mtls_channel(
    server: &TestServer,
    ca: &Ca,
    client: &certs::Pem,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.cert))
        .identity(Identity::from_pem(&client.cert, &client.key))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{}", server.addr))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
}

#[tokio::test]
async fn mtls_maps_a_certificate_to_its_identity() {
    let ca = Ca::new("clients");
    let other = Ca::new("elsewhere");
    let cert = ca.server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.toml");
    // alice by certificate alone: no token in the file for her.
    std::fs::write(
        &file,
        "[[identity]]\nname = \"alice\"\nrole = \"readwrite\"\npaths = [\"alice/\"]\n",
    )
    .unwrap();
    let files = tls_files(&cert, &ca);
    let server = TestServer::start_with(|c| {
        c.tls = Some(files);
        c.access_file = Some(file);
    })
    .await;
    std::fs::create_dir(server.path("alice")).unwrap();
    std::fs::write(server.path("alice/f"), vec![0; 4096]).unwrap();

    let channel = mtls_channel(&server, &ca, &ca.client("alice"))
        .await
        .unwrap();
    let mut a = MmapClient::with_interceptor(channel, Bearer(None));
    let s = session(&mut a).await;
    map(&mut a, &s, "alice/f", "", Access::Write).await.unwrap();
    let md = assert_refused(
        map(&mut a, &s, "bob/f", "", Access::Write).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    assert_eq!(md["identity"], "alice");

    // A certificate of the CA whose name is no identity.
    let channel = mtls_channel(&server, &ca, &ca.client("mallory"))
        .await
        .unwrap();
    let mut m = MmapClient::new(channel);
    let open = m.open_session(pb::OpenSessionRequest::default()).await;
    assert_refused(open, Code::Unauthenticated, "UNAUTHENTICATED");

    // A certificate from another CA never gets a call through.
    let refused = async {
        let channel = mtls_channel(&server, &ca, &other.client("alice")).await?;
        MmapClient::new(channel)
            .open_session(pb::OpenSessionRequest::default())
            .await
            .map_err(|s| -> Box<dyn std::error::Error> { s.into() })?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .expect("no hang");
    assert!(outcome.is_err(), "a foreign CA's certificate was accepted");
}

#[tokio::test]
async fn sighup_reload_adds_and_removes_identities_without_dropping_clients() {
    let (server, _dir, file) = server(&["alice", "bob"]).await;
    let (mut a, _) = as_(&server, "alice").await;
    let sa = session(&mut a).await;
    let ha = map(&mut a, &sa, "alice/f", "", Access::Write)
        .await
        .unwrap();
    let (mut b, _) = as_(&server, "bob").await;
    let sb = session(&mut b).await;
    let (mut root, root_admin) = as_(&server, "root").await;
    assert_refused(
        root.open_session(pb::OpenSessionRequest::default()).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );

    std::fs::write(&file, access_file(&["alice", "root"])).unwrap();
    hangup();
    // The reload happens on the server's own task; wait for it.
    let mut waited = Duration::ZERO;
    while root
        .open_session(pb::OpenSessionRequest::default())
        .await
        .is_err()
    {
        assert!(
            waited < Duration::from_secs(20),
            "the reload never took effect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert_refused(
        b.open_session(pb::OpenSessionRequest::default()).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    // What bob was granted ended with him: his session is gone.
    let rows = root_admin
        .clone()
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap();
    let ids: Vec<String> = rows
        .into_inner()
        .sessions
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert!(ids.contains(&sa) && !ids.contains(&sb), "{ids:?}");
    // Alice, kept, goes on with the same session and handle.
    a.keep_alive(pb::KeepAliveRequest {
        session_id: sa.clone(),
    })
    .await
    .unwrap();
    a.write(rq::write(&ha, &b"still"[..])).await.unwrap();

    // A broken file is ignored: the identities stay as they were.
    std::fs::write(&file, "[[identity]\nbroken").unwrap();
    hangup();
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.keep_alive(pb::KeepAliveRequest { session_id: sa })
        .await
        .unwrap();
    root.open_session(pb::OpenSessionRequest::default())
        .await
        .unwrap();
}

/// Sends SIGHUP to this process, as `kill -HUP` does to the daemon.
fn hangup() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn the_client_library_reports_a_wrong_token_as_unauthenticated() {
    let (server, _dir, _) = server(&["alice"]).await;
    for _ in 0..20 {
        let options = mmapd::ConnectOptions {
            token: Some("wrong".into()),
            ..mmapd::ConnectOptions::default()
        };
        let client = mmapd::Client::connect_with(server.endpoint(), options)
            .await
            .unwrap();
        let err = client.server_info().await.unwrap_err();
        assert_eq!(err.code(), Some(Code::Unauthenticated), "{err}");
    }
}

#[tokio::test]
async fn a_symlink_under_my_prefix_does_not_reach_another_tenants_file() {
    let (server, _dir, _) = server(&["alice", "root"]).await;
    std::os::unix::fs::symlink("../bob/f", server.path("alice/link")).unwrap();
    let (mut a, _) = as_(&server, "alice").await;
    let sa = session(&mut a).await;
    let refused = map(&mut a, &sa, "alice/link", "", Access::Write).await;
    let (_, reason, md) = refusal(&refused.expect_err("a link out of my prefix"));
    assert_eq!(
        (reason.as_str(), md["errno"].as_str()),
        ("OS_ERROR", "40"),
        "ELOOP: {md:?}"
    );
    // Someone who may map everything follows links inside the root.
    let (mut root, _) = as_(&server, "root").await;
    let sr = session(&mut root).await;
    map(&mut root, &sr, "alice/link", "", Access::Read)
        .await
        .unwrap();
}

type FilesStub = pb::files_client::FilesClient<InterceptedService<Channel, Bearer>>;

async fn files_as(server: &TestServer, name: &str) -> FilesStub {
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::files_client::FilesClient::with_interceptor(channel, Bearer(Some(token(name))))
}

async fn listed(f: &mut FilesStub, path: &str) -> Result<Vec<String>, Status> {
    let req = pb::ListRequest {
        path: path.into(),
        recursive: true,
        ..Default::default()
    };
    let reply = f.list(req).await?.into_inner();
    Ok(reply.entries.into_iter().map(|e| e.path).collect())
}

/// Files calls are checked by path like Map: alice sees and changes only
/// what lies under her prefixes (and the folders on the way to them), a
/// reader changes nothing, and a refusal changes nothing.
#[tokio::test]
async fn files_calls_are_checked_per_path_and_role() {
    let (server, _dir, _) = server(&["alice", "reader", "root"]).await;
    let mut alice = files_as(&server, "alice").await;
    let mut reader = files_as(&server, "reader").await;
    let mut root = files_as(&server, "root").await;

    assert_eq!(
        listed(&mut alice, "").await.unwrap(),
        ["alice", "alice/f", "shared", "shared/f"]
    );
    assert_refused(
        listed(&mut alice, "bob").await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    assert_eq!(listed(&mut root, "").await.unwrap().len(), 6);

    let mkdir = |path: &str| pb::MakeDirRequest {
        path: path.into(),
        parents: true,
    };
    alice.make_dir(mkdir("alice/new")).await.unwrap();
    let md = assert_refused(
        alice.make_dir(mkdir("bob/new")).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    assert_eq!(
        (md["identity"].as_str(), md["action"].as_str()),
        ("alice", "mkdir")
    );
    let stat = |path: &str| pb::StatPathRequest { path: path.into() };
    assert_refused(
        alice.stat_path(stat("bob/f")).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    alice.stat_path(stat("alice/f")).await.unwrap();
    // Rename needs both ends under a prefix.
    let mv = |from: &str, to: &str| pb::RenameRequest {
        from: from.into(),
        to: to.into(),
        replace: false,
    };
    assert_refused(
        alice.rename(mv("alice/f", "bob/stolen")).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    assert_refused(
        alice.rename(mv("bob/f", "alice/stolen")).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    alice.rename(mv("alice/f", "shared/g")).await.unwrap();
    let rm = |path: &str| pb::RemoveRequest {
        path: path.into(),
        recursive: true,
    };
    assert_refused(
        alice.remove(rm("bob")).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    // A reader lists everything and changes nothing.
    assert_eq!(listed(&mut reader, "").await.unwrap().len(), 7);
    for status in [
        reader.remove(rm("shared/g")).await.map(drop),
        reader.make_dir(mkdir("x")).await.map(drop),
        reader.rename(mv("shared/g", "shared/h")).await.map(drop),
        reader
            .truncate(pb::TruncateRequest {
                path: "shared/g".into(),
                size: 0,
                ..Default::default()
            })
            .await
            .map(drop),
    ] {
        assert_refused(status, Code::PermissionDenied, "ACCESS_DENIED");
    }
    assert!(server.path("bob/f").exists() && server.path("shared/g").exists());
    assert_eq!(
        std::fs::metadata(server.path("shared/g")).unwrap().len(),
        4096
    );
}
