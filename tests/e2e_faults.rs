//! End-to-end tests of faults in mapped memory and of the map-area budget:
//! a file truncated by another process under a mapping makes every data RPC
//! on it fail with DATA_LOSS instead of killing the server; madvise on
//! alternate pages cannot exhaust `vm.max_map_count`; Resize still works
//! after madvise split a mapping.

mod support;

use futures::StreamExt;
use mmapd::pb::{self, Access, Advice, mmap_client::MmapClient};
use support::{Fixture, TestServer, assert_error, rq, session};
use tonic::{Code, Status, transport::Channel};

/// The map-area budget is process-wide, like `vm.max_map_count`: the test
/// that shrinks it runs alone, the others share.
static AREA_BUDGET: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Every data RPC that touches mapped bytes.
#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    ReadByte,
    ReadLine,
    GetItem,
    GetSlice,
    GetSliceStrided,
    ReadStream,
    Find,
    RFind,
    Write,
    WriteByte,
    SetItem,
    SetSlice,
    SetSliceStrided,
    WriteStream,
    Move,
}

const READS: [Op; 9] = [
    Op::Read,
    Op::ReadByte,
    Op::ReadLine,
    Op::GetItem,
    Op::GetSlice,
    Op::GetSliceStrided,
    Op::ReadStream,
    Op::Find,
    Op::RFind,
];

const WRITES: [Op; 7] = [
    Op::Write,
    Op::WriteByte,
    Op::SetItem,
    Op::SetSlice,
    Op::SetSliceStrided,
    Op::WriteStream,
    Op::Move,
];

/// Pages in each victim file; all but the first are truncated away.
const PAGES: usize = 16;

/// Bytes without a newline, so ReadLine and Find scan into the lost pages.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i + salt as usize) % 26) as u8)
        .collect()
}

/// Runs `op` on `h` so that it touches page 2 or later of the mapping.
async fn touch(op: Op, c: &mut MmapClient<Channel>, h: &str, page: usize) -> Result<(), Status> {
    let far = (2 * page) as i64;
    let seek = |c: &mut MmapClient<Channel>| {
        let mut c = c.clone();
        let h = h.to_owned();
        async move { c.seek(rq::seek(&h, far, 0)).await.map(drop) }
    };
    let slice = |start, step, data: &[u8]| pb::SetSliceRequest {
        handle: h.into(),
        start: Some(start),
        stop: Some(start + step * data.len() as i64),
        step: Some(step),
        data: data.to_vec().into(),
    };
    let get_slice = |step| pb::GetSliceRequest {
        handle: h.into(),
        start: None,
        stop: None,
        step: Some(step),
    };
    let find = |sub: &[u8]| pb::FindRequest {
        handle: h.into(),
        sub: sub.to_vec().into(),
        start: None,
        end: None,
    };
    match op {
        Op::Read => c.read(rq::read(h, None)).await.map(drop),
        Op::ReadByte => {
            seek(c).await?;
            c.read_byte(pb::ReadByteRequest { handle: h.into() })
                .await
                .map(drop)
        }
        Op::ReadLine => c
            .read_line(pb::ReadLineRequest { handle: h.into() })
            .await
            .map(drop),
        Op::GetItem => c.get_item(rq::get_item(h, far)).await.map(drop),
        Op::GetSlice => c.get_slice(get_slice(1)).await.map(drop),
        Op::GetSliceStrided => c.get_slice(get_slice(7)).await.map(drop),
        Op::ReadStream => {
            let mut chunks = c
                .read_stream(rq::read_stream(h, Some(0), None, 0))
                .await?
                .into_inner();
            while let Some(chunk) = chunks.next().await {
                chunk?;
            }
            Ok(())
        }
        Op::Find => c.find(find(b"\n")).await.map(drop),
        Op::RFind => c.r_find(find(b"\n")).await.map(drop),
        Op::Write => {
            seek(c).await?;
            c.write(rq::write(h, &b"lost"[..])).await.map(drop)
        }
        Op::WriteByte => {
            seek(c).await?;
            c.write_byte(pb::WriteByteRequest {
                handle: h.into(),
                value: 1,
            })
            .await
            .map(drop)
        }
        Op::SetItem => c.set_item(rq::set_item(h, far, 1)).await.map(drop),
        Op::SetSlice => c.set_slice(slice(far, 1, &[1; 5])).await.map(drop),
        Op::SetSliceStrided => {
            let step = page as i64;
            c.set_slice(slice(step, step, &[1; PAGES - 1]))
                .await
                .map(drop)
        }
        Op::WriteStream => {
            let chunk = pb::WriteChunk {
                handle: h.into(),
                offset: Some(far as u64),
                data: b"lost".to_vec().into(),
            };
            c.write_stream(futures::stream::iter([chunk]))
                .await
                .map(drop)
        }
        Op::Move => c
            .r#move(pb::MoveRequest {
                handle: h.into(),
                dest: far,
                src: 0,
                count: 10,
            })
            .await
            .map(drop),
    }
}

