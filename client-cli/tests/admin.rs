//! End-to-end tests of mmapctl's administration commands, global flags,
//! exit codes and help, against a real server.

mod support;

use mmapd::{Access, MapOptions};
use predicates::prelude::*;
use support::{Holder, Server, dead_endpoint, json, json_lines, mmapctl, mmapctl_std, stdout_of};

#[test]
fn info_reports_version_limits_and_health() {
    let server = Server::start();
    let text = server.mmapctl().arg("info").assert().success();
    let out = stdout_of(text.get_output());
    for line in [
        format!("endpoint                {}", server.endpoint),
        "health                  SERVING".to_owned(),
        format!("version                 {}", env!("CARGO_PKG_VERSION")),
        "max message             64 MiB".to_owned(),
        "default session ttl     60s".to_owned(),
        "max sessions            10000".to_owned(),
        "shutdown grace          20s".to_owned(),
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }

    let assert = server
        .mmapctl()
        .args(["-o", "json", "info"])
        .assert()
        .success();
    let info = json(&assert.get_output().stdout);
    assert_eq!(info["endpoint"], server.endpoint.as_str());
    assert_eq!(info["serving"], true);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(info["page_size"].as_u64().unwrap() >= 4096);
    assert!(info["allocation_granularity"].as_u64().unwrap() >= 4096);
    assert_eq!(info["default_chunk_size"], 256 * 1024);
    assert_eq!(info["max_chunk_size"], 4 * 1024 * 1024);
    assert_eq!(info["max_message_size"], 64 * 1024 * 1024);
    assert_eq!(info["default_ttl_seconds"], 60);
    assert_eq!(info["sessions"], 0);
    assert_eq!(info["mappings"], 0);
    let limits = &info["limits"];
    assert_eq!(limits["max_sessions"], 10_000);
    assert_eq!(limits["max_name_length"], 1024);
    assert_eq!(limits["shutdown_grace_seconds"], 20);
    assert!(limits["max_anonymous_bytes"].as_u64().unwrap() > 0);
    assert!(limits["max_mappings"].as_u64().unwrap() >= 16);
}

#[test]
fn listings_follow_every_page() {
    let server = Server::start_with(|c| c.limits.max_page_size = 2);
    let mut holders: Vec<Holder> = (0..5)
        .map(|i| Holder::open(&server.endpoint, &format!("holder-{i}")))
        .collect();
    for (i, holder) in holders.iter_mut().enumerate() {
        holder.map(MapOptions::anonymous(4096).name(format!("m{i}")));
    }
    for (what, rows) in [("sessions", 5), ("mappings", 5)] {
        let assert = server
            .mmapctl()
            .args([what, "-o", "json"])
            .assert()
            .success();
        let listed = json_lines(&assert.get_output().stdout);
        assert_eq!(listed.len(), rows, "{what}: {listed:?}");
    }
}

#[test]
fn sessions_and_mappings_list_the_live_registry() {
    let server = Server::start();
    server
        .mmapctl()
        .arg("sessions")
        .assert()
        .success()
        .stdout("no live sessions\n");
    server
        .mmapctl()
        .args(["mappings", "-o", "json"])
        .assert()
        .success()
        .stdout("");

    server.write("data.bin", &[7; 8192]);
    let mut holder = Holder::open(&server.endpoint, "holder");
    holder.map(
        MapOptions::anonymous(4096)
            .name("scratch")
            .access(Access::Write),
    );
    holder.map(MapOptions::file("data.bin").access(Access::Read));

    let assert = server
        .mmapctl()
        .args(["sessions", "-o", "json"])
        .assert()
        .success();
    let sessions = json_lines(&assert.get_output().stdout);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["client_name"], "holder");
    assert_eq!(sessions[0]["handles"], 2);
    assert_eq!(sessions[0]["ttl_seconds"], 60);
    let id = sessions[0]["session_id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());

    let assert = server.mmapctl().arg("sessions").assert().success();
    let text = stdout_of(assert.get_output());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("SESSION "), "{text}");
    let columns: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(columns, [id.as_str(), "holder", "60s", "2"]);
    // Aligned: each header starts where its column does.
    assert_eq!(lines[0].find("CLIENT"), lines[1].find("holder"));

    let assert = server
        .mmapctl()
        .args(["-o", "json", "mappings"])
        .assert()
        .success();
    let mappings = json_lines(&assert.get_output().stdout);
    assert_eq!(mappings.len(), 2, "{mappings:?}");
    let by_name = |name: &str| {
        mappings
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {mappings:?}"))
    };
    let scratch = by_name("scratch");
    assert_eq!(scratch["path"], "");
    assert_eq!(scratch["length"], 4096);
    assert_eq!(scratch["access"], "write");
    assert_eq!(scratch["handles"], 1);
    let data = by_name("data.bin");
    assert_eq!(data["path"], "data.bin");
    assert_eq!(data["length"], 8192);
    assert_eq!(data["access"], "read");

    let assert = server.mmapctl().arg("mappings").assert().success();
    let text = stdout_of(assert.get_output());
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "PATH", "LENGTH", "ACCESS", "HANDLES"]);
    assert!(
        rows.contains(&vec!["scratch", "(anonymous)", "4096", "write", "1"]),
        "{text}"
    );
    assert!(
        rows.contains(&vec!["data.bin", "data.bin", "8192", "read", "1"]),
        "{text}"
    );

    drop(holder);
    server
        .mmapctl()
        .arg("mappings")
        .assert()
        .success()
        .stdout("no live mappings\n");
}

