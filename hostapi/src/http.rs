//! The HTTP-like REST exchange between a gatherer and the host.

use serde::{Deserialize, Serialize};

/// A request a gatherer asks the host to make against the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `GET` unless the operator allowed more.
    pub method: String,
    /// API path with optional query, for example `/api/v1/nodes?limit=500`.
    pub path: String,
    /// Extra headers. The host forwards only `Accept`; the rest are ignored.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Request body (ignored for GET).
    #[serde(default)]
    pub body: Vec<u8>,
}

impl Request {
    /// A GET for `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Request { method: "GET".into(), path: path.into(), headers: Vec::new(), body: Vec::new() }
    }

    /// Headers in the ABI's wire form: `Name: value` lines joined by `\n`.
    pub fn headers_wire(&self) -> String {
        self.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")
    }

    /// Parses the wire form of headers; `None` if a non-empty line has no `:`.
    pub fn parse_headers(wire: &str) -> Option<Vec<(String, String)>> {
        wire.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
            .collect()
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }
}

/// What the host answers: the API server's real status, a few headers and the body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// HTTP status (404 stays 404: the gatherer decides what it means).
    pub status: u16,
    /// `content-type`, `retry-after`, `warning` and `x-gather-policy` when present.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `message` of a Kubernetes `Status` body, if the body is one.
    pub fn status_message(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        (v.get("kind")? == "Status").then(|| v.get("message")?.as_str().map(str::to_owned))?
    }
}

/// Response headers the host passes through to guests.
pub const FORWARDED_RESPONSE_HEADERS: [&str; 4] = ["content-type", "retry-after", "warning", "x-gather-policy"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_wire_round_trip() {
        let mut r = Request::get("/api/v1/nodes?limit=5");
        r.headers.push(("Accept".into(), "application/json".into()));
        assert_eq!(r.headers_wire(), "Accept: application/json");
        assert_eq!(Request::parse_headers("Accept: a\n\nX-Y:  b "), Some(vec![("Accept".into(), "a".into()), ("X-Y".into(), "b".into())]));
        assert_eq!(Request::parse_headers("nocolon"), None);
        assert_eq!(r.path_only(), "/api/v1/nodes");
    }
}
