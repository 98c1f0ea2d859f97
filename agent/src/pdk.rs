//! The host functions gatherers import from `gather` (ABI v1, see `hostapi/ABI.md`), and the
//! per-run state they work on. Lifecycle (loading, limits, the deadline) is in `sandbox.rs`.
//!
//! Every pointer/length pair is bounds-checked against guest memory and answered with
//! `BAD_POINTER`, never a host crash. The host never calls back into the guest: results are
//! copied into buffers the guest owns ("if it does not fit, nothing is written and the
//! needed size is returned").

use std::sync::Arc;
use std::time::Instant;

use hostapi::abi::{level, limits as abi_limits, list as abi_list, status};
use hostapi::{Manifest, Request, Response};
use wasmi::{Caller, Extern, Linker};

use crate::archive::{ArchiveWriter, RecordError};
use crate::policy::{self, BridgeError, Decision, ModulePolicy};
use crate::limits::{GuestLimiter, Limits};
use crate::text;

pub(crate) mod list;

/// Something that can answer a gatherer's allowed requests (the kube bridge, or a fake).
pub trait Api: Send + Sync {
    /// Sends `req`, reading at most `cap` body bytes, giving up at `deadline`.
    fn send(&self, gatherer: &str, req: &Request, cap: u64, deadline: Instant) -> Result<Response, BridgeError>;
}

impl Api for policy::Bridge {
    fn send(&self, gatherer: &str, req: &Request, cap: u64, deadline: Instant) -> Result<Response, BridgeError> {
        self.send_blocking(gatherer, req, cap, deadline)
    }
}

/// What one run produced, besides records: fed into the gatherer's status report.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    /// Warnings (guest `warn`, policy denials, duplicates).
    pub warnings: Vec<String>,
    /// Errors (guest `error`, refused records).
    pub errors: Vec<String>,
    /// The guest's panic message, if it panicked.
    pub panic: Option<String>,
    /// Records accepted into the archive.
    pub records: u64,
    /// Bytes of records accepted.
    pub bytes_emitted: u64,
    /// REST requests made (allowed or denied).
    pub requests: u64,
    /// Requests the policy denied.
    pub policy_denials: u64,
    /// Entries dropped because the report was full.
    pub dropped_entries: u64,
    /// Bytes of the dropped entries (as cut to `REPORT_ENTRY_BYTES`).
    pub dropped_bytes: u64,
    /// Bytes held in `warnings` and `errors` together.
    pub entry_bytes: usize,
    /// The guest's linear memory at the end of the run: its high-water mark, since wasm
    /// memory never shrinks (0 for a native run, which has no linear memory).
    pub guest_memory_bytes: u64,
}

impl RunReport {
    /// Cuts `msg` to one entry's size, then keeps it if the list has room in both entries
    /// (`REPORT_ENTRIES` per list) and bytes (`REPORT_BYTES` per report); else counts it.
    fn push(&mut self, errors: bool, msg: &str) {
        let msg = text::clip(msg, abi_limits::REPORT_ENTRY_BYTES);
        let list = if errors { &self.errors } else { &self.warnings };
        if list.len() < abi_limits::REPORT_ENTRIES && self.entry_bytes + msg.len() <= abi_limits::REPORT_BYTES {
            self.entry_bytes += msg.len();
            let list = if errors { &mut self.errors } else { &mut self.warnings };
            list.push(msg.into_owned());
        } else {
            self.dropped_entries += 1;
            self.dropped_bytes += msg.len() as u64;
        }
    }

    /// Adds a warning (bounded).
    pub fn warn(&mut self, msg: String) {
        self.push(false, &msg);
    }

    /// Adds an error (bounded).
    pub fn error(&mut self, msg: String) {
        self.push(true, &msg);
    }

    /// Records `msg` as the panic message unless one is already set (cut like an entry).
    pub fn set_panic(&mut self, msg: &str) {
        if self.panic.is_none() {
            self.panic = Some(text::clip(msg, abi_limits::REPORT_ENTRY_BYTES).into_owned());
        }
    }

    /// The closing note when entries were dropped: `N more warnings/errors (M bytes) were
    /// dropped (report cap)`.
    pub fn dropped_note(&self) -> Option<String> {
        (self.dropped_entries > 0).then(|| {
            format!("{} more warnings/errors ({} bytes) were dropped (report cap)", self.dropped_entries, self.dropped_bytes)
        })
    }
}

struct OpenResponse {
    response: Response,
    read: usize,
}

/// A list being read page by page (`list_open`): its current page and where the next one starts.
struct OpenList {
    /// Host memory the current page holds: its items plus the projection.
    held: u64,
    /// The list's path, without the paging parameters the host adds.
    path: String,
    fields: list::Fields,
    strip_managed_fields: bool,
    /// The guest's redaction spec (`list_redact`), applied to every item `list_emit` writes.
    redaction: Option<crate::redaction::Spec>,
    /// The current page's items; empty unless the page was a 2xx list.
    items: Vec<Box<serde_json::value::RawValue>>,
    /// Whether the current page was a 2xx list (so `list_emit` has items to emit).
    listed: bool,
    /// The continue token of the next page; `None` when the list is complete.
    next: Option<String>,
    /// The current page as the guest reads it: the projection, or the API's error body.
    page: OpenResponse,
}

enum Handle {
    Response(OpenResponse),
    List(Box<OpenList>),
}

