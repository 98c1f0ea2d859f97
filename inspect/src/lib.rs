//! Inspecting collected archives on a laptop: what `gather-agent inspect` and `gather-inspect` show.
//!
//! This crate depends on the archive format (`insights-format`) only, not on the runtime: no
//! Kubernetes client, no wasm engine, no async runtime, so it builds quickly on a laptop.
//!
//! Everything here reads archives with the streaming [`reader`], so memory is bounded by the
//! largest record held at once, never by the archive. Both our archives and the Insights
//! Operator's own are understood: its `gathers.json` lacks our fields, which are then absent.
//!
//! - [`summary`]: when an archive was gathered, its size, and one row per gatherer;
//! - [`list`]: record paths and sizes, optionally filtered by a [`glob::Glob`];
//! - [`show_record`] (escaped, streamed when large) / [`copy_record`] (exact bytes) /
//!   [`read_record`] (in memory, capped): one record;
//! - [`meta`]: `insights-operator/gathers.json` as stored;
//! - [`diff::diff_archives`]: what changed between two periods;
//! - [`trend::trend`]: a directory of archives over time.
//!
//! # Layout
//! - [`reader`]: the streaming tar.gz reader.
//! - [`diff`], [`trend`], [`glob`]: comparing two periods, a directory over time, record globs.
//! - [`render`]: text tables, JSON and the HTML report.
//! - [`cli`]: the command line shared by `gather-agent inspect` and the `gather-inspect` binary.
//!
//! [`render`] turns each of these into text tables, JSON or an HTML report. A damaged archive
//! (truncated, corrupt) still yields what could be read, with the [`InspectError`] alongside.
//!
//! Archives are untrusted input (a 3 MB archive can inflate to gigabytes), so nothing is read
//! whole unless it is small: `gathers.json` over [`MAX_METADATA_BYTES`] is refused unread, and
//! records are parsed as JSON only up to [`MAX_PARSE_BYTES`]; anything larger is streamed.

pub mod cli;
pub mod diff;
pub mod glob;
pub mod reader;
pub mod render;
pub mod trend;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use insights_format::{GathersMetadata, StatusReport, GATHERS_JSON};
use reader::Flow;

