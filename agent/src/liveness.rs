//! Liveness of the period loop, for `/healthz`: the loop says what it waits for next and by
//! when it must be done; past that point (plus a slack) the agent is reported stuck.
//!
//! The bounds (docs/CONFIG.md, "Liveness"), each plus the slack (60 s by default):
//! - waiting for a first module set: no bound (nothing is due; `/readyz` reports that);
//! - sleeping until the next period: its scheduled start;
//! - a period: ⌈gatherers ÷ concurrency⌉ × the largest gatherer deadline (every gatherer
//!   ends at its deadline, so a period ends within its waves of deadlines), then the archive;
//! - retention and upload: the upload's attempts × (timeout + backoff);
//! - shutdown: the grace.
//!
//! The loop itself cannot report that it is stuck, so the check is made by the reader.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default slack added to every bound: archive writing, scheduling delays, slow disks.
pub const DEFAULT_SLACK: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Expectation {
    what: String,
    since: Instant,
    by: Instant,
}

/// Shared between the period loop (which sets expectations) and `/healthz` (which checks).
#[derive(Clone, Debug)]
pub struct Liveness {
    inner: Arc<Mutex<Option<Expectation>>>,
    slack: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new(DEFAULT_SLACK)
    }
}

impl Liveness {
    /// Nothing expected yet; every bound gets `slack` on top.
    pub fn new(slack: Duration) -> Self {
        Liveness { inner: Arc::new(Mutex::new(None)), slack }
    }

    /// The loop starts `what`, which must be over within `within` (plus the slack).
    pub fn expect(&self, what: impl Into<String>, within: Duration) {
        let since = Instant::now();
        let by = since.checked_add(within.saturating_add(self.slack)).unwrap_or(since + Duration::from_secs(86400 * 365));
        *self.inner.lock().expect("liveness lock") = Some(Expectation { what: what.into(), since, by });
    }

    /// The loop waits for something with no bound (a first module set).
    pub fn idle(&self) {
        *self.inner.lock().expect("liveness lock") = None;
    }

    /// `Err(reason)` when the loop is past its bound.
    pub fn check(&self) -> Result<(), String> {
        let now = Instant::now();
        match &*self.inner.lock().expect("liveness lock") {
            Some(e) if now > e.by => Err(format!(
                "the period loop is stuck: {} has taken {}s, over its bound of {}s (slack included)",
                e.what,
                now.duration_since(e.since).as_secs(),
                e.by.duration_since(e.since).as_secs()
            )),
            _ => Ok(()),
        }
    }
}

/// The bound of one period: waves of the largest deadline (see the module docs).
pub fn period_bound(gatherers: usize, concurrency: usize, largest_deadline: Duration) -> Duration {
    let waves = gatherers.div_ceil(concurrency.max(1)).max(1);
    largest_deadline.saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_its_bound_the_loop_is_stuck() {
        let l = Liveness::new(Duration::from_millis(20));
        assert!(l.check().is_ok());
        l.expect("period 1", Duration::from_millis(30));
        assert!(l.check().is_ok());
        std::thread::sleep(Duration::from_millis(80));
        let e = l.check().unwrap_err();
        assert!(e.contains("period 1"), "{e}");
        l.idle();
        assert!(l.check().is_ok());
    }

    #[test]
    fn periods_are_bounded_by_waves_of_deadlines() {
        let d = Duration::from_secs(60);
        assert_eq!(period_bound(9, 4, d), Duration::from_secs(180));
        assert_eq!(period_bound(4, 4, d), d);
        assert_eq!(period_bound(0, 4, d), d);
    }
}
