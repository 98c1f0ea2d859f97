//! Native gatherers: the same gatherer source compiled into the agent instead of to wasm, served
//! by the same host: [`HostState`], so the same policy, REST bridge, limits on requests and
//! archive. The `gatherer!` macro gives every gatherer crate a `run_native()` entry; the SDK
//! sends its calls to the [`NativeHost`] installed on the thread, which here forwards each to
//! the [`HostState`] method the wasm import of the same name calls.
//!
//! It is for gatherer authors' quick tests and is the baseline of the benchmark's wasm÷native
//! ratio. It is **not** a sandbox: native code has no fuel, memory cap or preemptive deadline
//! (requests still stop at the deadline), so only the agent's own, trusted gatherers run this way.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use hostapi::guest::NativeHost;
use hostapi::{Manifest, Request, Response};

use agent::archive::ArchiveError;
use agent::gather::{self, Job, PeriodOptions, PeriodResult};
use agent::pdk::{Api, HostState};
use agent::policy::ModulePolicy;
use agent::limits::Limits;
use agent::sandbox::{Failure, RunOutcome};

/// A gatherer linked into this binary.
#[derive(Clone)]
pub struct NativeGatherer {
    /// Its manifest (the same JSON its wasm build carries in `gather.manifest`).
    pub manifest: Arc<Manifest>,
    /// Its `run_native` entry: the `gather` export's return code.
    pub entry: fn() -> i32,
}

impl std::fmt::Debug for NativeGatherer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeGatherer").field("name", &self.manifest.name).finish()
    }
}

impl NativeGatherer {
    /// A gatherer from its manifest JSON and entry point.
    pub fn new(manifest_json: &str, entry: fn() -> i32) -> Result<Self, String> {
        let manifest = Manifest::parse(manifest_json.as_bytes()).map_err(|e| format!("bad manifest: {e}"))?;
        Ok(NativeGatherer { manifest: Arc::new(manifest), entry })
    }
}

/// The native table: each linked gatherer crate (a `gatherer-*` dependency of this crate) and
/// its `gatherer!` entry points. Adding a Rust gatherer to the default set means one dependency
/// line in `Cargo.toml` and one name here; `tests/native.rs` fails until both are done.
macro_rules! linked_gatherers {
    ($($krate:ident),* $(,)?) => {
        /// The default Rust gatherers of `gatherers/`, built natively (the Go ones have no native build).
        pub fn default_gatherers() -> Vec<NativeGatherer> {
            [$(($krate::MANIFEST_JSON, $krate::run_native as fn() -> i32)),*]
                .into_iter()
                .map(|(json, entry)| NativeGatherer::new(json, entry).expect("the default gatherers' manifests are valid"))
                .collect()
        }
    };
}

linked_gatherers![
    gatherer_clusterconfig,
    gatherer_clusteroperators,
    gatherer_clusterversion,
    gatherer_machineconfigpools,
    gatherer_nodes,
    gatherer_pods,
    gatherer_machineconfigs,
    gatherer_crds,
    gatherer_imageregistry,
    gatherer_machines,
    gatherer_nmstate,
    gatherer_clusterresources,
    gatherer_configmaps,
    gatherer_sap,
    gatherer_aggregates,
    gatherer_events,
];

/// Whether the gatherer named `name` has a native build here.
pub fn has_native_build(name: &str) -> bool {
    default_gatherers().iter().any(|g| g.manifest.name == name)
}

/// The SDK's view of the host on this thread: every call goes to the shared [`HostState`].
struct Host(Rc<RefCell<HostState>>);

