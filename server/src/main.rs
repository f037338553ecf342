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
    /// Default session lease, in seconds, for clients that ask for 0. Zero
    /// is refused: a lease that ends at once would drop every session.
    #[arg(long, env = "MMAPD_SESSION_TTL", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    session_ttl: u64,
    /// Log format.
    #[arg(long, env = "MMAPD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds in-flight calls get at shutdown before streams are cancelled
    /// (every mapping is flushed after it).
    #[arg(long, env = "MMAPD_SHUTDOWN_GRACE", default_value_t = 20)]
    shutdown_grace: u64,
    // Measured on a 2-core VM with the client on it too (README,
    // Performance): one worker served 64 B calls 20-30 % slower and streams
    // no faster, so the default stays tokio's.
    /// Runtime worker threads (default: one per core).
    #[arg(long, env = "MMAPD_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: Option<u16>,
    #[command(flatten)]
    security: SecurityArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Who may connect and what they may do.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Security")]
struct SecurityArgs {
    /// TOML file of identities, tokens, roles and paths; reloaded on SIGHUP.
    #[arg(long, env = "MMAPD_ACCESS_FILE")]
    access_file: Option<PathBuf>,
    /// PEM certificate chain to serve TLS with (needs --tls-key).
    #[arg(long, env = "MMAPD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MMAPD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates signed by it (mTLS); a
    /// certificate's subject CN names its identity.
    #[arg(long, env = "MMAPD_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Allow a non-loopback --listen with no access file and no client
    /// certificates: anyone who can connect may do everything.
    #[arg(long, env = "MMAPD_INSECURE", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    insecure: bool,
    /// Address to serve Prometheus text at /metrics on (plain HTTP; off by
    /// default).
    #[arg(long, env = "MMAPD_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

impl SecurityArgs {
    /// Protected mode, as Redis has it: a server anyone on the network can
    /// reach must know who its clients are, unless told otherwise.
    fn check_exposure(&self, listen: SocketAddr) -> Result<(), String> {
        let authenticated = self.access_file.is_some() || self.tls_client_ca.is_some();
        if listen.ip().is_loopback() || authenticated || self.insecure {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {listen} with no access control: anyone who can reach it \
             could read and write every file under the root. Add --access-file FILE \
             (bearer tokens), or --tls-cert, --tls-key and --tls-client-ca (client \
             certificates), or listen on 127.0.0.1; --insecure (MMAPD_INSECURE=1) starts \
             anyway"
        ))
    }

    fn apply(&self, config: &mut mmapd_server::Config) -> Result<(), String> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(mmapd_server::TlsFiles::read(
                cert,
                key,
                self.tls_client_ca.as_deref(),
            )?);
        }
        config.access_file = self.access_file.clone();
        config.metrics_listen = self.metrics_listen;
        Ok(())
    }
}

/// Overrides of the limits; each default is derived from the machine (see
/// the README's Limits section). Sizes take K, M, G, T suffixes (powers of
/// 1024).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Limits")]
struct LimitArgs {
    /// Largest gRPC message in either direction [default: 64M].
    #[arg(long, env = "MMAPD_MAX_MESSAGE_SIZE", value_parser = size)]
    max_message_size: Option<u64>,
    /// Largest ReadStream chunk [default: 4M].
    #[arg(long, env = "MMAPD_MAX_CHUNK_SIZE", value_parser = size)]
    max_chunk_size: Option<u64>,
    /// Total bytes of anonymous regions and private copies [default: half
    /// the memory cgroup limit, else of RAM].
    #[arg(long, env = "MMAPD_MAX_ANONYMOUS_BYTES", value_parser = size)]
    max_anonymous_bytes: Option<u64>,
    /// Largest length of one mapping [default: 1T].
    #[arg(long, env = "MMAPD_MAX_MAPPING_LENGTH", value_parser = size)]
    max_mapping_length: Option<u64>,
    /// Live sessions [default: 10000].
    #[arg(long, env = "MMAPD_MAX_SESSIONS")]
    max_sessions: Option<u32>,
    /// Open handles per session [default: 1024].
    #[arg(long, env = "MMAPD_MAX_HANDLES_PER_SESSION")]
    max_handles_per_session: Option<u32>,
    /// Live mappings, each one file descriptor [default: the fd limit less
    /// connections and a reserve].
    #[arg(long, env = "MMAPD_MAX_MAPPINGS")]
    max_mappings: Option<u32>,
    /// Memory areas mappings may use [default: half of vm.max_map_count].
    #[arg(long, env = "MMAPD_MAX_MAP_AREAS")]
    max_map_areas: Option<u32>,
    /// Longest mapping name in bytes [default: 1024].
    #[arg(long, env = "MMAPD_MAX_NAME_LENGTH")]
    max_name_length: Option<u32>,
    /// Longest client name in bytes [default: 1024].
    #[arg(long, env = "MMAPD_MAX_CLIENT_NAME_LENGTH")]
    max_client_name_length: Option<u32>,
    /// Longest path in bytes [default: 4096].
    #[arg(long, env = "MMAPD_MAX_PATH_LENGTH")]
    max_path_length: Option<u32>,
    /// Bytes of unary requests in flight; more waits [default: an eighth of
    /// memory, at least 128M].
    #[arg(long, env = "MMAPD_MAX_INFLIGHT_BYTES", value_parser = size)]
    max_inflight_bytes: Option<u64>,
    /// Concurrent RPCs per connection [default: 128].
    #[arg(long, env = "MMAPD_MAX_STREAMS_PER_CONNECTION")]
    max_streams_per_connection: Option<u32>,
    /// Bytes ReadStreams may hold buffered; more waits [default: an eighth
    /// of memory, at least 16M].
    #[arg(long, env = "MMAPD_MAX_STREAM_BUFFER_BYTES", value_parser = size)]
    max_stream_buffer_bytes: Option<u64>,
    /// Open connections [default: a quarter of the fd limit, at most 10000].
    #[arg(long, env = "MMAPD_MAX_CONNECTIONS")]
    max_connections: Option<u32>,
    /// Seconds a connection may stay without an RPC [default: 300].
    #[arg(long, env = "MMAPD_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Seconds between HTTP/2 keepalive pings [default: 30].
    #[arg(long, env = "MMAPD_KEEPALIVE_INTERVAL")]
    keepalive_interval: Option<u64>,
    /// Seconds a keepalive ping may go unanswered [default: 10].
    #[arg(long, env = "MMAPD_KEEPALIVE_TIMEOUT")]
    keepalive_timeout: Option<u64>,
    /// Largest page of ListSessions, ListMappings and Files.List [default: 1000].
    #[arg(long, env = "MMAPD_MAX_PAGE_SIZE")]
    max_page_size: Option<u32>,
    /// Deepest folder a recursive List or Remove walks into, 1 to 1024
    /// (each level is a stack frame and an open folder) [default: 256].
    #[arg(long, env = "MMAPD_MAX_TREE_DEPTH", value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_tree_depth: Option<u32>,
}

