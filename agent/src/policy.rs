//! The REST bridge and its policy: what a gatherer may ask of the Kubernetes API, and how the
//! host makes the requests it allows. Everything a security reviewer needs is in this file.
//!
//! The rules, in the order they are applied (ABI.md §6.2; the denial table is in
//! docs/SECURITY.md):
//! 1. Only `GET` (get and list), unless the operator allows more methods for the module.
//!    Anything else is answered 405 without touching the API.
//! 2. The path is parsed into what it addresses ([`crate::apipath`]); anything ambiguous
//!    (percent-encoding, dot or empty segments, `;`, `#` anywhere, `\`, upper case where the
//!    API server is case-sensitive, …) is answered 403.
//! 3. Watches are answered 403, whether by the legacy `/watch/` prefix or a `watch` query
//!    parameter: the host never streams.
//! 4. The path must match one of the module's declared permissions (`GET /api/v1/nodes`,
//!    `*` = one segment). Anything else is answered 403 and noted as a warning in its report.
//! 5. Secret material (`secrets` in any group and any form, the `secrets` and `token`
//!    subresources such as `imagestreams/secrets` and `serviceaccounts/token`, OpenShift's
//!    OAuth tokens and clients) is denied, even when declared, unless the operator allows
//!    Secrets for the module.
//! 6. The subresources `proxy` (including the legacy `/proxy/` prefix), `exec`, `attach`,
//!    `portforward` and `token` are denied unless the operator lists them for the module.
//! 7. Only the `Accept` request header (and `Content-Type` on operator-allowed non-GET
//!    methods) is forwarded: a guest can never set `Authorization`,
//!    `Impersonate-*` or anything else that changes who the host is.
//!
//! [`check_declared`] applies rules 1, 3, 5 and 6 to the declared permission patterns at
//! activation, reading each `*` as anything it could be, so a module whose declarations could
//! reach Secrets or a dangerous subresource is refused up front, not at its first request.
//!
//! Allowed requests go out through the host's own kube-rs client with a per-request timeout
//! (bounded by the gatherer's deadline) and a response body cap; the real status comes back
//! to the guest (a 404 stays a 404 and the guest decides).

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hostapi::{Manifest, Permission, Request, Response};
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};

use crate::apipath::{self, ApiPath, ApiPathError, Seg, ShapeKind, Verb};

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
    /// Dangerous subresources the module may use (it must also declare the paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_subresources: Vec<Subresource>,
}

/// The subresources denied unless the operator allows them: each runs code in, or tunnels
/// through, a workload or node, or mints credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subresource {
    /// `nodes/proxy`, `services/proxy`, `pods/proxy` and the legacy `/proxy/` prefix.
    Proxy,
    /// `pods/exec`.
    Exec,
    /// `pods/attach`.
    Attach,
    /// `pods/portforward`.
    Portforward,
    /// `serviceaccounts/token` (also Secret material: it needs `allowSecrets` as well).
    Token,
}

impl Subresource {
    /// Every dangerous subresource.
    pub const ALL: [Subresource; 5] =
        [Subresource::Proxy, Subresource::Exec, Subresource::Attach, Subresource::Portforward, Subresource::Token];

    /// The name in a path.
    pub fn as_str(self) -> &'static str {
        match self {
            Subresource::Proxy => "proxy",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::Portforward => "portforward",
            Subresource::Token => "token",
        }
    }
}

