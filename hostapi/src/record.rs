//! Record names: relative, `/`-separated paths inside the archive. Checked by the host (and
//! by the SDK, to fail early) so nothing is ever written outside the archive root.

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
    /// The name uses the host's reserved prefix `insights-operator/`.
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
            NameError::Reserved => f.write_str("record names under insights-operator/ are reserved for the host"),
        }
    }
}

impl std::error::Error for NameError {}

/// The host writes its own metadata here; gatherers may not.
pub const RESERVED_PREFIX: &str = "insights-operator/";

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
    if name.starts_with(RESERVED_PREFIX) {
        return Err(NameError::Reserved);
    }
    Ok(())
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
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("config/id"), "text/plain");
        assert_eq!(content_type("a/b.json"), "application/json");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }
}
