//! Seeded RPC fuzzer: several thousand random calls to every RPC of `Mmap`
//! and `Admin` and to the health check, against a real in-process server
//! with a 1 MiB message limit and small mapping limits.
//!
//! The calls mix well-formed requests with random fields (every integer
//! extreme, values around the page and the mapping's length, unknown enum
//! numbers, hostile strings, odd-sized bytes; valid, closed, foreign and
//! made-up handles and sessions; WriteStreams with missing or bad first
//! chunks; ReadStreams with extreme offsets and chunk sizes), malformed raw
//! protobuf bodies ([`raw`]), requests over the message limit, and valid
//! sequences whose bytes are read back. Every error must be a status with
//! exactly one `ErrorInfo` (domain "mmapd", a reason), never INTERNAL or
//! UNKNOWN; over-limit requests must get RESOURCE_EXHAUSTED with reason
//! MESSAGE_TOO_LARGE. Every [`CHECK_EVERY`] calls and at the end, the health
//! check must say SERVING, a fresh client must round-trip bytes, and a
//! canary file written first must be intact; a bystander client does round
//! trips on its own connection all along.
//!
//! `MMAPD_FUZZ_SEED` replays a run (the seed is printed), `MMAPD_FUZZ_CALLS`
//! changes the number of calls, `MMAPD_FUZZ_TRACE=1` prints every call
//! before it is sent (for a replay when the process dies). A failure prints
//! the distinct classes of failure with counts, then the first example of
//! each with its call index and request.

