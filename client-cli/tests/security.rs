//! End-to-end tests of mmapctl's credentials against a real server: TLS and
//! mTLS through the --ca-cert/--cert/--key flags and their MMAPCTL_* env
//! vars (certificates made in the test with rcgen), the refusals of an
//! https:// endpoint without trust and of TLS files with http://, and
//! `mmapctl token`, whose output must be a usable access-file entry.

mod support;

#[path = "../../tests/support/certs.rs"]
mod certs;

use std::path::PathBuf;

use certs::{Ca, Pem};
use predicates::prelude::*;
use sha2::{Digest, Sha256};
use support::{Server, json, mmapctl, stdout_of};

/// The PEM files of one TLS setup, on disk for the flags.
struct Files {
    dir: tempfile::TempDir,
    ca: PathBuf,
}

impl Files {
    fn new(ca: &Ca) -> Files {
        let dir = tempfile::tempdir().expect("cert dir");
        let ca = certs::write(dir.path(), "ca.pem", &ca.cert);
        Files { dir, ca }
    }

    /// Writes `pem` as `<name>.crt` and `<name>.key`.
    fn pair(&self, name: &str, pem: &Pem) -> (PathBuf, PathBuf) {
        (
            certs::write(self.dir.path(), &format!("{name}.crt"), &pem.cert),
            certs::write(self.dir.path(), &format!("{name}.key"), &pem.key),
        )
    }
}

fn tls_server(server: &Pem, client_ca: Option<&Ca>) -> Server {
    let files = mmapd_server::TlsFiles {
        cert: server.cert.clone().into_bytes(),
        key: server.key.clone().into_bytes(),
        client_ca: client_ca.map(|ca| ca.cert.clone().into_bytes()),
    };
    Server::start_with(|config| config.tls = Some(files))
}

fn https(server: &Server) -> String {
    server.endpoint.replacen("http://", "https://", 1)
}

#[test]
fn tls_through_the_flag_and_the_env_var() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca);
    let server = tls_server(&ca.server(), None);
    server.write("f.bin", b"secret bytes");

    mmapctl()
        .args(["--endpoint", &https(&server), "--ca-cert"])
        .arg(&files.ca)
        .args(["read", "f.bin"])
        .assert()
        .success()
        .stdout("secret bytes");
    mmapctl()
        .env("MMAPCTL_ENDPOINT", https(&server))
        .env("MMAPCTL_CA_CERT", &files.ca)
        .arg("info")
        .assert()
        .success()
        .stdout(predicate::str::contains("SERVING"));
    mmapctl()
        .env("MMAPCTL_ENDPOINT", https(&server))
        .env("MMAPCTL_CA_CERT", &files.ca)
        .args(["health", "mmapd.v1.Mmap"])
        .assert()
        .success()
        .stdout("SERVING\n");
    mmapctl()
        .env("MMAPCTL_ENDPOINT", https(&server))
        .env("MMAPCTL_CA_CERT", &files.ca)
        .args(["-o", "json", "health", "no.such.Service"])
        .assert()
        .failure();
}

#[test]
fn https_without_trust_or_to_plaintext_fails_naming_tls() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca);
    let tls = tls_server(&ca.server(), None);
    // No --ca-cert: the public roots do not know the test CA.
    mmapctl()
        .args(["--endpoint", &https(&tls), "info"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("TLS handshake failed")
                .and(predicate::str::contains("--ca-cert FILE")),
        );
    // https:// to a plaintext server never falls back to plaintext.
    let plain = Server::start();
    mmapctl()
        .args(["--endpoint", &https(&plain), "--ca-cert"])
        .arg(&files.ca)
        .arg("info")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("TLS handshake failed"));
}

#[test]
fn tls_files_with_a_plaintext_endpoint_are_a_usage_error() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca);
    let server = Server::start();
    mmapctl()
        .args(["--endpoint", &server.endpoint, "--ca-cert"])
        .arg(&files.ca)
        .arg("info")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("https://"));
    mmapctl()
        .args(["--endpoint", &https(&server), "--ca-cert"])
        .arg(files.dir.path().join("missing.pem"))
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read --ca-cert"));
}

