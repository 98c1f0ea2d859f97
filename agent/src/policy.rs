//! The REST bridge and its policy: what a gatherer may ask of the Kubernetes API, and how the
//! host makes the requests it allows. Everything a security reviewer needs is in this file.
//!
//! The rules, in the order they are applied:
//! 1. Only `GET` (get and list), unless the operator allows more methods for the module.
//!    Anything else is answered 405 without touching the API.
//! 2. The path must be a plain absolute API path (no `..`, no empty segments, no scheme).
//! 3. The path must match one of the module's declared permissions (`GET /api/v1/nodes`,
//!    `*` = one segment). Anything else is answered 403 and noted as a warning in its report.
//! 4. `secrets` are denied, even when declared, unless the operator allows them for the module.
//! 5. Only the `Accept` request header (and `Content-Type` on operator-allowed non-GET
//!    methods) is forwarded: a guest can never set `Authorization`,
//!    `Impersonate-*` or anything else that changes who the host is.
//!
//! Allowed requests go out through the host's own kube-rs client with a per-request timeout
//! (bounded by the gatherer's deadline) and a response body cap; the real status comes back
//! to the guest (a 404 stays a 404 and the guest decides).

use std::time::{Duration, Instant};

use bytes::Bytes;
use hostapi::{Manifest, Request, Response};
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};

/// What the operator allows a module beyond the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModulePolicy {
    /// Methods allowed in addition to GET (for example `POST` for access reviews).
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Whether the module may read Secrets (it must also declare the paths).
    #[serde(default)]
    pub allow_secrets: bool,
}

/// The policy's verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send it.
    Allow,
    /// Answer locally with this status and reason; the API is not contacted.
    Deny {
        /// 403 or 405.
        status: u16,
        /// Why, for the guest, the report and the log.
        reason: String,
    },
}

/// Whether `path` (query ignored) reads core-group Secrets.
pub fn is_secrets_path(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", _, "secrets", ..] => true,
        ["api", _, "namespaces", _, "secrets", ..] => true,
        _ => false,
    }
}

fn plain_path(path: &str) -> bool {
    let p = path.split_once('?').map_or(path, |(p, _)| p);
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('#')
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control() || c == ' ')
        && p.split('/').skip(1).all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('%'))
}

/// Applies the rules above to one request.
pub fn decide(manifest: &Manifest, policy: &ModulePolicy, method: &str, path: &str) -> Decision {
    let get = method == "GET";
    if !get && !policy.allow_methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
        return Decision::Deny {
            status: 405,
            reason: format!("method {method} is not allowed: gatherers are read-only (GET) unless the operator allows more"),
        };
    }
    if !plain_path(path) {
        return Decision::Deny { status: 403, reason: format!("path {path:?} is not a plain absolute API path") };
    }
    if !manifest.allows(method, path) {
        return Decision::Deny {
            status: 403,
            reason: format!("{method} {} is not among the module's declared permissions", path.split('?').next().unwrap_or(path)),
        };
    }
    if is_secrets_path(path) && !policy.allow_secrets {
        return Decision::Deny {
            status: 403,
            reason: "secrets are never read unless the operator allows them for this module".into(),
        };
    }
    Decision::Allow
}

/// Checks at activation time that everything a module declares is allowed by the operator's
/// policy, so a module that could only be denied at run time is refused up front.
pub fn check_declared(manifest: &Manifest, policy: &ModulePolicy) -> Result<(), String> {
    for p in &manifest.permissions {
        if p.method != "GET" && !policy.allow_methods.iter().any(|m| m.eq_ignore_ascii_case(&p.method)) {
            return Err(format!("declares {p}, but gatherers are GET-only unless the operator allows {}", p.method));
        }
        if is_secrets_path(&p.path.replace('*', "x")) && !policy.allow_secrets {
            return Err(format!("declares {p}, but Secrets are not allowed for {:?}", manifest.name));
        }
    }
    Ok(())
}

/// A `Status` body for a locally denied request, so guests parse it like any API error.
pub fn denied_response(status: u16, reason: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("denied by gather-agent policy: {reason}"),
        "reason": if status == 405 { "MethodNotAllowed" } else { "Forbidden" },
        "code": status,
    });
    Response {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-gather-policy".into(), "denied".into()),
        ],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// Why an allowed request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The request timed out or the gatherer's deadline passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The response body exceeded the cap.
    #[error("response body exceeds the {cap}-byte cap")]
    TooLarge {
        /// The cap.
        cap: u64,
    },
    /// The API server could not be reached or the request could not be built.
    #[error("API server unavailable: {0}")]
    Unavailable(String),
}

impl BridgeError {
    /// The ABI status code the guest sees.
    pub fn status(&self) -> i32 {
        use hostapi::abi::status;
        match self {
            BridgeError::Timeout(_) => status::TIMEOUT,
            BridgeError::TooLarge { .. } => status::TOO_LARGE,
            BridgeError::Unavailable(_) => status::UNAVAILABLE,
        }
    }
}

/// The host's side of the REST bridge: its kube client and the runtime to drive it from the
/// (blocking) sandbox threads.
#[derive(Clone)]
pub struct Bridge {
    client: kube::Client,
    runtime: tokio::runtime::Handle,
}

impl Bridge {
    /// A bridge over `client`, driving requests on `runtime`.
    pub fn new(client: kube::Client, runtime: tokio::runtime::Handle) -> Self {
        Bridge { client, runtime }
    }

