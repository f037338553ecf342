//! The mmapd server library: configuration and [`run`], which serves the
//! gRPC API on a listener until `shutdown` resolves. The `mmapd` binary and
//! the tests both call `run`.
//!
//! Layout: `registry`, `mapping` and `handle` are the domain (sessions,
//! mappings, CPython-faithful operations) and know nothing of gRPC;
//! `service` and `admin` adapt them to tonic; `mem` is the only module with
//! `unsafe`; `error` is the one error type and its status mapping.
#![deny(unsafe_code)]

pub mod admin;
pub mod convert;
pub mod error;
pub mod handle;
pub mod limits;
pub mod mapping;
pub(crate) mod mem;
pub mod paths;
pub mod quota;
pub mod registry;
mod scan;
pub mod service;
pub mod slice;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use mmapd::pb::{admin_server::AdminServer, mmap_server::MmapServer};
use tonic::transport::server::TcpIncoming;

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
        }
    }
}

/// How often the reaper looks for expired leases.
const REAP_INTERVAL: Duration = Duration::from_millis(250);

/// Serves until `shutdown` resolves, then stops accepting, drains in-flight
/// requests, and flushes and unmaps every mapping.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    mem::setup_process();
    let root = paths::Root::open(&config.root)
        .map_err(|err| format!("cannot open data root {}: {err}", config.root.display()))?;
    let limits = config.limits;
    mem::set_map_area_budget(limits.max_map_areas.into());
    // The fd budget behind `max_mappings` and `max_connections` assumes the
    // hard limit, not the often far lower soft one.
    let nofile = limits::raise_fd_limit();
    tracing::debug!(nofile, "open-file limit");
    let registry = Arc::new(registry::Registry::new(root, config.default_ttl, limits));

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

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<MmapServer<service::MmapService>>()
        .await;
    health
        .set_serving::<AdminServer<admin::AdminService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mmapd::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mmapd::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mmap = MmapServer::new(service::MmapService::new(Arc::clone(&registry), limits))
        .max_decoding_message_size(limits.max_message_size)
        .max_encoding_message_size(limits.max_message_size);
    let admin = AdminServer::new(admin::AdminService::new(
        Arc::clone(&registry),
        limits,
        config.shutdown_grace,
    ))
    .max_decoding_message_size(limits.max_message_size)
    .max_encoding_message_size(limits.max_message_size);

    // Without TCP_NODELAY, Nagle and delayed ACKs stall small replies by
    // ~40 ms: fatal for a service of many small calls.
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tracing::info!(%addr, root = %config.root.display(), "serving");
    let served = tonic::transport::Server::builder()
        .trace_fn(|req| tracing::debug_span!("rpc", path = %req.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(mmap)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;

    reaper.abort();
    let flushing = Arc::clone(&registry);
    tokio::task::spawn_blocking(move || flushing.shutdown()).await?;
    tracing::info!("stopped; every mapping flushed");
    served.map_err(Into::into)
}
