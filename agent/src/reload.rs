//! Reloading the configuration while the agent runs: on SIGHUP ([`ReloadTrigger`]) and when
//! the config file changes. The file's *directory* is watched, not the file: a mounted
//! ConfigMap is updated by swapping the `..data` symlink, which replaces the file without
//! writing to it (and an editor's save does much the same).
//!
//! The new configuration is built the way the start built it (flags and environment still
//! win over the file, [`Build`]), then checked as at start. A configuration that fails is
//! refused: the reason is logged and shown in `/status`, and the previous one stays. One that
//! passes applies from the next period (`run.rs`): limits, policy, per-module settings and
//! `disabled`, concurrency, the archive cap, and the period-scoped `run` settings ([`PERIOD_SCOPED`]);
//! changed settings that need a restart ([`restart_only_changes`]) are logged and listed in
//! `/status`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::run::RunConfig;

/// Builds the configuration again (reading the file again). `Err` is shown as is.
pub type Build = Arc<dyn Fn() -> Result<RunConfig, String> + Send + Sync>;

/// What reloading needs: the file to watch and how to build a configuration.
#[derive(Clone)]
pub struct Reloader {
    /// The config file, watched for changes (no file: SIGHUP still rebuilds from flags and
    /// the environment, which cannot change, so it only re-checks).
    pub file: Option<PathBuf>,
    /// Builds a configuration.
    pub build: Build,
}

/// Asks the agent to reload its configuration (the CLI calls it on SIGHUP).
#[derive(Clone, Default)]
pub struct ReloadTrigger(Arc<Notify>);

impl ReloadTrigger {
    /// Requests a reload; requests made while one is under way coalesce.
    pub fn reload(&self) {
        self.0.notify_one();
    }

    /// Waits for a request.
    pub async fn requested(&self) {
        self.0.notified().await;
    }
}

/// The `run` settings a reload applies (from the next period on).
pub const PERIOD_SCOPED: &[&str] = &["period", "jitter", "keepArchives", "maxArchiveAge", "uploadUrl", "uploadTokenFile", "shutdownGrace"];

/// The settings that differ between `old` and `new` but only take effect at the next start
/// (they are bound to sockets, directories, tasks or clients made at start).
pub fn restart_only_changes(old: &RunConfig, new: &RunConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, changed: bool| {
        if changed {
            out.push(name);
        }
    };
    check("indexUrl", old.index_url != new.index_url);
    check("modulesDir", old.modules_dir != new.modules_dir);
    check("outDir", old.out_dir != new.out_dir);
    check("stateDir", old.state_dir != new.state_dir);
    check("pollInterval", old.poll_interval != new.poll_interval);
    check("publicKey", old.public_key != new.public_key);
    check("listen", old.listen != new.listen);
    check("tls", old.tls != new.tls);
    check("maxModuleBytes", old.max_module_bytes != new.max_module_bytes);
    check("httpTimeout", old.http_timeout != new.http_timeout);
    out
}

/// Watches `file`'s directory; a message for every change in it (reads excluded: the agent's
/// own reads of the file must not trigger it again).
pub fn watch(file: &Path) -> Result<(notify::RecommendedWatcher, tokio::sync::mpsc::Receiver<()>), notify::Error> {
    use notify::Watcher as _;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = tx.try_send(());
        }
    })?;
    w.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    Ok((w, rx))
}

/// Hex sha256 of the file's bytes, to skip directory events that leave it unchanged.
pub fn file_hash(file: &Path) -> Option<String> {
    std::fs::read(file).ok().map(|b| crate::util::sha256_hex(&b))
}
