//! End-to-end tests of `/metrics`: a real server started with
//! `run_with_metrics` (or `run` with `metrics_listen`), real gRPC calls,
//! and scrapes over a raw HTTP/1 request. Every scrape is parsed strictly
//! (each sample `name{labels} value`, each family with a `# TYPE`) and the
//! counters and gauges must move by exactly what the calls did.
//!
//! The tests run one at a time: one compares the process's listening
//! sockets before and after a start, and faults are counted process-wide.

mod support;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    time::Duration,
};

use futures::StreamExt;
use mmapd::pb::{self, Access};
use support::{assert_error, map_req, rq, session};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tonic::Code;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server with `/metrics` on its own port.
struct Server {
    addr: SocketAddr,
    metrics: SocketAddr,
    root: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut mmapd_server::Config)) -> Server {
        let root = tempfile::tempdir().unwrap();
        let mut config = mmapd_server::Config::new(root.path());
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, metrics) = (
            listener.local_addr().unwrap(),
            metrics_listener.local_addr().unwrap(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            mmapd_server::run_with_metrics(listener, metrics_listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("server run");
        });
        Server {
            addr,
            metrics,
            root,
            stop,
            task,
        }
    }

    async fn client(&self) -> pb::mmap_client::MmapClient<tonic::transport::Channel> {
        pb::mmap_client::MmapClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("stops")
            .unwrap();
    }
}

/// `GET path` over HTTP/1.1; the status code, the content type and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("metrics port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let content_type = lines
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// One parsed sample.
type Samples = HashMap<(String, BTreeMap<String, String>), f64>;

/// Parses the exposition strictly: every line is a `# HELP`, `# TYPE`,
/// `# UNIT` or `# EOF` comment or a `name{label="value",...} value`
/// sample, and every sample belongs to a family declared by `# TYPE`.
fn parse(text: &str) -> Samples {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            match words.next() {
                Some("TYPE") => {
                    let name = words.next().expect("TYPE name").to_owned();
                    let kind = words.next().expect("TYPE kind").to_owned();
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "unknown"
                        ]
                        .contains(&kind.as_str()),
                        "{line}"
                    );
                    assert!(types.insert(name, kind).is_none(), "two TYPEs: {line}");
                }
                Some("HELP" | "UNIT") => {}
                Some("EOF") => {}
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        let (name, labels, value) = sample(line);
        let family = ["_total", "_bucket", "_count", "_sum", "_created", ""]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                types.get(base).map(|kind| (base, kind))
            });
        let (_, kind) = family.unwrap_or_else(|| panic!("no # TYPE for {line:?}"));
        if name.ends_with("_total") {
            assert_eq!(kind, "counter", "{line}");
        }
        let key = (name.to_owned(), labels);
        assert!(!samples.contains_key(&key), "duplicate sample {line:?}");
        samples.insert(key, value);
    }
    assert_eq!(text.lines().last(), Some("# EOF"), "ends with # EOF");
    samples
}

/// Splits one sample line; panics on anything malformed.
fn sample(line: &str) -> (&str, BTreeMap<String, String>, f64) {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()),
        "bad name in {line:?}"
    );
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("open {{ in {line:?}"));
            match c {
                '}' if key.is_empty() => break i,
                ',' if key.is_empty() => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line:?}");
                    let mut value = String::new();
                    loop {
                        match chars
                            .next()
                            .unwrap_or_else(|| panic!("open \" in {line:?}"))
                        {
                            (_, '"') => break,
                            (_, '\\') => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(c @ ('\\' | '"')) => value.push(c),
                                other => panic!("bad escape {other:?} in {line:?}"),
                            },
                            (_, c) => value.push(c),
                        }
                    }
                    assert!(
                        key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "bad label name {key:?} in {line:?}"
                    );
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        };
        rest = &inner[end + 1..];
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value in {line:?}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}")),
    };
    (name, labels, value)
}

/// Scrapes `/metrics` and parses it.
async fn scrape(addr: SocketAddr) -> Samples {
    let (status, content_type, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(&body)
}

/// The value of `name` with exactly `labels`, if sampled.
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples.get(&(name.to_owned(), labels)).copied()
}

fn calls(samples: &Samples, method: &str, code: &str) -> Option<f64> {
    let method = format!("/mmapd.v1.Mmap/{method}");
    value(
        samples,
        "mmapd_rpcs_total",
        &[("method", &method), ("code", code)],
    )
}

