//! A streaming tar.gz reader: one pass, one record at a time, so that memory is bounded by
//! the largest record a caller chooses to hold, never by the archive.
//!
//! [`scan`] hands each regular file to a visitor as a [`Record`] whose data the visitor may
//! read once (into memory, to a writer, or into a hash) or ignore. Damage is classified, not
//! just passed on: a file that is not gzip, a stream that ends early ([`InspectError::Truncated`])
//! and data that does not decode ([`InspectError::Corrupt`]) each get a one-line error naming
//! how many records were read intact, so callers can still show those.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::InspectError;

/// Read buffer for the compressed file and for copying record data.
const BUFFER_BYTES: usize = 64 * 1024;

/// The most a record's claimed size may pre-allocate; larger records grow as they are read, so
/// a corrupt header claiming terabytes cannot exhaust memory before the data runs out.
const MAX_PREALLOCATE: u64 = 16 * 1024 * 1024;

/// What a visitor wants after seeing a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on to the next record.
    Continue,
    /// Stop here: the rest of the archive is neither read nor checked.
    Stop,
}

/// How far a scan got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Regular-file records seen, each of them read through intact.
    pub records: u64,
    /// Sum of their sizes.
    pub uncompressed_bytes: u64,
    /// Size of the archive file itself.
    pub compressed_bytes: u64,
    /// Whether the whole archive was read and checked (false after [`Flow::Stop`]).
    pub complete: bool,
}

type Decoder = GzDecoder<BufReader<File>>;

/// One record (a regular file in the tar) met during a [`scan`]. Its data can be read once.
pub struct Record<'a, 'b> {
    path: &'a str,
    size: u64,
    mtime: u64,
    consumed: u64,
    entry: &'a mut tar::Entry<'b, Decoder>,
    archive: &'a Path,
    /// Records read intact before this one.
    index: u64,
}

impl Record<'_, '_> {
    /// The record's path inside the archive, without a leading `./`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The record's size in bytes, from its tar header.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The record's modification time (seconds since the Unix epoch; 0 when unknown).
    pub fn mtime(&self) -> u64 {
        self.mtime
    }

    /// Reads the whole record into memory (checking it is all there).
    pub fn read_to_vec(&mut self) -> Result<Vec<u8>, InspectError> {
        let mut data = Vec::with_capacity(self.size.min(MAX_PREALLOCATE) as usize);
        let n = self.entry.read_to_end(&mut data).map_err(|e| self.damage(e))?;
        self.consumed += n as u64;
        self.check_complete()?;
        Ok(data)
    }

    /// Streams the record's data to `out` (checking it is all there); returns the bytes written.
    pub fn copy_to(&mut self, out: &mut dyn Write) -> Result<u64, InspectError> {
        let mut buf = vec![0u8; BUFFER_BYTES];
        loop {
            let n = self.entry.read(&mut buf).map_err(|e| self.damage(e))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(InspectError::Output)?;
            self.consumed += n as u64;
        }
        self.check_complete()?;
        Ok(self.consumed)
    }

    /// The sha256 of the record's data (checking it is all there).
    pub fn sha256(&mut self) -> Result<[u8; 32], InspectError> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BUFFER_BYTES];
        loop {
            let n = self.entry.read(&mut buf).map_err(|e| self.damage(e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            self.consumed += n as u64;
        }
        self.check_complete()?;
        Ok(hasher.finalize().into())
    }

    /// Reads past the record's data without keeping it (checking it is all there).
    pub fn skip(&mut self) -> Result<(), InspectError> {
        let n = io::copy(&mut *self.entry, &mut io::sink()).map_err(|e| self.damage(e))?;
        self.consumed += n;
        self.check_complete()
    }

    fn check_complete(&self) -> Result<(), InspectError> {
        if self.consumed < self.size {
            return Err(InspectError::Truncated {
                path: self.archive.to_path_buf(),
                records: self.index,
                inside: Some(self.path.to_owned()),
            });
        }
        Ok(())
    }

    fn damage(&self, e: io::Error) -> InspectError {
        classify(self.archive, self.index, Some(self.path), e)
    }
}