/// Why an archive (or a directory of them) could not be inspected, or not entirely.
///
/// Every message is one line that names the file.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file could not be opened or read at all.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The archive.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not gzip-compressed.
    #[error("{}: not a gzip file ({found}); an Insights archive is a .tar.gz", path.display())]
    NotGzip {
        /// The file.
        path: PathBuf,
        /// What it looks like instead.
        found: String,
    },
    /// The archive ends early.
    #[error("{}: truncated: the archive ends {}after {records} intact records", path.display(), inside_of(inside))]
    Truncated {
        /// The archive.
        path: PathBuf,
        /// Records read intact before the end.
        records: u64,
        /// The record the data ran out in, if it ran out inside one.
        inside: Option<String>,
    },
    /// The archive's data does not decode (bad deflate data, CRC, tar header...).
    #[error("{}: corrupt {}after {records} intact records: {detail}", path.display(), inside_of(inside))]
    Corrupt {
        /// The archive.
        path: PathBuf,
        /// Records read intact before the damage.
        records: u64,
        /// The record the damage was found in, if any.
        inside: Option<String>,
        /// What the decoder said.
        detail: String,
    },
    /// The archive is intact but has no `insights-operator/gathers.json`.
    #[error("{}: no {GATHERS_JSON}: not an Insights archive, or an incomplete one", path.display())]
    MissingMetadata {
        /// The archive.
        path: PathBuf,
    },
    /// `gathers.json` is larger than [`MAX_METADATA_BYTES`]: refused without being read, so a
    /// hostile archive cannot make `inspect` hold gigabytes.
    #[error(
        "{}: {GATHERS_JSON} is {size} bytes, over the {} MiB that inspect reads; it was skipped (extract it with tar to look at it)",
        path.display(), MAX_METADATA_BYTES / (1024 * 1024)
    )]
    MetadataTooLarge {
        /// The archive.
        path: PathBuf,
        /// Its size from the tar header.
        size: u64,
    },
    /// `show --json` was asked for a record too large to hold in memory.
    #[error(
        "record {} in {} is {size} bytes, over the {} MiB that --json holds in memory; use --raw to stream it",
        printable(record), path.display(), MAX_PARSE_BYTES / (1024 * 1024)
    )]
    RecordTooLarge {
        /// The archive.
        path: PathBuf,
        /// The record.
        record: String,
        /// Its size from the tar header.
        size: u64,
    },
    /// `gathers.json` does not parse as the Insights Operator's metadata.
    #[error("{}: {GATHERS_JSON} is not valid: {source}", path.display())]
    BadMetadata {
        /// The archive.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `show` was asked for a record the archive does not have.
    #[error("no record {record:?} in {}{hint}", path.display())]
    NoSuchRecord {
        /// The archive.
        path: PathBuf,
        /// The record asked for.
        record: String,
        /// A suggestion, starting with `; `, or empty.
        hint: String,
    },
    /// A directory could not be listed.
    #[error("cannot read directory {}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A directory holds no archives.
    #[error("{}: no *.tar.gz archives in this directory", path.display())]
    NoArchives {
        /// The directory.
        path: PathBuf,
    },
    /// Some archives of a directory could not be read (each is reported with its period).
    #[error("{failed} of {total} archives in {} could not be read entirely; the first: {first}", path.display())]
    SomeUnreadable {
        /// The directory.
        path: PathBuf,
        /// How many archives are damaged.
        failed: usize,
        /// How many archives there are.
        total: usize,
        /// The first damaged archive's error.
        first: String,
    },
    /// Scratch space for a diff could not be written or read back.
    #[error("diff scratch space: {0}")]
    Scratch(#[source] std::io::Error),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}

fn inside_of(inside: &Option<String>) -> String {
    inside.as_ref().map(|r| format!("inside record {} ", printable(r))).unwrap_or_default()
}

/// The largest `insights-operator/gathers.json` that is read. Ours are far smaller (the
/// agent caps every report); a larger one is a hostile or broken archive.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// The largest record parsed as JSON (pretty-printed by `show`, compared field by field by
/// `diff`). A JSON tree can take many times its text in memory, so larger records are
/// streamed as text by `show` and compared by hash and size by `diff`.
pub const MAX_PARSE_BYTES: u64 = 4 * 1024 * 1024;

/// Whether `c` must not reach a terminal raw: control characters (C0, DEL, C1) and the
/// bidirectional formatting characters that reorder what is shown (U+202A–U+202E,
/// U+2066–U+2069, U+200E, U+200F, U+061C), which can make a name look like another.
pub(crate) fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A name read from an archive, with control characters and bidi overrides escaped so that a
/// message quoting it stays on one line, shows what it is, and cannot drive the terminal.
pub(crate) fn printable(name: &str) -> String {
    name.chars().map(|c| if is_unsafe_char(c) { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// The result type of this module.
pub type Result<T, E = InspectError> = std::result::Result<T, E>;

/// Serializes an optional error as its one-line message.
fn error_message<S: serde::Serializer>(e: &Option<InspectError>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

/// One record: its path and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordInfo {
    /// Path inside the archive.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// Where a gathering time was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatheredFrom {
    /// `started` in our `gathers.json`.
    Metadata,
    /// The archive's file name, `insights-YYYY-MM-DD-HHMMSS.tar.gz` (both writers use it).
    FileName,
    /// The newest record modification time in the tar.
    Mtime,
}

/// When an archive was gathered, and how that is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gathered {
    /// The time, UTC.
    pub at: OffsetDateTime,
    /// Where it came from.
    pub from: GatheredFrom,
}

impl Serialize for Gathered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("Gathered", 2)?;
        st.serialize_field("at", &rfc3339(self.at))?;
        st.serialize_field("from", &self.from)?;
        st.end()
    }
}

/// RFC 3339, UTC.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Works out when an archive was gathered: our metadata's `started`, else the file name, else
/// the newest record mtime.
pub fn gathered(path: &Path, metadata: Option<&GathersMetadata>, newest_mtime: u64) -> Option<Gathered> {
    use time::format_description::well_known::Rfc3339;
    if let Some(at) = metadata.and_then(|m| OffsetDateTime::parse(&m.started, &Rfc3339).ok()) {
        return Some(Gathered { at, from: GatheredFrom::Metadata });
    }
    if let Some(at) = path.file_name().and_then(|n| n.to_str()).and_then(time_from_file_name) {
        return Some(Gathered { at, from: GatheredFrom::FileName });
    }
    if newest_mtime > 0 {
        let at = OffsetDateTime::from_unix_timestamp(newest_mtime as i64).ok()?;
        return Some(Gathered { at, from: GatheredFrom::Mtime });
    }
    None
}

/// `insights-2024-03-05-070809.tar.gz` (or `...-070809-2.tar.gz`) → 2024-03-05T07:08:09Z.
fn time_from_file_name(name: &str) -> Option<OffsetDateTime> {
    let rest = name.strip_prefix("insights-")?;
    let stamp = rest.get(..17)?;
    let format = time::macros::format_description!("[year]-[month]-[day]-[hour][minute][second]");
    time::PrimitiveDateTime::parse(stamp, &format).ok().map(|t| t.assume_utc())
}

/// One gatherer's row in a [`Summary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GathererRow {
    /// The gatherer's name.
    pub name: String,
    /// Module version (ours only).
    pub version: Option<String>,
    /// Module sha256, hex (ours only).
    pub sha256: Option<String>,
    /// How long it ran.
    pub duration_in_ms: u64,
    /// Records it wrote.
    pub records: u64,
    /// Its errors.
    pub errors: Vec<String>,
    /// Its warnings.
    pub warnings: Vec<String>,
    /// Its panic message.
    pub panic: Option<String>,
    /// Our failure class (`trap`, `deadline`, `policy`...).
    pub error_kind: Option<String>,
    /// Whether it failed: it has errors or panicked.
    pub failed: bool,
}

impl From<&StatusReport> for GathererRow {
    fn from(r: &StatusReport) -> Self {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let errors = r.errors.clone().unwrap_or_default();
        GathererRow {
            name: r.name.clone(),
            version: non_empty(&r.version),
            sha256: non_empty(&r.sha256),
            duration_in_ms: r.duration_in_ms,
            records: r.records_count,
            failed: !errors.is_empty() || r.panic.is_some(),
            errors,
            warnings: r.warnings.clone().unwrap_or_default(),
            panic: r.panic.clone(),
            error_kind: r.error_kind.clone(),
        }
    }
}

/// `inspect ARCHIVE`: an archive at a glance.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The archive, as given.
    pub archive: PathBuf,
    /// When it was gathered.
    pub gathered: Option<Gathered>,
    /// How long the period took (ours only).
    pub duration_in_ms: Option<u64>,
    /// The agent version that wrote it (ours only).
    pub agent_version: Option<String>,
    /// The archive file's size.
    pub compressed_bytes: u64,
    /// The records' total size.
    pub uncompressed_bytes: u64,
    /// How many records (files) the archive holds, `gathers.json` included.
    pub records: u64,
    /// One row per gatherer, from `gathers.json`; `None` when it could not be read.
    pub gatherers: Option<Vec<GathererRow>>,
    /// Agent-level warnings (ours only).
    pub warnings: Vec<String>,
    /// When the archive is damaged: the records that could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_read: Option<Vec<RecordInfo>>,
    /// Why the archive could not be read entirely.
    #[serde(serialize_with = "error_message")]
    pub error: Option<InspectError>,
}