impl Handle {
    /// Host memory this handle holds, counted against `handleBytes`.
    fn held(&self) -> u64 {
        match self {
            Handle::Response(r) => r.response.body.len() as u64,
            Handle::List(l) => l.held,
        }
    }

    /// What `response_*` functions read: a response, or a list's current page.
    fn current(&mut self) -> &mut OpenResponse {
        match self {
            Handle::Response(r) => r,
            Handle::List(l) => &mut l.page,
        }
    }
}

/// The partial lines a guest has written to its stdout and stderr (WASI `fd_write`), kept
/// until a newline or the end of the run makes them a log message.
#[derive(Debug, Default)]
pub struct StdioLines {
    /// fd 1.
    pub(crate) stdout: Vec<u8>,
    /// fd 2.
    pub(crate) stderr: Vec<u8>,
}

/// Everything the host functions of one gatherer run can touch.
pub struct HostState {
    /// The gatherer's name (from its manifest), used in logs and messages.
    pub gatherer: String,
    manifest: Arc<Manifest>,
    policy: ModulePolicy,
    api: Arc<dyn Api>,
    archive: Arc<ArchiveWriter>,
    config: Vec<u8>,
    limits: Limits,
    /// When the run must end, whatever the guest is doing.
    pub deadline: Instant,
    /// Open responses and lists by handle. Handles are never reused, so a stale handle is
    /// BAD_HANDLE rather than someone else's response.
    handles: std::collections::BTreeMap<i32, Handle>,
    next_handle: i32,
    /// What the run produced.
    pub report: RunReport,
    /// Memory accounting for the store.
    pub limiter: GuestLimiter,
    /// Log bytes and lines written so far against the log budget.
    log_used: (u64, u64),
    /// Whether the log budget was hit: later messages are dropped.
    log_exhausted: bool,
    /// Fuel owed for host work done since the last charge, collected by the wasm import
    /// that did the work (`charge_work`). Native runs never collect it.
    work_fuel: u64,
    /// Fuel owed beyond what was left in the current slice, collected by the sandbox from
    /// the total budget before the next slice.
    pub(crate) fuel_debt: u64,
    /// Fuel the sandbox has given the run so far (slices plus collected debt).
    pub(crate) fuel_added: u64,
    /// Partial lines a WASI guest wrote to stdout and stderr (`wasi.rs` turns whole lines
    /// into log messages).
    pub stdio: StdioLines,
}

impl HostState {
    /// State for one run of `manifest`'s module.
    pub fn new(
        manifest: Arc<Manifest>,
        policy: ModulePolicy,
        api: Arc<dyn Api>,
        archive: Arc<ArchiveWriter>,
        config: Vec<u8>,
        limits: Limits,
    ) -> Self {
        HostState {
            gatherer: manifest.name.clone(),
            deadline: Instant::now() + limits.deadline(),
            limiter: GuestLimiter::new(limits.memory_bytes as usize),
            manifest,
            policy,
            api,
            archive,
            config,
            limits,
            handles: Default::default(),
            next_handle: 1,
            report: RunReport::default(),
            log_used: (0, 0),
            log_exhausted: false,
            work_fuel: 0,
            fuel_debt: 0,
            fuel_added: 0,
            stdio: Default::default(),
        }
    }

    /// Counts `bytes` of host work (parsing, projecting, rendering, compressing, logging)
    /// to be charged to the guest as fuel.
    fn work(&mut self, bytes: usize) {
        self.work_fuel = self.work_fuel.saturating_add((bytes as u64).saturating_mul(abi_limits::HOST_WORK_FUEL_PER_BYTE));
    }

    /// Host memory all open handles hold.
    fn held_bytes(&self) -> u64 {
        self.handles.values().map(Handle::held).sum()
    }

    /// `log`: writes the host log and, for warn/error/panic, the report, within the
    /// gatherer's log budget (`logBytes`, `logLines`). Past the budget a message is dropped,
    /// except that the first panic message still becomes the report's `panic`. The message
    /// is cut to `LOG_LINE_BYTES` and its control characters escaped, so it stays one line.
    pub fn log(&mut self, lvl: i32, msg: &str) {
        let msg = text::floor(msg, abi_limits::LOG_LINE_BYTES);
        self.work(msg.len());
        if lvl >= level::PANIC {
            self.report.set_panic(msg);
        }
        if self.log_exhausted {
            return;
        }
        self.log_used.0 += msg.len() as u64;
        self.log_used.1 += 1;
        if self.log_used.0 > self.limits.log_bytes || self.log_used.1 > self.limits.log_lines {
            self.log_exhausted = true;
            let note = format!(
                "log budget of {} bytes / {} lines reached; further log messages are dropped",
                self.limits.log_bytes, self.limits.log_lines
            );
            tracing::warn!(gatherer = %self.gatherer, "{note}");
            // Once per run and short: it is kept even when the report is full.
            self.report.entry_bytes += note.len();
            self.report.warnings.push(note);
            return;
        }
        let line = text::clip(msg, abi_limits::LOG_LINE_BYTES);
        let g = self.gatherer.as_str();
        match lvl {
            level::DEBUG => tracing::debug!(gatherer = g, "{line}"),
            level::INFO => tracing::info!(gatherer = g, "{line}"),
            level::WARN => {
                tracing::warn!(gatherer = g, "{line}");
                self.report.warn(msg.to_owned());
            }
            level::ERROR => {
                tracing::error!(gatherer = g, "{line}");
                self.report.error(msg.to_owned());
            }
            _ => tracing::error!(gatherer = g, "panic: {line}"),
        }
    }

