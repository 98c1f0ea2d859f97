//! The update loop: where new gatherer versions come from and how they are trusted.
//!
//! Two sources feed one staged set:
//! - an **index URL**, polled with `If-None-Match` (a 304 costs nothing); a changed index is
//!   verified completely before anything is staged: signature (when a key is configured),
//!   structure, serial (no rollback, no replay), expiry, then every module's size and sha256,
//!   then each module compiles under the sandbox limits, matches its index entry and declares
//!   only what the operator's policy allows;
//! - a **local modules directory**, watched with `notify`; a broken file keeps the previous
//!   version of that gatherer.
//!
//! Modules are loaded by the one loader (`loader.rs`), so `disabled`, the policy check and
//! the limits apply here exactly as under `gather`. The embedded defaults are a third part,
//! used only while neither source has provided a set (a whole-set replacement, see
//! docs/CONFIG.md).
//!
//! A verified set is only *staged*: the period loop (`run.rs`) activates it at the start of the
//! next period, so a running period never changes modules. Any failure leaves the last-known-good
//! set active and is reported in the log, in `status.json` and in the next archive's metadata.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use serde_json::json;
use tokio::sync::Notify;

use crate::config::AgentConfig;
use crate::gather::ModuleSpec;
use crate::index::{self, Index, IndexEntry};
use crate::errors::{RefusalReason, Refused};
use crate::loader::{Loaded, Loader, ModuleSource};
use crate::sandbox::Sandbox;
use crate::util::sha256_hex;
use crate::redact;
use crate::state::{Accepted, SerialFloor, StateDir};
use crate::status::{now, ModuleStatus, PollStatus, SetStatus, StatusBoard};

/// A module of a set, with where it came from.
#[derive(Clone)]
pub struct ActiveModule {
    /// Ready to run.
    pub spec: ModuleSpec,
    /// `index serial 3 (URL)` or `dir PATH/file.wasm`.
    pub source: String,
}

/// A complete, verified set of gatherers: what one period runs.
pub struct ModuleSet {
    /// Increases with every set built.
    pub generation: u64,
    /// Index serial, when an index contributed.
    pub serial: Option<u64>,
    /// The modules, sorted by name.
    pub modules: Vec<ActiveModule>,
    /// When it was staged.
    pub staged_at: String,
}

impl ModuleSet {
    /// Its status form.
    pub fn status(&self, activated_at: Option<String>) -> SetStatus {
        SetStatus {
            generation: self.generation,
            serial: self.serial,
            staged_at: self.staged_at.clone(),
            activated_at,
            modules: self
                .modules
                .iter()
                .map(|m| ModuleStatus {
                    name: m.spec.module.manifest.name.clone(),
                    version: m.spec.module.manifest.version.clone(),
                    sha256: m.spec.module.sha256.clone(),
                    source: m.source.clone(),
                })
                .collect(),
        }
    }

    /// What goes into the archive's metadata as `module_set`.
    pub fn metadata(&self) -> serde_json::Value {
        json!({
            "generation": self.generation,
            "serial": self.serial,
            "stagedAt": self.staged_at,
            "modules": self.status(None).modules,
        })
    }

    /// The specs to run.
    pub fn specs(&self) -> Vec<ModuleSpec> {
        self.modules.iter().map(|m| m.spec.clone()).collect()
    }
}

/// One source's contribution to the set.
#[derive(Clone, Default)]
pub struct Part {
    /// Its modules.
    pub modules: Vec<ActiveModule>,
    /// The index serial, for the index part.
    pub serial: Option<u64>,
}

#[derive(Default)]
struct Parts {
    defaults: Option<Part>,
    index: Option<Part>,
    dir: Option<Part>,
    generation: u64,
    staged: Option<Arc<ModuleSet>>,
}

/// Where staged sets wait for the period loop, plus warnings for the next archive.
pub struct Staging {
    parts: Mutex<Parts>,
    warnings: Mutex<Vec<String>>,
    /// Woken when a set is staged.
    pub notify: Notify,
    status: StatusBoard,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Bumped when the operator's configuration is reloaded: each source then rebuilds its
    /// part under the new settings.
    reconfigured: tokio::sync::watch::Sender<u64>,
}