impl fmt::Display for Subresource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resources whose objects are Secret material, in any group: core Secrets (and any group's
/// `secrets`, in case an aggregated API serves them) and OpenShift's OAuth tokens and clients
/// (token names were bearer tokens before 4.6; clients hold their secret).
pub const SECRET_RESOURCES: &[&str] =
    &["secrets", "oauthaccesstokens", "oauthauthorizetokens", "useroauthaccesstokens", "oauthclients"];

/// Subresources that serve Secret material: `imagestreams/secrets` (pull secrets) and
/// `serviceaccounts/token`.
pub const SECRET_SUBRESOURCES: &[&str] = &["secrets", "token"];

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    /// A method other than GET that the operator did not allow.
    #[error("method {0} is not allowed: gatherers are read-only (GET) unless the operator allows more")]
    Method(String),
    /// The path is ambiguous or malformed.
    #[error("the path is refused: {0}")]
    Malformed(#[source] ApiPathError),
    /// A watch (legacy `/watch/` prefix or a `watch` query parameter).
    #[error("watches are refused: the host never streams")]
    Watch,
    /// Not among the module's declared permissions.
    #[error("not among the module's declared permissions")]
    NotDeclared,
    /// Secret material without the operator's `allowSecrets`.
    #[error("secrets are never read unless the operator allows them for this module")]
    Secrets,
    /// A dangerous subresource the operator did not list in `allowSubresources`.
    #[error("the {0} subresource is denied unless the operator allows it for this module")]
    Subresource(Subresource),
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
        reason: DenyReason,
    },
}

fn deny(reason: DenyReason) -> Decision {
    let status = if matches!(reason, DenyReason::Method(_)) { 405 } else { 403 };
    Decision::Deny { status, reason }
}

/// Whether `path` (a request path with optional query) parses and addresses Secret material
/// in any form. Unparsable paths count as secret: the policy refuses them anyway.
pub fn is_secrets_path(path: &str) -> bool {
    match ApiPath::parse(path) {
        Ok(p) => p.resource().is_some_and(|r| {
            secret_bearing(Seg::Lit(r.resource), r.subresource.map(Seg::Lit))
        }),
        Err(_) => true,
    }
}

/// Whether a resource/subresource pair could be Secret material.
fn secret_bearing(resource: Seg<'_>, subresource: Option<Seg<'_>>) -> bool {
    SECRET_RESOURCES.iter().any(|r| resource.could_be(r))
        || subresource.is_some_and(|s| SECRET_SUBRESOURCES.iter().any(|r| s.could_be(r)))
}

/// The first dangerous subresource `subresource` could be that `policy` does not allow.
fn denied_subresource(policy: &ModulePolicy, subresource: Option<Seg<'_>>) -> Option<Subresource> {
    let s = subresource?;
    Subresource::ALL.into_iter().find(|d| s.could_be(d.as_str()) && !policy.allow_subresources.contains(d))
}

fn method_allowed(policy: &ModulePolicy, method: &str) -> bool {
    method == "GET" || policy.allow_methods.iter().any(|m| m.eq_ignore_ascii_case(method))
}

/// Applies the rules above to one request.
pub fn decide(manifest: &Manifest, policy: &ModulePolicy, method: &str, path: &str) -> Decision {
    if !method_allowed(policy, method) {
        return deny(DenyReason::Method(method.to_owned()));
    }
    let parsed = match ApiPath::parse(path) {
        Ok(p) => p,
        Err(e) => return deny(DenyReason::Malformed(e)),
    };
    if parsed.verb == Verb::Watch {
        return deny(DenyReason::Watch);
    }
    if !manifest.allows(method, path) {
        return deny(DenyReason::NotDeclared);
    }
    if let Some(r) = parsed.resource() {
        let (resource, sub) = (Seg::Lit(r.resource), r.subresource.map(Seg::Lit));
        if secret_bearing(resource, sub) && !policy.allow_secrets {
            return deny(DenyReason::Secrets);
        }
        if let Some(s) = denied_subresource(policy, sub) {
            return deny(DenyReason::Subresource(s));
        }
    }
    Decision::Allow
}

/// Why a module's declarations are refused at activation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclaredError {
    /// A method other than GET the operator did not allow.
    #[error("declares {0}, but gatherers are GET-only unless the operator allows {method}", method = .0.method)]
    Method(Permission),
    /// A pattern no request could satisfy the path grammar for.
    #[error("declares {permission}, which can never match an acceptable request: {source}")]
    Unusable {
        /// The permission.
        permission: Permission,
        /// Why its path is refused.
        #[source]
        source: ApiPathError,
    },
    /// A pattern that can only match watches, which the host never makes.
    #[error("declares {0}, which can only match watches: the host never streams")]
    Watch(Permission),
    /// A pattern that could reach Secret material without `allowSecrets`.
    #[error("declares {0}, which could read Secrets, but Secrets are not allowed for this module (allowSecrets)")]
    Secrets(Permission),
    /// A pattern that could reach a dangerous subresource the operator did not allow.
    #[error("declares {permission}, which could use the {subresource} subresource, not allowed for this module (allowSubresources)")]
    Subresource {
        /// The permission.
        permission: Permission,
        /// The subresource.
        subresource: Subresource,
    },
}

