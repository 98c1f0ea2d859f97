//! The published index: the format of `index.json`, its ed25519 detached signature
//! (`index.json.sig`), and the checks every agent applies before trusting it.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hostapi::Permission;
use serde::{Deserialize, Serialize};

/// The index file name inside a site.
pub const INDEX_FILE: &str = "index.json";
/// The detached signature over the exact bytes of `index.json`.
pub const SIG_FILE: &str = "index.json.sig";
/// The index format this agent reads.
pub const API_VERSION: &str = "gather-agent.io/v1";
/// Indexes larger than this are refused (an endless body must not exhaust memory).
pub const MAX_INDEX_BYTES: usize = 1024 * 1024;

/// `index.json`: the gatherer set a publisher offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Index {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Increases with every publish; agents refuse a lower one (rollback).
    pub serial: u64,
    /// When it was published (RFC 3339).
    pub published: String,
    /// After this (RFC 3339) agents refuse it (freeze attacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The gatherers, one per name.
    pub gatherers: Vec<IndexEntry>,
}

/// One gatherer in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IndexEntry {
    /// The gatherer's name (must equal its manifest's).
    pub name: String,
    /// Its version (must equal its manifest's).
    pub version: String,
    /// Hex sha256 of the module bytes.
    pub sha256: String,
    /// Size of the module in bytes.
    pub size: u64,
    /// Where to fetch it, relative to the index (`<sha256>.wasm`).
    pub url: String,
    /// The permissions the module declares (must equal its manifest's).
    pub permissions: Vec<Permission>,
    /// Publisher-suggested config blob for the module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// Publisher-suggested limits (the operator's settings win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<serde_json::Value>,
}

/// Why an index (or a key, or a signature) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Not valid JSON for this format.
    #[error("malformed index: {0}")]
    Malformed(String),
    /// Too big to be an index.
    #[error("index is larger than {MAX_INDEX_BYTES} bytes")]
    TooLarge,
    /// A key could not be read.
    #[error("bad key: {0}")]
    BadKey(String),
    /// The signature is missing, malformed or does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The index is expired.
    #[error("index expired at {0}")]
    Expired(String),
    /// A module URL that does not stay within the index's directory.
    #[error("gatherer {name:?}: url {url:?}: {source}")]
    ModuleUrl {
        /// The gatherer.
        name: String,
        /// The URL as the index gives it.
        url: String,
        /// Why it is refused.
        #[source]
        source: ModuleUrlError,
    },
    /// Suggested limits the host cannot accept (out of range, unknown fields).
    #[error("gatherer {name:?}: limits: {source}")]
    Limits {
        /// The gatherer.
        name: String,
        /// Why.
        #[source]
        source: crate::limits::LimitError,
    },
}

/// Why a module URL of an index is refused. A module URL is a relative path under the
/// index's own directory, on the index's own origin: nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleUrlError {
    /// Empty.
    #[error("is empty")]
    Empty,
    /// A `%` that is not followed by two hex digits, or an escape that is not UTF-8.
    #[error("has a malformed percent escape")]
    BadEscape,
    /// After percent-decoding, a character outside `A-Z a-z 0-9 - . _ ~ /` (such as `:`,
    /// which would make `https:host/…` a URL of its own, `\`, `?`, `#`, `%` or `@`).
    #[error("contains {0:?}; a module URL is a relative path of letters, digits, '-', '.', '_', '~' and '/'")]
    Character(char),
    /// Starts with `/` (absolute path, or `//host/…`: another authority).
    #[error("is absolute; it must be relative to the index")]
    Absolute,
    /// After percent-decoding, an empty, `.` or `..` segment.
    #[error("has an empty, '.' or '..' segment (after percent-decoding)")]
    DotSegment,
    /// Resolved against the index URL, it lands on another scheme, host or port.
    #[error("resolves to another origin ({0})")]
    OtherOrigin(String),
    /// Resolved against the index URL, it lands outside the index's directory.
    #[error("resolves outside the index's directory ({0})")]
    OutsideDirectory(String),
}