/// Which source a part came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The embedded default gatherers: the set while no configured source has one.
    Defaults,
    /// The index URL.
    Index,
    /// The local modules directory.
    Dir,
}

impl Staging {
    /// An empty staging area reporting into `status`.
    pub fn new(status: StatusBoard) -> Self {
        Staging {
            parts: Mutex::new(Parts::default()),
            warnings: Mutex::new(Vec::new()),
            notify: Notify::new(),
            status,
            metrics: None,
            reconfigured: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Tells every source that the configuration changed ([`Self::reconfigurations`]).
    pub fn reconfigure(&self) {
        self.reconfigured.send_modify(|g| *g += 1);
    }

    /// Changes whenever [`Self::reconfigure`] is called.
    pub fn reconfigurations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reconfigured.subscribe()
    }

    /// The same, also counting refusals in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Replaces one source's part and stages the combined set.
    pub fn set_part(&self, kind: SourceKind, part: Part) {
        let set = {
            let mut p = self.parts.lock().expect("staging lock");
            match kind {
                SourceKind::Defaults => p.defaults = Some(part),
                SourceKind::Index => p.index = Some(part),
                SourceKind::Dir => p.dir = Some(part),
            }
            p.generation += 1;
            // A published set replaces the defaults as a whole (docs/CONFIG.md): an accepted
            // index (even an empty one), or a modules dir with at least one module.
            let published = p.index.is_some() || p.dir.as_ref().is_some_and(|d| !d.modules.is_empty());
            let mut modules: Vec<ActiveModule> = if published {
                p.index.as_ref().map(|i| i.modules.clone()).unwrap_or_default()
            } else {
                p.defaults.as_ref().map(|d| d.modules.clone()).unwrap_or_default()
            };
            for m in p.dir.iter().filter(|_| published).flat_map(|d| d.modules.iter()) {
                let name = &m.spec.module.manifest.name;
                if modules.iter().any(|x| &x.spec.module.manifest.name == name) {
                    // The index is the signed source of truth; a local file cannot shadow it.
                    self.warn(format!("{}: gatherer {name:?} is also published in the index; the index version is used", m.source));
                    continue;
                }
                modules.push(m.clone());
            }
            modules.sort_by(|a, b| a.spec.module.manifest.name.cmp(&b.spec.module.manifest.name));
            let set = Arc::new(ModuleSet {
                generation: p.generation,
                serial: p.index.as_ref().and_then(|i| i.serial),
                modules,
                staged_at: now(),
            });
            p.staged = Some(set.clone());
            set
        };
        tracing::info!(generation = set.generation, serial = set.serial, modules = set.modules.len(), "staged a new module set; it becomes active at the start of the next period");
        self.status.update(|s| s.staged = Some(set.status(None)));
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Takes the staged set, if any (the period loop activates it).
    pub fn take_staged(&self) -> Option<Arc<ModuleSet>> {
        self.parts.lock().expect("staging lock").staged.take()
    }

    /// Whether a set is waiting.
    pub fn has_staged(&self) -> bool {
        self.parts.lock().expect("staging lock").staged.is_some()
    }

    /// Adds a warning for the next archive's metadata.
    pub fn warn(&self, msg: String) {
        tracing::warn!("{msg}");
        let mut w = self.warnings.lock().expect("warnings lock");
        if w.len() < 100 {
            w.push(msg);
        }
    }

    /// Takes the warnings collected since the last archive.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().expect("warnings lock"))
    }

    /// Records a refused update: log, status, metric and next archive, all with the same
    /// reason class.
    pub fn refuse(&self, source: &str, refused: &Refused) {
        self.status.refuse(source, refused);
        if let Some(m) = &self.metrics {
            m.refusal(refused.reason);
        }
        self.warn(format!("update refused ({source}): {refused}; the last-known-good set stays active"));
    }
}

/// What the sources need to build module specs.
#[derive(Clone)]
pub struct Ctx {
    /// The engine (and its compiled-module cache).
    pub sandbox: Arc<Sandbox>,
    /// The state dir (download cache, last accepted index).
    pub state: Arc<StateDir>,
    /// Operator settings: limits, policy, config per module (swapped by a reload).
    pub config: Arc<arc_swap::ArcSwap<AgentConfig>>,
}

impl Ctx {
    /// A context with a fixed starting configuration.
    pub fn new(sandbox: Arc<Sandbox>, state: Arc<StateDir>, config: AgentConfig) -> Self {
        Ctx { sandbox, state, config: Arc::new(arc_swap::ArcSwap::from_pointee(config)) }
    }

