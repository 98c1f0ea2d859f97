//! Request handling: authentication, fault injection, routing of discovery and resource paths,
//! and get/list with selectors and `limit`/`continue` paging.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cluster::{Cluster, StoredObject};
use super::resources::ResourceType;
use super::selector::{field_value, FieldSelector, LabelSelector};
use super::status::{self, details, failure, qualified};
use super::{discovery, table, SimState};

/// Health endpoints answer without a token, as kube-apiserver lets anonymous users probe them.
const HEALTH_PATHS: [&str; 3] = ["/healthz", "/livez", "/readyz"];

/// The single entry point for every request the simulator serves.
pub async fn handle(State(state): State<Arc<SimState>>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let (auth, accept) = {
        let header_str = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        (header_str(header::AUTHORIZATION), header_str(header::ACCEPT).unwrap_or_default())
    };
    drop(req);
    let resp = respond(&state, auth.as_deref(), &accept, &method, &path, &query).await;
    tracing::debug!(%method, %path, %query, status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "sim request");
    state.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    resp
}

async fn respond(
    state: &SimState,
    auth: Option<&str>,
    accept: &str,
    method: &Method,
    path: &str,
    query: &str,
) -> Response {
    if HEALTH_PATHS.contains(&path) {
        return (StatusCode::OK, "ok").into_response();
    }
    let authorized = auth
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), state.token.as_bytes()));
    if !authorized {
        return failure(401, "Unauthorized", "Unauthorized", None);
    }
    let delay = state.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if method != Method::GET {
        return failure(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {method} (the simulator is read-only)"),
            None,
        );
    }
    if let Some(f) = state.fault_for(path) {
        let mut resp = failure(
            f.status,
            status::reason_for(f.status),
            format!("injected fault for {}: HTTP {}", f.prefix, f.status),
            None,
        );
        if let Some(secs) = f.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return resp;
    }
    let cluster = state.cluster();
    let wants_table = accept.contains("as=Table");
    route(state, &cluster, path, query, wants_table)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_response(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(v).unwrap_or_default()).into_response()
}

fn not_found_path() -> Response {
    failure(404, "NotFound", "the server could not find the requested resource", Some(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})))
}