impl LimitArgs {
    /// The derived defaults with every given flag applied.
    fn apply(&self, l: &mut mmapd_server::Limits) {
        fn set<T: Copy>(slot: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        let usize_of = |v: Option<u64>| v.map(|v| usize::try_from(v).unwrap_or(usize::MAX));
        let secs = |v: Option<u64>| v.map(Duration::from_secs);
        set(&mut l.max_message_size, usize_of(self.max_message_size));
        set(&mut l.max_chunk, usize_of(self.max_chunk_size));
        l.default_chunk = l.default_chunk.min(l.max_chunk);
        set(&mut l.max_anonymous_bytes, self.max_anonymous_bytes);
        set(&mut l.max_mapping_length, self.max_mapping_length);
        set(&mut l.max_sessions, self.max_sessions);
        set(&mut l.max_handles_per_session, self.max_handles_per_session);
        set(&mut l.max_mappings, self.max_mappings);
        set(&mut l.max_map_areas, self.max_map_areas);
        set(&mut l.max_name_length, self.max_name_length);
        set(&mut l.max_client_name_length, self.max_client_name_length);
        set(&mut l.max_path_length, self.max_path_length);
        set(&mut l.max_inflight_bytes, self.max_inflight_bytes);
        set(
            &mut l.max_streams_per_connection,
            self.max_streams_per_connection,
        );
        set(&mut l.max_stream_buffer_bytes, self.max_stream_buffer_bytes);
        set(&mut l.max_connections, self.max_connections);
        set(&mut l.idle_timeout, secs(self.idle_timeout));
        set(&mut l.keepalive_interval, secs(self.keepalive_interval));
        set(&mut l.keepalive_timeout, secs(self.keepalive_timeout));
        set(&mut l.max_page_size, self.max_page_size);
        set(&mut l.max_tree_depth, self.max_tree_depth);
    }
}

/// A byte count with an optional binary suffix: 512, 64K, 1M, 2G, 1T.
fn size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (a number, optionally K, M, G or T)"))?;
    let shift = match suffix
        .trim_end_matches(['i', 'B', 'b'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?}: unknown size suffix {suffix:?}")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.worker_threads {
        runtime.worker_threads(usize::from(workers));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mmapd: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // Plain text, not Debug: the message is for the operator.
            eprintln!("mmapd: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A failed log write is reported with eprint!, which panics when
        // stderr itself is the broken pipe: that would fail the call being
        // logged. A log lost to a closed pipe is lost quietly instead.
        .log_internal_errors(false);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    let mut config = mmapd_server::Config::new(&args.root);
    config.default_ttl = Duration::from_secs(args.session_ttl);
    config.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    args.limits.apply(&mut config.limits);
    args.security.check_exposure(args.listen)?;
    args.security.apply(&mut config)?;
    // SIGHUP's default action ends the process: take it over before the
    // port is bound, so a reload sent as soon as the port answers is safe
    // (tokio keeps the handler for the life of the process; run() reads it).
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|err| format!("cannot handle SIGHUP: {err}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.listen))?;
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
