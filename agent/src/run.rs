//! `gather-agent run`: the periodic agent. Each period starts by activating the staged module
//! set (if any), runs every gatherer of the active set once and writes one archive. The update
//! loop (`update.rs`) feeds staged sets in the background.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use ed25519_dalek::VerifyingKey;
use tracing::Instrument as _;

use crate::config::AgentConfig;
use crate::errors::{RefusalReason, Refused};
use crate::gather::{self, PeriodOptions};
use crate::metrics::Metrics;
use crate::pdk::Api;
use crate::retention::{self, Retention};
use crate::upload::UploadConfig;
use crate::limits::LimitError;
use crate::sandbox::Sandbox;
use crate::state::{StateDir, StateError};
use crate::status::{now, ArchiveStatus, StatusBoard};
use crate::loader::{Loader, ModuleSource};
use crate::update::{self, ActiveModule, Ctx, DirSource, IndexSettings, IndexSource, ModuleSet, Part, SourceKind, Staging};

/// Everything `run` needs, after flags, environment and config file are merged.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// URL of the published `index.json`.
    pub index_url: Option<reqwest::Url>,
    /// A local modules directory to watch.
    pub modules_dir: Option<PathBuf>,
    /// Where archives go.
    pub out_dir: PathBuf,
    /// Cache, last accepted index, status.json, lock.
    pub state_dir: PathBuf,
    /// Time between period starts.
    pub period: Duration,
    /// Time between index polls.
    pub poll_interval: Duration,
    /// Random spread of periods and polls (fraction).
    pub jitter: f64,
    /// Required signer of the index, when set.
    pub public_key: Option<VerifyingKey>,
    /// Limits, policy and config per module.
    pub agent: AgentConfig,
    /// Largest module download.
    pub max_module_bytes: u64,
    /// Timeout per download/poll.
    pub http_timeout: Duration,
    /// Where to serve /healthz, /readyz, /metrics and /status.
    pub listen: Option<std::net::SocketAddr>,
    /// How many archives to keep, and for how long.
    pub retention: Retention,
    /// Upload each archive here, when set.
    pub upload: Option<UploadConfig>,
    /// On shutdown, how long a running period may take to finish before it is abandoned.
    pub shutdown_grace: Duration,
    /// The fallback gatherer set (the binary's embedded defaults): what runs while neither
    /// the index nor the modules dir has provided a set, and always when neither is configured.
    pub default_modules: Vec<ModuleSource>,
}

impl RunConfig {
    /// Defaults for the required paths.
    pub fn new(out_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        RunConfig {
            index_url: None,
            modules_dir: None,
            out_dir: out_dir.into(),
            state_dir: state_dir.into(),
            period: Duration::from_secs(2 * 3600),
            poll_interval: Duration::from_secs(300),
            jitter: 0.1,
            public_key: None,
            agent: AgentConfig::default(),
            max_module_bytes: 32 * 1024 * 1024,
            http_timeout: Duration::from_secs(30),
            listen: None,
            retention: Retention::default(),
            upload: None,
            shutdown_grace: Duration::from_secs(20),
            default_modules: Vec::new(),
        }
    }
}

/// Largest values of the periodic agent's own settings: enough for any real deployment,
/// small enough that no clock or timer arithmetic on them can overflow.
pub mod maxima {
    use std::time::Duration;
    /// Between period starts: 30 days.
    pub const PERIOD: Duration = Duration::from_secs(30 * 86400);
    /// Between index polls: 30 days.
    pub const POLL_INTERVAL: Duration = Duration::from_secs(30 * 86400);
    /// One download or poll: 1 hour.
    pub const HTTP_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Letting a period finish on shutdown: 1 hour.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3600);
    /// Archive retention by age: 100 years.
    pub const MAX_ARCHIVE_AGE: Duration = Duration::from_secs(100 * 365 * 86400);
    /// One module download: 1 GiB.
    pub const MODULE_BYTES: u64 = 1024 * 1024 * 1024;
}