fn route(state: &SimState, cluster: &Cluster, path: &str, query: &str, wants_table: bool) -> Response {
    let path = path.trim_end_matches('/');
    match path {
        "/version" => return json_response(&discovery::version()),
        "/api" => return json_response(&discovery::core_versions(&state.server_address)),
        "/apis" => return json_response(&discovery::group_list(cluster)),
        _ => {}
    }
    let (group, version, rest) = if let Some(rest) = path.strip_prefix("/api/") {
        let (v, rest) = rest.split_once('/').unwrap_or((rest, ""));
        ("", v, rest)
    } else if let Some(rest) = path.strip_prefix("/apis/") {
        let mut it = rest.splitn(3, '/');
        let g = it.next().unwrap_or("");
        match it.next() {
            None => {
                return match discovery::group(cluster, g) {
                    Some(doc) => json_response(&doc),
                    None => not_found_path(),
                };
            }
            Some(v) => (g, v, it.next().unwrap_or("")),
        }
    } else {
        return not_found_path();
    };
    if rest.is_empty() {
        return match discovery::resource_list(cluster, group, version) {
            Some(doc) => json_response(&doc),
            None => not_found_path(),
        };
    }
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let seg = |i: usize| segs.get(i).map(String::as_str);
    let find = |plural: &str| cluster.type_index(group, version, plural);

    // Resolve `[namespaces/{ns}/]{plural}[/{name}[/status]]` (and `pods/{name}/log`) the way
    // kube-apiserver does.
    let mut wants_log = false;
    let (idx, namespace, name) = match (seg(0), seg(1), seg(2)) {
        (Some("namespaces"), Some(ns), Some(plural)) if find(plural).is_some_and(|i| cluster.types[i].namespaced) => {
            let name = seg(3);
            wants_log = group.is_empty() && plural == "pods" && seg(4) == Some("log");
            if segs.len() > 5 || (segs.len() == 5 && seg(4) != Some("status") && !wants_log) {
                return not_found_path();
            }
            (find(plural).expect("checked"), Some(ns.to_owned()), name.map(str::to_owned))
        }
        (Some(plural), name, sub) => {
            let Some(i) = find(plural) else { return not_found_path() };
            let namespace_subresource = plural == "namespaces" && sub == Some("status");
            if segs.len() > 3 || (sub.is_some() && sub != Some("status") && !namespace_subresource) {
                return not_found_path();
            }
            if cluster.types[i].namespaced && name.is_some() {
                // `/api/v1/pods/foo` is not a path the API server serves.
                return not_found_path();
            }
            (i, None, name.map(str::to_owned))
        }
        _ => return not_found_path(),
    };
    let rt = &cluster.types[idx];
    if wants_log && state.is_forbidden_name("pods/log") {
        let (ns, pod) = (namespace.as_deref().unwrap_or_default(), name.as_deref().unwrap_or_default());
        return failure(
            403,
            "Forbidden",
            format!("pods \"{pod}\" is forbidden: User \"system:serviceaccount:gather-agent:gather-agent\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"{ns}\""),
            Some(details(Some(pod), "", "pods")),
        );
    }
    // RBAC governs `pods/log` apart from `pods`.
    if !wants_log && state.is_forbidden(rt) {
        let verb = if name.is_some() { "get" } else { "list" };
        let scope = match &namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        return failure(
            403,
            "Forbidden",
            format!(
                "{} is forbidden: User \"system:serviceaccount:gather-agent:gather-agent\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                match &name { Some(n) => format!("{} \"{n}\"", qualified(&rt.group, &rt.plural)), None => qualified(&rt.group, &rt.plural) },
                rt.plural,
                rt.group
            ),
            Some(details(name.as_deref(), &rt.group, &rt.plural)),
        );
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
    if wants_log {
        let (ns, pod) = (namespace.as_deref().unwrap_or_default(), name.as_deref().unwrap_or_default());
        return pod_log(cluster, idx, ns, pod, &param);
    }
    if matches!(param("watch"), Some("true") | Some("1")) {
        return failure(405, "MethodNotAllowed", "watch is not supported by the simulator (it serves a static snapshot)", None);
    }
    match name {
        Some(name) => get(cluster, idx, namespace.as_deref(), &name, wants_table),
        None => list(state, cluster, idx, namespace.as_deref(), &param, wants_table),
    }
}

fn get(cluster: &Cluster, idx: usize, namespace: Option<&str>, name: &str, wants_table: bool) -> Response {
    let rt = &cluster.types[idx];
    let objects = cluster.objects(idx);
    let key = (namespace.unwrap_or(""), name);
    match objects.binary_search_by(|o| o.sort_key().cmp(&key)) {
        Ok(i) => {
            if wants_table {
                let meta = json!({"resourceVersion": objects[i].resource_version.to_string()});
                json_response(&table::table(rt, &[objects[i].value()], meta))
            } else {
                ([(header::CONTENT_TYPE, "application/json")], objects[i].bytes()).into_response()
            }
        }
        Err(_) => failure(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(&rt.group, &rt.plural)),
            Some(details(Some(name), &rt.group, &rt.plural)),
        ),
    }
}

