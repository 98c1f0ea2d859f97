//! The manifest a module declares in its `gather.manifest` custom section: name, version and
//! the API permissions it needs, readable by the host without running the module.

use serde::{Deserialize, Serialize};

/// A module's declared identity and permissions (the JSON in the `gather.manifest` section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Gatherer name: `[a-z0-9][a-z0-9._-]*`, at most 63 bytes. Unique within a module set.
    pub name: String,
    /// Version string, for example `1.2.0`.
    pub version: String,
    /// ABI version the module speaks; must agree with its marker export.
    pub abi: u32,
    /// One line for humans.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `METHOD /path` patterns the module may call. `*` matches exactly one path segment.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// The Insights Operator gather functions this module reproduces, in IO's
    /// `gatherer/function` naming (`clusterconfig/nodes`), so IO's tooling can match reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reproduces: Vec<String>,
}

/// At most this many `reproduces` entries: the manifest is guest input, and every entry is
/// copied into each period's `gathers.json`.
pub const MAX_REPRODUCES: usize = 32;

/// Why a manifest is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError(pub String);

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// Parses and validates manifest JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError(format!("manifest is not valid JSON for ABI 1: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    /// Checks the name and version rules.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let n = &self.name;
        let ok = !n.is_empty()
            && n.len() <= 63
            && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ok {
            return Err(ManifestError(format!(
                "gatherer name {n:?} is invalid: use [a-z0-9][a-z0-9._-]*, at most 63 bytes"
            )));
        }
        if self.version.is_empty() || self.version.len() > 64 || self.version.chars().any(char::is_control) {
            return Err(ManifestError(format!("gatherer {n}: version {:?} is invalid", self.version)));
        }
        if self.reproduces.len() > MAX_REPRODUCES {
            return Err(ManifestError(format!(
                "gatherer {n}: `reproduces` lists {} functions, at most {MAX_REPRODUCES} are allowed",
                self.reproduces.len()
            )));
        }
        for f in &self.reproduces {
            let ok = f.len() <= 64
                && f.split_once('/').is_some_and(|(g, func)| {
                    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    word(g) && word(func)
                });
            if !ok {
                return Err(ManifestError(format!(
                    "gatherer {n}: `reproduces` entry {:?} must look like \"clusterconfig/nodes\" ([a-z0-9_]+/[a-z0-9_]+, at most 64 bytes)",
                    f.chars().take(80).collect::<String>()
                )));
            }
        }
        Ok(())
    }

    /// Whether any declared permission allows `method` on `path` (query ignored).
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.permissions.iter().any(|p| p.matches(method, path))
    }
}

/// One declared permission: an HTTP method and a path pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    /// Upper-case method (`GET`).
    pub method: String,
    /// Path pattern starting with `/`; a `*` segment matches exactly one segment.
    pub path: String,
}

