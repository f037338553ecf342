//! The mmapd server library: configuration and [`run`], which serves the
//! gRPC API on a listener until `shutdown` resolves. The `mmapd` binary and
//! the tests both call `run`.
//!
//! Layout: `registry`, `mapping`, `handle` and `op` are the domain
//! (sessions, mappings, CPython-faithful operations on the shared
//! [`mmapd::op`] vocabulary) and know nothing of gRPC; `error` is the one
//! error type. `service` and `admin` adapt the domain to tonic, `status`
//! maps errors to statuses, `layers` are the tower middleware; `mem` is the
//! only module with `unsafe`.
#![deny(unsafe_code)]

pub mod access;
pub mod admin;
pub mod convert;
pub mod error;
pub mod files;
pub mod handle;
pub mod layers;
pub mod limits;
pub mod mapping;
pub(crate) mod mem;
pub mod metrics;
pub mod net;
pub mod op;
pub mod paths;
pub mod quota;
pub mod registry;
mod scan;
pub mod service;
pub mod slice;
pub mod status;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use mmapd::pb::{admin_server::AdminServer, files_server::FilesServer, mmap_server::MmapServer};
use tonic_health::ServingStatus;

pub use limits::Limits;

/// Server configuration; [`Config::new`] gives the embedded defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory every mapped path is resolved under (created if missing).
    pub root: PathBuf,
    /// Lease TTL for sessions that ask for 0.
    pub default_ttl: Duration,
    /// Every resource limit.
    pub limits: Limits,
    /// How long in-flight calls may run on at shutdown before streams are
    /// cancelled; the final flush comes after it.
    pub shutdown_grace: Duration,
    /// Serve TLS with this certificate; with a client CA, require client
    /// certificates (mTLS). `None` serves plaintext.
    pub tls: Option<TlsFiles>,
    /// The access file (identities, roles, paths); `None` lets every
    /// client do everything, as on loopback by default.
    pub access_file: Option<PathBuf>,
    /// Where to serve Prometheus text at `/metrics`; `None` serves none.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// PEM contents of the server's TLS files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: Vec<u8>,
    /// Its private key.
    pub key: Vec<u8>,
    /// CA(s) client certificates must chain to; `Some` turns on mTLS.
    pub client_ca: Option<Vec<u8>>,
}

impl TlsFiles {
    /// Reads the PEM files, naming the one that failed.
    pub fn read(
        cert: &std::path::Path,
        key: &std::path::Path,
        client_ca: Option<&std::path::Path>,
    ) -> Result<TlsFiles, String> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
        };
        Ok(TlsFiles {
            cert: read(cert)?,
            key: read(key)?,
            client_ca: client_ca.map(read).transpose()?,
        })
    }
}

impl Config {
    /// The defaults for a data root: 60 s leases, 64 MiB messages, limits
    /// derived from the machine, 20 s of shutdown grace.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            default_ttl: Duration::from_secs(60),
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(20),
            tls: None,
            access_file: None,
            metrics_listen: None,
        }
    }
}

/// How often the reaper looks for expired leases.
const REAP_INTERVAL: Duration = Duration::from_millis(250);

/// HTTP/2 receive window of each stream: what a client may send ahead of
/// the server reading it. The connection window is this times the streams
/// a connection may have, so a stream that waits for the unary byte budget
/// (its data left unread) never stalls the other streams of its connection.
/// The bytes HTTP/2 buffers are therefore at most this much per stream.
const STREAM_WINDOW: u32 = 256 << 10;

/// How long the server waits, after the grace, for cut connections to
/// wind down before it flushes anyway.
const AFTER_GRACE: Duration = Duration::from_secs(2);

/// How long a TLS handshake may take; a client that stalls in it holds a
/// connection slot, not the accept loop.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn tls_config(files: &TlsFiles) -> tonic::transport::ServerTlsConfig {
    let mut tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            &files.cert,
            &files.key,
        ))
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    if let Some(ca) = &files.client_ca {
        tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(ca));
    }
    tls
}