#[track_caller]
fn assert_broken(status: &Status, name: &str) {
    let md = assert_error(
        status,
        Code::DataLoss,
        "MAPPING_BROKEN",
        &format!(
            "[Errno 5] Input/output error: mapping {name:?} lost pages under it \
             (the file was truncated or could not be written); close it and map again"
        ),
    );
    assert_eq!(md["name"], name);
}

async fn page_size(fx: &mut Fixture) -> usize {
    fx.admin
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .page_size as usize
}

/// For each op: a victim file mapped whole (and its first page mapped again
/// as a sibling), truncated to one page by this process, then the op. The
/// op fails with DATA_LOSS, the mapping stays broken, and everything else
/// (the sibling, the head on disk, another client's file) is untouched.
async fn truncation_breaks_each_op(access: Access, ops: &[Op]) {
    let _shared = AREA_BUDGET.read().await;
    let mut fx = Fixture::new().await;
    let page = page_size(&mut fx).await;

    // Another client, another file, written and flushed before any fault.
    let (mut other, _) = fx.server.clients().await;
    let other_sid = session(&mut other, 0).await;
    let other_bytes = pattern(4 * page, 7);
    std::fs::write(fx.server.path("other.bin"), vec![0; 4 * page]).unwrap();
    let oh = support::map(
        &mut other,
        support::map_req(&other_sid, "other.bin", "", Access::Write),
    )
    .await
    .unwrap()
    .handle;
    other
        .write(rq::write(&oh, other_bytes.clone()))
        .await
        .unwrap();
    other.flush(rq::flush(&oh)).await.unwrap();

    for (i, &op) in ops.iter().enumerate() {
        let path = format!("victim{i}.bin");
        let head = pattern(page, i as u8);
        let mut bytes = head.clone();
        bytes.extend(pattern((PAGES - 1) * page, 100));
        std::fs::write(fx.server.path(&path), &bytes).unwrap();
        let name = format!("victim-{op:?}");
        let h = fx.handle(fx.named_req(&path, &name, access)).await;
        if access == Access::Write {
            // Written through the mapping and flushed: must survive.
            let new_head = pattern(page, 200 + i as u8);
            fx.c.write(rq::write(&h, new_head.clone())).await.unwrap();
            fx.c.flush(rq::flush(&h)).await.unwrap();
            fx.c.seek(rq::seek(&h, 0, 0)).await.unwrap();
            bytes[..page].copy_from_slice(&new_head);
        }
        let sibling = fx
            .handle(pb::MapRequest {
                length: page as i64,
                ..fx.named_req(&path, &format!("{name}-head"), Access::Read)
            })
            .await;

        std::fs::OpenOptions::new()
            .write(true)
            .open(fx.server.path(&path))
            .unwrap()
            .set_len(page as u64)
            .unwrap();

        let err = touch(op, &mut fx.c, &h, page)
            .await
            .expect_err(&format!("{op:?} on a truncated file"));
        assert_broken(&err, &name);
        // Broken for good, even for bytes still inside the file.
        let again = fx.c.get_item(rq::get_item(&h, 0)).await.unwrap_err();
        assert_broken(&again, &name);
        // The sibling over the surviving head still serves it.
        let head_now = fx.c.read(rq::read(&sibling, None)).await.unwrap();
        assert_eq!(head_now.into_inner().data, bytes[..page], "{op:?}");
        // Another client on another file is served normally.
        let theirs = other
            .get_slice(pb::GetSliceRequest {
                handle: oh.clone(),
                start: None,
                stop: None,
                step: None,
            })
            .await
            .unwrap();
        assert_eq!(theirs.into_inner().data, other_bytes, "{op:?}");
        fx.c.close(rq::close(&h)).await.unwrap();
        fx.c.close(rq::close(&sibling)).await.unwrap();
        // The head reached the disk and nothing broke it afterwards.
        assert_eq!(
            std::fs::read(fx.server.path(&path)).unwrap(),
            bytes[..page],
            "{op:?}"
        );
    }
    // Still up, still taking new work.
    let h = fx.map_file("other.bin", Access::Read).await;
    let all = fx.c.read(rq::read(&h, None)).await.unwrap().into_inner();
    assert_eq!(all.data, other_bytes);
    assert_eq!(
        std::fs::read(fx.server.path("other.bin")).unwrap(),
        other_bytes
    );
    // Unmapped before the budget test may run (see AREA_BUDGET).
    fx.server.shutdown().await;
}

