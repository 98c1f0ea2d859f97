//! The agent's vocabulary of outcomes, as enums, so that reports (`gathers.json`'s
//! `error_kind`), `status.json`, log lines and Prometheus labels all spell a class the same
//! way and cannot drift: [`ErrorKind`] says how a gatherer's run ended, [`RefusalReason`] why
//! an update (an index, a module file) was refused. Their strings are part of the archive and
//! metrics contract (docs/CONFIG.md, hostapi/ABI.md §8).

use std::fmt;

/// How a gatherer's run (or its loading) ended badly: the report's `error_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The guest trapped (or a host function trapped it).
    Trap,
    /// The guest reported a panic.
    Panic,
    /// The wall-clock deadline passed.
    Deadline,
    /// The fuel budget ran out.
    Fuel,
    /// The memory cap was reached.
    Memory,
    /// `gather` returned (or the guest exited with) a non-zero code.
    Exit,
    /// The run finished, but the policy denied some of its requests.
    Policy,
    /// The module was refused before running (invalid, forbidden declarations, bad limits).
    Load,
    /// The agent was shutting down.
    Cancelled,
    /// Instantiation failed.
    Instantiate,
    /// A host bug while running the gatherer (a panicked runner task).
    Host,
}

impl ErrorKind {
    /// The string written in reports and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Trap => "trap",
            ErrorKind::Panic => "panic",
            ErrorKind::Deadline => "deadline",
            ErrorKind::Fuel => "fuel",
            ErrorKind::Memory => "memory",
            ErrorKind::Exit => "exit",
            ErrorKind::Policy => "policy",
            ErrorKind::Load => "load",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Instantiate => "instantiate",
            ErrorKind::Host => "host",
        }
    }

    /// Every kind, for documentation checks and tests.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Trap,
        ErrorKind::Panic,
        ErrorKind::Deadline,
        ErrorKind::Fuel,
        ErrorKind::Memory,
        ErrorKind::Exit,
        ErrorKind::Policy,
        ErrorKind::Load,
        ErrorKind::Cancelled,
        ErrorKind::Instantiate,
        ErrorKind::Host,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an update was refused: one per failure point of the update path and the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// The index signature is missing, oversized or does not verify.
    BadSignature,
    /// The index (or an entry's module URL) does not parse or fails its structural checks.
    Malformed,
    /// The serial is lower than the accepted one.
    Rollback,
    /// The accepted serial again, with different content.
    Replay,
    /// The index has expired.
    Expired,
    /// The index or a module download is larger than allowed.
    TooLarge,
    /// A module's size differs from its index entry.
    SizeMismatch,
    /// A module's sha256 differs from its index entry.
    Sha256Mismatch,
    /// The module does not load in the sandbox (not wasm, wrong ABI, bad manifest...).
    InvalidModule,
    /// The module's manifest differs from its index entry.
    ManifestMismatch,
    /// The module declares permissions the operator's policy forbids.
    Policy,
    /// The module's limits (operator's or publisher's) are out of range.
    Limits,
    /// Two modules of one set have the same gatherer name.
    Duplicate,
    /// A module file or the modules directory cannot be read.
    Unreadable,
    /// The state dir's persisted index cannot be restored, or is damaged.
    StateDir,
}

impl RefusalReason {
    /// Every class, for metrics that expose a zero-valued series per class from the start.
    pub const ALL: [RefusalReason; 15] = [
        RefusalReason::BadSignature,
        RefusalReason::Malformed,
        RefusalReason::Rollback,
        RefusalReason::Replay,
        RefusalReason::Expired,
        RefusalReason::TooLarge,
        RefusalReason::SizeMismatch,
        RefusalReason::Sha256Mismatch,
        RefusalReason::InvalidModule,
        RefusalReason::ManifestMismatch,
        RefusalReason::Policy,
        RefusalReason::Limits,
        RefusalReason::Duplicate,
        RefusalReason::Unreadable,
        RefusalReason::StateDir,
    ];

    /// The class as written in status.json, logs and archive warnings, and as the
    /// `reason` label of `gather_agent_update_refusals`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::BadSignature => "bad-signature",
            RefusalReason::Malformed => "malformed",
            RefusalReason::Rollback => "rollback",
            RefusalReason::Replay => "replay",
            RefusalReason::Expired => "expired",
            RefusalReason::TooLarge => "too-large",
            RefusalReason::SizeMismatch => "size-mismatch",
            RefusalReason::Sha256Mismatch => "sha256-mismatch",
            RefusalReason::InvalidModule => "invalid-module",
            RefusalReason::ManifestMismatch => "manifest-mismatch",
            RefusalReason::Policy => "policy",
            RefusalReason::Limits => "limits",
            RefusalReason::Duplicate => "duplicate",
            RefusalReason::Unreadable => "unreadable",
            RefusalReason::StateDir => "state-dir",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: its class and the detail (already redacted), shown as `class: detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Refused {
    /// The class.
    pub reason: RefusalReason,
    /// What exactly, for people.
    pub detail: String,
}

impl Refused {
    /// A refusal of class `reason`.
    pub fn new(reason: RefusalReason, detail: impl Into<String>) -> Self {
        Refused { reason, detail: detail.into() }
    }

    /// The same refusal with `prefix: ` before its detail (the gatherer it concerns).
    pub fn about(self, prefix: &str) -> Self {
        Refused { detail: format!("{prefix}: {}", self.detail), ..self }
    }

    /// The detail with `f` applied (redaction), class unchanged.
    pub fn map_detail(self, f: impl FnOnce(String) -> String) -> Self {
        Refused { detail: f(self.detail), ..self }
    }
}

/// Why the host stopped a guest from a call hook or a host function.
#[derive(Debug)]
pub(crate) struct Stopped(pub(crate) ErrorKind);

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stopped by the host: {}", self.0)
    }
}

impl wasmi_core::HostError for Stopped {}