    /// `config`: the module's config JSON (empty for none).
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// `request`, once its arguments are out of guest memory: checks them (method, path,
    /// body size), then the limits and the policy, then sends it. Returns a response handle
    /// or a status.
    pub fn request(&mut self, req: Request) -> i32 {
        self.work(req.path.len() + req.body.len());
        if !valid_method(&req.method) || !valid_path(&req.path) {
            return status::BAD_ARGUMENT;
        }
        if req.body.len() as u64 > self.limits.response_bytes {
            return status::TOO_LARGE;
        }
        match self.fetch(&req, true) {
            Ok(response) => self.open(Handle::Response(OpenResponse { response, read: 0 })),
            Err(code) => code,
        }
    }

    /// The request limit, the open-handle limit (when `new_handle`), the policy, then the
    /// API: what every request, page or not, goes through.
    fn fetch(&mut self, req: &Request, new_handle: bool) -> Result<Response, i32> {
        let path = text::clip(&req.path, abi_limits::QUOTE_BYTES);
        if self.report.requests >= u64::from(self.limits.max_requests) {
            self.report.error(format!("request limit of {} per period reached; {} {path} refused", self.limits.max_requests, req.method));
            return Err(status::LIMIT);
        }
        if new_handle && (self.handles.len() >= hostapi::abi::limits::OPEN_RESPONSES || self.next_handle == i32::MAX) {
            return Err(status::LIMIT);
        }
        // The body is received into host memory, so it must fit what the handle budget has left.
        let left = self.limits.handle_bytes.saturating_sub(self.held_bytes());
        if left == 0 {
            self.report.error(self.handle_budget_note(&req.method, &path));
            return Err(status::LIMIT);
        }
        self.report.requests += 1;
        let response = match policy::decide(&self.manifest, &self.policy, &req.method, &req.path) {
            Decision::Deny { status: code, reason } => {
                self.report.policy_denials += 1;
                let msg = format!("policy: {} {path} denied ({code}): {}", req.method, text::clip(&reason.to_string(), abi_limits::QUOTE_BYTES));
                tracing::warn!(gatherer = %self.gatherer, "{msg}");
                self.report.warn(msg);
                Ok(policy::denied_response(code, &reason))
            }
            Decision::Allow => {
                let deadline = self.deadline.min(Instant::now() + self.limits.request_timeout());
                let cap = self.limits.response_bytes.min(left);
                // A resource the Insights Operator anonymizes is always asked for as JSON (the
                // guest's `Accept` could ask for YAML, protobuf or a Table the rules cannot read).
                let anonymize = if req.method == "GET" { crate::anonymize::spec_for_path(&req.path) } else { None };
                let plain;
                let req = match anonymize {
                    Some(_) if !req.headers.is_empty() => {
                        plain = Request { headers: Vec::new(), ..req.clone() };
                        &plain
                    }
                    _ => req,
                };
                let sent = self.api.send(&self.gatherer, req, cap, deadline).map_err(|e| {
                    if matches!(e, BridgeError::TooLarge { .. }) && cap < self.limits.response_bytes {
                        self.report.error(self.handle_budget_note(&req.method, &path));
                        return status::LIMIT;
                    }
                    self.report.error(format!("{} {path}: {e}", req.method));
                    e.status()
                });
                match (sent, anonymize) {
                    (Ok(r), Some(spec)) if r.is_success() => self.anonymize(r, spec, &path),
                    (other, _) => other,
                }
            }
        };
        if let Ok(r) = &response {
            self.work(r.body.len());
        }
        response
    }

    /// The report error for a request refused because open handles hold too much.
    fn handle_budget_note(&self, method: &str, path: &str) -> String {
        format!(
            "{method} {path} refused: open handles hold {} bytes of host memory and the budget (handleBytes) is {}; close some",
            self.held_bytes(),
            self.limits.handle_bytes
        )
    }

    /// A 2xx response of a resource the Insights Operator anonymizes, with the host's rules
    /// applied ([`crate::anonymize`]) before the guest sees any of it. A body the rules cannot
    /// read is never handed over.
    fn anonymize(&mut self, mut response: Response, spec: &crate::redaction::Spec, path: &str) -> Result<Response, i32> {
        self.work(response.body.len());
        match spec.apply(&response.body) {
            Ok(body) => {
                self.work(body.len());
                response.body = body;
                Ok(response)
            }
            Err(e) => {
                self.report.error(format!("GET {path}: the response cannot be anonymized, so it is withheld: {e}"));
                Err(status::UNAVAILABLE)
            }
        }
    }

    /// `list_redact`: attaches a redaction spec to an open list; every item `list_emit` writes
    /// afterwards has it applied. An empty spec clears it. See ABI.md §5.14.
    pub fn list_redact(&mut self, handle: i32, spec: &str) -> i32 {
        self.work(spec.len());
        let parsed = match crate::redaction::Spec::parse(spec) {
            Ok(p) => p,
            Err(e) => {
                self.report.error(format!("list_redact: {e}"));
                return status::BAD_ARGUMENT;
            }
        };
        let Some(Handle::List(open)) = self.handles.get_mut(&handle) else { return status::BAD_HANDLE };
        open.redaction = (!parsed.is_empty()).then_some(parsed);
        status::OK
    }

