//! The host functions gatherers import from `gather` (ABI v1, see `hostapi/ABI.md`), and the
//! per-run state they work on. Lifecycle (loading, limits, the deadline) is in `sandbox.rs`.
//!
//! Every pointer/length pair is bounds-checked against guest memory and answered with
//! `BAD_POINTER`, never a host crash. The host never calls back into the guest: results are
//! copied into buffers the guest owns ("if it does not fit, nothing is written and the
//! needed size is returned").

use std::sync::Arc;
use std::time::Instant;

use hostapi::abi::{level, status};
use hostapi::{Manifest, Request, Response};
use wasmi::{Caller, Extern, Linker};

use crate::archive::{ArchiveWriter, RecordError};
use crate::policy::{self, BridgeError, Decision, ModulePolicy};
use crate::sandbox::Limits;

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

/// Report entries are capped so a hostile guest cannot grow the metadata without bound.
const MAX_REPORT_ENTRIES: usize = 200;
/// Longest log line kept.
const MAX_LOG_BYTES: usize = 8 * 1024;

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
}

impl RunReport {
    fn push(list: &mut Vec<String>, dropped: &mut u64, msg: String) {
        if list.len() < MAX_REPORT_ENTRIES {
            list.push(msg);
        } else {
            *dropped += 1;
        }
    }

    /// Adds a warning (bounded).
    pub fn warn(&mut self, msg: String) {
        Self::push(&mut self.warnings, &mut self.dropped_entries, msg);
    }

    /// Adds an error (bounded).
    pub fn error(&mut self, msg: String) {
        Self::push(&mut self.errors, &mut self.dropped_entries, msg);
    }
}

struct OpenResponse {
    response: Response,
    read: usize,
}

/// Tracks memory growth against the module's cap and remembers refusals, so a guest that
/// dies after `memory.grow` failed is reported as out of memory rather than a plain trap.
#[derive(Debug)]
pub struct GuestLimiter {
    memory_bytes: usize,
    /// Whether a growth was refused.
    pub refused: bool,
}

impl wasmi::ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool, wasmi_core::LimiterError> {
        let ok = desired <= self.memory_bytes;
        self.refused |= !ok;
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
    /// Open responses by handle. Handles are never reused, so a stale handle is BAD_HANDLE
    /// rather than someone else's response.
    responses: std::collections::BTreeMap<i32, OpenResponse>,
    next_handle: i32,
    /// What the run produced.
    pub report: RunReport,
    /// Memory accounting for the store.
    pub limiter: GuestLimiter,
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
            limiter: GuestLimiter { memory_bytes: limits.memory_bytes as usize, refused: false },
            manifest,
            policy,
            api,
            archive,
            config,
            limits,
            responses: Default::default(),
            next_handle: 1,
            report: RunReport::default(),
        }
    }

    fn log(&mut self, lvl: i32, msg: &str) {
        let g = self.gatherer.as_str();
        match lvl {
            level::DEBUG => tracing::debug!(gatherer = g, "{msg}"),
            level::INFO => tracing::info!(gatherer = g, "{msg}"),
            level::WARN => {
                tracing::warn!(gatherer = g, "{msg}");
                self.report.warn(msg.to_owned());
            }
            level::ERROR => {
                tracing::error!(gatherer = g, "{msg}");
                self.report.error(msg.to_owned());
            }
            _ => {
                tracing::error!(gatherer = g, "panic: {msg}");
                if self.report.panic.is_none() {
                    self.report.panic = Some(msg.to_owned());
                }
            }
        }
    }

    /// Policy check plus the API call; the returned value is a response handle or a status.
    fn request(&mut self, req: Request) -> i32 {
        if self.report.requests >= u64::from(self.limits.max_requests) {
            self.report.error(format!("request limit of {} per period reached; {} {} refused", self.limits.max_requests, req.method, req.path));
            return status::LIMIT;
        }
        if self.responses.len() >= hostapi::abi::limits::OPEN_RESPONSES || self.next_handle == i32::MAX {
            return status::LIMIT;
        }
        self.report.requests += 1;
        let response = match policy::decide(&self.manifest, &self.policy, &req.method, &req.path) {
            Decision::Deny { status: code, reason } => {
                self.report.policy_denials += 1;
                let msg = format!("policy: {} {} denied ({code}): {reason}", req.method, req.path);
                tracing::warn!(gatherer = %self.gatherer, "{msg}");
                self.report.warn(msg);
                policy::denied_response(code, &reason)
            }
            Decision::Allow => {
                let deadline = self.deadline.min(Instant::now() + self.limits.request_timeout());
                match self.api.send(&self.gatherer, &req, self.limits.response_bytes, deadline) {
                    Ok(r) => r,
                    Err(e) => {
                        let code = e.status();
                        self.report.error(format!("{} {}: {e}", req.method, req.path));
                        return code;
                    }
                }
            }
        };
        let handle = self.next_handle;
        self.next_handle += 1;
        self.responses.insert(handle, OpenResponse { response, read: 0 });
        handle
    }

    fn response(&mut self, handle: i32) -> Option<&mut OpenResponse> {
        self.responses.get_mut(&handle)
    }

    fn record(&mut self, name: &str, data: &[u8]) -> i32 {
        match self.archive.add(name, data) {
            Ok(()) => {
                self.report.records += 1;
                self.report.bytes_emitted += data.len() as u64;
                status::OK
            }
            Err(e) => {
                let code = e.status();
                match &e {
                    RecordError::Duplicate { .. } => self.report.warn(e.to_string()),
                    _ => self.report.error(e.to_string()),
                }
                tracing::warn!(gatherer = %self.gatherer, "{e}");
                code
            }
        }
    }
}

