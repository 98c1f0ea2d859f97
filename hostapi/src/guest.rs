//! The Rust guest SDK: safe wrappers over the `gather` host imports and the [`gatherer!`]
//! macro that declares a module's manifest and entry point.
//!
//! Gatherer crates use only this module's safe API; the `unsafe` glue lives here, once.
//! Big lists are best left to the host: [`emit_list`] writes every item of a list as a record
//! without the items entering the guest, and [`List`] pages through a list showing the guest
//! only the fields it decides on.
//! Built for `wasm32-unknown-unknown` it calls the host imports. Built natively it calls a
//! [`NativeHost`] installed with [`with_native_host`], so the same gatherer source runs
//! without wasm (for quick tests and as a performance baseline).

#![allow(unsafe_code)]

use serde_json::Value;

use crate::abi::{level, status};
use crate::http::{Request, Response, FORWARDED_RESPONSE_HEADERS};
use crate::record::{shorten_name, validate_name, NameError};

/// What can go wrong in a gatherer's host calls.
#[derive(Debug)]
pub enum Error {
    /// A host function returned a negative status code.
    Host {
        /// Which call.
        call: &'static str,
        /// The ABI status code (see [`crate::abi::status`]).
        code: i32,
    },
    /// The API answered with a non-2xx status.
    Status {
        /// The request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The `Status` message, when the body has one.
        message: String,
    },
    /// A body was not the JSON expected.
    Json(String),
    /// A record name broke the naming rules.
    Name(NameError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Host { call, code } => write!(f, "{call} failed: {} ({code})", status::name(*code)),
            Error::Status { path, status, message } => write!(f, "GET {path}: HTTP {status}: {message}"),
            Error::Json(e) => write!(f, "invalid JSON: {e}"),
            Error::Name(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Whether this is the refusal of one record (a bad name, a duplicate, the archive full),
    /// already reported in the gatherer's report by the host or the SDK. A gatherer should
    /// skip that record and go on with the next (see [`skip_refused`]).
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Name(_) => true,
            Error::Host { call: "record" | "list_emit", code } => {
                matches!(*code, status::BAD_NAME | status::DUPLICATE | status::ARCHIVE_FULL)
            }
            _ => false,
        }
    }
}

/// Turns the refusal of one record ([`Error::is_refusal`], already reported) into `Ok(false)`,
/// so one item that cannot be recorded never stops a gatherer; `Ok(true)` when it was
/// recorded. Other errors pass through.
///
/// ```ignore
/// for obj in objects {
///     guest::skip_refused(guest::record_json(&format!("config/x/{}.json", guest::name_of(&obj)), obj))?;
/// }
/// ```
pub fn skip_refused(result: Result<()>) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.is_refusal() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Result type for gatherer code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The host as seen by a gatherer built natively (see [`with_native_host`]).
pub trait NativeHost {
    /// `log` host function.
    fn log(&mut self, level: i32, msg: &str);
    /// The module's config JSON (empty when none).
    fn config(&mut self) -> Vec<u8>;
    /// Makes a request; `Err` carries an ABI status code.
    fn request(&mut self, req: &Request) -> Result<Response, i32>;
    /// Emits a record; returns an ABI status code.
    fn record(&mut self, name: &str, data: &[u8]) -> i32;
    /// `list_open`: fetches the first page of `path`; a handle, or an ABI status code.
    /// `fields` is the wire form: projection pointers joined by `\n`.
    fn list_open(&mut self, path: &str, fields: &str, flags: i32) -> i32;
    /// `list_next`: 0 when the list is complete, else the next page's HTTP status (or a status code).
    fn list_next(&mut self, handle: i32) -> i32;
    /// `list_emit`: emits item `index` (or every item, for [`crate::abi::list::ALL_ITEMS`]).
    fn list_emit(&mut self, handle: i32, index: i32, template: &str) -> i32;
    /// The HTTP status and whole body of a handle's current response (what `response_status`,
    /// `response_size` and `response_read` give a wasm guest).
    fn response_body(&mut self, handle: i32) -> Result<(u16, Vec<u8>), i32>;
    /// `response_close`.
    fn response_close(&mut self, handle: i32) -> i32;
    /// `list_redact`: attaches a redaction spec (its wire form) to an open list.
    fn list_redact(&mut self, handle: i32, spec: &str) -> i32;
    /// `record_redact`: emits a JSON record with a redaction spec applied; an ABI status.
    fn record_redact(&mut self, name: &str, data: &[u8], spec: &str) -> i32;
    /// `now`: milliseconds since the Unix epoch.
    fn now_ms(&mut self) -> i64;
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use std::cell::RefCell;

    use super::NativeHost;
    use crate::http::{Request, Response};

    thread_local! {
        pub(super) static HOST: RefCell<Option<Box<dyn NativeHost>>> = RefCell::new(None);
    }

