//! End-to-end tests of Pipeline against a real server: ops run in order
//! within and across requests, each op gets one result and each request one
//! response, a failed op answers with the unary call's exact status and the
//! stream goes on, a client that does not read is held back rather than
//! refused, an oversized request ends the stream cleanly, and another
//! identity's handles are HANDLE_NOT_FOUND inside the results.

mod support;

use futures::StreamExt;
use mmapd::pb::{
    self, Access, mmap_client::MmapClient, op::Op as PbOp, op_result::Result as PbResult,
};
use mmapd_server::access::token_hash;
use prost::Message;
use support::{Fixture, TestServer, assert_error, rq};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{
    Code, Status, Streaming,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_types::StatusExt;

/// A Pipeline call whose requests are sent through the returned sender.
async fn open(
    c: &mut MmapClient<Channel>,
) -> (
    mpsc::UnboundedSender<pb::PipelineRequest>,
    Streaming<pb::PipelineResponse>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let responses = c
        .pipeline(UnboundedReceiverStream::new(rx))
        .await
        .expect("pipeline opens")
        .into_inner();
    (tx, responses)
}

fn batch(ops: impl IntoIterator<Item = PbOp>) -> pb::PipelineRequest {
    pb::PipelineRequest {
        ops: ops.into_iter().map(|op| pb::Op { op: Some(op) }).collect(),
    }
}

/// Sends one batch and awaits its response's results.
async fn round(
    tx: &mpsc::UnboundedSender<pb::PipelineRequest>,
    rx: &mut Streaming<pb::PipelineResponse>,
    ops: impl IntoIterator<Item = PbOp>,
) -> Vec<PbResult> {
    let ops: Vec<_> = ops.into_iter().collect();
    let n = ops.len();
    tx.send(batch(ops)).unwrap();
    let response = rx.next().await.expect("a response").expect("not an error");
    assert_eq!(response.results.len(), n, "one result per op");
    response
        .results
        .into_iter()
        .map(|r| r.result.expect("result set"))
        .collect()
}

/// A per-op error as the tonic status a unary call would return.
#[track_caller]
fn error(result: &PbResult) -> Status {
    let PbResult::Error(status) = result else {
        panic!("expected an error, got {result:?}");
    };
    Status::with_details(
        Code::from_i32(status.code),
        status.message.clone(),
        status.encode_to_vec().into(),
    )
}

/// Two statuses with the same code, message and ErrorInfo details.
#[track_caller]
fn assert_same_status(piped: &Status, unary: &Status) {
    assert_eq!(piped.code(), unary.code(), "{piped:?} vs {unary:?}");
    assert_eq!(piped.message(), unary.message());
    assert_eq!(piped.get_error_details_vec().len(), 1, "{piped:?}");
    let info = |s: &Status| {
        let info = s
            .get_error_details()
            .error_info()
            .cloned()
            .expect("ErrorInfo");
        (info.reason, info.domain, info.metadata)
    };
    assert_eq!(info(piped), info(unary));
}

fn get_slice(h: &str, start: i64, stop: i64) -> PbOp {
    PbOp::GetSlice(pb::GetSliceRequest {
        handle: h.into(),
        start: Some(start),
        stop: Some(stop),
        step: None,
    })
}

#[tokio::test]
async fn ops_run_in_order_with_one_result_each() {
    let mut fx = Fixture::with_file("f", b"0123456789").await;
    let h = fx.map_file("f", Access::Write).await;
    let (tx, mut rx) = open(&mut fx.c).await;
    let results = round(
        &tx,
        &mut rx,
        [
            PbOp::Write(rq::write(&h, &b"ab"[..])),
            PbOp::Tell(rq::tell(&h)),
            PbOp::Seek(rq::seek(&h, 0, 0)),
            PbOp::Read(rq::read(&h, Some(4))),
            PbOp::SetItem(rq::set_item(&h, -1, b'Z' as i64)),
            get_slice(&h, 8, 10),
            PbOp::Find(pb::FindRequest {
                handle: h.clone(),
                sub: b"Z".to_vec().into(),
                start: Some(0),
                end: None,
            }),
            PbOp::Len(pb::LenRequest { handle: h.clone() }),
            PbOp::Stat(pb::StatRequest { handle: h.clone() }),
        ],
    )
    .await;
    let data = |d: &[u8]| bytes::Bytes::copy_from_slice(d);
    assert_eq!(
        results[..8],
        [
            PbResult::Write(pb::WriteResponse { written: 2 }),
            PbResult::Tell(pb::TellResponse { position: 2 }),
            PbResult::Seek(pb::SeekResponse { position: 0 }),
            PbResult::Read(pb::ReadResponse {
                data: data(b"ab23")
            }),
            PbResult::SetItem(pb::SetItemResponse {}),
            PbResult::GetSlice(pb::GetSliceResponse { data: data(b"8Z") }),
            PbResult::Find(pb::FindResponse { index: 9 }),
            PbResult::Len(pb::LenResponse { length: 10 }),
        ]
    );
    let PbResult::Stat(stat) = &results[8] else {
        panic!("{:?}", results[8]);
    };
    assert_eq!((stat.position, stat.length), (4, 10));

    // Requests run in the order sent: each writes the byte at the cursor
    // the previous one left, without waiting for its response.
    for i in 0..50 {
        tx.send(batch([
            PbOp::Seek(rq::seek(&h, i % 10, 0)),
            PbOp::WriteByte(pb::WriteByteRequest {
                handle: h.clone(),
                value: b'a' as i64 + i,
            }),
            PbOp::Tell(rq::tell(&h)),
        ]))
        .unwrap();
    }
    for i in 0..50u64 {
        let response = rx.next().await.unwrap().unwrap();
        assert_eq!(
            response.results[2].result,
            Some(PbResult::Tell(pb::TellResponse {
                position: i % 10 + 1
            }))
        );
    }
    drop(tx);
    assert!(
        rx.next().await.is_none(),
        "the stream ends with the requests"
    );
    assert_eq!(
        std::fs::read(fx.server.path("f")).unwrap(),
        (40..50).map(|i| b'a' + i).collect::<Vec<u8>>(),
        "the last requests wrote last"
    );
}

#[tokio::test]
async fn failed_ops_answer_with_the_unary_status_and_the_stream_goes_on() {
    let mut fx = Fixture::with_file("f", b"0123456789").await;
    let h = fx.map_file("f", Access::Write).await;
    let ro = fx.map_file("f", Access::Read).await;
    let c = &mut fx.c.clone();
    let (tx, mut rx) = open(c).await;
    let bad_seek = rq::seek(&h, 11, 0);
    let bad_item = rq::get_item(&h, 10);
    let bad_byte = pb::WriteByteRequest {
        handle: h.clone(),
        value: 256,
    };
    let ro_resize = rq::resize(&ro, 20);
    let bad_advice = pb::MadviseRequest {
        handle: h.clone(),
        option: 9,
        start: None,
        length: None,
    };
    let wrong_size = pb::SetSliceRequest {
        handle: h.clone(),
        start: Some(0),
        stop: Some(2),
        step: None,
        data: b"xyz".to_vec().into(),
    };
    let unknown = rq::read(&format!("{h}-nope"), None);
    let results = round(
        &tx,
        &mut rx,
        [
            PbOp::Seek(bad_seek.clone()),
            PbOp::Tell(rq::tell(&h)),
            PbOp::GetItem(bad_item.clone()),
            PbOp::WriteByte(bad_byte.clone()),
            PbOp::Resize(ro_resize.clone()),
            PbOp::Madvise(bad_advice.clone()),
            PbOp::SetSlice(wrong_size.clone()),
            PbOp::Read(unknown.clone()),
            PbOp::Read(rq::read(&h, Some(3))),
        ],
    )
    .await;
    assert_eq!(results.len(), 9);
    assert_same_status(&error(&results[0]), &c.seek(bad_seek).await.unwrap_err());
    assert_eq!(
        results[1],
        PbResult::Tell(pb::TellResponse { position: 0 }),
        "a failed seek moved nothing and the next op ran"
    );
    assert_same_status(
        &error(&results[2]),
        &c.get_item(bad_item).await.unwrap_err(),
    );
    assert_same_status(
        &error(&results[3]),
        &c.write_byte(bad_byte).await.unwrap_err(),
    );
    assert_same_status(&error(&results[4]), &c.resize(ro_resize).await.unwrap_err());
    assert_same_status(
        &error(&results[5]),
        &c.madvise(bad_advice).await.unwrap_err(),
    );
    assert_same_status(
        &error(&results[6]),
        &c.set_slice(wrong_size).await.unwrap_err(),
    );
    // Without access control an unknown handle is CPython's closed mmap.
    let unary = c.read(unknown).await.unwrap_err();
    assert_error(
        &unary,
        Code::FailedPrecondition,
        "VALUE_ERROR",
        "mmap closed or invalid",
    );
    assert_same_status(&error(&results[7]), &unary);
    assert_eq!(
        results[8],
        PbResult::Read(pb::ReadResponse {
            data: b"012".to_vec().into()
        })
    );

    // An op with nothing set is the client's mistake, reported in place.
    tx.send(pb::PipelineRequest {
        ops: vec![
            pb::Op { op: None },
            pb::Op {
                op: Some(PbOp::Tell(rq::tell(&h))),
            },
        ],
    })
    .unwrap();
    let response = rx.next().await.unwrap().unwrap();
    let first = response.results[0].result.as_ref().unwrap();
    assert_error(
        &error(first),
        Code::InvalidArgument,
        "INVALID_REQUEST",
        "an Op must set one operation",
    );
    assert_eq!(
        response.results[1].result,
        Some(PbResult::Tell(pb::TellResponse { position: 3 }))
    );

    // An empty request still gets its (empty) response, and the stream
    // is still usable after every failure above.
    assert!(round(&tx, &mut rx, []).await.is_empty());
    let results = round(&tx, &mut rx, [PbOp::Tell(rq::tell(&h))]).await;
    assert_eq!(results, [PbResult::Tell(pb::TellResponse { position: 3 })]);
}

#[tokio::test]
async fn a_client_that_does_not_read_is_held_back_not_refused() {
    const SLICE: i64 = 64 << 10;
    const REQUESTS: u64 = 200;
    let size = 4 * SLICE as usize;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut fx = Fixture::with_file("f", &data).await;
    let h = fx.map_file("f", Access::Write).await;
    // A small receive window, so the server's replies back up early.
    let channel = Channel::from_shared(fx.server.endpoint())
        .unwrap()
        .initial_stream_window_size(64 << 10)
        .connect()
        .await
        .unwrap();
    let mut c = MmapClient::new(channel);
    let (tx, mut rx) = open(&mut c).await;
    // Every request advances the cursor by one, so `tell` counts how many
    // requests the server has run. 200 replies of 64 KiB are far more than
    // the transport buffers.
    for i in 0..REQUESTS as i64 {
        let start = (i % 4) * SLICE;
        tx.send(batch([
            PbOp::ReadByte(pb::ReadByteRequest { handle: h.clone() }),
            get_slice(&h, start, start + SLICE),
        ]))
        .unwrap();
    }
    let first = rx.next().await.unwrap().unwrap();
    let run = fx.c.tell(rq::tell(&h)).await.unwrap().into_inner().position;
    // A few replies fit in the transport's buffers; a server that read
    // ahead would have run (nearly) all of them by now.
    assert!(
        run < REQUESTS / 4,
        "the server ran all {run} requests though their replies were not read"
    );
    let mut responses = vec![first];
    while (responses.len() as u64) < REQUESTS {
        responses.push(rx.next().await.unwrap().expect("no request refused"));
    }
    for (i, response) in responses.iter().enumerate() {
        let start = (i % 4) * SLICE as usize;
        assert_eq!(
            response.results[1].result,
            Some(PbResult::GetSlice(pb::GetSliceResponse {
                data: data[start..start + SLICE as usize].to_vec().into()
            })),
            "response {i}"
        );
    }
    let run = fx.c.tell(rq::tell(&h)).await.unwrap().into_inner().position;
    assert_eq!(run, REQUESTS);
}

#[tokio::test]
async fn an_oversized_request_ends_the_stream_after_the_earlier_responses() {
    let server = TestServer::start_with(|c| c.limits.max_message_size = 64 << 10).await;
    let mut fx = Fixture::on_with_file(server, "f", vec![0u8; 256 << 10]).await;
    let h = fx.map_file("f", Access::Write).await;
    let (tx, mut rx) = open(&mut fx.c.clone()).await;
    tx.send(batch([PbOp::Tell(rq::tell(&h))])).unwrap();
    tx.send(batch([PbOp::Write(rq::write(&h, vec![1u8; 128 << 10]))]))
        .unwrap();
    let first = rx.next().await.unwrap().unwrap();
    assert_eq!(first.results.len(), 1);
    let status = rx.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        std::fs::read(fx.server.path("f")).unwrap(),
        vec![0u8; 256 << 10],
        "nothing of the oversized request ran"
    );

    // Replies share one message: the second read gets what the first left,
    // and fails alone.
    let (tx, mut rx) = open(&mut fx.c).await;
    let results = round(
        &tx,
        &mut rx,
        [
            get_slice(&h, 0, 40 << 10),
            get_slice(&h, 0, 40 << 10),
            PbOp::Tell(rq::tell(&h)),
        ],
    )
    .await;
    assert!(matches!(&results[0], PbResult::GetSlice(r) if r.data.len() == 40 << 10));
    let refused = error(&results[1]);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.get_error_details().error_info().unwrap().reason,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(results[2], PbResult::Tell(pb::TellResponse { position: 0 }));
}

