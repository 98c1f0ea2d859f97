//! The one module loader: every way a gatherer gets into a period (`gather`'s `--modules` or
//! embedded defaults, `run`'s embedded defaults, its watched modules directory and its
//! published index) goes through [`Loader`], so one set of rules applies everywhere:
//!
//! 1. the bytes load and validate in the sandbox (ABI marker, manifest, imports, no start);
//! 2. for an index module, the manifest matches its index entry (name, version, permissions);
//! 3. `modules.<name>.disabled` in the operator's config skips the module (not an error);
//! 4. the declared permissions pass the operator's policy ([`policy::check_declared`]);
//! 5. the limits are the operator's (and, for the index, the publisher's suggestion, which may
//!    only lower them), all within the host's maxima;
//! 6. the config blob is the operator's, else the publisher's;
//! 7. within one set, gatherer names are unique (the first source, in order, wins).

use std::path::Path;
use std::sync::Arc;

use crate::config::AgentConfig;
use crate::errors::{RefusalReason, Refused};
use crate::index::IndexEntry;
use crate::limits::Limits;
use crate::policy::{self, ModulePolicy};
use crate::sandbox::{LoadedModule, Sandbox};
use crate::util::sha256_hex;

/// A module ready to run this period, with the operator's settings for it.
#[derive(Clone)]
pub struct ModuleSpec {
    /// The compiled module.
    pub module: Arc<LoadedModule>,
    /// Its limits.
    pub limits: Limits,
    /// Its policy.
    pub policy: ModulePolicy,
    /// Its config blob (JSON bytes; empty for none).
    pub config: Vec<u8>,
}

/// A module that could not be loaded: it still gets a report, so the archive says so.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The gatherer's name, or its file name when the manifest was unreadable.
    pub name: String,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// Why it was refused.
    pub error: String,
}

/// A module's bytes and where they came from.
#[derive(Debug, Clone)]
pub struct ModuleSource {
    /// A file path, `embedded <file>`, or `index serial N (URL)` with the URL redacted.
    pub origin: String,
    /// The module.
    pub bytes: Arc<[u8]>,
    /// Its index entry, for a published module: the manifest must match it, and it carries
    /// the publisher's limits and config.
    pub entry: Option<IndexEntry>,
}

impl ModuleSource {
    /// A module that is not from an index.
    pub fn new(origin: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        ModuleSource { origin: origin.into(), bytes: bytes.into(), entry: None }
    }

    /// Short name for reports when the manifest is unreadable: the origin's last path part.
    fn short_name(&self) -> String {
        self.origin.rsplit(['/', ' ']).next().unwrap_or(&self.origin).to_owned()
    }
}

/// A module the loader refused.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Its gatherer name when the manifest was read, else the origin's file name.
    pub name: String,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// Why.
    pub refused: Refused,
}

impl From<Rejected> for LoadFailure {
    fn from(r: Rejected) -> Self {
        LoadFailure { name: r.name, sha256: r.sha256, error: r.refused.to_string() }
    }
}

/// What loading one module gives.
pub enum Loaded {
    /// Ready to run.
    Ready(ModuleSpec),
    /// `modules.<name>.disabled` is set: it does not run, and that is not an error.
    Disabled(String),
}

/// A loaded set: what runs, what was refused, what the operator disabled.
#[derive(Default)]
pub struct LoadedSet {
    /// Ready modules with their origin, in source order.
    pub modules: Vec<(ModuleSpec, String)>,
    /// Refused modules.
    pub rejected: Vec<Rejected>,
    /// Gatherer names skipped because the config disables them.
    pub disabled: Vec<String>,
}

impl LoadedSet {
    /// The specs and failures a period takes.
    pub fn into_period(self) -> (Vec<ModuleSpec>, Vec<LoadFailure>) {
        (self.modules.into_iter().map(|(s, _)| s).collect(), self.rejected.into_iter().map(LoadFailure::from).collect())
    }
}

/// Applies the rules above with one sandbox and one operator config.
#[derive(Clone, Copy)]
pub struct Loader<'a> {
    /// The engine modules are compiled with (and cached in).
    pub sandbox: &'a Sandbox,
    /// The operator's settings.
    pub config: &'a AgentConfig,
}

impl<'a> Loader<'a> {
    /// A loader for `sandbox` and `config`.
    pub fn new(sandbox: &'a Sandbox, config: &'a AgentConfig) -> Self {
        Loader { sandbox, config }
    }

