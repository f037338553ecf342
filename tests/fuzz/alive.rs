//! Whether the server is still up and its data intact: the quota probe
//! run before the fuzzing, the periodic checkpoint (health, a fresh client's
//! round trip, the canary file) and the bystander client that does round
//! trips on its own connection all along.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use mmapd::pb::{self, mmap_client::MmapClient};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_types::StatusExt;

use crate::{
    CANARY, MAPPING_LIMIT,
    report::{self, Call, Expect, Outcome},
    state::{self, Fuzzer, answer},
    support::{self, TestServer},
};

/// A call that is not one request, for the report.
pub fn call(kind: &'static str, method: &str, request: String) -> Call {
    Call {
        kind,
        method: method.to_owned(),
        request,
        expect: Expect::Clean,
        sent: std::time::Instant::now(),
    }
}

/// Writes the canary through the server, flushes it and closes its session.
pub async fn write_canary(fz: &mut Fuzzer, canary: &[u8]) {
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

/// Asks for one page more than `max_mapping_length` four ways (anonymous
/// Map, Map(create), Map of a whole file that large, Resize). Each must be
/// refused with QUOTA_EXCEEDED. If the server accepts any, that is a
/// failure, and the fuzzer stops sending requests that would really
/// allocate that much (a server without the quota would take the
/// machine's memory or disk).
pub async fn probe_quotas(fz: &mut Fuzzer, server: &TestServer) {
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
    // A sparse file over the limit: mapping it whole (length 0) must be
    // refused too, or a created file with a huge offset becomes a huge map.
    std::fs::File::create(server.path("quota-sparse.bin"))
        .and_then(|f| f.set_len(over as u64))
        .expect("make a sparse file");
    let mut accepted = false;
    for what in [
        "anonymous Map",
        "Map(create)",
        "whole-file Map",
        "anonymous Resize",
    ] {
        let request = format!("{what} of max_mapping_length + 1 page ({over} bytes)");
        let method = if what.ends_with("Resize") {
            "Mmap/Resize"
        } else {
            "Mmap/Map"
        };
        let call = call("quota", method, request);
        let (outcome, ok) = if method == "Mmap/Resize" {
            let (o, r) = answer(fz.c.resize(support::rq::resize(&small.handle, over))).await;
            (o, r.is_some())
        } else {
            let (path, length) = match what {
                "Map(create)" => ("quota-probe.bin", over),
                "whole-file Map" => ("quota-sparse.bin", 0),
                _ => ("", over),
            };
            let req = pb::MapRequest {
                length,
                create: what == "Map(create)",
                ..support::map_req(&sid, path, "", pb::Access::Write)
            };
            let (o, r) = answer(fz.c.map(req)).await;
            if let Some(r) = &r {
                let _ = fz.c.close(support::rq::close(&r.handle)).await;
            }
            (o, r.is_some())
        };
        fz.record(&call, &outcome);
        let index = fz.report.calls;
        let (code, problem) = match &outcome {
            Outcome::Ok => ("OK", "accepted: max_mapping_length not enforced"),
            Outcome::Err(s)
                if s.code() != Code::ResourceExhausted
                    || s.get_error_details()
                        .error_info()
                        .map(|i| i.reason.as_str())
                        != Some("QUOTA_EXCEEDED") =>
            {
                ("-", "not refused with RESOURCE_EXHAUSTED/QUOTA_EXCEEDED")
            }
            Outcome::Err(_) | Outcome::Timeout => ("", ""),
        };
        if !problem.is_empty() {
            let answer = report::describe(&outcome);
            fz.report
                .fail(index, &call, code.into(), problem.into(), answer);
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
pub async fn checkpoint(fz: &mut Fuzzer, server: &TestServer, canary: &[u8]) -> bool {
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
pub async fn fresh_round_trip(
    server: &TestServer,
    canary: &[u8],
    index: usize,
) -> Result<(), String> {
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
pub async fn bystander(endpoint: String, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
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
