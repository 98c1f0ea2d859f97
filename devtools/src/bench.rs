//! The measurements behind `gather-agent bench` (see `docs/PERFORMANCE.md`). Each function
//! measures one figure in the calling process; the command runs those that need a process of
//! their own (a period, the kubectl peer, the poll) in child processes, so one figure's memory
//! and threads never show up in another's, and prints one table.
//!
//! CPU time is read from `/proc` (per-thread `schedstat`, nanoseconds), peak RSS is `VmHWM`,
//! reset before the measured work through `/proc/self/clear_refs`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hostapi::{Manifest, Request, Response};
use serde::{Deserialize, Serialize};

use agent::archive::{self, ArchiveWriter};
use agent::config::AgentConfig;
use agent::gather::{self, PeriodOptions, PeriodResult};
use crate::native::{self, NativeGatherer, NativeSpec};
use agent::pdk::{Api, HostState};
use agent::policy::{BridgeError, ModulePolicy};
use agent::limits::Limits;
use agent::sandbox::Sandbox;

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

impl BenchError {
    fn context<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> BenchError {
        move |e| BenchError(format!("{what}: {e}"))
    }
}

/// Result type of the measurements.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// CPU time used so far by this process's live threads (user + system), from each thread's
/// `/proc/self/task/*/schedstat` (nanoseconds). Falls back to `/proc/self/stat` (10 ms ticks).
pub fn cpu_time() -> Duration {
    let mut total = 0u64;
    let mut any = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let ns = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()));
            if let Some(ns) = ns {
                total += ns;
                any = true;
            }
        }
    }
    if any { Duration::from_nanos(total) } else { stat_ticks(11, 12) }
}

/// CPU time of this process's finished, waited-for children (user + system).
pub fn children_cpu_time() -> Duration {
    stat_ticks(13, 14)
}

/// Sums two tick fields of `/proc/self/stat`, counted from the field after the command name.
fn stat_ticks(a: usize, b: usize) -> Duration {
    // USER_HZ is 100 on every Linux architecture that exposes /proc/*/stat to user space.
    const TICK: Duration = Duration::from_millis(10);
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return Duration::ZERO };
    let Some((_, rest)) = stat.rsplit_once(')') else { return Duration::ZERO };
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let ticks = fields.get(a).copied().unwrap_or(0) + fields.get(b).copied().unwrap_or(0);
    TICK * ticks as u32
}

/// Resets this process's peak RSS (`VmHWM`) to its current RSS, where the kernel allows it.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak RSS of a running process, from `/proc/<pid>/status`.
fn peak_rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()))
        .map_or(0, |kib| kib * 1024)
}

/// The spread of repeated measurements: fastest, median and slowest. On a shared machine the
/// median is the figure to quote and the spread says how far to trust it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Median (for an even count, the upper of the two middle values: a value that was measured).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (all zero when empty).
    pub fn of(mut values: Vec<f64>) -> Spread {
        values.sort_by(f64::total_cmp);
        match (values.first(), values.last()) {
            (Some(&min), Some(&max)) => Spread { min, median: values[values.len() / 2], max },
            _ => Spread::default(),
        }
    }

    /// `median (min–max)`, with `decimals` decimals.
    pub fn show(&self, decimals: usize) -> String {
        format!("{:.d$} ({:.d$}–{:.d$})", self.median, self.min, self.max, d = decimals)
    }
}

