//! The archive: one file that owns the Insights Operator tar.gz format, from record names to the final rename.
//!
//! An [`ArchiveWriter`] streams records into a hidden temp file in the output directory as
//! gatherers emit them, then [`ArchiveWriter::finish`] appends `insights-operator/gathers.json`,
//! fsyncs and renames it to `insights-YYYY-MM-DD-HHMMSS.tar.gz`. Readers of the output directory
//! therefore only ever see complete archives under a final name.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use flate2::write::GzEncoder;
use flate2::Compression;
use hostapi::abi::status;
use hostapi::record::{validate_name, NameError};
use tempfile::TempPath;
use time::{OffsetDateTime, UtcOffset};

// The format itself (gathers.json and its reports) is shared with the reader, `gather-inspect`.
pub use insights_format::{GathersMetadata, StatusReport, CLUSTER_ID_RECORD, GATHERS_JSON};

/// Gzip level for archives.
///
/// Level 1: with zlib-rs it compresses well over 100 MB/s of input on one core, while the
/// default level 6 is several times slower for a few percent smaller output on JSON, and archive
/// writing happens under a lock that every gatherer thread contends for.
const COMPRESSION: Compression = Compression::fast();

/// Sized so the compressor's small output chunks become few large `write` calls.
const WRITE_BUFFER_BYTES: usize = 128 * 1024;

/// How many `-N` suffixes to try before giving up on finding a free name.
const MAX_NAME_SUFFIX: u32 = 10_000;

/// Why a single record was refused. The archive itself stays usable except after [`RecordError::Io`].
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The name breaks the record naming rules (escape attempts, control characters, reserved prefix…).
    #[error("record {name:?} refused: {source}")]
    BadName {
        /// The refused name.
        name: String,
        /// Which rule it broke.
        #[source]
        source: NameError,
    },
    /// A record with this name was already accepted.
    #[error("record {name:?} already exists; the first one was kept")]
    Duplicate {
        /// The duplicated name.
        name: String,
    },
    /// The name is a directory of records already accepted (`config` after `config/x`), so
    /// the archive could not be extracted with both.
    #[error("record {name:?} refused: the archive already has records under {name:?}/, so it cannot also be a file")]
    ShadowsDirectory {
        /// The refused name.
        name: String,
    },
    /// A directory in the name is a record already accepted (`config/x` after `config`).
    #[error("record {name:?} refused: {file:?} is already a record (a file), so it cannot also be a directory")]
    UnderFile {
        /// The refused name.
        name: String,
        /// The accepted record that is a prefix of the name.
        file: String,
    },
    /// Accepting the record would take the archive over its uncompressed size cap.
    #[error("record {name:?} ({size} bytes) dropped: archive size cap reached ({remaining} bytes left)")]
    ArchiveFull {
        /// The dropped record's name.
        name: String,
        /// The dropped record's size in bytes.
        size: u64,
        /// How many bytes the cap still allows.
        remaining: u64,
    },
    /// Writing to the archive failed (disk full…); this and every later record are lost.
    #[error("record {name:?} lost: writing the archive failed: {source}")]
    Io {
        /// The record being written.
        name: String,
        /// The write error.
        #[source]
        source: io::Error,
    },
}

impl RecordError {
    /// The ABI status code a gatherer receives for this refusal.
    pub fn status(&self) -> i32 {
        match self {
            RecordError::BadName { .. } | RecordError::ShadowsDirectory { .. } | RecordError::UnderFile { .. } => {
                status::BAD_NAME
            }
            RecordError::Duplicate { .. } => status::DUPLICATE,
            RecordError::ArchiveFull { .. } => status::ARCHIVE_FULL,
            // The ABI has no I/O status; to the guest a broken archive is a limit it cannot fix.
            RecordError::Io { .. } => status::LIMIT,
        }
    }
}

