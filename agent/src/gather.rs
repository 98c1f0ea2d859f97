//! One period: run every gatherer (concurrently, with a bound), stream their records into one
//! archive, then write `gathers.json` with a status report per gatherer and finish the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::archive::{self, ArchiveError, ArchiveWriter, GathersMetadata, StatusReport};
use crate::pdk::{Api, HostState};
use crate::policy::ModulePolicy;
use crate::errors::ErrorKind;
use crate::limits::Limits;
use crate::sandbox::{RunOutcome, Sandbox};
use crate::text;
use hostapi::abi::limits::{GATHERS_JSON_BYTES, REPORT_ENTRY_BYTES};

pub use crate::loader::{LoadFailure, ModuleSpec};

/// Settings for one period.
#[derive(Debug, Clone)]
pub struct PeriodOptions {
    /// Where archives go.
    pub out_dir: PathBuf,
    /// Gatherers run at once.
    pub concurrency: usize,
    /// Uncompressed archive size cap.
    pub archive_max_bytes: u64,
    /// When the process started (for `uptime_seconds`).
    pub process_started: Instant,
    /// Agent-level warnings to carry in the metadata (a refused update, for example).
    pub warnings: Vec<String>,
    /// Which module set produced the archive (filled by the update loop).
    pub module_set: Option<serde_json::Value>,
    /// Networking obfuscation of every record (agent config `"obfuscation": ["networking"]`).
    pub obfuscate_networking: bool,
}

impl PeriodOptions {
    /// Defaults for writing into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        PeriodOptions {
            out_dir: out_dir.into(),
            concurrency: 4,
            archive_max_bytes: hostapi::abi::limits::ARCHIVE_BYTES,
            process_started: Instant::now(),
            warnings: Vec::new(),
            module_set: None,
            obfuscate_networking: false,
        }
    }
}

