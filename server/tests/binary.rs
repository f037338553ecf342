//! Tests of the `mmapd` binary itself: the embedded defaults (a data root
//! created in the working directory), JSON logs, and a SIGTERM that drains,
//! flushes and exits 0; the worker-thread setting.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use mmapd::{Client, MapOptions};

#[tokio::test]
async fn serves_the_default_root_and_exits_zero_on_sigterm() {
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmapd"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        // One worker is enough to serve (and to drain at SIGTERM).
        .env("MMAPD_WORKER_THREADS", "1")
        .current_dir(cwd.path())
        .env("RUST_LOG", "info")
        .env_remove("MMAPD_ROOT")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    // The first JSON line says where it listens.
    let serving: serde_json::Value = serde_json::from_str(&logs.next().unwrap().unwrap()).unwrap();
    assert_eq!(serving["fields"]["message"], "serving");
    let addr = serving["fields"]["addr"].as_str().unwrap().to_owned();
    assert!(
        cwd.path().join("mmapd-data").is_dir(),
        "the default root ./mmapd-data is created"
    );

    let client = Client::connect(format!("http://{addr}")).await.unwrap();
    let session = client.open_session("binary-test", None).await.unwrap();
    let mut map = session
        .map(MapOptions::file("f").length(4096).create(true))
        .await
        .unwrap();
    map.write(b"before sigterm").await.unwrap();

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0), "SIGTERM exits 0");
    let rest: Vec<String> = logs.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("every mapping flushed")),
        "{rest:?}"
    );
    let on_disk = std::fs::read(cwd.path().join("mmapd-data/f")).unwrap();
    assert_eq!(&on_disk[..14], b"before sigterm");
}

#[test]
fn zero_worker_threads_or_session_ttl_is_refused_before_anything_starts() {
    for (flag, env) in [
        ("--worker-threads", "MMAPD_WORKER_THREADS"),
        ("--session-ttl", "MMAPD_SESSION_TTL"),
    ] {
        let cwd = tempfile::tempdir().unwrap();
        let by_flag = Command::new(env!("CARGO_BIN_EXE_mmapd"))
            .args(["--listen", "127.0.0.1:0", flag, "0"])
            .current_dir(cwd.path())
            .env_remove("MMAPD_ROOT")
            .output()
            .unwrap();
        let by_env = Command::new(env!("CARGO_BIN_EXE_mmapd"))
            .args(["--listen", "127.0.0.1:0"])
            .env(env, "0")
            .current_dir(cwd.path())
            .env_remove("MMAPD_ROOT")
            .output()
            .unwrap();
        for out in [by_flag, by_env] {
            assert_eq!(out.status.code(), Some(2), "{flag}: a usage error");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(flag), "{stderr}");
        }
        assert!(
            !cwd.path().join("mmapd-data").exists(),
            "{flag}: nothing was set up"
        );
    }
}