impl Summary {
    /// How many gatherers failed.
    pub fn failed(&self) -> usize {
        self.gatherers.iter().flatten().filter(|g| g.failed).count()
    }
}

/// What one full pass over an archive collects for a summary, a listing or a trend row.
pub(crate) struct Scanned {
    pub records: Vec<RecordInfo>,
    pub metadata: Option<GathersMetadata>,
    pub stats: reader::ScanStats,
    pub newest_mtime: u64,
    pub error: Option<InspectError>,
}

/// What became of `gathers.json` during a scan.
enum MetadataSeen {
    Absent,
    /// Present but not read (`ls` needs no metadata).
    Unread,
    TooLarge(u64),
    Read(Vec<u8>),
}

/// Reads every record's header (data only for `gathers.json`, and only when `read_metadata`
/// and it is at most [`MAX_METADATA_BYTES`]). Fails outright only when nothing could be
/// read; damage part-way is returned in [`Scanned::error`].
pub(crate) fn scan_archive(path: &Path, read_metadata: bool) -> Result<Scanned> {
    let mut records = Vec::new();
    let mut raw_metadata = MetadataSeen::Absent;
    let mut newest_mtime = 0;
    let mut compressed = 0;
    let result = reader::scan(path, |r| {
        if r.path() == GATHERS_JSON && !read_metadata {
            raw_metadata = MetadataSeen::Unread;
        } else if r.path() == GATHERS_JSON && r.size() > MAX_METADATA_BYTES {
            raw_metadata = MetadataSeen::TooLarge(r.size());
        } else if r.path() == GATHERS_JSON {
            raw_metadata = MetadataSeen::Read(r.read_to_vec()?);
        }
        // Read past (never held) before the record counts as intact.
        r.skip()?;
        newest_mtime = newest_mtime.max(r.mtime());
        records.push(RecordInfo { path: r.path().to_owned(), size: r.size() });
        Ok(Flow::Continue)
    });
    let (stats, mut error) = match result {
        Ok(stats) => (stats, None),
        Err(e @ (InspectError::Open { .. } | InspectError::NotGzip { .. })) => return Err(e),
        Err(e) => {
            if let Ok(meta) = std::fs::metadata(path) {
                compressed = meta.len();
            }
            let stats = reader::ScanStats {
                records: records.len() as u64,
                uncompressed_bytes: records.iter().map(|r| r.size).sum(),
                compressed_bytes: compressed,
                complete: false,
            };
            (stats, Some(e))
        }
    };
    let metadata = match raw_metadata {
        MetadataSeen::Read(bytes) => match serde_json::from_slice::<GathersMetadata>(&bytes) {
            Ok(m) => Some(m),
            Err(source) => {
                error.get_or_insert(InspectError::BadMetadata { path: path.to_path_buf(), source });
                None
            }
        },
        MetadataSeen::Unread => None,
        MetadataSeen::TooLarge(size) => {
            error.get_or_insert(InspectError::MetadataTooLarge { path: path.to_path_buf(), size });
            None
        }
        MetadataSeen::Absent => {
            error.get_or_insert(InspectError::MissingMetadata { path: path.to_path_buf() });
            None
        }
    };
    Ok(Scanned { records, metadata, stats, newest_mtime, error })
}