/// The machine's load average over 1, 5 and 15 minutes (`/proc/loadavg`).
pub fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// Whether a module imports WASI (`wasi_snapshot_preview1`): a guest built by the Go toolchain
/// (the Rust gatherers use the gather ABI alone). Unparsable bytes answer `false`.
pub fn imports_wasi(bytes: &[u8]) -> bool {
    let engine = wasmi::Engine::new(wasmi::Config::default().compilation_mode(wasmi::CompilationMode::Lazy));
    wasmi::Module::new(&engine, bytes).is_ok_and(|m| m.imports().any(|i| i.module() == agent::wasi::MODULE))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Load cost of one module.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadFigures {
    /// Module file name.
    pub name: String,
    /// Size in bytes.
    pub bytes: usize,
    /// Parse + validate + compile (wasmi: validation eager, translation lazy), best of the rounds.
    pub compile_ms: f64,
    /// Instantiation in a fresh store, best of the rounds.
    pub instantiate_ms: f64,
    /// Parse + validate + translate every function up front (wasmi's eager mode), best of the
    /// rounds: the most the lazy translation can add, spread over the first run.
    pub eager_compile_ms: f64,
    /// Parse only: wasmi's fully lazy mode, which validates each function on its first call
    /// (the agent does not use it: it validates everything before anything runs), best of the
    /// rounds. `compile_ms` minus this is about what validating up front costs.
    pub parse_ms: f64,
}

/// Measures compile and instantiate time for each module, best of `rounds` fresh engines.
pub fn load_figures(modules: &[(String, Vec<u8>)], rounds: usize) -> Result<Vec<LoadFigures>> {
    let dir = tempfile::tempdir().map_err(|e| BenchError(e.to_string()))?;
    let writer = Arc::new(ArchiveWriter::create(dir.path(), time::OffsetDateTime::now_utc(), 1).map_err(|e| BenchError(e.to_string()))?);
    let mut out = Vec::new();
    for (name, bytes) in modules {
        let (mut compile, mut instantiate, mut eager, mut parse) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        let engine = |mode| {
            let mut config = wasmi::Config::default();
            config.consume_fuel(true).compilation_mode(mode);
            wasmi::Engine::new(&config)
        };
        let (eager_engine, lazy_engine) = (engine(wasmi::CompilationMode::Eager), engine(wasmi::CompilationMode::Lazy));
        for _ in 0..rounds.max(1) {
            let started = Instant::now();
            wasmi::Module::new(&eager_engine, bytes).map_err(|e| BenchError(format!("{name}: {e}")))?;
            eager = eager.min(ms(started.elapsed()));
            let started = Instant::now();
            wasmi::Module::new(&lazy_engine, bytes).map_err(|e| BenchError(format!("{name}: {e}")))?;
            parse = parse.min(ms(started.elapsed()));
            let sandbox = Sandbox::new();
            let module = sandbox.load(bytes).map_err(|e| BenchError(format!("{name}: {e}")))?;
            compile = compile.min(ms(module.compile_time));
            let state = HostState::new(module.manifest.clone(), ModulePolicy::default(), Arc::new(CannedApi::default()), writer.clone(), Vec::new(), Limits::default());
            instantiate = instantiate.min(ms(sandbox.instantiate(&module, state).map_err(BenchError::context(name))?));
        }
        out.push(LoadFigures { name: name.clone(), bytes: bytes.len(), compile_ms: compile, instantiate_ms: instantiate, eager_compile_ms: eager, parse_ms: parse });
    }
    Ok(out)
}

/// Loading a whole set of modules, as the agent does at start and on each new set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadSetFigures {
    /// Modules in the set.
    pub modules: usize,
    /// Their total size.
    pub bytes: usize,
    /// The agent's loader (`Loader::load_set`: every rule, modules compiled on one thread per
    /// core), fresh sandbox each round, in ms.
    pub load_set: Spread,
    /// The same modules through `Sandbox::load`, one after another on one thread, in ms.
    pub one_thread: Spread,
    /// Threads the loader used.
    pub threads: usize,
}

/// Measures [`LoadSetFigures`] over `rounds` rounds (a fresh sandbox, so no cache, each time).
pub fn load_set_figures(modules: &[(String, Vec<u8>)], rounds: usize) -> Result<LoadSetFigures> {
    let sources: Vec<agent::loader::ModuleSource> =
        modules.iter().map(|(name, bytes)| agent::loader::ModuleSource::new(format!("bench {name}"), bytes.clone())).collect();
    let config = AgentConfig::default();
    let (mut parallel, mut serial) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let sandbox = Sandbox::new();
        let started = Instant::now();
        let set = agent::loader::Loader::new(&sandbox, &config).load_set(&sources);
        parallel.push(ms(started.elapsed()));
        if let Some(r) = set.rejected.first() {
            return Err(BenchError(format!("{}: {}", r.name, r.refused)));
        }
        let sandbox = Sandbox::new();
        let started = Instant::now();
        for (name, bytes) in modules {
            sandbox.load(bytes).map_err(|e| BenchError(format!("{name}: {e}")))?;
        }
        serial.push(ms(started.elapsed()));
    }
    Ok(LoadSetFigures {
        modules: modules.len(),
        bytes: modules.iter().map(|(_, b)| b.len()).sum(),
        load_set: Spread::of(parallel),
        one_thread: Spread::of(serial),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()).min(modules.len()),
    })
}

/// The fixed start-up cost of one run of a module: load (parse, validate, compile) +
/// instantiate + `_initialize` (a Go reactor's runtime start), each round in a fresh sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartupFigures {
    /// Module file name.
    pub name: String,
    /// Size in bytes.
    pub bytes: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Time of a round, in ms.
    pub time: Spread,
}

/// Measures [`StartupFigures`] over `rounds` fresh sandboxes (no compiled-module cache).
pub fn startup_figures(name: &str, bytes: &[u8], rounds: usize) -> Result<StartupFigures> {
    let dir = tempfile::tempdir().map_err(|e| BenchError(e.to_string()))?;
    let writer = Arc::new(ArchiveWriter::create(dir.path(), time::OffsetDateTime::now_utc(), 1).map_err(|e| BenchError(e.to_string()))?);
    let mut times = Vec::new();
    for _ in 0..rounds.max(1) {
        let sandbox = Sandbox::new();
        let started = Instant::now();
        let module = sandbox.load(bytes).map_err(|e| BenchError(format!("{name}: {e}")))?;
        let state = HostState::new(module.manifest.clone(), ModulePolicy::default(), Arc::new(CannedApi::default()), writer.clone(), Vec::new(), Limits::default());
        sandbox.instantiate(&module, state).map_err(BenchError::context(name))?;
        times.push(ms(started.elapsed()));
    }
    Ok(StartupFigures { name: name.to_owned(), bytes: bytes.len(), rounds: times.len(), time: Spread::of(times) })
}

