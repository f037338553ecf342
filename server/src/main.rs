//! The `mmapd` binary: parses flags, sets up logging, binds, and calls
//! [`mmapd_server::run`] until SIGINT or SIGTERM.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

/// Serve memory-mapped files over gRPC.
#[derive(Debug, Parser)]
#[command(name = "mmapd", version, about)]
struct Args {
    /// Data root: every mapped path is relative to it (created if missing).
    #[arg(long, env = "MMAPD_ROOT", default_value = "./mmapd-data")]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "MMAPD_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Default session lease, in seconds, for clients that ask for 0.
    #[arg(long, env = "MMAPD_SESSION_TTL", default_value_t = 60)]
    session_ttl: u64,
    /// Log format.
    #[arg(long, env = "MMAPD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    let mut config = mmapd_server::Config::new(args.root);
    config.default_ttl = Duration::from_secs(args.session_ttl.max(1));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    mmapd_server::run(listener, config, shutdown_signal()).await
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested; draining");
}