/// Sends `authorization: Bearer <token>`.
#[derive(Clone)]
struct Bearer(String);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let value = format!("Bearer {}", self.0).parse().unwrap();
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }
}

type Stub = MmapClient<InterceptedService<Channel, Bearer>>;

/// Opens a session as the stub's identity and maps `f` whole.
async fn map_as(c: &mut Stub, access: Access) -> String {
    let sid = c
        .open_session(pb::OpenSessionRequest {
            client_name: "t".into(),
            ttl_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    c.map(support::map_req(&sid, "f", "", access))
        .await
        .unwrap()
        .into_inner()
        .handle
}

#[tokio::test]
async fn each_op_is_checked_against_the_callers_identity() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.toml");
    let entry = |name: &str, role: &str| {
        format!(
            "[[identity]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\npaths = [\"\"]\n\n",
            token_hash(&format!("{name}-token"))
        )
    };
    let identities =
        entry("alice", "readwrite") + &entry("bob", "readwrite") + &entry("reader", "read");
    std::fs::write(&file, identities).unwrap();
    let server = TestServer::start_with(|c| c.access_file = Some(file)).await;
    std::fs::write(server.path("f"), b"0123456789").unwrap();
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let stub =
        |name: &str| MmapClient::with_interceptor(channel.clone(), Bearer(format!("{name}-token")));
    let (mut alice, mut bob, mut reader) = (stub("alice"), stub("bob"), stub("reader"));
    let ha = map_as(&mut alice, Access::Write).await;
    let hb = map_as(&mut bob, Access::Write).await;
    let hr = map_as(&mut reader, Access::Read).await;

    // Alice's stream reaches her own handle, never bob's.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut responses = alice
        .pipeline(UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let results = round(
        &tx,
        &mut responses,
        [
            PbOp::Read(rq::read(&hb, Some(2))),
            PbOp::Write(rq::write(&hb, &b"xx"[..])),
            PbOp::Read(rq::read(&ha, Some(2))),
        ],
    )
    .await;
    let unary = alice.read(rq::read(&hb, Some(2))).await.unwrap_err();
    assert_error(&unary, Code::NotFound, "HANDLE_NOT_FOUND", unary.message());
    assert_same_status(&error(&results[0]), &unary);
    assert_same_status(&error(&results[1]), &unary);
    assert_eq!(
        results[2],
        PbResult::Read(pb::ReadResponse {
            data: b"01".to_vec().into()
        })
    );
    assert_eq!(std::fs::read(server.path("f")).unwrap(), b"0123456789");
    drop(bob);

    // The read role may not flush, move or resize, even through Pipeline.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut responses = reader
        .pipeline(UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let results = round(
        &tx,
        &mut responses,
        [
            PbOp::Resize(rq::resize(&hr, 20)),
            PbOp::Flush(rq::flush(&hr)),
            PbOp::Len(pb::LenRequest { handle: hr.clone() }),
        ],
    )
    .await;
    assert_same_status(
        &error(&results[0]),
        &reader.resize(rq::resize(&hr, 20)).await.unwrap_err(),
    );
    assert_same_status(
        &error(&results[1]),
        &reader.flush(rq::flush(&hr)).await.unwrap_err(),
    );
    assert_eq!(error(&results[0]).code(), Code::PermissionDenied);
    assert_eq!(results[2], PbResult::Len(pb::LenResponse { length: 10 }));

    // Closed outside the stream, the handle the stream just used is gone
    // for it too: a resize the role may not do is now "closed", as the
    // unary call says, not PERMISSION_DENIED on a handle kept alive.
    reader.close(rq::close(&hr)).await.unwrap();
    let results = round(
        &tx,
        &mut responses,
        [
            PbOp::Resize(rq::resize(&hr, 20)),
            PbOp::Len(pb::LenRequest { handle: hr.clone() }),
        ],
    )
    .await;
    let unary = reader.resize(rq::resize(&hr, 20)).await.unwrap_err();
    assert_error(
        &unary,
        Code::FailedPrecondition,
        "VALUE_ERROR",
        "mmap closed or invalid",
    );
    assert_same_status(&error(&results[0]), &unary);
    assert_same_status(&error(&results[1]), &unary);
    // A new handle on the same stream works.
    let again = map_as(&mut reader, Access::Read).await;
    let results = round(
        &tx,
        &mut responses,
        [PbOp::Len(pb::LenRequest { handle: again })],
    )
    .await;
    assert_eq!(results, [PbResult::Len(pb::LenResponse { length: 10 })]);
}

#[tokio::test]
async fn a_batch_of_ten_thousand_ops_answers_each_in_place() {
    let data: Vec<u8> = (0..=255).collect();
    let mut fx = Fixture::with_file("f", &data).await;
    let h = fx.map_file("f", Access::Default).await;
    let (tx, mut rx) = open(&mut fx.c).await;
    let indices: Vec<i64> = (0..10_000).map(|i| (i * 7919) % 300 - 20).collect();
    let ops = indices.iter().map(|&i| PbOp::GetItem(rq::get_item(&h, i)));
    let results = round(&tx, &mut rx, ops).await;
    for (&i, result) in indices.iter().zip(&results) {
        match i {
            -256..=255 => assert_eq!(
                result,
                &PbResult::GetItem(pb::GetItemResponse {
                    value: data[i.rem_euclid(256) as usize].into()
                }),
                "m[{i}]"
            ),
            _ => assert_eq!(error(result).code(), Code::OutOfRange, "m[{i}]"),
        }
    }
}
