//! Prometheus metrics of one server, for `--metrics-listen`. Each server
//! has its own `prometheus_client` registry (no global recorder: tests run
//! many servers in one process). Calls are counted by the tower layer in
//! `layers::metrics`, bytes by the `Mmap` service ([`IoCounters`]), and
//! the rest is read at scrape time by the collectors in `collect`
//! (sessions, handles, mappings, faults) and `process` (`/proc/self`).
//! `http` serves the text at `GET /metrics`.
#![forbid(unsafe_code)]

use std::{collections::HashSet, sync::Arc, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry as Prometheus,
};
use prost::Message;
use tonic::Code;

mod collect;
mod http;
mod process;

pub use http::serve;

/// Bytes the `Mmap` service moved in and out of mappings. Cloning shares
/// the counters; [`Default`] makes ones that no registry exposes, for a
/// service built without metrics.
#[derive(Debug, Clone, Default)]
pub struct IoCounters {
    read: Counter,
    written: Counter,
}

impl IoCounters {
    /// Counts `n` bytes read out of a mapping and sent to a client.
    pub fn read(&self, n: usize) {
        self.read.inc_by(n as u64);
    }

    /// Counts `n` bytes a client wrote into a mapping.
    pub fn written(&self, n: usize) {
        self.written.inc_by(n as u64);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

type Latency = Family<MethodLabel, Histogram, fn() -> Histogram>;

/// Method label of calls to paths no service serves, so a client sending
/// made-up paths cannot grow the label set without bound.
const UNKNOWN_METHOD: &str = "unknown";

/// Latency buckets: 100 µs to about 105 s, each 4 times the last.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

/// The per-call metrics, fed by `layers::metrics`.
#[derive(Debug)]
pub struct RpcMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Latency,
    errors: Family<ReasonLabel, Counter>,
    quota: Family<ReasonLabel, Counter>,
    auth: Family<ReasonLabel, Counter>,
    /// Every `/package.Service/Method` this server serves.
    known: HashSet<String>,
}

impl RpcMetrics {
    /// Records one finished call to `path` with `code`; `reason` is the
    /// ErrorInfo reason of a non-OK status ("" without one).
    pub fn record(&self, path: &str, code: Code, reason: &str, elapsed: Duration) {
        let method = match self.known.contains(path) {
            true => path.to_owned(),
            false => UNKNOWN_METHOD.to_owned(),
        };
        self.calls
            .get_or_create(&CallLabels {
                method: method.clone(),
                code: code_name(code),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabel { method })
            .observe(elapsed.as_secs_f64());
        if code == Code::Ok {
            return;
        }
        let reason = ReasonLabel {
            reason: match reason {
                "" => "NONE".to_owned(),
                r => r.to_owned(),
            },
        };
        self.errors.get_or_create(&reason).inc();
        if code == Code::ResourceExhausted {
            self.quota.get_or_create(&reason).inc();
        }
        // The access layer's refusals; PERMISSION_DENIED also carries path
        // escapes (OS_ERROR), which are no auth failure.
        if code == Code::Unauthenticated || reason.reason == "ACCESS_DENIED" {
            self.auth.get_or_create(&reason).inc();
        }
    }
}

/// Every metric of one server.
#[derive(Debug)]
pub struct Metrics {
    prometheus: Prometheus,
    rpc: Arc<RpcMetrics>,
    io: IoCounters,
}

impl Metrics {
    /// Metrics of a server over `registry`.
    pub fn new(registry: Arc<crate::registry::Registry>) -> Metrics {
        let mut prometheus = Prometheus::default();
        let rpc = RpcMetrics {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            quota: Family::default(),
            auth: Family::default(),
            known: served_methods(),
        };
        let io = IoCounters::default();
        prometheus.register(
            "mmapd_rpcs",
            "Finished RPCs by method (full gRPC path) and gRPC status code",
            rpc.calls.clone(),
        );
        prometheus.register(
            "mmapd_rpc_duration_seconds",
            "RPC latency by method, from request to the end of the response (streams included)",
            rpc.latency.clone(),
        );
        prometheus.register(
            "mmapd_rpc_errors",
            "Non-OK RPCs by google.rpc.ErrorInfo reason",
            rpc.errors.clone(),
        );
        prometheus.register(
            "mmapd_quota_refusals",
            "RESOURCE_EXHAUSTED refusals (quotas, message limits) by reason",
            rpc.quota.clone(),
        );
        prometheus.register(
            "mmapd_auth_failures",
            "Calls refused for missing or bad credentials or missing rights, by reason",
            rpc.auth.clone(),
        );
        prometheus.register(
            "mmapd_read_bytes",
            "Bytes read out of mappings and sent to clients",
            io.read.clone(),
        );
        prometheus.register(
            "mmapd_written_bytes",
            "Bytes clients wrote into mappings",
            io.written.clone(),
        );
        prometheus.register_collector(Box::new(collect::RegistryCollector::new(registry)));
        prometheus.register_collector(Box::new(collect::FaultCollector));
        prometheus.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            prometheus,
            rpc: Arc::new(rpc),
            io,
        }
    }

    /// The per-call metrics, for the RPC layer.
    pub fn rpc(&self) -> Arc<RpcMetrics> {
        Arc::clone(&self.rpc)
    }

    /// The byte counters, for the `Mmap` service.
    pub fn io(&self) -> IoCounters {
        self.io.clone()
    }

    /// Everything in the Prometheus text format. Collectors read the
    /// registry's locks and `/proc`: call it off the async workers.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.prometheus);
        text
    }
}

/// `/package.Service/Method` of every method of every service `run` adds.
fn served_methods() -> HashSet<String> {
    [
        mmapd::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]
    .into_iter()
    .filter_map(|set| prost_types::FileDescriptorSet::decode(set).ok())
    .flat_map(|set| set.file)
    .flat_map(|file| {
        let package = file.package().to_owned();
        file.service.into_iter().flat_map(move |service| {
            let prefix = match package.as_str() {
                "" => service.name().to_owned(),
                p => format!("{p}.{}", service.name()),
            };
            service
                .method
                .into_iter()
                .map(move |m| format!("/{prefix}/{}", m.name()))
        })
    })
    .collect()
}

/// The gRPC name of a code, as in the spec (`NOT_FOUND`).
pub use mmapd::code_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_include_every_service() {
        let known = served_methods();
        for path in [
            "/mmapd.v1.Mmap/Read",
            "/mmapd.v1.Admin/ListSessions",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(known.contains(path), "{path} missing from {known:?}");
        }
        assert!(!known.contains("/mmapd.v1.Mmap/Nope"));
    }
}
