//! End-to-end tests of ReadStream and WriteStream: 64 MiB round trips,
//! cursor versus positional semantics, chunk sizing, and their errors.

mod support;

use futures::StreamExt;
use mmapd::pb::{self, Access};
use support::{Fixture, TestServer, assert_error, rq};
use tonic::Code;

const BIG: usize = 64 << 20;

/// Deterministic, position-dependent bytes so a misplaced chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[(i / 7) % 4])
        .collect()
}

fn chunks(handle: &str, offset: Option<u64>, data: &[u8], size: usize) -> Vec<pb::WriteChunk> {
    data.chunks(size)
        .enumerate()
        .map(|(i, part)| pb::WriteChunk {
            handle: if i == 0 {
                handle.to_owned()
            } else {
                String::new()
            },
            offset: if i == 0 { offset } else { None },
            data: bytes::Bytes::copy_from_slice(part),
        })
        .collect()
}

#[tokio::test]
async fn sixty_four_mib_round_trips_through_the_streams() {
    let mut fx = Fixture::new().await;
    let m = fx
        .map(pb::MapRequest {
            length: BIG as i64,
            create: true,
            ..fx.file_req("big.bin", Access::Write)
        })
        .await
        .unwrap();
    let Fixture { server, mut c, .. } = fx;
    let data = pattern(BIG);
    let sent = chunks(&m.handle, None, &data, 1 << 20);
    let written = c
        .write_stream(futures::stream::iter(sent))
        .await
        .unwrap()
        .into_inner()
        .written;
    assert_eq!(written, BIG as u64);
    // Cursor mode advanced the cursor like write().
    assert_eq!(
        c.tell(rq::tell(&m.handle))
            .await
            .unwrap()
            .into_inner()
            .position,
        BIG as u64
    );

    let mut stream = c
        .read_stream(rq::read_stream(&m.handle, Some(0), None, 0))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::with_capacity(BIG);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.offset, got.len() as u64);
        assert!(chunk.data.len() <= 256 << 10, "default chunk is 256 KiB");
        got.extend_from_slice(&chunk.data);
    }
    assert!(got == data, "64 MiB read back differs");
    // Positional reads leave the cursor alone.
    assert_eq!(
        c.tell(rq::tell(&m.handle))
            .await
            .unwrap()
            .into_inner()
            .position,
        BIG as u64
    );
    c.flush(rq::flush(&m.handle)).await.unwrap();
    assert!(
        std::fs::read(server.path("big.bin")).unwrap() == data,
        "file on disk differs"
    );
}

#[tokio::test]
async fn cursor_reads_advance_and_chunks_are_capped() {
    let data = pattern(10 << 20);
    let mut fx = Fixture::with_file("f", &data).await;
    let h = fx.map_file("f", Access::Default).await;
    let Fixture { server, mut c, .. } = fx;
    c.seek(rq::seek(&h, 100, 0)).await.unwrap();
    let mut stream = c
        .read_stream(rq::read_stream(&h, None, Some(9 << 20), u32::MAX))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.data.len() <= 4 << 20, "chunks are capped at 4 MiB");
        got.extend_from_slice(&chunk.data);
    }
    assert!(got[..] == data[100..100 + (9 << 20)]);
    let pos = c.tell(rq::tell(&h)).await.unwrap().into_inner().position;
    assert_eq!(pos, 100 + (9 << 20));

    // A positional write past the end fails like write(), after writing
    // nothing of the offending chunk.
    let err = c
        .write_stream(futures::stream::iter(chunks(
            &h,
            Some((10 << 20) - 2),
            b"abc",
            3,
        )))
        .await
        .unwrap_err();
    assert_error(&err, Code::OutOfRange, "VALUE_ERROR", "data out of range");
    let err = c
        .read_stream(rq::read_stream(&h, Some(11 << 20), None, 0))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::OutOfRange,
        "VALUE_ERROR",
        "read offset out of range",
    );
    let err = c
        .write_stream(futures::stream::iter(Vec::new()))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "INVALID_REQUEST",
        "WriteStream needs at least one chunk naming the handle",
    );
    assert!(
        std::fs::read(server.path("f")).unwrap() == data,
        "failed writes changed nothing"
    );
}

