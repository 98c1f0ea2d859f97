//! Prometheus metrics (text format, via prometheus-client), all prefixed `gather_agent_`.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::archive::GathersMetadata;
use crate::errors::RefusalReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GathererLabel {
    gatherer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    gatherer: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// Every metric the agent exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    periods: Counter,
    duration: Family<GathererLabel, Histogram>,
    errors: Family<ErrorLabels, Counter>,
    fuel: Family<GathererLabel, Counter>,
    activations: Counter,
    refusals: Family<ReasonLabel, Counter>,
    polls: Family<ResultLabel, Counter>,
    archive_bytes: Counter,
    last_archive_bytes: Gauge,
    uploads: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers all metrics.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("gather_agent");
        let periods = Counter::default();
        r.register("periods", "Gather periods run", periods.clone());
        let duration = Family::<GathererLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 18)));
        r.register("gatherer_duration_seconds", "Wall time of each gatherer run", duration.clone());
        let errors = Family::<ErrorLabels, Counter>::default();
        r.register("gatherer_errors", "Gatherer runs that failed, by kind (trap, deadline, fuel, memory, panic, exit, policy, load)", errors.clone());
        let fuel = Family::<GathererLabel, Counter>::default();
        r.register("gatherer_fuel", "Fuel (about one unit per wasm instruction) used by each gatherer", fuel.clone());
        let activations = Counter::default();
        r.register("module_set_activations", "Module sets activated at the start of a period", activations.clone());
        let refusals = Family::<ReasonLabel, Counter>::default();
        r.register("update_refusals", "Updates refused, by reason", refusals.clone());
        let polls = Family::<ResultLabel, Counter>::default();
        r.register("index_polls", "Index polls by result (200, 304, error)", polls.clone());
        let archive_bytes = Counter::default();
        r.register("archive_bytes", "Bytes of archives written", archive_bytes.clone());
        let last_archive_bytes = Gauge::default();
        r.register("last_archive_bytes", "Size of the last archive written", last_archive_bytes.clone());
        let uploads = Family::<ResultLabel, Counter>::default();
        r.register("uploads", "Archive uploads by result (ok, error, unauthorized)", uploads.clone());
        Metrics {
            registry: Mutex::new(r),
            periods,
            duration,
            errors,
            fuel,
            activations,
            refusals,
            polls,
            archive_bytes,
            last_archive_bytes,
            uploads,
        }
    }

    /// Records a finished period from its metadata and archive size.
    pub fn period(&self, meta: &GathersMetadata, archive_bytes: u64) {
        self.periods.inc();
        self.archive_bytes.inc_by(archive_bytes);
        self.last_archive_bytes.set(archive_bytes as i64);
        for r in &meta.status_reports {
            let g = GathererLabel { gatherer: r.name.clone() };
            self.duration.get_or_create(&g).observe(r.duration_in_ms as f64 / 1000.0);
            self.fuel.get_or_create(&g).inc_by(r.fuel_used);
            if let Some(kind) = &r.error_kind {
                self.errors.get_or_create(&ErrorLabels { gatherer: r.name.clone(), kind: kind.clone() }).inc();
            }
        }
    }

    /// A module set became active.
    pub fn activation(&self) {
        self.activations.inc();
    }

    /// An update was refused, counted under its class (`sha256-mismatch`, `policy`...).
    pub fn refusal(&self, reason: RefusalReason) {
        self.refusals.get_or_create(&ReasonLabel { reason: reason.as_str().to_owned() }).inc();
    }

    /// An index poll ended with `result` (`200`, `304`, `error`).
    pub fn poll(&self, result: &str) {
        self.polls.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
    }

    /// An upload attempt ended with `result`.
    pub fn upload(&self, result: &str) {
        self.uploads.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock().expect("registry lock"));
        out
    }
}