    /// `record_redact`: like `record`, but `data` must be JSON and `spec` is applied to it
    /// before it is written. See ABI.md §5.14.
    pub fn record_redact(&mut self, name: &str, data: &[u8], spec: &str) -> i32 {
        self.work(spec.len());
        let parsed = match crate::redaction::Spec::parse(spec) {
            Ok(p) => p,
            Err(e) => {
                self.report.error(format!("record {} refused: {e}", text::quote(name)));
                return status::BAD_ARGUMENT;
            }
        };
        if hostapi::record::validate_name(name).is_err() {
            // `record` reports the rule the name breaks.
            return self.record(name, data);
        }
        self.work(data.len());
        match parsed.apply(data) {
            Ok(redacted) => {
                self.work(redacted.len());
                self.record(name, &redacted)
            }
            Err(e) => {
                self.report.error(format!("record {} refused: {e}", text::quote(name)));
                status::BAD_ARGUMENT
            }
        }
    }

    /// `now`: milliseconds since the Unix epoch, by the host's clock.
    pub fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }

    fn open(&mut self, handle: Handle) -> i32 {
        let h = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(h, handle);
        h
    }

    fn response(&mut self, handle: i32) -> Option<&mut OpenResponse> {
        self.handles.get_mut(&handle).map(Handle::current)
    }

    /// `response_status`: the HTTP status, or `BAD_HANDLE`.
    pub fn response_status(&mut self, handle: i32) -> i32 {
        self.response(handle).map_or(status::BAD_HANDLE, |r| i32::from(r.response.status))
    }

    /// `response_size`: the total body length, or `BAD_HANDLE`.
    pub fn response_size(&mut self, handle: i32) -> i64 {
        self.response(handle).map_or(i64::from(status::BAD_HANDLE), |r| r.response.body.len() as i64)
    }

    /// `response_header`: a forwarded header's value (`BAD_HANDLE`, `NOT_FOUND`).
    pub fn response_header(&mut self, handle: i32, name: &str) -> Result<String, i32> {
        let r = self.response(handle).ok_or(status::BAD_HANDLE)?;
        r.response.header(name).map(str::to_owned).ok_or(status::NOT_FOUND)
    }

    /// `response_read` without the copy: the next at most `len` unread body bytes. The
    /// cursor moves only with [`HostState::response_advance`], once they are delivered.
    pub fn response_chunk(&mut self, handle: i32, len: usize) -> Result<&[u8], i32> {
        let r = self.response(handle).ok_or(status::BAD_HANDLE)?;
        let end = r.read.saturating_add(len).min(r.response.body.len());
        Ok(&r.response.body[r.read..end])
    }

    /// Moves a handle's read cursor past `n` delivered bytes.
    pub fn response_advance(&mut self, handle: i32, n: usize) {
        if let Some(r) = self.response(handle) {
            r.read = (r.read + n).min(r.response.body.len());
        }
    }

    /// The status and the unread body of a handle's current response, read to the end (what a
    /// native guest gets instead of `response_status` + `response_size` + `response_read`).
    pub fn response_body(&mut self, handle: i32) -> Result<(u16, Vec<u8>), i32> {
        let r = self.response(handle).ok_or(status::BAD_HANDLE)?;
        let body = r.response.body[r.read..].to_vec();
        r.read = r.response.body.len();
        Ok((r.response.status, body))
    }

    /// `response_close`: frees a response or list handle.
    pub fn response_close(&mut self, handle: i32) -> i32 {
        match self.handles.remove(&handle) {
            Some(_) => status::OK,
            None => status::BAD_HANDLE,
        }
    }

    /// `record`: one record into the archive; an ABI status.
    pub fn record(&mut self, name: &str, data: &[u8]) -> i32 {
        // The name was copied out of guest memory and is now checked: host work either way.
        self.work(name.len());
        let quota = self.limits.record_bytes;
        // A bad name is BAD_NAME whatever the quota (ABI.md §5.12's order); the archive checks it.
        let name_ok = hostapi::record::validate_name(name).is_ok();
        if name_ok && self.report.bytes_emitted.saturating_add(data.len() as u64) > quota {
            let left = quota.saturating_sub(self.report.bytes_emitted);
            let msg = format!(
                "record {} ({} bytes) dropped: the module's record quota of {quota} bytes is reached ({left} bytes left)",
                text::quote(name),
                data.len()
            );
            tracing::warn!(gatherer = %self.gatherer, "{msg}");
            self.report.error(msg);
            return status::ARCHIVE_FULL;
        }
        let result = self.archive.add(name, data);
        match result {
            Ok(()) => {
                // Compressed into the archive: host work the guest pays for (scanned once more
                // when networking obfuscation is on).
                self.work(data.len());
                if self.archive.obfuscating() {
                    self.work(data.len());
                }
                self.report.records += 1;
                self.report.bytes_emitted += data.len() as u64;
                status::OK
            }
            Err(e) => {
                let code = e.status();
                let msg = record_error_message(&e, name);
                tracing::warn!(gatherer = %self.gatherer, "{msg}");
                match &e {
                    RecordError::Duplicate { .. } => self.report.warn(msg),
                    _ => self.report.error(msg),
                }
                code
            }
        }
    }

    /// `list_open`: checks the arguments, fetches the first page of `path` and returns a
    /// list handle (or a status). See ABI.md §5.13.
    pub fn list_open(&mut self, path: &str, fields: &str, flags: i32) -> i32 {
        self.work(path.len() + fields.len());
        if !valid_path(path) || list::check_path(path).is_err() {
            return status::BAD_ARGUMENT;
        }
        let Ok(fields) = list::Fields::parse(fields) else { return status::BAD_ARGUMENT };
        if flags & !abi_list::KNOWN_FLAGS != 0 {
            return status::BAD_ARGUMENT;
        }
        let req = Request::get(list::page_path(path, None));
        let response = match self.fetch(&req, true) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let mut open = Box::new(OpenList {
            held: 0,
            path: path.to_owned(),
            fields,
            strip_managed_fields: flags & abi_list::STRIP_MANAGED_FIELDS != 0,
            redaction: None,
            items: Vec::new(),
            listed: false,
            next: None,
            page: OpenResponse { response: Response::default(), read: 0 },
        });
        if let Err(code) = self.set_page(&mut open, &req, response) {
            return code;
        }
        self.open(Handle::List(open))
    }

    /// `list_next`: 0 when the list is complete, else fetches the next page and returns its
    /// HTTP status (or a status code, leaving the current page in place).
    pub fn list_next(&mut self, handle: i32) -> i32 {
        let Some(Handle::List(open)) = self.handles.get_mut(&handle) else { return status::BAD_HANDLE };
        let Some(next) = open.next.clone() else { return 0 };
        let req = Request::get(list::page_path(&open.path, Some(&next)));
        let response = match self.fetch(&req, false) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let Some(Handle::List(mut open)) = self.handles.remove(&handle) else { unreachable!("checked above") };
        let result = self.set_page(&mut open, &req, response);
        self.handles.insert(handle, Handle::List(open));
        match result {
            Ok(code) => code,
            Err(code) => code,
        }
    }

    /// Makes `response` the list's current page; its HTTP status, or `BAD_ARGUMENT` when a
    /// 2xx body is not a list (the list then ends).
    /// The projection is bounded while it is built: by the response cap (`TOO_LARGE`) and by
    /// what the handle budget leaves once the page's items are held (`LIMIT`); either ends
    /// the list, leaving the previous page readable. `open` is not among the handles while
    /// this runs, so what it still holds (the previous projection) is counted here.
    fn set_page(&mut self, open: &mut OpenList, req: &Request, response: Response) -> Result<i32, i32> {
        let code = i32::from(response.status);
        open.items = Vec::new();
        open.listed = false;
        open.next = None;
        open.held = open.page.response.body.len() as u64;
        if !response.is_success() {
            open.held = response.body.len() as u64;
            open.page = OpenResponse { response, read: 0 };
            return Ok(code);
        }
        let path = text::clip(&req.path, abi_limits::QUOTE_BYTES).into_owned();
        self.work(response.body.len());
        let page = list::parse_page(&response.body).map_err(|e| {
            self.report.error(format!("{} {path}: {}", req.method, text::clip(&e, abi_limits::QUOTE_BYTES)));
            status::BAD_ARGUMENT
        })?;
        drop(response.body);
        let items_bytes: u64 = page.items.iter().map(|i| i.get().len() as u64).sum();
        let held = self.held_bytes().saturating_add(open.held);
        let left = self.limits.handle_bytes.saturating_sub(held.saturating_add(items_bytes));
        let cap = self.limits.response_bytes.min(left);
        let body = match open.fields.project(&page.items, cap as usize) {
            Ok(body) => body,
            Err(e) => {
                let (code, what) = if cap < self.limits.response_bytes {
                    (status::LIMIT, format!("the host memory left for open handles (handleBytes {})", self.limits.handle_bytes))
                } else {
                    (status::TOO_LARGE, format!("the response cap (responseBytes {})", self.limits.response_bytes))
                };
                self.work(e.built);
                self.report.error(format!("{} {path}: the projection exceeds {what}; the list ends", req.method));
                return Err(code);
            }
        };
        self.work(body.len());
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        open.held = items_bytes + body.len() as u64;
        open.page = OpenResponse { response: Response { status: response.status, headers, body }, read: 0 };
        open.items = page.items;
        open.next = page.next;
        open.listed = true;
        Ok(code)
    }

    /// `list_emit`: writes item `index` of the list's current page (or every item, for
    /// `ALL_ITEMS`) as a record named by `template`. One item: the record's status. All
    /// items: how many were accepted; refusals are reported as for `record`.
    pub fn list_emit(&mut self, handle: i32, index: i32, template: &str) -> i32 {
        self.work(template.len());
        // Every expansion would be longer than a record name may be: refused before any work.
        if template.len() > abi_limits::TEMPLATE_BYTES {
            self.report.error(format!(
                "record name template {} refused: longer than {} bytes",
                text::quote(template),
                abi_limits::TEMPLATE_BYTES
            ));
            return status::BAD_ARGUMENT;
        }
        let Ok(tpl) = list::Template::parse(template) else { return status::BAD_ARGUMENT };
        let Some(Handle::List(open)) = self.handles.get_mut(&handle) else { return status::BAD_HANDLE };
        if !open.listed {
            return status::BAD_ARGUMENT;
        }
        let range = match index {
            abi_list::ALL_ITEMS => 0..open.items.len(),
            i if i >= 0 && (i as usize) < open.items.len() => i as usize..i as usize + 1,
            _ => return status::BAD_ARGUMENT,
        };
        let strip = open.strip_managed_fields;
        let redaction = open.redaction.take();
        // Borrowed out while records are written (which needs `self`), then put back.
        let items = std::mem::take(&mut open.items);
        let mut accepted = 0;
        let mut last = status::OK;
        for item in &items[range] {
            let (mut data, meta) = list::render_item(item, strip);
            self.work(data.len());
            if let Some(spec) = &redaction {
                // The item was valid JSON in the page, and so is what `render_item` made of it.
                if let Ok(redacted) = spec.apply(&data) {
                    data = redacted;
                    self.work(data.len());
                }
            }
            last = match tpl.expand(&meta) {
                Ok(expanded) => {
                    let code = self.record(&expanded.name, &data);
                    // Only once accepted: a refused name is reported (capped) by `record`.
                    if let (status::OK, Some(warning)) = (code, expanded.warning()) {
                        self.report.warn(warning);
                    }
                    code
                }
                Err(e) => {
                    self.report.error(format!("record from template {} refused: {e}", text::quote(template)));
                    status::BAD_NAME
                }
            };
            accepted += i32::from(last == status::OK);
        }
        if let Some(Handle::List(open)) = self.handles.get_mut(&handle) {
            open.items = items;
            open.redaction = redaction;
        }
        if index == abi_list::ALL_ITEMS { accepted } else { last }
    }
}