/// How the default gatherers run in a measured period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The wasm modules, in the sandbox.
    Wasm,
    /// The same gatherers built natively (`native.rs`).
    Native,
}

/// Measured periods of the default gatherers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeriodFigures {
    /// Periods measured (the RSS is the maximum over all of them).
    pub periods: usize,
    /// The gatherers that ran, by name.
    pub gatherers: Vec<String>,
    /// Wall time of a period, including writing the archive, in ms.
    pub wall: Spread,
    /// CPU time (user + system, all threads) of a period, in ms.
    pub cpu: Spread,
    /// Peak RSS of the process during the periods (the engine and modules loaded before are included).
    pub peak_rss_bytes: u64,
    /// Records written per period.
    pub records: u64,
    /// Uncompressed record bytes per period.
    pub bytes_emitted: u64,
    /// Requests per period.
    pub requests: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// Gatherers that failed or reported errors, with their first error.
    pub failed: Vec<String>,
    /// The largest guest linear memory of any one gatherer (its high-water mark), in bytes;
    /// 0 natively.
    pub guest_memory_peak_bytes: u64,
    /// Fuel used by all the gatherers of a period (0 natively).
    pub fuel_used: u64,
}

fn summarize(result: &PeriodResult) -> (u64, u64, u64, u64, Vec<String>) {
    let reports = &result.metadata.status_reports;
    let failed = reports
        .iter()
        .filter(|r| r.errors.is_some())
        .map(|r| format!("{}: {}", r.name, r.errors.as_ref().and_then(|e| e.first()).map_or("", String::as_str)))
        .collect();
    let size = std::fs::metadata(&result.archive).map_or(0, |m| m.len());
    (
        reports.iter().map(|r| r.records_count).sum(),
        reports.iter().map(|r| r.bytes_emitted).sum(),
        reports.iter().map(|r| r.requests).sum(),
        size,
        failed,
    )
}

/// The agent's default settings, but every record is measured: the archive cap and the
/// per-module record quota would otherwise cut a big cluster short.
fn measured_settings(out_dir: &Path) -> (AgentConfig, PeriodOptions) {
    let mut config = AgentConfig { archive_max_bytes: 1 << 32, ..AgentConfig::default() };
    config.limits.record_bytes = 1 << 32;
    let mut opts = PeriodOptions::new(out_dir);
    opts.concurrency = config.concurrency;
    opts.archive_max_bytes = config.archive_max_bytes;
    (config, opts)
}

/// Runs `periods` periods of the default gatherers against the cluster of `kubeconfig`, in
/// this process; wasm modules come from `modules_dir` and are compiled before the first
/// period, as in a running agent. Archives go to `out_dir` and are deleted after measuring.
pub async fn periods(mode: Mode, kubeconfig: &Path, modules_dir: &Path, out_dir: &Path, periods: usize) -> Result<PeriodFigures> {
    let client = agent::kubeclient::from_kubeconfig(kubeconfig).await.map_err(|e| BenchError(e.to_string()))?;
    let api: Arc<dyn Api> = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let (config, opts) = measured_settings(out_dir);
    let sandbox = Arc::new(Sandbox::new());
    let (specs, failures) = match mode {
        Mode::Wasm => gather::load_modules_dir(&sandbox, modules_dir, &config).map_err(BenchError::context(modules_dir.display()))?,
        Mode::Native => (Vec::new(), Vec::new()),
    };
    if mode == Mode::Wasm && specs.is_empty() {
        return Err(BenchError(format!("no gatherer modules in {}: run `cargo xtask gatherers`", modules_dir.display())));
    }
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    let mut figures = PeriodFigures { periods, ..Default::default() };
    let native_set = match mode {
        Mode::Wasm => Vec::new(),
        Mode::Native => native::default_gatherers(),
    };
    reset_peak_rss();
    for _ in 0..periods.max(1) {
        let (wall, cpu) = (Instant::now(), cpu_time());
        let result = match mode {
            Mode::Wasm => gather::run_period(sandbox.clone(), api.clone(), specs.clone(), failures.clone(), &opts).await,
            Mode::Native => {
                let specs = native_set
                    .iter()
                    .cloned()
                    .map(|g| NativeSpec { limits: config.limits.clone(), ..NativeSpec::new(g) })
                    .collect();
                native::run_period(api.clone(), specs, &opts).await
            }
        }
        .map_err(|e| BenchError(e.to_string()))?;
        walls.push(ms(wall.elapsed()));
        cpus.push(ms(cpu_time().saturating_sub(cpu)));
        (figures.records, figures.bytes_emitted, figures.requests, figures.archive_bytes, figures.failed) = summarize(&result);
        let reports = &result.metadata.status_reports;
        figures.gatherers = reports.iter().map(|r| r.name.clone()).collect();
        figures.guest_memory_peak_bytes = figures.guest_memory_peak_bytes.max(reports.iter().map(|r| r.guest_memory_bytes).max().unwrap_or(0));
        figures.fuel_used = reports.iter().map(|r| r.fuel_used).sum();
        let _ = std::fs::remove_file(&result.archive);
    }
    figures.peak_rss_bytes = archive::peak_rss_bytes();
    figures.wall = Spread::of(walls);
    figures.cpu = Spread::of(cpus);
    Ok(figures)
}

