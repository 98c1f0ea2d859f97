//! The gather-agent runtime: runs sandboxed WebAssembly gatherers against a Kubernetes API and
//! writes what they collect into Insights-Operator-style tar.gz archives.
//!
//! This crate is what the operator's image ships. The other audiences have their own crates:
//! `gather-sim` (the API-server simulator), `gather-inspect` (reading archives back),
//! `gather-devtools` (bench, native baseline, demo) and `gather-agent` (the one command line).
//!
//! # Layout
//! - [`sandbox`]: the wasmi engine: module validation, compiled-module cache, the deadline.
//! - [`limits`]: per-module limits, their ranges, and the wasmi memory limiter (shared by the
//!   sandbox and the host functions).
//! - [`loader`]: the one module loader: every origin (embedded defaults, a file or directory,
//!   the watched directory, the index) gets the same rules (`disabled`, policy, limits, names).
//! - [`errors`]: the outcome vocabulary as enums: `ErrorKind` (how a run ended) and
//!   `RefusalReason` (why an update was refused), shared by reports, status, logs and metrics.
//! - [`pdk`]: the host functions gatherers import (ABI v1), separate from lifecycle (it does
//!   not import the sandbox; the sandbox imports it).
//! - [`wasi`]: the sandboxed `wasi_snapshot_preview1` subset Go gatherers need (no file system).
//! - [`policy`]: the REST bridge and its request policy (GET-only, declared paths, no secrets).
//! - [`apipath`]: API paths parsed into (group, version, namespace, resource, name,
//!   subresource, verb), refusing anything ambiguous; what the policy decides on.
//! - [`archive`]: the Insights Operator tar.gz writer: record rules, streaming writes, gathers.json
//!   (whose types live in `insights-format`, shared with the reader).
//! - [`config`]: the agent's config file: limits, policy and config per module.
//! - [`gather`]: one period: run every gatherer concurrently, then write the archive.
//! - [`index`]: the published index format, its ed25519 signature and structural checks.
//! - [`publish`]: turn a modules directory into a static, content-addressed site.
//! - [`serve`]: a static server for sites, with strong ETags and 304s.
//! - [`redact`]: how URLs are shown: userinfo and query values hidden, everywhere.
//! - [`redaction`]: redaction specs (remove, blank, x out, URL-anonymize JSON values by
//!   pointer), applied by `list_redact`/`record_redact` and by [`anonymize`].
//! - [`anonymize`]: the Insights Operator's always-on anonymization, per API resource, applied
//!   to every response before a gatherer sees it.
//! - [`obfuscate`]: opt-in networking obfuscation (IP addresses, the cluster base domain) of
//!   every record the archive writes.
//! - [`state`]: the state dir: lock, content-addressed module cache, last accepted index.
//! - [`status`]: what the agent is doing, persisted as `status.json`.
//! - [`run`]: the periodic agent: activate staged sets at period start, gather, archive; the
//!   default modules it is given run until a configured source provides a set.
//! - [`update`]: the update loop: poll the index, verify, stage; watch a local modules dir.
//! - [`endpoints`]: `/healthz`, `/readyz`, `/metrics`, `/status` for operators (over HTTPS
//!   when a serving certificate is given).
//! - [`liveness`]: whether the period loop makes progress within its bounds (`/healthz`).
//! - [`reload`]: re-reading the config file on SIGHUP or when it changes.
//! - [`cgroup`]: the container's memory limit, checked against the gatherers' memory caps.
//! - [`retention`]: pruning old archives; removing temp files a crash left.
//! - [`upload`]: optional upload of each archive, as the Insights Operator does.
//! - [`metrics`]: Prometheus metrics.
//! - [`kubeclient`]: the host's own kube-rs client and where its config comes from.
//! - [`tls`]: the single rustls crypto provider (ring) the whole process uses.
//! - [`text`]: guest-derived strings cut and escaped before a report or log line quotes them.
//! - [`util`]: sha256 hashing, atomic file writes, randomised exponential backoff.

pub mod apipath;
pub mod archive;
pub mod config;
pub mod endpoints;
pub mod errors;
pub mod gather;
pub mod index;
pub mod pdk;
pub mod policy;
pub mod publish;
pub mod redact;
pub mod redaction;
pub mod anonymize;
pub mod obfuscate;
pub mod retention;
pub mod run;
pub mod sandbox;
pub mod serve;
pub mod state;
pub mod status;
pub mod kubeclient;
pub mod liveness;
pub mod reload;
pub mod cgroup;
pub mod loader;
pub mod limits;
pub mod metrics;
pub mod text;
pub mod tls;
pub mod update;
pub mod upload;
pub mod util;
pub mod wasi;