    fn with<R>(f: impl FnOnce(&mut dyn NativeHost) -> R) -> R {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            let host = h.as_mut().expect("no NativeHost installed: run native gatherers inside with_native_host");
            f(host.as_mut())
        })
    }

    pub fn log(level: i32, msg: &str) {
        with(|h| h.log(level, msg))
    }
    pub fn config() -> Vec<u8> {
        with(|h| h.config())
    }
    pub fn request(req: &Request) -> Result<Response, i32> {
        with(|h| h.request(req))
    }
    pub fn record(name: &str, data: &[u8]) -> i32 {
        with(|h| h.record(name, data))
    }
    pub fn list_open(path: &str, fields: &str, flags: i32) -> i32 {
        with(|h| h.list_open(path, fields, flags))
    }
    pub fn list_next(handle: i32) -> i32 {
        with(|h| h.list_next(handle))
    }
    pub fn list_emit(handle: i32, index: i32, template: &str) -> i32 {
        with(|h| h.list_emit(handle, index, template))
    }
    pub fn response_body(handle: i32) -> Result<(u16, Vec<u8>), i32> {
        with(|h| h.response_body(handle))
    }
    pub fn response_close(handle: i32) -> i32 {
        with(|h| h.response_close(handle))
    }
    pub fn list_redact(handle: i32, spec: &str) -> i32 {
        with(|h| h.list_redact(handle, spec))
    }
    pub fn record_redact(name: &str, data: &[u8], spec: &str) -> i32 {
        with(|h| h.record_redact(name, data, spec))
    }
    pub fn now_ms() -> i64 {
        with(|h| h.now_ms())
    }

    /// Reports a panic message to this thread's host; `false` when there is none to tell
    /// (or it is busy: the panic happened inside a host call).
    pub fn log_panic(msg: &str) -> bool {
        HOST.try_with(|h| match h.try_borrow_mut() {
            Ok(mut h) => match h.as_mut() {
                Some(host) => {
                    host.log(crate::abi::level::PANIC, msg);
                    true
                }
                None => false,
            },
            Err(_) => false,
        })
        .unwrap_or(false)
    }
}

