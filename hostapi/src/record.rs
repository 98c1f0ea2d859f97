//! Record names: relative, `/`-separated paths inside the archive. Checked by the host (and
//! by the SDK, to fail early) so nothing is ever written outside the archive root.
//!
//! [`shorten_name`] is the one deterministic rule (ABI.md §7) by which the host's `list_emit`
//! templates and the SDK turn an over-long segment (a 253-byte Kubernetes name plus `.json`)
//! into one that fits, so that host and guests agree on the record name.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::abi::limits;

/// Why a record name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than the whole-name limit.
    TooLong(usize),
    /// The name starts with `/`.
    Absolute,
    /// A segment is empty (`a//b` or a trailing `/`).
    EmptySegment,
    /// A segment is `.` or `..`.
    DotSegment,
    /// A segment exceeds 255 bytes.
    SegmentTooLong(usize),
    /// The name contains NUL, a backslash or another control character.
    BadCharacter(char),
    /// The name is `insights-operator` or lies under it: the host's own directory.
    Reserved,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameError::Empty => f.write_str("record name is empty"),
            NameError::TooLong(n) => write!(f, "record name is {n} bytes (max {})", limits::RECORD_NAME_BYTES),
            NameError::Absolute => f.write_str("record name must be relative (no leading '/')"),
            NameError::EmptySegment => f.write_str("record name has an empty path segment"),
            NameError::DotSegment => f.write_str("record name has a '.' or '..' segment"),
            NameError::SegmentTooLong(n) => {
                write!(f, "record name has a {n}-byte segment (max {})", limits::RECORD_SEGMENT_BYTES)
            }
            NameError::BadCharacter(c) => write!(f, "record name contains forbidden character {c:?}"),
            NameError::Reserved => {
                f.write_str("record names insights-operator and under insights-operator/ are reserved for the host")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// The host writes its own metadata here; gatherers may not.
pub const RESERVED_PREFIX: &str = "insights-operator/";

/// The host's own directory: a record with exactly this name would turn it into a file and
/// make `tar -x` fail on `insights-operator/gathers.json`.
pub const RESERVED_DIR: &str = "insights-operator";

/// How many lowercase hex digits of the sha256 a shortened segment carries.
pub const SHORT_HASH_HEX: usize = 16;

/// The longest extension (the last `.` and what follows it) a shortened segment keeps.
pub const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// Checks a record name against the ABI rules.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > limits::RECORD_NAME_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == '\\') {
        return Err(NameError::BadCharacter(c));
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute);
    }
    for seg in name.split('/') {
        if seg.is_empty() {
            return Err(NameError::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return Err(NameError::DotSegment);
        }
        if seg.len() > limits::RECORD_SEGMENT_BYTES {
            return Err(NameError::SegmentTooLong(seg.len()));
        }
    }
    if name == RESERVED_DIR || name.starts_with(RESERVED_PREFIX) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// `segment` unchanged when it fits in [`limits::RECORD_SEGMENT_BYTES`], else its
/// deterministic short form (ABI.md §7):
///
/// 1. the *extension* is the segment's last `.` and everything after it, when that `.` is not
///    the segment's first byte and the extension is at most [`MAX_KEPT_EXTENSION_BYTES`] bytes
///    (`.json`); otherwise there is none;
/// 2. the *hash* is the first [`SHORT_HASH_HEX`] lowercase hex digits of the sha256 of the
///    whole original segment's UTF-8 bytes;
/// 3. the result is the longest prefix of the segment that ends on a character boundary and
///    has at most `255 - 1 - 16 - len(extension)` bytes, then `-`, the hash, the extension.
///
/// The result is at most 255 bytes, keeps the extension (so the content type stays the same),
/// and two different segments get different short forms unless their sha256 prefixes collide.
pub fn shorten_segment(segment: &str) -> Cow<'_, str> {
    let max = limits::RECORD_SEGMENT_BYTES;
    if segment.len() <= max {
        return Cow::Borrowed(segment);
    }
    let ext = match segment.rfind('.') {
        Some(dot) if dot > 0 && segment.len() - dot <= MAX_KEPT_EXTENSION_BYTES => &segment[dot..],
        _ => "",
    };
    let digest = Sha256::digest(segment.as_bytes());
    let hash: String = digest.iter().flat_map(|b| [b >> 4, b & 0xf]).take(SHORT_HASH_HEX).map(hex_digit).collect();
    let mut keep = max - 1 - SHORT_HASH_HEX - ext.len();
    while !segment.is_char_boundary(keep) {
        keep -= 1;
    }
    Cow::Owned(format!("{}-{hash}{ext}", &segment[..keep]))
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).expect("a nibble is one hex digit")
}