    /// Loads one module with the one loader's rules ([`crate::loader`]). `Ok(None)`: the
    /// operator disabled it.
    fn spec(&self, bytes: &[u8], entry: Option<&IndexEntry>, origin: &str) -> Result<Option<ModuleSpec>, Refused> {
        let src = ModuleSource { origin: origin.to_owned(), bytes: bytes.into(), entry: entry.cloned() };
        let config = self.config.load();
        match Loader::new(&self.sandbox, &config).load(&src) {
            Ok(Loaded::Ready(spec)) => Ok(Some(spec)),
            Ok(Loaded::Disabled(_)) => Ok(None),
            Err(r) => Err(r.refused),
        }
    }
}

/// Settings of the index source.
#[derive(Clone, Debug)]
pub struct IndexSettings {
    /// The index URL.
    pub url: reqwest::Url,
    /// When set, a valid `index.json.sig` is required.
    pub public_key: Option<VerifyingKey>,
    /// Largest module download accepted.
    pub max_module_bytes: u64,
    /// Timeout for each download.
    pub timeout: Duration,
}

/// The result of one poll.
#[derive(Debug)]
pub enum PollOutcome {
    /// 304: nothing to do.
    NotModified,
    /// 200 with the bytes already accepted.
    Unchanged,
    /// A new index, verified and ready to stage.
    Accepted(Part),
    /// The index or a module was refused.
    Refused(Refused),
    /// The server could not be reached or answered with an error.
    Failed(String),
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part").field("serial", &self.serial).field("modules", &self.modules.len()).finish()
    }
}

/// The index source: polling, downloading and verifying.
pub struct IndexSource {
    settings: IndexSettings,
    /// The index URL as it may be shown (no credentials, no query values).
    shown_url: String,
    http: reqwest::Client,
    /// The index whose modules are staged (for `If-None-Match` and "unchanged").
    accepted: Option<Accepted>,
    /// The rollback floor, read from the state dir once and raised with every acceptance.
    /// It is independent of `accepted`: a restore that fails (a damaged cache) leaves the
    /// agent without a staged index, never without its floor.
    floor: Option<SerialFloor>,
    floor_loaded: bool,
    problems: Vec<String>,
    /// Module downloads made (for status, metrics and tests).
    pub downloads: u64,
}

/// An error with its causes (reqwest hides the interesting part, such as a refused redirect,
/// in the source chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