/// `inspect ARCHIVE`: reads the whole archive once, holding only `gathers.json`.
///
/// `Err` only when nothing could be read (missing file, not gzip); a damaged archive gives a
/// [`Summary`] of what could be read with [`Summary::error`] set.
pub fn summary(path: &Path) -> Result<Summary> {
    let s = scan_archive(path, true)?;
    let meta = s.metadata.as_ref();
    Ok(Summary {
        archive: path.to_path_buf(),
        gathered: gathered(path, meta, s.newest_mtime),
        duration_in_ms: meta.filter(|m| !m.started.is_empty()).map(|m| m.duration_in_ms),
        agent_version: meta.map(|m| m.agent_version.clone()).filter(|v| !v.is_empty()),
        compressed_bytes: s.stats.compressed_bytes,
        uncompressed_bytes: s.stats.uncompressed_bytes,
        records: s.stats.records,
        gatherers: meta.map(|m| m.status_reports.iter().map(GathererRow::from).collect()),
        warnings: meta.map(|m| m.warnings.clone()).unwrap_or_default(),
        records_read: s.error.is_some().then(|| sorted(s.records)),
        error: s.error,
    })
}

fn sorted(mut records: Vec<RecordInfo>) -> Vec<RecordInfo> {
    records.sort_by(|a, b| a.path.cmp(&b.path));
    records
}