/// The report entry for a refused record, quoting `name` cut to `QUOTE_BYTES` (the error's
/// own text would quote all of it).
fn record_error_message(e: &RecordError, name: &str) -> String {
    let q = text::quote(name);
    match e {
        RecordError::BadName { source, .. } => format!("record {q} refused: {source}"),
        RecordError::Duplicate { .. } => format!("record {q} already exists; the first one was kept"),
        RecordError::ArchiveFull { size, remaining, .. } => {
            format!("record {q} ({size} bytes) dropped: archive size cap reached ({remaining} bytes left)")
        }
        RecordError::Io { source, .. } => format!("record {q} lost: writing the archive failed: {source}"),
        RecordError::ShadowsDirectory { .. } => {
            format!("record {q} refused: the archive already has records under {}/, so it cannot also be a file", q)
        }
        RecordError::UnderFile { file, .. } => {
            format!("record {q} refused: {} is already a record (a file), so it cannot also be a directory", text::quote(file))
        }
        #[allow(unreachable_patterns)]
        _ => text::clip(&e.to_string(), abi_limits::REPORT_ENTRY_BYTES).into_owned(),
    }
}

/// 1–16 ASCII upper-case letters.
fn valid_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase())
}

/// 1–8192 bytes (the policy judges the rest).
fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.len() <= 8192
}