/// Reads a body up to `cap` bytes; `Err(None)` means it was longer.
async fn read_capped(resp: reqwest::Response, cap: u64) -> Result<Vec<u8>, Option<String>> {
    let mut resp = resp;
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Some(chain(&e)))? {
        if (buf.len() + chunk.len()) as u64 > cap {
            return Err(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

impl IndexSource {
    /// A source for `settings`; redirects are followed only within the same origin.
    pub fn new(settings: IndexSettings) -> Self {
        crate::tls::install_crypto_provider();
        let origin = settings.url.origin();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 3 {
                    attempt.error("too many redirects")
                } else if attempt.url().origin() != origin {
                    let to = attempt.url().to_string();
                    attempt.error(format!("redirect to another origin ({to}) refused"))
                } else {
                    attempt.follow()
                }
            }))
            .connect_timeout(settings.timeout)
            .user_agent(concat!("gather-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client builds");
        let shown_url = redact::url(&settings.url);
        IndexSource { settings, shown_url, http, accepted: None, floor: None, floor_loaded: false, problems: Vec::new(), downloads: 0 }
    }

    /// The index URL, redacted (userinfo and query values hidden): the only form shown.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// Problems found in the state dir (a damaged `serial.json`), once, for reporting.
    pub fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.problems)
    }

    /// The highest accepted serial known, if any.
    pub fn floor(&self) -> Option<&SerialFloor> {
        self.floor.as_ref()
    }

    fn load_floor(&mut self, ctx: &Ctx) {
        if self.floor_loaded {
            return;
        }
        let reading = ctx.state.serial_floor(&self.shown_url);
        for p in &reading.problems {
            tracing::error!("state dir: {p}");
        }
        // A floor known only from accepted.json (an older agent's state, or a damaged
        // serial.json) is written down at once, so losing accepted.json later loses nothing.
        if let Some(f) = &reading.floor {
            if let Err(e) = ctx.state.raise_serial_floor(f) {
                self.problems.push(format!("cannot write serial.json: {e}"));
            }
        }
        self.problems.extend(reading.problems);
        self.floor = reading.floor;
        self.floor_loaded = true;
    }

    /// `msg` with every trace of the index URL's secrets removed (library errors quote URLs).
    fn scrub(&self, msg: String) -> String {
        redact::scrub(&msg, &self.settings.url)
    }

    /// Restores the last accepted index from the state dir, verified again (signature and
    /// every module's sha256). Expiry is only warned about: it guards *accepting* stale
    /// indexes, and the last-known-good set is better than gathering nothing.
    ///
    /// The rollback floor is read first and kept whatever happens next: when a cached module
    /// is damaged, the restore fails, and the next poll downloads and verifies everything
    /// again, still refusing any serial below the floor.
    pub fn restore(&mut self, ctx: &Ctx) -> Result<Option<Part>, String> {
        self.load_floor(ctx);
        let Some((bytes, sig, accepted)) = ctx.state.load_accepted() else { return Ok(None) };
        let recorded = redact::url_str(&accepted.url);
        if recorded != self.shown_url {
            return Err(format!("the state dir holds an index from {recorded}, not {}; ignoring it", self.shown_url));
        }
        if sha256_hex(&bytes) != accepted.sha256 {
            return Err("the persisted index does not match its recorded sha256".into());
        }
        if let Some(key) = &self.settings.public_key {
            let sig = sig.as_deref().ok_or("the persisted index has no signature, and a public key is configured")?;
            index::verify(key, &bytes, sig).map_err(|e| e.to_string())?;
        }
        let index = Index::parse(&bytes).map_err(|e| e.to_string())?;
        if let Err(e) = index.check_expiry(time::OffsetDateTime::now_utc()) {
            tracing::warn!("the persisted index has expired ({e}); gathering with it until a new one is accepted");
        }
        let mut part = Part { modules: Vec::new(), serial: Some(index.serial) };
        for entry in &index.gatherers {
            let bytes = ctx
                .state
                .cached_module(&entry.sha256)
                .ok_or_else(|| format!("module {} ({}) is missing from the cache", entry.name, entry.sha256))?;
            let source = format!("index serial {} (restored from the state dir)", index.serial);
            if let Some(spec) = ctx.spec(&bytes, Some(entry), &source).map_err(|e| e.about(&entry.name).to_string())? {
                part.modules.push(ActiveModule { spec, source });
            }
        }
        if accepted.url != recorded {
            // Written by an older agent with the raw URL: rewrite it without the secrets.
            let clean = Accepted { url: recorded, ..accepted.clone() };
            if let Err(e) = ctx.state.save_accepted(&bytes, sig.as_deref(), &clean) {
                tracing::warn!("rewriting accepted.json without credentials: {e}");
            }
        }
        self.accepted = Some(Accepted { etag: None, url: self.shown_url.clone(), ..accepted });
        Ok(Some(part))
    }

    /// Polls once: conditional GET, then full verification of anything new.
    pub async fn poll(&mut self, ctx: &Ctx) -> PollOutcome {
        match self.poll_inner(ctx).await {
            PollOutcome::Refused(r) => PollOutcome::Refused(r.map_detail(|d| self.scrub(d))),
            PollOutcome::Failed(r) => PollOutcome::Failed(self.scrub(r)),
            other => other,
        }
    }

    async fn poll_inner(&mut self, ctx: &Ctx) -> PollOutcome {
        self.load_floor(ctx);
        let mut req = self.http.get(self.settings.url.clone()).timeout(self.settings.timeout);
        if let Some(etag) = self.accepted.as_ref().and_then(|a| a.etag.clone()) {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return PollOutcome::Failed(format!("GET {}: {}", self.shown_url, chain(&e))),
        };
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return PollOutcome::NotModified;
        }
        if !resp.status().is_success() {
            return PollOutcome::Failed(format!("GET {}: HTTP {}", self.shown_url, resp.status()));
        }
        let etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = match read_capped(resp, index::MAX_INDEX_BYTES as u64).await {
            Ok(b) => b,
            Err(None) => return PollOutcome::Refused(Refused::new(RefusalReason::TooLarge, format!("the index is larger than {} bytes", index::MAX_INDEX_BYTES))),
            Err(Some(e)) => return PollOutcome::Failed(format!("reading {}: {e}", self.shown_url)),
        };
        let sha = sha256_hex(&bytes);
        if let Some(a) = &mut self.accepted {
            if a.sha256 == sha {
                a.etag = etag;
                return PollOutcome::Unchanged;
            }
        }
        match self.verify(ctx, &bytes, &sha, etag).await {
            Ok(part) => PollOutcome::Accepted(part),
            Err(Verdict::Refused(r)) => PollOutcome::Refused(r),
            Err(Verdict::Failed(r)) => PollOutcome::Failed(r),
        }
    }

    async fn verify(&mut self, ctx: &Ctx, bytes: &[u8], sha: &str, etag: Option<String>) -> Result<Part, Verdict> {
        use Verdict::{Failed, Refused};
        use crate::errors::Refused as R;
        let sig = match &self.settings.public_key {
            None => None,
            Some(key) => {
                // `index.json.sig` beside the index, with the index URL's query (a token).
                let mut sig_url = self.settings.url.clone();
                sig_url.set_path(&format!("{}.sig", self.settings.url.path()));
                sig_url.set_fragment(None);
                let sig_req = self.http.get(sig_url.clone());
                let sig_url = redact::url(&sig_url);
                let resp = sig_req
                    .timeout(self.settings.timeout)
                    .send()
                    .await
                    .map_err(|e| Failed(format!("GET {sig_url}: {}", chain(&e))))?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return Err(Refused(R::new(RefusalReason::BadSignature, "the index is not signed (no index.json.sig) and a public key is configured")));
                }
                if !resp.status().is_success() {
                    return Err(Failed(format!("GET {sig_url}: HTTP {}", resp.status())));
                }
                let sig = read_capped(resp, 4096).await.map_err(|e| match e {
                    None => Refused(R::new(RefusalReason::BadSignature, "the signature file is too large")),
                    Some(e) => Failed(format!("reading {sig_url}: {e}")),
                })?;
                index::verify(key, bytes, &sig).map_err(|e| Refused(R::new(RefusalReason::BadSignature, e.to_string())))?;
                Some(sig)
            }
        };
        let index = Index::parse(bytes).map_err(|e| Refused(R::new(RefusalReason::Malformed, e.to_string())))?;
        if let Some(f) = &self.floor {
            if index.serial < f.serial {
                return Err(Refused(R::new(
                    RefusalReason::Rollback,
                    format!("serial {} is lower than the accepted serial {}", index.serial, f.serial),
                )));
            }
            // The same serial with the same bytes is the accepted index itself, verified
            // again (after a damaged cache, say); with other bytes it is a replay.
            if index.serial == f.serial && f.sha256 != sha {
                return Err(Refused(R::new(
                    RefusalReason::Replay,
                    format!("serial {} was already accepted with different content", index.serial),
                )));
            }
        }
        index
            .check_expiry(time::OffsetDateTime::now_utc())
            .map_err(|e| Refused(R::new(RefusalReason::Expired, e.to_string())))?;

        let mut part = Part { modules: Vec::new(), serial: Some(index.serial) };
        for entry in &index.gatherers {
            let module_bytes = match ctx.state.cached_module(&entry.sha256) {
                Some(b) => b,
                None => {
                    let b = self.download(entry).await?;
                    ctx.state
                        .store_module(&entry.sha256, &b)
                        .map_err(|e| Failed(format!("caching {}: {e}", entry.name)))?;
                    b
                }
            };
            if module_bytes.len() as u64 != entry.size {
                return Err(Refused(R::new(RefusalReason::SizeMismatch, format!("{}: the index says {} bytes, the module has {}", entry.name, entry.size, module_bytes.len()))));
            }
            let source = format!("index serial {} ({})", index.serial, self.shown_url);
            // A module the operator disabled is verified like the others but not run.
            if let Some(spec) = ctx.spec(&module_bytes, Some(entry), &source).map_err(|e| Refused(e.about(&entry.name)))? {
                part.modules.push(ActiveModule { spec, source });
            }
        }
        // The floor first: if persisting fails halfway, it is ahead of accepted.json, never behind.
        let floor = SerialFloor { url: self.shown_url.clone(), serial: index.serial, sha256: sha.to_owned() };
        ctx.state
            .raise_serial_floor(&floor)
            .map_err(|e| Failed(format!("persisting the rollback floor (serial.json): {e}")))?;
        self.floor = Some(floor);
        let accepted = Accepted { url: self.shown_url.clone(), serial: index.serial, etag, sha256: sha.to_owned() };
        ctx.state
            .save_accepted(bytes, sig.as_deref(), &accepted)
            .map_err(|e| Failed(format!("persisting the accepted index: {e}")))?;
        self.accepted = Some(accepted);
        Ok(part)
    }

    async fn download(&mut self, entry: &IndexEntry) -> Result<Vec<u8>, Verdict> {
        use Verdict::{Failed, Refused};
        use crate::errors::Refused as R;
        let url = index::module_url(&self.settings.url, &entry.url)
            .map_err(|e| Refused(R::new(RefusalReason::Malformed, format!("gatherer {:?}: url {:?}: {e}", entry.name, entry.url))))?;
        self.downloads += 1;
        let shown = redact::url(&url);
        let resp = self
            .http
            .get(url.clone())
            .timeout(self.settings.timeout)
            .send()
            .await
            .map_err(|e| Failed(format!("downloading {} from {shown}: {}", entry.name, chain(&e))))?;
        if !resp.status().is_success() {
            return Err(Failed(format!("downloading {} from {shown}: HTTP {}", entry.name, resp.status())));
        }
        let cap = entry.size.min(self.settings.max_module_bytes);
        let bytes = read_capped(resp, cap).await.map_err(|e| match e {
            None => Refused(R::new(RefusalReason::TooLarge, format!("{}: the download exceeds {cap} bytes", entry.name))),
            Some(e) => Failed(format!("downloading {}: {e}", entry.name)),
        })?;
        let got = sha256_hex(&bytes);
        if got != entry.sha256 {
            return Err(Refused(R::new(
                RefusalReason::Sha256Mismatch,
                format!("{}: expected {}, downloaded {} ({} bytes)", entry.name, entry.sha256, got, bytes.len()),
            )));
        }
        Ok(bytes)
    }
}

