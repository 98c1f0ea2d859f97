//! The agent's state directory: a lock so only one agent uses it, the content-addressed
//! module cache (re-hashed on every read), the last accepted index, and `status.json`.
//!
//! Layout: `lock`, `modules/<sha256>.wasm`, `index.json` (+ `index.json.sig`),
//! `accepted.json` (serial, URL, ETag), `serial.json` (the rollback floor), `status.json`.
//!
//! `serial.json` holds the highest index serial ever accepted and that index's digest, apart
//! from everything else, so rollback protection does not depend on the cache or on
//! `accepted.json` being intact. It is only ever raised. When it is damaged the agent says so
//! and uses the highest serial it can still find (`accepted.json`, the persisted index); the
//! damaged file is kept beside it as `serial.json.damaged` for the operator.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::util::write_atomic;
use crate::util::sha256_hex;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another agent holds the lock.
    #[error("state directory {dir} is in use by another gather-agent ({holder}); two agents must not share a state dir")]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// File system trouble.
    #[error("state directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the agent remembers about the last index it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The index URL it came from.
    pub url: String,
    /// Its serial.
    pub serial: u64,
    /// The server's ETag for it.
    #[serde(default)]
    pub etag: Option<String>,
    /// Hex sha256 of the index bytes.
    pub sha256: String,
}

/// The rollback floor: the highest accepted serial and the sha256 of that index's bytes.
/// An index with a lower serial, or the same serial and other bytes, is never accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SerialFloor {
    /// The index URL it applies to, redacted (see [`crate::redact`]).
    pub url: String,
    /// The highest serial accepted from that URL.
    pub serial: u64,
    /// Hex sha256 of the index bytes accepted at that serial.
    pub sha256: String,
}

/// What the state dir knows about the rollback floor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloorReading {
    /// The highest floor found in any state file for the URL (`None`: a fresh agent).
    pub floor: Option<SerialFloor>,
    /// Problems found on the way (a damaged `serial.json`), to report loudly.
    pub problems: Vec<String>,
}

/// An opened, locked state directory.
pub struct StateDir {
    root: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDir").field("root", &self.root).finish()
    }
}

