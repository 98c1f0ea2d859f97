//! The container's memory limit, read from the cgroup file system, and the check that the
//! gatherers' memory caps fit in it: `concurrency` guests may each grow to their
//! `memoryBytes`, on top of the host's own memory ([`HOST_MARGIN`]). Four guests at their
//! 64 MiB caps were measured at 276 MB RSS in all, over a 256 MiB limit: the kernel would kill
//! the whole agent mid-period, losing the archive.

use std::path::{Path, PathBuf};

/// What the host itself needs besides the guests: the runtime, compiled modules, archive
/// buffers and HTTP clients (measured at about 20 MB idle and 40 MB while writing an archive
/// of the sample cluster), rounded up.
pub const HOST_MARGIN: u64 = 64 * 1024 * 1024;

/// The default cgroup file system root.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// The memory limit of the cgroup this process runs in, under `root` (normally
/// [`DEFAULT_ROOT`]): cgroup v2's `memory.max` (in the process's own cgroup, from
/// `/proc/self/cgroup`, else at the root as a container with its own cgroup namespace sees
/// it), else cgroup v1's `memory/memory.limit_in_bytes`. `None`: no limit, or none readable.
pub fn memory_limit(root: &Path) -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("0::").map(|p| p.trim_start_matches('/').to_owned())));
    let mut v2: Vec<PathBuf> = Vec::new();
    if let Some(p) = own.filter(|p| !p.is_empty()) {
        v2.push(root.join(p).join("memory.max"));
    }
    v2.push(root.join("memory.max"));
    for file in v2 {
        if let Ok(s) = std::fs::read_to_string(&file) {
            return parse_limit(&s);
        }
    }
    std::fs::read_to_string(root.join("memory/memory.limit_in_bytes")).ok().and_then(|s| parse_limit(&s))
}

/// `max` (v2) and v1's "no limit" (a page-rounded `i64::MAX`) mean no limit.
fn parse_limit(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return None;
    }
    s.parse::<u64>().ok().filter(|&v| v < (1u64 << 62))
}

/// The memory the gatherers may use at once plus [`HOST_MARGIN`], against `limit`.
#[derive(Debug, thiserror::Error)]
#[error(
    "concurrency {concurrency} × memoryBytes {per_guest} + {margin} bytes for the host = {needed} bytes, over the container's memory limit of {limit} bytes (cgroup): the kernel would kill the agent mid-period. Lower concurrency or limits.memoryBytes, or raise the container's memory limit to at least {needed}"
)]
pub struct MemoryOverCommit {
    /// Gatherers at once.
    pub concurrency: usize,
    /// The largest `memoryBytes` of any gatherer (agent-wide or per module).
    pub per_guest: u64,
    /// [`HOST_MARGIN`].
    pub margin: u64,
    /// What it adds up to.
    pub needed: u64,
    /// The cgroup limit.
    pub limit: u64,
}

/// Checks `cfg` against `limit` (`None`: no limit, nothing to check). The largest memory cap
/// of any gatherer is assumed for all of them, since which ones run together is not known.
pub fn check_memory(cfg: &crate::config::AgentConfig, limit: Option<u64>) -> Result<(), MemoryOverCommit> {
    let Some(limit) = limit else { return Ok(()) };
    let per_guest = cfg
        .modules
        .keys()
        .filter_map(|m| cfg.limits_for(m).ok())
        .map(|l| l.memory_bytes)
        .chain([cfg.limits.memory_bytes])
        .max()
        .unwrap_or(cfg.limits.memory_bytes);
    let needed = per_guest.saturating_mul(cfg.concurrency as u64).saturating_add(HOST_MARGIN);
    if needed > limit {
        return Err(MemoryOverCommit { concurrency: cfg.concurrency, per_guest, margin: HOST_MARGIN, needed, limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v2_then_v1_and_treats_max_as_unlimited() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(memory_limit(d.path()), None);
        std::fs::create_dir_all(d.path().join("memory")).unwrap();
        std::fs::write(d.path().join("memory/memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(memory_limit(d.path()), None, "v1's unlimited");
        std::fs::write(d.path().join("memory/memory.limit_in_bytes"), "536870912\n").unwrap();
        assert_eq!(memory_limit(d.path()), Some(512 << 20));
        std::fs::write(d.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(memory_limit(d.path()), None, "v2 wins, and max is no limit");
        std::fs::write(d.path().join("memory.max"), "268435456\n").unwrap();
        assert_eq!(memory_limit(d.path()), Some(256 << 20));
    }

    #[test]
    fn four_default_guests_do_not_fit_in_256_mib() {
        let cfg = crate::config::AgentConfig::default();
        let e = check_memory(&cfg, Some(256 << 20)).unwrap_err();
        assert_eq!(e.needed, 4 * (64 << 20) + HOST_MARGIN);
        assert!(e.to_string().contains("concurrency 4"), "{e}");
        assert!(check_memory(&cfg, Some(320 << 20)).is_ok());
        assert!(check_memory(&cfg, None).is_ok());
        let big: crate::config::AgentConfig =
            serde_json::from_str(r#"{"modules": {"big": {"limits": {"memoryBytes": 268435456}}}}"#).unwrap();
        assert_eq!(check_memory(&big, Some(320 << 20)).unwrap_err().per_guest, 256 << 20, "a per-module cap counts");
    }
}
