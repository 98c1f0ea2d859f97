//! The sandbox: one wasmi engine, untrusted-module loading and validation (before anything
//! runs), a compiled-module cache keyed by sha256, and per-run limits: memory, fuel and a
//! wall-clock deadline that holds even when a guest spins without calling the host.
//!
//! wasmi has no epoch interruption, so the deadline is enforced with fuel slices: the guest
//! runs on a small fuel allowance through a resumable call; each time the slice runs out the
//! host checks the clock and the total budget, then tops up and resumes, or stops the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hostapi::abi::{self, limits as defaults};
use hostapi::Manifest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmi::{Config, Engine, EnforcedLimits, ExternType, Linker, Module, Store, TypedResumableCall};

use crate::pdk::{self, HostState, RunReport};
use crate::wasi;

mod structure;

/// The optional reactor initialiser (Go's `-buildmode=c-shared`), run once before `gather`.
pub const INITIALIZE: &str = "_initialize";

/// Fuel per slice: roughly 10M wasm instructions, a few milliseconds of interpretation.
/// Smaller slices tighten the deadline at the cost of more (cheap) host checks.
const FUEL_SLICE: u64 = 10_000_000;

/// The largest value any source (config file, flag, environment, index) may set for each
/// limit. They keep every `Instant`/`Duration` computation and every allocation the limits
/// size within what the host can represent.
pub mod maxima {
    /// wasm32 linear memory cannot exceed 65,536 pages of 64 KiB.
    pub const MEMORY_BYTES: u64 = 4 * 1024 * 1024 * 1024;
    /// The smallest memory cap (one page).
    pub const MIN_MEMORY_BYTES: u64 = 65_536;
    /// About a day of interpretation at wasmi's speed.
    pub const FUEL: u64 = 100_000_000_000_000;
    /// A gatherer's deadline: one day.
    pub const DEADLINE_SECS: u64 = 24 * 3600;
    /// One request's timeout: one day (and never past the deadline).
    pub const REQUEST_TIMEOUT_SECS: u64 = DEADLINE_SECS;
    /// One response body, held in host memory: 1 GiB.
    pub const RESPONSE_BYTES: u64 = 1024 * 1024 * 1024;
    /// Requests per gatherer per period.
    pub const REQUESTS: u32 = 10_000_000;
    /// Record bytes per gatherer per period, and the archive cap: 4 GiB.
    pub const RECORD_BYTES: u64 = 4 * 1024 * 1024 * 1024;
    /// Host memory a gatherer's open handles may hold: 16 GiB.
    pub const HANDLE_BYTES: u64 = 16 * 1024 * 1024 * 1024;
    /// Log bytes per gatherer per period: 1 GiB.
    pub const LOG_BYTES: u64 = 1024 * 1024 * 1024;
    /// Log lines per gatherer per period.
    pub const LOG_LINES: u64 = 100_000_000;
}

/// Why a limit (from any source) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A value outside the range the host accepts.
    #[error("{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The field, as spelled in the config file (`deadlineSeconds`).
        field: &'static str,
        /// The value given.
        value: u64,
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A duration outside the range the host accepts.
    #[error("{field} must be between {} and {}, got {}", humantime::format_duration(*.min), humantime::format_duration(*.max), humantime::format_duration(*.value))]
    DurationOutOfRange {
        /// The setting (`period`, `pollInterval`).
        field: &'static str,
        /// The value given.
        value: Duration,
        /// The smallest accepted.
        min: Duration,
        /// The largest accepted.
        max: Duration,
    },
    /// A set of overrides that is not `{"field": number, ...}` with known fields.
    #[error("{who}: {message}")]
    Malformed {
        /// Where they came from (`modules.pods.limits`, `the index`).
        who: String,
        /// What is wrong (an unknown field, a wrong type).
        message: String,
    },
}

fn in_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), LimitError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LimitError::OutOfRange { field, value, min, max })
    }
}