/// Checks at activation time that everything a module declares is allowed by the operator's
/// policy, so a module that could only be denied at run time is refused up front. Each `*`
/// counts as anything it could be: `GET /api/v1/*/*` could be `/api/v1/watch/secrets`.
pub fn check_declared(manifest: &Manifest, policy: &ModulePolicy) -> Result<(), DeclaredError> {
    for p in &manifest.permissions {
        if !method_allowed(policy, &p.method) {
            return Err(DeclaredError::Method(p.clone()));
        }
        let readings = apipath::pattern_shapes(&p.path)
            .map_err(|source| DeclaredError::Unusable { permission: p.clone(), source })?;
        for r in readings.iter().filter(|r| r.kind == ShapeKind::Resource) {
            if secret_bearing(r.resource, r.subresource) && !policy.allow_secrets {
                return Err(DeclaredError::Secrets(p.clone()));
            }
            if let Some(subresource) = denied_subresource(policy, r.subresource) {
                return Err(DeclaredError::Subresource { permission: p.clone(), subresource });
            }
        }
        if readings.iter().all(|r| r.watch) {
            return Err(DeclaredError::Watch(p.clone()));
        }
    }
    Ok(())
}

/// A `Status` body for a locally denied request, so guests parse it like any API error.
pub fn denied_response(status: u16, reason: impl fmt::Display) -> Response {
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
    /// The agent is shutting down and abandoned the period while the request was in flight.
    #[error("cancelled: the agent is shutting down")]
    Cancelled,
}

impl BridgeError {
    /// The ABI status code the guest sees.
    pub fn status(&self) -> i32 {
        use hostapi::abi::status;
        match self {
            BridgeError::Timeout(_) => status::TIMEOUT,
            BridgeError::TooLarge { .. } => status::TOO_LARGE,
            BridgeError::Unavailable(_) | BridgeError::Cancelled => status::UNAVAILABLE,
        }
    }
}

