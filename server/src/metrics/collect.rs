//! Gauges read at scrape time: what the registry holds now (sessions,
//! handles, mappings, mapped and anonymous bytes), and the faults the
//! SIGBUS guard has caught.
#![forbid(unsafe_code)]

use std::sync::Arc;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

use crate::registry::Registry;

/// Writes one unlabelled gauge.
pub(super) fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// Writes one unlabelled counter (the name gets `_total`).
pub(super) fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeCounterValue,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

/// The registry's live objects.
#[derive(Debug)]
pub(super) struct RegistryCollector {
    registry: Arc<Registry>,
}

impl RegistryCollector {
    pub(super) fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl Collector for RegistryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let r = &self.registry;
        gauge(
            &mut encoder,
            "mmapd_sessions",
            "Live sessions.",
            r.session_count(),
        )?;
        gauge(
            &mut encoder,
            "mmapd_handles",
            "Open handles.",
            r.handle_count(),
        )?;
        gauge(
            &mut encoder,
            "mmapd_mappings",
            "Live mappings (shared ones and private copies).",
            r.mapping_count(),
        )?;
        gauge(
            &mut encoder,
            "mmapd_mapped_bytes",
            "Bytes mapped by live mappings, each mapping counted once.",
            r.mapped_bytes(),
        )?;
        gauge(
            &mut encoder,
            "mmapd_anonymous_bytes",
            "Bytes of anonymous regions and private copies.",
            r.anonymous_bytes(),
        )
    }
}

/// SIGBUS faults caught in mapped memory. The handler is process-wide, so
/// the count is too: servers sharing a process (tests) share it.
#[derive(Debug)]
pub(super) struct FaultCollector;

impl Collector for FaultCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        counter(
            &mut encoder,
            "mmapd_faults",
            "Faults (SIGBUS) caught in mapped memory, process-wide; each breaks its mapping.",
            crate::mem::faults_caught(),
        )
    }
}