/// Reads the archive at `path` record by record, calling `visit` for every regular file.
///
/// Directories, links and other non-file entries are skipped. Data a visitor leaves unread is
/// read past and checked, and at the end the gzip trailer (CRC and length) is verified, so a
/// scan that returns `Ok` with [`ScanStats::complete`] has seen an intact archive.
pub fn scan<F>(path: &Path, mut visit: F) -> Result<ScanStats, InspectError>
where
    F: FnMut(&mut Record<'_, '_>) -> Result<Flow, InspectError>,
{
    let file = File::open(path).map_err(|source| InspectError::Open { path: path.to_path_buf(), source })?;
    let compressed_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut input = BufReader::with_capacity(BUFFER_BYTES, file);
    check_gzip_magic(path, &mut input)?;
    let mut archive = tar::Archive::new(GzDecoder::new(input));
    let mut stats = ScanStats { compressed_bytes, ..Default::default() };
    let entries = archive.entries().map_err(|e| classify(path, 0, None, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| classify(path, stats.records, None, e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw_path = entry.path_bytes();
        let lossy = String::from_utf8_lossy(&raw_path);
        let name = lossy.trim_start_matches("./").to_owned();
        let size = entry.size();
        let mtime = entry.header().mtime().unwrap_or(0);
        let mut record =
            Record { path: &name, size, mtime, consumed: 0, entry: &mut entry, archive: path, index: stats.records };
        let flow = visit(&mut record)?;
        if flow == Flow::Stop {
            stats.records += 1;
            stats.uncompressed_bytes += size;
            return Ok(stats);
        }
        record.skip()?;
        stats.records += 1;
        stats.uncompressed_bytes += size;
    }
    // The tar ends before the gzip stream does (padding, then the CRC and length trailer).
    // Read it through so a damaged tail is reported rather than ignored.
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(|e| classify(path, stats.records, None, e))?;
    stats.complete = true;
    Ok(stats)
}

/// Refuses anything that is not gzip before decoding, and says what it is instead.
fn check_gzip_magic(path: &Path, input: &mut BufReader<File>) -> Result<(), InspectError> {
    let head = input.fill_buf().map_err(|source| InspectError::Open { path: path.to_path_buf(), source })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(());
    }
    if head == [0x1f] {
        // The first byte of a gzip header, and nothing after it.
        return Err(InspectError::Truncated { path: path.to_path_buf(), records: 0, inside: None });
    }
    Err(InspectError::NotGzip { path: path.to_path_buf(), found: describe(head) })
}

/// What a file that is not gzip looks like, from its first bytes.
fn describe(head: &[u8]) -> String {
    if head.is_empty() {
        return "it is empty".into();
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return "it is an uncompressed tar archive; gzip it, or use tar -tf".into();
    }
    let known: [(&[u8], &str); 4] = [
        (b"PK\x03\x04", "it is a zip archive"),
        (b"BZh", "it is bzip2-compressed"),
        (b"\xfd7zXZ\x00", "it is xz-compressed"),
        (b"\x28\xb5\x2f\xfd", "it is zstd-compressed"),
    ];
    for (magic, what) in known {
        if head.starts_with(magic) {
            return what.into();
        }
    }
    let text = head.iter().take(512).all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') if text => "it looks like JSON".into(),
        _ if text => "it looks like text".into(),
        _ => {
            let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("it starts with bytes {}", hex.join(" "))
        }
    }
}