impl StateDir {
    /// Creates (if needed) and locks `root`. The lock is released when the process exits,
    /// however it exits, because it is an OS file lock rather than a marker file.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        let err = |source| StateError::Io { dir: root.to_owned(), source };
        std::fs::create_dir_all(root.join("modules")).map_err(err)?;
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join("lock"))
            .map_err(err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StateError::Locked {
                    dir: root.to_owned(),
                    holder: if holder.is_empty() { "unknown process".into() } else { holder.to_owned() },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
        }
        let me = format!("pid {}", std::process::id());
        lock.set_len(0).and_then(|_| lock.rewind()).and_then(|_| lock.write_all(me.as_bytes())).map_err(err)?;
        Ok(StateDir { root: root.to_owned(), _lock: lock })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn module_path(&self, sha256: &str) -> PathBuf {
        self.root.join("modules").join(format!("{sha256}.wasm"))
    }

    /// A cached module, re-hashed: a corrupt entry is deleted and reported as absent, so it
    /// is downloaded again.
    pub fn cached_module(&self, sha256: &str) -> Option<Vec<u8>> {
        let path = self.module_path(sha256);
        let bytes = std::fs::read(&path).ok()?;
        if sha256_hex(&bytes) == sha256 {
            return Some(bytes);
        }
        tracing::warn!(path = %path.display(), "cached module does not match its sha256; discarding it");
        let _ = std::fs::remove_file(&path);
        None
    }

    /// Stores a verified module under its hash.
    pub fn store_module(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.module_path(sha256), bytes)
    }

    /// Persists an accepted index (signature first, then the index, then the note).
    pub fn save_accepted(&self, index: &[u8], sig: Option<&[u8]>, accepted: &Accepted) -> std::io::Result<()> {
        let sig_path = self.root.join("index.json.sig");
        match sig {
            Some(sig) => write_atomic(&sig_path, sig)?,
            None => match std::fs::remove_file(&sig_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
        write_atomic(&self.root.join("index.json"), index)?;
        write_atomic(&self.root.join("accepted.json"), &serde_json::to_vec_pretty(accepted).expect("serializes"))
    }

    /// The last accepted index, its signature and note, if any.
    pub fn load_accepted(&self) -> Option<(Vec<u8>, Option<Vec<u8>>, Accepted)> {
        let index = std::fs::read(self.root.join("index.json")).ok()?;
        let sig = std::fs::read(self.root.join("index.json.sig")).ok();
        let accepted: Accepted = serde_json::from_slice(&std::fs::read(self.root.join("accepted.json")).ok()?).ok()?;
        Some((index, sig, accepted))
    }

    /// Reads the rollback floor for `url` (redacted form): the highest of `serial.json`,
    /// `accepted.json` and the persisted index's own serial. Damaged files lower nothing: each
    /// is reported and the others still count.
    pub fn serial_floor(&self, url: &str) -> FloorReading {
        let mut reading = FloorReading::default();
        let mut found: Vec<SerialFloor> = Vec::new();
        let path = self.root.join("serial.json");
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<SerialFloor>(&bytes) {
                Ok(f) if f.sha256.len() == 64 => found.push(f),
                other => {
                    let why = other.err().map_or("a malformed digest".to_owned(), |e| e.to_string());
                    let kept = self.root.join("serial.json.damaged");
                    let _ = std::fs::copy(&path, &kept);
                    reading.problems.push(format!(
                        "serial.json is damaged ({why}); a copy is kept as {}; rollback protection falls back to the highest serial in accepted.json and index.json",
                        kept.display()
                    ));
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => reading.problems.push(format!("serial.json is unreadable ({e}); rollback protection falls back to accepted.json and index.json")),
        }
        let accepted: Option<Accepted> =
            std::fs::read(self.root.join("accepted.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let index = std::fs::read(self.root.join("index.json")).ok();
        if let Some(a) = &accepted {
            let url_ok = crate::redact::url_str(&a.url) == url;
            if url_ok {
                found.push(SerialFloor { url: url.to_owned(), serial: a.serial, sha256: a.sha256.clone() });
            }
            // The persisted index counts only when it is the one accepted.json describes;
            // its serial field alone, unverified, could be anything.
            if let (true, Some(bytes)) = (url_ok, &index)
                && sha256_hex(bytes) == a.sha256
                && let Ok(i) = crate::index::Index::parse(bytes)
            {
                found.push(SerialFloor { url: url.to_owned(), serial: i.serial, sha256: a.sha256.clone() });
            }
        }
        // The first of equal serials wins, so serial.json's digest is preferred.
        for f in found.into_iter().filter(|f| f.url == url) {
            if reading.floor.as_ref().is_none_or(|cur| f.serial > cur.serial) {
                reading.floor = Some(f);
            }
        }
        reading
    }

    /// Raises the rollback floor to `floor` (never lowers it), durably: the file is written
    /// to a temp file, synced, renamed over the old one, and the directory is synced.
    pub fn raise_serial_floor(&self, floor: &SerialFloor) -> std::io::Result<()> {
        let current: Option<SerialFloor> =
            std::fs::read(self.root.join("serial.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if current.is_some_and(|c| c.url == floor.url && (c.serial > floor.serial || (c.serial == floor.serial && c.sha256 == floor.sha256))) {
            return Ok(());
        }
        write_atomic(&self.root.join("serial.json"), &serde_json::to_vec_pretty(floor).expect("serializes"))?;
        File::open(&self.root)?.sync_all()
    }

    /// Writes `status.json`.
    pub fn write_status(&self, json: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.root.join("status.json"), json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_agent_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDir::open(dir.path()).unwrap();
        let err = StateDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another gather-agent") && err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        assert!(StateDir::open(dir.path()).is_ok(), "the lock goes with its holder");
    }

    #[test]
    fn corrupt_cache_entries_are_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let sha = sha256_hex(b"module");
        state.store_module(&sha, b"module").unwrap();
        assert_eq!(state.cached_module(&sha).as_deref(), Some(&b"module"[..]));
        std::fs::write(dir.path().join("modules").join(format!("{sha}.wasm")), b"tampered").unwrap();
        assert_eq!(state.cached_module(&sha), None);
        assert!(!dir.path().join("modules").join(format!("{sha}.wasm")).exists());
    }

    #[test]
    fn the_serial_floor_survives_damage_to_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let url = "http://x/index.json";
        assert_eq!(state.serial_floor(url), FloorReading::default());
        let f5 = SerialFloor { url: url.into(), serial: 5, sha256: "b".repeat(64) };
        state.raise_serial_floor(&f5).unwrap();
        state.raise_serial_floor(&SerialFloor { serial: 3, ..f5.clone() }).unwrap();
        assert_eq!(state.serial_floor(url).floor, Some(f5.clone()), "never lowered");
        assert_eq!(state.serial_floor("http://other/index.json").floor, None, "per URL");

        // accepted.json, index.json and the cache gone: the floor stays.
        let a = Accepted { url: url.into(), serial: 4, etag: None, sha256: "c".repeat(64) };
        state.save_accepted(b"{}", None, &a).unwrap();
        for f in ["accepted.json", "index.json"] {
            std::fs::remove_file(dir.path().join(f)).unwrap();
        }
        std::fs::remove_dir_all(dir.path().join("modules")).unwrap();
        assert_eq!(state.serial_floor(url).floor, Some(f5.clone()));

        // A damaged serial.json is reported, kept, and the other files still count.
        state.save_accepted(b"{}", None, &a).unwrap();
        std::fs::write(dir.path().join("serial.json"), b"{\"serial\": 9, garbage").unwrap();
        let r = state.serial_floor(url);
        assert_eq!(r.floor.map(|f| f.serial), Some(4));
        assert!(r.problems[0].contains("serial.json is damaged"), "{:?}", r.problems);
        assert!(dir.path().join("serial.json.damaged").exists());
    }

    #[test]
    fn accepted_index_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert!(state.load_accepted().is_none());
        let a = Accepted { url: "http://x/index.json".into(), serial: 4, etag: Some("\"e\"".into()), sha256: "s".into() };
        state.save_accepted(b"{}", Some(b"sig"), &a).unwrap();
        let (i, s, got) = state.load_accepted().unwrap();
        assert_eq!((i.as_slice(), s.as_deref(), got), (&b"{}"[..], Some(&b"sig"[..]), a));
    }
}
