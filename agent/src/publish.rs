//! Publishing: turn a directory of gatherer modules into a static site any HTTP server can
//! serve: content-addressed `<sha256>.wasm` files, `index.json`, and optionally its signature.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::index::{self, Index, IndexEntry, IndexError, API_VERSION, INDEX_FILE, SIG_FILE};
use crate::sandbox::Sandbox;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Directory of `*.wasm` modules.
    pub modules_dir: PathBuf,
    /// The site directory (created if missing).
    pub site: PathBuf,
    /// Signing key from `gather-agent keygen`.
    pub key: Option<PathBuf>,
    /// JSON with per-module `config` and `limits` to publish: `{"modules": {"pods": {...}}}`.
    pub settings: Option<PathBuf>,
    /// The index expires this long after publishing.
    pub expires_in: Option<Duration>,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The index written.
    pub index: Index,
    /// Module files added to the site by this publish (others were already there).
    pub added: Vec<String>,
    /// The public key to configure in agents, when the index was signed.
    pub public_key: Option<String>,
}

/// Why publishing failed (the site is left as it was).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// File system trouble.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A module would be refused by agents, so it is not published.
    #[error("{file}: {error}")]
    Module {
        /// The module file.
        file: String,
        /// Why it is refused.
        error: String,
    },
    /// Two modules declare the same gatherer name.
    #[error("gatherer {name:?} is declared by both {first} and {second}")]
    Duplicate {
        /// The name.
        name: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// No modules to publish.
    #[error("no *.wasm modules in {0}")]
    Empty(PathBuf),
    /// The existing index or the key is unusable.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The settings file is invalid.
    #[error("settings {path}: {message}")]
    Settings {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    modules: std::collections::BTreeMap<String, ModuleSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleSettings {
    config: Option<serde_json::Value>,
    limits: Option<serde_json::Value>,
}

use crate::util::write_atomic_public as write_atomic;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PublishError {
    let path = path.to_owned();
    move |source| PublishError::Io { what, path, source }
}

/// Creates the site directory world-readable (0755, whatever the umask) when it is missing,
/// like the files in it: a web server running as another user must be able to serve them.
/// An existing directory keeps the mode its owner chose.
fn create_site_dir(site: &Path) -> std::io::Result<()> {
    if site.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(site)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(site, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Publishes `opts.modules_dir` into `opts.site`.
pub fn publish(opts: &PublishOptions) -> Result<Published, PublishError> {
    let settings: Settings = match &opts.settings {
        Some(p) => {
            let text = std::fs::read(p).map_err(io("reading", p))?;
            serde_json::from_slice(&text).map_err(|e| PublishError::Settings { path: p.clone(), message: e.to_string() })?
        }
        None => Settings::default(),
    };
    let key = opts.key.as_deref().map(index::read_signing_key).transpose()?;

    let mut files: Vec<PathBuf> = std::fs::read_dir(&opts.modules_dir)
        .map_err(io("reading", &opts.modules_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(PublishError::Empty(opts.modules_dir.clone()));
    }

    // Validate everything before touching the site: a publish is all or nothing.
    let sandbox = Sandbox::new();
    let mut modules: Vec<(String, Vec<u8>, IndexEntry)> = Vec::new();
    for path in &files {
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(path).map_err(io("reading", path))?;
        let m = sandbox.load(&bytes).map_err(|e| PublishError::Module { file: file.clone(), error: e.to_string() })?;
        if let Some((first, _, _)) = modules.iter().find(|(_, _, e)| e.name == m.manifest.name) {
            return Err(PublishError::Duplicate { name: m.manifest.name.clone(), first: first.clone(), second: file });
        }
        let s = settings.modules.get(&m.manifest.name);
        let entry = IndexEntry {
            name: m.manifest.name.clone(),
            version: m.manifest.version.clone(),
            sha256: m.sha256.clone(),
            size: bytes.len() as u64,
            url: format!("{}.wasm", m.sha256),
            permissions: m.manifest.permissions.clone(),
            config: s.and_then(|s| s.config.clone()),
            limits: s.and_then(|s| s.limits.clone()),
        };
        modules.push((file, bytes, entry));
    }
    for name in settings.modules.keys() {
        if !modules.iter().any(|(_, _, e)| &e.name == name) {
            return Err(PublishError::Settings {
                path: opts.settings.clone().unwrap_or_default(),
                message: format!("settings for {name:?}, which is not among the modules"),
            });
        }
    }

    create_site_dir(&opts.site).map_err(io("creating", &opts.site))?;
    let index_path = opts.site.join(INDEX_FILE);
    let serial = match std::fs::read(&index_path) {
        Ok(bytes) => Index::parse(&bytes)
            .map_err(|e| PublishError::Settings {
                path: index_path.clone(),
                message: format!("the existing index is unreadable ({e}); refusing to guess the next serial"),
            })?
            .serial
            + 1,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
        Err(e) => return Err(io("reading", &index_path)(e)),
    };

    let mut added = Vec::new();
    for (_, bytes, entry) in &modules {
        let dest = opts.site.join(&entry.url);
        if !dest.exists() {
            write_atomic(&dest, bytes).map_err(io("writing", &dest))?;
            added.push(entry.url.clone());
        }
    }
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let mut gatherers: Vec<IndexEntry> = modules.into_iter().map(|(_, _, e)| e).collect();
    gatherers.sort_by(|a, b| a.name.cmp(&b.name));
    let index = Index {
        api_version: API_VERSION.into(),
        serial,
        published: fmt(now),
        expires: opts.expires_in.map(|d| fmt(now + d)),
        gatherers,
    };
    let mut bytes = serde_json::to_vec_pretty(&index).expect("an index serializes");
    bytes.push(b'\n');
    let sig_path = opts.site.join(SIG_FILE);
    let public_key = match &key {
        Some(key) => {
            // Signature first: a reader that sees the new index finds its signature already there.
            write_atomic(&sig_path, index::sign(key, &bytes).as_bytes()).map_err(io("writing", &sig_path))?;
            Some(index::public_key_text(&key.verifying_key()))
        }
        None => {
            // A stale signature would make signature-checking agents refuse the new index.
            match std::fs::remove_file(&sig_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("removing", &sig_path)(e)),
            }
            None
        }
    };
    write_atomic(&index_path, &bytes).map_err(io("writing", &index_path))?;
    Ok(Published { index, added, public_key })
}