/// `inspect ARCHIVE ls [GLOB]`: record paths and sizes, sorted by path.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// The archive, as given.
    pub archive: PathBuf,
    /// The pattern, if one was given.
    pub glob: Option<String>,
    /// The matching records, sorted by path.
    pub records: Vec<RecordInfo>,
    /// How many records the archive holds (that could be read), matching or not.
    pub archive_records: u64,
    /// Their total size.
    pub total_bytes: u64,
    /// Why the archive could not be read entirely (the records are those read intact).
    #[serde(serialize_with = "error_message")]
    pub error: Option<InspectError>,
}

/// Lists the records matching `glob` (all when `None`). Damage part-way is reported in
/// [`Listing::error`], with the records read intact before it. No record's data is held,
/// `gathers.json` included (a missing one is still reported).
pub fn list(path: &Path, glob: Option<&glob::Glob>) -> Result<Listing> {
    let s = scan_archive(path, false)?;
    let archive_records = s.records.len() as u64;
    let records: Vec<RecordInfo> =
        sorted(s.records).into_iter().filter(|r| glob.is_none_or(|g| g.matches(&r.path))).collect();
    Ok(Listing {
        archive: path.to_path_buf(),
        glob: glob.map(|g| g.as_str().to_owned()),
        total_bytes: records.iter().map(|r| r.size).sum(),
        records,
        archive_records,
        error: s.error,
    })
}

/// Finds `record` and hands it to `take`; reads no further than that record.
fn with_record<T>(
    path: &Path,
    record: &str,
    mut take: impl FnMut(&mut reader::Record<'_, '_>) -> Result<T>,
) -> Result<T> {
    let wanted = record.trim_start_matches("./").trim_start_matches('/');
    let base = wanted.rsplit('/').next().unwrap_or(wanted);
    let mut found = None;
    let mut under_dir = Vec::new();
    let mut same_base = Vec::new();
    let result = reader::scan(path, |r| {
        if r.path() == wanted {
            found = Some(take(r)?);
            return Ok(Flow::Stop);
        }
        if r.path().starts_with(wanted) && r.path()[wanted.len()..].starts_with('/') && under_dir.len() < 3 {
            under_dir.push(r.path().to_owned());
        } else if r.path().rsplit('/').next() == Some(base) && same_base.len() < 3 {
            same_base.push(r.path().to_owned());
        }
        Ok(Flow::Continue)
    });
    if let Some(v) = found {
        return Ok(v);
    }
    result?;
    let hint = if !under_dir.is_empty() {
        format!("; it is a directory: try `ls {wanted}`")
    } else if !same_base.is_empty() {
        format!("; did you mean {}?", same_base.iter().map(|p| printable(p)).collect::<Vec<_>>().join(" or "))
    } else {
        "; `ls` lists the records".to_owned()
    };
    Err(InspectError::NoSuchRecord { path: path.to_path_buf(), record: wanted.to_owned(), hint })
}

/// `inspect ARCHIVE show PATH`: one record's bytes (memory: that record only).
///
/// For untrusted archives prefer [`show_record`], which streams large records; this refuses
/// a record over [`MAX_PARSE_BYTES`] with [`InspectError::RecordTooLarge`].
pub fn read_record(path: &Path, record: &str) -> Result<Vec<u8>> {
    with_record(path, record, |r| {
        if r.size() > MAX_PARSE_BYTES {
            return Err(InspectError::RecordTooLarge { path: path.to_path_buf(), record: r.path().to_owned(), size: r.size() });
        }
        r.read_to_vec()
    })
}