/// Checks a module URL as an index gives it and returns the relative path it stands for,
/// percent-decoded. Decoding comes first so `%2e%2e/` is judged as the `../` it means, and
/// no `%` may remain after it, so double encoding cannot smuggle one past a later decoder.
pub fn module_path(url: &str) -> Result<String, ModuleUrlError> {
    if url.is_empty() {
        return Err(ModuleUrlError::Empty);
    }
    let bytes = url.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' && !(bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))) {
            return Err(ModuleUrlError::BadEscape);
        }
    }
    let decoded = percent_encoding::percent_decode_str(url).decode_utf8().map_err(|_| ModuleUrlError::BadEscape)?;
    if let Some(c) = decoded.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/'))) {
        return Err(ModuleUrlError::Character(c));
    }
    if decoded.starts_with('/') {
        return Err(ModuleUrlError::Absolute);
    }
    if decoded.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(ModuleUrlError::DotSegment);
    }
    Ok(decoded.into_owned())
}

/// Where to download a module from: `entry_url` checked by [`module_path`], resolved against
/// the index URL, and checked again on the result: same scheme, host and port as the index,
/// under the index's directory. The index URL's query (an access token, say) is kept.
pub fn module_url(index_url: &reqwest::Url, entry_url: &str) -> Result<reqwest::Url, ModuleUrlError> {
    let path = module_path(entry_url)?;
    let mut url = index_url.join(&path).map_err(|_| ModuleUrlError::Character(':'))?;
    url.set_query(index_url.query());
    url.set_fragment(None);
    if url.origin() != index_url.origin() || url.scheme() != index_url.scheme() {
        return Err(ModuleUrlError::OtherOrigin(crate::redact::url(&url)));
    }
    let base = index_url.path();
    let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
    if !url.path().starts_with(dir) || url.path().len() <= dir.len() {
        return Err(ModuleUrlError::OutsideDirectory(crate::redact::url(&url)));
    }
    Ok(url)
}

fn rfc3339(s: &str) -> Result<time::OffsetDateTime, IndexError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| IndexError::Malformed(format!("bad timestamp {s:?}: {e}")))
}

impl Index {
    /// Parses and checks the structure (not the signature, serial or expiry).
    pub fn parse(bytes: &[u8]) -> Result<Self, IndexError> {
        if bytes.len() > MAX_INDEX_BYTES {
            return Err(IndexError::TooLarge);
        }
        let index: Index = serde_json::from_slice(bytes).map_err(|e| IndexError::Malformed(e.to_string()))?;
        if index.api_version != API_VERSION {
            return Err(IndexError::Malformed(format!("apiVersion {:?} is not {API_VERSION:?}", index.api_version)));
        }
        rfc3339(&index.published)?;
        if let Some(e) = &index.expires {
            rfc3339(e)?;
        }
        let mut names = BTreeSet::new();
        for g in &index.gatherers {
            if !names.insert(g.name.as_str()) {
                return Err(IndexError::Malformed(format!("gatherer {:?} is listed twice", g.name)));
            }
            if g.sha256.len() != 64 || !g.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                return Err(IndexError::Malformed(format!("gatherer {:?}: sha256 must be 64 lower-case hex digits", g.name)));
            }
            module_path(&g.url)
                .map_err(|source| IndexError::ModuleUrl { name: g.name.clone(), url: g.url.clone(), source })?;
            if let Some(l) = &g.limits {
                crate::limits::LimitOverrides::from_json("limits", l)
                    .map_err(|source| IndexError::Limits { name: g.name.clone(), source })?;
            }
            if g.size == 0 {
                return Err(IndexError::Malformed(format!("gatherer {:?}: size must be positive", g.name)));
            }
        }
        Ok(index)
    }

    /// Whether the index has expired at `now`.
    pub fn check_expiry(&self, now: time::OffsetDateTime) -> Result<(), IndexError> {
        match &self.expires {
            Some(e) if rfc3339(e)? <= now => Err(IndexError::Expired(e.clone())),
            _ => Ok(()),
        }
    }
}

