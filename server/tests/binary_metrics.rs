//! The `mmapd` binary with `--metrics-listen`: it logs where metrics are
//! served, after the gRPC `serving` line, and answers `GET /metrics`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
};

#[test]
fn metrics_listen_serves_prometheus_text() {
    let root = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmapd"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .arg("--root")
        .arg(root.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut line = || -> serde_json::Value {
        serde_json::from_str(&logs.next().expect("a log line").unwrap()).unwrap()
    };
    assert_eq!(
        line()["fields"]["message"],
        "serving",
        "gRPC is logged first"
    );
    let metrics = line();
    assert_eq!(metrics["fields"]["message"], "serving metrics");
    let addr = metrics["fields"]["addr"].as_str().unwrap().to_owned();

    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\nmmapd_sessions 0\n"), "{response}");
    assert!(response.contains("\nprocess_open_fds "), "{response}");
}