/// Per-module limits. Every field has a default; operators override per module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// Linear memory cap in bytes (default 64 MiB).
    pub memory_bytes: u64,
    /// CPU budget per period in fuel units (about one per instruction).
    pub fuel: u64,
    /// Wall-clock deadline per period, in seconds (default 60).
    pub deadline_seconds: u64,
    /// Response body cap in bytes (default 16 MiB).
    pub response_bytes: u64,
    /// Per-request timeout in seconds (default 30; never past the deadline).
    pub request_timeout_seconds: u64,
    /// Requests per period.
    pub max_requests: u32,
    /// Bytes of records this module may emit per period (its share of the archive), so one
    /// gatherer cannot fill the shared archive cap and starve the others.
    pub record_bytes: u64,
    /// Host memory all of the module's open handles may hold together (response bodies,
    /// list pages, projections); past it a request or page is refused with `LIMIT`.
    pub handle_bytes: u64,
    /// Log bytes the module may write to the host log per period; past it, logs are dropped.
    pub log_bytes: u64,
    /// Log lines the module may write to the host log per period.
    pub log_lines: u64,
    /// Deadline in milliseconds, for tests that need sub-second deadlines; overrides
    /// `deadlineSeconds` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: defaults::MEMORY_BYTES,
            fuel: defaults::FUEL,
            deadline_seconds: defaults::DEADLINE_SECS,
            response_bytes: defaults::RESPONSE_BYTES,
            request_timeout_seconds: defaults::REQUEST_TIMEOUT_SECS,
            max_requests: defaults::REQUESTS,
            record_bytes: defaults::RECORD_BYTES,
            handle_bytes: defaults::HANDLE_BYTES,
            log_bytes: defaults::LOG_BYTES,
            log_lines: defaults::LOG_LINES,
            deadline_ms: None,
        }
    }
}

/// Some limits, each optional: an operator's per-module settings or a publisher's
/// suggestion. Unknown fields are errors (a typo must not silently keep a default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitOverrides {
    /// See [`Limits::memory_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// See [`Limits::fuel`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// See [`Limits::deadline_seconds`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
    /// See [`Limits::response_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    /// See [`Limits::request_timeout_seconds`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_seconds: Option<u64>,
    /// See [`Limits::max_requests`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// See [`Limits::record_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_bytes: Option<u64>,
    /// See [`Limits::handle_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle_bytes: Option<u64>,
    /// See [`Limits::log_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<u64>,
    /// See [`Limits::log_lines`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_lines: Option<u64>,
    /// See [`Limits::deadline_ms`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

impl LimitOverrides {
    /// Parses a JSON object of overrides; `who` names the source in errors.
    pub fn from_json(who: &str, value: &serde_json::Value) -> Result<Self, LimitError> {
        let o: LimitOverrides =
            serde_json::from_value(value.clone()).map_err(|e| LimitError::Malformed { who: who.to_owned(), message: e.to_string() })?;
        o.check()?;
        Ok(o)
    }

    /// Every value given must be within the host's range, whatever it is later combined with.
    pub fn check(&self) -> Result<(), LimitError> {
        let mut full = Limits::default();
        self.apply_to(&mut full);
        full.check()
    }

    /// Sets every given field in `limits` (the operator's per-module settings: they may raise
    /// or lower the agent-wide defaults).
    pub fn apply_to(&self, limits: &mut Limits) {
        let l = limits;
        l.memory_bytes = self.memory_bytes.unwrap_or(l.memory_bytes);
        l.fuel = self.fuel.unwrap_or(l.fuel);
        l.deadline_seconds = self.deadline_seconds.unwrap_or(l.deadline_seconds);
        l.response_bytes = self.response_bytes.unwrap_or(l.response_bytes);
        l.request_timeout_seconds = self.request_timeout_seconds.unwrap_or(l.request_timeout_seconds);
        l.max_requests = self.max_requests.unwrap_or(l.max_requests);
        l.record_bytes = self.record_bytes.unwrap_or(l.record_bytes);
        l.handle_bytes = self.handle_bytes.unwrap_or(l.handle_bytes);
        l.log_bytes = self.log_bytes.unwrap_or(l.log_bytes);
        l.log_lines = self.log_lines.unwrap_or(l.log_lines);
        if self.deadline_ms.is_some() {
            l.deadline_ms = self.deadline_ms;
        } else if self.deadline_seconds.is_some() {
            l.deadline_ms = None;
        }
    }