/// Whether `[ptr, ptr+len)` lies inside guest memory.
fn in_bounds(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> bool {
    let Some(memory) = caller.get_export(hostapi::abi::MEMORY).and_then(Extern::into_memory) else {
        return false;
    };
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    start.checked_add(len).is_some_and(|end| end <= memory.data_size(caller))
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

/// The host functions, ready to instantiate modules against.
pub fn linker(engine: &wasmi::Engine) -> Linker<HostState> {
    let m = hostapi::abi::IMPORT_MODULE;
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(m, "log", |caller: Caller<'_, HostState>, lvl: i32, ptr: i32, len: i32| -> i32 {
            if !in_bounds(&caller, ptr, len) {
                return status::BAD_POINTER;
            }
            if !(level::DEBUG..=level::PANIC).contains(&lvl) {
                return status::BAD_ARGUMENT;
            }
            let len = (len as u32).min(MAX_LOG_BYTES as u32) as i32;
            let Some(bytes) = read_guest(&caller, ptr, len) else { return status::BAD_POINTER };
            let msg = String::from_utf8_lossy(&bytes).into_owned();
            let mut caller = caller;
            caller.data_mut().log(lvl, &msg);
            status::OK
        })
        .expect("log is defined once");
    linker
        .func_wrap(m, "config", |mut caller: Caller<'_, HostState>, buf: i32, len: i32| -> i32 {
            let config = caller.data().config.clone();
            copy_out(&mut caller, &config, buf, len)
        })
        .expect("config is defined once");
    linker
        .func_wrap(
            m,
            "request",
            |mut caller: Caller<'_, HostState>, mp: i32, ml: i32, pp: i32, pl: i32, hp: i32, hl: i32, bp: i32, bl: i32| -> i32 {
                let method = match read_str(&caller, mp, ml) {
                    Ok(m) if !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase()) => m,
                    Ok(_) => return status::BAD_ARGUMENT,
                    Err(code) => return code,
                };
                let path = match read_str(&caller, pp, pl) {
                    Ok(p) if !p.is_empty() && p.len() <= 8192 => p,
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
                caller.data_mut().request(Request { method, path, headers, body })
            },
        )
        .expect("request is defined once");
    linker
        .func_wrap(m, "response_status", |mut caller: Caller<'_, HostState>, h: i32| -> i32 {
            caller.data_mut().response(h).map_or(status::BAD_HANDLE, |r| i32::from(r.response.status))
        })
        .expect("response_status is defined once");
    linker
        .func_wrap(m, "response_size", |mut caller: Caller<'_, HostState>, h: i32| -> i64 {
            caller.data_mut().response(h).map_or(i64::from(status::BAD_HANDLE), |r| r.response.body.len() as i64)
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
                let value = match caller.data_mut().response(h) {
                    None => return status::BAD_HANDLE,
                    Some(r) => match r.response.header(&name) {
                        Some(v) => v.as_bytes().to_vec(),
                        None => return status::NOT_FOUND,
                    },
                };
                copy_out(&mut caller, &value, buf, bl)
            },
        )
        .expect("response_header is defined once");
    linker
        .func_wrap(m, "response_read", |mut caller: Caller<'_, HostState>, h: i32, buf: i32, len: i32| -> i32 {
            if !in_bounds(&caller, buf, len) {
                return status::BAD_POINTER;
            }
            let chunk = match caller.data_mut().response(h) {
                None => return status::BAD_HANDLE,
                Some(r) => {
                    let end = r.read.saturating_add(len as u32 as usize).min(r.response.body.len());
                    r.response.body[r.read..end].to_vec()
                }
            };
            if chunk.is_empty() {
                return 0;
            }
            if !write_guest(&mut caller, buf, &chunk) {
                return status::BAD_POINTER;
            }
            if let Some(r) = caller.data_mut().response(h) {
                r.read += chunk.len();
            }
            chunk.len() as i32
        })
        .expect("response_read is defined once");
    linker
        .func_wrap(m, "response_close", |mut caller: Caller<'_, HostState>, h: i32| -> i32 {
            match caller.data_mut().responses.remove(&h) {
                Some(_) => status::OK,
                None => status::BAD_HANDLE,
            }
        })
        .expect("response_close is defined once");
    linker
        .func_wrap(m, "record", |mut caller: Caller<'_, HostState>, np: i32, nl: i32, dp: i32, dl: i32| -> i32 {
            let name = match read_str(&caller, np, nl) {
                Ok(n) => n,
                Err(status::BAD_ARGUMENT) => return status::BAD_NAME,
                Err(code) => return code,
            };
            let Some(data) = read_guest(&caller, dp, dl) else { return status::BAD_POINTER };
            caller.data_mut().record(&name, &data)
        })
        .expect("record is defined once");
    linker
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
    ]
}