enum Verdict {
    Refused(Refused),
    Failed(String),
}

/// Polls the index until `shutdown`, staging every accepted index.
pub async fn poll_loop(
    mut source: IndexSource,
    ctx: Ctx,
    staging: Arc<Staging>,
    status: StatusBoard,
    poll_interval: Duration,
    jitter: f64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) {
    let mut failures = 0u32;
    let mut reconfigured = staging.reconfigurations();
    reconfigured.mark_unchanged();
    loop {
        let outcome = source.poll(&ctx).await;
        let (result, error) = match &outcome {
            PollOutcome::NotModified => ("304", None),
            PollOutcome::Unchanged => ("200", None),
            PollOutcome::Accepted(_) => ("200", None),
            PollOutcome::Refused(r) => ("200", Some(r.to_string())),
            PollOutcome::Failed(e) => ("error", Some(e.clone())),
        };
        if let Some(m) = &metrics {
            m.poll(result);
        }
        status.update(|s| s.last_poll = Some(PollStatus { at: now(), result: result.into(), error: error.clone() }));
        match outcome {
            PollOutcome::Accepted(part) => {
                failures = 0;
                let serial = part.serial;
                status.update(|s| s.last_accepted_serial = serial);
                tracing::info!(url = source.url(), serial, "accepted a new index");
                staging.set_part(SourceKind::Index, part);
            }
            PollOutcome::Refused(reason) => {
                failures = 0;
                // The staging area logs it and counts it under its class.
                staging.refuse(source.url(), &reason);
            }
            PollOutcome::Failed(e) => {
                failures += 1;
                tracing::warn!(url = source.url(), "poll failed: {e}");
                status.update(|s| {
                    s.last_error = Some(crate::status::Refusal { at: now(), source: source.url().to_owned(), reason: e.clone(), class: None })
                });
            }
            PollOutcome::NotModified | PollOutcome::Unchanged => failures = 0,
        }
        let wait = if failures > 0 {
            crate::util::backoff(failures - 1, Duration::from_millis(500), poll_interval)
        } else {
            poll_interval.mul_f64(1.0 + jitter * (crate::util::random_unit() * 2.0 - 1.0))
        };
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = shutdown.changed() => return,
                Ok(()) = reconfigured.changed() => {
                    // The accepted index, verified again and loaded under the new settings.
                    match source.restore(&ctx) {
                        Ok(Some(part)) => staging.set_part(SourceKind::Index, part),
                        Ok(None) => {}
                        Err(e) => staging.warn(format!(
                            "{}: the new configuration cannot be applied to the accepted index's modules ({e}); they keep their previous settings",
                            source.url()
                        )),
                    }
                }
            }
        }
    }
}

