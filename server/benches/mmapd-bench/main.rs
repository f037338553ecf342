//! `mmapd-bench`: mmapd's data path next to baselines measured in the same
//! run on the same machine, printed as one table of ratios.
//!
//! `cargo bench --bench mmapd-bench -- [--quick] [FILTER...]` runs every
//! scenario whose name contains one of the filters (all without filters).
//! Baselines: a raw TCP loopback copy and memcpy/pread (physical limits),
//! and a bare tonic service on mmapd's own RPC paths (the framework
//! ceiling, [`bare`]). mmapd and the bare service each run on their own
//! runtime thread ([`servers`]); the client drives both with the same code
//! ([`load`]). Not part of `cargo test`: bench targets are built only by
//! `cargo bench` (or `--benches`/`--all-targets`), and nothing here asserts
//! a time.

mod bare;
mod baselines;
mod load;
mod rss;
mod servers;

use std::{path::Path, time::Duration};

use load::{Kind, Target};
use mmapd::pb;

/// The command line: `--quick` and name filters (cargo's `--bench` flag
/// is ignored).
struct Args {
    quick: bool,
    filters: Vec<String>,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            quick: false,
            filters: Vec::new(),
        };
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--quick" => args.quick = true,
                "--bench" => {}
                "-h" | "--help" => {
                    println!(
                        "usage: cargo bench --bench mmapd-bench -- [--quick] [FILTER...]\n\
                         --quick: 64 MiB streams and 1 s loads instead of 1 GiB and 3 s"
                    );
                    std::process::exit(0);
                }
                flag if flag.starts_with('-') => {
                    eprintln!("mmapd-bench: unknown flag {flag}");
                    std::process::exit(2);
                }
                filter => args.filters.push(filter.to_owned()),
            }
        }
        args
    }

    fn wants(&self, scenario: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| scenario.contains(f.as_str()))
    }
}

/// One line of the table.
struct Row {
    scenario: String,
    value: f64,
    unit: &'static str,
    baseline_name: &'static str,
    baseline: Option<f64>,
    note: String,
}

impl Row {
    fn print(&self) {
        let (value, baseline) = (human(self.value, self.unit), self.baseline);
        let (base, ratio) = match baseline {
            Some(b) => (
                format!("{} {}", self.baseline_name, human(b, self.unit)),
                format!("{:.2}", self.value / b),
            ),
            None => (self.baseline_name.to_owned(), "-".to_owned()),
        };
        println!(
            "| {:<28} | {:>13} | {:<28} | {:>5} | {} |",
            self.scenario, value, base, ratio, self.note
        );
    }
}