/// An [`Api`] that passes every request on and writes down which gatherer made it, in order:
/// the trace the raw-transfer floor replays.
pub struct RecordingApi {
    inner: Arc<dyn Api>,
    trace: Mutex<Vec<(String, Request)>>,
}

impl RecordingApi {
    /// Records what goes through `inner`.
    pub fn new(inner: Arc<dyn Api>) -> Self {
        RecordingApi { inner, trace: Mutex::new(Vec::new()) }
    }

    /// Each gatherer's requests in the order it made them; gatherers in the order of their
    /// first request.
    pub fn sequences(&self) -> Vec<(String, Vec<Request>)> {
        let mut out: Vec<(String, Vec<Request>)> = Vec::new();
        for (gatherer, req) in self.trace.lock().expect("trace lock").iter() {
            match out.iter_mut().find(|(g, _)| g == gatherer) {
                Some((_, reqs)) => reqs.push(req.clone()),
                None => out.push((gatherer.clone(), vec![req.clone()])),
            }
        }
        out
    }
}

impl Api for RecordingApi {
    fn send(&self, gatherer: &str, req: &Request, cap: u64, deadline: Instant) -> Result<Response, BridgeError> {
        self.trace.lock().expect("trace lock").push((gatherer.to_owned(), req.clone()));
        self.inner.send(gatherer, req, cap, deadline)
    }
}

/// The raw-transfer floor: the requests of a period with nothing else.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FloorFigures {
    /// Rounds measured.
    pub rounds: usize,
    /// Request sequences (one per gatherer that made requests).
    pub sequences: usize,
    /// Requests per round.
    pub requests: u64,
    /// Response body bytes per round.
    pub bytes: u64,
    /// Responses that were not 2xx (a missing resource is a 404 for the gatherers too).
    pub not_ok: u64,
    /// Wall time of a round, in ms.
    pub wall: Spread,
    /// CPU time of a round (this process, all threads), in ms.
    pub cpu: Spread,
}

/// Sends `sequences` with a bare kube client: `concurrency` sequences at a time, as a period
/// runs its gatherers, each request after the previous one of its sequence returned, every
/// body read to its end and dropped. No policy, no guest, no JSON, no archive. Returns
/// (requests, body bytes, non-2xx responses).
pub async fn replay(client: &kube::Client, sequences: &[(String, Vec<Request>)], concurrency: usize) -> Result<(u64, u64, u64)> {
    use http_body_util::BodyExt as _;
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for (_, requests) in sequences {
        let (client, permits, requests) = (client.clone(), permits.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| BenchError(e.to_string()))?;
            let (mut bytes, mut not_ok) = (0u64, 0u64);
            for req in &requests {
                let mut builder = http::Request::builder().method(req.method.as_str()).uri(req.path.as_str());
                for (k, v) in req.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("accept")) {
                    builder = builder.header(k.as_str(), v.as_str());
                }
                let http_req = builder.body(Vec::new()).map_err(BenchError::context(&req.path))?;
                let resp = client.send(http_req.map(kube::client::Body::from)).await.map_err(BenchError::context(&req.path))?;
                not_ok += u64::from(!resp.status().is_success());
                let mut body = resp.into_body();
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.map_err(BenchError::context(&req.path))?.into_data() {
                        bytes += data.len() as u64;
                    }
                }
            }
            Ok::<_, BenchError>((requests.len() as u64, bytes, not_ok))
        }));
    }
    let mut total = (0, 0, 0);
    for t in tasks {
        let (requests, bytes, not_ok) = t.await.map_err(|e| BenchError(e.to_string()))??;
        total = (total.0 + requests, total.1 + bytes, total.2 + not_ok);
    }
    Ok(total)
}