    /// Lowers `ceiling` to every given field that is smaller (a publisher's suggestion:
    /// it may only lower what the operator allows).
    pub fn lower(&self, ceiling: &Limits) -> Limits {
        let c = ceiling;
        let min = |v: Option<u64>, cur: u64| v.map_or(cur, |v| v.min(cur));
        let mut l = Limits {
            memory_bytes: min(self.memory_bytes, c.memory_bytes),
            fuel: min(self.fuel, c.fuel),
            response_bytes: min(self.response_bytes, c.response_bytes),
            request_timeout_seconds: min(self.request_timeout_seconds, c.request_timeout_seconds),
            max_requests: self.max_requests.map_or(c.max_requests, |v| v.min(c.max_requests)),
            record_bytes: min(self.record_bytes, c.record_bytes),
            handle_bytes: min(self.handle_bytes, c.handle_bytes),
            log_bytes: min(self.log_bytes, c.log_bytes),
            log_lines: min(self.log_lines, c.log_lines),
            ..c.clone()
        };
        // The deadline has two spellings; compare what they mean.
        let suggested = match (self.deadline_ms, self.deadline_seconds) {
            (Some(ms), _) => Some(Duration::from_millis(ms)),
            (None, Some(s)) => Some(Duration::from_secs(s)),
            (None, None) => None,
        };
        if suggested.is_some_and(|d| d < c.deadline()) {
            match self.deadline_ms {
                Some(ms) => l.deadline_ms = Some(ms),
                None => {
                    l.deadline_seconds = self.deadline_seconds.unwrap_or(c.deadline_seconds);
                    l.deadline_ms = None;
                }
            }
        }
        l
    }
}

impl Limits {
    /// The wall-clock deadline as a duration (never more than [`maxima::DEADLINE_SECS`],
    /// whatever the fields say, so adding it to an `Instant` cannot overflow).
    pub fn deadline(&self) -> Duration {
        let d = self.deadline_ms.map_or(Duration::from_secs(self.deadline_seconds), Duration::from_millis);
        d.min(Duration::from_secs(maxima::DEADLINE_SECS))
    }

    /// `start` plus the deadline, saturating instead of panicking.
    pub fn deadline_from(&self, start: Instant) -> Instant {
        start.checked_add(self.deadline()).unwrap_or(start)
    }

    /// Rejects values outside the host's range: sizes the ABI returns as i32, durations that
    /// would overflow a clock, and zeros that would disable a limit.
    pub fn check(&self) -> Result<(), LimitError> {
        in_range("memoryBytes", self.memory_bytes, maxima::MIN_MEMORY_BYTES, maxima::MEMORY_BYTES)?;
        in_range("fuel", self.fuel, 1, maxima::FUEL)?;
        in_range("deadlineSeconds", self.deadline_seconds, 1, maxima::DEADLINE_SECS)?;
        if let Some(ms) = self.deadline_ms {
            in_range("deadlineMs", ms, 1, maxima::DEADLINE_SECS * 1000)?;
        }
        in_range("responseBytes", self.response_bytes, 1, maxima::RESPONSE_BYTES)?;
        in_range("requestTimeoutSeconds", self.request_timeout_seconds, 1, maxima::REQUEST_TIMEOUT_SECS)?;
        in_range("maxRequests", u64::from(self.max_requests), 0, u64::from(maxima::REQUESTS))?;
        in_range("recordBytes", self.record_bytes, 1, maxima::RECORD_BYTES)?;
        in_range("handleBytes", self.handle_bytes, 1, maxima::HANDLE_BYTES)?;
        in_range("logBytes", self.log_bytes, 0, maxima::LOG_BYTES)?;
        in_range("logLines", self.log_lines, 0, maxima::LOG_LINES)?;
        Ok(())
    }

