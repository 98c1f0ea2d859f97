//! A directory of archives over time: one row per period, one trend per gatherer.
//!
//! Every `*.tar.gz` (or `*.tgz`) in the directory, not recursing and skipping hidden files
//! (the agent's temp files start with `.`), is read once, in order of gathering time. A damaged
//! archive keeps its row, with its error, and the other periods are still shown.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{gathered, scan_archive, Gathered, GathererRow, InspectError, Result};

/// One gatherer in one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GathererRun {
    /// The gatherer's name.
    pub name: String,
    /// Module version (ours only).
    pub version: Option<String>,
    /// How long it ran.
    pub duration_in_ms: u64,
    /// Records it wrote.
    pub records: u64,
    /// How many errors it reported.
    pub errors: usize,
    /// How many warnings it reported.
    pub warnings: usize,
    /// Whether it failed (errors or a panic).
    pub failed: bool,
}

/// One archive.
#[derive(Debug, Serialize)]
pub struct Period {
    /// The archive's file name.
    pub archive: String,
    /// When it was gathered.
    pub gathered: Option<Gathered>,
    /// How long the period took (ours only).
    pub duration_in_ms: Option<u64>,
    /// The archive file's size.
    pub compressed_bytes: u64,
    /// The records' total size.
    pub uncompressed_bytes: u64,
    /// How many records it holds (that could be read).
    pub records: u64,
    /// Its gatherers, from `gathers.json` (empty when that could not be read).
    pub gatherers: Vec<GathererRun>,
    /// Why it could not be read entirely.
    #[serde(serialize_with = "super::error_message")]
    pub error: Option<InspectError>,
}

impl Period {
    /// How many of its gatherers failed.
    pub fn failed(&self) -> usize {
        self.gatherers.iter().filter(|g| g.failed).count()
    }
}

/// How a gatherer did in one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No errors, no warnings.
    Ok,
    /// Warnings but no errors.
    Warnings,
    /// Errors or a panic.
    Failed,
    /// It did not run (it is not in that archive's `gathers.json`).
    Absent,
    /// That archive's `gathers.json` could not be read.
    Unreadable,
}

/// One gatherer across all periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GathererTrend {
    /// The gatherer's name.
    pub name: String,
    /// Periods it ran in.
    pub runs: usize,
    /// Periods it failed in.
    pub failed: usize,
    /// Its shortest run.
    pub min_ms: u64,
    /// Its median run (the lower middle for an even count).
    pub median_ms: u64,
    /// Its longest run.
    pub max_ms: u64,
    /// Its duration in each period, oldest first (`None` where it did not run).
    pub durations: Vec<Option<u64>>,
    /// Its status in each period, oldest first.
    pub status: Vec<RunStatus>,
}

/// `inspect DIR`.
#[derive(Debug, Serialize)]
pub struct Trend {
    /// The directory, as given.
    pub directory: PathBuf,
    /// The periods, oldest first (those without a known time last, by file name).
    pub periods: Vec<Period>,
    /// The gatherers, sorted by name.
    pub gatherers: Vec<GathererTrend>,
}

impl Trend {
    /// An error summarising the periods that could not be read entirely, if any.
    pub fn problem(&self) -> Option<InspectError> {
        let damaged: Vec<&Period> = self.periods.iter().filter(|p| p.error.is_some()).collect();
        let first = damaged.first()?.error.as_ref()?.to_string();
        Some(InspectError::SomeUnreadable {
            path: self.directory.clone(),
            failed: damaged.len(),
            total: self.periods.len(),
            first,
        })
    }
}

/// Reads every archive in `dir` (see the module docs).
pub fn trend(dir: &Path) -> Result<Trend> {
    let read_err = |source| InspectError::ReadDir { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_archive = name.ends_with(".tar.gz") || name.ends_with(".tgz");
        if is_archive && !name.starts_with('.') && entry.path().is_file() {
            files.push((name, entry.path()));
        }
    }
    if files.is_empty() {
        return Err(InspectError::NoArchives { path: dir.to_path_buf() });
    }
    let periods: Vec<Period> = files.into_iter().map(|(name, path)| period(name, &path)).collect();
    Ok(Trend::from_periods(dir, periods))
}

impl Trend {
    /// Orders `periods` by gathering time (unknown times last, then by file name) and works
    /// out each gatherer's trend across them.
    pub fn from_periods(directory: &Path, mut periods: Vec<Period>) -> Trend {
        periods.sort_by(|a, b| {
            let key = |p: &Period| (p.gathered.is_none(), p.gathered.map(|g| g.at));
            key(a).cmp(&key(b)).then_with(|| a.archive.cmp(&b.archive))
        });
        let gatherers = gatherer_trends(&periods);
        Trend { directory: directory.to_path_buf(), periods, gatherers }
    }
}