/// Measures the raw-transfer floor against the cluster of `kubeconfig`: one (unmeasured) wasm
/// period of the modules in `modules_dir` records every request the gatherers make (list pages
/// with their `limit`/`continue`, GETs by name), then `rounds` rounds of [`replay`] send the
/// same requests with the same client (its connections already open, as in the period worker).
pub async fn floor(kubeconfig: &Path, modules_dir: &Path, out_dir: &Path, rounds: usize) -> Result<FloorFigures> {
    let client = agent::kubeclient::from_kubeconfig(kubeconfig).await.map_err(|e| BenchError(e.to_string()))?;
    let bridge: Arc<dyn Api> = Arc::new(agent::policy::Bridge::new(client.clone(), tokio::runtime::Handle::current()));
    let recorder = Arc::new(RecordingApi::new(bridge));
    let (config, opts) = measured_settings(out_dir);
    let sandbox = Arc::new(Sandbox::new());
    let (specs, failures) = gather::load_modules_dir(&sandbox, modules_dir, &config).map_err(BenchError::context(modules_dir.display()))?;
    let result = gather::run_period(sandbox, recorder.clone(), specs, failures, &opts).await.map_err(|e| BenchError(e.to_string()))?;
    let _ = std::fs::remove_file(&result.archive);
    let sequences = recorder.sequences();
    let mut figures = FloorFigures { rounds: rounds.max(1), sequences: sequences.len(), ..Default::default() };
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let (wall, cpu) = (Instant::now(), cpu_time());
        (figures.requests, figures.bytes, figures.not_ok) = replay(&client, &sequences, opts.concurrency).await?;
        walls.push(ms(wall.elapsed()));
        cpus.push(ms(cpu_time().saturating_sub(cpu)));
    }
    figures.wall = Spread::of(walls);
    figures.cpu = Spread::of(cpus);
    Ok(figures)
}

/// The peer: a shell-script gatherer, one `kubectl get ... -o json` per resource.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerFigures {
    /// kubectl invocations.
    pub commands: usize,
    /// Wall time of the whole script.
    pub wall_ms: f64,
    /// CPU time of all the kubectl processes.
    pub cpu_ms: f64,
    /// The largest peak RSS of one kubectl process (sampled every 20 ms while it runs).
    pub peak_rss_bytes: u64,
    /// JSON bytes written.
    pub bytes: u64,
    /// Commands that failed.
    pub failed: Vec<String>,
}

/// The `kubectl get` arguments of the peer script: the resources the default gatherers read.
pub fn kubectl_commands() -> Vec<Vec<String>> {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let mut cmds = vec![
        args(&["clusteroperators.config.openshift.io"]),
        args(&["nodes"]),
        args(&["clusterversions.config.openshift.io", "version"]),
    ];
    for plural in ["infrastructures", "networks", "proxies", "oauths", "ingresses", "images", "featuregates", "apiservers", "authentications"] {
        cmds.push(vec![format!("{plural}.config.openshift.io"), "cluster".to_owned()]);
    }
    cmds.push(args(&["machineconfigpools.machineconfiguration.openshift.io"]));
    cmds.push(args(&["pods", "--all-namespaces"]));
    cmds
}

/// Runs the peer script against the cluster of `kubeconfig`, one kubectl at a time, each
/// writing its JSON to a file in `out_dir`, with a fresh discovery cache shared by the script.
pub fn kubectl_peer(kubectl: &Path, kubeconfig: &Path, out_dir: &Path) -> Result<PeerFigures> {
    std::fs::create_dir_all(out_dir).map_err(|e| BenchError(e.to_string()))?;
    let cache = out_dir.join("kube-cache");
    let commands = kubectl_commands();
    let mut figures = PeerFigures { commands: commands.len(), ..Default::default() };
    let (wall, cpu) = (Instant::now(), children_cpu_time());
    for (i, args) in commands.iter().enumerate() {
        let out_path = out_dir.join(format!("{i:02}.json"));
        let out = std::fs::File::create(&out_path).map_err(|e| BenchError(e.to_string()))?;
        let mut child = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("get")
            .args(args)
            .args(["-o", "json"])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BenchError(format!("starting {}: {e}", kubectl.display())))?;
        let status = loop {
            figures.peak_rss_bytes = figures.peak_rss_bytes.max(peak_rss_of(child.id()));
            match child.try_wait().map_err(|e| BenchError(e.to_string()))? {
                Some(status) => break status,
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        if !status.success() {
            figures.failed.push(format!("kubectl get {}: {status}", args.join(" ")));
        }
        figures.bytes += std::fs::metadata(&out_path).map_or(0, |m| m.len());
        let _ = std::fs::remove_file(&out_path);
    }
    figures.wall_ms = ms(wall.elapsed());
    figures.cpu_ms = ms(children_cpu_time().saturating_sub(cpu));
    Ok(figures)
}

/// The unchanged-index poll (the update loop's 304 path).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PollFigures {
    /// Unchanged polls measured.
    pub polls: usize,
    /// Wall time per poll (loopback server).
    pub wall_ms_per_poll: f64,
    /// CPU time per poll, in this (the agent's) process.
    pub cpu_ms_per_poll: f64,
    /// Index bodies the server sent during the unchanged polls (a 304 sends none).
    pub index_bodies: u64,
    /// Module downloads during the unchanged polls.
    pub module_downloads: u64,
    /// Bytes of the first poll (index + modules), for scale.
    pub first_poll_bytes: u64,
}

