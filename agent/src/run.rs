//! `gather-agent run`: the periodic agent. Each period starts by activating the staged module
//! set (if any), runs every gatherer of the active set once and writes one archive. The update
//! loop (`update.rs`) feeds staged sets in the background.
//!
//! The configuration can be reloaded while it runs (`reload.rs`): a new one applies from the
//! next period. On shutdown, a running period gets the grace to finish; then it is abandoned:
//! its gatherers and their in-flight API requests are cancelled, and no archive is written.
//! `/healthz` reports the loop stuck when a step overruns its bound (`liveness.rs`).

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
    /// Serve the endpoints over HTTPS with this certificate.
    pub tls: Option<crate::endpoints::TlsFiles>,
    /// Where the cgroup file system is mounted (for the container's memory limit); `None`:
    /// [`crate::cgroup::DEFAULT_ROOT`].
    pub cgroup_root: Option<PathBuf>,
    /// Added to every liveness bound ([`crate::liveness`]).
    pub liveness_slack: Duration,
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
            tls: None,
            cgroup_root: None,
            liveness_slack: crate::liveness::DEFAULT_SLACK,
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

    /// Everything checked before the agent starts, and before a reloaded configuration is
    /// accepted: [`Self::validate`], URL schemes, the memory caps against the container's
    /// memory limit, the serving certificate.
    pub fn check(&self) -> Result<(), RunError> {
        self.validate()?;
        for (what, url) in [("index URL", &self.index_url), ("upload URL", &self.upload.as_ref().map(|u| u.url.clone()))] {
            if let Some(u) = url.as_ref().filter(|u| !matches!(u.scheme(), "http" | "https")) {
                return Err(RunError::Scheme { what, url: crate::redact::url(u), scheme: u.scheme().to_owned() });
            }
        }
        let root = self.cgroup_root.clone().unwrap_or_else(|| PathBuf::from(crate::cgroup::DEFAULT_ROOT));
        crate::cgroup::check_memory(&self.agent, crate::cgroup::memory_limit(&root))?;
        if let Some(t) = &self.tls {
            crate::endpoints::check_tls(t)?;
        }
        Ok(())
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
    /// A URL with a scheme the agent cannot fetch.
    #[error("{what} {url}: unsupported scheme {scheme:?} (use http or https)")]
    Scheme {
        /// Which URL.
        what: &'static str,
        /// The URL, redacted.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The gatherers' memory caps do not fit in the container's memory limit.
    #[error(transparent)]
    Memory(#[from] crate::cgroup::MemoryOverCommit),
    /// The serving certificate cannot be used.
    #[error("serving certificate: {0}")]
    Tls(#[from] crate::endpoints::TlsError),
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
    liveness: crate::liveness::Liveness,
    reloader: Option<crate::reload::Reloader>,
    trigger: crate::reload::ReloadTrigger,
}

impl Agent {
    /// Opens (and locks) the state dir and restores the last accepted set, if any.
    pub fn new(cfg: RunConfig) -> Result<Self, RunError> {
        if cfg.index_url.is_none() && cfg.modules_dir.is_none() && cfg.default_modules.is_empty() {
            return Err(RunError::NoSource);
        }
        cfg.check()?;
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
        let ctx = Ctx::new(Arc::new(Sandbox::new()), state, cfg.agent.clone());
        status.update(|s| {
            s.config = Some(crate::status::ConfigStatus {
                file: None,
                sha256: None,
                generation: 1,
                loaded_at: now(),
                first_period: None,
                last_reload: None,
                restart_required: Vec::new(),
            })
        });
        Ok(Agent {
            liveness: crate::liveness::Liveness::new(cfg.liveness_slack),
            reloader: None,
            trigger: crate::reload::ReloadTrigger::default(),
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

    /// Reloads the configuration with `reloader` on [`Self::reload_trigger`] and when its
    /// file changes.
    pub fn with_reloader(mut self, reloader: crate::reload::Reloader) -> Self {
        if let Some(f) = &reloader.file {
            let (file, sha256) = (f.display().to_string(), crate::reload::file_hash(f));
            self.status.update(|s| {
                if let Some(c) = &mut s.config {
                    c.file = Some(file);
                    c.sha256 = sha256;
                }
            });
        }
        self.reloader = Some(reloader);
        self
    }

    /// Asks for a reload (SIGHUP).
    pub fn reload_trigger(&self) -> crate::reload::ReloadTrigger {
        self.trigger.clone()
    }

    /// Flips when a period is abandoned: give it to the REST bridge
    /// ([`crate::policy::Bridge::cancelled_by`]) so in-flight API requests end at once.
    pub fn cancel_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ctx.sandbox.cancel_signal()
    }

    /// The period loop's liveness (`/healthz`).
    pub fn liveness(&self) -> crate::liveness::Liveness {
        self.liveness.clone()
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
    /// foreground. A period in progress when shutdown arrives gets the shutdown grace to
    /// finish; then it is abandoned (gatherers and in-flight API requests cancelled), and
    /// nothing of its archive is left behind.
    pub async fn run(mut self, api: Arc<dyn Api>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        if let Some(l) = self.listener.take() {
            match tokio::net::TcpListener::from_std(l) {
                Ok(listener) => {
                    let endpoints = crate::endpoints::Endpoints { status: self.status.clone(), metrics: self.metrics.clone(), liveness: self.liveness.clone() };
                    let (tls, mut rx) = (self.cfg.tls.clone(), shutdown.clone());
                    tasks.push(tokio::spawn(async move {
                        let stop = async move {
                            let _ = rx.wait_for(|s| *s).await;
                        };
                        if let Err(e) = crate::endpoints::serve(listener, endpoints, tls, stop).await {
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
            stage_defaults(&self.ctx, &self.staging, &self.cfg.default_modules);
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
                    tracing::info!(serial = part.serial, "restored the last accepted index from the state dir");
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
        // Reloaded settings reach the period loop through this channel, at a step boundary.
        let (settings_tx, mut settings) = tokio::sync::watch::channel(Arc::new(self.cfg.clone()));
        if let Some(reloader) = self.reloader.take() {
            let reloading = Reloading {
                reloader,
                trigger: self.trigger.clone(),
                ctx: self.ctx.clone(),
                staging: self.staging.clone(),
                status: self.status.clone(),
                metrics: self.metrics.clone(),
                settings: settings_tx,
            };
            tasks.push(tokio::spawn(reloading.run(shutdown.clone())));
        }

        let mut next = Instant::now();
        let mut last_start: Option<Instant> = None;
        'periods: loop {
            // Nothing to run until a first set exists.
            self.liveness.idle();
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
            loop {
                self.liveness.expect("waiting for the next period", next.saturating_duration_since(Instant::now()));
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => break,
                    _ = shutdown.changed() => break 'periods,
                    Ok(()) = settings.changed() => {
                        // A new period length counts from the start of the last period.
                        self.apply(&settings.borrow_and_update());
                        if let Some(s) = last_start {
                            next = s.checked_add(self.cfg.period).unwrap_or(s);
                        }
                    }
                }
            }
            if settings.has_changed().unwrap_or(false) {
                self.apply(&settings.borrow_and_update());
            }
            let started = Instant::now();
            last_start = Some(started);
            let period = self.period(&api);
            tokio::pin!(period);
            let finished = tokio::select! {
                r = &mut period => r,
                _ = shutdown.changed() => {
                    let grace = self.cfg.shutdown_grace;
                    self.liveness.expect("the shutdown grace", grace);
                    tracing::info!("shutdown requested during a period; letting it finish (up to {})", humantime::format_duration(grace));
                    if tokio::time::timeout(grace, &mut period).await.is_err() {
                        tracing::warn!("abandoning the period: stopping the gatherers and their API requests; no archive is written");
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

    /// Takes the period-scoped `run` settings of a reloaded configuration (the rest is read
    /// from the swapped agent config at the start of each period).
    fn apply(&mut self, new: &RunConfig) {
        self.cfg.period = new.period;
        self.cfg.jitter = new.jitter;
        self.cfg.retention = new.retention.clone();
        self.cfg.upload = new.upload.clone();
        self.cfg.shutdown_grace = new.shutdown_grace;
        self.cfg.agent = new.agent.clone();
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
        // Every attempt is bounded by its timeout, and the waits between them double.
        let waits = cfg.backoff.saturating_mul(2u32.saturating_pow(cfg.attempts.min(16)));
        self.liveness.expect("the upload", cfg.timeout.saturating_mul(cfg.attempts.max(1)).saturating_add(waits));
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
                serial = staged.serial,
                "activating module set: {}",
                staged.modules.iter().map(|m| format!("{}@{}", m.spec.module.manifest.name, m.spec.module.manifest.version)).collect::<Vec<_>>().join(", ")
            );
            let status = staged.status(Some(at));
            self.active.store(Some(staged));
            self.metrics.activation();
            self.metrics.known_gatherers(staged_names(&self.active).iter().map(String::as_str));
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
        let largest = set.modules.iter().map(|m| m.spec.limits.deadline()).max().unwrap_or_default();
        self.liveness.expect(format!("period {period_no}"), crate::liveness::period_bound(set.modules.len(), opts.concurrency, largest));
        self.status.update(|s| {
            if let Some(c) = s.config.as_mut().filter(|c| c.first_period.is_none()) {
                c.first_period = Some(period_no);
            }
        });
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

/// The gatherer names of the active set.
fn staged_names(active: &ArcSwapOption<ModuleSet>) -> Vec<String> {
    active.load().iter().flat_map(|s| s.modules.iter().map(|m| m.spec.module.manifest.name.clone())).collect()
}

/// Loads the embedded defaults under the current configuration and stages them.
fn stage_defaults(ctx: &Ctx, staging: &Staging, defaults: &[ModuleSource]) {
    let config = ctx.config.load();
    let set = Loader::new(&ctx.sandbox, &config).load_set(defaults);
    for r in &set.rejected {
        staging.refuse(&format!("embedded {}", r.name), &r.refused);
    }
    let modules = set.modules.into_iter().map(|(spec, source)| ActiveModule { spec, source }).collect();
    staging.set_part(SourceKind::Defaults, Part { modules, serial: None });
}

/// The reload task: waits for SIGHUP or a change of the config file, builds and checks the
/// new configuration, then swaps it in for the next period, or refuses it.
struct Reloading {
    reloader: crate::reload::Reloader,
    trigger: crate::reload::ReloadTrigger,
    ctx: Ctx,
    staging: Arc<Staging>,
    status: StatusBoard,
    metrics: Arc<Metrics>,
    settings: tokio::sync::watch::Sender<Arc<RunConfig>>,
}

impl Reloading {
    async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut watch = match &self.reloader.file {
            Some(f) => match crate::reload::watch(f) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(file = %f.display(), "cannot watch the config file ({e}); reload with SIGHUP");
                    None
                }
            },
            None => None,
        };
        let mut seen = self.reloader.file.as_deref().and_then(crate::reload::file_hash);
        loop {
            let trigger = tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.trigger.requested() => "SIGHUP",
                Some(()) = async { match &mut watch { Some((_, rx)) => rx.recv().await, None => std::future::pending().await } } => "file changed",
            };
            if trigger == "file changed" {
                // A ConfigMap update or an editor's save is a burst of events.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some((_, rx)) = &mut watch {
                    while rx.try_recv().is_ok() {}
                }
                let now_hash = self.reloader.file.as_deref().and_then(crate::reload::file_hash);
                if now_hash == seen {
                    continue;
                }
                seen = now_hash;
            } else {
                seen = self.reloader.file.as_deref().and_then(crate::reload::file_hash);
            }
            self.reload(trigger, seen.clone());
        }
    }

    fn reload(&self, trigger: &str, sha256: Option<String>) {
        let built = (self.reloader.build)().and_then(|c| c.check().map(|()| c).map_err(|e| e.to_string()));
        let new = match built {
            Ok(c) => c,
            Err(error) => {
                tracing::error!(trigger, "configuration refused, the previous one stays: {error}");
                self.metrics.config_reload("refused");
                self.status.update(|s| {
                    if let Some(c) = &mut s.config {
                        c.last_reload = Some(crate::status::ReloadStatus { at: now(), trigger: trigger.into(), result: "refused".into(), error: Some(error.clone()) });
                    }
                    s.last_error = Some(crate::status::Refusal { at: now(), source: "config".into(), reason: error, class: None });
                });
                return;
            }
        };
        let restart = crate::reload::restart_only_changes(&self.settings.borrow(), &new);
        if !restart.is_empty() {
            tracing::warn!(trigger, "these changed settings take effect only at the next start: {}", restart.join(", "));
        }
        self.ctx.config.store(Arc::new(new.agent.clone()));
        let generation = self.status.get().config.map_or(1, |c| c.generation) + 1;
        tracing::info!(trigger, generation, "configuration reloaded; it applies from the next period");
        self.metrics.config_reload("applied");
        self.status.update(|s| {
            let file = s.config.as_ref().and_then(|c| c.file.clone());
            s.config = Some(crate::status::ConfigStatus {
                file,
                sha256,
                generation,
                loaded_at: now(),
                first_period: None,
                last_reload: Some(crate::status::ReloadStatus { at: now(), trigger: trigger.into(), result: "applied".into(), error: None }),
                restart_required: restart.iter().map(|s| s.to_string()).collect(),
            });
        });
        // Restart-only settings keep their values in force, so the next comparison is
        // against what actually runs.
        let mut keep = (**self.settings.borrow()).clone();
        keep.period = new.period;
        keep.jitter = new.jitter;
        keep.retention = new.retention.clone();
        keep.upload = new.upload.clone();
        keep.shutdown_grace = new.shutdown_grace;
        keep.agent = new.agent.clone();
        if !new.default_modules.is_empty() || !keep.default_modules.is_empty() {
            stage_defaults(&self.ctx, &self.staging, &keep.default_modules);
        }
        self.settings.send_replace(Arc::new(keep));
        self.staging.reconfigure();
    }
}