/// Runs `f` with `host` serving the SDK's calls on this thread, then returns the host.
#[cfg(not(target_arch = "wasm32"))]
pub fn with_native_host<R>(host: Box<dyn NativeHost>, f: impl FnOnce() -> R) -> (R, Box<dyn NativeHost>) {
    backend::HOST.with(|h| *h.borrow_mut() = Some(host));
    let r = f();
    let host = backend::HOST.with(|h| h.borrow_mut().take()).expect("host still installed");
    (r, host)
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use crate::abi::status;
    use crate::http::{Request, Response, FORWARDED_RESPONSE_HEADERS};

    #[link(wasm_import_module = "gather")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn sys_log(level: i32, ptr: *const u8, len: usize) -> i32;
        #[link_name = "config"]
        fn sys_config(buf: *mut u8, len: usize) -> i32;
        #[link_name = "request"]
        fn sys_request(m: *const u8, ml: usize, p: *const u8, pl: usize, h: *const u8, hl: usize, b: *const u8, bl: usize) -> i32;
        #[link_name = "response_status"]
        fn sys_response_status(handle: i32) -> i32;
        #[link_name = "response_header"]
        fn sys_response_header(handle: i32, name: *const u8, nl: usize, buf: *mut u8, bl: usize) -> i32;
        #[link_name = "response_size"]
        fn sys_response_size(handle: i32) -> i64;
        #[link_name = "response_read"]
        fn sys_response_read(handle: i32, buf: *mut u8, len: usize) -> i32;
        #[link_name = "response_close"]
        fn sys_response_close(handle: i32) -> i32;
        #[link_name = "record"]
        fn sys_record(name: *const u8, nl: usize, data: *const u8, dl: usize) -> i32;
        #[link_name = "list_open"]
        fn sys_list_open(p: *const u8, pl: usize, f: *const u8, fl: usize, flags: i32) -> i32;
        #[link_name = "list_next"]
        fn sys_list_next(handle: i32) -> i32;
        #[link_name = "list_emit"]
        fn sys_list_emit(handle: i32, index: i32, name: *const u8, nl: usize) -> i32;
        #[link_name = "list_redact"]
        fn sys_list_redact(handle: i32, spec: *const u8, sl: usize) -> i32;
        #[link_name = "record_redact"]
        fn sys_record_redact(name: *const u8, nl: usize, data: *const u8, dl: usize, spec: *const u8, sl: usize) -> i32;
        #[link_name = "now"]
        fn sys_now() -> i64;
    }

    pub fn log(level: i32, msg: &str) {
        // SAFETY: the pointer/length pair describes a live &str for the duration of the call.
        unsafe { sys_log(level, msg.as_ptr(), msg.len()) };
    }

    pub fn config() -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: buf is a writable region of buf.len() bytes; the host writes at most that.
            let n = unsafe { sys_config(buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return Vec::new();
            }
            let n = n as usize;
            if n <= buf.len() {
                buf.truncate(n);
                return buf;
            }
            buf = vec![0u8; n];
        }
    }

    fn header(handle: i32, name: &str) -> Option<String> {
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: name and buf are live, correctly sized regions.
            let n = unsafe { sys_response_header(handle, name.as_ptr(), name.len(), buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return None;
            }
            let n = n as usize;
            if n <= buf.len() {
                buf.truncate(n);
                return String::from_utf8(buf).ok();
            }
            buf = vec![0u8; n];
        }
    }

    pub fn request(req: &Request) -> Result<Response, i32> {
        let headers = req.headers_wire();
        // SAFETY: every pointer/length pair describes a live, immutable byte region.
        let handle = unsafe {
            sys_request(
                req.method.as_ptr(), req.method.len(),
                req.path.as_ptr(), req.path.len(),
                headers.as_ptr(), headers.len(),
                req.body.as_ptr(), req.body.len(),
            )
        };
        if handle < 0 {
            return Err(handle);
        }
        let (status_code, body) = match response_body(handle) {
            Ok(r) => r,
            Err(code) => {
                response_close(handle);
                return Err(code);
            }
        };
        let headers = FORWARDED_RESPONSE_HEADERS
            .iter()
            .filter_map(|h| header(handle, h).map(|v| (h.to_string(), v)))
            .collect();
        response_close(handle);
        Ok(Response { status: status_code, headers, body })
    }

    /// Reads a handle's status and whole body (the read cursor must be at the start).
    pub fn response_body(handle: i32) -> Result<(u16, Vec<u8>), i32> {
        // SAFETY: plain integer calls on a handle the host gave us.
        let status_code = unsafe { sys_response_status(handle) };
        let size = unsafe { sys_response_size(handle) };
        if status_code < 0 || size < 0 {
            return Err(status::BAD_HANDLE);
        }
        let mut body = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < body.len() {
            let rest = &mut body[filled..];
            // SAFETY: rest is a writable region of rest.len() bytes.
            let n = unsafe { sys_response_read(handle, rest.as_mut_ptr(), rest.len()) };
            if n < 0 {
                return Err(n);
            }
            if n == 0 {
                break;
            }
            filled += n as usize;
        }
        body.truncate(filled);
        Ok((status_code as u16, body))
    }

    pub fn response_close(handle: i32) -> i32 {
        // SAFETY: closing a handle; the host checks it.
        unsafe { sys_response_close(handle) }
    }

    pub fn record(name: &str, data: &[u8]) -> i32 {
        // SAFETY: both regions are live for the call.
        unsafe { sys_record(name.as_ptr(), name.len(), data.as_ptr(), data.len()) }
    }

    pub fn list_open(path: &str, fields: &str, flags: i32) -> i32 {
        // SAFETY: both regions are live, immutable strings.
        unsafe { sys_list_open(path.as_ptr(), path.len(), fields.as_ptr(), fields.len(), flags) }
    }

    pub fn list_next(handle: i32) -> i32 {
        // SAFETY: a plain integer call.
        unsafe { sys_list_next(handle) }
    }

    pub fn list_emit(handle: i32, index: i32, template: &str) -> i32 {
        // SAFETY: the template is a live, immutable string.
        unsafe { sys_list_emit(handle, index, template.as_ptr(), template.len()) }
    }

    pub fn list_redact(handle: i32, spec: &str) -> i32 {
        // SAFETY: the spec is a live, immutable string.
        unsafe { sys_list_redact(handle, spec.as_ptr(), spec.len()) }
    }

    pub fn record_redact(name: &str, data: &[u8], spec: &str) -> i32 {
        // SAFETY: the three regions are live for the call.
        unsafe { sys_record_redact(name.as_ptr(), name.len(), data.as_ptr(), data.len(), spec.as_ptr(), spec.len()) }
    }

    pub fn now_ms() -> i64 {
        // SAFETY: no arguments.
        unsafe { sys_now() }
    }
}

/// Logs at debug level (host log only).
pub fn debug(msg: impl AsRef<str>) {
    backend::log(level::DEBUG, msg.as_ref())
}

/// Logs at info level (host log only).
pub fn log(msg: impl AsRef<str>) {
    backend::log(level::INFO, msg.as_ref())
}

/// Adds a warning to this gatherer's report in gathers.json.
pub fn warn(msg: impl AsRef<str>) {
    backend::log(level::WARN, msg.as_ref())
}

/// Adds an error to this gatherer's report in gathers.json (the gatherer keeps running).
pub fn error(msg: impl AsRef<str>) {
    backend::log(level::ERROR, msg.as_ref())
}