/// Publishes `modules_dir` to a local site, serves it, lets the agent's index source accept it
/// once, then measures `polls` unchanged polls.
pub async fn unchanged_poll(modules_dir: &Path, work: &Path, polls: usize) -> Result<PollFigures> {
    use agent::update::{Ctx, IndexSettings, IndexSource, PollOutcome};
    let site = work.join("site");
    let published = agent::publish::publish(&agent::publish::PublishOptions {
        modules_dir: modules_dir.to_owned(),
        site: site.clone(),
        key: None,
        settings: None,
        expires_in: None,
    })
    .map_err(|e| BenchError(e.to_string()))?;
    let server = agent::serve::start(&site, "127.0.0.1:0".parse().expect("an address")).await.map_err(|e| BenchError(e.to_string()))?;
    let url = reqwest::Url::parse(&format!("{}/index.json", server.url)).map_err(|e| BenchError(e.to_string()))?;
    let ctx = Ctx::new(
        Arc::new(Sandbox::new()),
        Arc::new(agent::state::StateDir::open(&work.join("state")).map_err(|e| BenchError(e.to_string()))?),
        AgentConfig::default(),
    );
    let mut source = IndexSource::new(IndexSettings { url, public_key: None, max_module_bytes: 64 << 20, timeout: Duration::from_secs(10) });
    match source.poll(&ctx).await {
        PollOutcome::Accepted(_) => {}
        other => return Err(BenchError(format!("the first poll did not accept the index: {other:?}"))),
    }
    let index_bytes = std::fs::metadata(site.join("index.json")).map_or(0, |m| m.len());
    let module_bytes: u64 = published.index.gatherers.iter().map(|g| g.size).sum();
    let (index_before, downloads_before) = (server.requests("/index.json").1, source.downloads);
    let (wall, cpu) = (Instant::now(), cpu_time());
    for _ in 0..polls.max(1) {
        match source.poll(&ctx).await {
            PollOutcome::NotModified => {}
            other => return Err(BenchError(format!("an unchanged poll was not a 304: {other:?}"))),
        }
    }
    let n = polls.max(1) as f64;
    let figures = PollFigures {
        polls: polls.max(1),
        wall_ms_per_poll: ms(wall.elapsed()) / n,
        cpu_ms_per_poll: ms(cpu_time().saturating_sub(cpu)) / n,
        index_bodies: server.requests("/index.json").1 - index_before,
        module_downloads: source.downloads - downloads_before,
        first_poll_bytes: index_bytes + module_bytes,
    };
    server.shutdown().await;
    Ok(figures)
}

/// Archive writing throughput.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArchiveFigures {
    /// Records written.
    pub records: usize,
    /// Uncompressed input bytes.
    pub input_bytes: u64,
    /// The archive's size.
    pub output_bytes: u64,
    /// Input MB (10^6 bytes) per second of wall time through `ArchiveWriter` (names, tar,
    /// gzip as configured, the file), as the agent writes archives.
    pub mb_per_s: f64,
    /// The same bytes through gzip alone at level 1 (the archive's level), for comparison.
    pub gzip_fast_mb_per_s: f64,
    /// The same bytes through gzip alone at flate2's default level 6, for comparison.
    pub gzip_default_mb_per_s: f64,
    /// Compression ratio at level 6, to set against the archive's.
    pub gzip_default_ratio: f64,
}