impl NativeHost for Host {
    fn log(&mut self, level: i32, msg: &str) {
        self.0.borrow_mut().log(level, msg);
    }
    fn config(&mut self) -> Vec<u8> {
        self.0.borrow().config().to_vec()
    }
    fn request(&mut self, req: &Request) -> Result<Response, i32> {
        let mut state = self.0.borrow_mut();
        let handle = state.request(req.clone());
        if handle < 0 {
            return Err(handle);
        }
        let headers = hostapi::http::FORWARDED_RESPONSE_HEADERS
            .iter()
            .filter_map(|h| state.response_header(handle, h).ok().map(|v| (h.to_string(), v)))
            .collect();
        let result = state.response_body(handle).map(|(status, body)| Response { status, headers, body });
        state.response_close(handle);
        result
    }
    fn record(&mut self, name: &str, data: &[u8]) -> i32 {
        self.0.borrow_mut().record(name, data)
    }
    fn list_open(&mut self, path: &str, fields: &str, flags: i32) -> i32 {
        self.0.borrow_mut().list_open(path, fields, flags)
    }
    fn list_next(&mut self, handle: i32) -> i32 {
        self.0.borrow_mut().list_next(handle)
    }
    fn list_emit(&mut self, handle: i32, index: i32, template: &str) -> i32 {
        self.0.borrow_mut().list_emit(handle, index, template)
    }
    fn response_body(&mut self, handle: i32) -> Result<(u16, Vec<u8>), i32> {
        self.0.borrow_mut().response_body(handle)
    }
    fn response_close(&mut self, handle: i32) -> i32 {
        self.0.borrow_mut().response_close(handle)
    }
    fn list_redact(&mut self, handle: i32, spec: &str) -> i32 {
        self.0.borrow_mut().list_redact(handle, spec)
    }
    fn record_redact(&mut self, name: &str, data: &[u8], spec: &str) -> i32 {
        self.0.borrow_mut().record_redact(name, data, spec)
    }
    fn now_ms(&mut self) -> i64 {
        self.0.borrow().now_ms()
    }
}

/// Runs `gatherer` once on this thread against `state`; the outcome has the same shape as a
/// wasm run's (no fuel is used; a panic is kind `panic`). Blocking.
pub fn run(gatherer: &NativeGatherer, state: HostState) -> RunOutcome {
    let started = Instant::now();
    let state = Rc::new(RefCell::new(state));
    let entry = gatherer.entry;
    let (result, host) = hostapi::guest::with_native_host(Box::new(Host(state.clone())), || {
        std::panic::catch_unwind(AssertUnwindSafe(entry))
    });
    drop(host);
    let state = Rc::try_unwrap(state).ok().expect("the host was the only other owner").into_inner();
    let result = result.map_err(|payload| {
        let message = state
            .report
            .panic
            .clone()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Failure { kind: agent::errors::ErrorKind::Panic, message: format!("gatherer panicked: {message}") }
    });
    RunOutcome { result, fuel_used: 0, duration: started.elapsed(), report: state.report }
}

/// A native gatherer with the operator's settings for it.
#[derive(Debug, Clone)]
pub struct NativeSpec {
    /// The gatherer.
    pub gatherer: NativeGatherer,
    /// Its limits (only the request-side ones apply natively).
    pub limits: Limits,
    /// Its policy.
    pub policy: ModulePolicy,
    /// Its config blob (JSON bytes; empty for none).
    pub config: Vec<u8>,
}

impl NativeSpec {
    /// `gatherer` with default limits, policy and no config.
    pub fn new(gatherer: NativeGatherer) -> Self {
        NativeSpec { gatherer, limits: Limits::default(), policy: ModulePolicy::default(), config: Vec::new() }
    }
}

/// One period of native gatherers into one archive: the same runner as `gather::run_period`
/// (same concurrency bound, same archive and `gathers.json`; `sha256` is `"native"`).
pub async fn run_period(api: Arc<dyn Api>, specs: Vec<NativeSpec>, opts: &PeriodOptions) -> Result<PeriodResult, ArchiveError> {
    let jobs = specs
        .into_iter()
        .map(|spec| {
            let gatherer = spec.gatherer.clone();
            Job {
                manifest: spec.gatherer.manifest.clone(),
                sha256: "native".into(),
                limits: spec.limits,
                policy: spec.policy,
                config: spec.config,
                run: Box::new(move |state| run(&gatherer, state)),
            }
        })
        .collect();
    gather::run_jobs(api, jobs, Vec::new(), || false, opts).await
}