/// An ed25519 signing key as stored by `gather-agent keygen` (base64 of the 32-byte seed).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, IndexError> {
    let text = std::fs::read_to_string(path).map_err(|e| IndexError::BadKey(format!("reading {}: {e}", path.display())))?;
    let b64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ed25519-secret-key:"))
        .ok_or_else(|| IndexError::BadKey(format!("{} is not a gather-agent key file (no ed25519-secret-key: line)", path.display())))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| IndexError::BadKey(format!("{}: {e}", path.display())))?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| IndexError::BadKey(format!("{}: the secret key must be 32 bytes", path.display())))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Generates a key and returns (key file text, public key in base64).
pub fn generate_key() -> (String, String) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source works");
    let key = SigningKey::from_bytes(&seed);
    let public = public_key_text(&key.verifying_key());
    let text = format!(
        "# gather-agent index signing key (ed25519). Keep it secret.\n# public key: {public}\ned25519-secret-key:{}\n",
        base64::engine::general_purpose::STANDARD.encode(seed)
    );
    (text, public)
}

/// The base64 form of a public key, as agents are configured with it.
pub fn public_key_text(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

/// Parses a public key: base64 text, or the path of a file holding it.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, IndexError> {
    let s = s.trim();
    let text = if Path::new(s).is_file() {
        std::fs::read_to_string(s).map_err(|e| IndexError::BadKey(format!("reading {s}: {e}")))?
    } else {
        s.to_owned()
    };
    let b64 = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
    let b64 = b64.strip_prefix("ed25519-public-key:").unwrap_or(b64);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| IndexError::BadKey(format!("public key is not base64: {e}")))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| IndexError::BadKey("public key must be 32 bytes".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| IndexError::BadKey(e.to_string()))
}

/// A detached signature over `bytes`, as the text of `index.json.sig`.
pub fn sign(key: &SigningKey, bytes: &[u8]) -> String {
    format!("{}\n", base64::engine::general_purpose::STANDARD.encode(key.sign(bytes).to_bytes()))
}

