//! Test harness for mmapctl's end-to-end tests: a real mmapd server
//! (`mmapd_server::run`) on 127.0.0.1:0 over a temporary data root, served
//! from a background thread, and the real `mmapctl` binary pointed at it.
#![allow(dead_code)] // each test binary uses a different subset

use std::{net::SocketAddr, path::PathBuf, thread::JoinHandle};

use assert_cmd::Command;
use tokio::sync::oneshot;

/// A running server; dropping it shuts the server down.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The data root.
    pub root: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server with the default configuration.
    pub fn start() -> Server {
        Self::start_with(|_| {})
    }

    /// Starts a server after `tweak` adjusts the configuration.
    pub fn start_with(tweak: impl FnOnce(&mut mmapd_server::Config)) -> Server {
        let root = tempfile::tempdir().expect("temp root");
        let mut config = mmapd_server::Config::new(root.path());
        tweak(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).unwrap();
                mmapd_server::run(listener, config, async {
                    let _ = stopped.await;
                })
                .await
                .expect("server run");
            });
        });
        let addr = addr_rx.recv().expect("server address");
        Server {
            endpoint: format!("http://{addr}"),
            root,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `mmapctl --endpoint <this server>`, with the environment cleared of
    /// settings that could redirect it.
    pub fn mmapctl(&self) -> Command {
        let mut cmd = mmapctl();
        cmd.arg("--endpoint").arg(&self.endpoint);
        cmd
    }

    /// A path inside the data root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Writes a file into the data root.
    pub fn write(&self, rel: &str, data: &[u8]) {
        std::fs::write(self.path(rel), data).expect("write data file");
    }

    /// Reads a file from the data root.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).expect("read data file")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Environment variables that carry credentials into mmapctl.
pub const CREDENTIALS: [&str; 4] = [
    "MMAPCTL_CA_CERT",
    "MMAPCTL_CERT",
    "MMAPCTL_KEY",
    "MMAPCTL_TOKEN",
];

/// The real binary, with no endpoint or credentials from the environment
/// and no history.
pub fn mmapctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmapctl"));
    for var in CREDENTIALS {
        cmd.env_remove(var);
    }
    cmd.env_remove("MMAPCTL_ENDPOINT")
        .env("MMAPCTL_HISTORY", "/dev/null")
        .env("NO_COLOR", "1");
    cmd
}

/// The std command for the real binary, for tests that need to hold its
/// pipes (assert_cmd waits for the process).
pub fn mmapctl_std(endpoint: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mmapctl"));
    for var in CREDENTIALS {
        cmd.env_remove(var);
    }
    cmd.env_remove("MMAPCTL_ENDPOINT")
        .env("MMAPCTL_HISTORY", "/dev/null")
        .arg("--endpoint")
        .arg(endpoint);
    cmd
}

/// An endpoint nothing listens on: a port bound and released.
pub fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// Parses each stdout line as one JSON object.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .expect("UTF-8 stdout")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

/// Parses stdout as exactly one JSON object.
pub fn json(stdout: &[u8]) -> serde_json::Value {
    let mut values = json_lines(stdout);
    assert_eq!(values.len(), 1, "expected one JSON object, got {values:?}");
    values.remove(0)
}

/// Deterministic pseudo-random bytes (xorshift), no dependency needed.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// stdout of a successful run, as text.
pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

/// Holds an mmapd session (and its runtime) from the test process itself,
/// so one-shot commands can reach a live anonymous region by name.
pub struct Holder {
    pub runtime: tokio::runtime::Runtime,
    pub session: Option<mmapd::Session>,
    pub maps: Vec<mmapd::RemoteMmap>,
}

impl Holder {
    /// Opens a session named `client_name` on `endpoint`.
    pub fn open(endpoint: &str, client_name: &str) -> Holder {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let session = runtime.block_on(async {
            let client = mmapd::Client::connect(endpoint).await.expect("connect");
            client
                .open_session(client_name, None)
                .await
                .expect("session")
        });
        Holder {
            runtime,
            session: Some(session),
            maps: Vec::new(),
        }
    }

    /// Maps `options` and keeps the handle; returns its index.
    pub fn map(&mut self, options: mmapd::MapOptions) -> usize {
        let session = self.session.as_ref().expect("open session");
        let map = self.runtime.block_on(session.map(options)).expect("map");
        self.maps.push(map);
        self.maps.len() - 1
    }

    /// Reads the whole mapping `i` through the held handle.
    pub fn slice(&mut self, i: usize) -> Vec<u8> {
        let map = &mut self.maps[i];
        self.runtime
            .block_on(map.get_slice(None, None, None))
            .expect("get_slice")
            .to_vec()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let session = self.session.take();
        let maps = std::mem::take(&mut self.maps);
        self.runtime.block_on(async move {
            for mut map in maps {
                let _ = map.close().await;
            }
            if let Some(session) = session {
                let _ = session.close().await;
            }
        });
    }
}