/// This module's config as JSON (`Value::Null` when the operator set none).
pub fn config() -> Value {
    let bytes = backend::config();
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Sends `req` through the host. Any HTTP status is `Ok`; only transport failures are `Err`.
pub fn request(req: &Request) -> Result<Response> {
    backend::request(req).map_err(|code| Error::Host { call: "request", code })
}

/// GETs `path` (with optional query). A 404 is `Ok` with status 404: the caller decides.
pub fn get(path: &str) -> Result<Response> {
    request(&Request::get(path))
}

fn status_error(path: &str, resp: &Response) -> Error {
    Error::Status {
        path: path.to_owned(),
        status: resp.status,
        message: resp.status_message().unwrap_or_else(|| String::from_utf8_lossy(&resp.body).chars().take(200).collect()),
    }
}

/// GETs `path` and parses the body; non-2xx statuses become [`Error::Status`].
pub fn get_json<T: serde::de::DeserializeOwned>(path: &str) -> Result<T> {
    let resp = get(path)?;
    if !resp.is_success() {
        return Err(status_error(path, &resp));
    }
    serde_json::from_slice(&resp.body).map_err(|e| Error::Json(format!("GET {path}: {e}")))
}

/// Lists every item at `path`, following `limit`/`continue` pages of 500.
///
/// Holds the whole list in guest memory and parses it in the guest: fine for tens of objects;
/// for big lists use [`emit_list`] or [`List`], which leave the bulk work to the host.
pub fn list_all(path: &str) -> Result<Vec<Value>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page_path = match &token {
            Some(t) => format!("{path}{sep}limit=500&continue={}", encode(t)),
            None => format!("{path}{sep}limit=500"),
        };
        let mut page: Value = get_json(&page_path)?;
        if let Some(Value::Array(batch)) = page.get_mut("items").map(Value::take) {
            items.extend(batch);
        }
        token = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// Emits every item listed at `path` as a record named from `template` (`{name}` and
/// `{namespace}` are the item's), without `metadata.managedFields`; returns how many records
/// were accepted.
///
/// The host pages through the list and writes the records itself (ABI §5.13): the items never
/// enter the gatherer, so this costs the same in wasm as natively and memory stays bounded by
/// one page. A record the archive refuses (bad name, duplicate, size cap) is reported by the
/// host and skipped; a segment over 255 bytes is shortened (ABI.md §7) with a warning; a
/// non-2xx page ends the list with [`Error::Status`].
///
/// ```ignore
/// guest::emit_list("/api/v1/nodes", "config/node/{name}.json")?;
/// ```
pub fn emit_list(path: &str, template: &str) -> Result<u64> {
    let mut list = List::open(path, &[])?;
    let mut emitted = 0;
    // Only the pages' statuses are looked at: the items stay in the host.
    while list.advance()?.is_some() {
        match backend::list_emit(list.handle, crate::abi::list::ALL_ITEMS, template) {
            code if code < 0 => return Err(Error::Host { call: "list_emit", code }),
            n => emitted += n as u64,
        }
    }
    Ok(emitted)
}

/// [`emit_list`] with `redaction` applied by the host to every item before it is written
/// (ABI §5.14): the items never enter the gatherer, and neither do their redacted values.
///
/// ```ignore
/// let r = guest::Redaction::new().xout("/spec/providerID");
/// guest::emit_list_redacted("/apis/machine.openshift.io/v1beta1/machines", "config/machines/{namespace}/{name}.json", &r)?;
/// ```
pub fn emit_list_redacted(path: &str, template: &str, redaction: &Redaction) -> Result<u64> {
    let mut list = List::open(path, &[])?;
    list.redact(redaction)?;
    let mut emitted = 0;
    while list.advance()?.is_some() {
        match backend::list_emit(list.handle, crate::abi::list::ALL_ITEMS, template) {
            code if code < 0 => return Err(Error::Host { call: "list_emit", code }),
            n => emitted += n as u64,
        }
    }
    Ok(emitted)
}

/// A redaction spec (ABI §5.14), built rule by rule: each rule applies an action to what a
/// JSON Pointer reaches in a record, where a `*` segment stands for every element or member.
///
/// ```ignore
/// let r = guest::Redaction::new()
///     .xout("/status/nodeInfo/bootID")
///     .remove("/status/images")
///     .xout_except_product_keys("/metadata/labels/*");
/// guest::record_json_redacted("config/node/x.json", &node, &r)?;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    rules: Vec<String>,
}

impl Redaction {
    /// No rules.
    pub fn new() -> Self {
        Redaction::default()
    }

    fn rule(mut self, action: &str, pointer: &str, except_product_keys: bool) -> Self {
        let except = if except_product_keys { " except-product-keys" } else { "" };
        self.rules.push(format!("{action} {pointer}{except}"));
        self
    }

    /// Deletes the member or element.
    pub fn remove(self, pointer: &str) -> Self {
        self.rule("remove", pointer, false)
    }

    /// A string becomes `""`, any other value `null`.
    pub fn blank(self, pointer: &str) -> Self {
        self.rule("blank", pointer, false)
    }

