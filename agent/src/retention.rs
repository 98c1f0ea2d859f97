//! Archive retention: keep at most N archives and none older than a maximum age (the Insights
//! Operator keeps 12 days), pruned after each period; and removal of temp files a crash left.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many archives (newest first).
    pub max_archives: Option<usize>,
    /// Delete archives older than this.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { max_archives: Some(200), max_age: Some(Duration::from_secs(12 * 24 * 3600)) }
    }
}

fn is_archive(name: &str) -> bool {
    name.starts_with("insights-") && name.ends_with(".tar.gz")
}

/// Deletes archives beyond the limits; returns what was deleted. Only finished archives
/// (`insights-*.tar.gz`) are considered, ordered by modification time, never by name.
pub fn prune(out_dir: &Path, retention: &Retention, now: SystemTime) -> std::io::Result<Vec<PathBuf>> {
    let mut archives: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(out_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !is_archive(&name.to_string_lossy()) || !entry.file_type()?.is_file() {
            continue;
        }
        archives.push((entry.metadata()?.modified()?, entry.path()));
    }
    archives.sort_by(|a, b| b.0.cmp(&a.0));
    let mut removed = Vec::new();
    for (i, (mtime, path)) in archives.into_iter().enumerate() {
        let too_many = retention.max_archives.is_some_and(|n| i >= n);
        let too_old = retention.max_age.is_some_and(|age| now.duration_since(mtime).is_ok_and(|d| d > age));
        if too_many || too_old {
            std::fs::remove_file(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Deletes temp files of unfinished archives (a crash or SIGKILL mid-write leaves them).
/// Called at start, while the agent holds its state-dir lock.
pub fn remove_stale_temp_files(out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let rd = match std::fs::read_dir(out_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".insights-") && name.contains(".tmp") {
            std::fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, age: Duration) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"x").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
        p
    }

    #[test]
    fn keeps_the_newest_n_and_drops_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86400);
        // Names deliberately disagree with ages: ordering is by mtime.
        let a = touch(dir.path(), "insights-2026-01-05-000000.tar.gz", day * 20);
        let b = touch(dir.path(), "insights-2026-01-01-000000.tar.gz", day * 2);
        let c = touch(dir.path(), "insights-2026-01-03-000000.tar.gz", day);
        let d = touch(dir.path(), "insights-2026-01-02-000000.tar.gz", Duration::ZERO);
        let other = touch(dir.path(), "notes.txt", day * 100);
        let r = Retention { max_archives: Some(2), max_age: Some(day * 12) };
        let mut removed = prune(dir.path(), &r, SystemTime::now()).unwrap();
        removed.sort();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(c.exists() && d.exists() && other.exists());
        let r = Retention { max_archives: None, max_age: Some(day / 2) };
        assert_eq!(prune(dir.path(), &r, SystemTime::now()).unwrap(), vec![c]);
    }

    #[test]
    fn removes_only_our_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let t = touch(dir.path(), ".insights-2026-01-01-000000.tar.gz.tmp-abc", Duration::ZERO);
        let keep = touch(dir.path(), "insights-2026-01-01-000000.tar.gz", Duration::ZERO);
        assert_eq!(remove_stale_temp_files(dir.path()).unwrap(), vec![t]);
        assert!(keep.exists());
    }
}