/// The local modules directory source.
pub struct DirSource {
    dir: PathBuf,
    last_good: BTreeMap<String, (String, ActiveModule)>,
    /// Files refused, by path, with the sha256 of the refused content: each distinct content
    /// is refused (logged, counted, reported) once, not at every rescan.
    refused: BTreeMap<PathBuf, String>,
}

impl DirSource {
    /// A source for `dir`.
    pub fn new(dir: &Path) -> Self {
        DirSource { dir: dir.to_owned(), last_good: BTreeMap::new(), refused: BTreeMap::new() }
    }

    /// Forgets which contents were refused, so they are judged (and reported) again: after
    /// a configuration change, the verdict may differ.
    pub fn forget_refusals(&mut self) {
        self.refused.clear();
    }

    /// Scans the directory. A file that fails to load keeps its previous version (if any)
    /// and is reported. Returns the part and whether it differs from the last scan.
    pub fn scan(&mut self, ctx: &Ctx, staging: &Staging) -> (Part, bool) {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
                .collect(),
            Err(e) => {
                staging.refuse(&self.dir.display().to_string(), &Refused::new(RefusalReason::Unreadable, e.to_string()));
                Vec::new()
            }
        };
        files.sort();
        let mut next: BTreeMap<String, (String, ActiveModule)> = BTreeMap::new();
        for path in files {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let source = format!("dir {}", path.display());
            let bytes = std::fs::read(&path);
            let content = match &bytes {
                Ok(b) => sha256_hex(b),
                Err(e) => format!("unreadable: {e}"),
            };
            if self.refused.get(&path) == Some(&content) {
                // Already refused as it is: keep what we had, say nothing again.
                if let Some(k) = self.last_good.get(&file).cloned() {
                    next.insert(file, k);
                }
                continue;
            }
            let loaded = bytes
                .map_err(|e| Refused::new(RefusalReason::Unreadable, e.to_string()))
                .and_then(|bytes| ctx.spec(&bytes, None, &source).map(|spec| (sha256_hex(&bytes), spec)));
            match loaded {
                Ok((sha, Some(spec))) => {
                    self.refused.remove(&path);
                    next.insert(file, (sha, ActiveModule { spec, source }));
                }
                // Disabled by the operator: not run, and no previous version is kept either.
                Ok((_, None)) => {
                    self.refused.remove(&path);
                }
                Err(e) => {
                    let kept = self.last_good.get(&file).cloned();
                    let note = if kept.is_some() { "; keeping its previous version" } else { "" };
                    staging.refuse(&source, &e.map_detail(|d| format!("{d}{note}")));
                    self.refused.insert(path.clone(), content);
                    if let Some(k) = kept {
                        next.insert(file, k);
                    }
                }
            }
        }
        // Files gone are forgotten: the same broken content put back is reported again.
        self.refused.retain(|p, _| p.exists());
        let changed = next.iter().map(|(f, (s, _))| (f, s)).ne(self.last_good.iter().map(|(f, (s, _))| (f, s)));
        self.last_good = next;
        let mut modules: Vec<ActiveModule> = Vec::new();
        for (file, (_, m)) in &self.last_good {
            let name = &m.spec.module.manifest.name;
            if modules.iter().any(|x| &x.spec.module.manifest.name == name) {
                staging.refuse(
                    &format!("dir {}", self.dir.join(file).display()),
                    &Refused::new(RefusalReason::Duplicate, format!("gatherer {name:?} is already provided by another file")),
                );
                continue;
            }
            modules.push(m.clone());
        }
        (Part { modules, serial: None }, changed)
    }
}