#[tokio::test]
async fn unary_reads_larger_than_a_message_are_refused_without_moving_the_cursor() {
    let server = TestServer::start_with(|c| c.limits.max_message_size = 1 << 20).await;
    let mut fx = Fixture::on_with_file(server, "f", vec![1u8; 2 << 20]).await;
    let h = fx.map_file("f", Access::Default).await;
    let c = &mut fx.c;
    let err = c.read(rq::read(&h, None)).await.unwrap_err();
    let msg = format!(
        "reply of {} bytes exceeds the {}-byte message limit; use ReadStream",
        2 << 20,
        (1 << 20) - 1024
    );
    assert_error(&err, Code::ResourceExhausted, "MESSAGE_TOO_LARGE", &msg);
    assert_eq!(c.tell(rq::tell(&h)).await.unwrap().into_inner().position, 0);
}

#[tokio::test]
async fn a_write_stream_that_fails_midway_reports_what_landed() {
    let mut fx = Fixture::with_file("f", [b'.'; 10]).await;
    let h = fx.map_file("f", Access::Write).await;
    let err =
        fx.c.write_stream(futures::stream::iter(chunks(&h, Some(7), b"abcd", 2)))
            .await
            .unwrap_err();
    let md = assert_error(&err, Code::OutOfRange, "VALUE_ERROR", "data out of range");
    assert_eq!(md["written"], "2");
    assert_eq!(std::fs::read(fx.server.path("f")).unwrap(), b".......ab.");
}

/// Reads `handle` whole through ReadStream.
async fn read_all(
    c: &mut mmapd::pb::mmap_client::MmapClient<tonic::transport::Channel>,
    handle: &str,
) -> Vec<u8> {
    let mut stream = c
        .read_stream(rq::read_stream(handle, Some(0), None, 0))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap().data);
    }
    got
}

#[tokio::test]
async fn large_unaligned_writes_reach_every_mapping_and_the_file() {
    let mut fx = Fixture::new().await;
    let len = (3 << 20) + 123;
    let whole = fx
        .handle(pb::MapRequest {
            length: len as i64,
            create: true,
            ..fx.file_req("fresh.bin", Access::Write)
        })
        .await;
    // Another mapping of the same file from a page-aligned offset, so its
    // region and file offsets differ.
    let skip = 64 << 10;
    let tail = fx
        .handle(pb::MapRequest {
            offset: skip as i64,
            ..fx.named_req("fresh.bin", "tail", Access::Write)
        })
        .await;
    let c = &mut fx.c;
    // Into the new file, with an unaligned head and tail.
    let mut expected = vec![0u8; len];
    let data = pattern(len - 777 - 50);
    expected[777..777 + data.len()].copy_from_slice(&data);
    c.write_stream(futures::stream::iter(chunks(
        &whole,
        Some(777),
        &data,
        200_003,
    )))
    .await
    .unwrap();
    assert!(read_all(c, &whole).await == expected, "the writer's view");
    assert!(
        read_all(c, &tail).await == expected[skip..],
        "the other mapping's view"
    );
    // A rewrite of written pages, through the offset mapping.
    let again: Vec<u8> = pattern(len).into_iter().rev().take((1 << 20) + 5).collect();
    c.write_stream(futures::stream::iter(chunks(
        &tail,
        Some(1000),
        &again,
        300_000,
    )))
    .await
    .unwrap();
    expected[skip + 1000..skip + 1000 + again.len()].copy_from_slice(&again);
    assert!(
        read_all(c, &whole).await == expected,
        "the rewrite, seen by the first mapping"
    );
    c.flush(rq::flush(&whole)).await.unwrap();
    let on_disk = std::fs::read(fx.server.path("fresh.bin")).unwrap();
    assert!(on_disk == expected, "the file on disk (and never longer)");
}