impl RunConfig {
    /// Checks every duration and size against [`maxima`], and the agent config's limits.
    /// Flags, the environment and the config file all end up here.
    pub fn validate(&self) -> Result<(), LimitError> {
        let ms = Duration::from_millis(1);
        let checks = [
            ("period", self.period, ms, maxima::PERIOD),
            ("pollInterval", self.poll_interval, ms, maxima::POLL_INTERVAL),
            ("httpTimeout", self.http_timeout, ms, maxima::HTTP_TIMEOUT),
            ("shutdownGrace", self.shutdown_grace, Duration::ZERO, maxima::SHUTDOWN_GRACE),
            ("maxArchiveAge", self.retention.max_age.unwrap_or(ms), ms, maxima::MAX_ARCHIVE_AGE),
        ];
        for (field, value, min, max) in checks {
            if value < min || value > max {
                return Err(LimitError::DurationOutOfRange { field, value, min, max });
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(LimitError::Malformed { who: "jitter".into(), message: format!("must be in [0, 1), got {}", self.jitter) });
        }
        if !(1..=maxima::MODULE_BYTES).contains(&self.max_module_bytes) {
            return Err(LimitError::OutOfRange { field: "maxModuleBytes", value: self.max_module_bytes, min: 1, max: maxima::MODULE_BYTES });
        }
        self.agent.validate()
    }
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Neither an index URL, nor a modules directory, nor default modules.
    #[error("no module source: give --index-url and/or --modules-dir (this build embeds no default gatherers)")]
    NoSource,
    /// A setting or limit is out of range.
    #[error("invalid setting: {0}")]
    Invalid(#[from] LimitError),
    /// The state directory is unusable (or locked by another agent).
    #[error(transparent)]
    State(#[from] StateError),
    /// The modules directory does not exist.
    #[error("modules directory {0} does not exist")]
    NoModulesDir(PathBuf),
    /// The endpoints address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The output directory is unusable.
    #[error("output directory {dir}: {source}")]
    Out {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A configured agent, ready to run.
pub struct Agent {
    cfg: RunConfig,
    ctx: Ctx,
    staging: Arc<Staging>,
    status: StatusBoard,
    active: Arc<ArcSwapOption<ModuleSet>>,
    metrics: Arc<Metrics>,
    process_started: Instant,
    listener: Option<std::net::TcpListener>,
    http: reqwest::Client,
}

impl Agent {
    /// Opens (and locks) the state dir and restores the last accepted set, if any.
    pub fn new(cfg: RunConfig) -> Result<Self, RunError> {
        if cfg.index_url.is_none() && cfg.modules_dir.is_none() && cfg.default_modules.is_empty() {
            return Err(RunError::NoSource);
        }
        cfg.validate()?;
        if let Some(d) = &cfg.modules_dir {
            if !d.is_dir() {
                return Err(RunError::NoModulesDir(d.clone()));
            }
        }
        let state = Arc::new(StateDir::open(&cfg.state_dir)?);
        // We hold the lock now, so temp files in the output dir are leftovers of a crash.
        std::fs::create_dir_all(&cfg.out_dir).map_err(|source| RunError::Out { dir: cfg.out_dir.clone(), source })?;
        for p in retention::remove_stale_temp_files(&cfg.out_dir).map_err(|source| RunError::Out { dir: cfg.out_dir.clone(), source })? {
            tracing::warn!(path = %p.display(), "removed the temp file of an archive a previous run did not finish");
        }
        let listener = match cfg.listen {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr).map_err(|source| RunError::Listen { addr, source })?;
                l.set_nonblocking(true).map_err(|source| RunError::Listen { addr, source })?;
                Some(l)
            }
            None => None,
        };
        crate::tls::install_crypto_provider();
        let status = StatusBoard::new(Some(state.clone()));
        let metrics = Arc::new(Metrics::new());
        let staging = Arc::new(Staging::new(status.clone()).with_metrics(metrics.clone()));
        let ctx = Ctx { sandbox: Arc::new(Sandbox::new()), state, config: Arc::new(cfg.agent.clone()) };
        Ok(Agent {
            cfg,
            ctx,
            staging,
            status,
            active: Arc::new(ArcSwapOption::empty()),
            metrics,
            process_started: Instant::now(),
            listener,
            http: reqwest::Client::builder().user_agent(crate::upload::user_agent(None)).build().expect("an HTTP client builds"),
        })
    }

    /// Where the operator endpoints listen, when enabled.
    pub fn endpoints_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The live status.
    pub fn status(&self) -> StatusBoard {
        self.status.clone()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` flips to true: update sources in the background, periods in the
    /// foreground. A period in progress when shutdown arrives is finished (each gatherer is
    /// bounded by its deadline), so no archive is left partial.
    pub async fn run(mut self, api: Arc<dyn Api>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        if let Some(l) = self.listener.take() {
            match tokio::net::TcpListener::from_std(l) {
                Ok(listener) => {
                    let (status, metrics, mut rx) = (self.status.clone(), self.metrics.clone(), shutdown.clone());
                    tasks.push(tokio::spawn(async move {
                        let stop = async move {
                            let _ = rx.wait_for(|s| *s).await;
                        };
                        if let Err(e) = crate::endpoints::run(listener, status, metrics, stop).await {
                            tracing::error!("endpoints server failed: {e}");
                        }
                    }));
                }
                Err(e) => tracing::error!("endpoints listener: {e}"),
            }
        }
        if !self.cfg.default_modules.is_empty() {
            // Staged first: a restored index or the modules dir's first scan replaces them
            // before the first period starts.
            let set = Loader::new(&self.ctx.sandbox, &self.ctx.config).load_set(&self.cfg.default_modules);
            for r in &set.rejected {
                self.staging.refuse(&format!("embedded {}", r.name), &r.refused);
            }
            let modules = set.modules.into_iter().map(|(spec, source)| ActiveModule { spec, source }).collect();
            self.staging.set_part(SourceKind::Defaults, Part { modules, serial: None });
        }
        if let Some(url) = &self.cfg.index_url {
            let mut source = IndexSource::new(IndexSettings {
                url: url.clone(),
                public_key: self.cfg.public_key,
                max_module_bytes: self.cfg.max_module_bytes,
                timeout: self.cfg.http_timeout,
            });
            match source.restore(&self.ctx) {
                Ok(Some(part)) => {
                    tracing::info!(serial = ?part.serial, "restored the last accepted index from the state dir");
                    self.staging.set_part(SourceKind::Index, part);
                }
                Ok(None) => {}
                Err(e) => self.staging.refuse("state dir", &Refused::new(RefusalReason::StateDir, format!("restore: {e}"))),
            }
            for p in source.take_problems() {
                self.staging.refuse("state dir", &Refused::new(RefusalReason::StateDir, format!("damaged: {p}")));
            }
            tasks.push(tokio::spawn(update::poll_loop(
                source,
                self.ctx.clone(),
                self.staging.clone(),
                self.status.clone(),
                self.cfg.poll_interval,
                self.cfg.jitter,
                shutdown.clone(),
                Some(self.metrics.clone()),
            )));
        }
        if let Some(dir) = &self.cfg.modules_dir {
            let mut source = DirSource::new(dir);
            let (part, _) = source.scan(&self.ctx, &self.staging);
            self.staging.set_part(SourceKind::Dir, part);
            tasks.push(tokio::spawn(update::watch_loop(source, self.ctx.clone(), self.staging.clone(), shutdown.clone())));
        }

        let mut next = Instant::now();
        loop {
            // Nothing to run until a first set exists.
            while self.active.load().is_none() && !self.staging.has_staged() {
                tokio::select! {
                    _ = self.staging.notify.notified() => {}
                    _ = shutdown.changed() => break,
                }
                if *shutdown.borrow() {
                    break;
                }
            }
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = shutdown.changed() => break,
            }
            let started = Instant::now();
            let period = self.period(&api);
            tokio::pin!(period);
            let finished = tokio::select! {
                r = &mut period => r,
                _ = shutdown.changed() => {
                    let grace = self.cfg.shutdown_grace;
                    tracing::info!("shutdown requested during a period; letting it finish (up to {})", humantime::format_duration(grace));
                    if tokio::time::timeout(grace, &mut period).await.is_err() {
                        tracing::warn!("abandoning the period: stopping the gatherers; no archive is written");
                        self.ctx.sandbox.cancel_runs();
                        period.await;
                    }
                    break;
                }
            };
            if let Some(result) = finished {
                self.after_period(&result, &mut shutdown).await;
                if *shutdown.borrow() {
                    break;
                }
            }
            let spread = 1.0 + self.cfg.jitter * (crate::util::random_unit() * 2.0 - 1.0);
            // Periods start on schedule; one that overran its slot is followed at once.
            let slot = self.cfg.period.mul_f64(spread);
            next = started.checked_add(slot).unwrap_or(started);
        }
        tracing::info!("shutting down");
        // Await the aborted tasks so everything they hold (the state dir lock) is released
        // before `run` returns.
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    /// Retention, then the optional upload (abandoned, not the archive, on shutdown).
    async fn after_period(&self, result: &gather::PeriodResult, shutdown: &mut tokio::sync::watch::Receiver<bool>) {
        match retention::prune(&self.cfg.out_dir, &self.cfg.retention, std::time::SystemTime::now()) {
            Ok(removed) => {
                for p in removed {
                    tracing::info!(path = %p.display(), "pruned an archive (retention)");
                }
            }
            Err(e) => tracing::warn!("retention: {e}"),
        }
        let Some(cfg) = &self.cfg.upload else { return };
        let upload = crate::upload::upload(&self.http, cfg, &result.archive, result.cluster_id.as_deref());
        let outcome = tokio::select! {
            r = upload => r,
            _ = shutdown.changed() => {
                tracing::info!("shutdown: upload abandoned; the archive stays on disk");
                return;
            }
        };
        let (res, error) = match &outcome {
            Ok(_) => ("ok", None),
            Err(crate::upload::UploadError::Unauthorized(_)) => ("unauthorized", outcome.as_ref().err().map(|e| e.to_string())),
            Err(e) => ("error", Some(e.to_string())),
        };
        if let Some(e) = &error {
            tracing::warn!(archive = %result.archive.display(), "{e}");
        }
        self.metrics.upload(res);
        let archive = result.archive.display().to_string();
        self.status.update(|s| {
            s.last_upload = Some(crate::status::UploadStatus { at: now(), archive, result: res.into(), error: error.clone() });
            if let Some(e) = error {
                s.last_error = Some(crate::status::Refusal { at: now(), source: "upload".into(), reason: e, class: None });
            }
        });
    }

    async fn period(&self, api: &Arc<dyn Api>) -> Option<gather::PeriodResult> {
        if let Some(staged) = self.staging.take_staged() {
            let at = now();
            tracing::info!(
                generation = staged.generation,
                serial = ?staged.serial,
                "activating module set: {}",
                staged.modules.iter().map(|m| format!("{}@{}", m.spec.module.manifest.name, m.spec.module.manifest.version)).collect::<Vec<_>>().join(", ")
            );
            let status = staged.status(Some(at));
            self.active.store(Some(staged));
            self.metrics.activation();
            self.status.update(|s| {
                s.active = Some(status);
                s.staged = None;
                s.ready = true;
            });
            // Compiled modules of sets no longer active can go.
            let keep: Vec<String> = self.active.load().iter().flat_map(|s| s.modules.iter().map(|m| m.spec.module.sha256.clone())).collect();
            self.ctx.sandbox.retain(&keep);
        }
        let Some(set) = self.active.load_full() else { return None };
        let mut opts = PeriodOptions::new(&self.cfg.out_dir);
        opts.concurrency = self.cfg.agent.concurrency;
        opts.archive_max_bytes = self.cfg.agent.archive_max_bytes;
        opts.process_started = self.process_started;
        opts.warnings = self.staging.take_warnings();
        opts.module_set = Some(set.metadata());
        opts.obfuscate_networking = self.cfg.agent.obfuscates_networking();
        let period_no = self.status.get().periods + 1;
        let span = tracing::info_span!("period", n = period_no, generation = set.generation);
        let result = gather::run_period(self.ctx.sandbox.clone(), api.clone(), set.specs(), Vec::new(), &opts)
            .instrument(span)
            .await;
        match result {
            Ok(result) => {
                let size = std::fs::metadata(&result.archive).map(|m| m.len()).unwrap_or(0);
                self.metrics.period(&result.metadata, size);
                let records = result.metadata.status_reports.iter().map(|r| r.records_count).sum();
                let failed = result.metadata.status_reports.iter().filter(|r| r.errors.is_some()).count() as u64;
                tracing::info!(archive = %result.archive.display(), records, failed, "period done");
                self.status.update(|s| {
                    s.periods += 1;
                    s.last_archive = Some(ArchiveStatus { path: result.archive.display().to_string(), at: now(), records, failed_gatherers: failed });
                });
                Some(result)
            }
            Err(e) => {
                tracing::error!("period failed, no archive written: {e}");
                // The warnings were not delivered; keep them for the next archive.
                for w in opts.warnings {
                    self.staging.warn(w);
                }
                self.status.update(|s| {
                    s.periods += 1;
                    s.last_error = Some(crate::status::Refusal { at: now(), source: "archive".into(), reason: e.to_string(), class: None });
                });
                None
            }
        }
    }
}