    /// Sends an allowed request and reads at most `cap` body bytes, giving up at `deadline`.
    /// Must be called from a blocking thread (the sandbox's), never from async code.
    pub fn send_blocking(&self, gatherer: &str, req: &Request, cap: u64, deadline: Instant) -> Result<Response, BridgeError> {
        let started = Instant::now();
        let budget = deadline.saturating_duration_since(started);
        if budget.is_zero() {
            return Err(BridgeError::Timeout(Duration::ZERO));
        }
        let result = self.runtime.block_on(async {
            tokio::time::timeout(budget, self.send(req, cap)).await.unwrap_or(Err(BridgeError::Timeout(budget)))
        });
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(resp) => tracing::debug!(gatherer, method = %req.method, path = %req.path, status = resp.status, bytes = resp.body.len(), elapsed_ms, "api request"),
            Err(e) => tracing::debug!(gatherer, method = %req.method, path = %req.path, error = %e, elapsed_ms, "api request failed"),
        }
        result
    }

    async fn send(&self, req: &Request, cap: u64) -> Result<Response, BridgeError> {
        let mut builder = http::Request::builder().method(req.method.as_str()).uri(req.path.as_str());
        for (k, v) in &req.headers {
            if k.eq_ignore_ascii_case("accept") {
                builder = builder.header(http::header::ACCEPT, v.as_str());
            } else if k.eq_ignore_ascii_case("content-type") && req.method != "GET" {
                // Only for methods the operator allowed explicitly; GET carries no body.
                builder = builder.header(http::header::CONTENT_TYPE, v.as_str());
            }
        }
        let body = if req.method == "GET" { Vec::new() } else { req.body.clone() };
        let http_req = builder.body(body).map_err(|e| BridgeError::Unavailable(format!("bad request: {e}")))?;
        let resp = self.client.send(http_req.map(kube::client::Body::from)).await.map_err(|e| BridgeError::Unavailable(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = hostapi::http::FORWARDED_RESPONSE_HEADERS
            .iter()
            .filter_map(|h| resp.headers().get(*h).and_then(|v| v.to_str().ok()).map(|v| (h.to_string(), v.to_owned())))
            .collect();
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BridgeError::Unavailable(format!("reading the response: {e}")))?;
            if let Ok(data) = frame.into_data() {
                let data: Bytes = data;
                if (buf.len() + data.len()) as u64 > cap {
                    return Err(BridgeError::TooLarge { cap });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Response { status, headers, body: buf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(perms: &[&str]) -> Manifest {
        Manifest {
            name: "t".into(),
            version: "1".into(),
            abi: 1,
            description: String::new(),
            permissions: perms.iter().map(|p| hostapi::Permission::parse(p).unwrap()).collect(),
        }
    }

    fn status_of(d: Decision) -> u16 {
        match d {
            Decision::Allow => 200,
            Decision::Deny { status, .. } => status,
        }
    }

    #[test]
    fn get_only_by_default() {
        let m = manifest(&["GET /api/v1/nodes", "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]);
        let p = ModulePolicy::default();
        assert_eq!(decide(&m, &p, "GET", "/api/v1/nodes?limit=5"), Decision::Allow);
        assert_eq!(status_of(decide(&m, &p, "DELETE", "/api/v1/nodes")), 405);
        assert_eq!(status_of(decide(&m, &p, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")), 405);
        let p = ModulePolicy { allow_methods: vec!["POST".into()], ..Default::default() };
        assert_eq!(decide(&m, &p, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"), Decision::Allow);
        assert_eq!(status_of(decide(&m, &p, "POST", "/api/v1/nodes")), 403, "an allowed method still needs a declared path");
    }

    #[test]
    fn only_declared_paths() {
        let m = manifest(&["GET /api/v1/nodes", "GET /api/v1/namespaces/*/pods"]);
        let p = ModulePolicy::default();
        assert_eq!(status_of(decide(&m, &p, "GET", "/api/v1/pods")), 403);
        assert_eq!(status_of(decide(&m, &p, "GET", "/api/v1/nodes/x/proxy")), 403);
        assert_eq!(decide(&m, &p, "GET", "/api/v1/namespaces/a/pods"), Decision::Allow);
        for sneaky in ["/api/v1/nodes/../secrets", "//evil.example.com/api/v1/nodes", "https://x/api/v1/nodes", "/api/v1/%6eodes", "/api//v1/nodes"] {
            assert_eq!(status_of(decide(&m, &p, "GET", sneaky)), 403, "{sneaky}");
        }
    }

    #[test]
    fn secrets_need_explicit_permission() {
        let m = manifest(&["GET /api/v1/secrets", "GET /api/v1/namespaces/*/secrets/*"]);
        assert_eq!(status_of(decide(&m, &ModulePolicy::default(), "GET", "/api/v1/secrets")), 403);
        assert_eq!(status_of(decide(&m, &ModulePolicy::default(), "GET", "/api/v1/namespaces/a/secrets/b")), 403);
        let allow = ModulePolicy { allow_secrets: true, ..Default::default() };
        assert_eq!(decide(&m, &allow, "GET", "/api/v1/secrets"), Decision::Allow);
        assert!(is_secrets_path("/api/v1/namespaces/x/secrets?limit=1"));
        assert!(!is_secrets_path("/apis/example.com/v1/secrets"));
        assert!(!is_secrets_path("/api/v1/configmaps"));
    }

    #[test]
    fn denied_response_is_a_status() {
        let r = denied_response(403, "nope");
        assert_eq!(r.status, 403);
        assert_eq!(r.header("x-gather-policy"), Some("denied"));
        assert!(r.status_message().unwrap().contains("nope"));
    }
}