/// `GET /api/v1/namespaces/{ns}/pods/{name}/log`: the fixture log of a container, as text,
/// with the query parameters gatherers use (`container`, `previous`, `tailLines`,
/// `limitBytes`, `sinceSeconds`) and kube-apiserver's errors for a missing pod or a bad
/// container name. A container the fixtures hold no log for has an empty log.
fn pod_log<'a>(cluster: &Cluster, idx: usize, ns: &str, pod: &str, param: &impl Fn(&str) -> Option<&'a str>) -> Response {
    let objects = cluster.objects(idx);
    let Ok(i) = objects.binary_search_by(|o| o.sort_key().cmp(&(ns, pod))) else {
        return failure(404, "NotFound", format!("pods \"{pod}\" not found"), Some(details(Some(pod), "", "pods")));
    };
    let obj = objects[i].value();
    let names = |key: &str| -> Vec<String> {
        obj["spec"][key]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let containers = names("containers");
    let all: Vec<String> = containers.iter().cloned().chain(names("initContainers")).chain(names("ephemeralContainers")).collect();
    let container = match param("container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_owned(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return failure(
                400,
                "BadRequest",
                format!("a container name must be specified for pod {pod}, choose one of: [{}]", containers.join(" ")),
                None,
            );
        }
    };
    if !all.contains(&container) {
        return failure(400, "BadRequest", format!("container {container} is not valid for pod {pod}"), None);
    }
    // kube-apiserver validates PodLogOptions: 422 Invalid for a negative tail, a
    // non-positive byte limit or window.
    let number = |key: &str, min: i64| -> Result<Option<i64>, Response> {
        match param(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= min => Ok(Some(n)),
                _ => {
                    let rule = if min == 0 { "greater than or equal to 0" } else { "greater than 0" };
                    Err(failure(422, "Invalid", format!("PodLogOptions \"{pod}\" is invalid: {key}: Invalid value: {v}: must be {rule}"), None))
                }
            },
        }
    };
    let (tail, limit) = match (number("tailLines", 0), number("limitBytes", 1), number("sinceSeconds", 1)) {
        (Ok(t), Ok(l), Ok(_since)) => (t, l),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let previous = matches!(param("previous"), Some("true") | Some("1"));
    let text = match cluster.container_log(ns, pod, &container, previous) {
        Some(b) => b.clone(),
        None if previous => {
            return failure(
                400,
                "BadRequest",
                format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
                None,
            );
        }
        None => bytes::Bytes::new(),
    };
    // Fixture log lines carry no kubelet timestamps: every line counts as written at load
    // time, so any `sinceSeconds` keeps them all.
    let start = tail_start(&text, tail);
    let end = limit.map_or(text.len(), |l| text.len().min(start.saturating_add(l as usize)));
    ([(header::CONTENT_TYPE, "text/plain")], Body::from(text.slice(start..end))).into_response()
}