/// The host's side of the REST bridge: its kube client and the runtime to drive it from the
/// (blocking) sandbox threads.
#[derive(Clone)]
pub struct Bridge {
    client: kube::Client,
    runtime: tokio::runtime::Handle,
    /// The API server's URL, named in errors (kube's client does not expose it).
    server: Option<String>,
    /// Flips when the period is abandoned ([`Self::cancelled_by`]).
    cancel: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Bridge {
    /// A bridge over `client`, driving requests on `runtime`.
    pub fn new(client: kube::Client, runtime: tokio::runtime::Handle) -> Self {
        Bridge { client, runtime, server: None, cancel: None }
    }

    /// Names `server` (the client's cluster URL) in connection errors, so that an unreachable
    /// API server reads `https://10.0.0.1:6443/: client error (Connect): tcp connect error:
    /// Connection refused` rather than kube's bare `ServiceError: client error (Connect)`.
    pub fn with_server(mut self, server: impl std::fmt::Display) -> Self {
        self.server = Some(server.to_string());
        self
    }

    /// Why a request got no response: the server, then every cause (connection refused, DNS,
    /// TLS...), which kube's own message leaves out.
    fn unavailable(&self, e: &kube::Error) -> BridgeError {
        let top: &(dyn std::error::Error + 'static) = match e {
            // kube's text for this variant is "ServiceError: " plus its source's.
            kube::Error::Service(inner) => inner.as_ref(),
            other => other,
        };
        let mut text = self.server.clone().unwrap_or_else(|| "(the client's cluster URL)".into());
        let mut cause = Some(top);
        while let Some(c) = cause {
            let part = c.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            cause = c.source();
        }
        BridgeError::Unavailable(text)
    }

    /// Ends in-flight requests (as [`BridgeError::Cancelled`]) when `cancel` flips to true:
    /// an abandoned period must not wait for a slow API server ([`crate::sandbox::Sandbox::cancel_signal`]).
    pub fn cancelled_by(mut self, cancel: tokio::sync::watch::Receiver<bool>) -> Self {
        self.cancel = Some(cancel);
        self
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
            let send = async { tokio::time::timeout(budget, self.send(req, cap)).await.unwrap_or(Err(BridgeError::Timeout(budget))) };
            match self.cancel.clone() {
                // Dropping the request future closes its connection: nothing waits for the server.
                Some(mut cancel) => tokio::select! {
                    r = send => r,
                    Ok(_) = cancel.wait_for(|c| *c) => Err(BridgeError::Cancelled),
                },
                None => send.await,
            }
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
        let resp = self.client.send(http_req.map(kube::client::Body::from)).await.map_err(|e| self.unavailable(&e))?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = hostapi::http::FORWARDED_RESPONSE_HEADERS
            .iter()
            .filter_map(|h| resp.headers().get(*h).and_then(|v| v.to_str().ok()).map(|v| (h.to_string(), v.to_owned())))
            .collect();
        // A page of a big list is megabytes: sized from Content-Length (within the cap) it is
        // one allocation, where doubling would copy it several times and leave up to half of
        // it unused while the page is held. A wrong length only costs a reallocation.
        let length = resp.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::with_capacity(usize::try_from(length.min(cap)).unwrap_or(0));
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
            reproduces: Vec::new(),
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

    fn reason_of(d: Decision) -> Option<DenyReason> {
        match d {
            Decision::Allow => None,
            Decision::Deny { reason, .. } => Some(reason),
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
        assert!(is_secrets_path("/apis/example.com/v1/secrets"), "secrets in any group");
        assert!(is_secrets_path("/api/v1/watch/secrets"));
        assert!(is_secrets_path("/apis/image.openshift.io/v1/namespaces/a/imagestreams/b/secrets"));
        assert!(is_secrets_path("/api/v1/namespaces/a/serviceaccounts/b/token"));
        assert!(is_secrets_path("/api/v1/%73ecrets"), "unparsable counts as secret");
        assert!(!is_secrets_path("/api/v1/configmaps"));
        assert!(!is_secrets_path("/api/v1/namespaces/secrets"), "a namespace named secrets is not a Secret");
    }

    /// Every request class of the denial table in docs/SECURITY.md, each declared (so only the
    /// rule under test can deny it), under the default policy.
    #[test]
    fn denial_table() {
        use DenyReason::*;
        let table: &[(&str, &str, Option<DenyReason>)] = &[
            ("GET /api/v1/nodes", "/api/v1/nodes?limit=500", None),
            ("GET /api/v1/namespaces/*/pods/*/log", "/api/v1/namespaces/a/pods/b/log?container=c", None),
            ("GET /apis/config.openshift.io/v1/clusteroperators", "/apis/config.openshift.io/v1/clusteroperators", None),
            ("GET /version", "/version", None),
            ("GET /apis", "/apis", None),
            ("GET /api/v1/secrets", "/api/v1/secrets", Some(Secrets)),
            ("GET /api/v1/namespaces/*/secrets/*", "/api/v1/namespaces/a/secrets/b", Some(Secrets)),
            ("GET /api/v1/*/*", "/api/v1/secrets/b", Some(Secrets)),
            ("GET /apis/*/*/secrets", "/apis/example.com/v1/secrets", Some(Secrets)),
            ("GET /apis/image.openshift.io/v1/namespaces/*/imagestreams/*/secrets", "/apis/image.openshift.io/v1/namespaces/a/imagestreams/b/secrets", Some(Secrets)),
            ("GET /apis/oauth.openshift.io/v1/oauthaccesstokens", "/apis/oauth.openshift.io/v1/oauthaccesstokens", Some(Secrets)),
            ("GET /api/v1/namespaces/*/serviceaccounts/*/token", "/api/v1/namespaces/a/serviceaccounts/b/token", Some(Secrets)),
            ("GET /api/v1/watch/secrets", "/api/v1/watch/secrets", Some(Watch)),
            ("GET /api/v1/watch/namespaces/*/secrets", "/api/v1/watch/namespaces/a/secrets", Some(Watch)),
            ("GET /api/v1/*/*", "/api/v1/watch/secrets", Some(Watch)),
            ("GET /api/v1/pods", "/api/v1/pods?watch=true", Some(Watch)),
            ("GET /api/v1/pods", "/api/v1/pods?watch=1", Some(Watch)),
            ("GET /api/v1/pods", "/api/v1/pods?x=1&Watch=TRUE", Some(Watch)),
            ("GET /api/v1/pods", "/api/v1/pods?%77atch=yes", Some(Watch)),
            ("GET /api/v1/nodes/*/proxy", "/api/v1/nodes/n/proxy", Some(Subresource(super::Subresource::Proxy))),
            ("GET /api/v1/nodes/*/*/*", "/api/v1/nodes/n/proxy/metrics", Some(Subresource(super::Subresource::Proxy))),
            ("GET /api/v1/*/*/*", "/api/v1/proxy/nodes/n", Some(Subresource(super::Subresource::Proxy))),
            ("GET /api/v1/namespaces/*/services/*/proxy", "/api/v1/namespaces/a/services/s:80/proxy", Some(Subresource(super::Subresource::Proxy))),
            ("GET /api/v1/namespaces/*/pods/*/exec", "/api/v1/namespaces/a/pods/b/exec?command=sh", Some(Subresource(super::Subresource::Exec))),
            ("GET /api/v1/namespaces/*/pods/*/attach", "/api/v1/namespaces/a/pods/b/attach", Some(Subresource(super::Subresource::Attach))),
            ("GET /api/v1/namespaces/*/pods/*/portforward", "/api/v1/namespaces/a/pods/b/portforward", Some(Subresource(super::Subresource::Portforward))),
            ("GET /api/v1/nodes", "/api/v1/nodes#", Some(Malformed(ApiPathError::Fragment))),
            ("GET /api/v1/nodes", "/api/v1/nodes?x=1#", Some(Malformed(ApiPathError::Fragment))),
            ("GET /api/v1/*", "/api/v1/%73ecrets", Some(Malformed(ApiPathError::PercentEncoded))),
            ("GET /api/v1/*", "/api/v1/Secrets", Some(Malformed(ApiPathError::BadSegment { what: "resource", value: "Secrets".into() }))),
            ("GET /api/v1/nodes", "/api/v1/nodes;watch=true", Some(Malformed(ApiPathError::Semicolon))),
            ("GET /api/v1/pods", "/api/v1/nodes", Some(NotDeclared)),
            ("GET /api/v1/nodes", "/api/v1/nodes/", Some(Malformed(ApiPathError::EmptySegment))),
        ];
        for (perm, path, want) in table {
            let m = manifest(&[perm]);
            assert_eq!(reason_of(decide(&m, &ModulePolicy::default(), "GET", path)), *want, "{perm} / {path}");
        }
    }

    #[test]
    fn subresources_need_the_operators_allowance() {
        let m = manifest(&["GET /api/v1/nodes/*/proxy/*", "GET /api/v1/namespaces/*/serviceaccounts/*/token"]);
        let p = ModulePolicy { allow_subresources: vec![Subresource::Proxy], ..Default::default() };
        assert_eq!(decide(&m, &p, "GET", "/api/v1/nodes/n/proxy/metrics"), Decision::Allow);
        // The token subresource is Secret material too: both allowances are needed.
        let token = "/api/v1/namespaces/a/serviceaccounts/b/token";
        let p = ModulePolicy { allow_subresources: vec![Subresource::Token], ..Default::default() };
        assert_eq!(reason_of(decide(&m, &p, "GET", token)), Some(DenyReason::Secrets));
        let p = ModulePolicy { allow_secrets: true, ..Default::default() };
        assert_eq!(reason_of(decide(&m, &p, "GET", token)), Some(DenyReason::Subresource(Subresource::Token)));
        let p = ModulePolicy { allow_secrets: true, allow_subresources: vec![Subresource::Token], ..Default::default() };
        assert_eq!(decide(&m, &p, "GET", token), Decision::Allow);
    }

    #[test]
    fn policy_field_is_typed() {
        let p: ModulePolicy = serde_json::from_str(r#"{"allowSubresources": ["proxy", "exec"]}"#).unwrap();
        assert_eq!(p.allow_subresources, [Subresource::Proxy, Subresource::Exec]);
        assert!(serde_json::from_str::<ModulePolicy>(r#"{"allowSubresources": ["log"]}"#).is_err(), "log needs no allowance");
        assert!(serde_json::from_str::<ModulePolicy>(r#"{"allowSubresource": ["proxy"]}"#).is_err());
    }

    #[test]
    fn activation_reads_every_wildcard() {
        let none = ModulePolicy::default();
        let secrets = ModulePolicy { allow_secrets: true, ..Default::default() };
        let all = ModulePolicy { allow_secrets: true, allow_subresources: Subresource::ALL.to_vec(), ..Default::default() };
        let cases: &[(&str, &ModulePolicy, Option<&str>)] = &[
            ("GET /api/v1/nodes", &none, None),
            ("GET /api/v1/namespaces/*/pods", &none, None),
            ("GET /api/v1/namespaces/*/pods/*/log", &none, None),
            ("GET /api/v1/namespaces/*/configmaps/*", &none, None),
            ("GET /apis/config.openshift.io/v1/*/*", &none, Some("Secrets")),
            ("GET /version", &none, None),
            ("GET /api/v1/*/*", &none, Some("Secrets")),
            ("GET /api/v1/*", &none, Some("Secrets")),
            ("GET /api/v1/watch/secrets", &none, Some("Secrets")),
            ("GET /api/v1/watch/namespaces/*/secrets", &none, Some("Secrets")),
            ("GET /apis/image.openshift.io/v1/namespaces/*/imagestreams/*/secrets", &none, Some("Secrets")),
            ("GET /apis/image.openshift.io/v1/namespaces/*/imagestreams/*/*", &none, Some("Secrets")),
            ("GET /apis/*/*/namespaces/*/*", &none, Some("Secrets")),
            ("GET /*/v1/secrets", &none, Some("Secrets")),
            // A `*` subresource could be `secrets` or `token` (Secret material), then `proxy`.
            ("GET /api/v1/nodes/*/*", &none, Some("Secrets")),
            ("GET /api/v1/nodes/*/*", &secrets, Some("proxy")),
            ("GET /api/v1/nodes/*/proxy/*", &none, Some("proxy")),
            ("GET /api/v1/namespaces/*/pods/*/*", &secrets, Some("proxy")),
            ("GET /api/v1/namespaces/*/pods/*/exec", &none, Some("exec")),
            ("GET /api/v1/*/*", &secrets, Some("proxy")),
            ("GET /api/v1/watch/secrets", &secrets, Some("watches")),
            ("GET /api/v1/watch/nodes", &none, Some("watches")),
            ("GET /api/v1/*/*", &all, None),
            ("GET /api/v1/Nodes", &none, Some("never match")),
            ("GET /api/v1/nodes/*/status/*", &none, Some("never match")),
            ("DELETE /api/v1/nodes", &none, Some("GET-only")),
        ];
        for (perm, policy, want) in cases {
            let got = check_declared(&manifest(&[perm]), policy);
            match (want, &got) {
                (None, Ok(())) => {}
                (Some(w), Err(e)) if e.to_string().contains(w) => {}
                _ => panic!("{perm} with {policy:?}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn denied_response_is_a_status() {
        let r = denied_response(403, DenyReason::Secrets);
        assert!(r.status_message().unwrap().contains("secrets are never read"));
        let r = denied_response(403, "nope");
        assert_eq!(r.status, 403);
        assert_eq!(r.header("x-gather-policy"), Some("denied"));
        assert!(r.status_message().unwrap().contains("nope"));
    }
}