/// Whether `[ptr, ptr+len)` lies inside guest memory.
fn in_bounds(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> bool {
    let Some(memory) = caller.get_export(hostapi::abi::MEMORY).and_then(Extern::into_memory) else {
        return false;
    };
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    start.checked_add(len).is_some_and(|end| end <= memory.data_size(caller))
}

/// The guest memory, once `[ptr, ptr+len)` is known to lie inside it (else `BAD_POINTER`),
/// for host functions that read or write it in place.
fn checked_memory(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Result<wasmi::Memory, i32> {
    if !in_bounds(caller, ptr, len) {
        return Err(status::BAD_POINTER);
    }
    caller.get_export(hostapi::abi::MEMORY).and_then(Extern::into_memory).ok_or(status::BAD_POINTER)
}

/// Copies `len` bytes at `ptr` out of guest memory, or `None` if out of bounds.
fn read_guest(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.get_export(hostapi::abi::MEMORY).and_then(Extern::into_memory)?;
    let data = memory.data(caller);
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
}

/// Copies `bytes` into guest memory at `ptr`, or returns `false` if out of bounds.
fn write_guest(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(memory) = caller.get_export(hostapi::abi::MEMORY).and_then(Extern::into_memory) else {
        return false;
    };
    let data = memory.data_mut(caller);
    let start = ptr as u32 as usize;
    match start.checked_add(bytes.len()).and_then(|end| data.get_mut(start..end)) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn read_str(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Result<String, i32> {
    let bytes = read_guest(caller, ptr, len).ok_or(status::BAD_POINTER)?;
    String::from_utf8(bytes).map_err(|_| status::BAD_ARGUMENT)
}

/// Charges the host work the last call did to the guest's total fuel budget, as a debt the
/// sandbox collects before the next slice. When the debt takes the run past its budget, the
/// slice is emptied so the guest stops at its next instruction (kind `fuel`).
///
/// The slice is not drawn down otherwise: wasmi also takes fuel to compile a function on its
/// first call, and an emptied slice there would end the run even within budget.
fn charge_work(caller: &mut Caller<'_, HostState>) {
    let owed = std::mem::take(&mut caller.data_mut().work_fuel);
    if owed == 0 {
        return;
    }
    let left = caller.get_fuel().unwrap_or(0);
    let state = caller.data_mut();
    state.fuel_debt = state.fuel_debt.saturating_add(owed);
    let used = state.fuel_added.saturating_sub(left).saturating_add(state.fuel_debt);
    if used >= state.limits.fuel {
        let _ = caller.set_fuel(0);
    }
}

/// "Fits → write and return the size; does not fit → write nothing, return the size needed."
fn copy_out(caller: &mut Caller<'_, HostState>, bytes: &[u8], buf: i32, buf_len: i32) -> i32 {
    // The buffer must be valid even when nothing is written: a bad pointer is always reported.
    if !in_bounds(caller, buf, buf_len) {
        return status::BAD_POINTER;
    }
    let needed = bytes.len() as i32;
    if bytes.len() > buf_len as u32 as usize {
        return needed;
    }
    if write_guest(caller, buf, bytes) { needed } else { status::BAD_POINTER }
}

/// The host functions, ready to instantiate modules against. Each one only moves bytes in
/// and out of guest memory; the work is done by the [`HostState`] method of the same name,
/// which the native host (`native.rs`) calls too.
pub fn linker(engine: &wasmi::Engine) -> Linker<HostState> {
    let m = hostapi::abi::IMPORT_MODULE;
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(m, "log", |mut caller: Caller<'_, HostState>, lvl: i32, ptr: i32, len: i32| -> i32 {
            if !in_bounds(&caller, ptr, len) {
                return status::BAD_POINTER;
            }
            if !(level::DEBUG..=level::PANIC).contains(&lvl) {
                return status::BAD_ARGUMENT;
            }
            let len = (len as u32).min(abi_limits::LOG_LINE_BYTES as u32) as i32;
            let Some(bytes) = read_guest(&caller, ptr, len) else { return status::BAD_POINTER };
            let msg = String::from_utf8_lossy(&bytes).into_owned();
            caller.data_mut().log(lvl, &msg);
            charge_work(&mut caller);
            status::OK
        })
        .expect("log is defined once");
    linker
        .func_wrap(m, "config", |mut caller: Caller<'_, HostState>, buf: i32, len: i32| -> i32 {
            let config = caller.data().config().to_vec();
            copy_out(&mut caller, &config, buf, len)
        })
        .expect("config is defined once");
    linker
        .func_wrap(
            m,
            "request",
            |mut caller: Caller<'_, HostState>, mp: i32, ml: i32, pp: i32, pl: i32, hp: i32, hl: i32, bp: i32, bl: i32| -> i32 {
                // Read and checked in ABI order, so the first bad argument decides the status.
                let method = match read_str(&caller, mp, ml) {
                    Ok(m) if valid_method(&m) => m,
                    Ok(_) => return status::BAD_ARGUMENT,
                    Err(code) => return code,
                };
                let path = match read_str(&caller, pp, pl) {
                    Ok(p) if valid_path(&p) => p,
                    Ok(_) => return status::BAD_ARGUMENT,
                    Err(code) => return code,
                };
                let headers = match read_str(&caller, hp, hl) {
                    Ok(h) => match Request::parse_headers(&h) {
                        Some(h) => h,
                        None => return status::BAD_ARGUMENT,
                    },
                    Err(code) => return code,
                };
                if bl as u32 as u64 > caller.data().limits.response_bytes {
                    return status::TOO_LARGE;
                }
                let Some(body) = read_guest(&caller, bp, bl) else { return status::BAD_POINTER };
                let code = caller.data_mut().request(Request { method, path, headers, body });
                charge_work(&mut caller);
                code
            },
        )
        .expect("request is defined once");
    linker
        .func_wrap(m, "response_status", |mut caller: Caller<'_, HostState>, h: i32| -> i32 {
            caller.data_mut().response_status(h)
        })
        .expect("response_status is defined once");
    linker
        .func_wrap(m, "response_size", |mut caller: Caller<'_, HostState>, h: i32| -> i64 {
            caller.data_mut().response_size(h)
        })
        .expect("response_size is defined once");
    linker
        .func_wrap(
            m,
            "response_header",
            |mut caller: Caller<'_, HostState>, h: i32, np: i32, nl: i32, buf: i32, bl: i32| -> i32 {
                let name = match read_str(&caller, np, nl) {
                    Ok(n) => n,
                    Err(code) => return code,
                };
                match caller.data_mut().response_header(h, &name) {
                    Ok(value) => copy_out(&mut caller, value.as_bytes(), buf, bl),
                    Err(code) => code,
                }
            },
        )
        .expect("response_header is defined once");
    linker
        .func_wrap(m, "response_read", |mut caller: Caller<'_, HostState>, h: i32, buf: i32, len: i32| -> i32 {
            let memory = match checked_memory(&caller, buf, len) {
                Ok(m) => m,
                Err(code) => return code,
            };
            // Guest memory and host state are disjoint borrows of the store: copy straight
            // from the response into the guest, with no intermediate buffer.
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let chunk = match state.response_chunk(h, len as u32 as usize) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let start = buf as u32 as usize;
            let n = chunk.len();
            match data.get_mut(start..start + n) {
                Some(dst) => dst.copy_from_slice(chunk),
                None => return status::BAD_POINTER,
            }
            state.response_advance(h, n);
            n as i32
        })
        .expect("response_read is defined once");
    linker
        .func_wrap(m, "response_close", |mut caller: Caller<'_, HostState>, h: i32| -> i32 {
            caller.data_mut().response_close(h)
        })
        .expect("response_close is defined once");
    linker
        .func_wrap(m, "record", |mut caller: Caller<'_, HostState>, np: i32, nl: i32, dp: i32, dl: i32| -> i32 {
            let name = match read_str(&caller, np, nl) {
                Ok(n) => n,
                Err(status::BAD_ARGUMENT) => return status::BAD_NAME,
                Err(code) => return code,
            };
            let memory = match checked_memory(&caller, dp, dl) {
                Ok(m) => m,
                Err(code) => return code,
            };
            // The record is compressed straight out of guest memory, with no copy.
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let start = dp as u32 as usize;
            let code = state.record(&name, &data[start..start + dl as u32 as usize]);
            charge_work(&mut caller);
            code
        })
        .expect("record is defined once");
    linker
        .func_wrap(
            m,
            "list_open",
            |mut caller: Caller<'_, HostState>, pp: i32, pl: i32, fp: i32, fl: i32, flags: i32| -> i32 {
                let path = match read_str(&caller, pp, pl) {
                    Ok(p) => p,
                    Err(code) => return code,
                };
                let fields = match read_str(&caller, fp, fl) {
                    Ok(f) => f,
                    Err(code) => return code,
                };
                let code = caller.data_mut().list_open(&path, &fields, flags);
                charge_work(&mut caller);
                code
            },
        )
        .expect("list_open is defined once");
    linker
        .func_wrap(m, "list_next", |mut caller: Caller<'_, HostState>, h: i32| -> i32 {
            let code = caller.data_mut().list_next(h);
            charge_work(&mut caller);
            code
        })
        .expect("list_next is defined once");
    linker
        .func_wrap(m, "list_emit", |mut caller: Caller<'_, HostState>, h: i32, index: i32, np: i32, nl: i32| -> i32 {
            let template = match read_str(&caller, np, nl) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let code = caller.data_mut().list_emit(h, index, &template);
            charge_work(&mut caller);
            code
        })
        .expect("list_emit is defined once");
    linker
        .func_wrap(m, "list_redact", |mut caller: Caller<'_, HostState>, h: i32, sp: i32, sl: i32| -> i32 {
            let spec = match read_spec(&caller, sp, sl) {
                Ok(s) => s,
                Err(code) => return refuse_spec(&mut caller, code, sl),
            };
            let code = caller.data_mut().list_redact(h, &spec);
            charge_work(&mut caller);
            code
        })
        .expect("list_redact is defined once");
    linker
        .func_wrap(
            m,
            "record_redact",
            |mut caller: Caller<'_, HostState>, np: i32, nl: i32, dp: i32, dl: i32, sp: i32, sl: i32| -> i32 {
                let name = match read_str(&caller, np, nl) {
                    Ok(n) => n,
                    Err(status::BAD_ARGUMENT) => return status::BAD_NAME,
                    Err(code) => return code,
                };
                let memory = match checked_memory(&caller, dp, dl) {
                    Ok(m) => m,
                    Err(code) => return code,
                };
                let spec = match read_spec(&caller, sp, sl) {
                    Ok(s) => s,
                    Err(code) => return refuse_spec(&mut caller, code, sl),
                };
                let (data, state) = memory.data_and_store_mut(&mut caller);
                let start = dp as u32 as usize;
                let code = state.record_redact(&name, &data[start..start + dl as u32 as usize], &spec);
                charge_work(&mut caller);
                code
            },
        )
        .expect("record_redact is defined once");
    linker
        .func_wrap(m, "now", |caller: Caller<'_, HostState>| -> i64 { caller.data().now_ms() })
        .expect("now is defined once");
    linker
}