#[test]
fn the_endpoint_comes_from_the_environment() {
    let server = Server::start();
    mmapctl()
        .env("MMAPCTL_ENDPOINT", &server.endpoint)
        .args(["info", "-o", "json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"serving\":true"));
    // A bare host:port works too.
    let bare = server.endpoint.trim_start_matches("http://").to_owned();
    mmapctl()
        .args(["--endpoint", &bare, "info"])
        .assert()
        .success();
}

#[test]
fn a_refused_request_exits_1_with_the_error_line() {
    let server = Server::start();
    server
        .mmapctl()
        .args(["read", "missing.bin"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "mmapctl: error: [Errno 2] No such file or directory: 'missing.bin' \
             (NOT_FOUND, OS_ERROR)\n",
        );
    server.write("small.bin", b"0123456789");
    server
        .mmapctl()
        .args(["write", "small.bin", "--offset", "8", "--data", "xyz"])
        .assert()
        .code(1)
        .stderr("mmapctl: error: data out of range (OUT_OF_RANGE, VALUE_ERROR)\n");
    server
        .mmapctl()
        .args(["size", "--name", "nobody"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with("mmapctl: error: ").and(predicate::str::ends_with(
                "(NOT_FOUND, MAPPING_NOT_FOUND)\n",
            )),
        );
}

#[test]
fn an_unreachable_server_exits_3_with_a_hint() {
    let endpoint = dead_endpoint();
    for args in [&["info"][..], &["sessions"], &["cat", "x"], &["shell", "x"]] {
        mmapctl()
            .arg("--endpoint")
            .arg(&endpoint)
            .args(args)
            .write_stdin("tell\n")
            .assert()
            .code(3)
            .stdout("")
            .stderr(
                predicate::str::starts_with(format!(
                    "mmapctl: error: cannot connect to {endpoint}: "
                ))
                .and(predicate::str::contains(format!(
                    "mmapctl: hint: is mmapd running at {endpoint}? start it with \
                     `cargo run --release --bin mmapd`"
                ))),
            );
    }
}

#[test]
fn with_json_output_errors_are_json_on_stderr() {
    let server = Server::start();
    let refused = server
        .mmapctl()
        .args(["-o", "json", "read", "missing.bin"])
        .assert()
        .code(1)
        .stdout("");
    let err = json(&refused.get_output().stderr);
    assert_eq!(
        err["error"],
        "[Errno 2] No such file or directory: 'missing.bin' (NOT_FOUND, OS_ERROR)"
    );
    assert_eq!(
        (&err["exit_code"], &err["code"], &err["reason"]),
        (&1.into(), &"NOT_FOUND".into(), &"OS_ERROR".into())
    );
    assert_eq!(err["metadata"]["errno"], "2");
    assert_eq!(err["metadata"]["exception"], "FileNotFoundError");

    let endpoint = dead_endpoint();
    let unreachable = mmapctl()
        .args(["-o", "json", "--endpoint", &endpoint, "mappings"])
        .assert()
        .code(3)
        .stdout("");
    let err = json(&unreachable.get_output().stderr);
    assert_eq!(err["exit_code"], 3);
    let message = err["error"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("cannot connect to {endpoint}")),
        "{err}"
    );
    assert!(
        err["hints"][0]
            .as_str()
            .unwrap()
            .contains("is mmapd running"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2_before_connecting() {
    // The endpoint is dead: a usage error must win over "cannot connect".
    let endpoint = dead_endpoint();
    for args in [
        &["frobnicate"][..],
        &["size"],
        &["move", "1", "2", "3"],
        &["move", "f", "1", "2"],
        &["read", "f", "--hex", "--raw"],
        &["write", "f"],
        &["write", "f", "--data", "a", "--hex", "00"],
        &["write", "f", "--hex", "xyz"],
        &["find", "f", "zz", "--hex"],
        &["madvise", "f", "sometimes"],
        &["--timeout", "soon", "info"],
        &["-o", "yaml", "info"],
        &["shell"],
        &["shell", "f", "--access", "sideways"],
    ] {
        let assert = mmapctl()
            .arg("--endpoint")
            .arg(&endpoint)
            .args(args)
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("cannot connect"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_describes_every_command_and_flag() {
    let assert = mmapctl().arg("--help").assert().success();
    let help = stdout_of(assert.get_output());
    let commands = [
        "info", "sessions", "mappings", "cat", "get", "put", "read", "write", "find", "rfind",
        "size", "len", "resize", "flush", "move", "madvise", "shell", "token", "health",
    ];
    for command in commands {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "`mmapctl --help` does not list {command}:\n{help}"
        );
    }
    for flag in [
        "--endpoint",
        "MMAPCTL_ENDPOINT",
        "--output",
        "--timeout",
        "--session-ttl",
        "--ca-cert",
        "MMAPCTL_CA_CERT",
        "--cert",
        "MMAPCTL_CERT",
        "--key",
        "MMAPCTL_KEY",
        "--token",
        "MMAPCTL_TOKEN",
    ] {
        assert!(help.contains(flag), "no {flag} in:\n{help}");
    }
    assert!(help.contains("Exit status"), "{help}");
    for command in commands {
        let assert = mmapctl().args([command, "-h"]).assert().success();
        let help = stdout_of(assert.get_output());
        assert!(
            help.contains(&format!("Usage: mmapctl {command}")),
            "{command} --help:\n{help}"
        );
        // Every argument and option line carries a description after its
        // name.
        let listed = |l: &&str| {
            let l = l.trim_start();
            l.starts_with("--") || l.starts_with("-o") || l.starts_with('<') || l.starts_with('[')
        };
        for line in help.lines().filter(listed) {
            assert!(
                line.trim().contains("  "),
                "{command}: option without help: {line:?}"
            );
        }
    }
}

#[test]
fn session_ttl_sets_the_lease_of_the_shell_session() {
    let server = Server::start();
    server.write("f.bin", b"abc");
    let mut shell = mmapctl_std(&server.endpoint)
        .args(["--session-ttl", "7s", "shell", "f.bin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn shell");
    // Wait until the shell's session is live.
    let mut sessions = Vec::new();
    for _ in 0..100 {
        let assert = server
            .mmapctl()
            .args(["-o", "json", "sessions"])
            .assert()
            .success();
        sessions = json_lines(&assert.get_output().stdout);
        if sessions.iter().any(|s| s["handles"] == 1) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["client_name"], "mmapctl shell");
    assert_eq!(sessions[0]["ttl_seconds"], 7);
    assert_eq!(sessions[0]["handles"], 1);
    // Closing stdin ends the shell, which closes its session.
    drop(shell.stdin.take());
    assert!(shell.wait().expect("wait").success());
    server
        .mmapctl()
        .arg("sessions")
        .assert()
        .success()
        .stdout("no live sessions\n");
}

#[test]
fn a_call_past_the_timeout_fails_and_names_the_flag() {
    let server = Server::start();
    server
        .mmapctl()
        .args(["--timeout", "5s", "info"])
        .assert()
        .success();
    // A "server" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().collect();
        drop(held);
    });
    let started = std::time::Instant::now();
    mmapctl()
        .args(["--endpoint", &endpoint, "--timeout", "300ms", "info"])
        .assert()
        .code(1)
        .stderr("mmapctl: error: no answer within --timeout 300ms (DEADLINE_EXCEEDED)\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
