//! The Insights archive format shared by the writer (`agent::archive`) and the reader
//! (`gather-inspect`): where the host's metadata lives and what `gathers.json` holds.
//!
//! Serde only, so that reading archives on a laptop needs none of the runtime's dependencies.
//!
//! # Layout
//! - [`GATHERS_JSON`], [`CLUSTER_ID_RECORD`]: the well-known record names.
//! - [`GathersMetadata`]: `insights-operator/gathers.json`, the Insights Operator's fields plus ours.
//! - [`StatusReport`]: one gatherer's outcome for a period.

use serde::{Deserialize, Serialize};

/// Where the host's own metadata lives inside every archive.
pub const GATHERS_JSON: &str = "insights-operator/gathers.json";

/// The record holding the cluster id (plain text), as in the Insights Operator's archives.
pub const CLUSTER_ID_RECORD: &str = "config/id";

/// `insights-operator/gathers.json`: the Insights Operator's fields plus ours.
///
/// Our extensions all default when absent, so the Insights Operator's own `gathers.json`
/// deserializes into this struct too.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GathersMetadata {
    /// One report per gatherer that ran this period.
    pub status_reports: Vec<StatusReport>,
    /// The Insights Operator's Go heap size; we store the process's resident set size here
    /// (the writer reads `VmRSS`).
    pub memory_alloc_bytes: u64,
    /// Process uptime when the archive was finished.
    pub uptime_seconds: f64,
    /// Whether the Insights Operator obfuscated the whole archive; always false here.
    pub is_global_obfuscation_enabled: bool,
    /// The agent version that wrote the archive.
    #[serde(default)]
    pub agent_version: String,
    /// Period start, RFC 3339.
    #[serde(default)]
    pub started: String,
    /// Period end, RFC 3339.
    #[serde(default)]
    pub finished: String,
    /// Period duration.
    #[serde(default)]
    pub duration_in_ms: u64,
    /// The process's peak resident set size (`VmHWM`).
    #[serde(default)]
    pub peak_rss_bytes: u64,
    /// Which module set produced this archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_set: Option<serde_json::Value>,
    /// Agent-level warnings (a refused update…), as opposed to a gatherer's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One gatherer's outcome for the period, as in the Insights Operator plus our fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// The gatherer's name, e.g. `clusterconfig/nodes`.
    pub name: String,
    /// How long the gatherer ran.
    pub duration_in_ms: u64,
    /// Records accepted into the archive.
    pub records_count: u64,
    /// Errors, or `None` (JSON `null`, as the Insights Operator writes) when there were none.
    pub errors: Option<Vec<String>>,
    /// Warnings, or `None` (JSON `null`) when there were none.
    pub warnings: Option<Vec<String>>,
    /// The panic message, if the gatherer panicked.
    pub panic: Option<String>,
    /// The module version that ran.
    #[serde(default)]
    pub version: String,
    /// The module's sha256, hex.
    #[serde(default)]
    pub sha256: String,
    /// wasmi fuel consumed.
    #[serde(default)]
    pub fuel_used: u64,
    /// REST requests made.
    #[serde(default)]
    pub requests: u64,
    /// Uncompressed bytes of records accepted.
    #[serde(default)]
    pub bytes_emitted: u64,
    /// The guest's linear memory at the end of the run, in bytes: its high-water mark, since
    /// wasm memory never shrinks. 0 when the gatherer never instantiated (or ran natively).
    #[serde(default)]
    pub guest_memory_bytes: u64,
    /// Why the gatherer failed: `trap`, `deadline`, `fuel`, `memory`, `policy`, `exit`, `load`…
    #[serde(default)]
    pub error_kind: Option<String>,
    /// The guest's exit code, when it returned one.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The Insights Operator gather functions the module reproduces (`clusterconfig/nodes`),
    /// from its manifest: how IO's tooling matches this report to its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reproduces: Vec<String>,
}
