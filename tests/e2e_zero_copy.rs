//! End-to-end tests of zero-copy ReadStream chunks, which point into the
//! mapping until the encoder copies them: resizes and a close racing many
//! streams, and a file truncated by another process under a stream. Every
//! reader gets correct bytes or a clean error (a code with one mmapd
//! ErrorInfo), and the server, which runs in this test process, survives:
//! an unguarded fault would kill the test.

mod support;

use mmapd::pb::{self, Access, mmap_client::MmapClient};
use support::{Fixture, assert_error, rq};
use tonic::{Code, Status, transport::Channel};
use tonic_types::{ErrorDetail, StatusExt};

/// The byte the test files hold at `i`.
fn byte_at(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(byte_at).collect()
}

/// A status the server means: one of the codes a closed, resized or
/// broken mapping answers with, and exactly one mmapd ErrorInfo.
fn assert_clean(status: &Status) {
    assert!(
        matches!(
            status.code(),
            Code::DataLoss | Code::FailedPrecondition | Code::NotFound
        ),
        "unexpected {status:?}"
    );
    let infos = status
        .get_error_details_vec()
        .into_iter()
        .filter(|d| matches!(d, ErrorDetail::ErrorInfo(i) if i.domain == "mmapd"))
        .count();
    assert_eq!(infos, 1, "one mmapd ErrorInfo in {status:?}");
}

/// Chunks of one ReadStream from offset 0, and how it ended.
async fn stream(
    c: &mut MmapClient<Channel>,
    h: &str,
    chunk: u32,
) -> (Vec<pb::ReadChunk>, Result<(), Status>) {
    let mut chunks = Vec::new();
    let mut replies = match c
        .read_stream(rq::read_stream(h, Some(0), None, chunk))
        .await
    {
        Ok(replies) => replies.into_inner(),
        Err(status) => return (chunks, Err(status)),
    };
    loop {
        match replies.message().await {
            Ok(Some(chunk)) => chunks.push(chunk),
            Ok(None) => return (chunks, Ok(())),
            Err(status) => return (chunks, Err(status)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resizes_and_a_close_racing_streams_give_right_bytes_or_clean_errors() {
    // Readers check [0, HALF) exactly; the tail is lost by the first
    // shrink and comes back as zeros, so each of its bytes may be either.
    const HALF: usize = 2 << 20;
    let data = pattern(2 * HALF);
    let mut fx = Fixture::with_file("raced.bin", &data).await;
    let h = fx
        .handle(fx.named_req("raced.bin", "raced", Access::Write))
        .await;
    let check = move |chunks: &[pb::ReadChunk]| {
        for chunk in chunks {
            let at = chunk.offset as usize;
            for (k, &b) in chunk.data.iter().enumerate() {
                let i = at + k;
                let ok = b == byte_at(i) || (i >= HALF && b == 0);
                assert!(ok, "byte {i} is {b}, chunk at {at}");
            }
        }
    };

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..6u32 {
        let (mut c, _) = fx.server.clients().await;
        let h = h.clone();
        readers.push(tokio::spawn(async move {
            let mut ended_ok = 0;
            for round in 0..12u32 {
                let chunk = [4 << 10, 64 << 10, 1 << 20][((r + round) % 3) as usize];
                let (chunks, end) = stream(&mut c, &h, chunk).await;
                check(&chunks);
                match end {
                    Ok(()) => ended_ok += 1,
                    Err(status) => assert_clean(&status),
                }
            }
            ended_ok
        }));
    }
    let resizer = {
        let (mut c, _) = fx.server.clients().await;
        let (h, done) = (h.clone(), done.clone());
        tokio::spawn(async move {
            let mut resizes = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) && resizes < 2_000 {
                for len in [HALF, 2 * HALF] {
                    c.resize(rq::resize(&h, len as i64)).await.expect("resize");
                    resizes += 1;
                }
            }
            resizes
        })
    };
    let mut ok = 0;
    for reader in readers {
        ok += reader.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(resizer.await.unwrap() > 0);
    assert!(ok > 0, "some streams ran to their end");

    // Streams that are under way when the handle closes.
    let mut open = Vec::new();
    for _ in 0..6 {
        let (mut c, _) = fx.server.clients().await;
        let mut replies = c
            .read_stream(rq::read_stream(&h, Some(0), None, 64 << 10))
            .await
            .unwrap()
            .into_inner();
        let first = replies.message().await.unwrap().expect("a first chunk");
        open.push((c, replies, vec![first]));
    }
    fx.c.close(rq::close(&h)).await.unwrap();
    for (_c, mut replies, mut chunks) in open {
        let end = loop {
            match replies.message().await {
                Ok(Some(chunk)) => chunks.push(chunk),
                Ok(None) => break Ok(()),
                Err(status) => break Err(status),
            }
        };
        check(&chunks);
        if let Err(status) = end {
            assert_clean(&status);
        }
    }

    // The server still serves, the same file included.
    let again = fx.map_file("raced.bin", Access::Read).await;
    let (chunks, end) = stream(&mut fx.c, &again, 0).await;
    end.unwrap();
    check(&chunks);
    fx.server.shutdown().await;
}

#[tokio::test]
async fn a_file_truncated_under_a_stream_ends_it_with_mapping_broken() {
    const LEN: usize = 32 << 20;
    let data = pattern(LEN);
    let mut fx = Fixture::with_file("cut.bin", &data).await;
    std::fs::write(fx.server.path("other.bin"), b"still here").unwrap();
    let h = fx
        .handle(fx.named_req("cut.bin", "cut", Access::Read))
        .await;
    let mut replies =
        fx.c.clone()
            .read_stream(rq::read_stream(&h, Some(0), None, 64 << 10))
            .await
            .unwrap()
            .into_inner();
    let first = replies.message().await.unwrap().expect("a first chunk");
    assert_eq!(&first.data[..], &data[..first.data.len()]);
    // Another process (here: this one, outside the server) cuts the file
    // while the server is encoding chunks ahead of the reader.
    std::fs::OpenOptions::new()
        .write(true)
        .open(fx.server.path("cut.bin"))
        .unwrap()
        .set_len(4096)
        .unwrap();
    let mut chunks = Vec::new();
    let status = loop {
        match replies.message().await {
            Ok(Some(chunk)) => chunks.push(chunk),
            Ok(None) => panic!("the stream ended in success after losing its pages"),
            Err(status) => break status,
        }
    };
    assert_error(
        &status,
        Code::DataLoss,
        "MAPPING_BROKEN",
        "[Errno 5] Input/output error: mapping \"cut\" lost pages under it \
         (the file was truncated or could not be written); close it and map again",
    );
    // Chunks copied before the cut are right; only the one the fault hit,
    // the last before the error, may hold the zeros put over lost pages.
    let (last, intact) = chunks.split_last().expect("chunks after the first");
    for chunk in intact {
        let at = chunk.offset as usize;
        assert_eq!(&chunk.data[..], &data[at..at + chunk.data.len()], "at {at}");
    }
    assert!(last.offset as usize >= first.data.len());

    // The mapping stays broken; the server and other files are fine.
    let err = fx.c.read(rq::read(&h, Some(1))).await.unwrap_err();
    assert_eq!(err.code(), Code::DataLoss);
    let other = fx.map_file("other.bin", Access::Read).await;
    let (got, end) = stream(&mut fx.c, &other, 0).await;
    end.unwrap();
    assert_eq!(&got[0].data[..], b"still here");
    fx.server.shutdown().await;
}
