//! End-to-end tests of the client's tokio I/O traits and streaming helpers
//! against a real server: the read-ahead and write-behind buffers must move
//! megabytes in few calls while keeping the server cursor where the caller
//! believes it is.

mod support;

use std::io::SeekFrom;

use mmapd::{Client, MapOptions, RemoteMmap, Session, Whence};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    StdRng::seed_from_u64(len as u64).fill_bytes(&mut data);
    data
}

async fn session(server: &TestServer) -> Session {
    let client = Client::connect(server.endpoint()).await.expect("connect");
    client
        .open_session("client_io", None)
        .await
        .expect("open session")
}

/// A fresh zero-filled file of `len` bytes, mapped read-write.
async fn new_file(session: &Session, name: &str, len: usize) -> RemoteMmap {
    let options = MapOptions::file(name).length(len as i64).create(true);
    session.map(options).await.expect("map")
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_round_trips_through_async_write_and_read() {
    let server = TestServer::start().await;
    let session = session(&server).await;
    // Not a multiple of the 1 MiB buffers, so partial buffers are exercised.
    let data = random_bytes(3 * 1024 * 1024 + 12_345);
    let mut map = new_file(&session, "copy.bin", data.len()).await;

    let copied = tokio::io::copy(&mut data.as_slice(), &mut map)
        .await
        .expect("copy in");
    assert_eq!(copied, data.len() as u64);
    AsyncWriteExt::flush(&mut map).await.expect("flush");
    assert_eq!(map.tell().await.expect("tell"), data.len() as u64);

    map.rewind().await.expect("rewind");
    let mut back = Vec::new();
    let copied = tokio::io::copy(&mut map, &mut back)
        .await
        .expect("copy out");
    assert_eq!(copied, data.len() as u64);
    assert!(back == data, "data read back differs");

    // At the end, reads report EOF rather than failing.
    let mut buf = [0u8; 16];
    assert_eq!(
        AsyncReadExt::read(&mut map, &mut buf)
            .await
            .expect("read at end"),
        0
    );

    // The bytes really are in the file on the server.
    map.flush(None, None).await.expect("msync");
    assert!(std::fs::read(server.path("copy.bin")).expect("file") == data);
    session.close().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_reads_leave_the_cursor_where_the_caller_stopped() {
    let server = TestServer::start().await;
    let session = session(&server).await;
    let data = random_bytes(100_000);
    let mut map = new_file(&session, "cursor.bin", data.len()).await;
    map.write(&data).await.expect("write");
    map.seek(0, Whence::Set).await.expect("seek");

    // The first poll pulls the whole mapping into the read-ahead buffer.
    let mut head = [0u8; 10];
    map.read_exact(&mut head).await.expect("read_exact");
    assert_eq!(head, data[..10]);
    assert_eq!(map.stream_position().await.expect("stream_position"), 10);
    // A method call sees the cursor the caller consumed to, not the server's.
    assert_eq!(map.tell().await.expect("tell"), 10);
    assert_eq!(&map.read(Some(5)).await.expect("read")[..], &data[10..15]);

    map.read_exact(&mut head).await.expect("read_exact");
    assert_eq!(head, data[15..25]);
    // SeekFrom::Current counts from what was consumed.
    assert_eq!(
        AsyncSeekExt::seek(&mut map, SeekFrom::Current(5))
            .await
            .expect("seek cur"),
        30
    );
    map.read_exact(&mut head).await.expect("read_exact");
    assert_eq!(head, data[30..40]);
    assert_eq!(
        AsyncSeekExt::seek(&mut map, SeekFrom::End(-4))
            .await
            .expect("seek end"),
        data.len() as u64 - 4
    );
    let mut tail = Vec::new();
    map.read_to_end(&mut tail).await.expect("read_to_end");
    assert_eq!(tail, data[data.len() - 4..]);
    assert_eq!(
        AsyncSeekExt::seek(&mut map, SeekFrom::Start(2))
            .await
            .expect("seek start"),
        2
    );
    assert_eq!(map.read_byte().await.expect("read_byte"), data[2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_after_reads_land_at_the_consumed_position() {
    let server = TestServer::start().await;
    let session = session(&server).await;
    let mut map = new_file(&session, "mixed.bin", 64).await;
    map.write(&[b'.'; 64]).await.expect("fill");
    map.seek(0, Whence::Set).await.expect("seek");

    let mut head = [0u8; 4];
    map.read_exact(&mut head).await.expect("read_exact");
    AsyncWriteExt::write_all(&mut map, b"XY")
        .await
        .expect("write_all");
    // Buffered writes are sent before any method call observes the mapping.
    assert_eq!(map.tell().await.expect("tell"), 6);
    assert_eq!(
        &map.get_slice(Some(0), Some(8), None).await.expect("slice")[..],
        b"....XY.."
    );

    AsyncWriteExt::write_all(&mut map, b"Z")
        .await
        .expect("write_all");
    map.read_exact(&mut head).await.expect("read after write");
    assert_eq!(&head, b"....");
    assert_eq!(map.get(6).await.expect("get"), b'Z');
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_and_download_stream_large_files() {
    let server = TestServer::start().await;
    let session = session(&server).await;
    let data = random_bytes(16 * 1024 * 1024 + 7);
    let mut map = new_file(&session, "big.bin", data.len()).await;

    let written = map
        .upload(Some(0), &mut data.as_slice())
        .await
        .expect("upload");
    assert_eq!(written, data.len() as u64);
    // A positional upload leaves the cursor alone.
    assert_eq!(map.tell().await.expect("tell"), 0);

    let mut back = Vec::new();
    let read = map
        .download(Some(0), None, &mut back)
        .await
        .expect("download");
    assert_eq!(read, data.len() as u64);
    assert!(back == data, "downloaded data differs");

    // From the cursor: a ranged download advances it.
    map.seek(1000, Whence::Set).await.expect("seek");
    let mut part = Vec::new();
    map.download(None, Some(5000), &mut part)
        .await
        .expect("ranged download");
    assert_eq!(part, data[1000..6000]);
    assert_eq!(map.tell().await.expect("tell"), 6000);
}

#[tokio::test(flavor = "multi_thread")]
async fn write_stream_splits_chunks_and_read_stream_yields_them() {
    let server = TestServer::start().await;
    let session = session(&server).await;
    let data = random_bytes(3 * 1024 * 1024);
    let mut map = new_file(&session, "stream.bin", data.len()).await;

    // One 3 MiB chunk: the client must split it below the message limit.
    let chunk = bytes::Bytes::from(data.clone());
    let written = map
        .write_stream(None, futures::stream::iter([chunk]))
        .await
        .expect("write_stream");
    assert_eq!(written, data.len() as u64);
    assert_eq!(map.tell().await.expect("tell"), data.len() as u64);

    // An empty stream still names the handle and writes nothing.
    let written = map
        .write_stream(Some(0), futures::stream::empty())
        .await
        .expect("empty write_stream");
    assert_eq!(written, 0);

    let mut chunks = map
        .read_stream(Some(0), None, 64 * 1024)
        .await
        .expect("read_stream");
    let mut back = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut chunks).await {
        let chunk = chunk.expect("chunk");
        assert!(chunk.len() <= 64 * 1024);
        back.extend_from_slice(&chunk);
    }
    assert!(back == data, "streamed data differs");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_seek_leaves_the_cursor_where_the_caller_was() {
    let server = TestServer::start().await;
    let session = session(&server).await;
    let data = random_bytes(4096);
    let mut map = new_file(&session, "badseek.bin", data.len()).await;
    map.write(&data).await.expect("write");
    map.seek(0, Whence::Set).await.expect("seek");

    // The read pulls the whole mapping into the read-ahead buffer.
    let mut head = [0u8; 10];
    map.read_exact(&mut head).await.expect("read_exact");
    assert!(
        AsyncSeekExt::seek(&mut map, SeekFrom::Start(99_999))
            .await
            .is_err(),
        "seek past the end must fail"
    );
    assert_eq!(map.stream_position().await.expect("stream_position"), 10);
    assert_eq!(map.tell().await.expect("tell"), 10);
    map.read_exact(&mut head).await.expect("read_exact");
    assert_eq!(head, data[10..20]);

    // Again, observed through the read-ahead rather than a method call.
    assert!(
        AsyncSeekExt::seek(&mut map, SeekFrom::End(1))
            .await
            .is_err(),
        "seek past the end must fail"
    );
    map.read_exact(&mut head).await.expect("read_exact");
    assert_eq!(head, data[20..30]);
    assert_eq!(map.stream_position().await.expect("stream_position"), 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_is_not_reported_as_flushed() {
    let server = TestServer::start().await;
    let session = session(&server).await;
    let mut map = new_file(&session, "badwrite.bin", 100).await;

    // Accepted into the write-behind buffer; the server refuses it on flush.
    AsyncWriteExt::write_all(&mut map, &[7; 150])
        .await
        .expect("write_all");
    assert!(AsyncWriteExt::flush(&mut map).await.is_err(), "first flush");
    // The bytes are still unwritten, so a retried flush fails too.
    assert!(
        AsyncWriteExt::flush(&mut map).await.is_err(),
        "second flush"
    );
    assert!(AsyncWriteExt::shutdown(&mut map).await.is_err(), "shutdown");

    // Seeking away abandons the refused bytes.
    assert_eq!(
        AsyncSeekExt::seek(&mut map, SeekFrom::Start(0))
            .await
            .expect("seek"),
        0
    );
    AsyncWriteExt::flush(&mut map)
        .await
        .expect("flush after seek");
    assert_eq!(
        &map.get_slice(None, None, None).await.expect("slice")[..],
        &[0; 100][..]
    );

    // A method call reports the failure once, then drops the bytes.
    AsyncWriteExt::write_all(&mut map, &[7; 150])
        .await
        .expect("write_all");
    assert!(map.tell().await.is_err(), "tell reports the failed write");
    assert_eq!(map.tell().await.expect("tell"), 0);
    AsyncWriteExt::flush(&mut map)
        .await
        .expect("nothing left to flush");
}