#[tokio::test]
async fn outside_truncation_fails_each_read_of_a_read_map() {
    truncation_breaks_each_op(Access::Read, &READS).await;
}

#[tokio::test]
async fn outside_truncation_fails_each_data_rpc_of_a_write_map() {
    let every: Vec<Op> = READS.iter().chain(&WRITES).copied().collect();
    truncation_breaks_each_op(Access::Write, &every).await;
}

/// Readers on other connections racing the truncation get either the
/// right bytes or DATA_LOSS, never the zero pages put over the lost ones.
#[tokio::test]
async fn concurrent_readers_get_the_error_never_zeros() {
    let _shared = AREA_BUDGET.read().await;
    let mut fx = Fixture::new().await;
    let page = page_size(&mut fx).await;
    let data = pattern(64 * page, 9);
    std::fs::write(fx.server.path("raced.bin"), &data).unwrap();
    let h = fx
        .handle(fx.named_req("raced.bin", "raced", Access::Read))
        .await;

    let mut readers = Vec::new();
    for r in 0..4 {
        let (mut c, _) = fx.server.clients().await;
        let (h, head) = (h.clone(), data[..page].to_vec());
        readers.push(tokio::spawn(async move {
            // Bounded; the mapping breaks within the first few rounds.
            for _ in 0..10_000 {
                let got = c
                    .get_slice(pb::GetSliceRequest {
                        handle: h.clone(),
                        start: Some(0),
                        stop: Some(page as i64),
                        step: Some(1 + r % 2),
                    })
                    .await;
                match got {
                    Ok(reply) => {
                        let step = 1 + r as usize % 2;
                        let expected: Vec<u8> = head.iter().step_by(step).copied().collect();
                        assert_eq!(reply.into_inner().data, expected, "reader {r}");
                    }
                    Err(status) => {
                        assert_broken(&status, "raced");
                        return true;
                    }
                }
            }
            false
        }));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(fx.server.path("raced.bin"))
        .unwrap()
        .set_len(page as u64)
        .unwrap();
    let err = fx.c.read(rq::read(&h, None)).await.unwrap_err();
    assert_broken(&err, "raced");
    for reader in readers {
        assert!(reader.await.unwrap(), "every reader ends with DATA_LOSS");
    }
    fx.server.shutdown().await;
}

/// Madvise on alternate pages of a large mapping used to split it into one
/// area per page until the kernel's limit, after which allocations failed
/// and the server aborted.
#[tokio::test]
async fn alternate_page_madvise_stays_within_the_map_area_budget() {
    const AREAS: u32 = 48;
    let _alone = AREA_BUDGET.write().await;
    let server = TestServer::start_with(|config| config.limits.max_map_areas = AREAS).await;
    let mut fx = Fixture::on(server).await;
    let page = page_size(&mut fx).await;
    let big = 32 << 20;

    // Another client's data, written and flushed before the attack.
    let (mut other, _) = fx.server.clients().await;
    let other_sid = session(&mut other, 0).await;
    std::fs::write(fx.server.path("other.bin"), pattern(page, 3)).unwrap();
    let oh = support::map(
        &mut other,
        support::map_req(&other_sid, "other.bin", "", Access::Write),
    )
    .await
    .unwrap()
    .handle;
    other.write(rq::write(&oh, &b"before"[..])).await.unwrap();
    other.flush(rq::flush(&oh)).await.unwrap();

    let data = pattern(big, 1);
    std::fs::write(fx.server.path("big.bin"), &data).unwrap();
    let h = fx.map_file("big.bin", Access::Write).await;
    // Far more sub-range advice than the budget has areas: each succeeds.
    for i in (1..4 * AREAS as i64).step_by(2) {
        fx.c.madvise(pb::MadviseRequest {
            handle: h.clone(),
            option: Advice::MadvRandom as i32,
            start: Some(i * page as i64),
            length: Some(page as i64),
        })
        .await
        .unwrap_or_else(|e| panic!("madvise of page {i}: {e:?}"));
    }
    // The areas are used up: a new mapping is refused cleanly...
    std::fs::write(fx.server.path("new.bin"), b"new").unwrap();
    let refused = fx
        .map(fx.file_req("new.bin", Access::Read))
        .await
        .unwrap_err();
    let md = assert_error(
        &refused,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        &format!("max_map_areas limit of {AREAS} reached"),
    );
    assert_eq!(md["limit"], "max_map_areas");
    assert_eq!(md["value"], AREAS.to_string());

    // ...while a 32 MiB Read of the attacked mapping works...
    let got = fx.c.read(rq::read(&h, None)).await.unwrap().into_inner();
    assert!(got.data == data, "32 MiB read back differs");
    // ...and so does the other client, with its data.
    other.seek(rq::seek(&oh, 0, 0)).await.unwrap();
    let theirs = other.read(rq::read(&oh, Some(6))).await.unwrap();
    assert_eq!(theirs.into_inner().data, &b"before"[..]);
    other.write(rq::write(&oh, &b"after"[..])).await.unwrap();

    // Closing the attacker's mapping gives its areas back.
    fx.c.close(rq::close(&h)).await.unwrap();
    fx.map(fx.file_req("new.bin", Access::Read)).await.unwrap();
}

/// mremap refuses a mapping that madvise split into several areas; Resize
/// used to fail with INTERNAL after growing the file.
#[tokio::test]
async fn resize_after_madvise_on_part_of_a_mapping() {
    let _shared = AREA_BUDGET.read().await;
    let mut fx = Fixture::new().await;
    let page = page_size(&mut fx).await;
    let data = pattern(8 * page, 5);
    std::fs::write(fx.server.path("f.bin"), &data).unwrap();
    let h = fx.map_file("f.bin", Access::Write).await;
    fx.c.madvise(pb::MadviseRequest {
        handle: h.clone(),
        option: Advice::MadvSequential as i32,
        start: Some(2 * page as i64),
        length: Some(page as i64),
    })
    .await
    .unwrap();

    let grown = fx.c.resize(rq::resize(&h, 16 * page as i64)).await.unwrap();
    assert_eq!(grown.into_inner().length, 16 * page as u64);
    let all =
        fx.c.read(rq::read(&h, None))
            .await
            .unwrap()
            .into_inner()
            .data;
    assert_eq!(all[..8 * page], data[..]);
    assert!(all[8 * page..].iter().all(|&b| b == 0));
    assert_eq!(
        std::fs::metadata(fx.server.path("f.bin")).unwrap().len(),
        16 * page as u64
    );

    // Split again, then shrink.
    fx.c.madvise(pb::MadviseRequest {
        handle: h.clone(),
        option: Advice::MadvRandom as i32,
        start: Some(page as i64),
        length: Some(page as i64),
    })
    .await
    .unwrap();
    fx.c.resize(rq::resize(&h, 4 * page as i64)).await.unwrap();
    fx.c.seek(rq::seek(&h, 0, 0)).await.unwrap();
    let all =
        fx.c.read(rq::read(&h, None))
            .await
            .unwrap()
            .into_inner()
            .data;
    assert_eq!(all, data[..4 * page]);
    assert_eq!(
        std::fs::metadata(fx.server.path("f.bin")).unwrap().len(),
        4 * page as u64
    );
    fx.server.shutdown().await;
}

/// A ReadStream's chunks are zero-copy views that the encoder copies out
/// of the mapping, so a truncation can fault inside that copy, after the
/// chunk was cut. Such a chunk reaches the client empty, never as the
/// zero pages put over the lost ones, and the stream ends with DATA_LOSS.
#[tokio::test]
async fn a_stream_cut_by_a_truncation_sends_no_zeros() {
    let _shared = AREA_BUDGET.read().await;
    let mut fx = Fixture::new().await;
    let page = page_size(&mut fx).await;
    let data = pattern(4096 * page, 5);
    std::fs::write(fx.server.path("streamed.bin"), &data).unwrap();
    let h = fx
        .handle(fx.named_req("streamed.bin", "streamed", Access::Read))
        .await;
    let mut chunks =
        fx.c.read_stream(rq::read_stream(&h, Some(0), None, 4 * page as u32))
            .await
            .unwrap()
            .into_inner();
    // The first chunk arrives before the cut; the server has cut (and
    // the transport buffered) more by then.
    let first = chunks.next().await.unwrap().unwrap();
    assert_eq!(first.data, data[..first.data.len()]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(fx.server.path("streamed.bin"))
        .unwrap()
        .set_len(page as u64)
        .unwrap();
    let (mut empty, mut good) = (0, 0);
    let err = loop {
        match chunks.next().await {
            Some(Ok(chunk)) => {
                let at = chunk.offset as usize;
                let expected = &data[at..at + chunk.data.len()];
                assert!(chunk.data == expected, "chunk at {at} is not the file's");
                if chunk.data.is_empty() {
                    empty += 1;
                } else {
                    good += 1;
                }
            }
            Some(Err(status)) => break status,
            None => panic!("the stream ended as a success ({good} good chunks)"),
        }
    };
    assert_broken(&err, "streamed");
    // Only an encoder's copy touches a view's pages, so the fault that
    // broke the mapping hit one, and that chunk came empty.
    assert!(empty >= 1, "{good} good chunks, none emptied");
    fx.server.shutdown().await;
}