/// Reloads the access file on every SIGHUP; a bad file is logged and the
/// old one kept, so a typo never locks everyone out.
fn reload_on_sighup(
    policy: Arc<access::Policy>,
    registry: Arc<registry::Registry>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // What a removed or changed identity was granted (writable
            // handles, paths it no longer covers) ends with its sessions.
            let (policy, registry) = (Arc::clone(&policy), Arc::clone(&registry));
            // Their sessions leave the table as the new file comes in, so
            // no caller sees one without the other; their handles (whose
            // flushes may be slow) close after, outside the policy's lock,
            // which every call's authentication reads.
            let outcome = tokio::task::spawn_blocking(move || {
                let mut taken = None;
                let reloaded =
                    policy.reload(|revoked| taken = Some(registry.take_sessions_of(revoked)))?;
                let closed = taken.map_or(0, |taken| registry.close_taken(taken));
                Ok::<_, String>((reloaded, closed))
            })
            .await;
            let (reloaded, closed) = match outcome {
                Ok(Ok(done)) => done,
                Ok(Err(err)) => {
                    tracing::error!(%err, "access file not reloaded; keeping the old one");
                    continue;
                }
                Err(err) => {
                    tracing::error!(%err, "the access file reload task failed");
                    continue;
                }
            };
            tracing::info!(
                identities = reloaded.identities,
                revoked = ?reloaded.revoked,
                sessions_closed = closed,
                "access file reloaded"
            );
        }
    }))
}

/// Serves until `shutdown` resolves, then: health turns NOT_SERVING, the
/// listener closes, in-flight calls get `config.shutdown_grace`, the
/// connections still open after it are cut, and every mapping is flushed
/// and unmapped. With `config.metrics_listen`, it also binds that address
/// and serves `/metrics` there until `shutdown`.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|err| format!("cannot listen for metrics on {addr}: {err}"))?,
        ),
        None => None,
    };
    serve(listener, metrics_listener, config, shutdown).await
}

/// [`run`], serving `/metrics` on `metrics_listener` (already bound, so a
/// caller can bind port 0 and know the port) instead of binding
/// `config.metrics_listen`.
pub async fn run_with_metrics(
    listener: tokio::net::TcpListener,
    metrics_listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve(listener, Some(metrics_listener), config, shutdown).await
}