    /// The per-request timeout as a duration (bounded like [`Limits::deadline`]).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.min(maxima::REQUEST_TIMEOUT_SECS))
    }
}

/// Why a module was refused before running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a wasm binary at all.
    #[error("not a WebAssembly module (no \\0asm header)")]
    NotWasm,
    /// wasmi refused to parse or validate it (including `EnforcedLimits`).
    #[error("invalid or oversized WebAssembly module: {0}")]
    Invalid(String),
    /// No `gather_abi_version_N` export.
    #[error("not a gatherer: it exports no {}N marker (this host speaks ABI {})", abi::ABI_MARKER_PREFIX, abi::ABI_VERSION)]
    MissingMarker,
    /// Only markers for versions this host does not speak.
    #[error("unsupported gatherer ABI version {found:?}; this host speaks ABI {}", abi::ABI_VERSION)]
    UnsupportedAbi {
        /// The versions the module declares.
        found: Vec<String>,
    },
    /// The `gather.manifest` custom section is missing.
    #[error("no `{}` custom section: the host cannot tell the module's name and permissions", abi::MANIFEST_SECTION)]
    MissingManifest,
    /// The manifest is malformed.
    #[error("bad manifest: {0}")]
    BadManifest(String),
    /// A required export is missing or has the wrong type.
    #[error("bad exports: {0}")]
    BadExport(String),
    /// The module has a start function, which would run during instantiation, outside the
    /// deadline loop.
    #[error("has a start function, which this host refuses: it would run during instantiation, before any limit applies; export `gather` instead")]
    StartFunction,
    /// The module imports something this host does not provide (names cut to `QUOTE_BYTES`).
    #[error("imports {module}.{name}{detail}, which this host does not provide (ABI {})", abi::ABI_VERSION)]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Extra detail (a signature mismatch).
        detail: String,
    },
}

/// A validated, compiled module with its declared manifest.
pub struct LoadedModule {
    /// The declared manifest.
    pub manifest: Arc<Manifest>,
    /// Hex sha256 of the module bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
    /// Time to parse, validate and compile.
    pub compile_time: Duration,
    module: Module,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule").field("name", &self.manifest.name).field("sha256", &self.sha256).finish()
    }
}

/// Why the host stopped a guest from a call hook (`deadline` or `cancelled`).
#[derive(Debug)]
pub(crate) struct Stopped(pub(crate) &'static str);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by the host: {}", self.0)
    }
}

impl wasmi_core::HostError for Stopped {}

/// How a run ended, in the report's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `trap`, `panic`, `deadline`, `fuel`, `memory` or `instantiate`.
    pub kind: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// Everything one run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// `Ok(code)` when the entry returned (0 = success, else the gatherer's failure code);
    /// `Err` when the run was stopped or trapped.
    pub result: Result<i32, Failure>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time of the run.
    pub duration: Duration,
    /// Host-side accounting (records, requests, warnings...).
    pub report: RunReport,
}