#[tokio::test]
async fn counters_and_gauges_move_with_the_calls_made() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(|config| config.limits.max_sessions = 2).await;
    std::fs::write(server.root.path().join("data.bin"), vec![7u8; 8192]).unwrap();
    let mut c = server.client().await;

    let before = scrape(server.metrics).await;
    assert_eq!(value(&before, "mmapd_sessions", &[]), Some(0.0));
    assert_eq!(value(&before, "mmapd_read_bytes_total", &[]), Some(0.0));
    assert_eq!(calls(&before, "OpenSession", "OK"), None);

    let sid = session(&mut c, 0).await;
    let anon = c
        .map(pb::MapRequest {
            length: 4096,
            ..map_req(&sid, "", "", Access::Write)
        })
        .await
        .unwrap()
        .into_inner()
        .handle;
    let file = c
        .map(map_req(&sid, "data.bin", "", Access::Read))
        .await
        .unwrap()
        .into_inner()
        .handle;
    // 1000 bytes written; 300 + 200 (streamed in 4 chunks) + 1 read.
    c.write(rq::write(&anon, vec![1u8; 1000])).await.unwrap();
    c.seek(rq::seek(&anon, 0, 0)).await.unwrap();
    let read = c.read(rq::read(&anon, Some(300))).await.unwrap();
    assert_eq!(read.into_inner().data.len(), 300);
    let mut chunks = c
        .read_stream(rq::read_stream(&file, Some(0), Some(200), 64))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = 0;
    while let Some(chunk) = chunks.next().await {
        streamed += chunk.unwrap().data.len();
    }
    assert_eq!(streamed, 200);
    c.get_item(rq::get_item(&file, 5)).await.unwrap();
    // 150 more bytes written, in two streamed chunks.
    let chunk = |offset, len| pb::WriteChunk {
        handle: anon.clone(),
        offset,
        data: vec![2u8; len].into(),
    };
    let streamed_in = c
        .write_stream(futures::stream::iter([
            chunk(Some(2000), 100),
            chunk(None, 50),
        ]))
        .await
        .unwrap();
    assert_eq!(streamed_in.into_inner().written, 150);
    // An error, and a quota refusal (the third session of two).
    let err = c.read(rq::read("no-such-handle", None)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    session(&mut c, 0).await;
    let refused = c
        .open_session(pb::OpenSessionRequest::default())
        .await
        .unwrap_err();
    assert_error(
        &refused,
        Code::ResourceExhausted,
        "QUOTA_EXCEEDED",
        refused.message(),
    );

    let after = scrape(server.metrics).await;
    assert_eq!(calls(&after, "OpenSession", "OK"), Some(2.0));
    assert_eq!(
        calls(&after, "OpenSession", "RESOURCE_EXHAUSTED"),
        Some(1.0)
    );
    assert_eq!(calls(&after, "Map", "OK"), Some(2.0));
    assert_eq!(calls(&after, "Write", "OK"), Some(1.0));
    assert_eq!(calls(&after, "Read", "OK"), Some(1.0));
    assert_eq!(calls(&after, "Read", "FAILED_PRECONDITION"), Some(1.0));
    // A stream's status comes in its trailers.
    assert_eq!(calls(&after, "ReadStream", "OK"), Some(1.0));
    assert_eq!(calls(&after, "WriteStream", "OK"), Some(1.0));
    let read_latency = [("method", "/mmapd.v1.Mmap/Read")];
    assert_eq!(
        value(&after, "mmapd_rpc_duration_seconds_count", &read_latency),
        Some(2.0)
    );
    let inf = [("method", "/mmapd.v1.Mmap/Read"), ("le", "+Inf")];
    assert_eq!(
        value(&after, "mmapd_rpc_duration_seconds_bucket", &inf),
        Some(2.0)
    );
    assert_eq!(
        value(&after, "mmapd_written_bytes_total", &[]),
        Some(1150.0)
    );
    assert_eq!(value(&after, "mmapd_read_bytes_total", &[]), Some(501.0));
    let reason = |r: &'static str| [("reason", r)];
    assert_eq!(
        value(&after, "mmapd_rpc_errors_total", &reason("VALUE_ERROR")),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "mmapd_rpc_errors_total", &reason("QUOTA_EXCEEDED")),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "mmapd_quota_refusals_total",
            &reason("QUOTA_EXCEEDED")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "mmapd_quota_refusals_total", &reason("VALUE_ERROR")),
        None
    );
    assert_eq!(value(&after, "mmapd_sessions", &[]), Some(2.0));
    assert_eq!(value(&after, "mmapd_handles", &[]), Some(2.0));
    assert_eq!(value(&after, "mmapd_mappings", &[]), Some(2.0));
    assert_eq!(
        value(&after, "mmapd_mapped_bytes", &[]),
        Some(4096.0 + 8192.0)
    );
    assert_eq!(value(&after, "mmapd_anonymous_bytes", &[]), Some(4096.0));
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
        "process_start_time_seconds",
    ] {
        assert!(value(&after, name, &[]).unwrap_or(0.0) > 0.0, "{name}");
    }
    assert!(value(&after, "process_cpu_seconds_total", &[]).is_some());

    // Closing the anonymous handle drops its mapping and its bytes.
    c.close(rq::close(&anon)).await.unwrap();
    let closed = scrape(server.metrics).await;
    assert_eq!(value(&closed, "mmapd_handles", &[]), Some(1.0));
    assert_eq!(value(&closed, "mmapd_mappings", &[]), Some(1.0));
    assert_eq!(value(&closed, "mmapd_mapped_bytes", &[]), Some(8192.0));
    assert_eq!(value(&closed, "mmapd_anonymous_bytes", &[]), Some(0.0));
    server.stop().await;
}