fn human(value: f64, unit: &str) -> String {
    match unit {
        "GB/s" => format!("{:.2} GB/s", value / 1e9),
        _ if value >= 1e6 => format!("{:.2}M ops/s", value / 1e6),
        _ => format!("{:.1}k ops/s", value / 1e3),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

const KIB: u32 = 1 << 10;
const MIB: u32 = 1 << 20;

fn main() {
    let args = Args::parse();
    let size: u64 = if args.quick { 64 << 20 } else { 1 << 30 };
    let time = Duration::from_secs(if args.quick { 1 } else { 3 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let root = tempfile::tempdir().expect("temp data root");
    let big = root.path().join("big.bin");
    fill(&big, size);
    let mmapd_server = servers::mmapd(root.path());
    let bare_server = servers::bare(bytes::Bytes::from(vec![0x5a_u8; 8 << 20]));
    println!(
        "mmapd-bench: {} streams, {} s loads, {} cores; RssAnon is the whole \
         process's growth (server and client)\n",
        mib(size),
        time.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "| {:<28} | {:>13} | {:<28} | {:>5} | notes |",
        "scenario", "value", "baseline", "ratio"
    );
    println!("|{:-<30}|{:->15}|{:-<30}|{:->7}|-------|", "", "", "", "");

    let mut tcp = None;
    if args.wants("baseline/tcp-loopback") || args.wants("stream") {
        let gbps = baselines::tcp_loopback(size) * 1e9;
        tcp = Some(gbps);
        row(
            "baseline/tcp-loopback",
            gbps,
            "GB/s",
            "physical limit",
            None,
            String::new(),
        );
    }
    if args.wants("baseline/memcpy") {
        let gbps = baselines::memcpy(size) * 1e9;
        row(
            "baseline/memcpy",
            gbps,
            "GB/s",
            "heap, 256 KiB pieces",
            None,
            String::new(),
        );
        let gbps = baselines::pread(&big) * 1e9;
        row(
            "baseline/pread",
            gbps,
            "GB/s",
            "page cache, 256 KiB",
            None,
            String::new(),
        );
    }

    runtime.block_on(async {
        let (mut m, handle, session) = open(&mmapd_server.endpoint(), "big.bin", 0, false).await;
        // The lease outlives a full run only if renewed; an expired session
        // closes its handles mid-scenario.
        let renew = {
            let (mut stub, session) = (m.clone(), session.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    stub.keep_alive(pb::KeepAliveRequest {
                        session_id: session.clone(),
                    })
                    .await
                    .expect("KeepAlive");
                }
            })
        };
        let mmapd = Target {
            endpoint: mmapd_server.endpoint(),
            handle,
        };
        let bare = Target {
            endpoint: bare_server.endpoint(),
            handle: "bare".into(),
        };
        let mut b = load::connect(&bare.endpoint).await;
        let vs_tcp = |gbps: f64| tcp.map_or(String::new(), |t| format!("{:.2} of TCP", gbps / t));

        for chunk in [64 * KIB, 256 * KIB, MIB, 4 * MIB] {
            let name = format!("stream-read/{}", chunk_name(chunk));
            if !args.wants(&name) {
                continue;
            }
            let base = load::read_stream(&mut b, &bare.handle, size, chunk).await;
            let sampler = rss::Sampler::start();
            let got = load::read_stream(&mut m, &mmapd.handle, size, chunk).await;
            let grew = sampler.growth();
            let note = format!("{}, RssAnon +{}", vs_tcp(got), mib(grew));
            row(&name, got, "GB/s", "bare tonic", Some(base), note);
        }
        for (new, kind) in [(false, "existing"), (true, "new")] {
            for chunk in [256 * KIB, MIB, 4 * MIB] {
                let name = format!("stream-write-{kind}/{}", chunk_name(chunk));
                if !args.wants(&name) {
                    continue;
                }
                let base = load::write_stream(&mut b, &bare.handle, size, chunk as usize).await;
                let (mut w, handle, new_session) = if new {
                    let file = format!("new-{chunk}.bin");
                    let (w, handle, session) =
                        open(&mmapd.endpoint, &file, size as i64, true).await;
                    (w, handle, Some(session))
                } else {
                    (m.clone(), mmapd.handle.clone(), None)
                };
                let sampler = rss::Sampler::start();
                let got = load::write_stream(&mut w, &handle, size, chunk as usize).await;
                let grew = sampler.growth();
                if let Some(session_id) = new_session {
                    w.close(pb::CloseRequest { handle }).await.expect("Close");
                    w.close_session(pb::CloseSessionRequest { session_id })
                        .await
                        .expect("CloseSession");
                    std::fs::remove_file(root.path().join(format!("new-{chunk}.bin"))).ok();
                }
                let note = format!("{}, RssAnon +{}", vs_tcp(got), mib(grew));
                row(&name, got, "GB/s", "bare tonic", Some(base), note);
            }
        }
        for (kind, op) in [(Kind::Get, "get"), (Kind::Set, "set")] {
            // One call in flight uses one connection whatever the count, so
            // 1 x 2 connections would only repeat 1 x 1.
            for (in_flight, conns) in [(1, 1), (50, 1), (50, 2)] {
                let name = format!("unary-{op}-64B/{in_flight}x{conns}conn");
                if !args.wants(&name) {
                    continue;
                }
                let base = load::unary(&bare, kind, in_flight, conns, size, time).await;
                let got = load::unary(&mmapd, kind, in_flight, conns, size, time).await;
                load_row(&name, "p50/p99", &got, &base);
            }
        }
        for (kind, op) in [(Kind::Get, "get"), (Kind::Set, "set")] {
            for batch in [16, 1] {
                let name = format!("pipeline-{op}-64B/50x{batch}");
                if !args.wants(&name) {
                    continue;
                }
                let base = load::pipeline(&bare, kind, 50, batch, size, time).await;
                let got = load::pipeline(&mmapd, kind, 50, batch, size, time).await;
                load_row(&name, "batch p50/p99", &got, &base);
            }
        }
        renew.abort();
        m.close_session(pb::CloseSessionRequest {
            session_id: session,
        })
        .await
        .expect("CloseSession");
    });
    drop(mmapd_server);
    drop(bare_server);
}

/// A row of ops/s next to the bare tonic service's, with both latencies.
fn load_row(scenario: &str, latency: &str, got: &load::Load, base: &load::Load) {
    let note = format!(
        "{latency} {}/{} µs (bare {}/{})",
        got.quantile(0.5),
        got.quantile(0.99),
        base.quantile(0.5),
        base.quantile(0.99)
    );
    let bare = Some(base.ops_per_sec);
    row(scenario, got.ops_per_sec, "ops/s", "bare tonic", bare, note);
}

fn row(
    scenario: &str,
    value: f64,
    unit: &'static str,
    baseline_name: &'static str,
    baseline: Option<f64>,
    note: String,
) {
    Row {
        scenario: scenario.to_owned(),
        value,
        unit,
        baseline_name,
        baseline,
        note,
    }
    .print();
}

fn chunk_name(chunk: u32) -> String {
    if chunk >= MIB {
        format!("{}MiB", chunk / MIB)
    } else {
        format!("{}KiB", chunk / KIB)
    }
}

/// Writes `size` bytes of a non-zero pattern, so reads touch real pages
/// rather than holes.
fn fill(path: &Path, size: u64) {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let piece: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        file.write_all(&piece[..n]).expect("fill bench file");
        left -= n as u64;
    }
    file.flush().expect("flush bench file");
}

/// A connection, a session and a read-write handle on `path`; with
/// `create`, a new file of `length` bytes.
async fn open(
    endpoint: &str,
    path: &str,
    length: i64,
    create: bool,
) -> (load::Stub, String, String) {
    let mut stub = load::connect(endpoint).await;
    let session = stub
        .open_session(pb::OpenSessionRequest {
            client_name: "mmapd-bench".into(),
            ttl_seconds: 0,
        })
        .await
        .expect("OpenSession")
        .into_inner()
        .session_id;
    let handle = stub
        .map(pb::MapRequest {
            session_id: session.clone(),
            path: path.into(),
            length,
            create,
            access: pb::Access::Write as i32,
            ..Default::default()
        })
        .await
        .expect("Map")
        .into_inner()
        .handle;
    (stub, handle, session)
}