    /// A string becomes as many `x` as it has bytes; other values are left alone.
    pub fn xout(self, pointer: &str) -> Self {
        self.rule("xout", pointer, false)
    }

    /// Every character of a string but `.`, `-`, `/` and `:` becomes `x`.
    pub fn url(self, pointer: &str) -> Self {
        self.rule("url", pointer, false)
    }

    /// A comma-separated list of URLs (or an array of them), each as [`Redaction::url`].
    pub fn url_list(self, pointer: &str) -> Self {
        self.rule("url-list", pointer, false)
    }

    /// A value made only of PEM blocks keeps one empty certificate block per block.
    pub fn pem(self, pointer: &str) -> Self {
        self.rule("pem", pointer, false)
    }

    /// [`Redaction::blank`], except members whose key (matched by the pointer's last `*`)
    /// contains `openshift.io/`, `k8s.io/` or `kubernetes.io/`.
    pub fn blank_except_product_keys(self, pointer: &str) -> Self {
        self.rule("blank", pointer, true)
    }

    /// [`Redaction::xout`], except members whose key (matched by the pointer's last `*`)
    /// contains `openshift.io/`, `k8s.io/` or `kubernetes.io/`.
    pub fn xout_except_product_keys(self, pointer: &str) -> Self {
        self.rule("xout", pointer, true)
    }

    /// The spec's wire form: one rule per line.
    pub fn spec(&self) -> String {
        self.rules.join("\n")
    }
}

/// Milliseconds since the Unix epoch, by the host's clock (for time-based rules such as
/// "pending for more than 2 minutes").
pub fn now_ms() -> i64 {
    backend::now_ms()
}

/// A list read page by page through the host, seeing only projections of its items
/// (ABI §5.13). Closed on drop.
///
/// ```ignore
/// let mut pods = guest::List::open("/api/v1/pods", &["/metadata/namespace", "/status/phase"])?;
/// while let Some(page) = pods.next_page()? {
///     for pod in page.items() {
///         if pod["/status/phase"] == "Failed" {
///             // `false` when this pod was refused (reported by the host): go on.
///             pod.emit("config/pod/{namespace}/{name}.json")?;
///         }
///     }
/// }
/// ```
pub struct List {
    handle: i32,
    path: String,
    fields: Vec<String>,
    /// Whether the page fetched by `list_open` is still to be handed out.
    first: bool,
}

impl List {
    /// Opens the list at `path` (its first page is fetched now). Each field is a JSON Pointer
    /// into an item (`/status/phase`), where a `*` segment takes every element of an array
    /// (`/status/containerStatuses/*/restartCount`).
    pub fn open(path: &str, fields: &[&str]) -> Result<List> {
        let wire = fields.join("\n");
        let handle = backend::list_open(path, &wire, crate::abi::list::STRIP_MANAGED_FIELDS);
        if handle < 0 {
            return Err(Error::Host { call: "list_open", code: handle });
        }
        let path = path.to_owned();
        Ok(List { handle, path, fields: fields.iter().map(|f| (*f).to_owned()).collect(), first: true })
    }

    /// Has the host apply `redaction` to every item [`Item::emit`] or [`Page::emit_all`]
    /// writes from now on (replacing an earlier one; an empty one clears it). A bad spec is
    /// reported by the host and is an error here.
    pub fn redact(&mut self, redaction: &Redaction) -> Result<()> {
        match backend::list_redact(self.handle, &redaction.spec()) {
            status::OK => Ok(()),
            code => Err(Error::Host { call: "list_redact", code }),
        }
    }

    /// The next page, or `None` when the list is complete. A non-2xx page is [`Error::Status`].
    pub fn next_page(&mut self) -> Result<Option<Page<'_>>> {
        let Some(body) = self.advance()? else { return Ok(None) };
        let rows: Vec<Vec<Value>> =
            serde_json::from_slice(&body).map_err(|e| Error::Json(format!("list {}: {e}", self.path)))?;
        Ok(Some(Page { list: self, rows }))
    }

    /// Moves to the next page; its projection body, or `None` when the list is complete.
    fn advance(&mut self) -> Result<Option<Vec<u8>>> {
        if !std::mem::take(&mut self.first) {
            match backend::list_next(self.handle) {
                0 => return Ok(None),
                code if code < 0 => return Err(Error::Host { call: "list_next", code }),
                _ => {}
            }
        }
        let (status_code, body) =
            backend::response_body(self.handle).map_err(|code| Error::Host { call: "response_read", code })?;
        let resp = Response { status: status_code, headers: Vec::new(), body };
        if !resp.is_success() {
            return Err(status_error(&self.path, &resp));
        }
        Ok(Some(resp.body))
    }
}

impl Drop for List {
    fn drop(&mut self) {
        backend::response_close(self.handle);
    }
}

/// One page of a [`List`]: the projections of its items.
pub struct Page<'a> {
    list: &'a List,
    rows: Vec<Vec<Value>>,
}