/// `inspect ARCHIVE show PATH` (without `--raw`): writes the record for a terminal to `out`.
///
/// A JSON record up to [`MAX_PARSE_BYTES`] is pretty-printed; anything else is streamed
/// through [`render::TextEscaper`], so control characters and bidi overrides are shown
/// escaped rather than acted on, and memory stays bounded whatever the record's size.
pub fn show_record(path: &Path, record: &str, out: &mut dyn Write) -> Result<()> {
    with_record(path, record, |r| {
        if r.size() <= MAX_PARSE_BYTES {
            let bytes = r.read_to_vec()?;
            return out.write_all(&render::record_text(&bytes)).map_err(InspectError::Output);
        }
        let mut escaper = render::TextEscaper::new(&mut *out);
        r.copy_to(&mut escaper)?;
        escaper.finish().map_err(InspectError::Output)
    })
}

/// `inspect ARCHIVE show PATH --raw`: streams one record's exact bytes to `out`.
pub fn copy_record(path: &Path, record: &str, out: &mut dyn Write) -> Result<u64> {
    with_record(path, record, |r| r.copy_to(out))
}

/// `inspect ARCHIVE meta`: `gathers.json` as stored (every field, ours and the Insights Operator's).
pub fn meta(path: &Path) -> Result<serde_json::Value> {
    let bytes = with_record(path, GATHERS_JSON, |r| {
        if r.size() > MAX_METADATA_BYTES {
            return Err(InspectError::MetadataTooLarge { path: path.to_path_buf(), size: r.size() });
        }
        r.read_to_vec()
    })
    .map_err(|e| match e {
        InspectError::NoSuchRecord { path, .. } => InspectError::MissingMetadata { path },
        other => other,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| InspectError::BadMetadata { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn gathering_time_comes_from_metadata_then_name_then_mtime() {
        let meta = GathersMetadata { started: "2024-03-05T07:08:09.5Z".into(), ..Default::default() };
        let p = Path::new("/x/insights-2023-01-02-030405.tar.gz");
        let g = gathered(p, Some(&meta), 7).unwrap();
        assert_eq!((g.at, g.from), (datetime!(2024-03-05 07:08:09.5 UTC), GatheredFrom::Metadata));
        let io = GathersMetadata::default();
        let g = gathered(p, Some(&io), 7).unwrap();
        assert_eq!((g.at, g.from), (datetime!(2023-01-02 03:04:05 UTC), GatheredFrom::FileName));
        let g = gathered(Path::new("insights-2023-01-02-030405-2.tar.gz"), None, 0).unwrap();
        assert_eq!(g.at, datetime!(2023-01-02 03:04:05 UTC));
        let g = gathered(Path::new("io-sample.tar.gz"), None, 1_708_523_473).unwrap();
        assert_eq!((g.at, g.from), (datetime!(2024-02-21 13:51:13 UTC), GatheredFrom::Mtime));
        assert_eq!(gathered(Path::new("insights-garbage.tar.gz"), None, 0), None);
    }

    #[test]
    fn errors_are_one_line_and_name_the_record() {
        let e = InspectError::Truncated { path: "a.tar.gz".into(), records: 3, inside: Some("config/id".into()) };
        assert_eq!(e.to_string(), "a.tar.gz: truncated: the archive ends inside record config/id after 3 intact records");
        let e = InspectError::Truncated { path: "a.tar.gz".into(), records: 0, inside: None };
        assert_eq!(e.to_string(), "a.tar.gz: truncated: the archive ends after 0 intact records");
        let e = InspectError::MissingMetadata { path: "a.tar.gz".into() };
        assert_eq!(
            e.to_string(),
            "a.tar.gz: no insights-operator/gathers.json: not an Insights archive, or an incomplete one"
        );
    }

    #[test]
    fn rows_mark_failures() {
        let ok = StatusReport { name: "a".into(), errors: None, warnings: Some(vec!["w".into()]), ..Default::default() };
        let failed = StatusReport { name: "b".into(), errors: Some(vec!["e".into()]), ..Default::default() };
        let panicked = StatusReport { name: "c".into(), panic: Some("p".into()), ..Default::default() };
        let rows: Vec<GathererRow> = [ok, failed, panicked].iter().map(GathererRow::from).collect();
        assert_eq!(rows.iter().map(|r| r.failed).collect::<Vec<_>>(), [false, true, true]);
        assert_eq!(rows[0].version, None, "the Insights Operator has no versions");
    }
}