async fn serve(
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    mem::setup_process();
    mmapd::codec::set_view_guard(mem::encode_guarded);
    let root = paths::Root::open(&config.root)
        .map_err(|err| format!("cannot open data root {}: {err}", config.root.display()))?;
    let limits = config.limits;
    mem::set_map_area_budget(limits.max_map_areas.into());
    // The fd budget behind `max_mappings` and `max_connections` assumes the
    // hard limit, not the often far lower soft one.
    let nofile = limits::raise_fd_limit();
    tracing::debug!(nofile, "open-file limit");
    let client_certs = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    let policy = Arc::new(access::Policy::new(
        config.access_file.as_deref(),
        client_certs,
    )?);
    let registry = Arc::new(registry::Registry::new(root, config.default_ttl, limits));
    // Always listened for: a SIGHUP to a server without an access file must
    // not kill it (the default action), only be logged as nothing to do.
    let reloader = reload_on_sighup(Arc::clone(&policy), Arc::clone(&registry))?;
    // Collected whether or not they are served: the counting is cheap, and
    // one code path is simpler to trust.
    let metrics = Arc::new(metrics::Metrics::new(Arc::clone(&registry)));

    let reaper = tokio::spawn({
        let registry = Arc::clone(&registry);
        async move {
            let mut tick = tokio::time::interval(REAP_INTERVAL);
            loop {
                tick.tick().await;
                let registry = Arc::clone(&registry);
                // Closing handles flushes mappings: blocking work.
                let _ =
                    tokio::task::spawn_blocking(move || registry.expire(std::time::Instant::now()))
                        .await;
            }
        }
    });

    // Every service gets the same message limits, so an oversized body is
    // MESSAGE_TOO_LARGE whichever service it names.
    let (health, health_service) = tonic_health::server::health_reporter();
    let health_service = health_service
        .max_decoding_message_size(limits.max_message_size)
        .max_encoding_message_size(limits.max_message_size);
    health
        .set_serving::<MmapServer<service::MmapService>>()
        .await;
    health
        .set_serving::<AdminServer<admin::AdminService>>()
        .await;
    health
        .set_serving::<FilesServer<files::FilesService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mmapd::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?
        .max_decoding_message_size(limits.max_message_size)
        .max_encoding_message_size(limits.max_message_size);
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mmapd::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?
        .max_decoding_message_size(limits.max_message_size)
        .max_encoding_message_size(limits.max_message_size);

    let addr = listener.local_addr()?;
    let stop = net::Stop::default();
    let (incoming, connections) = net::incoming(listener, &limits, stop.clone());

    let mmap = MmapServer::new(
        service::MmapService::new(Arc::clone(&registry), limits).with_metrics(metrics.io()),
    )
    .max_decoding_message_size(limits.max_message_size)
    .max_encoding_message_size(limits.max_message_size);
    let admin = AdminServer::new(
        admin::AdminService::new(Arc::clone(&registry), limits, config.shutdown_grace)
            .with_connections(connections),
    )
    .max_decoding_message_size(limits.max_message_size)
    .max_encoding_message_size(limits.max_message_size);

    let files = FilesServer::new(files::FilesService::new(Arc::clone(&registry)))
        .max_decoding_message_size(limits.max_message_size)
        .max_encoding_message_size(limits.max_message_size);

    tracing::info!(%addr, root = %config.root.display(), "serving");
    let metrics_stop = tokio_util::sync::CancellationToken::new();
    let metrics_task = match metrics_listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            tracing::info!(%addr, path = "/metrics", "serving metrics");
            Some(tokio::spawn(metrics::serve(
                listener,
                Arc::clone(&metrics),
                metrics_stop.clone(),
            )))
        }
        None => None,
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls_config(tls))?;
    }
    let served = builder
        .max_concurrent_streams(limits.max_streams_per_connection)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(
            u64::from(STREAM_WINDOW)
                .saturating_mul(u64::from(limits.max_streams_per_connection.max(1)))
                .min(i32::MAX as u64) as u32,
        )
        // 0 turns pings off.
        .http2_keepalive_interval(
            (!limits.keepalive_interval.is_zero()).then_some(limits.keepalive_interval),
        )
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        // Outermost, so it sees the statuses the RPC layer completes.
        .layer(layers::MetricsLayer::new(metrics.rpc()))
        .layer(layers::RpcLayer::new(&limits))
        .layer(layers::AuthLayer::new(policy))
        .trace_fn(|req| tracing::debug_span!("rpc", path = %req.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(mmap)
        .add_service(admin)
        .add_service(files)
        .serve_with_incoming_shutdown(incoming, stop.accepting.clone().cancelled_owned());
    let mut served = std::pin::pin!(served);

    let outcome = tokio::select! {
        // Only a failure ends serving before the signal.
        outcome = &mut served => outcome,
        () = shutdown => {
            metrics_stop.cancel();
            for service in [
                "",
                <MmapServer<service::MmapService> as tonic::server::NamedService>::NAME,
                <AdminServer<admin::AdminService> as tonic::server::NamedService>::NAME,
                <FilesServer<files::FilesService> as tonic::server::NamedService>::NAME,
            ] {
                health.set_service_status(service, ServingStatus::NotServing).await;
            }
            stop.accepting.cancel();
            tracing::info!(grace = ?config.shutdown_grace, "draining");
            match tokio::time::timeout(config.shutdown_grace, &mut served).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::warn!("shutdown grace over; cutting the remaining connections");
                    stop.connections.cancel();
                    tokio::time::timeout(AFTER_GRACE, &mut served)
                        .await
                        .unwrap_or(Ok(()))
                }
            }
        }
    };

    reaper.abort();
    reloader.abort();
    metrics_stop.cancel();
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    let flushing = Arc::clone(&registry);
    tokio::task::spawn_blocking(move || flushing.shutdown()).await?;
    tracing::info!("stopped; every mapping flushed");
    outcome.map_err(Into::into)
}
