//! Seeded RPC fuzzer: several thousand random calls to every RPC of `Mmap`,
//! `Files` and `Admin` and to the health check, against a real in-process
//! server with a 1 MiB message limit and small mapping limits.
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

#[path = "fuzz/alive.rs"]
mod alive;
#[path = "fuzz/extra.rs"]
mod extra;
#[path = "fuzz/files.rs"]
mod files;
#[path = "fuzz/raw.rs"]
mod raw;
#[path = "fuzz/report.rs"]
mod report;
#[path = "fuzz/sequence.rs"]
mod sequence;
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
    time::Instant,
};

use alive::{bystander, call, checkpoint, probe_quotas, write_canary};
use mmapd::pb;
use state::{Fuzzer, Pool};
use support::TestServer;
use tonic::{client::Grpc, transport::Channel};
use tonic_health::pb::health_client::HealthClient;

/// Calls per run unless `MMAPD_FUZZ_CALLS` says otherwise.
const DEFAULT_CALLS: usize = 3_000;
/// Calls between checks that the server is up and the canary intact.
const CHECK_EVERY: usize = 250;
/// Calls without an answer after which the run stops.
const MAX_TIMEOUTS: usize = 3;
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
    probe_quotas(&mut fz, &server).await;

    let stop = Arc::new(AtomicBool::new(false));
    let bystander = tokio::spawn(bystander(server.endpoint(), Arc::clone(&stop)));

    let mut up = true;
    while fz.report.calls < calls && up {
        let before = fz.report.calls;
        let troubled = fz.report.count("TIMEOUT") + fz.report.count("Unavailable");
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
        // A call that got no answer, or found no server, is checked on at
        // once: a dead or stuck server would make every later call wait.
        let troubled = troubled != fz.report.count("TIMEOUT") + fz.report.count("Unavailable");
        if troubled || before / CHECK_EVERY != fz.report.calls / CHECK_EVERY {
            up = checkpoint(&mut fz, &server, &canary).await;
        }
        if fz.report.count("TIMEOUT") >= MAX_TIMEOUTS {
            let call = call(
                "stuck",
                "-",
                format!("{MAX_TIMEOUTS} calls without an answer"),
            );
            let index = fz.report.calls;
            fz.report.fail(
                index,
                &call,
                "TIMEOUT".into(),
                "server stuck".into(),
                String::new(),
            );
            up = false;
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
    let guarded = match fz.guard {
        Some(_) => format!(
            "; {} requests not sent (over max_mapping_length, which the server does not enforce)",
            fz.guarded
        ),
        None => String::new(),
    };
    println!(
        "fuzz: {} calls ({} errors) in {:.1?}; bystander {rounds} round trips{guarded}; \
         codes {:?}; slowest: {}",
        fz.report.calls,
        fz.report.errors,
        started.elapsed(),
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
        files: pb::files_client::FilesClient::new(channel.clone()),
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