/// Writes about `target_bytes` of real cluster objects (every JSON object under `fixtures`,
/// compacted and repeated; the repeats are further apart than gzip's 32 KiB window, so they
/// compress like fresh objects) through [`ArchiveWriter`] into `out_dir`, then through bare
/// gzip at levels 1 and 6.
pub fn archive_throughput(out_dir: &Path, fixtures: &Path, target_bytes: u64) -> Result<ArchiveFigures> {
    fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|x| x == "json")
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path)?)
            {
                out.push(serde_json::to_vec(&v).expect("a parsed value serializes"));
            }
        }
        Ok(())
    }
    let mut objects = Vec::new();
    walk(fixtures, &mut objects).map_err(BenchError::context(fixtures.display()))?;
    let corpus: u64 = objects.iter().map(|o| o.len() as u64).sum();
    if corpus == 0 {
        return Err(BenchError(format!("no JSON objects under {}", fixtures.display())));
    }
    let rounds = target_bytes.div_ceil(corpus);
    let records: Vec<(String, &[u8])> = (0..rounds)
        .flat_map(|r| objects.iter().enumerate().map(move |(i, o)| (format!("config/bench/{r}/{i}.json"), o.as_slice())))
        .collect();
    let input_bytes = corpus * rounds;

    let writer = ArchiveWriter::create(out_dir, time::OffsetDateTime::now_utc(), input_bytes + 1).map_err(|e| BenchError(e.to_string()))?;
    let started = Instant::now();
    for (name, data) in &records {
        writer.add(name, data).map_err(|e| BenchError(e.to_string()))?;
    }
    let path = writer.finish(&Default::default()).map_err(|e| BenchError(e.to_string()))?;
    let secs = started.elapsed().as_secs_f64();
    let output_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&path);

    let gzip = |level: flate2::Compression| -> Result<(f64, u64)> {
        use std::io::Write as _;
        let started = Instant::now();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
        for (_, data) in &records {
            gz.write_all(data).map_err(|e| BenchError(e.to_string()))?;
        }
        let out = gz.finish().map_err(|e| BenchError(e.to_string()))?;
        Ok((input_bytes as f64 / 1e6 / started.elapsed().as_secs_f64(), out.len() as u64))
    };
    let (gzip_fast_mb_per_s, _) = gzip(flate2::Compression::fast())?;
    let (gzip_default_mb_per_s, default_out) = gzip(flate2::Compression::default())?;
    Ok(ArchiveFigures {
        records: records.len(),
        input_bytes,
        output_bytes,
        mb_per_s: input_bytes as f64 / 1e6 / secs,
        gzip_fast_mb_per_s,
        gzip_default_mb_per_s,
        gzip_default_ratio: input_bytes as f64 / default_out.max(1) as f64,
    })
}

/// An API that answers every request at once with the same small object: measures the host
/// side of a request without a server.
#[derive(Debug, Clone)]
pub struct CannedApi {
    body: Vec<u8>,
}

impl Default for CannedApi {
    fn default() -> Self {
        let body = serde_json::json!({
            "kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": "default", "uid": "5b4c4c46-3c2a-4d0e-9d2c-6f1d2e3a4b5c", "resourceVersion": "193",
                         "labels": {"kubernetes.io/metadata.name": "default"}, "annotations": {"openshift.io/sa.scc.mcs": "s0:c1,c0"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
        });
        CannedApi { body: serde_json::to_vec(&body).expect("serializes") }
    }
}

impl Api for CannedApi {
    fn send(&self, _gatherer: &str, _req: &Request, _cap: u64, _deadline: Instant) -> Result<Response, BridgeError> {
        Ok(Response { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: self.body.clone() })
    }
}

/// Host-call overhead of one REST request, without a server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallFigures {
    /// Requests per measured run.
    pub requests: u64,
    /// Response body size.
    pub body_bytes: usize,
    /// Per request through the SDK in the wasm sandbox (`guest::get`: 9 host calls).
    pub wasm_us: f64,
    /// Per request through the same SDK code built natively, against the same host.
    pub native_us: f64,
    /// Per request of the host alone (`HostState::request` + read + close, no SDK).
    pub host_us: f64,
}