/// The outcome of a period: the archive and what went into its metadata.
#[derive(Debug)]
pub struct PeriodResult {
    /// The finished archive.
    pub archive: PathBuf,
    /// The metadata written as `insights-operator/gathers.json`.
    pub metadata: GathersMetadata,
    /// The cluster id, when a gatherer recorded `config/id`.
    pub cluster_id: Option<String>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// One gatherer's run in a period, whatever executes it (the wasm sandbox or a native build,
/// which lives in `gather-devtools`).
pub struct Job {
    /// The gatherer's manifest.
    pub manifest: Arc<hostapi::Manifest>,
    /// What the report names as its code: the module's sha256, or `native`.
    pub sha256: String,
    /// Its limits.
    pub limits: Limits,
    /// Its policy.
    pub policy: ModulePolicy,
    /// Its config blob.
    pub config: Vec<u8>,
    /// Runs it against the host state (on a blocking thread).
    pub run: Box<dyn FnOnce(HostState) -> RunOutcome + Send>,
}

fn to_report(manifest: &hostapi::Manifest, sha256: &str, outcome: RunOutcome) -> StatusReport {
    let dropped = outcome.report.dropped_note();
    let mut errors = outcome.report.errors;
    let (error_kind, exit_code) = match &outcome.result {
        Ok(0) => ((outcome.report.policy_denials > 0).then_some(ErrorKind::Policy), Some(0)),
        Ok(code) => {
            errors.push(format!("exit: gatherer returned {code}"));
            (Some(ErrorKind::Exit), Some(*code))
        }
        Err(f) => {
            // The verdict is kept whatever the report cap, but cut like any entry.
            let verdict = format!("{}: {}", f.kind, f.message);
            errors.push(text::clip(&verdict, REPORT_ENTRY_BYTES).into_owned());
            (Some(f.kind), None)
        }
    };
    errors.extend(dropped);
    StatusReport {
        name: manifest.name.clone(),
        duration_in_ms: outcome.duration.as_millis() as u64,
        records_count: outcome.report.records,
        errors: (!errors.is_empty()).then_some(errors),
        warnings: (!outcome.report.warnings.is_empty()).then_some(outcome.report.warnings),
        panic: outcome.report.panic,
        version: manifest.version.clone(),
        sha256: sha256.to_owned(),
        fuel_used: outcome.fuel_used,
        requests: outcome.report.requests,
        bytes_emitted: outcome.report.bytes_emitted,
        guest_memory_bytes: outcome.report.guest_memory_bytes,
        error_kind: error_kind.map(|k| k.as_str().to_owned()),
        exit_code,
        reproduces: manifest.reproduces.clone(),
    }
}

/// Runs every module once and writes one archive. Fails only if the archive cannot be written.
pub async fn run_period(
    sandbox: Arc<Sandbox>,
    api: Arc<dyn Api>,
    modules: Vec<ModuleSpec>,
    failures: Vec<LoadFailure>,
    opts: &PeriodOptions,
) -> Result<PeriodResult, ArchiveError> {
    let jobs = modules
        .into_iter()
        .map(|spec| {
            let sandbox = sandbox.clone();
            let (module, limits) = (spec.module.clone(), spec.limits.clone());
            Job {
                manifest: spec.module.manifest.clone(),
                sha256: spec.module.sha256.clone(),
                limits: spec.limits,
                policy: spec.policy,
                config: spec.config,
                run: Box::new(move |state| sandbox.run(&module, state, &limits)),
            }
        })
        .collect();
    let cancelled = sandbox.clone();
    run_jobs(api, jobs, failures, move || cancelled.is_cancelled(), opts).await
}

/// The period itself: runs `jobs` concurrently (bounded), streams their records into one
/// archive, then writes `gathers.json` and finishes it, unless `cancelled` says the period
/// was abandoned, in which case nothing is written.
pub async fn run_jobs(
    api: Arc<dyn Api>,
    jobs: Vec<Job>,
    failures: Vec<LoadFailure>,
    cancelled: impl Fn() -> bool,
    opts: &PeriodOptions,
) -> Result<PeriodResult, ArchiveError> {
    let started_at = time::OffsetDateTime::now_utc();
    let started = Instant::now();
    let mut writer = ArchiveWriter::create(&opts.out_dir, started_at, opts.archive_max_bytes)?;
    let mut agent_warnings = opts.warnings.clone();
    if opts.obfuscate_networking {
        let lookup = api.clone();
        let (domain, warning) = tokio::task::spawn_blocking(move || base_domain(lookup.as_ref()))
            .await
            .unwrap_or_else(|e| (None, Some(format!("networking obfuscation: reading the base domain failed: {e}"))));
        if let Some(w) = warning {
            tracing::warn!("{w}");
            agent_warnings.push(w);
        }
        writer = writer.with_obfuscator(crate::obfuscate::Obfuscator::new(domain.as_deref()));
    }
    let writer = Arc::new(writer);
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = Vec::new();
    let period_span = tracing::Span::current();
    for job in jobs {
        let (api, writer, permits) = (api.clone(), writer.clone(), permits.clone());
        // Every log line of a gatherer's run carries its name (and the period, from the parent).
        let span = tracing::info_span!(parent: &period_span, "gatherer", gatherer = %job.manifest.name);
        let blocking_span = span.clone();
        tasks.push(tokio::spawn(tracing::Instrument::instrument(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore is never closed");
            let Job { manifest, sha256, limits, policy, config, run } = job;
            tracing::debug!(gatherer = %manifest.name, "starting");
            let state_manifest = manifest.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let _entered = blocking_span.enter();
                run(HostState::new(state_manifest, policy, api, writer, config, limits))
            })
            .await;
            let name = manifest.name.clone();
            match outcome {
                Ok(outcome) => {
                    let report = to_report(&manifest, &sha256, outcome);
                    match &report.error_kind {
                        Some(kind) if kind != ErrorKind::Policy.as_str() => tracing::warn!(gatherer = %name, kind = %kind, records = report.records_count, ms = report.duration_in_ms, "failed: {}", report.errors.as_ref().and_then(|e| e.last()).map_or("", String::as_str)),
                        _ => tracing::info!(gatherer = %name, records = report.records_count, ms = report.duration_in_ms, "done"),
                    }
                    report
                }
                // Runners never panic on guest behaviour; this is a host bug, kept visible.
                Err(join) => StatusReport {
                    name,
                    errors: Some(vec![format!("host error running the gatherer: {join}")]),
                    error_kind: Some(ErrorKind::Host.as_str().into()),
                    version: manifest.version.clone(),
                    sha256,
                    ..Default::default()
                },
            }
        }, span)));
    }
    let mut reports: Vec<StatusReport> = Vec::new();
    for t in tasks {
        match t.await {
            Ok(r) => reports.push(r),
            Err(e) => tracing::error!("gatherer task failed: {e}"),
        }
    }
    for f in failures {
        reports.push(StatusReport {
            name: f.name,
            errors: Some(vec![text::clip(&format!("load: {}", f.error), REPORT_ENTRY_BYTES).into_owned()]),
            error_kind: Some(ErrorKind::Load.as_str().into()),
            sha256: f.sha256,
            ..Default::default()
        });
    }
    if cancelled() {
        // Dropping the writer deletes its temp file: an abandoned period leaves nothing behind.
        drop(writer);
        return Err(ArchiveError::Abandoned);
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    let finished_at = time::OffsetDateTime::now_utc();
    let mut metadata = GathersMetadata {
        status_reports: reports,
        memory_alloc_bytes: archive::current_rss_bytes(),
        uptime_seconds: opts.process_started.elapsed().as_secs_f64(),
        is_global_obfuscation_enabled: opts.obfuscate_networking,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        started: rfc3339(started_at),
        finished: rfc3339(finished_at),
        duration_in_ms: started.elapsed().as_millis() as u64,
        peak_rss_bytes: archive::peak_rss_bytes(),
        module_set: opts.module_set.clone(),
        warnings: agent_warnings,
    };
    fit_metadata(&mut metadata, GATHERS_JSON_BYTES);
    // Every task holding a clone has been awaited above, so this is the last reference.
    let writer = Arc::try_unwrap(writer).unwrap_or_else(|_| unreachable!("all gatherer tasks have finished"));
    let cluster_id = writer.cluster_id();
    let meta = metadata.clone();
    let out_dir = opts.out_dir.clone();
    let archive = tokio::task::spawn_blocking(move || writer.finish(&meta))
        .await
        .map_err(|e| ArchiveError::Write { path: out_dir, source: std::io::Error::other(e.to_string()) })??;
    Ok(PeriodResult { archive, metadata, cluster_id })
}

