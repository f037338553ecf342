//! The `mmapd` binary's security flags as an operator meets them: protected
//! mode refuses a non-loopback listen without access control (and says what
//! to add) unless `--insecure`; a bad access file is a startup error; the
//! access file is reloaded on SIGHUP without dropping connected clients.

use std::{
    io::{BufRead, BufReader, Lines},
    path::Path,
    process::{Child, ChildStderr, Command, Stdio},
    time::Duration,
};

use mmapd::{Client, ConnectOptions};
use mmapd_server::access::token_hash;

fn mmapd(args: &[&str], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmapd"));
    cmd.args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .env_remove("MMAPD_ROOT")
        .env_remove("MMAPD_INSECURE")
        .env_remove("MMAPD_ACCESS_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the binary and returns it, its log lines and its address.
fn start(mut cmd: Command) -> (Child, Lines<BufReader<ChildStderr>>, String) {
    let mut child = cmd.spawn().unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = logs.next().unwrap().unwrap();
    let serving: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|_| panic!("{first}"));
    assert_eq!(serving["fields"]["message"], "serving");
    let addr = serving["fields"]["addr"].as_str().unwrap().to_owned();
    (child, logs, addr)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn protected_mode_refuses_an_open_non_loopback_listen_and_insecure_starts() {
    let cwd = tempfile::tempdir().unwrap();
    let out = mmapd(&["--listen", "0.0.0.0:0"], cwd.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "refused");
    let said = String::from_utf8_lossy(&out.stderr);
    for hint in ["--access-file", "--tls-client-ca", "--insecure"] {
        assert!(said.contains(hint), "the refusal names {hint}: {said}");
    }

    let json = ["--log-format", "json", "--listen", "0.0.0.0:0"];
    let (child, _, addr) = start(mmapd(&[&json[..], &["--insecure"]].concat(), cwd.path()));
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    stop(child);
    let mut by_env = mmapd(&json, cwd.path());
    by_env.env("MMAPD_INSECURE", "1");
    stop(start(by_env).0);

    // An access file is enough to listen anywhere.
    let file = cwd.path().join("access.toml");
    std::fs::write(&file, "").unwrap();
    let with_file = [&json[..], &["--access-file", file.to_str().unwrap()]].concat();
    stop(start(mmapd(&with_file, cwd.path())).0);
}

#[test]
fn a_bad_access_file_is_a_startup_error_that_says_what_is_wrong() {
    let cwd = tempfile::tempdir().unwrap();
    let file = cwd.path().join("access.toml");
    std::fs::write(
        &file,
        "[[identity]]\nname = \"a\"\nrole = \"superuser\"\npaths = [\"\"]\n",
    )
    .unwrap();
    let out = mmapd(&["--access-file", file.to_str().unwrap()], cwd.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("access.toml") && said.contains("superuser"),
        "{said}"
    );

    let missing = cwd.path().join("nope.toml");
    let out = mmapd(&["--access-file", missing.to_str().unwrap()], cwd.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

fn identity(name: &str) -> String {
    format!(
        "[[identity]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\npaths = [\"\"]\n",
        token_hash(&format!("{name}-token"))
    )
}

async fn client(addr: &str, name: &str) -> Client {
    let options = ConnectOptions {
        token: Some(format!("{name}-token")),
        ..ConnectOptions::default()
    };
    Client::connect_with(format!("http://{addr}"), options)
        .await
        .unwrap()
}

/// The binary on loopback with an access file.
fn start_with_access(file: &Path, cwd: &Path) -> (Child, Lines<BufReader<ChildStderr>>, String) {
    let args = ["--log-format", "json", "--listen", "127.0.0.1:0"];
    let file = file.to_str().unwrap();
    start(mmapd(&[&args[..], &["--access-file", file]].concat(), cwd))
}

#[tokio::test]
async fn sighup_reloads_the_access_file_and_keeps_connected_clients() {
    let cwd = tempfile::tempdir().unwrap();
    let file = cwd.path().join("access.toml");
    std::fs::write(&file, identity("alice") + &identity("bob")).unwrap();
    let (child, logs, addr) = start_with_access(&file, cwd.path());
    let alice = client(&addr, "alice").await;
    let session = alice.open_session("kept", None).await.unwrap();
    let carol = client(&addr, "carol").await;
    assert!(carol.server_info().await.is_err(), "carol is not yet known");

    std::fs::write(&file, identity("alice") + &identity("carol")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // The logs are read to the end, so the server never writes to a closed pipe.
    let (seen, reloaded) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in logs.map_while(Result::ok) {
            if line.contains("access file reloaded") {
                let _ = seen.send(());
            }
        }
    });
    let wait = tokio::task::spawn_blocking(move || reloaded.recv_timeout(Duration::from_secs(20)));
    wait.await.unwrap().expect("the reload is logged");

    carol.server_info().await.expect("carol was added");
    let bob = client(&addr, "bob").await;
    let err = bob.server_info().await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unauthenticated), "{err}");
    // Alice's connection and session went on through the reload.
    session.keep_alive().await.unwrap();
    stop(child);
}

#[tokio::test]
async fn a_closed_log_pipe_does_not_fail_the_calls_it_would_log() {
    let cwd = tempfile::tempdir().unwrap();
    let file = cwd.path().join("access.toml");
    std::fs::write(&file, identity("alice")).unwrap();
    let (child, logs, addr) = start_with_access(&file, cwd.path());
    drop(logs);
    // A refusal is logged at warn: the write fails, the refusal still arrives.
    for _ in 0..3 {
        let err = client(&addr, "mallory")
            .await
            .server_info()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(tonic::Code::Unauthenticated), "{err}");
    }
    client(&addr, "alice").await.server_info().await.unwrap();
    stop(child);
}
