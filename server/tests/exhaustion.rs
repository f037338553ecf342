//! Attacks on the real `mmapd` binary that only a separate process shows:
//! its resident memory under never-read streams and unary floods, its
//! open-file limit (`prlimit`) under many Maps and many connections, and
//! SIGTERM with a stalled stream. Each checks that another client is
//! served meanwhile and that bytes written first are kept.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use mmapd::pb::{self, Access, mmap_client::MmapClient};
use tokio::{io::AsyncReadExt, net::TcpStream, time::timeout};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

/// A spawned `mmapd`; killed on drop.
struct Server {
    child: Child,
    addr: String,
    root: tempfile::TempDir,
}

impl Server {
    /// Starts `mmapd` on 127.0.0.1:0 with `args`, under an open-file limit
    /// when `nofile` is given; `setup` fills the data root first.
    fn start(args: &[&str], nofile: Option<u32>, setup: impl FnOnce(&Path)) -> Server {
        let root = tempfile::tempdir().unwrap();
        setup(root.path());
        let bin = env!("CARGO_BIN_EXE_mmapd");
        let mut cmd = match nofile {
            Some(n) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--root")
            .arg(root.path())
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = logs.next().expect("mmapd logs that it serves").unwrap();
            let json: serde_json::Value = serde_json::from_str(&line).unwrap();
            if json["fields"]["message"] == "serving" {
                break json["fields"]["addr"].as_str().unwrap().to_owned();
            }
        };
        // Keep the pipe drained so logging never blocks the server.
        std::thread::spawn(move || logs.for_each(drop));
        Server { child, addr, root }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn client(&self) -> MmapClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        MmapClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    /// The server's anonymous resident memory (heap; not mapped files).
    fn rss_anon(&self) -> u64 {
        status_field(self.pid(), "RssAnon:")
    }

    /// The server's CPU time in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the ")" that ends the command name; utime and stime
        // are the 14th and 15th fields of the line.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// Samples `pid`'s RssAnon every 20 ms until stopped; the peak.
struct Peak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Peak {
    fn watch(pid: u32) -> Peak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn({
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(status_field(pid, "RssAnon:"), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Peak {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

const MIB: u64 = 1 << 20;

async fn session(c: &mut MmapClient<Channel>) -> String {
    c.open_session(pb::OpenSessionRequest {
        client_name: "exhaustion".into(),
        ttl_seconds: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .session_id
}

/// Maps `f` for writing and writes `b"kept"` at its start.
async fn map_kept(c: &mut MmapClient<Channel>) -> String {
    let sid = session(c).await;
    let h = c
        .map(pb::MapRequest {
            session_id: sid,
            path: "f".into(),
            access: Access::Write as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .handle;
    c.write(pb::WriteRequest {
        handle: h.clone(),
        data: "kept".into(),
    })
    .await
    .unwrap();
    h
}

/// A fresh client is served, and reads the bytes written first.
async fn still_served(server: &Server, h: &str) {
    let mut other = server.client().await;
    let data = other
        .get_slice(pb::GetSliceRequest {
            handle: h.into(),
            start: Some(0),
            stop: Some(4),
            step: None,
        })
        .await
        .expect("another client is served")
        .into_inner()
        .data;
    assert_eq!(&data[..], b"kept");
}

fn file_of(len: u64) -> impl FnOnce(&Path) {
    move |root| {
        let f = std::fs::File::create(root.join("f")).unwrap();
        f.set_len(len).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_read_streams_stay_within_the_stream_budget() {
    const BUDGET: u64 = 64 * MIB;
    let server = Server::start(
        &["--max-stream-buffer-bytes", "64M", "--max-chunk-size", "4M"],
        None,
        file_of(64 * MIB),
    );
    let mut c = server.client().await;
    let h = map_kept(&mut c).await;
    let baseline = server.rss_anon();
    let peak = Peak::watch(server.pid());

    // 200 streams of 4 MiB chunks on 4 connections; nobody reads them.
    let mut held = Vec::new();
    for _ in 0..4 {
        let stalled = server.client().await;
        for _ in 0..50 {
            let mut stalled = stalled.clone();
            held.push(
                stalled
                    .read_stream(pb::ReadStreamRequest {
                        handle: h.clone(),
                        offset: Some(0),
                        length: None,
                        chunk_size: 4 << 20,
                    })
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
    }
    // Let the server read all it is allowed to.
    tokio::time::sleep(Duration::from_secs(2)).await;
    still_served(&server, &h).await;
    let peak = peak.stop();
    // Without the budget each stream would buffer a chunk: 800 MiB.
    assert!(
        peak < baseline + BUDGET + 64 * MIB,
        "RssAnon peaked at {} MiB from {} MiB",
        peak / MIB,
        baseline / MIB
    );

    drop(held);
    let mut after = u64::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = server.rss_anon();
        if after < baseline + 32 * MIB {
            break;
        }
    }
    assert!(
        after < baseline + 32 * MIB,
        "memory returns to the OS after the streams close: {} MiB from {} MiB (peak {} MiB)",
        after / MIB,
        baseline / MIB,
        peak / MIB
    );
    still_served(&server, &h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_flood_stays_within_the_inflight_budget() {
    const BUDGET: u64 = 32 * MIB;
    const SIZE: usize = 8 << 20;
    let server = Server::start(
        &["--max-inflight-bytes", "32M"],
        None,
        file_of(SIZE as u64 + 4096),
    );
    let mut c = server.client().await;
    let h = map_kept(&mut c).await;
    let baseline = server.rss_anon();
    let peak = Peak::watch(server.pid());

    let data = bytes::Bytes::from(vec![7u8; SIZE]);
    let writes = (0..50).map(|_| {
        let mut c = c.clone();
        let (h, data) = (h.clone(), data.clone());
        async move {
            c.set_slice(pb::SetSliceRequest {
                handle: h,
                start: Some(4),
                stop: Some(SIZE as i64 + 4),
                step: None,
                data,
            })
            .await
        }
    });
    let flood = tokio::spawn(futures::future::join_all(writes));
    still_served(&server, &h).await;
    let results = timeout(Duration::from_secs(120), flood)
        .await
        .expect("the flood drains")
        .unwrap();
    let peak = peak.stop();
    for r in results {
        r.expect("every write succeeds in its turn");
    }
    // Without the budget all 50 messages are buffered at once: 400 MiB,
    // twice over while decoding.
    assert!(
        peak < baseline + 2 * BUDGET + 64 * MIB,
        "RssAnon peaked at {} MiB from {} MiB",
        peak / MIB,
        baseline / MIB
    );
    still_served(&server, &h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_past_the_mapping_limit_are_refused_under_the_fd_limit() {
    let server = Server::start(&[], Some(1024), file_of(4096));
    let mut c = server.client().await;
    let h = map_kept(&mut c).await;
    let mut refused = None;
    let mut sid = String::new();
    for i in 0..1100 {
        // Sessions of 200 handles keep clear of the per-session limit.
        if i % 200 == 0 {
            sid = session(&mut c).await;
        }
        let mapped = c
            .map(pb::MapRequest {
                session_id: sid.clone(),
                path: "f".into(),
                name: format!("m{i}"),
                access: Access::Read as i32,
                ..Default::default()
            })
            .await;
        if let Err(status) = mapped {
            refused = Some((i, status));
            break;
        }
    }
    let (at, status) = refused.expect("the mapping limit is reached before 1,100 Maps");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "QUOTA_EXCEEDED", "Map #{at}: {status:?}");
    assert_eq!(info.metadata["limit"], "max_mappings");
    // Connections still have descriptors left.
    still_served(&server, &h).await;
}

/// Opens `n` TCP connections to `addr`.
async fn connect_many(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    streams
}

/// Whether the server closed `stream` within `wait` without a byte.
async fn closed_silently(mut stream: TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        timeout(wait, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_without_spinning() {
    // nofile 1024 gives a cap of 256 connections.
    let server = Server::start(&["--idle-timeout", "3"], Some(1024), file_of(4096));
    let mut c = server.client().await;
    let h = map_kept(&mut c).await;

    let streams = connect_many(&server.addr, 1100).await;
    let before = server.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = server.cpu_ticks() - before;
    assert!(spent < 50, "the server spent {spent} ticks in a second");

    let checks = streams
        .into_iter()
        .map(|s| closed_silently(s, Duration::from_millis(1500)));
    let closed = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter(|&closed| closed)
        .count();
    assert!(closed >= 1100 - 256, "only {closed} of 1,100 were closed");
    // The established client kept its connection; a new one gets in once
    // the idle connections time out.
    c.tell(pb::TellRequest { handle: h.clone() })
        .await
        .expect("the existing connection is served");
    tokio::time::sleep(Duration::from_secs(3)).await;
    still_served(&server, &h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_back_off_instead_of_spinning() {
    // A cap above the fd limit: accept itself fails with EMFILE.
    let server = Server::start(
        &["--max-connections", "5000", "--idle-timeout", "3"],
        Some(1024),
        file_of(4096),
    );
    let mut c = server.client().await;
    let h = map_kept(&mut c).await;
    let streams = connect_many(&server.addr, 1100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = server.cpu_ticks() - before;
    assert!(spent < 50, "the server spent {spent} ticks in a second");
    c.tell(pb::TellRequest { handle: h.clone() })
        .await
        .expect("the existing connection is served");
    drop(streams);
    // Once descriptors are free again, new clients get in.
    timeout(Duration::from_secs(20), still_served(&server, &h))
        .await
        .expect("a new client gets in after the flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stalled_stream_exits_within_the_grace() {
    let mut server = Server::start(&["--shutdown-grace", "1"], None, file_of(64 * MIB));
    let mut c = server.client().await;
    let h = map_kept(&mut c).await;
    let stalled = c
        .read_stream(pb::ReadStreamRequest {
            handle: h,
            offset: Some(0),
            length: None,
            chunk_size: 4 << 20,
        })
        .await
        .unwrap()
        .into_inner();

    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = std::mem::replace(&mut server.child, Command::new("true").spawn().unwrap());
    let exit = timeout(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .expect("mmapd exits a grace after SIGTERM, not when the client reads")
    .unwrap()
    .unwrap();
    assert_eq!(exit.code(), Some(0), "SIGTERM exits 0");
    let on_disk = std::fs::read(server.root.path().join("f")).unwrap();
    assert_eq!(&on_disk[..4], b"kept");
    drop(stalled);
}