/// The wasm engine, its host functions and the compiled-module cache.
pub struct Sandbox {
    /// Set on shutdown: every running guest stops at its next fuel slice or host call.
    cancelled: Arc<std::sync::atomic::AtomicBool>,
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<HashMap<String, Arc<LoadedModule>>>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

fn stopped(kind: &'static str, limits: &Limits) -> Failure {
    match kind {
        "deadline" => Failure { kind: "deadline", message: format!("wall-clock deadline of {:?} passed", limits.deadline()) },
        _ => Failure { kind: "cancelled", message: "the agent is shutting down".into() },
    }
}

/// Fuel a run has used: what the sandbox gave it minus what is left, plus host work not yet
/// taken from a slice (ABI.md §10), which counts as used.
fn fuel_used(store: &Store<HostState>, added: u64) -> u64 {
    added.saturating_sub(store.get_fuel().unwrap_or(0)).saturating_add(store.data().fuel_debt)
}

/// An error detail that may quote the module's own bytes (a manifest field name, a wasm
/// name), cut so a load error stays one short report entry and log line.
fn quoted_detail(detail: &str) -> String {
    crate::text::clip(detail, 2 * abi::limits::QUOTE_BYTES).into_owned()
}

/// Whether `bytes` (a wasm binary, header already checked) has a start section (id 8). Only
/// the top-level section headers are walked; a malformed binary answers `false` and is left
/// to the validator.
fn has_start_section(bytes: &[u8]) -> bool {
    fn leb(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let Some(size) = leb(bytes, &mut at) else { return false };
        if id == 8 {
            return true;
        }
        at = match usize::try_from(size).ok().and_then(|s| at.checked_add(s)) {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Sandbox {
    /// An engine configured for untrusted modules.
    pub fn new() -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            // Functions are compiled lazily, on their first call, and wasmi 2.0 cannot resume a
            // call whose fuel runs out *during* that compilation: the run would die as `fuel`
            // with budget left (frequent with Go modules' thousands of functions). So compiling
            // costs no fuel: it happens once per module, not per run, and is bounded by the
            // module's size and structure (`structure::check`); copying still costs fuel.
            .fuel_cost(wasmi::CustomFuelCosts { bytes_copied_per_fuel: 64, fuel_per_bytes_translated: 0, fuel_per_bytes_validated: 0 })
            // `strict()` but for data segments, enforced by `structure::check` (wasmi's limits
            // cannot be set one by one, and Go modules need more data segments).
            .enforced_limits(EnforcedLimits::default())
            // A start function would run during instantiation, outside the deadline loop.
            .allow_start_fn(false)
            // The ABI's pointers are 32-bit; one memory keeps "the" guest memory unambiguous.
            .wasm_memory64(false)
            .wasm_multi_memory(false)
            // Deep recursion must trap cleanly rather than exhaust host memory.
            .set_max_recursion_depth(16 * 1024);
        let engine = Engine::new(&config);
        let cancelled: Arc<std::sync::atomic::AtomicBool> = Default::default();
        let mut linker = pdk::linker(&engine);
        wasi::add_to_linker(&mut linker, cancelled.clone());
        Sandbox { cancelled, engine, linker, cache: Mutex::new(HashMap::new()) }
    }

    /// Validates and compiles `bytes`, or returns the cached module with the same sha256.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        let sha256 = sha256_hex(bytes);
        if let Some(m) = self.cache.lock().expect("cache lock").get(&sha256) {
            return Ok(m.clone());
        }
        let loaded = Arc::new(self.compile(bytes, sha256.clone())?);
        self.cache.lock().expect("cache lock").insert(sha256, loaded.clone());
        Ok(loaded)
    }

    /// Stops every running guest at its next fuel slice (a few milliseconds), with kind
    /// `cancelled`; runs started later are stopped at once. Used to abandon a period on shutdown.
    pub fn cancel_runs(&self) {
        self.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether [`Self::cancel_runs`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Number of compiled modules cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().expect("cache lock").len()
    }

    /// Drops cached modules whose sha256 is not in `keep`.
    pub fn retain(&self, keep: &[String]) {
        self.cache.lock().expect("cache lock").retain(|k, _| keep.contains(k));
    }

    fn compile(&self, bytes: &[u8], sha256: String) -> Result<LoadedModule, LoadError> {
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        let started = Instant::now();
        if has_start_section(bytes) {
            return Err(LoadError::StartFunction);
        }
        structure::check(bytes).map_err(|e| LoadError::Invalid(quoted_detail(&e)))?;
        let module = Module::new(&self.engine, bytes).map_err(|e| LoadError::Invalid(quoted_detail(&e.to_string())))?;

        let mut markers: Vec<String> = Vec::new();
        for export in module.exports() {
            let Some(version) = export.name().strip_prefix(abi::ABI_MARKER_PREFIX) else { continue };
            match export.ty() {
                ExternType::Func(f) if f.params().is_empty() && f.results().is_empty() => markers.push(version.to_owned()),
                _ => return Err(LoadError::BadExport(format!("marker `{}` must be a function () -> ()", export.name()))),
            }
        }
        if markers.is_empty() {
            return Err(LoadError::MissingMarker);
        }
        if !markers.iter().any(|v| v == &abi::ABI_VERSION.to_string()) {
            // Export names are the module's: a few, each cut, are enough to say what it speaks.
            let found = markers.iter().take(8).map(|v| crate::text::clip(v, abi::limits::QUOTE_BYTES).into_owned()).collect();
            return Err(LoadError::UnsupportedAbi { found });
        }
        match module.get_export(abi::ENTRY) {
            Some(ExternType::Func(f)) if f.params().is_empty() && f.results() == [wasmi::ValType::I32] => {}
            Some(_) => return Err(LoadError::BadExport(format!("`{}` must be a function () -> i32", abi::ENTRY))),
            None => return Err(LoadError::BadExport(format!("no `{}` entry function", abi::ENTRY))),
        }
        match module.get_export(abi::MEMORY) {
            Some(ExternType::Memory(_)) => {}
            _ => return Err(LoadError::BadExport(format!("no exported `{}`", abi::MEMORY))),
        }
        match module.get_export(INITIALIZE) {
            Some(ExternType::Func(f)) if f.params().is_empty() && f.results().is_empty() => {}
            Some(_) => return Err(LoadError::BadExport(format!("`{INITIALIZE}` must be a function () -> ()"))),
            None => {}
        }
        let (signatures, wasi_signatures) = (pdk::import_signatures(), wasi::signatures());
        for import in module.imports() {
            let (m, n) = (import.module(), import.name());
            let unknown = |detail: String| LoadError::UnknownImport {
                module: crate::text::clip(m, abi::limits::QUOTE_BYTES).into_owned(),
                name: crate::text::clip(n, abi::limits::QUOTE_BYTES).into_owned(),
                detail,
            };
            let provided = match m {
                abi::IMPORT_MODULE => &signatures,
                wasi::MODULE => &wasi_signatures,
                _ => return Err(unknown(String::new())),
            };
            let Some((_, params, results)) = provided.iter().find(|(name, _, _)| *name == n) else {
                let detail = if m == wasi::MODULE { " (outside the host's WASI subset)" } else { "" };
                return Err(unknown(detail.into()));
            };
            match import.ty() {
                ExternType::Func(f) if f.params() == params.as_slice() && f.results() == results.as_slice() => {}
                ExternType::Func(f) => {
                    return Err(unknown(format!(
                        " with signature {:?} -> {:?} (expected {params:?} -> {results:?})",
                        f.params(),
                        f.results()
                    )))
                }
                _ => return Err(unknown(" as a non-function".into())),
            }
        }

        let mut sections = module.custom_sections().filter(|s| s.name() == abi::MANIFEST_SECTION);
        let section = sections.next().ok_or(LoadError::MissingManifest)?;
        if sections.next().is_some() {
            // Tools disagree on which of two sections counts; the host must not pick one.
            return Err(LoadError::BadManifest(format!("more than one `{}` custom section", abi::MANIFEST_SECTION)));
        }
        let manifest = Manifest::parse(section.data()).map_err(|e| LoadError::BadManifest(quoted_detail(&e.to_string())))?;
        if manifest.abi != abi::ABI_VERSION {
            return Err(LoadError::BadManifest(format!(
                "manifest says ABI {} but this host speaks ABI {}",
                manifest.abi,
                abi::ABI_VERSION
            )));
        }
        Ok(LoadedModule {
            manifest: Arc::new(manifest),
            sha256,
            size: bytes.len(),
            compile_time: started.elapsed(),
            module,
        })
    }

    /// A fresh store for one run: the memory limiter, and a call hook that stops the guest at
    /// its next host call once the deadline passes or the sandbox is cancelled.
    fn new_store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Fuel slices bound a guest that computes; a guest that lives inside host calls burns
        // little fuel, so every host call checks the clock and the shutdown flag as well.
        let cancelled = self.cancelled.clone();
        store.call_hook(move |state, hook| {
            if matches!(hook, wasmi::CallHook::CallingHost) {
                if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(wasmi::Error::host(Stopped("cancelled")));
                }
                if Instant::now() >= state.deadline {
                    return Err(wasmi::Error::host(Stopped("deadline")));
                }
            }
            Ok(())
        });
        store
    }

    /// Instantiates `module` in a fresh store and runs its `_initialize`, if any, without
    /// calling `gather`; returns how long that took: the fixed cost of every run before the
    /// entry point's first instruction (for benchmarks).
    pub fn instantiate(&self, module: &LoadedModule, state: HostState) -> Result<Duration, String> {
        let started = Instant::now();
        let mut store = self.new_store(state);
        store.set_fuel(defaults::FUEL).expect("fuel metering is enabled");
        let instance = self.linker.instantiate_and_start(&mut store, &module.module).map_err(|e| e.to_string())?;
        if let Ok(init) = instance.get_typed_func::<(), ()>(&store, INITIALIZE) {
            init.call(&mut store, ()).map_err(|e| e.to_string())?;
        }
        instance.get_typed_func::<(), i32>(&store, abi::ENTRY).map_err(|e| e.to_string())?;
        Ok(started.elapsed())
    }

    /// Runs `module`'s entry point once in a fresh store (after its `_initialize`, if it
    /// exports one). Blocking: call from a blocking thread.
    pub fn run(&self, module: &LoadedModule, state: HostState, limits: &Limits) -> RunOutcome {
        let started = Instant::now();
        let mut store = self.new_store(state);
        let mut fuel_added = FUEL_SLICE.min(limits.fuel);
        store.set_fuel(fuel_added).expect("fuel metering is enabled");
        store.data_mut().fuel_added = fuel_added;

        let finish = |mut store: Store<HostState>, added: u64, result: Result<i32, Failure>| {
            let used = fuel_used(&store, added);
            wasi::flush(store.data_mut());
            RunOutcome { result, fuel_used: used, duration: started.elapsed(), report: store.into_data().report }
        };

        let instance = match self.linker.instantiate_and_start(&mut store, &module.module) {
            Ok(i) => i,
            Err(e) => {
                let f = Failure { kind: "instantiate", message: format!("instantiation failed: {e}") };
                return finish(store, fuel_added, Err(f));
            }
        };
        let entry = match instance.get_typed_func::<(), i32>(&store, abi::ENTRY) {
            Ok(f) => f,
            Err(e) => return finish(store, fuel_added, Err(Failure { kind: "instantiate", message: e.to_string() })),
        };
        // A reactor's initialiser runs under the same fuel, deadline and memory as `gather`.
        if let Ok(init) = instance.get_typed_func::<(), ()>(&store, INITIALIZE) {
            let call = init.call_resumable(&mut store, ());
            match self.drive(&mut store, call, limits, &mut fuel_added) {
                Ok(Ended::Returned(())) => {}
                Ok(Ended::Exited(code)) => {
                    let result = exited(store.data(), code, limits);
                    return finish(store, fuel_added, result);
                }
                Err(f) => return finish(store, fuel_added, Err(f)),
            }
        }
        let call = entry.call_resumable(&mut store, ());
        let result = match self.drive(&mut store, call, limits, &mut fuel_added) {
            // A non-zero return is the gatherer's own verdict, reported as kind `exit`.
            Ok(Ended::Returned(code)) => Ok(code),
            Ok(Ended::Exited(code)) => exited(store.data(), code, limits),
            Err(f) => Err(f),
        };
        finish(store, fuel_added, result)
    }

    /// Drives a resumable call through fuel slices until it returns, calls `proc_exit`, or is
    /// stopped (fuel, deadline, cancellation) or trapped.
    fn drive<R: wasmi::WasmResults>(
        &self,
        store: &mut Store<HostState>,
        mut call: Result<TypedResumableCall<R>, wasmi::Error>,
        limits: &Limits,
        fuel_added: &mut u64,
    ) -> Result<Ended<R>, Failure> {
        let deadline = store.data().deadline;
        loop {
            match call {
                Ok(TypedResumableCall::Finished(r)) => {
                    // Host work can take a run past its budget in its last instructions.
                    if fuel_used(store, *fuel_added) > limits.fuel {
                        return Err(Failure { kind: "fuel", message: format!("fuel budget of {} exhausted", limits.fuel) });
                    }
                    return Ok(Ended::Returned(r));
                }
                Ok(TypedResumableCall::OutOfFuel(invocation)) => {
                    // Host work the guest owes beyond its last slice comes off the total first.
                    *fuel_added = fuel_added.saturating_add(std::mem::take(&mut store.data_mut().fuel_debt));
                    if *fuel_added >= limits.fuel {
                        return Err(Failure { kind: "fuel", message: format!("fuel budget of {} exhausted", limits.fuel) });
                    }
                    if self.is_cancelled() {
                        return Err(Failure { kind: "cancelled", message: "the agent is shutting down".into() });
                    }
                    if Instant::now() >= deadline {
                        return Err(Failure {
                            kind: "deadline",
                            message: format!("wall-clock deadline of {:?} passed", limits.deadline()),
                        });
                    }
                    let top_up = FUEL_SLICE.min(limits.fuel - *fuel_added);
                    let left = store.get_fuel().unwrap_or(0);
                    store.set_fuel(left + top_up).expect("fuel metering is enabled");
                    *fuel_added += top_up;
                    store.data_mut().fuel_added = *fuel_added;
                    call = invocation.resume(&mut *store);
                }
                Ok(TypedResumableCall::HostTrap(invocation)) => {
                    if let Some(exit) = invocation.host_error().downcast_ref::<wasi::Exit>() {
                        return Ok(Ended::Exited(exit.0));
                    }
                    return Err(match invocation.host_error().downcast_ref::<Stopped>() {
                        Some(s) => stopped(s.0, limits),
                        None => Failure { kind: "trap", message: format!("host trap: {}", invocation.host_error()) },
                    });
                }
                Err(e) if e.downcast_ref::<Stopped>().is_some() => {
                    let kind = e.downcast_ref::<Stopped>().map_or("trap", |s| s.0);
                    return Err(stopped(kind, limits));
                }
                Err(e) if e.downcast_ref::<wasi::Exit>().is_some() => {
                    return Ok(Ended::Exited(e.downcast_ref::<wasi::Exit>().map_or(1, |x| x.0)));
                }
                Err(e) => {
                    let state = store.data();
                    // The guest's own panic message is the most precise account; a refused
                    // memory.grow explains an otherwise bare abort.
                    return Err(if let Some(panic) = &state.report.panic {
                        Failure { kind: "panic", message: format!("guest panicked: {panic}") }
                    } else if state.limiter.refused {
                        Failure {
                            kind: "memory",
                            message: format!("memory limit of {} bytes reached (memory.grow refused), then: {e}", limits.memory_bytes),
                        }
                    } else if e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
                        Failure { kind: "fuel", message: format!("fuel budget of {} exhausted", limits.fuel) }
                    } else {
                        Failure { kind: "trap", message: e.to_string() }
                    });
                }
            }
        }
    }
}

/// How a driven call ended without being stopped.
enum Ended<R> {
    /// The export returned.
    Returned(R),
    /// The guest called WASI `proc_exit(code)`.
    Exited(i32),
}

/// The verdict on `proc_exit(code)`: a runtime that exits after printing a panic (Go's
/// `panic: ` on stderr, or a level-4 log) panicked; one that exits after a refused
/// `memory.grow` ran out of memory (Go's `fatal error: out of memory`); otherwise the code is
/// the gatherer's return value, as if `gather` had returned it.
fn exited(state: &HostState, code: i32, limits: &Limits) -> Result<i32, Failure> {
    if code == 0 {
        return Ok(0);
    }
    if let Some(panic) = &state.report.panic {
        return Err(Failure { kind: "panic", message: format!("guest panicked: {panic} (exit code {code})") });
    }
    if state.limiter.refused {
        return Err(Failure {
            kind: "memory",
            message: format!("memory limit of {} bytes reached (memory.grow refused), then exit code {code}", limits.memory_bytes),
        });
    }
    Ok(code)
}
