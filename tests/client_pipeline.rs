//! End-to-end tests of the client's pipeline API against a real server:
//! a batch's typed results come back in order, a failed call is an error in
//! its own slot only, and a long-lived `Pipeline` keeps several batches in
//! flight and answers them in the order sent.

mod support;

use mmapd::{Client, MapOptions, Whence};
use support::TestServer;
use tonic::Code;

#[tokio::test]
async fn a_batch_returns_typed_results_and_per_call_errors() {
    let server = TestServer::start().await;
    std::fs::write(server.path("f"), b"hello world\nsecond line\n").unwrap();
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.open_session("pipe", None).await.unwrap();
    let mut map = session.map(MapOptions::file("f")).await.unwrap();

    let mut batch = map.batch();
    let line = batch.readline();
    let pos = batch.tell();
    let bad = batch.seek(100, Whence::Set);
    let found = batch.find(&b"line"[..], Some(0), None);
    let wrote = batch.write(&b"SECOND"[..]);
    let item = batch.get(0);
    let bad_item = batch.set(0, 256);
    let slice = batch.get_slice(Some(12), Some(18), None);
    let len = batch.length();
    let stat = batch.stat();
    assert_eq!(batch.len(), 10);
    let mut results = map.run(batch).await.unwrap();
    assert_eq!(results.len(), 10);

    assert_eq!(&results.take(line).unwrap()[..], b"hello world\n");
    assert_eq!(results.take(pos).unwrap(), 12);
    let err = results.take(bad).unwrap_err();
    assert_eq!(err.code(), Some(Code::OutOfRange));
    assert_eq!(err.reason(), Some("VALUE_ERROR"));
    assert_eq!(err.message(), Some("seek out of range"));
    assert_eq!(results.take(found).unwrap(), 19);
    assert_eq!(results.take(wrote).unwrap(), 6);
    assert_eq!(results.take(item).unwrap(), b'h');
    let err = results.take(bad_item).unwrap_err();
    assert_eq!(err.reason(), Some("VALUE_ERROR"));
    assert_eq!(&results.take(slice).unwrap()[..], b"SECOND");
    assert_eq!(results.take(len).unwrap(), 24);
    assert_eq!(results.take(stat).unwrap().position, 18);
    // The cursor the batch left is the one later calls see.
    assert_eq!(map.tell().await.unwrap(), 18);
}

#[tokio::test]
async fn a_pipeline_answers_outstanding_batches_in_order() {
    let server = TestServer::start().await;
    let client = Client::connect(server.endpoint()).await.unwrap();
    let session = client.open_session("pipe", None).await.unwrap();
    let mut map = session.map(MapOptions::anonymous(64)).await.unwrap();
    let mut pipeline = map.pipeline().await.unwrap();
    let mut slots = Vec::new();
    for i in 0..16i64 {
        let mut batch = pipeline.batch();
        batch.set(i, i * 3);
        slots.push(batch.get(i));
        pipeline.send(batch).unwrap();
    }
    for (i, slot) in slots.into_iter().enumerate() {
        let mut results = pipeline.recv().await.unwrap();
        assert_eq!(results.take(slot).unwrap(), (i * 3) as u8);
    }
    // Nothing outstanding: recv refuses instead of waiting forever.
    assert!(pipeline.recv().await.is_err());
    let mut batch = pipeline.batch();
    let last = batch.get_slice(Some(0), Some(4), None);
    let mut results = pipeline.run(batch).await.unwrap();
    assert_eq!(&results.take(last).unwrap()[..], [0, 3, 6, 9]);
}