/// Why a whole archive could not be created, finished or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The output directory or the temp file in it could not be created.
    #[error("cannot create an archive in {dir}: {source}")]
    Create {
        /// The output directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing, flushing or syncing the archive failed.
    #[error("writing archive {path}: {source}")]
    Write {
        /// The file being written (the temp file until the rename).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The finished temp file could not be renamed to its final name.
    #[error("renaming {from} to {to}: {source}")]
    Rename {
        /// The temp file (already removed when this is returned).
        from: PathBuf,
        /// The final name that was attempted.
        to: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The period was abandoned (shutdown) before the archive was finished; nothing was written.
    #[error("the period was abandoned before its archive was finished; no archive was written")]
    Abandoned,
    /// `gathers.json` could not be serialized.
    #[error("serializing {GATHERS_JSON}: {0}")]
    Metadata(#[source] serde_json::Error),
    /// An archive could not be read back.
    #[error("reading archive {path}: {source}")]
    Read {
        /// The archive being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The archive's file name for a period starting at `started`: `insights-YYYY-MM-DD-HHMMSS.tar.gz`, in UTC.
pub fn archive_file_name(started: OffsetDateTime) -> String {
    let t = started.to_offset(UtcOffset::UTC);
    format!(
        "insights-{:04}-{:02}-{:02}-{:02}{:02}{:02}.tar.gz",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

type TarStream = tar::Builder<GzEncoder<BufWriter<File>>>;

/// The accepted record names as a tree of path segments, so that a name that would be both a
/// file and a directory is caught in one walk of its segments.
///
/// A tree rather than a set of every directory prefix: memory stays linear in the bytes of
/// distinct segments, whereas a hostile 1024-byte name of 512 one-letter segments would add
/// 512 prefixes (about 256 KiB) per record to a prefix set.
#[derive(Debug, Default)]
struct NameTree {
    children: HashMap<Box<str>, NameTree>,
    /// This node is an accepted record (a file); it then has no children.
    file: bool,
}

/// Why a name cannot join a [`NameTree`].
#[derive(Debug, PartialEq, Eq)]
enum Clash {
    /// The same name is already a record.
    Duplicate,
    /// Records lie under this name.
    Directory,
    /// This many bytes of the name are a record.
    UnderFile(usize),
}

impl NameTree {
    /// Whether `name` (already valid, so no empty segments) could be added.
    fn check(&self, name: &str) -> Result<(), Clash> {
        let mut node = self;
        let mut end: usize = 0;
        for seg in name.split('/') {
            if node.file {
                return Err(Clash::UnderFile(end.saturating_sub(1)));
            }
            end += seg.len() + 1;
            match node.children.get(seg) {
                Some(child) => node = child,
                None => return Ok(()),
            }
        }
        if node.file { Err(Clash::Duplicate) } else { Err(Clash::Directory) }
    }

    /// Adds `name`; [`NameTree::check`] must have accepted it.
    fn insert(&mut self, name: &str) {
        let mut node = self;
        for seg in name.split('/') {
            node = node.children.entry(seg.into()).or_default();
        }
        node.file = true;
    }
}

struct Inner {
    tar: TarStream,
    names: NameTree,
    bytes: u64,
    records: u64,
    /// Set while an entry is being appended and left set if that fails: a half-written entry
    /// (or a panic mid-write, which poisons the mutex) means the tar stream is corrupt.
    broken: Option<String>,
}

/// Streams one period's records into a tar.gz archive; shared by all gatherer threads.
pub struct ArchiveWriter {
    // Declared before `temp` so the file is closed before the temp path is unlinked on drop.
    inner: Mutex<Inner>,
    temp: TempPath,
    dir: PathBuf,
    started: OffsetDateTime,
    mtime: u64,
    cap_bytes: u64,
    // Mirrors of the counters in `inner`, so progress can be read without waiting behind a
    // large record being compressed.
    bytes: AtomicU64,
    records: AtomicU64,
    /// The `config/id` record, kept for the upload's User-Agent (as IO sends the cluster id).
    cluster_id: Mutex<Option<String>>,
    /// Networking obfuscation of every record's data and name, when enabled.
    obfuscator: Option<crate::obfuscate::Obfuscator>,
}

impl ArchiveWriter {
    /// Creates the temp file in `out_dir` (creating `out_dir` if missing).
    ///
    /// `cap_bytes` caps the uncompressed bytes of all records together; the ABI default is
    /// [`hostapi::abi::limits::ARCHIVE_BYTES`].
    pub fn create(out_dir: &Path, started: OffsetDateTime, cap_bytes: u64) -> Result<Self, ArchiveError> {
        let create_err = |source| ArchiveError::Create { dir: out_dir.to_path_buf(), source };
        fs::create_dir_all(out_dir).map_err(create_err)?;
        // A dot-file: tools that glob `insights-*.tar.gz` never pick up a partial archive.
        let prefix = format!(".{}.tmp-", archive_file_name(started));
        let (file, temp) = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(out_dir)
            .map_err(create_err)?
            .into_parts();
        let gz = GzEncoder::new(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file), COMPRESSION);
        tracing::debug!(temp = %temp.display(), "archive started");
        Ok(ArchiveWriter {
            inner: Mutex::new(Inner {
                tar: tar::Builder::new(gz),
                names: NameTree::default(),
                bytes: 0,
                records: 0,
                broken: None,
            }),
            temp,
            dir: out_dir.to_path_buf(),
            started,
            mtime: u64::try_from(started.unix_timestamp()).unwrap_or(0),
            cap_bytes,
            bytes: AtomicU64::new(0),
            records: AtomicU64::new(0),
            cluster_id: Mutex::new(None),
            obfuscator: None,
        })
    }

    /// Passes every record (data and name) through `obfuscator` from now on: no host function
    /// and no module writes around it.
    pub fn with_obfuscator(mut self, obfuscator: crate::obfuscate::Obfuscator) -> Self {
        self.obfuscator = Some(obfuscator);
        self
    }

    /// Whether records are obfuscated (the extra host work a record costs).
    pub fn obfuscating(&self) -> bool {
        self.obfuscator.is_some()
    }

    /// Adds one record.
    ///
    /// Checks, in order: the name rules ([`RecordError::BadName`]), duplicates (the first record
    /// is kept, [`RecordError::Duplicate`]), a name that is a directory of earlier records or
    /// lies under an earlier record ([`RecordError::ShadowsDirectory`],
    /// [`RecordError::UnderFile`]: the first one is kept, so the archive always extracts), and
    /// the size cap on the running total of uncompressed record bytes
    /// ([`RecordError::ArchiveFull`]; smaller later records may still fit).
    ///
    /// All checks and the write happen under one lock, so concurrent callers cannot both
    /// pass the checks with clashing names.
    pub fn add(&self, name: &str, data: &[u8]) -> Result<(), RecordError> {
        let obfuscated;
        let (name, data) = match &self.obfuscator {
            Some(o) => {
                obfuscated = (o.name(name), o.bytes(data));
                (obfuscated.0.as_str(), obfuscated.1.as_slice())
            }
            None => (name, data),
        };
        validate_name(name).map_err(|source| RecordError::BadName { name: name.to_owned(), source })?;
        let size = data.len() as u64;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match inner.names.check(name) {
            Ok(()) => {}
            Err(Clash::Duplicate) => return Err(RecordError::Duplicate { name: name.to_owned() }),
            Err(Clash::Directory) => return Err(RecordError::ShadowsDirectory { name: name.to_owned() }),
            Err(Clash::UnderFile(end)) => {
                return Err(RecordError::UnderFile { name: name.to_owned(), file: name[..end].to_owned() });
            }
        }
        let remaining = self.cap_bytes.saturating_sub(inner.bytes);
        if size > remaining {
            return Err(RecordError::ArchiveFull { name: name.to_owned(), size, remaining });
        }
        if let Some(reason) = &inner.broken {
            let source = io::Error::other(format!("the archive is unusable after an earlier failure: {reason}"));
            return Err(RecordError::Io { name: name.to_owned(), source });
        }
        inner.broken = Some(format!("writing record {name:?} was interrupted"));
        let mut header = entry_header(self.mtime, size);
        if let Err(source) = inner.tar.append_data(&mut header, name, data) {
            tracing::warn!(record = name, error = %source, temp = %self.temp.display(), "archive write failed");
            inner.broken = Some(format!("writing record {name:?}: {source}"));
            return Err(RecordError::Io { name: name.to_owned(), source });
        }
        inner.broken = None;
        inner.names.insert(name);
        inner.bytes += size;
        inner.records += 1;
        self.bytes.store(inner.bytes, Ordering::Relaxed);
        self.records.store(inner.records, Ordering::Relaxed);
        drop(inner);
        if name == CLUSTER_ID_RECORD && data.len() <= 128 {
            let id = String::from_utf8_lossy(data).trim().to_owned();
            if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                *self.cluster_id.lock().unwrap_or_else(PoisonError::into_inner) = Some(id);
            }
        }
        Ok(())
    }

    /// The cluster id, if a gatherer recorded `config/id`.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Uncompressed bytes of records accepted so far.
    pub fn bytes_accepted(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of records accepted so far.
    pub fn records_accepted(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Writes `insights-operator/gathers.json` (pretty JSON of `metadata`), finishes the gzip
    /// stream, fsyncs, renames to the first free final name and fsyncs the directory; returns the
    /// final path. On error the temp file is removed and no archive appears.
    pub fn finish(self, metadata: &GathersMetadata) -> Result<PathBuf, ArchiveError> {
        let ArchiveWriter { inner, temp, dir, started, mtime, .. } = self;
        let inner = inner.into_inner().unwrap_or_else(PoisonError::into_inner);
        let write_err = |source| ArchiveError::Write { path: temp.to_path_buf(), source };
        if let Some(reason) = inner.broken {
            return Err(write_err(io::Error::other(format!("an earlier record write failed: {reason}"))));
        }
        let json = serde_json::to_vec_pretty(metadata).map_err(ArchiveError::Metadata)?;
        let mut tar = inner.tar;
        let mut header = entry_header(mtime, json.len() as u64);
        tar.append_data(&mut header, GATHERS_JSON, json.as_slice()).map_err(write_err)?;
        let file = tar
            .into_inner()
            .and_then(GzEncoder::finish)
            .and_then(|buf| buf.into_inner().map_err(io::IntoInnerError::into_error))
            .map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        drop(file);

        let path = persist(temp, &dir, started)?;
        // The archive is complete and visible by now; failing here would make the caller believe
        // it was lost, so an unsynced directory entry is only worth a warning.
        if let Err(error) = File::open(&dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %dir.display(), %error, "fsync of the archive directory failed");
        }
        tracing::info!(
            path = %path.display(),
            records = inner.records,
            bytes = inner.bytes,
            "archive written"
        );
        Ok(path)
    }
}

fn entry_header(mtime: u64, size: u64) -> tar::Header {
    // GNU headers: `append_data` then writes names over 100 bytes as GNU long-name entries,
    // which GNU tar, bsdtar, Go's archive/tar and the tar crate all read.
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

/// Renames the temp file to the first free name; never replaces an existing archive, even one
/// another writer creates concurrently, because the no-clobber rename checks atomically.
fn persist(mut temp: TempPath, dir: &Path, started: OffsetDateTime) -> Result<PathBuf, ArchiveError> {
    let base = archive_file_name(started);
    let stem = base.strip_suffix(".tar.gz").unwrap_or(&base);
    let mut target = dir.join(&base);
    for n in 2..=MAX_NAME_SUFFIX + 1 {
        match temp.persist_noclobber(&target) {
            Ok(()) => return Ok(target),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                temp = e.path;
                target = dir.join(format!("{stem}-{n}.tar.gz"));
            }
            Err(e) => return Err(ArchiveError::Rename { from: e.path.to_path_buf(), to: target, source: e.error }),
        }
    }
    Err(ArchiveError::Rename {
        from: temp.to_path_buf(),
        to: target,
        source: io::Error::new(io::ErrorKind::AlreadyExists, format!("{MAX_NAME_SUFFIX} archives already exist for this second")),
    })
}

/// Reads an archive back as `(name, bytes)` pairs of its regular files, in archive order.
///
/// Holds every record in memory: meant for tests and for inspecting single archives.
pub fn read_entries(path: &Path) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let read_err = |source| ArchiveError::Read { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(read_err)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(read_err)?;
        out.push((name, data));
    }
    Ok(out)
}

/// The process's current resident set size in bytes; 0 where `/proc` is unavailable.
///
/// Read from `VmRSS` in `/proc/self/status` rather than `/proc/self/statm`, because statm
/// counts pages and the page size is not available without libc.
pub fn current_rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// The process's peak resident set size (`VmHWM`) in bytes; 0 where `/proc` is unavailable.
pub fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

fn proc_status_bytes(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_status_kib(&status, field))
        .unwrap_or(0)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    let value = status.lines().find_map(|line| line.strip_prefix(field))?;
    let kib: u64 = value.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::process::Command;
    use time::macros::datetime;

    const START: OffsetDateTime = datetime!(2024-03-05 07:08:09 UTC);

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    fn sample_metadata() -> GathersMetadata {
        GathersMetadata {
            status_reports: vec![
                StatusReport {
                    name: "clusterconfig/nodes".into(),
                    duration_in_ms: 12,
                    records_count: 2,
                    version: "1.2.0".into(),
                    sha256: "ab".repeat(32),
                    fuel_used: 123_456,
                    requests: 3,
                    bytes_emitted: 42,
                    ..Default::default()
                },
                StatusReport {
                    name: "clusterconfig/broken".into(),
                    errors: Some(vec!["boom".into()]),
                    warnings: Some(vec!["careful".into()]),
                    panic: Some("panicked at src/lib.rs:1".into()),
                    error_kind: Some("trap".into()),
                    exit_code: Some(3),
                    ..Default::default()
                },
            ],
            memory_alloc_bytes: current_rss_bytes(),
            uptime_seconds: 1.5,
            is_global_obfuscation_enabled: false,
            agent_version: "0.1.0".into(),
            started: "2024-03-05T07:08:09Z".into(),
            finished: "2024-03-05T07:08:10.5Z".into(),
            duration_in_ms: 1500,
            peak_rss_bytes: peak_rss_bytes(),
            module_set: Some(serde_json::json!({"index": "https://example.invalid/index.json", "generation": 4})),
            warnings: vec!["update refused: bad signature".into()],
        }
    }

    fn gathers(entries: &[(String, Vec<u8>)]) -> GathersMetadata {
        let (_, json) = entries.iter().find(|(n, _)| n == GATHERS_JSON).expect("gathers.json present");
        serde_json::from_slice(json).unwrap()
    }

    #[test]
    fn writer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ArchiveWriter>();
    }

    #[test]
    fn file_name_is_utc_from_period_start() {
        assert_eq!(archive_file_name(START), "insights-2024-03-05-070809.tar.gz");
        let local = datetime!(2024-01-01 01:02:03 +02:00);
        assert_eq!(archive_file_name(local), "insights-2023-12-31-230203.tar.gz");
    }

    #[test]
    fn writes_records_and_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let long_name = format!("config/pod/{}/{}.json", "n".repeat(80), "p".repeat(60));
        assert!(long_name.len() > 100);
        let records: Vec<(String, Vec<u8>)> = vec![
            ("config/id".into(), b"0123-abcd".to_vec()),
            ("config/node/worker-0.json".into(), br#"{"kind":"Node"}"#.to_vec()),
            ("config/empty".into(), Vec::new()),
            (long_name.clone(), vec![7u8; 70_000]),
        ];
        let writer = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        for (name, data) in &records {
            writer.add(name, data).unwrap();
        }
        assert_eq!(writer.records_accepted(), 4);
        assert_eq!(writer.bytes_accepted(), 9 + 15 + 70_000);
        let metadata = sample_metadata();
        let path = writer.finish(&metadata).unwrap();

        assert_eq!(path, dir.path().join("insights-2024-03-05-070809.tar.gz"));
        assert_eq!(dir_names(dir.path()), ["insights-2024-03-05-070809.tar.gz"], "no temp files left");

        let out = Command::new("tar").arg("-tzf").arg(&path).output().expect("run tar");
        assert!(out.status.success(), "tar -tzf failed: {}", String::from_utf8_lossy(&out.stderr));
        let listed: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
        let mut expected: Vec<String> = records.iter().map(|(n, _)| n.clone()).collect();
        expected.push(GATHERS_JSON.to_owned());
        assert_eq!(listed, expected);

        let entries = read_entries(&path).unwrap();
        assert_eq!(&entries[..records.len()], &records[..]);
        assert_eq!(entries.len(), records.len() + 1);
        assert_eq!(gathers(&entries), metadata);

        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&path).unwrap()));
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.entry_type(), tar::EntryType::Regular);
            assert_eq!(header.mode().unwrap(), 0o644);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.mtime().unwrap(), START.unix_timestamp() as u64);
        }
    }

    const ARCHIVE_CAP: u64 = hostapi::abi::limits::ARCHIVE_BYTES;

    #[test]
    fn insights_operator_gathers_json_deserializes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/archives/io-gathers.json");
        let metadata: GathersMetadata = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        assert!(metadata.status_reports.len() > 10);
        assert_eq!(metadata.memory_alloc_bytes, 20_575_264);
        assert!(!metadata.is_global_obfuscation_enabled);
        assert_eq!(metadata.agent_version, "");
        let config_maps = metadata.status_reports.iter().find(|r| r.name == "clusterconfig/config_maps").unwrap();
        assert_eq!(config_maps.records_count, 12);
        assert_eq!(config_maps.errors.as_deref(), Some(&["configmaps \"cluster-monitoring-config\" not found".to_owned()][..]));
        let olm = &metadata.status_reports[0];
        assert_eq!((olm.errors.as_ref(), olm.warnings.as_ref(), olm.panic.as_ref()), (None, None, None));
    }

    #[test]
    fn empty_errors_serialize_as_null_like_the_insights_operator() {
        let json = serde_json::to_value(StatusReport { name: "x".into(), ..Default::default() }).unwrap();
        assert_eq!(json["errors"], serde_json::Value::Null);
        assert_eq!(json["warnings"], serde_json::Value::Null);
        assert_eq!(json["panic"], serde_json::Value::Null);
        let top = serde_json::to_value(GathersMetadata::default()).unwrap();
        assert!(top.get("module_set").is_none() && top.get("warnings").is_none());
    }

    #[test]
    fn bad_names_are_refused_and_nothing_escapes() {
        let root = tempfile::tempdir().unwrap();
        let out_dir = root.path().join("a/b/out");
        let writer = ArchiveWriter::create(&out_dir, START, ARCHIVE_CAP).unwrap();
        let long_segment = format!("config/{}", "x".repeat(256));
        for name in ["../../etc/x", "/abs", "a\0b", "config\\x", "a//b", "", long_segment.as_str(), GATHERS_JSON, "insights-operator"] {
            let err = writer.add(name, b"data").unwrap_err();
            assert!(matches!(err, RecordError::BadName { name: ref n, .. } if n == name), "{name:?}: {err}");
            assert_eq!(err.status(), status::BAD_NAME);
        }
        let err = writer.add("../../etc/x", b"data").unwrap_err();
        assert_eq!(err.to_string(), r#"record "../../etc/x" refused: record name has a '.' or '..' segment"#);
        let err = writer.add(&long_segment, b"data").unwrap_err();
        assert!(matches!(err, RecordError::BadName { source: NameError::SegmentTooLong(256), .. }));
        assert_eq!(writer.records_accepted(), 0);
        assert_eq!(writer.bytes_accepted(), 0);

        let path = writer.finish(&GathersMetadata::default()).unwrap();
        let names: Vec<String> = read_entries(&path).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [GATHERS_JSON]);
        assert_eq!(dir_names(root.path()), ["a"]);
        assert_eq!(dir_names(&root.path().join("a")), ["b"]);
        assert_eq!(dir_names(&root.path().join("a/b")), ["out"]);
        assert_eq!(dir_names(&out_dir), ["insights-2024-03-05-070809.tar.gz"]);
    }

    #[test]
    fn duplicate_keeps_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let writer = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        writer.add("config/id", b"first").unwrap();
        let err = writer.add("config/id", b"second").unwrap_err();
        assert!(matches!(err, RecordError::Duplicate { ref name } if name == "config/id"));
        assert_eq!(err.status(), status::DUPLICATE);
        assert_eq!(err.to_string(), r#"record "config/id" already exists; the first one was kept"#);
        assert_eq!((writer.records_accepted(), writer.bytes_accepted()), (1, 5));

        let entries = read_entries(&writer.finish(&GathersMetadata::default()).unwrap()).unwrap();
        assert_eq!(entries[0], ("config/id".to_owned(), b"first".to_vec()));
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn a_record_never_shadows_a_directory_nor_lies_under_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let writer = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        writer.add("config", b"file first").unwrap();
        let err = writer.add("config/x", b"under a file").unwrap_err();
        assert!(matches!(&err, RecordError::UnderFile { name, file } if name == "config/x" && file == "config"), "{err:?}");
        assert_eq!(err.status(), status::BAD_NAME);
        assert_eq!(
            err.to_string(),
            r#"record "config/x" refused: "config" is already a record (a file), so it cannot also be a directory"#
        );
        writer.add("a/b/c.json", b"dir first").unwrap();
        for clash in ["a", "a/b"] {
            let err = writer.add(clash, b"x").unwrap_err();
            assert!(matches!(&err, RecordError::ShadowsDirectory { name } if name == clash), "{err:?}");
            assert_eq!(err.status(), status::BAD_NAME);
        }
        let err = writer.add("a/b/c.json/d", b"x").unwrap_err();
        assert!(matches!(&err, RecordError::UnderFile { file, .. } if file == "a/b/c.json"), "{err:?}");
        // Siblings and names that merely share a prefix string are fine.
        for ok in ["a/b/c.json2", "a/bb", "configs/x", "a/b/d/e"] {
            writer.add(ok, b"ok").unwrap();
        }
        assert!(matches!(writer.add("a/b/c.json", b"again"), Err(RecordError::Duplicate { .. })));
        assert_eq!(writer.records_accepted(), 6);
        let path = writer.finish(&GathersMetadata::default()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let tar = Command::new("tar").arg("-xzf").arg(&path).arg("-C").arg(out.path()).output().expect("run tar");
        assert!(tar.status.success(), "tar -xzf failed: {}", String::from_utf8_lossy(&tar.stderr));
        assert_eq!(fs::read(out.path().join("config")).unwrap(), b"file first");
        assert!(out.path().join(GATHERS_JSON).is_file());
    }

    #[test]
    fn the_name_tree_holds_100k_records_and_still_finds_every_clash() {
        let mut tree = NameTree::default();
        let name = |i: u32| format!("config/pod/ns-{}/pod-{i}.json", i % 100);
        for i in 0..100_000 {
            assert_eq!(tree.check(&name(i)), Ok(()));
            tree.insert(&name(i));
        }
        assert_eq!(tree.check(&name(99_999)), Err(Clash::Duplicate));
        assert_eq!(tree.check("config/pod/ns-7"), Err(Clash::Directory));
        assert_eq!(tree.check("config"), Err(Clash::Directory));
        let under = format!("{}/x", name(5));
        assert_eq!(tree.check(&under), Err(Clash::UnderFile(name(5).len())));
        assert_eq!(tree.check("config/pod/ns-100/pod-1.json"), Ok(()));
        // Shared directories are stored once: 1 + 1 + 100 directories, not one per record.
        let pods = &tree.children["config"].children["pod"];
        assert_eq!(pods.children.len(), 100);
        assert_eq!(pods.children.values().map(|ns| ns.children.len()).sum::<usize>(), 100_000);
    }

    #[test]
    fn concurrent_clashing_names_keep_exactly_one() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let writer = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
            let results: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = ["x", "x/y", "x/y/z", "x/w"]
                    .map(|name| {
                        let writer = &writer;
                        s.spawn(move || writer.add(name, b"r").is_ok())
                    })
                    .into_iter()
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            // Either "x" won alone, or it lost and the rest form a consistent tree
            // ("x/y" and "x/y/z" exclude each other; "x/w" fits beside either).
            let accepted = results.iter().filter(|ok| **ok).count();
            match results[..] {
                [true, ..] => assert_eq!(accepted, 1, "round {round}: {results:?}"),
                [false, y, z, w] => assert!(y != z && w, "round {round}: {results:?}"),
                _ => unreachable!(),
            }
            let path = writer.finish(&GathersMetadata::default()).unwrap();
            let out = tempfile::tempdir().unwrap();
            let tar = Command::new("tar").arg("-xzf").arg(&path).arg("-C").arg(out.path()).status().unwrap();
            assert!(tar.success(), "round {round}");
        }
    }

    #[test]
    fn size_cap_drops_the_record_that_overflows_but_not_later_smaller_ones() {
        let dir = tempfile::tempdir().unwrap();
        let writer = ArchiveWriter::create(dir.path(), START, 10).unwrap();
        writer.add("a", b"123456").unwrap();
        let err = writer.add("big", b"12345").unwrap_err();
        match &err {
            RecordError::ArchiveFull { name, size, remaining } => {
                assert_eq!((name.as_str(), *size, *remaining), ("big", 5, 4));
            }
            other => panic!("expected ArchiveFull, got {other:?}"),
        }
        assert_eq!(err.status(), status::ARCHIVE_FULL);
        assert_eq!(err.to_string(), r#"record "big" (5 bytes) dropped: archive size cap reached (4 bytes left)"#);
        writer.add("small", b"1234").unwrap();
        assert_eq!(writer.bytes_accepted(), 10);
        assert!(matches!(writer.add("more", b"x"), Err(RecordError::ArchiveFull { remaining: 0, .. })));
        writer.add("empty", b"").unwrap();
        // A dropped record's name stays free.
        assert!(matches!(writer.add("big", b"y"), Err(RecordError::ArchiveFull { .. })));

        let metadata = GathersMetadata { warnings: vec!["w".into()], ..Default::default() };
        let entries = read_entries(&writer.finish(&metadata).unwrap()).unwrap();
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "small", "empty", GATHERS_JSON], "gathers.json is not counted against the cap");
    }

    #[test]
    fn io_errors_map_to_limit() {
        let err = RecordError::Io { name: "x".into(), source: io::Error::other("disk full") };
        assert_eq!(err.status(), status::LIMIT);
        assert!(err.to_string().contains("disk full"));
    }

    #[test]
    fn dropping_without_finish_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let writer = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        writer.add("config/id", &[1u8; 4096]).unwrap();
        let names = dir_names(dir.path());
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with(".insights-2024-03-05-070809.tar.gz.tmp-"), "{names:?}");
        drop(writer);
        assert!(dir_names(dir.path()).is_empty());
    }

    #[test]
    fn same_second_gets_a_suffix_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let first = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        let second = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        let third = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        first.add("who", b"first").unwrap();
        second.add("who", b"second").unwrap();
        third.add("who", b"third").unwrap();

        let first_path = first.finish(&GathersMetadata::default()).unwrap();
        let first_bytes = fs::read(&first_path).unwrap();
        let second_path = second.finish(&GathersMetadata::default()).unwrap();
        let third_path = third.finish(&GathersMetadata::default()).unwrap();

        assert_eq!(first_path.file_name().unwrap(), "insights-2024-03-05-070809.tar.gz");
        assert_eq!(second_path.file_name().unwrap(), "insights-2024-03-05-070809-2.tar.gz");
        assert_eq!(third_path.file_name().unwrap(), "insights-2024-03-05-070809-3.tar.gz");
        assert_eq!(fs::read(&first_path).unwrap(), first_bytes);
        assert_eq!(read_entries(&second_path).unwrap()[0].1, b"second");
        assert_eq!(dir_names(dir.path()).len(), 3);
    }

    #[test]
    fn concurrent_adds_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let writer = ArchiveWriter::create(dir.path(), START, ARCHIVE_CAP).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let writer = &writer;
                s.spawn(move || {
                    for i in 0..100 {
                        let data = format!("thread {t} record {i} ").repeat(50);
                        writer.add(&format!("t{t}/r{i}.txt"), data.as_bytes()).unwrap();
                    }
                });
            }
        });
        assert_eq!(writer.records_accepted(), 400);
        let entries = read_entries(&writer.finish(&GathersMetadata::default()).unwrap()).unwrap();
        assert_eq!(entries.len(), 401);
        let names: BTreeSet<String> = entries.iter().map(|(n, _)| n.clone()).collect();
        let expected: BTreeSet<String> = (0..4)
            .flat_map(|t| (0..100).map(move |i| format!("t{t}/r{i}.txt")))
            .chain([GATHERS_JSON.to_owned()])
            .collect();
        assert_eq!(names, expected);
        for (name, data) in &entries[..400] {
            let (t, i) = name.trim_end_matches(".txt").split_once("/r").unwrap();
            assert_eq!(data, format!("thread {} record {i} ", &t[1..]).repeat(50).as_bytes());
        }
    }

    #[test]
    fn create_fails_when_the_parent_is_a_file() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let out_dir = file.join("out");
        let err = ArchiveWriter::create(&out_dir, START, ARCHIVE_CAP).err().expect("create must fail");
        assert!(matches!(&err, ArchiveError::Create { dir, .. } if dir == &out_dir), "{err:?}");
        assert!(err.to_string().contains(&out_dir.display().to_string()), "{err}");
    }

    #[test]
    fn rss_comes_from_proc_status() {
        let status = "Name:\tagent\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(10 * 1024 * 1024));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(20 * 1024 * 1024));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
        if Path::new("/proc/self/status").exists() {
            let current = current_rss_bytes();
            assert!(current > 0);
            assert!(peak_rss_bytes() >= current);
        }
    }
}