#[path = "fuzz/extra.rs"]
mod extra;
#[path = "fuzz/raw.rs"]
mod raw;
#[path = "fuzz/report.rs"]
mod report;
#[path = "fuzz/state.rs"]
mod state;
mod support;
#[path = "fuzz/typed.rs"]
mod typed;
#[path = "fuzz/values.rs"]
mod values;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use mmapd::pb::{self, mmap_client::MmapClient};
use report::{Call, Expect, Outcome};
use state::{Fuzzer, Pool, answer};
use support::TestServer;
use tonic::{Code, client::Grpc, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

/// Calls per run unless `MMAPD_FUZZ_CALLS` says otherwise.
const DEFAULT_CALLS: usize = 3_000;
/// Calls between checks that the server is up and the canary intact.
const CHECK_EVERY: usize = 250;
/// The server's message limit in this test.
const MESSAGE_LIMIT: usize = 1 << 20;
/// The server's largest mapping in this test.
const MAPPING_LIMIT: u64 = 4 << 20;
/// The canary: written before the fuzzing, read back at every check. No
/// fuzzed path or name can reach it.
const CANARY: &str = "canary-7f3a.keep";

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_calls_leave_the_server_up_and_every_error_clean() {
    let seed = env_number("MMAPD_FUZZ_SEED").unwrap_or_else(rand::random);
    let calls = env_number("MMAPD_FUZZ_CALLS").map_or(DEFAULT_CALLS, |n| n as usize);
    println!("fuzz: seed {seed}, {calls} calls; replay with MMAPD_FUZZ_SEED={seed}");
    let started = Instant::now();

    let server = TestServer::start_with(|config| {
        config.limits.max_message_size = MESSAGE_LIMIT;
        config.limits.max_mapping_length = MAPPING_LIMIT;
        config.limits.max_anonymous_bytes = 16 * MAPPING_LIMIT;
    })
    .await;
    let page = page_size(&server).await;
    prepare_root(&server, page);
    let canary: Vec<u8> = (0..3 * page + 11).map(|i| (i * 7 + 3) as u8).collect();

    let mut fz = connect(&server, seed, page).await;
    write_canary(&mut fz, &canary).await;
    fz.sink_session = support::session(&mut fz.c, 0).await;
    let req = pb::MapRequest {
        length: page,
        ..support::map_req(&fz.sink_session, "", "", pb::Access::Write)
    };
    fz.sink = support::map(&mut fz.c, req)
        .await
        .expect("map the sink")
        .handle;
    fz.tidy().await;
    probe_quotas(&mut fz).await;

    let stop = Arc::new(AtomicBool::new(false));
    let bystander = tokio::spawn(bystander(server.endpoint(), Arc::clone(&stop)));

    let mut up = true;
    while fz.report.calls < calls && up {
        let before = fz.report.calls;
        match fz.g.below(100) {
            0..=72 => {
                let m = fz.g.below(raw::METHODS.len() + 2);
                // Map twice as often: new handles keep the pool fresh.
                fz.typed(if m >= raw::METHODS.len() { 3 } else { m }).await;
            }
            73..=90 => fz.raw_call().await,
            91..=93 => fz.oversize_call().await,
            _ => fz.sequence().await,
        }
        fz.tidy().await;
        if before / CHECK_EVERY != fz.report.calls / CHECK_EVERY {
            up = checkpoint(&mut fz, &server, &canary).await;
        }
    }
    if up {
        up = checkpoint(&mut fz, &server, &canary).await;
    }

    stop.store(true, Ordering::Release);
    let (rounds, trouble) = bystander.await.expect("bystander task");
    for problem in trouble {
        let call = call("bystander", "round trip", String::new());
        let index = fz.report.calls;
        fz.report
            .fail(index, &call, "-".into(), problem, String::new());
    }
    println!(
        "fuzz: {} calls ({} errors) in {:.1?}; bystander {rounds} round trips; {} requests not sent \
         (over max_mapping_length, which the server does not enforce); codes {:?}; slowest: {}",
        fz.report.calls,
        fz.report.errors,
        started.elapsed(),
        fz.guarded,
        fz.report.by_code,
        fz.report.slowest(8)
    );
    assert!(up, "{}", fz.report.render(seed));
    assert!(!fz.report.failed(), "{}", fz.report.render(seed));
}

/// The server's page size.
async fn page_size(server: &TestServer) -> i64 {
    let (_, mut admin) = server.clients().await;
    let info = admin
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .expect("server info");
    info.into_inner().page_size as i64
}

/// Files the fuzzed Maps use: regular files of several sizes, an empty one,
/// a directory, and symlinks inside, outside and to themselves.
fn prepare_root(server: &TestServer, page: i64) {
    let page = page as usize;
    for (name, len) in [
        ("f0.bin", 3 * page + 17),
        ("f1.bin", page),
        ("f2.bin", 100),
        ("f3.bin", 2 << 20),
    ] {
        let data: Vec<u8> = (0..len)
            .map(|i| {
                if i % 61 == 60 {
                    b'\n'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        std::fs::write(server.path(name), data).unwrap();
    }
    std::fs::write(server.path("empty.bin"), b"").unwrap();
    std::fs::create_dir(server.path("sub")).unwrap();
    std::fs::write(server.path("sub/f.bin"), vec![1u8; page]).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", server.path("out")).unwrap();
    std::os::unix::fs::symlink("loop", server.path("loop")).unwrap();
    std::os::unix::fs::symlink("f1.bin", server.path("in")).unwrap();
}

/// The main client, the other connection (owner of the foreign session)
/// and a fresh fuzzer state.
async fn connect(server: &TestServer, seed: u64, page: i64) -> Fuzzer {
    let (c, admin) = server.clients().await;
    let (other, _) = server.clients().await;
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    Fuzzer {
        g: values::Gen::new(seed, page),
        c,
        admin,
        health: HealthClient::new(channel.clone()),
        raw: Grpc::new(channel).max_decoding_message_size(64 << 20),
        other,
        pool: Pool::default(),
        page,
        guard: None,
        guarded: 0,
        sink: String::new(),
        sink_session: String::new(),
        focus: None,
        serial: 0,
        report: report::Report::default(),
        trace: std::env::var_os("MMAPD_FUZZ_TRACE").is_some_and(|v| v == "1"),
    }
}

fn call(kind: &'static str, method: &str, request: String) -> Call {
    Call {
        kind,
        method: method.to_owned(),
        request,
        expect: Expect::Clean,
        sent: std::time::Instant::now(),
    }
}

/// Writes the canary through the server, flushes it and closes its session.
async fn write_canary(fz: &mut Fuzzer, canary: &[u8]) {
    let c = &mut fz.c;
    let sid = support::session(c, 0).await;
    let handle = support::map(
        c,
        pb::MapRequest {
            length: canary.len() as i64,
            create: true,
            ..support::map_req(&sid, CANARY, "", pb::Access::Write)
        },
    )
    .await
    .expect("map the canary")
    .handle;
    c.write(support::rq::write(&handle, canary.to_vec()))
        .await
        .expect("write the canary");
    c.flush(support::rq::flush(&handle))
        .await
        .expect("flush the canary");
    c.close_session(pb::CloseSessionRequest { session_id: sid })
        .await
        .expect("close the canary's session");
}

/// Asks for one page more than `max_mapping_length` three ways (anonymous
/// Map, Map(create), Resize). Each must be refused with QUOTA_EXCEEDED. If
/// the server accepts any, that is a failure, and the fuzzer stops sending
/// requests that would really allocate that much (a server without the
/// quota would take the machine's memory or disk).
async fn probe_quotas(fz: &mut Fuzzer) {
    let sid = fz.own_session().await;
    let over = MAPPING_LIMIT as i64 + fz.page;
    let small = support::map(
        &mut fz.c,
        pb::MapRequest {
            length: fz.page,
            ..support::map_req(&sid, "", "", pb::Access::Write)
        },
    )
    .await
    .expect("map a small anonymous region");
    let mut accepted = false;
    for (method, what) in [
        ("Mmap/Map", "anonymous"),
        ("Mmap/Map", "create"),
        ("Mmap/Resize", "anonymous"),
    ] {
        let request = format!("{what} {method} of max_mapping_length + 1 page ({over} bytes)");
        let call = call("quota", method, request);
        let (outcome, ok) = match (method, what) {
            ("Mmap/Resize", _) => {
                let (o, r) = answer(fz.c.resize(support::rq::resize(&small.handle, over))).await;
                (o, r.is_some())
            }
            (_, path) => {
                let path = if path == "create" {
                    "quota-probe.bin"
                } else {
                    ""
                };
                let req = pb::MapRequest {
                    length: over,
                    create: !path.is_empty(),
                    ..support::map_req(&sid, path, "", pb::Access::Write)
                };
                let (o, r) = answer(fz.c.map(req)).await;
                if let Some(r) = &r {
                    let _ = fz.c.close(support::rq::close(&r.handle)).await;
                }
                (o, r.is_some())
            }
        };
        fz.record(&call, &outcome);
        let index = fz.report.calls;
        let problem = match &outcome {
            Outcome::Ok => Some("accepted: max_mapping_length not enforced".to_owned()),
            Outcome::Err(s)
                if s.code() != Code::ResourceExhausted
                    || s.get_error_details()
                        .error_info()
                        .map(|i| i.reason.as_str())
                        != Some("QUOTA_EXCEEDED") =>
            {
                Some("not refused with RESOURCE_EXHAUSTED/QUOTA_EXCEEDED".to_owned())
            }
            Outcome::Err(_) | Outcome::Timeout => None,
        };
        if let Some(problem) = problem {
            let answer = report::describe(&outcome);
            let code = if ok { "OK".into() } else { "-".into() };
            fz.report.fail(index, &call, code, problem, answer);
        }
        accepted |= ok;
    }
    let _ = fz.c.close(support::rq::close(&small.handle)).await;
    if accepted {
        fz.guard = Some(MAPPING_LIMIT);
        println!(
            "fuzz: the server accepts mappings over max_mapping_length; requests over it are not sent"
        );
    }
}

/// Health says SERVING, a fresh client round-trips bytes, the canary is
/// intact (through the server and on disk), and our sessions are renewed.
/// Returns false when the server is down (the run then stops).
async fn checkpoint(fz: &mut Fuzzer, server: &TestServer, canary: &[u8]) -> bool {
    let index = fz.report.calls;
    let fail = |fz: &mut Fuzzer, what: &str, problem: String| {
        let call = call("checkpoint", what, format!("after call #{index}"));
        fz.report
            .fail(index, &call, "-".into(), problem, String::new());
    };
    let serving = tokio::time::timeout(
        state::CALL_TIMEOUT,
        fz.health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await;
    match serving {
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => {}
        other => {
            fail(fz, "Health/Check", format!("not SERVING: {other:?}"));
            return false;
        }
    }
    match tokio::time::timeout(
        state::CALL_TIMEOUT * 3,
        fresh_round_trip(server, canary, index),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(problem)) => fail(fz, "round trip", problem),
        Err(_) => fail(fz, "round trip", "timeout".into()),
    }
    match std::fs::read(server.path(CANARY)) {
        Ok(bytes) if bytes == canary => {}
        other => fail(
            fz,
            "canary on disk",
            format!("changed: {:?}", other.map(|b| b.len())),
        ),
    }
    for sid in fz.pool.sessions.clone() {
        let _ =
            fz.c.keep_alive(pb::KeepAliveRequest { session_id: sid })
                .await;
    }
    let sid = fz.sink_session.clone();
    let _ =
        fz.c.keep_alive(pb::KeepAliveRequest { session_id: sid })
            .await;
    let sid = fz.pool.foreign.clone();
    let _ = fz
        .other
        .keep_alive(pb::KeepAliveRequest { session_id: sid })
        .await;
    true
}

/// On a new connection: OpenSession, Map(create), Write, Read of the same
/// bytes; then a read-only Map of the canary, which must be unchanged.
async fn fresh_round_trip(server: &TestServer, canary: &[u8], index: usize) -> Result<(), String> {
    let (mut c, _) = server.clients().await;
    let sid = support::session(&mut c, 0).await;
    let path = format!("probe-{index}.bin");
    let data: Vec<u8> = (0..5000u32)
        .map(|i| (i * 31 + index as u32) as u8)
        .collect();
    let req = pb::MapRequest {
        length: data.len() as i64,
        create: true,
        ..support::map_req(&sid, &path, "", pb::Access::Write)
    };
    let handle = support::map(&mut c, req)
        .await
        .map_err(|s| format!("Map: {s:?}"))?
        .handle;
    c.write(support::rq::write(&handle, data.clone()))
        .await
        .map_err(|s| format!("Write: {s:?}"))?;
    c.seek(support::rq::seek(&handle, 0, 0))
        .await
        .map_err(|s| format!("Seek: {s:?}"))?;
    let got = c
        .read(support::rq::read(&handle, None))
        .await
        .map_err(|s| format!("Read: {s:?}"))?;
    if got.get_ref().data[..] != data[..] {
        return Err("Read returned other bytes than Write wrote".into());
    }
    let req = support::map_req(&sid, CANARY, "canary-check", pb::Access::Read);
    let canary_handle = support::map(&mut c, req)
        .await
        .map_err(|s| format!("Map canary: {s:?}"))?
        .handle;
    let got = c
        .read(support::rq::read(&canary_handle, None))
        .await
        .map_err(|s| format!("Read canary: {s:?}"))?;
    if got.get_ref().data[..] != canary[..] {
        return Err("the canary changed".into());
    }
    c.close_session(pb::CloseSessionRequest { session_id: sid })
        .await
        .map_err(|s| format!("CloseSession: {s:?}"))?;
    Ok(())
}

/// Another client on its own connection: write and read back its own
/// anonymous region every few milliseconds until `stop`. Returns the
/// number of round trips and the first problems it saw.
async fn bystander(endpoint: String, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let mut trouble = Vec::new();
    let mut rounds = 0;
    let Ok(channel) = Channel::from_shared(endpoint).unwrap().connect().await else {
        return (0, vec!["cannot connect".into()]);
    };
    let mut c = MmapClient::new(channel);
    let sid = support::session(&mut c, 0).await;
    let req = pb::MapRequest {
        length: 4096,
        ..support::map_req(&sid, "", "bystander", pb::Access::Write)
    };
    let handle = support::map(&mut c, req)
        .await
        .expect("bystander map")
        .handle;
    while !stop.load(Ordering::Acquire) {
        rounds += 1;
        let data: Vec<u8> = (0..100).map(|i| (i + rounds) as u8).collect();
        let step = async {
            c.seek(support::rq::seek(&handle, 7, 0)).await?;
            c.write(support::rq::write(&handle, data.clone())).await?;
            c.seek(support::rq::seek(&handle, 7, 0)).await?;
            c.read(support::rq::read(&handle, Some(100))).await
        };
        match tokio::time::timeout(state::CALL_TIMEOUT, step).await {
            Ok(Ok(r)) if r.get_ref().data[..] == data[..] => {}
            Ok(Ok(_)) => trouble.push(format!("round {rounds}: read other bytes")),
            Ok(Err(s)) => trouble.push(format!("round {rounds}: {s:?}")),
            Err(_) => trouble.push(format!("round {rounds}: timeout")),
        }
        if trouble.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (rounds, trouble)
}
