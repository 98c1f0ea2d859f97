//! Small helpers several modules share: content hashing, atomic file writes, and randomised
//! exponential backoff (index polls and uploads retry the same way).

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Hex sha256 of `bytes`: how modules, indexes and ETags are named.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` to `path` via a temp file and rename, so readers never see a partial file.
/// The file is private to its owner (mode 0600, the temp file's): state, caches, archives.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, false)
}

/// [`write_atomic`] for files meant to be served by another user (a published site): mode
/// 0644 whatever the umask, set on the temp file before the rename, so the file appears
/// complete and readable at once.
pub fn write_atomic_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, true)
}

fn write_atomic_with(path: &Path, bytes: &[u8], public: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    if public {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = public;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The wait before retry number `failures` (0-based): `base` doubled per failure, capped at
/// `cap`, then spread over [50%, 100%] so that many agents do not retry in step.
pub fn backoff(failures: u32, base: Duration, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << failures.min(16)).min(cap).mul_f64(0.5 + random_unit() / 2.0)
}

/// A uniform random number in [0, 1).
pub fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source works");
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(10));
        for f in 0..40 {
            let d = backoff(f, base, cap);
            let full = base.saturating_mul(1u32 << f.min(16)).min(cap);
            assert!(d >= full / 2 && d <= full, "failure {f}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
    }
}