    /// Loads one module (rules 1 to 6).
    pub fn load(&self, src: &ModuleSource) -> Result<Loaded, Rejected> {
        let sha256 = || sha256_hex(&src.bytes);
        let module = self.sandbox.load(&src.bytes).map_err(|e| Rejected {
            name: src.entry.as_ref().map_or_else(|| src.short_name(), |e| e.name.clone()),
            sha256: sha256(),
            refused: Refused::new(RefusalReason::InvalidModule, e.to_string()),
        })?;
        let m = &module.manifest;
        let reject = |reason, detail: String| Rejected { name: m.name.clone(), sha256: module.sha256.clone(), refused: Refused::new(reason, detail) };
        if let Some(e) = &src.entry {
            if e.name != m.name || e.version != m.version {
                return Err(reject(
                    RefusalReason::ManifestMismatch,
                    format!("the index lists {}@{} but the module declares {}@{}", e.name, e.version, m.name, m.version),
                ));
            }
            let (mut a, mut b) = (e.permissions.clone(), m.permissions.clone());
            a.sort();
            b.sort();
            if a != b {
                return Err(reject(RefusalReason::ManifestMismatch, format!("{}: the index's permissions differ from the module's", m.name)));
            }
        }
        let settings = self.config.module(&m.name);
        if settings.disabled {
            tracing::info!(gatherer = %m.name, origin = %src.origin, "disabled by configuration");
            return Ok(Loaded::Disabled(m.name.clone()));
        }
        // A module whose declarations could reach Secrets or a dangerous subresource without
        // the operator's allowance never runs, whichever way it arrived.
        policy::check_declared(m, &settings.policy).map_err(|e| reject(RefusalReason::Policy, format!("{}: {e}", m.name)))?;
        let publisher = src.entry.as_ref();
        let limits = self
            .config
            .limits_with_publisher(&m.name, publisher.and_then(|e| e.limits.as_ref()))
            .map_err(|e| reject(RefusalReason::Limits, format!("{}: {e}", m.name)))?;
        let config = settings.config.clone().or_else(|| publisher.and_then(|e| e.config.clone()));
        Ok(Loaded::Ready(ModuleSpec {
            module,
            limits,
            policy: settings.policy,
            config: config.map(|c| serde_json::to_vec(&c).unwrap_or_default()).unwrap_or_default(),
        }))
    }

    /// Loads a whole set (rules 1 to 7). Refused modules are reported, not fatal.
    pub fn load_set(&self, sources: &[ModuleSource]) -> LoadedSet {
        let mut set = LoadedSet::default();
        for (src, loaded) in sources.iter().zip(self.load_each(sources)) {
            match loaded {
                Ok(Loaded::Ready(spec)) => {
                    let name = &spec.module.manifest.name;
                    if let Some((_, first)) = set.modules.iter().find(|(s, _)| &s.module.manifest.name == name) {
                        let detail = format!("gatherer name {name:?} is already used by {first}; names must be unique");
                        tracing::warn!(origin = %src.origin, "refused: {detail}");
                        set.rejected.push(Rejected {
                            name: src.short_name(),
                            sha256: spec.module.sha256.clone(),
                            refused: Refused::new(RefusalReason::Duplicate, detail),
                        });
                        continue;
                    }
                    set.modules.push((spec, src.origin.clone()));
                }
                Ok(Loaded::Disabled(name)) => set.disabled.push(name),
                Err(r) => {
                    tracing::warn!(origin = %src.origin, "refused: {}", r.refused);
                    set.rejected.push(r);
                }
            }
        }
        set
    }
}

impl Loader<'_> {
    /// [`Loader::load`] for each source, in source order, on up to one thread per core.
    /// Compiling (parse and validate) is nearly all of it and wasmi's engine compiles on
    /// several threads at once, so a set with two multi-MB Go modules loads in about the time
    /// of the larger one on a two-core machine.
    fn load_each(&self, sources: &[ModuleSource]) -> Vec<Result<Loaded, Rejected>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(sources.len());
        if threads <= 1 {
            return sources.iter().map(|src| self.load(src)).collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let span = tracing::Span::current();
        let mut results: Vec<Option<Result<Loaded, Rejected>>> = sources.iter().map(|_| None).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let _entered = span.enter();
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(src) = sources.get(i) else { break done };
                            done.push((i, self.load(src)));
                        }
                    })
                })
                .collect();
            for worker in workers {
                for (i, loaded) in worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)) {
                    results[i] = Some(loaded);
                }
            }
        });
        results.into_iter().map(|r| r.expect("every source was taken by a worker")).collect()
    }
}

/// Why a path could not be read as modules.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path (or a file in it) cannot be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A directory with no `*.wasm` file.
    #[error("no *.wasm gatherer modules in {0}")]
    Empty(std::path::PathBuf),
}

/// The `*.wasm` files of a directory, sorted by name (missing or unreadable: an error).
pub fn wasm_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The modules at `path`: one `.wasm` file (whatever its extension), or every `*.wasm` in a
/// directory, sorted by file name.
pub fn read_path(path: &Path) -> Result<Vec<ModuleSource>, ReadError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ReadError::Io { path, source }
    };
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let files = if meta.is_dir() { wasm_files(path).map_err(io(path))? } else { vec![path.to_owned()] };
    if files.is_empty() {
        return Err(ReadError::Empty(path.to_owned()));
    }
    files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).map_err(io(&f))?;
            Ok(ModuleSource::new(f.display().to_string(), bytes))
        })
        .collect()
}