/// Statuses tonic makes (here an over-limit request) are counted with the
/// reason the RPC layer gives them, so the metrics layer must sit outside it.
#[tokio::test]
async fn oversized_requests_count_as_message_too_large() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(|config| config.limits.max_message_size = 64 << 10).await;
    let mut c = server.client().await;
    let err = c
        .write(rq::write("any", vec![0u8; 128 << 10]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let samples = scrape(server.metrics).await;
    let too_large = [("reason", "MESSAGE_TOO_LARGE")];
    assert_eq!(
        value(&samples, "mmapd_quota_refusals_total", &too_large),
        Some(1.0)
    );
    assert_eq!(calls(&samples, "Write", "RESOURCE_EXHAUSTED"), Some(1.0));
    server.stop().await;
}

#[tokio::test]
async fn faults_in_mapped_memory_are_counted() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(|_| {}).await;
    let path = server.root.path().join("victim.bin");
    std::fs::write(&path, vec![1u8; 64 << 10]).unwrap();
    let mut c = server.client().await;
    let sid = session(&mut c, 0).await;
    let h = c
        .map(map_req(&sid, "victim.bin", "", Access::Read))
        .await
        .unwrap()
        .into_inner()
        .handle;
    let faults = |s: &Samples| value(s, "mmapd_faults_total", &[]).expect("mmapd_faults_total");
    let before = faults(&scrape(server.metrics).await);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let err = c.read(rq::read(&h, Some(100))).await.unwrap_err();
    assert_eq!(err.code(), Code::DataLoss);
    let after = scrape(server.metrics).await;
    // The whole region is zero-mapped on the first fault: exactly one.
    assert_eq!(faults(&after) - before, 1.0);
    let broken = [("reason", "MAPPING_BROKEN")];
    assert_eq!(value(&after, "mmapd_rpc_errors_total", &broken), Some(1.0));
    server.stop().await;
}

#[tokio::test]
async fn other_paths_are_404_and_serving_stops_at_shutdown() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(|_| {}).await;
    for path in ["/", "/metricsx", "/metrics/x", "/favicon.ico"] {
        let (status, _, _) = get(server.metrics, path).await;
        assert_eq!(status, 404, "{path}");
    }
    let metrics = server.metrics;
    server.stop().await;
    assert!(
        TcpStream::connect(metrics).await.is_err(),
        "the metrics port is closed after shutdown"
    );
}

/// Local ports this process listens on (TCP over IPv4).
fn listening_ports() -> HashSet<u16> {
    let inodes: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_str()?;
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // st 0A is LISTEN.
            (fields[3] == "0A" && inodes.contains(fields[9])).then(|| {
                let port = fields[1].rsplit(':').next().unwrap();
                u16::from_str_radix(port, 16).unwrap()
            })
        })
        .collect()
}

/// `run` binds `metrics_listen` when it is set, and nothing more when not.
#[tokio::test]
async fn run_serves_metrics_only_when_asked() {
    let _serial = SERIAL.lock().await;
    for asked in [None, Some("127.0.0.1:0".parse().unwrap())] {
        let before = listening_ports();
        let server = support::TestServer::start_with(|config| config.metrics_listen = asked).await;
        // Up and serving gRPC before the sockets are compared.
        let (mut c, _) = server.clients().await;
        session(&mut c, 0).await;
        let mut new: Vec<u16> = listening_ports().difference(&before).copied().collect();
        new.retain(|&port| port != server.addr.port());
        match asked {
            None => assert_eq!(new, Vec::<u16>::new(), "no metrics listener"),
            Some(_) => {
                assert_eq!(new.len(), 1, "one metrics listener: {new:?}");
                let samples = scrape(SocketAddr::from(([127, 0, 0, 1], new[0]))).await;
                assert_eq!(value(&samples, "mmapd_sessions", &[]), Some(1.0));
            }
        }
        server.shutdown().await;
    }
}