/// Measures [`CallFigures`] with the `bench-requests` probe (`probe_wasm`, built by
/// `cargo xtask gatherers` into `target/bench/`), `requests` requests per run.
pub fn host_call_overhead(probe_wasm: &[u8], requests: u64) -> Result<CallFigures> {
    let dir = tempfile::tempdir().map_err(|e| BenchError(e.to_string()))?;
    let writer = Arc::new(ArchiveWriter::create(dir.path(), time::OffsetDateTime::now_utc(), 1).map_err(|e| BenchError(e.to_string()))?);
    let api: Arc<dyn Api> = Arc::new(CannedApi::default());
    let limits = Limits { max_requests: u32::MAX, ..Limits::default() };
    let state = |manifest: &Arc<Manifest>, n: u64| {
        let config = serde_json::to_vec(&serde_json::json!({ "requests": n })).expect("serializes");
        HostState::new(manifest.clone(), ModulePolicy::default(), api.clone(), writer.clone(), config, limits.clone())
    };
    // Each run's fixed costs (instantiation, config) cancel out: (t(n) - t(0)) / n.
    let per_request = |run: &dyn Fn(u64) -> Result<Duration>| -> Result<f64> {
        let base = (0..3).map(|_| run(0)).collect::<Result<Vec<_>>>()?.into_iter().min().unwrap_or_default();
        let full = (0..3).map(|_| run(requests)).collect::<Result<Vec<_>>>()?.into_iter().min().unwrap_or_default();
        Ok(full.saturating_sub(base).as_secs_f64() * 1e6 / requests.max(1) as f64)
    };

    let sandbox = Sandbox::new();
    let module = sandbox.load(probe_wasm).map_err(|e| BenchError(format!("the bench-requests probe: {e}")))?;
    let wasm_us = per_request(&|n| {
        let outcome = sandbox.run(&module, state(&module.manifest, n), &limits);
        match outcome.result {
            Ok(0) => Ok(outcome.duration),
            other => Err(BenchError(format!("the wasm probe failed: {other:?} {:?}", outcome.report.errors))),
        }
    })?;

    let probe = NativeGatherer::new(bench_requests::MANIFEST_JSON, bench_requests::run_native).map_err(BenchError)?;
    let native_us = per_request(&|n| {
        let outcome = native::run(&probe, state(&probe.manifest, n));
        match outcome.result {
            Ok(0) => Ok(outcome.duration),
            other => Err(BenchError(format!("the native probe failed: {other:?} {:?}", outcome.report.errors))),
        }
    })?;

    let host_us = per_request(&|n| {
        let mut s = state(&probe.manifest, 0);
        let started = Instant::now();
        for _ in 0..n {
            let h = s.request(Request::get("/api/v1/namespaces/default"));
            let _ = s.response_body(h);
            s.response_close(h);
        }
        Ok(started.elapsed())
    })?;
    Ok(CallFigures { requests, body_bytes: CannedApi::default().body.len(), wasm_us, native_us, host_us })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_moves_with_work() {
        let before = cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time() > before);
    }

    #[test]
    fn a_spread_is_the_fastest_median_and_slowest_of_what_was_measured() {
        assert_eq!(Spread::of(vec![30.0, 10.0, 20.0, 50.0, 40.0]), Spread { min: 10.0, median: 30.0, max: 50.0 });
        // An even count quotes a measured value (the upper middle one), not an average.
        assert_eq!(Spread::of(vec![4.0, 1.0, 3.0, 2.0]), Spread { min: 1.0, median: 3.0, max: 4.0 });
        assert_eq!(Spread::of(vec![7.0]), Spread { min: 7.0, median: 7.0, max: 7.0 });
        assert_eq!(Spread::of(Vec::new()), Spread::default());
        assert_eq!(Spread { min: 1.04, median: 2.5, max: 10.0 }.show(1), "2.5 (1.0–10.0)");
    }

    #[test]
    fn the_load_average_is_read_from_proc() {
        let [one, five, fifteen] = loadavg().expect("/proc/loadavg on Linux");
        assert!([one, five, fifteen].iter().all(|l| l.is_finite() && *l >= 0.0));
    }

    #[test]
    fn go_guests_are_told_apart_by_their_wasi_imports() {
        let wasi = wat::parse_str(r#"(module (import "wasi_snapshot_preview1" "sched_yield" (func (result i32))) (memory (export "memory") 1))"#).unwrap();
        let plain = wat::parse_str(r#"(module (import "gather" "log" (func (param i32 i32 i32) (result i32))) (memory (export "memory") 1))"#).unwrap();
        assert!(imports_wasi(&wasi));
        assert!(!imports_wasi(&plain));
        assert!(!imports_wasi(b"not wasm"));
    }

    #[test]
    fn the_recorder_keeps_each_gatherers_requests_in_order() {
        let recorder = RecordingApi::new(Arc::new(CannedApi::default()));
        let deadline = Instant::now() + Duration::from_secs(5);
        for (g, path) in [("nodes", "/api/v1/nodes?limit=500"), ("pods", "/api/v1/pods?limit=500"), ("nodes", "/api/v1/nodes?limit=500&continue=x")] {
            let resp = recorder.send(g, &Request::get(path), 1 << 20, deadline).unwrap();
            assert_eq!(resp.status, 200, "requests are passed on");
        }
        let paths = |reqs: &[Request]| reqs.iter().map(|r| r.path.clone()).collect::<Vec<_>>();
        let sequences = recorder.sequences();
        assert_eq!(sequences.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>(), ["nodes", "pods"]);
        assert_eq!(paths(&sequences[0].1), ["/api/v1/nodes?limit=500", "/api/v1/nodes?limit=500&continue=x"]);
        assert_eq!(paths(&sequences[1].1), ["/api/v1/pods?limit=500"]);
    }

    #[test]
    fn the_peer_script_reads_what_the_default_gatherers_read() {
        let cmds = kubectl_commands();
        assert_eq!(cmds.len(), 14);
        assert!(cmds.contains(&vec!["pods".to_owned(), "--all-namespaces".to_owned()]));
        assert!(cmds.contains(&vec!["proxies.config.openshift.io".to_owned(), "cluster".to_owned()]));
    }

    #[test]
    fn canned_requests_cost_the_host_and_not_the_api() {
        let figures = host_call_overhead(&[], 10);
        assert!(figures.unwrap_err().0.contains("bench-requests probe"));
        let probe = NativeGatherer::new(bench_requests::MANIFEST_JSON, bench_requests::run_native).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(ArchiveWriter::create(dir.path(), time::OffsetDateTime::now_utc(), 1).unwrap());
        let config = br#"{"requests": 25}"#.to_vec();
        let state = HostState::new(probe.manifest.clone(), ModulePolicy::default(), Arc::new(CannedApi::default()), writer, config, Limits::default());
        let outcome = native::run(&probe, state);
        assert_eq!(outcome.result, Ok(0));
        assert_eq!(outcome.report.requests, 25);
    }
}
