//! ABI version 1: names, numbers and limits. `ABI.md` explains each one.

/// The import module every host function lives in.
pub const IMPORT_MODULE: &str = "gather";
/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;
/// Prefix of the marker export: a module speaking ABI 1 exports `gather_abi_version_1`.
pub const ABI_MARKER_PREFIX: &str = "gather_abi_version_";
/// The marker export for [`ABI_VERSION`].
pub const ABI_MARKER: &str = "gather_abi_version_1";
/// The entry export: `() -> i32`, 0 on success.
pub const ENTRY: &str = "gather";
/// The exported linear memory.
pub const MEMORY: &str = "memory";
/// The custom section holding the manifest JSON.
pub const MANIFEST_SECTION: &str = "gather.manifest";

/// Status codes returned by host functions. Non-negative values are results.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// A pointer/length pair falls outside guest memory.
    pub const BAD_POINTER: i32 = -1;
    /// An argument is malformed (not UTF-8, bad method, bad header line).
    pub const BAD_ARGUMENT: i32 = -2;
    /// The response handle does not exist or was closed.
    pub const BAD_HANDLE: i32 = -3;
    /// The response body exceeded the response size cap; the request failed.
    pub const TOO_LARGE: i32 = -4;
    /// A per-period limit was hit (open handles, request count).
    pub const LIMIT: i32 = -5;
    /// The API server could not be reached.
    pub const UNAVAILABLE: i32 = -6;
    /// The request timed out or the gatherer's deadline passed.
    pub const TIMEOUT: i32 = -7;
    /// A record name breaks the naming rules.
    pub const BAD_NAME: i32 = -8;
    /// A record with this name already exists; the first one is kept.
    pub const DUPLICATE: i32 = -9;
    /// The archive size cap was reached; the record was dropped.
    pub const ARCHIVE_FULL: i32 = -10;
    /// The requested header is not present.
    pub const NOT_FOUND: i32 = -11;

    /// The symbolic name of a status code, for messages.
    pub fn name(code: i32) -> &'static str {
        match code {
            OK => "OK",
            BAD_POINTER => "BAD_POINTER",
            BAD_ARGUMENT => "BAD_ARGUMENT",
            BAD_HANDLE => "BAD_HANDLE",
            TOO_LARGE => "TOO_LARGE",
            LIMIT => "LIMIT",
            UNAVAILABLE => "UNAVAILABLE",
            TIMEOUT => "TIMEOUT",
            BAD_NAME => "BAD_NAME",
            DUPLICATE => "DUPLICATE",
            ARCHIVE_FULL => "ARCHIVE_FULL",
            NOT_FOUND => "NOT_FOUND",
            c if c > 0 => "OK",
            _ => "UNKNOWN",
        }
    }
}

/// The paged-list functions (`list_open`, `list_next`, `list_emit`), added to ABI 1 as
/// optional imports: see ABI.md §5.13.
pub mod list {
    /// `list_open` flag: remove `metadata.managedFields` from every item `list_emit` writes.
    pub const STRIP_MANAGED_FIELDS: i32 = 1;
    /// Every flag this host understands; any other bit is `BAD_ARGUMENT`.
    pub const KNOWN_FLAGS: i32 = STRIP_MANAGED_FIELDS;
    /// `list_emit` index meaning "every item of the current page".
    pub const ALL_ITEMS: i32 = -1;
    /// Items per page: the `limit` the host sends with every page request.
    pub const PAGE_SIZE: u32 = 500;
    /// Most projection fields one list may ask for.
    pub const MAX_FIELDS: usize = 32;
}

/// Redaction specs (`list_redact`, `record_redact`), added to ABI 1 as optional imports: see
/// ABI.md §5.14. A spec is UTF-8 text, one rule per line: `<action> <json-pointer>
/// [except-product-keys]`.
pub mod redact {
    /// Most rules one spec may hold.
    pub const MAX_RULES: usize = 64;
    /// Most segments one rule's pointer may have.
    pub const MAX_SEGMENTS: usize = 32;
    /// Most bytes one spec may have.
    pub const MAX_SPEC_BYTES: usize = 16 * 1024;
    /// The actions, as written in a spec.
    pub const ACTIONS: [&str; 6] = ["remove", "blank", "xout", "url", "url-list", "pem"];
    /// The optional third word of a rule: skip members whose key is a product key
    /// (contains `openshift.io/`, `k8s.io/` or `kubernetes.io/`).
    pub const EXCEPT_PRODUCT_KEYS: &str = "except-product-keys";
    /// The key fragments that make a key a product key (the Insights Operator's
    /// `isProductNamespacedKey`).
    pub const PRODUCT_KEY_MARKERS: [&str; 3] = ["openshift.io/", "k8s.io/", "kubernetes.io/"];
}