/// Verifies `sig_text` (the content of `index.json.sig`) over `bytes`.
pub fn verify(key: &VerifyingKey, bytes: &[u8], sig_text: &[u8]) -> Result<(), IndexError> {
    let text = std::str::from_utf8(sig_text).map_err(|_| IndexError::BadSignature("signature file is not text".into()))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| IndexError::BadSignature(format!("not base64: {e}")))?;
    let raw: [u8; 64] = raw.try_into().map_err(|_| IndexError::BadSignature("must be 64 bytes".into()))?;
    let sig = ed25519_dalek::Signature::from_bytes(&raw);
    key.verify_strict(bytes, &sig)
        .map_err(|_| IndexError::BadSignature("does not verify with the configured public key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_json(extra: &str) -> String {
        format!(
            r#"{{"apiVersion":"gather-agent.io/v1","serial":3,"published":"2026-01-01T00:00:00Z"{extra},
               "gatherers":[{{"name":"nodes","version":"1","sha256":"{}","size":10,"url":"{}.wasm","permissions":["GET /api/v1/nodes"]}}]}}"#,
            "a".repeat(64),
            "a".repeat(64)
        )
    }

    #[test]
    fn parses_and_checks_structure() {
        let i = Index::parse(index_json("").as_bytes()).unwrap();
        assert_eq!(i.serial, 3);
        assert!(matches!(Index::parse(b"{"), Err(IndexError::Malformed(_))));
        assert!(Index::parse(index_json(r#","bogus":1"#).as_bytes()).unwrap_err().to_string().contains("bogus"));
        assert!(Index::parse(index_json("").replace("\"serial\":3", "\"serial\":\"3\"").as_bytes()).is_err());
        let mut dup: serde_json::Value = serde_json::from_str(&index_json("")).unwrap();
        let first = dup["gatherers"][0].clone();
        dup["gatherers"].as_array_mut().unwrap().push(first);
        let dup = serde_json::to_vec(&dup).unwrap();
        assert!(Index::parse(&dup).unwrap_err().to_string().contains("listed twice"));
        let escape = index_json("").replace(&format!("{}.wasm", "a".repeat(64)), "../x.wasm");
        assert!(Index::parse(escape.as_bytes()).is_err());
        let remote = index_json("").replace(&format!("{}.wasm", "a".repeat(64)), "https://evil.example.com/x.wasm");
        assert!(Index::parse(remote.as_bytes()).is_err());
        assert_eq!(Index::parse(&vec![b' '; MAX_INDEX_BYTES + 1]), Err(IndexError::TooLarge));
    }

    #[test]
    fn module_urls_stay_in_the_index_directory() {
        let base: reqwest::Url = "https://pub.example:8443/site/v1/index.json?token=t".parse().unwrap();
        let ok = module_url(&base, &format!("{}.wasm", "a".repeat(64))).unwrap();
        assert_eq!(ok.as_str(), format!("https://pub.example:8443/site/v1/{}.wasm?token=t", "a".repeat(64)));
        assert_eq!(module_url(&base, "mods/%61.wasm").unwrap().path(), "/site/v1/mods/a.wasm");
        for (bad, want) in [
            ("", ModuleUrlError::Empty),
            ("%2e%2e/x.wasm", ModuleUrlError::DotSegment),
            ("%2E%2E%2Fx.wasm", ModuleUrlError::DotSegment),
            ("a/%2e%2e/%2e%2e/x.wasm", ModuleUrlError::DotSegment),
            ("../x.wasm", ModuleUrlError::DotSegment),
            ("./x.wasm", ModuleUrlError::DotSegment),
            ("a//x.wasm", ModuleUrlError::DotSegment),
            ("https:evil.example/x.wasm", ModuleUrlError::Character(':')),
            ("https%3aevil/x.wasm", ModuleUrlError::Character(':')),
            ("//evil.example/x.wasm", ModuleUrlError::Absolute),
            ("/x.wasm", ModuleUrlError::Absolute),
            ("https://evil.example/x.wasm", ModuleUrlError::Character(':')),
            ("a\\..\\x.wasm", ModuleUrlError::Character('\\')),
            ("%5c..%5cx.wasm", ModuleUrlError::Character('\\')),
            ("x.wasm?y=1", ModuleUrlError::Character('?')),
            ("x.wasm#f", ModuleUrlError::Character('#')),
            ("%252e%252e/x.wasm", ModuleUrlError::Character('%')),
            ("%zz.wasm", ModuleUrlError::BadEscape),
            ("user@x.wasm", ModuleUrlError::Character('@')),
        ] {
            assert_eq!(module_url(&base, bad), Err(want.clone()), "{bad:?}");
        }
    }

    #[test]
    fn expiry() {
        let i = Index::parse(index_json(r#","expires":"2026-06-01T00:00:00Z""#).as_bytes()).unwrap();
        assert!(i.check_expiry(time::macros::datetime!(2026-05-01 0:00 UTC)).is_ok());
        assert!(matches!(i.check_expiry(time::macros::datetime!(2026-07-01 0:00 UTC)), Err(IndexError::Expired(_))));
    }

    #[test]
    fn sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (text, public) = generate_key();
        let path = dir.path().join("key");
        std::fs::write(&path, text).unwrap();
        let key = read_signing_key(&path).unwrap();
        let vk = parse_public_key(&public).unwrap();
        let sig = sign(&key, b"index bytes");
        assert!(verify(&vk, b"index bytes", sig.as_bytes()).is_ok());
        assert!(verify(&vk, b"index bytes!", sig.as_bytes()).is_err());
        let (_, other) = generate_key();
        assert!(verify(&parse_public_key(&other).unwrap(), b"index bytes", sig.as_bytes()).is_err());
        assert!(verify(&vk, b"index bytes", b"garbage").is_err());
        assert!(parse_public_key("not-a-key").is_err());
        let pubfile = dir.path().join("key.pub");
        std::fs::write(&pubfile, format!("# comment\n{public}\n")).unwrap();
        assert_eq!(parse_public_key(pubfile.to_str().unwrap()).unwrap(), vk);
    }
}