impl Permission {
    /// Parses `GET /api/v1/nodes` under the grammar of ABI.md §4: one upper-case method, one
    /// space, an absolute path of printable ASCII with no `?`, `#`, `%`, `\\`, `;`, no empty,
    /// `.` or `..` segment, and `*` only as a whole segment. Anything else could never match
    /// a request the host sends, so it is refused at load rather than silently dead.
    pub fn parse(s: &str) -> Result<Self, ManifestError> {
        let (method, path) = s
            .split_once(' ')
            .ok_or_else(|| ManifestError(format!("permission {s:?} must look like \"GET /api/v1/nodes\"")))?;
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ManifestError(format!("permission {s:?}: method must be upper-case, like GET")));
        }
        if !path.starts_with('/') {
            return Err(ManifestError(format!(
                "permission {s:?}: one space, then an absolute path (starting with '/')"
            )));
        }
        if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic() || "?#%\\;".contains(*c)) {
            return Err(ManifestError(format!(
                "permission {s:?}: {c:?} is not allowed in a path (printable ASCII without space, '?', '#', '%', '\\' or ';')"
            )));
        }
        // A single trailing `/` is ignored; what remains must have segments, none empty.
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        if trimmed.is_empty() {
            return Err(ManifestError(format!("permission {s:?}: a bare '/' matches nothing")));
        }
        if trimmed[1..].split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(ManifestError(format!(
                "permission {s:?}: path must have no empty, '.' or '..' segments"
            )));
        }
        if trimmed.split('/').any(|seg| seg.contains('*') && seg != "*") {
            return Err(ManifestError(format!("permission {s:?}: '*' must be a whole path segment")));
        }
        Ok(Permission { method: method.to_owned(), path: trimmed.to_owned() })
    }

    /// Whether this permission allows `method` on `path` (the query part is ignored).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let path = path.split_once('?').map_or(path, |(p, _)| p).trim_end_matches('/');
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some("*"), Some(g)) if !g.is_empty() && g != ".." && g != "." => {}
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Permission::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn reproduces_names_io_functions_and_is_bounded() {
        let with = |r: &str| Manifest::parse(format!(r#"{{"name":"n","version":"1","abi":1,"reproduces":{r}}}"#).as_bytes());
        assert_eq!(with(r#"["clusterconfig/nodes","conditional/pod_logs_2"]"#).unwrap().reproduces.len(), 2);
        assert!(with("[]").unwrap().reproduces.is_empty());
        for bad in [r#"["nodes"]"#, r#"["a/b/c"]"#, r#"["Cluster/x"]"#, r#"["/x"]"#, r#"["a/"]"#, r#"["a/b c"]"#] {
            let e = with(bad).unwrap_err();
            assert!(e.0.contains("reproduces"), "{bad}: {e}");
        }
        let long = format!(r#"["a/{}"]"#, "b".repeat(63));
        assert!(with(&long).is_err());
        let many = format!("[{}]", vec![r#""a/b""#; MAX_REPRODUCES + 1].join(","));
        assert!(with(&many).unwrap_err().0.contains("at most"));
    }
    use super::*;

    #[test]
    fn parses_and_matches() {
        let list = Permission::parse("GET /apis/config.openshift.io/v1/clusteroperators").unwrap();
        assert!(list.matches("GET", "/apis/config.openshift.io/v1/clusteroperators?limit=500&continue=abc"));
        assert!(!list.matches("GET", "/apis/config.openshift.io/v1/clusteroperators/dns"), "a list grant is not a get grant");
        assert!(!list.matches("DELETE", "/apis/config.openshift.io/v1/clusteroperators"));
        let any_ns = Permission::parse("GET /api/v1/namespaces/*/pods").unwrap();
        assert!(any_ns.matches("GET", "/api/v1/namespaces/openshift-etcd/pods"));
        assert!(!any_ns.matches("GET", "/api/v1/namespaces/openshift-etcd/secrets"));
        assert!(!any_ns.matches("GET", "/api/v1/namespaces/../pods"));
        assert!(!any_ns.matches("GET", "/api/v1/namespaces/a/pods/b"));
    }

    #[test]
    fn refuses_bad_permissions() {
        for bad in [
            "/api/v1/nodes",
            "get /api",
            "GET api/v1",
            "GET /api/../x",
            "GET /api/v1/no*des",
            "GET /a?b=c",
            "GET  /api/v1/nodes",
            " GET /api/v1/nodes",
            "GET /api/v1/nodes ",
            "GET /api/v1/./nodes",
            "GET /api/v1/.",
            "GET /api/v1/%6eodes",
            "GET /api/v1/nodes#x",
            "GET /api\\v1/nodes",
            "GET /api/v1/nodes;x",
            "GET /",
            "GET //",
            "GET /api//v1",
            "GET /api/v1/n\u{e9}",
            "GET /api/v1/n\todes",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_the_grammar() {
        for good in ["GET /api/v1/nodes", "GET /api/v1/nodes/", "GET /apis/config.openshift.io/v1/*", "GET /version", "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews"] {
            let p = Permission::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(!p.path.ends_with('/') || p.path == "/", "{good}");
        }
    }

    #[test]
    fn manifest_round_trip_and_validation() {
        let json = br#"{"name":"nodes","version":"1.0.0","abi":1,"permissions":["GET /api/v1/nodes"]}"#;
        let m = Manifest::parse(json).unwrap();
        assert!(m.allows("GET", "/api/v1/nodes?limit=1"));
        assert_eq!(serde_json::to_string(&m).unwrap(), std::str::from_utf8(json).unwrap());
        assert!(Manifest::parse(br#"{"name":"Bad Name","version":"1","abi":1}"#).is_err());
        assert!(Manifest::parse(br#"{"name":"x","version":"1","abi":1,"extra":true}"#).is_err());
        assert!(Manifest::parse(b"not json").is_err());
    }
}
