//! Prometheus metrics, all prefixed `gather_agent_`, held in one prometheus-client registry
//! and exposed in two formats: OpenMetrics 1.0 (what prometheus-client encodes) and the
//! Prometheus text format 0.0.4 (derived from it, [`Metrics::encode_prometheus`]), chosen by
//! the scraper's `Accept` header (`endpoints.rs`).
//!
//! Families with labels are filled with zero-valued series for every label value known in
//! advance (every refusal class, poll and upload result, and every error kind of every
//! gatherer of the active set), so a dashboard or an alert on `rate(...)` works before the
//! first event.

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
    reloads: Family<ResultLabel, Counter>,
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
        let reloads = Family::<ResultLabel, Counter>::default();
        r.register("config_reloads", "Configuration reloads by result (applied, refused)", reloads.clone());
        for reason in RefusalReason::ALL {
            drop(refusals.get_or_create(&ReasonLabel { reason: reason.as_str().to_owned() }));
        }
        for (family, results) in [(&polls, &["200", "304", "error"][..]), (&uploads, &["ok", "error", "unauthorized"]), (&reloads, &["applied", "refused"])] {
            for r in results {
                drop(family.get_or_create(&ResultLabel { result: (*r).to_owned() }));
            }
        }
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
            reloads,
        }
    }

    /// Creates the zero-valued series of every gatherer of a newly active set: its duration,
    /// fuel and one error series per error kind.
    pub fn known_gatherers<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            let g = GathererLabel { gatherer: name.to_owned() };
            drop(self.duration.get_or_create(&g));
            drop(self.fuel.get_or_create(&g));
            for kind in crate::errors::ErrorKind::ALL {
                drop(self.errors.get_or_create(&ErrorLabels { gatherer: name.to_owned(), kind: kind.as_str().to_owned() }));
            }
        }
    }

    /// A configuration reload ended with `result` (`applied`, `refused`).
    pub fn config_reload(&self, result: &str) {
        self.reloads.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
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

    /// The OpenMetrics 1.0 exposition (`application/openmetrics-text; version=1.0.0`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock().expect("registry lock"));
        out
    }

    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): what Prometheus and
    /// `promtool check metrics` read by default. See [`openmetrics_to_prometheus`].
    pub fn encode_prometheus(&self) -> String {
        openmetrics_to_prometheus(&self.encode())
    }
}

/// Rewrites an OpenMetrics exposition (as prometheus-client writes it) in the Prometheus text
/// format 0.0.4. The two differ in what matters to a 0.0.4 parser:
/// - a counter family is named *with* its `_total` suffix in `# HELP` and `# TYPE` (in
///   OpenMetrics the family name has no suffix and only the samples carry it, which a 0.0.4
///   parser reads as samples of an undeclared family, without HELP or TYPE);
/// - `# UNIT` and `# EOF` do not exist, nor do `_created` samples; `unknown` is `untyped`.
///
/// Sample lines, label escaping and histogram series are the same in both.
pub fn openmetrics_to_prometheus(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut counters = std::collections::HashSet::new();
    // Pass 1: which families are counters (TYPE follows HELP, so HELP needs to know ahead).
    for line in om.lines() {
        if let Some((name, "counter")) = line.strip_prefix("# TYPE ").and_then(|rest| rest.split_once(' ')) {
            counters.insert(name.to_owned());
        }
    }
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") || line.is_empty() {
            continue;
        }
        for (prefix, is_type) in [("# HELP ", false), ("# TYPE ", true)] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) { format!("{name}_total") } else { name.to_owned() };
                let tail = if is_type && tail == "unknown" { "untyped" } else { tail };
                out.push_str(&format!("{prefix}{name} {tail}\n"));
            }
        }
        if line.starts_with('#') {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap_or("");
        if name.strip_suffix("_created").is_some_and(|f| counters.contains(f)) {
            continue;
        }
        // Exemplars (` # {...} v`) are OpenMetrics only; none are recorded, but never pass one on.
        let sample = match line.find(" # ") {
            Some(i) if !line[..i].contains('"') || line[..i].matches('"').count() % 2 == 0 => &line[..i],
            _ => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}