/// Watches the modules directory (debounced) and stages each changed scan until `shutdown`.
pub async fn watch_loop(
    mut source: DirSource,
    ctx: Ctx,
    staging: Arc<Staging>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use notify::Watcher as _;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
    let mut reconfigured = staging.reconfigurations();
    reconfigured.mark_unchanged();
    let mut watcher = match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reads are not changes: the scan's own reads of the files (inotify reports opens and
        // closes) would otherwise trigger a rescan after every rescan, about 4 times a second.
        if res.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = tx.try_send(());
        }
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("cannot watch {}: {e}; rescanning every 2s instead", source.dir.display());
            None
        }
    };
    if let Some(w) = &mut watcher {
        if let Err(e) = w.watch(&source.dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!("cannot watch {}: {e}; rescanning every 2s instead", source.dir.display());
            watcher = None;
        }
    }
    loop {
        let changed = tokio::select! {
            _ = shutdown.changed() => return,
            ev = rx.recv(), if watcher.is_some() => ev.is_some(),
            _ = tokio::time::sleep(Duration::from_secs(2)), if watcher.is_none() => true,
            Ok(()) = reconfigured.changed() => {
                // Every file loaded again under the new settings, staged even if no file changed.
                source.forget_refusals();
                let (part, _) = source.scan(&ctx, &staging);
                staging.set_part(SourceKind::Dir, part);
                continue;
            }
        };
        if !changed {
            return;
        }
        // Debounce: editors and `cp` produce bursts of events for one change.
        tokio::time::sleep(Duration::from_millis(250)).await;
        while rx.try_recv().is_ok() {}
        let (part, changed) = source.scan(&ctx, &staging);
        if changed {
            staging.set_part(SourceKind::Dir, part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log fields carry values (`serial=1`), not Debug forms (`serial=Some(1)`); an absent
    /// value leaves the field out.
    #[test]
    fn log_fields_print_values_not_debug_forms() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let staging = Staging::new(StatusBoard::new(None));
        tracing::subscriber::with_default(sub, || {
            staging.set_part(SourceKind::Index, Part { modules: Vec::new(), serial: Some(7) });
            staging.set_part(SourceKind::Dir, Part::default());
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("serial=7"), "{text}");
        assert!(!text.contains("Some(") && !text.contains("None"), "{text}");
    }

    /// The metric label, status.json and the archive warning all carry the class, whatever
    /// the detail starts with (it used to be cut at the first `:`, so a refusal about gatherer
    /// `nodes` was counted as `reason="nodes"`).
    #[test]
    fn a_refusal_is_counted_under_its_class_everywhere() {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let status = StatusBoard::new(None);
        let staging = Staging::new(status.clone()).with_metrics(metrics.clone());
        staging.refuse("index", &Refused::new(RefusalReason::ManifestMismatch, "nodes: the index's permissions differ").about("nodes"));
        staging.refuse("index", &Refused::new(RefusalReason::Policy, "declares secrets").about("nodes"));
        staging.refuse("index", &Refused::new(RefusalReason::Policy, "declares secrets").about("pods"));
        let text = metrics.encode();
        assert!(text.contains(r#"gather_agent_update_refusals_total{reason="manifest-mismatch"} 1"#), "{text}");
        assert!(text.contains(r#"gather_agent_update_refusals_total{reason="policy"} 2"#), "{text}");
        assert!(!text.contains(r#"reason="nodes""#), "{text}");
        let classes: Vec<_> = status.get().refused.iter().map(|r| r.class.clone().unwrap()).collect();
        assert_eq!(classes, ["manifest-mismatch", "policy", "policy"]);
        assert!(status.get().refused[0].reason.starts_with("manifest-mismatch: nodes: "));
        let warnings = staging.take_warnings();
        assert!(warnings[1].contains("policy: nodes: declares secrets"), "{warnings:?}");
    }
}