fn period(archive: String, path: &Path) -> Period {
    let s = match scan_archive(path, true) {
        Ok(s) => s,
        Err(error) => {
            return Period {
                gathered: gathered(path, None, 0),
                archive,
                duration_in_ms: None,
                compressed_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                uncompressed_bytes: 0,
                records: 0,
                gatherers: Vec::new(),
                error: Some(error),
            };
        }
    };
    let meta = s.metadata.as_ref();
    Period {
        gathered: gathered(path, meta, s.newest_mtime),
        archive,
        duration_in_ms: meta.filter(|m| !m.started.is_empty()).map(|m| m.duration_in_ms),
        compressed_bytes: s.stats.compressed_bytes,
        uncompressed_bytes: s.stats.uncompressed_bytes,
        records: s.stats.records,
        gatherers: meta
            .map(|m| {
                m.status_reports
                    .iter()
                    .map(|r| {
                        let row = GathererRow::from(r);
                        GathererRun {
                            name: row.name,
                            version: row.version,
                            duration_in_ms: row.duration_in_ms,
                            records: row.records,
                            errors: row.errors.len(),
                            warnings: row.warnings.len(),
                            failed: row.failed,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error: s.error,
    }
}

fn gatherer_trends(periods: &[Period]) -> Vec<GathererTrend> {
    let mut names: Vec<&str> = periods.iter().flat_map(|p| p.gatherers.iter().map(|g| g.name.as_str())).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let runs: Vec<Option<&GathererRun>> =
                periods.iter().map(|p| p.gatherers.iter().find(|g| g.name == name)).collect();
            let status = periods
                .iter()
                .zip(&runs)
                .map(|(p, run)| match run {
                    Some(g) if g.failed => RunStatus::Failed,
                    Some(g) if g.warnings > 0 => RunStatus::Warnings,
                    Some(_) => RunStatus::Ok,
                    None if p.gatherers.is_empty() && p.error.is_some() => RunStatus::Unreadable,
                    None => RunStatus::Absent,
                })
                .collect();
            let durations: Vec<Option<u64>> = runs.iter().map(|r| r.map(|g| g.duration_in_ms)).collect();
            let mut sorted: Vec<u64> = durations.iter().flatten().copied().collect();
            sorted.sort_unstable();
            GathererTrend {
                name: name.to_owned(),
                runs: sorted.len(),
                failed: runs.iter().flatten().filter(|g| g.failed).count(),
                min_ms: sorted.first().copied().unwrap_or(0),
                median_ms: sorted.get(sorted.len().saturating_sub(1) / 2).copied().unwrap_or(0),
                max_ms: sorted.last().copied().unwrap_or(0),
                durations,
                status,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, ms: u64, failed: bool, warnings: usize) -> GathererRun {
        GathererRun { name: name.into(), version: None, duration_in_ms: ms, records: 1, errors: failed as usize, warnings, failed }
    }

    fn period(gatherers: Vec<GathererRun>, error: Option<InspectError>) -> Period {
        Period {
            archive: "a".into(),
            gathered: None,
            duration_in_ms: None,
            compressed_bytes: 0,
            uncompressed_bytes: 0,
            records: 0,
            gatherers,
            error,
        }
    }

    #[test]
    fn per_gatherer_statistics_and_status() {
        let periods = vec![
            period(vec![run("a", 30, false, 0), run("b", 5, false, 1)], None),
            period(vec![run("a", 10, true, 0)], None),
            period(Vec::new(), Some(InspectError::MissingMetadata { path: "x".into() })),
            period(vec![run("a", 20, false, 0), run("b", 7, false, 0)], None),
        ];
        let t = gatherer_trends(&periods);
        assert_eq!(t.len(), 2);
        let a = &t[0];
        assert_eq!((a.runs, a.failed, a.min_ms, a.median_ms, a.max_ms), (3, 1, 10, 20, 30));
        assert_eq!(a.durations, [Some(30), Some(10), None, Some(20)]);
        assert_eq!(a.status, [RunStatus::Ok, RunStatus::Failed, RunStatus::Unreadable, RunStatus::Ok]);
        let b = &t[1];
        assert_eq!((b.runs, b.median_ms), (2, 5), "lower median");
        assert_eq!(b.status, [RunStatus::Warnings, RunStatus::Absent, RunStatus::Unreadable, RunStatus::Ok]);
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden.tar.gz"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub.tar.gz")).unwrap();
        let err = trend(dir.path()).unwrap_err();
        assert!(matches!(err, InspectError::NoArchives { .. }), "{err:?}");
    }
}