#[test]
fn mtls_through_flags_and_env_vars() {
    let ca = Ca::new("test CA");
    let client_ca = Ca::new("client CA");
    let files = Files::new(&ca);
    let server = tls_server(&ca.server(), Some(&client_ca));
    server.write("f.bin", b"mtls");
    let (cert, key) = files.pair("alice", &client_ca.client("alice"));

    mmapctl()
        .args(["--endpoint", &https(&server), "--ca-cert"])
        .arg(&files.ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["read", "f.bin"])
        .assert()
        .success()
        .stdout("mtls");
    mmapctl()
        .env("MMAPCTL_CA_CERT", &files.ca)
        .env("MMAPCTL_CERT", &cert)
        .env("MMAPCTL_KEY", &key)
        .args(["--endpoint", &https(&server), "read", "f.bin"])
        .assert()
        .success()
        .stdout("mtls");

    // No client certificate, and one from another CA: refused.
    mmapctl()
        .args(["--endpoint", &https(&server), "--ca-cert"])
        .arg(&files.ca)
        .args(["read", "f.bin"])
        .assert()
        .code(3)
        .stdout("");
    let (cert, key) = files.pair("stranger", &Ca::new("stranger CA").client("alice"));
    mmapctl()
        .env("MMAPCTL_CA_CERT", &files.ca)
        .env("MMAPCTL_CERT", &cert)
        .env("MMAPCTL_KEY", &key)
        .args(["--endpoint", &https(&server), "read", "f.bin"])
        .assert()
        .code(3)
        .stdout("");
    // A certificate without its key is a usage error.
    mmapctl()
        .env("MMAPCTL_CA_CERT", &files.ca)
        .env("MMAPCTL_CERT", &cert)
        .args(["--endpoint", &https(&server), "info"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("private key"));
}

#[test]
fn help_never_shows_the_token() {
    let assert = mmapctl()
        .env("MMAPCTL_TOKEN", "hunter2-secret")
        .env("MMAPCTL_CA_CERT", "/etc/ca.pem")
        .arg("--help")
        .assert()
        .success();
    let help = stdout_of(assert.get_output());
    assert!(help.contains("MMAPCTL_TOKEN"), "{help}");
    assert!(!help.contains("hunter2-secret"), "{help}");
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn token_prints_a_fresh_token_its_hash_and_an_identity_entry() {
    let assert = mmapctl()
        .args(["token", "--name", "alice", "--role", "read"])
        .args(["--path", "alice/", "--path", "shared/"])
        .assert()
        .success();
    let out = stdout_of(assert.get_output());
    let field = |key: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("no {key} in {out}"))
    };
    let token = field("token ");
    let hash = field("token_sha256 ");
    assert_eq!(token.len(), 64, "{out}");
    assert_eq!(hash, sha256_hex(&token));

    // Everything from the first comment on pastes into an access file.
    let entry = &out[out.find('#').expect("entry")..];
    let file: toml::Table = toml::from_str(entry).unwrap_or_else(|e| panic!("{e}:\n{entry}"));
    let identity = &file["identity"].as_array().expect("[[identity]]")[0];
    assert_eq!(identity["name"].as_str(), Some("alice"));
    assert_eq!(identity["token_sha256"].as_str(), Some(hash.as_str()));
    assert_eq!(identity["role"].as_str(), Some("read"));
    let paths: Vec<&str> = identity["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().expect("string"))
        .collect();
    assert_eq!(paths, ["alice/", "shared/"]);

    // JSON output carries the same, and every run makes a new token.
    let again = json(
        &mmapctl()
            .args(["-o", "json", "token"])
            .output()
            .unwrap()
            .stdout,
    );
    let again_token = again["token"].as_str().expect("token");
    assert_ne!(again_token, token);
    assert_eq!(
        again["token_sha256"].as_str(),
        Some(sha256_hex(again_token).as_str())
    );
    assert_eq!(again["paths"], serde_json::json!([""]));
}

#[test]
fn token_hash_hashes_an_argument_or_stdin() {
    let expected = sha256_hex("test");
    mmapctl()
        .args(["token", "--hash", "test"])
        .assert()
        .success()
        .stdout(format!("{expected}\n"));
    // `echo test | mmapctl token --hash`: the newline is not part of it.
    mmapctl()
        .args(["token", "--hash"])
        .write_stdin("test\n")
        .assert()
        .success()
        .stdout(format!("{expected}\n"));
    mmapctl()
        .args(["-o", "json", "token", "--hash", "-"])
        .write_stdin("test")
        .assert()
        .success()
        .stdout(format!("{{\"token_sha256\":\"{expected}\"}}\n"));
    mmapctl()
        .args(["token", "--hash", "-"])
        .write_stdin("")
        .assert()
        .code(2);
}