/// `name` with every over-long segment replaced by [`shorten_segment`]'s short form; borrowed
/// (unchanged) when every segment fits. The result still has to pass [`validate_name`].
pub fn shorten_name(name: &str) -> Cow<'_, str> {
    if name.split('/').all(|seg| seg.len() <= limits::RECORD_SEGMENT_BYTES) {
        return Cow::Borrowed(name);
    }
    let segments: Vec<Cow<'_, str>> = name.split('/').map(shorten_segment).collect();
    Cow::Owned(segments.join("/"))
}

/// The content type a record is stored with, from its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "json" => "application/json",
        "log" | "txt" | "" => "text/plain",
        "yaml" | "yml" => "application/yaml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_io_style_paths() {
        for ok in ["config/id", "config/node/master-0.example.com.json", "config/pod/openshift-etcd/etcd-0.json"] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_escapes_and_garbage() {
        assert_eq!(validate_name("../../etc/x"), Err(NameError::DotSegment));
        assert_eq!(validate_name("a/./b"), Err(NameError::DotSegment));
        assert_eq!(validate_name("/etc/passwd"), Err(NameError::Absolute));
        assert_eq!(validate_name("a//b"), Err(NameError::EmptySegment));
        assert_eq!(validate_name("a/"), Err(NameError::EmptySegment));
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("a\0b"), Err(NameError::BadCharacter('\0')));
        assert_eq!(validate_name("a\\..\\b"), Err(NameError::BadCharacter('\\')));
        assert_eq!(validate_name(&"x".repeat(256)), Err(NameError::SegmentTooLong(256)));
        assert_eq!(validate_name(&format!("a/{}", "x".repeat(255))), Ok(()));
        assert_eq!(validate_name("insights-operator/gathers.json"), Err(NameError::Reserved));
        assert_eq!(validate_name("insights-operator"), Err(NameError::Reserved));
        assert_eq!(validate_name("insights-operator/x/y"), Err(NameError::Reserved));
        assert_eq!(validate_name("insights-operator2/x"), Ok(()));
        assert_eq!(validate_name("config/insights-operator"), Ok(()));
    }

    #[test]
    fn short_segments_are_kept_as_they_are() {
        let fits = "p".repeat(255);
        assert!(matches!(shorten_segment(&fits), Cow::Borrowed(s) if s == fits));
        let name = format!("config/pod/ns/{fits}");
        assert!(matches!(shorten_name(&name), Cow::Borrowed(s) if s == name));
    }

    #[test]
    fn long_segments_shorten_deterministically_within_255_bytes_keeping_the_extension() {
        // A 253-byte Kubernetes name (the maximum) plus `.json`: 258 bytes.
        let pod = format!("{}.json", "a".repeat(253));
        let short = shorten_segment(&pod).into_owned();
        assert_eq!(short, shorten_segment(&pod), "deterministic");
        assert_eq!(short.len(), 255);
        assert!(short.ends_with(".json"), "{short}");
        let digest = Sha256::digest(pod.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(short, format!("{}-{}.json", "a".repeat(255 - 1 - 16 - 5), &hex[..16]));
        assert_eq!(content_type(&short), "application/json");
        assert_eq!(validate_name(&format!("config/pod/ns/{short}")), Ok(()));

        // Distinct inputs (even with the same kept prefix) give distinct outputs.
        let other = format!("{}b.json", "a".repeat(252));
        assert_ne!(shorten_segment(&other), short);
        let mut seen = std::collections::HashSet::new();
        for n in 0..200 {
            let seg = format!("{}-{n}.json", "x".repeat(251));
            let s = shorten_segment(&seg).into_owned();
            assert!(s.len() <= 255 && s.ends_with(".json"));
            assert!(seen.insert(s), "collision for {n}");
        }
    }

    #[test]
    fn odd_long_segments_still_fit() {
        // No dot, a leading dot only, an extension too long to keep.
        for seg in ["x".repeat(300), format!(".{}", "h".repeat(300)), format!("{}.{}", "a".repeat(200), "e".repeat(100))] {
            let s = shorten_segment(&seg);
            assert!(s.len() <= 255, "{} bytes", s.len());
            assert_eq!(s.rsplit_once('-').map(|(_, h)| h.len()), Some(16), "{s}");
            assert_eq!(validate_name(&s), Ok(()));
        }
        // Multi-byte characters are never split.
        let wide = "é".repeat(200);
        let s = shorten_segment(&wide);
        assert!(s.len() <= 255 && std::str::from_utf8(s.as_bytes()).is_ok());
        // Every over-long segment of a name is shortened, the short ones are untouched.
        let name = format!("config/{}/x/{}.log", "n".repeat(256), "l".repeat(300));
        let short = shorten_name(&name);
        let segs: Vec<&str> = short.split('/').collect();
        assert_eq!((segs[0], segs[2]), ("config", "x"));
        assert!(segs[1].len() <= 255 && segs[3].len() <= 255 && segs[3].ends_with(".log"));
        assert_eq!(validate_name(&short), Ok(()));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("config/id"), "text/plain");
        assert_eq!(content_type("a/b.json"), "application/json");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }
}