/// Where the host reads the cluster base domain for networking obfuscation (as IO's
/// `utils.GetClusterBaseDomain`): an explicit host permission, `get dnses` in the ClusterRole.
pub const BASE_DOMAIN_PATH: &str = "/apis/config.openshift.io/v1/dnses/cluster";

/// The cluster base domain (`spec.baseDomain` of [`BASE_DOMAIN_PATH`]), read with the host's
/// own client; when it cannot be had, a warning saying only addresses are obfuscated.
fn base_domain(api: &dyn Api) -> (Option<String>, Option<String>) {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let note = |why: String| format!("networking obfuscation: cannot read the cluster base domain ({why}); only IP addresses are obfuscated");
    match api.send("gather-agent", &hostapi::Request::get(BASE_DOMAIN_PATH), 1 << 20, deadline) {
        Ok(r) if r.is_success() => {
            let domain = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| v.pointer("/spec/baseDomain").and_then(serde_json::Value::as_str).map(str::to_owned))
                .filter(|d| crate::obfuscate::Obfuscator::new(Some(d)).base_domain().is_some());
            match domain {
                Some(d) => (Some(d), None),
                None => (None, Some(note(format!("GET {BASE_DOMAIN_PATH}: no usable spec.baseDomain")))),
            }
        }
        Ok(r) => (None, Some(note(format!("GET {BASE_DOMAIN_PATH}: HTTP {}", r.status)))),
        Err(e) => (None, Some(note(format!("GET {BASE_DOMAIN_PATH}: {e}")))),
    }
}

/// Trims `metadata` until `gathers.json` fits in `cap` bytes: every report keeps fewer and
/// fewer `warnings` and `errors` (the failure verdict, the last error, always stays), and a
/// trimmed report ends its `errors` with `N warnings/errors trimmed to fit gathers.json
/// (cap M bytes)`. Each report is already bounded (ABI.md §8), so this only bites when many
/// gatherers fill their reports.
pub fn fit_metadata(metadata: &mut GathersMetadata, cap: usize) {
    let size = |m: &GathersMetadata| serde_json::to_vec_pretty(m).map_or(0, |v| v.len());
    if size(metadata) <= cap {
        return;
    }
    let originals: Vec<(usize, usize)> = metadata
        .status_reports
        .iter()
        .map(|r| (r.warnings.as_ref().map_or(0, Vec::len), r.errors.as_ref().map_or(0, Vec::len)))
        .collect();
    let agent_warnings = std::mem::take(&mut metadata.warnings);
    for keep in [50, 20, 5, 1, 0] {
        let mut trimmed = metadata.clone();
        trimmed.warnings = agent_warnings.iter().take(keep).cloned().collect();
        if agent_warnings.len() > keep {
            trimmed.warnings.push(format!("{} agent warnings trimmed to fit gathers.json (cap {cap} bytes)", agent_warnings.len() - keep));
        }
        for (r, (w, e)) in trimmed.status_reports.iter_mut().zip(&originals) {
            let mut dropped = 0;
            if let Some(list) = r.warnings.as_mut() {
                dropped += list.len().saturating_sub(keep);
                list.truncate(keep);
            }
            if let Some(list) = r.errors.as_mut().filter(|l| l.len() > keep + 1) {
                let verdict = list.pop();
                dropped += list.len() - keep;
                list.truncate(keep);
                list.extend(verdict);
            }
            if dropped > 0 {
                let note = format!("{dropped} of {} warnings/errors trimmed to fit gathers.json (cap {cap} bytes)", w + e);
                r.errors.get_or_insert_with(Vec::new).push(note);
            }
            if r.warnings.as_ref().is_some_and(Vec::is_empty) {
                r.warnings = None;
            }
        }
        if size(&trimmed) <= cap || keep == 0 {
            tracing::warn!(cap, kept = keep, "gathers.json over its cap: report entries trimmed");
            *metadata = trimmed;
            return;
        }
    }
}

/// Loads every `*.wasm` in `dir` (or the one file `dir` names) through the one loader
/// ([`crate::loader`]), with `config`'s rules. Broken, forbidden or duplicate modules become
/// [`LoadFailure`]s rather than stopping the period; disabled ones are left out.
pub fn load_modules_dir(
    sandbox: &Sandbox,
    dir: &std::path::Path,
    config: &crate::config::AgentConfig,
) -> std::io::Result<(Vec<ModuleSpec>, Vec<LoadFailure>)> {
    let sources = match crate::loader::read_path(dir) {
        Ok(s) => s,
        Err(crate::loader::ReadError::Empty(_)) => Vec::new(),
        Err(crate::loader::ReadError::Io { source, .. }) => return Err(source),
    };
    Ok(crate::loader::Loader::new(sandbox, config).load_set(&sources).into_period())
}
