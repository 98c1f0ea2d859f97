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
use wasmi::{Config, Engine, EnforcedLimits, ExternType, Linker, Module, Store, TypedResumableCall};

use crate::errors::{ErrorKind, Stopped};
use crate::limits::Limits;
use crate::pdk::{self, HostState, RunReport};
use crate::util::sha256_hex;
use crate::wasi;

mod structure;

/// The optional reactor initialiser (Go's `-buildmode=c-shared`), run once before `gather`.
pub const INITIALIZE: &str = "_initialize";

/// Fuel per slice: roughly 10M wasm instructions, a few milliseconds of interpretation.
/// Smaller slices tighten the deadline at the cost of more (cheap) host checks.
const FUEL_SLICE: u64 = 10_000_000;

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

/// How a run ended, in the report's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Trap, panic, deadline, fuel, memory, cancelled or instantiate.
    pub kind: ErrorKind,
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
    /// The same flag for async waiters: the REST bridge drops an in-flight API request when
    /// it flips, so an abandoned period does not wait for a slow API server.
    cancel_signal: tokio::sync::watch::Sender<bool>,
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<HashMap<String, Arc<LoadedModule>>>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

fn stopped(kind: ErrorKind, limits: &Limits) -> Failure {
    match kind {
        ErrorKind::Deadline => Failure { kind, message: format!("wall-clock deadline of {:?} passed", limits.deadline()) },
        _ => Failure { kind: ErrorKind::Cancelled, message: "the agent is shutting down".into() },
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
        Sandbox { cancelled, cancel_signal: tokio::sync::watch::Sender::new(false), engine, linker, cache: Mutex::new(HashMap::new()) }
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
        self.cancel_signal.send_replace(true);
    }

    /// Flips to `true` when [`Self::cancel_runs`] is called: hand it to the REST bridge
    /// ([`crate::policy::Bridge::cancelled_by`]) so in-flight API requests end too.
    pub fn cancel_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.cancel_signal.subscribe()
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
                    return Err(wasmi::Error::host(Stopped(ErrorKind::Cancelled)));
                }
                if Instant::now() >= state.deadline {
                    return Err(wasmi::Error::host(Stopped(ErrorKind::Deadline)));
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
            store.data_mut().report.guest_memory_bytes = store.data().limiter.peak_bytes as u64;
            RunOutcome { result, fuel_used: used, duration: started.elapsed(), report: store.into_data().report }
        };

        let instance = match self.linker.instantiate_and_start(&mut store, &module.module) {
            Ok(i) => i,
            Err(e) => {
                let f = Failure { kind: ErrorKind::Instantiate, message: format!("instantiation failed: {e}") };
                return finish(store, fuel_added, Err(f));
            }
        };
        let entry = match instance.get_typed_func::<(), i32>(&store, abi::ENTRY) {
            Ok(f) => f,
            Err(e) => return finish(store, fuel_added, Err(Failure { kind: ErrorKind::Instantiate, message: e.to_string() })),
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
                        return Err(Failure { kind: ErrorKind::Fuel, message: format!("fuel budget of {} exhausted", limits.fuel) });
                    }
                    return Ok(Ended::Returned(r));
                }
                Ok(TypedResumableCall::OutOfFuel(invocation)) => {
                    // Host work the guest owes beyond its last slice comes off the total first.
                    *fuel_added = fuel_added.saturating_add(std::mem::take(&mut store.data_mut().fuel_debt));
                    if *fuel_added >= limits.fuel {
                        return Err(Failure { kind: ErrorKind::Fuel, message: format!("fuel budget of {} exhausted", limits.fuel) });
                    }
                    if self.is_cancelled() {
                        return Err(Failure { kind: ErrorKind::Cancelled, message: "the agent is shutting down".into() });
                    }
                    if Instant::now() >= deadline {
                        return Err(Failure {
                            kind: ErrorKind::Deadline,
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
                        None => Failure { kind: ErrorKind::Trap, message: format!("host trap: {}", invocation.host_error()) },
                    });
                }
                Err(e) if e.downcast_ref::<Stopped>().is_some() => {
                    let kind = e.downcast_ref::<Stopped>().map_or(ErrorKind::Trap, |s| s.0);
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
                        Failure { kind: ErrorKind::Panic, message: format!("guest panicked: {panic}") }
                    } else if state.limiter.refused {
                        Failure {
                            kind: ErrorKind::Memory,
                            message: format!("memory limit of {} bytes reached (memory.grow refused), then: {e}", limits.memory_bytes),
                        }
                    } else if e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
                        Failure { kind: ErrorKind::Fuel, message: format!("fuel budget of {} exhausted", limits.fuel) }
                    } else {
                        Failure { kind: ErrorKind::Trap, message: e.to_string() }
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
        return Err(Failure { kind: ErrorKind::Panic, message: format!("guest panicked: {panic} (exit code {code})") });
    }
    if state.limiter.refused {
        return Err(Failure {
            kind: ErrorKind::Memory,
            message: format!("memory limit of {} bytes reached (memory.grow refused), then exit code {code}", limits.memory_bytes),
        });
    }
    Ok(code)
}
