//! Per-module limits and how they are enforced on the guest's memory: [`Limits`] (with the
//! operator's [`LimitOverrides`] and the host's [`maxima`]), [`LimitError`], and
//! [`GuestLimiter`], the wasmi resource limiter. Both the sandbox (lifecycle) and the host
//! functions (per-call budgets) read them, so they live apart from either.

use std::time::{Duration, Instant};

use hostapi::abi::limits as defaults;
use serde::{Deserialize, Serialize};

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

/// Tracks memory growth against the module's cap and remembers refusals, so a guest that
/// dies after `memory.grow` failed is reported as out of memory rather than a plain trap.
#[derive(Debug)]
pub struct GuestLimiter {
    pub(crate) memory_bytes: usize,
    /// Whether a growth was refused.
    pub refused: bool,
    /// The largest linear memory granted so far, in bytes, the initial size included (wasmi
    /// asks the limiter when it creates a memory, too). Wasm memory never shrinks, so this is
    /// the guest's memory high-water mark.
    pub peak_bytes: usize,
}

impl GuestLimiter {
    /// A limiter capping linear memory at `memory_bytes`.
    pub fn new(memory_bytes: usize) -> Self {
        GuestLimiter { memory_bytes, refused: false, peak_bytes: 0 }
    }
}

impl wasmi::ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool, wasmi_core::LimiterError> {
        let ok = desired <= self.memory_bytes;
        self.refused |= !ok;
        if ok {
            self.peak_bytes = self.peak_bytes.max(desired);
        }
        Ok(ok)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool, wasmi_core::LimiterError> {
        Ok(desired <= 100_000)
    }
    fn instances(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        4
    }
    fn memories(&self) -> usize {
        1
    }
}