/// Turns a decoding error into [`InspectError::Truncated`] or [`InspectError::Corrupt`].
///
/// flate2 reports a stream that ends early as `UnexpectedEof`; the tar crate reports a header
/// block cut short as "failed to read entire block" and data cut short as "unexpected EOF".
fn classify(archive: &Path, records: u64, inside: Option<&str>, e: io::Error) -> InspectError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let path = archive.to_path_buf();
    let inside = inside.map(str::to_owned);
    if e.kind() == io::ErrorKind::UnexpectedEof
        || lower.contains("unexpected eof")
        || lower.contains("unexpected end of file")
        || lower.contains("failed to read entire block")
    {
        InspectError::Truncated { path, records, inside }
    } else {
        let detail = text.split_whitespace().collect::<Vec<_>>().join(" ");
        InspectError::Corrupt { path, records, inside, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small archive written with the tar crate: `(name, data)` files in order.
    fn archive_bytes(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, data.as_slice()).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn files() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("config/id", b"abc".to_vec()),
            ("./config/node/a.json", br#"{"kind":"Node"}"#.to_vec()),
            // Incompressible, so that cutting the gzip stream anywhere lands in real data.
            ("config/big.bin", (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
            ("insights-operator/gathers.json", br#"{"status_reports":[]}"#.to_vec()),
        ]
    }

    fn names(path: &Path) -> (Vec<String>, Result<ScanStats, InspectError>) {
        let mut seen = Vec::new();
        let result = scan(path, |r| {
            r.skip()?;
            seen.push(r.path().to_owned());
            Ok(Flow::Continue)
        });
        (seen, result)
    }

    #[test]
    fn reads_every_record_and_verifies_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = archive_bytes(&files());
        let path = write(dir.path(), "ok.tar.gz", &bytes);
        let mut got = Vec::new();
        let stats = scan(&path, |r| {
            got.push((r.path().to_owned(), r.size(), r.mtime(), r.read_to_vec()?));
            Ok(Flow::Continue)
        })
        .unwrap();
        assert!(stats.complete);
        assert_eq!(stats.records, 4);
        assert_eq!(stats.compressed_bytes, bytes.len() as u64);
        assert_eq!(stats.uncompressed_bytes, 3 + 15 + 200_000 + 21);
        assert_eq!(got[1].0, "config/node/a.json", "a leading ./ is dropped");
        assert_eq!((got[0].1, got[0].2, got[0].3.as_slice()), (3, 1_700_000_000, &b"abc"[..]));
        assert_eq!(got[2].3, files()[2].1);
    }

    #[test]
    fn stop_ends_the_scan_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "ok.tar.gz", &archive_bytes(&files()));
        let mut visited = 0;
        let stats = scan(&path, |r| {
            visited += 1;
            Ok(if r.path() == "config/node/a.json" { Flow::Stop } else { Flow::Continue })
        })
        .unwrap();
        assert_eq!((visited, stats.records, stats.complete), (2, 2, false));
    }

    #[test]
    fn hashing_and_copying_see_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "ok.tar.gz", &archive_bytes(&files()));
        let mut copied = Vec::new();
        let mut hashes = Vec::new();
        scan(&path, |r| {
            if r.path() == "config/big.bin" {
                assert_eq!(r.copy_to(&mut copied)?, 200_000);
            } else {
                hashes.push(r.sha256()?);
            }
            Ok(Flow::Continue)
        })
        .unwrap();
        assert_eq!(copied, files()[2].1);
        let want: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(hashes[0], want);
    }

    #[test]
    fn every_truncation_point_is_reported_as_truncated_with_the_intact_records() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = archive_bytes(&files());
        let all = ["config/id", "config/node/a.json", "config/big.bin", "insights-operator/gathers.json"];
        // Every cut, coarse through the middle and byte by byte near both ends.
        let cuts = (1..64).chain((64..bytes.len() - 64).step_by(97)).chain(bytes.len() - 64..bytes.len());
        for cut in cuts {
            let path = write(dir.path(), "cut.tar.gz", &bytes[..cut]);
            let (seen, result) = names(&path);
            let err = result.expect_err(&format!("cut at {cut} of {} must fail", bytes.len()));
            match &err {
                InspectError::Truncated { records, .. } => assert_eq!(*records as usize, seen.len(), "cut {cut}: {err}"),
                other => panic!("cut {cut}: expected Truncated, got {other:?}"),
            }
            assert_eq!(seen[..], all[..seen.len()], "cut {cut}: intact records are a prefix");
            assert!(!err.to_string().contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn corrupt_bytes_never_panic_and_give_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = archive_bytes(&files());
        let mut failures = 0;
        for pos in (10..bytes.len() - 8).step_by(53) {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0x5a;
            let path = write(dir.path(), "bad.tar.gz", &damaged);
            let (_, result) = names(&path);
            if let Err(e) = result {
                failures += 1;
                assert!(matches!(e, InspectError::Corrupt { .. } | InspectError::Truncated { .. }), "{e:?}");
                assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
        // Flipped deflate data fails to decode or fails the CRC; only a rare flip goes unnoticed.
        let tries = (10..bytes.len() - 8).step_by(53).count();
        assert!(failures * 10 >= tries * 9, "{failures} of {tries} corruptions detected");
    }

    #[test]
    fn a_bad_crc_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = archive_bytes(&files());
        let crc_at = bytes.len() - 8;
        bytes[crc_at] ^= 0xff;
        let path = write(dir.path(), "crc.tar.gz", &bytes);
        let (seen, result) = names(&path);
        assert_eq!(seen.len(), 4, "every record was intact");
        let err = result.unwrap_err();
        assert!(matches!(err, InspectError::Corrupt { records: 4, .. }), "{err:?}");
    }

    #[test]
    fn not_gzip_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut plain_tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(1);
        plain_tar.append_data(&mut header, "x", &b"x"[..]).unwrap();
        let cases: [(&str, Vec<u8>, &str); 6] = [
            ("empty", Vec::new(), "it is empty"),
            ("text", b"hello world\n".to_vec(), "it looks like text"),
            ("json", br#"{"status_reports": []}"#.to_vec(), "it looks like JSON"),
            ("zip", b"PK\x03\x04rest".to_vec(), "it is a zip archive"),
            ("tar", plain_tar.into_inner().unwrap(), "it is an uncompressed tar archive"),
            ("bin", vec![0, 1, 2, 3, 4], "it starts with bytes 00 01 02 03"),
        ];
        for (name, bytes, want) in cases {
            let path = write(dir.path(), name, &bytes);
            let err = scan(&path, |_| Ok(Flow::Continue)).unwrap_err();
            assert!(matches!(err, InspectError::NotGzip { .. }), "{name}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains(want) && msg.contains("not a gzip file"), "{name}: {msg}");
        }
    }

    #[test]
    fn gzip_that_is_not_tar_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&b"not a tar archive, just some text that goes on ".repeat(40)).unwrap();
        let path = write(dir.path(), "text.gz", &gz.finish().unwrap());
        let err = scan(&path, |_| Ok(Flow::Continue)).unwrap_err();
        assert!(matches!(err, InspectError::Corrupt { records: 0, .. }), "{err:?}");
    }

    #[test]
    fn a_missing_file_cannot_be_opened() {
        let err = scan(Path::new("/nonexistent/x.tar.gz"), |_| Ok(Flow::Continue)).unwrap_err();
        assert!(matches!(err, InspectError::Open { .. }));
        assert!(err.to_string().starts_with("cannot open /nonexistent/x.tar.gz: "), "{err}");
    }
}