impl Page<'_> {
    /// Items on this page.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the page has no items.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The page's items, in list order.
    pub fn items(&self) -> impl Iterator<Item = Item<'_>> {
        self.rows.iter().enumerate().map(|(index, values)| Item { list: self.list, index, values })
    }

    /// Emits every item of the page (see [`emit_list`]); returns how many were accepted.
    pub fn emit_all(&self, template: &str) -> Result<u64> {
        match backend::list_emit(self.list.handle, crate::abi::list::ALL_ITEMS, template) {
            code if code < 0 => Err(Error::Host { call: "list_emit", code }),
            n => Ok(n as u64),
        }
    }
}

/// One item of a [`Page`]: the values of the list's fields, by field.
pub struct Item<'a> {
    list: &'a List,
    index: usize,
    values: &'a [Value],
}

impl Item<'_> {
    /// The value of `field` (one of the fields the list was opened with), or `null`.
    pub fn get(&self, field: &str) -> &Value {
        const NULL: &Value = &Value::Null;
        self.list.fields.iter().position(|f| f == field).and_then(|i| self.values.get(i)).unwrap_or(NULL)
    }

    /// Emits the whole item (as the API server sent it, without `metadata.managedFields`) as
    /// the record named by `template` (`{name}` and `{namespace}` are the item's). The item
    /// itself never enters the gatherer.
    ///
    /// `Ok(true)` when recorded; `Ok(false)` when the archive refused this one item (bad
    /// name, duplicate, size cap): the host has reported why, and the gatherer goes on with
    /// the next item. `Err` only for what affects every item (a bad template or handle).
    /// A segment over 255 bytes is shortened by the host (ABI.md §7), with a warning.
    pub fn emit(&self, template: &str) -> Result<bool> {
        let code = backend::list_emit(self.list.handle, self.index as i32, template);
        skip_refused(match code {
            status::OK => Ok(()),
            code => Err(Error::Host { call: "list_emit", code }),
        })
    }
}

impl std::ops::Index<&str> for Item<'_> {
    type Output = Value;
    fn index(&self, field: &str) -> &Value {
        self.get(field)
    }
}

/// Percent-encodes a query value (continue tokens are base64 and may hold `+`, `/`, `=`).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Emits a record into the period's archive.
///
/// A segment over 255 bytes (a long Kubernetes name plus `.json`) is shortened by the ABI's
/// rule ([`crate::record::shorten_name`], as the host does for templates) and logged as a
/// warning. A name that is still invalid is reported as an error and refused here, without
/// calling the host. A refusal ([`Error::is_refusal`]) concerns this record only: see
/// [`skip_refused`].
pub fn record(name: &str, data: impl AsRef<[u8]>) -> Result<()> {
    let name = checked_name(name)?;
    match backend::record(&name, data.as_ref()) {
        status::OK => Ok(()),
        code => Err(Error::Host { call: "record", code }),
    }
}

/// `name` shortened by the ABI's rule (with a warning) and checked (a refusal is reported).
fn checked_name(name: &str) -> Result<std::borrow::Cow<'_, str>> {
    let name = shorten_name(name);
    if let Err(e) = validate_name(&name) {
        // Quoted with a cap: the name may be any size.
        let shown: String = name.chars().take(200).collect();
        let more = if shown.len() < name.len() { format!("… ({} bytes)", name.len()) } else { String::new() };
        error(format!("record {shown:?}{more} refused: {e}"));
        return Err(Error::Name(e));
    }
    if let std::borrow::Cow::Owned(short) = &name {
        warn(format!(
            "record name shortened to {short:?}: a segment exceeded {} bytes (ABI.md §7)",
            crate::abi::limits::RECORD_SEGMENT_BYTES
        ));
    }
    Ok(name)
}

/// Emits `value` as a JSON record, without `metadata.managedFields` (noise the archive
/// does not need, often half an object's size).
pub fn record_json(name: &str, mut value: Value) -> Result<()> {
    strip_managed_fields(&mut value);
    record_json_raw(name, &value)
}

/// Emits any serializable value as a JSON record, unchanged.
pub fn record_json_raw(name: &str, value: &impl serde::Serialize) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Json(e.to_string()))?;
    record(name, bytes)
}

/// [`record_json`] with `redaction` applied by the host before the record is written (ABI
/// §5.14): `value` without `metadata.managedFields`, with the same name rules and the same
/// refusals ([`Error::is_refusal`], see [`skip_refused`]). A bad spec is an error (reported by
/// the host) that is not a refusal.
pub fn record_json_redacted(name: &str, value: &Value, redaction: &Redaction) -> Result<()> {
    let mut value = value.clone();
    strip_managed_fields(&mut value);
    let bytes = serde_json::to_vec(&value).map_err(|e| Error::Json(e.to_string()))?;
    let name = checked_name(name)?;
    match backend::record_redact(&name, &bytes, &redaction.spec()) {
        status::OK => Ok(()),
        code => Err(Error::Host { call: "record", code }),
    }
}

