//! The client side of every scenario, written once against the raw
//! `Mmap` stub so the same code drives mmapd and the bare baseline: big
//! streams, unary 64 B calls with many in flight, and Pipeline batches.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use mmapd::pb::{self, mmap_client::MmapClient};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// A raw stub with mmapd's client message limits.
pub type Stub = MmapClient<Channel>;

/// What a target serves: its address and the handle to name.
#[derive(Clone)]
pub struct Target {
    pub endpoint: String,
    pub handle: String,
}

/// A fresh connection (one HTTP/2 connection per call).
pub async fn connect(endpoint: &str) -> Stub {
    // The Rust client's own HTTP/2 settings, for mmapd and the baseline.
    let channel = mmapd::ConnectOptions::default()
        .endpoint(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    MmapClient::new(channel)
        .max_decoding_message_size(mmapd::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(mmapd::MAX_MESSAGE_SIZE)
}

/// Bytes per second of a ReadStream of `size` bytes from offset 0.
pub async fn read_stream(stub: &mut Stub, handle: &str, size: u64, chunk: u32) -> f64 {
    let started = Instant::now();
    let mut chunks = stub
        .read_stream(pb::ReadStreamRequest {
            handle: handle.to_owned(),
            offset: Some(0),
            length: Some(size),
            chunk_size: chunk,
        })
        .await
        .expect("ReadStream")
        .into_inner();
    let mut got = 0u64;
    while let Some(chunk) = chunks.message().await.expect("ReadStream chunk") {
        got += chunk.data.len() as u64;
    }
    assert_eq!(got, size, "ReadStream length");
    got as f64 / started.elapsed().as_secs_f64()
}

/// Bytes per second of a WriteStream of `size` bytes at offset 0, sent in
/// `chunk`-byte messages (one shared buffer, so the client copies nothing).
pub async fn write_stream(stub: &mut Stub, handle: &str, size: u64, chunk: usize) -> f64 {
    let data = Bytes::from(vec![0x3c_u8; chunk]);
    let handle = handle.to_owned();
    let pieces = size.div_ceil(chunk as u64);
    let chunks = futures::stream::iter((0..pieces).map(move |i| {
        let n = (size - i * chunk as u64).min(chunk as u64) as usize;
        pb::WriteChunk {
            handle: if i == 0 {
                handle.clone()
            } else {
                String::new()
            },
            offset: (i == 0).then_some(0),
            data: data.slice(..n),
        }
    }));
    let started = Instant::now();
    let written = stub
        .write_stream(chunks)
        .await
        .expect("WriteStream")
        .into_inner()
        .written;
    assert_eq!(written, size, "WriteStream length");
    size as f64 / started.elapsed().as_secs_f64()
}

/// Which 64 B operation a load runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Get,
    Set,
}

/// Ops per second and per-op (or per-batch) latencies, sorted, in µs.
pub struct Load {
    pub ops_per_sec: f64,
    pub latencies_us: Vec<u32>,
}

impl Load {
    /// The `q`-quantile latency in µs.
    pub fn quantile(&self, q: f64) -> u32 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0;
        }
        self.latencies_us[((n - 1) as f64 * q).round() as usize]
    }
}

/// A small xorshift: offsets only need to be spread, not unpredictable.
struct Offsets(u64, u64);

impl Offsets {
    fn new(seed: u64, span: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, span.max(1))
    }

    fn next(&mut self) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % self.1) as i64
    }
}

const OP: i64 = 64;