/// `code` for a spec [`read_spec`] refused, with a report error saying why when the spec itself
/// is at fault.
fn refuse_spec(caller: &mut Caller<'_, HostState>, code: i32, len: i32) -> i32 {
    if code == status::BAD_ARGUMENT {
        let len = len as u32 as usize;
        let why = if len > hostapi::abi::redact::MAX_SPEC_BYTES {
            format!("redaction spec is {len} bytes (max {})", hostapi::abi::redact::MAX_SPEC_BYTES)
        } else {
            "redaction spec is not UTF-8".to_owned()
        };
        caller.data_mut().report.error(why);
    }
    code
}

/// A redaction spec out of guest memory: `BAD_POINTER`, or `BAD_ARGUMENT` when it is over
/// `MAX_SPEC_BYTES` (checked before it is copied) or not UTF-8.
fn read_spec(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Result<String, i32> {
    if !in_bounds(caller, ptr, len) {
        return Err(status::BAD_POINTER);
    }
    if len as u32 as usize > hostapi::abi::redact::MAX_SPEC_BYTES {
        return Err(status::BAD_ARGUMENT);
    }
    read_str(caller, ptr, len)
}

/// Every import ABI v1 provides, with its signature as (params, results) value types.
pub fn import_signatures() -> Vec<(&'static str, Vec<wasmi::ValType>, Vec<wasmi::ValType>)> {
    use wasmi::ValType::{I32, I64};
    vec![
        ("log", vec![I32, I32, I32], vec![I32]),
        ("config", vec![I32, I32], vec![I32]),
        ("request", vec![I32; 8], vec![I32]),
        ("response_status", vec![I32], vec![I32]),
        ("response_size", vec![I32], vec![I64]),
        ("response_header", vec![I32; 5], vec![I32]),
        ("response_read", vec![I32; 3], vec![I32]),
        ("response_close", vec![I32], vec![I32]),
        ("record", vec![I32; 4], vec![I32]),
        // Added to ABI 1 as optional imports (ABI.md §5.13).
        ("list_open", vec![I32; 5], vec![I32]),
        ("list_next", vec![I32], vec![I32]),
        ("list_emit", vec![I32; 4], vec![I32]),
        // Added to ABI 1 as optional imports (ABI.md §5.14).
        ("list_redact", vec![I32; 3], vec![I32]),
        ("record_redact", vec![I32; 6], vec![I32]),
        ("now", vec![], vec![I64]),
    ]
}