/// Where the last `n` lines of `text` start (0 for `None`), counting lines as the kubelet
/// does: a final newline ends the last line rather than starting an empty one.
fn tail_start(text: &[u8], n: Option<i64>) -> usize {
    let Some(n) = n else { return 0 };
    if n == 0 {
        return text.len();
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// The opaque `continue` token, shaped like kube-apiserver's own.
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    ns: String,
    name: String,
    /// Issued-at, seconds since the epoch; tokens older than the TTL are expired.
    iat: u64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn encode_continue(rv: u64, last: &StoredObject) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        ns: last.namespace.clone().unwrap_or_default(),
        name: last.name.clone(),
        iat: now_secs(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn gone(message: String) -> Response {
    failure(410, "Expired", message, None)
}

fn decode_continue(token: &str, cluster_rv: u64, ttl: Duration) -> Result<ContinueToken, Response> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| gone("the provided continue parameter is not valid (not a token this server issued); start a new list without it".into()))?;
    let token: ContinueToken = serde_json::from_slice(&raw)
        .map_err(|_| gone("the provided continue parameter is not valid (not a token this server issued); start a new list without it".into()))?;
    if token.v != "meta.k8s.io/v1" {
        return Err(gone(format!("the provided continue parameter has unknown version {:?}", token.v)));
    }
    let age = now_secs().saturating_sub(token.iat);
    if token.rv != cluster_rv || age > ttl.as_secs() {
        return Err(gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.".into()));
    }
    Ok(token)
}

fn list<'a>(
    state: &SimState,
    cluster: &Cluster,
    idx: usize,
    namespace: Option<&str>,
    param: &impl Fn(&str) -> Option<&'a str>,
    wants_table: bool,
) -> Response {
    let rt: &ResourceType = &cluster.types[idx];
    let labels = match LabelSelector::parse(param("labelSelector").unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return failure(400, "BadRequest", format!("unable to parse requirement: {e}"), None),
    };
    let fields = match FieldSelector::parse(param("fieldSelector").unwrap_or(""), &rt.plural) {
        Ok(s) => s,
        Err(e) => return failure(400, "BadRequest", e, None),
    };
    let limit = match param("limit").map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n as usize),
        Some(Ok(_)) => None, // limit=0 means "no limit", as in Kubernetes.
        Some(Err(_)) => return failure(400, "BadRequest", "limit must be an integer", None),
    };
    let objects = cluster.objects(idx);
    let (mut lo, hi) = match namespace {
        Some(ns) => (
            objects.partition_point(|o| o.sort_key().0 < ns),
            objects.partition_point(|o| o.sort_key().0 <= ns),
        ),
        None => (0, objects.len()),
    };
    if let Some(token) = param("continue").filter(|t| !t.is_empty()) {
        let token = match decode_continue(token, cluster.resource_version, state.continue_ttl) {
            Ok(t) => t,
            Err(resp) => return resp,
        };
        let after = (token.ns.as_str(), token.name.as_str());
        lo = lo.max(objects.partition_point(|o| o.sort_key() <= after));
    }
    let filtering = !labels.is_empty() || !fields.is_empty();
    let matches = |o: &StoredObject| {
        if !labels.matches(&o.labels) {
            return false;
        }
        if fields.is_empty() {
            return true;
        }
        if fields.metadata_only() {
            return fields.matches(|f| match f {
                "metadata.name" => o.name.clone(),
                _ => o.namespace.clone().unwrap_or_default(),
            });
        }
        let v = o.value();
        fields.matches(|f| field_value(&v, f))
    };
    let mut selected: Vec<&StoredObject> = Vec::new();
    let mut more = false;
    let mut last_pos = lo;
    for (pos, o) in objects[lo..hi].iter().enumerate() {
        if !matches(o) {
            continue;
        }
        if limit.is_some_and(|l| selected.len() >= l) {
            more = true;
            break;
        }
        selected.push(o);
        last_pos = lo + pos + 1;
    }
    let mut meta = json!({"resourceVersion": cluster.resource_version.to_string()});
    if more {
        let last = selected.last().expect("limit > 0 so something was selected");
        meta["continue"] = json!(encode_continue(cluster.resource_version, last));
        if !filtering {
            meta["remainingItemCount"] = json!(hi - last_pos);
        }
    }
    if wants_table {
        let values: Vec<Value> = selected.iter().map(|o| o.value()).collect();
        return json_response(&table::table(rt, &values, meta));
    }
    // Stream-assemble the list from the stored compact bytes: no re-serialization.
    let mut out = Vec::with_capacity(selected.iter().map(|o| 2048usize.max(match &o.body {
        super::cluster::Body::Json(b) => b.len(),
        super::cluster::Body::Synthetic(..) => 4096,
    })).sum::<usize>() + 256);
    out.extend_from_slice(
        format!(
            "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
            json!(rt.list_kind),
            json!(rt.api_version()),
            meta
        )
        .as_bytes(),
    );
    for (i, o) in selected.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&o.bytes());
    }
    out.extend_from_slice(b"]}");
    ([(header::CONTENT_TYPE, "application/json")], Body::from(out)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_count_lines_like_the_kubelet() {
        let tail = |t: &'static [u8], n| &t[tail_start(t, n)..];
        assert_eq!(tail(b"a\nb\nc\n", Some(2)), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", Some(2)), b"b\nc");
        assert_eq!(tail(b"a\nb\nc\n", Some(5)), b"a\nb\nc\n");
        assert_eq!(tail(b"a\nb\n", Some(0)), b"");
        assert_eq!(tail(b"a\nb\n", None), b"a\nb\n");
        assert_eq!(tail(b"", Some(3)), b"");
    }

    #[test]
    fn continue_tokens_expire_and_reject_garbage() {
        let obj = StoredObject {
            namespace: None,
            name: "a".into(),
            labels: Default::default(),
            resource_version: 1,
            body: super::super::cluster::Body::Json(bytes::Bytes::from_static(b"{}")),
        };
        let t = encode_continue(7, &obj);
        assert!(decode_continue(&t, 7, Duration::from_secs(60)).is_ok());
        // A different store resourceVersion means the snapshot the token points into is gone.
        assert_eq!(decode_continue(&t, 8, Duration::from_secs(60)).err().unwrap().status(), 410);
        assert_eq!(decode_continue("garbage!", 7, Duration::from_secs(60)).err().unwrap().status(), 410);
        let old = ContinueToken { v: "meta.k8s.io/v1".into(), rv: 7, ns: String::new(), name: "a".into(), iat: now_secs() - 3600 };
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&old).unwrap());
        assert_eq!(decode_continue(&old, 7, Duration::from_secs(60)).err().unwrap().status(), 410);
    }
}