/// `in_flight` tasks over `conns` connections, each issuing one unary 64 B
/// call at a random offset in `span` at a time, for `time`.
pub async fn unary(
    target: &Target,
    kind: Kind,
    in_flight: usize,
    conns: usize,
    span: u64,
    time: Duration,
) -> Load {
    let mut stubs = Vec::new();
    for _ in 0..conns {
        stubs.push(connect(&target.endpoint).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let data = Bytes::from(vec![0x42_u8; OP as usize]);
    let tasks: Vec<_> = (0..in_flight)
        .map(|i| {
            let mut stub = stubs[i % conns].clone();
            let handle = target.handle.clone();
            let stop = stop.clone();
            let data = data.clone();
            tokio::spawn(async move {
                let mut offsets = Offsets::new(i as u64 + 1, span - OP as u64);
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let at = offsets.next();
                    let started = Instant::now();
                    match kind {
                        Kind::Get => {
                            let got = stub
                                .get_slice(pb::GetSliceRequest {
                                    handle: handle.clone(),
                                    start: Some(at),
                                    stop: Some(at + OP),
                                    step: None,
                                })
                                .await
                                .expect("GetSlice");
                            assert_eq!(got.into_inner().data.len(), OP as usize);
                        }
                        Kind::Set => {
                            stub.set_slice(pb::SetSliceRequest {
                                handle: handle.clone(),
                                start: Some(at),
                                stop: Some(at + OP),
                                step: None,
                                data: data.clone(),
                            })
                            .await
                            .expect("SetSlice");
                        }
                    }
                    latencies.push(started.elapsed().as_micros() as u32);
                }
                latencies
            })
        })
        .collect();
    finish(tasks, stop, time, 1).await
}

/// `streams` Pipeline streams on one connection, each sending a batch of
/// `batch` 64 B ops and waiting for its reply before the next, for `time`.
/// Latencies are per batch.
pub async fn pipeline(
    target: &Target,
    kind: Kind,
    streams: usize,
    batch: usize,
    span: u64,
    time: Duration,
) -> Load {
    let stub = connect(&target.endpoint).await;
    let stop = Arc::new(AtomicBool::new(false));
    let data = Bytes::from(vec![0x42_u8; OP as usize]);
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let mut stub = stub.clone();
            let handle = target.handle.clone();
            let stop = stop.clone();
            let data = data.clone();
            tokio::spawn(async move {
                let mut offsets = Offsets::new(i as u64 + 1, span - OP as u64);
                let mut make = move || pb::PipelineRequest {
                    ops: (0..batch)
                        .map(|_| {
                            let at = offsets.next();
                            let op = match kind {
                                Kind::Get => pb::op::Op::GetSlice(pb::GetSliceRequest {
                                    handle: handle.clone(),
                                    start: Some(at),
                                    stop: Some(at + OP),
                                    step: None,
                                }),
                                Kind::Set => pb::op::Op::SetSlice(pb::SetSliceRequest {
                                    handle: handle.clone(),
                                    start: Some(at),
                                    stop: Some(at + OP),
                                    step: None,
                                    data: data.clone(),
                                }),
                            };
                            pb::Op { op: Some(op) }
                        })
                        .collect(),
                };
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                // The first batch goes in before the call so the call does
                // not wait on response headers with nothing sent.
                let mut started = Instant::now();
                tx.send(make()).await.expect("queue batch");
                let mut replies = stub
                    .pipeline(ReceiverStream::new(rx))
                    .await
                    .expect("Pipeline")
                    .into_inner();
                let mut latencies = Vec::new();
                loop {
                    let reply = replies
                        .message()
                        .await
                        .expect("Pipeline reply")
                        .expect("a reply per batch");
                    latencies.push(started.elapsed().as_micros() as u32);
                    assert_eq!(reply.results.len(), batch);
                    for result in &reply.results {
                        if let Some(pb::op_result::Result::Error(status)) = &result.result {
                            panic!("Pipeline op failed: {}", status.message);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    started = Instant::now();
                    tx.send(make()).await.expect("queue batch");
                }
                latencies
            })
        })
        .collect();
    finish(tasks, stop, time, batch).await
}

/// Lets `tasks` run for `time`, stops them and gathers their latencies;
/// each latency stands for `ops_each` operations.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Vec<u32>>>,
    stop: Arc<AtomicBool>,
    time: Duration,
    ops_each: usize,
) -> Load {
    let started = Instant::now();
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await.expect("load task"));
    }
    let secs = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    Load {
        ops_per_sec: (latencies_us.len() * ops_each) as f64 / secs,
        latencies_us,
    }
}