/// Removes `metadata.managedFields` in place.
pub fn strip_managed_fields(value: &mut Value) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// `metadata.name` of an object, or `""`.
pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// `metadata.namespace` of an object, or `""`.
pub fn namespace_of(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
}

/// Entry glue used by [`gatherer!`]: installs a panic hook that reports the panic message,
/// runs the gatherer, and turns its result into the ABI's return code.
#[doc(hidden)]
pub fn __run(run: fn() -> Result<()>) -> i32 {
    install_panic_hook();
    match run() {
        Ok(()) => 0,
        Err(e) => {
            error(e.to_string());
            1
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| backend::log(level::PANIC, &info.to_string())));
}

/// Natively the hook is process-wide and shared with the host program, so it is installed
/// once and hands panics on threads without a [`NativeHost`] to the previous hook.
#[cfg(not(target_arch = "wasm32"))]
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !backend::log_panic(&info.to_string()) {
                previous(info);
            }
        }));
    });
}

/// Copies a `&str` into a fixed-size array at compile time (for the manifest custom section).
#[doc(hidden)]
pub const fn __bytes<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The response headers a guest sees (re-exported for authors).
pub const RESPONSE_HEADERS: [&str; 4] = FORWARDED_RESPONSE_HEADERS;

/// Declares a gatherer: its manifest (custom section `gather.manifest`), the ABI marker
/// export and the `gather` entry point calling `run: fn() -> Result<()>`.
///
/// ```ignore
/// hostapi::gatherer! {
///     name: "nodes",
///     description: "Node objects",
///     reproduces: ["clusterconfig/nodes"], // optional: the Insights Operator functions
///     permissions: ["GET /api/v1/nodes"],
///     run: gather,
/// }
/// ```
/// The version is the crate's `Cargo.toml` version.
#[macro_export]
macro_rules! gatherer {
    (name: $name:literal, $(description: $desc:literal,)? $(reproduces: [$($io:literal),* $(,)?],)? permissions: [$($perm:literal),* $(,)?], run: $run:path $(,)?) => {
        /// This gatherer's manifest JSON, as stored in its `gather.manifest` section.
        pub const MANIFEST_JSON: &str = concat!(
            "{\"name\":\"", $name, "\",\"version\":\"", env!("CARGO_PKG_VERSION"),
            "\",\"abi\":1,\"description\":\"", $($desc,)? "\",\"reproduces\":[",
            $($crate::__gather_perms!($($io),*),)? "],\"permissions\":[",
            $crate::__gather_perms!($($perm),*), "]}"
        );

        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "gather.manifest")]
        #[used]
        static __GATHER_MANIFEST_SECTION: [u8; MANIFEST_JSON.len()] = $crate::guest::__bytes(MANIFEST_JSON);

        #[doc(hidden)]
        const __GATHER_RUN: fn() -> $crate::guest::Result<()> = $run;

        // In a module of its own so the export named `gather` cannot clash with the crate's items.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __gather_exports {
            /// ABI version marker export.
            #[unsafe(no_mangle)]
            pub extern "C" fn gather_abi_version_1() {}

            /// The entry point the host calls once per period.
            #[unsafe(no_mangle)]
            pub extern "C" fn gather() -> i32 {
                $crate::guest::__run(super::__GATHER_RUN)
            }
        }

        /// Runs the gatherer natively (inside `hostapi::guest::with_native_host`).
        #[cfg(not(target_arch = "wasm32"))]
        pub fn run_native() -> i32 {
            $crate::guest::__run(__GATHER_RUN)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __gather_perms {
    () => { "" };
    ($first:literal $(, $rest:literal)*) => { concat!("\"", $first, "\"" $(, ",\"", $rest, "\"")*) };
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::record::shorten_segment;

    /// Records what the SDK asked of the host; `record` refuses names in `refuse`.
    #[derive(Default, Clone)]
    struct Fake {
        calls: Arc<Mutex<Vec<(i32, String)>>>,
        refuse: Vec<&'static str>,
    }

    impl NativeHost for Fake {
        fn log(&mut self, level: i32, msg: &str) {
            self.calls.lock().unwrap().push((level, msg.to_owned()));
        }
        fn config(&mut self) -> Vec<u8> {
            Vec::new()
        }
        fn request(&mut self, _: &Request) -> Result<Response, i32> {
            Err(status::UNAVAILABLE)
        }
        fn record(&mut self, name: &str, _: &[u8]) -> i32 {
            self.calls.lock().unwrap().push((-1, name.to_owned()));
            if self.refuse.contains(&name) { status::DUPLICATE } else { status::OK }
        }
        fn list_open(&mut self, _: &str, _: &str, _: i32) -> i32 {
            status::UNAVAILABLE
        }
        fn list_next(&mut self, _: i32) -> i32 {
            status::BAD_HANDLE
        }
        fn list_emit(&mut self, _: i32, _: i32, _: &str) -> i32 {
            status::BAD_HANDLE
        }
        fn response_body(&mut self, _: i32) -> Result<(u16, Vec<u8>), i32> {
            Err(status::BAD_HANDLE)
        }
        fn response_close(&mut self, _: i32) -> i32 {
            status::BAD_HANDLE
        }
        fn list_redact(&mut self, _: i32, spec: &str) -> i32 {
            self.calls.lock().unwrap().push((-2, spec.to_owned()));
            status::OK
        }
        fn record_redact(&mut self, name: &str, data: &[u8], spec: &str) -> i32 {
            self.calls.lock().unwrap().push((-3, format!("{name}|{}|{spec}", String::from_utf8_lossy(data))));
            if self.refuse.contains(&name) { status::DUPLICATE } else { status::OK }
        }
        fn now_ms(&mut self) -> i64 {
            1_700_000_000_000
        }
    }

    #[test]
    fn record_shortens_a_long_segment_with_a_warning() {
        let fake = Fake::default();
        let calls = fake.calls.clone();
        let pod = format!("{}.json", "p".repeat(253));
        let (result, _) = with_native_host(Box::new(fake), || record(&format!("config/pod/ns/{pod}"), b"{}"));
        result.unwrap();
        let calls = calls.lock().unwrap();
        let short = format!("config/pod/ns/{}", shorten_segment(&pod));
        assert_eq!(calls.iter().filter(|(l, _)| *l == -1).map(|(_, n)| n.as_str()).collect::<Vec<_>>(), [short.as_str()]);
        assert!(calls.iter().any(|(l, m)| *l == level::WARN && m.contains("record name shortened to")), "{calls:?}");
    }

    #[test]
    fn redaction_builds_the_spec_wire_form() {
        let r = Redaction::new()
            .remove("/status/images")
            .blank("/a")
            .xout("/b")
            .url("/c")
            .url_list("/d")
            .pem("/data/*")
            .blank_except_product_keys("/metadata/annotations/*")
            .xout_except_product_keys("/metadata/labels/*");
        assert_eq!(
            r.spec(),
            "remove /status/images\nblank /a\nxout /b\nurl /c\nurl-list /d\npem /data/*\n\
             blank /metadata/annotations/* except-product-keys\nxout /metadata/labels/* except-product-keys"
        );
        assert_eq!(Redaction::new().spec(), "");
    }

    #[test]
    fn record_json_redacted_sends_the_spec_and_refuses_like_record_json() {
        let fake = Fake { refuse: vec!["dup"], ..Default::default() };
        let calls = fake.calls.clone();
        let node = serde_json::json!({"metadata": {"name": "n", "managedFields": [1]}, "id": "s"});
        let r = Redaction::new().xout("/id");
        let (results, _) = with_native_host(Box::new(fake), || {
            [
                skip_refused(record_json_redacted("ok", &node, &r)),
                skip_refused(record_json_redacted("dup", &node, &r)),
                skip_refused(record_json_redacted("a//b", &node, &r)),
            ]
        });
        let [ok, dup, bad] = results;
        assert_eq!((ok.unwrap(), dup.unwrap(), bad.unwrap()), (true, false, false));
        let calls = calls.lock().unwrap();
        let sent: Vec<&str> = calls.iter().filter(|(l, _)| *l == -3).map(|(_, m)| m.as_str()).collect();
        assert_eq!(sent, [r#"ok|{"metadata":{"name":"n"},"id":"s"}|xout /id"#, r#"dup|{"metadata":{"name":"n"},"id":"s"}|xout /id"#]);
        let (now, _) = with_native_host(Box::new(Fake::default()), now_ms);
        assert_eq!(now, 1_700_000_000_000);
    }

    #[test]
    fn a_refused_record_is_reported_and_skippable() {
        let fake = Fake { refuse: vec!["dup"], ..Default::default() };
        let calls = fake.calls.clone();
        let (results, _) = with_native_host(Box::new(fake), || {
            [skip_refused(record("dup", b"x")), skip_refused(record("a//b", b"x")), skip_refused(record("ok", b"x"))]
        });
        let [dup, bad, ok] = results;
        assert_eq!((dup.unwrap(), bad.unwrap(), ok.unwrap()), (false, false, true));
        let calls = calls.lock().unwrap();
        // The host never saw the bad name; the SDK reported it itself.
        assert!(!calls.iter().any(|(l, n)| *l == -1 && n == "a//b"));
        assert!(calls.iter().any(|(l, m)| *l == level::ERROR && m.contains("a//b") && m.contains("refused")), "{calls:?}");
        let other = Error::Host { call: "request", code: status::LIMIT };
        assert!(!other.is_refusal());
        assert!(skip_refused(Err(other)).is_err());
    }
}
