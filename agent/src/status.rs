//! What the agent is doing, for operators: the active and staged module sets, the last poll
//! and error, refused updates and the last archive. Written to `status.json` in the state dir
//! after every change (and served over HTTP by the operator endpoints).

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::state::StateDir;

/// One module of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleStatus {
    /// Gatherer name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Hex sha256.
    pub sha256: String,
    /// Where it came from (`index serial 3 from URL`, `dir PATH`).
    pub source: String,
}

/// A module set (active or staged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetStatus {
    /// Increases with every set the agent builds.
    pub generation: u64,
    /// The index serial, when it came from an index.
    pub serial: Option<u64>,
    /// When it was verified and staged.
    pub staged_at: String,
    /// When it became active (at the start of a period).
    pub activated_at: Option<String>,
    /// Its modules.
    pub modules: Vec<ModuleStatus>,
}

/// The last poll of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollStatus {
    /// When.
    pub at: String,
    /// `200`, `304` or `error`.
    pub result: String,
    /// What was wrong, for `error` or a refused index.
    pub error: Option<String>,
}

/// A refused update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// When.
    pub at: String,
    /// What was refused (an index URL, a module file).
    pub source: String,
    /// Why (a short reason class such as `sha256-mismatch`, then detail).
    pub reason: String,
    /// The reason class alone, for a refused update: the same string as the `reason` label of
    /// `gather_agent_update_refusals` ([`crate::errors::RefusalReason`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

/// The last archive written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveStatus {
    /// Its path.
    pub path: String,
    /// When it was finished.
    pub at: String,
    /// Records in it.
    pub records: u64,
    /// Gatherers with errors.
    pub failed_gatherers: u64,
}

/// Everything `status.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// A module set is active (the agent can gather).
    pub ready: bool,
    /// The set used by the current/next period.
    pub active: Option<SetStatus>,
    /// A verified set waiting for the next period.
    pub staged: Option<SetStatus>,
    /// The highest index serial accepted.
    pub last_accepted_serial: Option<u64>,
    /// The last poll.
    pub last_poll: Option<PollStatus>,
    /// The last error of any kind.
    pub last_error: Option<Refusal>,
    /// Recent refusals, newest last (at most 20).
    pub refused: Vec<Refusal>,
    /// Periods run.
    pub periods: u64,
    /// The last archive.
    pub last_archive: Option<ArchiveStatus>,
    /// The last upload attempt, when uploads are configured.
    pub last_upload: Option<UploadStatus>,
    /// The configuration in force and its last reload.
    pub config: Option<ConfigStatus>,
}

/// The configuration in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// The config file, when there is one.
    pub file: Option<String>,
    /// Hex sha256 of the file's bytes in force.
    pub sha256: Option<String>,
    /// 1 at start, +1 with every applied reload.
    pub generation: u64,
    /// When the configuration in force was loaded.
    pub loaded_at: String,
    /// The first period run with it (none yet: the next one).
    pub first_period: Option<u64>,
    /// The last reload attempt.
    pub last_reload: Option<ReloadStatus>,
    /// Settings changed in the file that only take effect at the next start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_required: Vec<String>,
}

/// A reload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadStatus {
    /// When.
    pub at: String,
    /// `SIGHUP` or `file changed`.
    pub trigger: String,
    /// `applied` or `refused` (the previous configuration stays).
    pub result: String,
    /// Why it was refused.
    pub error: Option<String>,
}

/// The last upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadStatus {
    /// When it ended.
    pub at: String,
    /// The archive.
    pub archive: String,
    /// `ok`, `error` or `unauthorized`.
    pub result: String,
    /// What went wrong.
    pub error: Option<String>,
}

/// The shared, persisted status.
#[derive(Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<Status>>,
    state: Option<Arc<StateDir>>,
}

/// RFC 3339 "now".
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl StatusBoard {
    /// A board persisted into `state` (or in memory only).
    pub fn new(state: Option<Arc<StateDir>>) -> Self {
        StatusBoard { inner: Arc::new(Mutex::new(Status::default())), state }
    }

    /// A copy of the current status.
    pub fn get(&self) -> Status {
        self.inner.lock().expect("status lock").clone()
    }

    /// Changes the status and writes `status.json`.
    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        let mut s = self.inner.lock().expect("status lock");
        f(&mut s);
        // Written under the lock: two updates racing must not leave the older one on disk.
        if let Some(state) = &self.state {
            let json = serde_json::to_vec_pretty(&*s).expect("status serializes");
            if let Err(e) = state.write_status(&json) {
                tracing::warn!("writing status.json: {e}");
            }
        }
    }

    /// Records a refused update (also as the last error).
    pub fn refuse(&self, source: &str, refused: &crate::errors::Refused) {
        let r = Refusal { at: now(), source: source.to_owned(), reason: refused.to_string(), class: Some(refused.reason.as_str().to_owned()) };
        self.update(|s| {
            s.refused.push(r.clone());
            if s.refused.len() > 20 {
                s.refused.remove(0);
            }
            s.last_error = Some(r);
        });
    }
}