/// Log levels for the `log` host function. Warnings and errors also land in the report.
pub mod level {
    /// Debug detail, host log only.
    pub const DEBUG: i32 = 0;
    /// Informational, host log only.
    pub const INFO: i32 = 1;
    /// Added to the gatherer's `warnings` in gathers.json.
    pub const WARN: i32 = 2;
    /// Added to the gatherer's `errors` in gathers.json.
    pub const ERROR: i32 = 3;
    /// A guest panic message; recorded as the report's `panic`.
    pub const PANIC: i32 = 4;
}

/// Default limits; operators can override each per module.
pub mod limits {
    /// Linear memory cap.
    pub const MEMORY_BYTES: u64 = 64 * 1024 * 1024;
    /// CPU budget per period, in wasmi fuel units (about one per instruction).
    pub const FUEL: u64 = 20_000_000_000;
    /// Wall-clock deadline per gatherer per period.
    pub const DEADLINE_SECS: u64 = 60;
    /// Response body cap.
    pub const RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
    /// Per-request timeout (also bounded by the deadline).
    pub const REQUEST_TIMEOUT_SECS: u64 = 30;
    /// Requests per gatherer per period.
    pub const REQUESTS: u32 = 10_000;
    /// Response handles open at once.
    pub const OPEN_RESPONSES: usize = 16;
    /// Record bytes one gatherer may emit per period: its share of the archive.
    pub const RECORD_BYTES: u64 = 16 * 1024 * 1024;
    /// Uncompressed archive size cap, shared by all gatherers (as in the Insights Operator).
    pub const ARCHIVE_BYTES: u64 = 24 * 1024 * 1024;
    /// Maximum bytes in one path segment of a record name.
    pub const RECORD_SEGMENT_BYTES: usize = 255;
    /// Maximum bytes in a whole record name.
    pub const RECORD_NAME_BYTES: usize = 1024;
    /// Longest `list_emit` record name template; a longer one is `BAD_ARGUMENT` (its
    /// expansions could never be valid record names, and each would cost host work).
    pub const TEMPLATE_BYTES: usize = 4 * RECORD_NAME_BYTES;
    /// Host memory one gatherer's open handles may hold together: response bodies, list
    /// pages and their projections. A request or page past it is refused with `LIMIT`.
    pub const HANDLE_BYTES: u64 = 64 * 1024 * 1024;
    /// Fuel charged per byte of work the host does for a guest (receiving and parsing a
    /// response or page, building a projection, rendering and compressing a record, logging).
    pub const HOST_WORK_FUEL_PER_BYTE: u64 = 4;
    /// Log bytes one gatherer may write to the host log per period.
    pub const LOG_BYTES: u64 = 1024 * 1024;
    /// Log lines one gatherer may write to the host log per period.
    pub const LOG_LINES: u64 = 10_000;
    /// Longest log message kept; the rest is cut.
    pub const LOG_LINE_BYTES: usize = 8 * 1024;
    /// Longest guest-derived string (a record name, template, path, header name) quoted in a
    /// report entry or a host log line; longer ones end in `…(N bytes)`.
    pub const QUOTE_BYTES: usize = 256;
    /// Longest report entry (one warning or error, or the panic message).
    pub const REPORT_ENTRY_BYTES: usize = 1024;
    /// Most entries in each of a report's `warnings` and `errors`.
    pub const REPORT_ENTRIES: usize = 200;
    /// Most bytes in all of one report's `warnings` and `errors` together.
    pub const REPORT_BYTES: usize = 64 * 1024;
    /// Most bytes of `insights-operator/gathers.json`; past it, reports are trimmed.
    pub const GATHERS_JSON_BYTES: usize = 4 * 1024 * 1024;
}
