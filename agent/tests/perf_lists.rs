//! The paged-list host functions (`list_open`, `list_next`, `list_emit`, ABI.md §5.13) that
//! keep bulk JSON work out of guests: paging with limit/continue, projections, template
//! naming, managedFields stripped, the policy, argument checks; and the `pods` gatherer on a
//! cluster whose pod list would not fit its memory limit.

mod common;

use common::io_pod_rule;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use agent::archive::ArchiveWriter;
use agent::config::AgentConfig;
use agent::pdk::{Api, HostState};
use agent::policy::{BridgeError, ModulePolicy};
use agent::limits::Limits;
use hostapi::abi::list::{ALL_ITEMS, STRIP_MANAGED_FIELDS};
use hostapi::abi::status;
use hostapi::{Manifest, Request, Response};
use serde_json::{json, Value};

/// A fake API: `/api/v1/pods` is a list served in pages with `limit`/`continue` (the token is
/// the next index), `/api/v1/namespaces/default` is a single object, anything else is a 404.
struct PagedApi {
    items: Vec<Value>,
    seen: Mutex<Vec<String>>,
}

impl PagedApi {
    fn new(n: usize) -> Arc<Self> {
        let items = (0..n)
            .map(|i| {
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{i}"), "namespace": format!("ns-{}", i % 3),
                                 "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}], "uid": format!("u{i}")},
                    "status": {"phase": if i % 5 == 0 { "Pending" } else { "Running" },
                               "containerStatuses": [{"name": "a", "restartCount": i % 7}, {"name": "b", "restartCount": 0}]}
                })
            })
            .collect();
        Arc::new(PagedApi { items, seen: Mutex::new(Vec::new()) })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn ok(body: &Value) -> Response {
    Response { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: serde_json::to_vec(body).unwrap() }
}

impl Api for PagedApi {
    fn send(&self, _gatherer: &str, req: &Request, _cap: u64, _deadline: Instant) -> Result<Response, BridgeError> {
        self.seen.lock().unwrap().push(req.path.clone());
        let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
        let param = |k: &str| form_urlencoded::parse(query.as_bytes()).find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        match path {
            "/api/v1/pods" => {
                let start: usize = param("continue").map_or(0, |c| c.parse().unwrap());
                let limit: usize = param("limit").map_or(usize::MAX, |l| l.parse().unwrap());
                let end = self.items.len().min(start.saturating_add(limit));
                let mut meta = json!({"resourceVersion": "1"});
                if end < self.items.len() {
                    meta["continue"] = json!(end.to_string());
                }
                Ok(ok(&json!({"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": &self.items[start..end]})))
            }
            "/api/v1/namespaces/default" => Ok(ok(&json!({"kind": "Namespace", "metadata": {"name": "default"}}))),
            _ => Ok(Response {
                status: 404,
                headers: Vec::new(),
                body: br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not found","code":404}"#.to_vec(),
            }),
        }
    }
}

fn manifest(perms: &[&str]) -> Arc<Manifest> {
    let json = json!({"name": "t", "version": "1.0.0", "abi": 1, "permissions": perms});
    Arc::new(Manifest::parse(json.to_string().as_bytes()).unwrap())
}

struct Run {
    state: HostState,
    api: Arc<PagedApi>,
    archive: Arc<ArchiveWriter>,
    dir: tempfile::TempDir,
}

fn run(items: usize, perms: &[&str]) -> Run {
    run_with(PagedApi::new(items), perms)
}

fn run_with(api: Arc<PagedApi>, perms: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let archive = Arc::new(ArchiveWriter::create(dir.path(), time::OffsetDateTime::now_utc(), 1 << 30).unwrap());
    let state = HostState::new(manifest(perms), ModulePolicy::default(), api.clone(), archive.clone(), Vec::new(), Limits::default());
    Run { state, api, archive, dir }
}

impl Run {
    /// Finishes the archive and returns its records (without gathers.json).
    fn records(self) -> Vec<(String, Vec<u8>)> {
        drop(self.state);
        let writer = Arc::try_unwrap(self.archive).ok().unwrap();
        let path = writer.finish(&Default::default()).unwrap();
        let mut entries = agent::archive::read_entries(&path).unwrap();
        entries.pop();
        drop(self.dir);
        entries
    }
}

fn rows(state: &mut HostState, h: i32) -> Vec<Value> {
    let (code, body) = state.response_body(h).unwrap();
    assert_eq!(code, 200);
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn lists_page_with_limit_and_continue_and_show_only_projections() {
    let Run { mut state, api, .. } = run(1200, &["GET /api/v1/pods"]);
    let h = state.list_open("/api/v1/pods", "/metadata/name\n/status/containerStatuses/*/restartCount\n/nope", STRIP_MANAGED_FIELDS);
    assert!(h > 0, "{h}");
    assert_eq!(state.response_status(h), 200);
    assert_eq!(state.response_header(h, "content-type").as_deref(), Ok("application/json"));
    let first = rows(&mut state, h);
    assert_eq!(first.len(), 500);
    assert_eq!(first[13], json!(["pod-13", [6, 0], null]));
    assert_eq!(state.list_next(h), 200);
    assert_eq!(rows(&mut state, h)[0], json!(["pod-500", [3, 0], null]));
    assert_eq!(state.list_next(h), 200);
    assert_eq!(rows(&mut state, h).len(), 200);
    assert_eq!(state.list_next(h), 0, "complete");
    assert_eq!(state.list_next(h), 0, "and stays complete");
    assert_eq!(api.seen(), ["/api/v1/pods?limit=500", "/api/v1/pods?limit=500&continue=500", "/api/v1/pods?limit=500&continue=1000"]);
    assert_eq!(state.report.requests, 3);
    assert_eq!(state.response_close(h), status::OK);
    assert_eq!(state.list_next(h), status::BAD_HANDLE);
}

#[test]
fn emitted_items_are_named_by_template_without_managed_fields() {
    let mut r = run(1200, &["GET /api/v1/pods"]);
    let h = r.state.list_open("/api/v1/pods", "", STRIP_MANAGED_FIELDS);
    let mut emitted = 0;
    loop {
        emitted += r.state.list_emit(h, ALL_ITEMS, "config/pod/{namespace}/{name}.json");
        if r.state.list_next(h) == 0 {
            break;
        }
    }
    assert_eq!(emitted, 1200);
    assert_eq!((r.state.report.records, r.state.report.requests), (1200, 3));
    let items = r.api.items.clone();
    let records = r.records();
    assert_eq!(records.len(), 1200);
    for ((name, bytes), item) in records.iter().zip(&items) {
        assert_eq!(name, &format!("config/pod/{}/{}.json", item["metadata"]["namespace"].as_str().unwrap(), item["metadata"]["name"].as_str().unwrap()));
        let mut want = item.clone();
        want["metadata"].as_object_mut().unwrap().remove("managedFields");
        assert_eq!(bytes, &serde_json::to_vec(&want).unwrap(), "{name}: the item as sent, minus managedFields");
    }
}

#[test]
fn single_items_keep_managed_fields_without_the_flag_and_refuse_duplicates() {
    let mut r = run(3, &["GET /api/v1/pods"]);
    let h = r.state.list_open("/api/v1/pods", "/metadata/name", 0);
    assert_eq!(r.state.list_emit(h, 2, "test/{name}.json"), status::OK);
    assert_eq!(r.state.list_emit(h, 2, "test/{name}.json"), status::DUPLICATE);
    assert_eq!(r.state.list_emit(h, 3, "test/{name}.json"), status::BAD_ARGUMENT, "past the page");
    assert_eq!(r.state.list_emit(h, -2, "test/{name}.json"), status::BAD_ARGUMENT);
    let items = r.api.items.clone();
    let records = r.records();
    assert_eq!(records, [("test/pod-2.json".to_owned(), serde_json::to_vec(&items[2]).unwrap())]);
}

#[test]
fn bad_templates_are_bad_arguments_and_bad_names_are_bad_names() {
    let mut r = run(5, &["GET /api/v1/pods"]);
    let h = r.state.list_open("/api/v1/pods", "", STRIP_MANAGED_FIELDS);
    for bad in ["", "config/{uid}.json", "config/{name", "config/name}.json", "config/{{name}}"] {
        assert_eq!(r.state.list_emit(h, 0, bad), status::BAD_ARGUMENT, "{bad:?}");
    }
    assert_eq!(r.state.list_emit(h, 0, "config/../{name}"), status::BAD_NAME);
    assert_eq!(r.state.list_emit(h, 0, "insights-operator/{name}"), status::BAD_NAME);
    assert_eq!(r.state.list_emit(h, ALL_ITEMS, "/abs/{name}"), 0, "every item refused, none accepted");
    assert_eq!(r.state.list_emit(h, 0, "config/{namespace}/{name}.json"), status::OK);
    assert!(r.state.report.errors.iter().any(|e| e.contains("config/../pod-0")), "{:?}", r.state.report.errors);
    assert_eq!(r.records().len(), 1);

    // A cluster-scoped item has no namespace to fill `{namespace}` with.
    let api = Arc::new(PagedApi { items: vec![json!({"kind": "Node", "metadata": {"name": "n1"}})], seen: Mutex::new(Vec::new()) });
    let mut r = run_with(api, &["GET /api/v1/pods"]);
    let h = r.state.list_open("/api/v1/pods", "", STRIP_MANAGED_FIELDS);
    assert_eq!(r.state.list_emit(h, 0, "config/{namespace}/{name}.json"), status::BAD_NAME);
    assert!(r.state.report.errors.iter().any(|e| e.contains("metadata.namespace")), "{:?}", r.state.report.errors);
    assert_eq!(r.state.list_emit(h, 0, "config/node/{name}.json"), status::OK);
}

#[test]
fn the_policy_applies_to_every_page_as_to_request() {
    // Undeclared: answered locally with 403, the API is never called, nothing can be emitted.
    let Run { mut state, api, .. } = run(10, &["GET /api/v1/nodes"]);
    let h = state.list_open("/api/v1/pods", "/metadata/name", STRIP_MANAGED_FIELDS);
    assert!(h > 0);
    assert_eq!(state.response_status(h), 403);
    assert_eq!(state.response_header(h, "x-gather-policy").as_deref(), Ok("denied"));
    let (_, body) = state.response_body(h).unwrap();
    assert!(String::from_utf8(body).unwrap().contains("not among the module's declared permissions"));
    assert_eq!(state.list_emit(h, ALL_ITEMS, "x/{name}"), status::BAD_ARGUMENT, "a denied page has no items");
    assert_eq!(state.list_next(h), 0);
    assert!(api.seen().is_empty());
    assert_eq!((state.report.requests, state.report.policy_denials), (1, 1));
    assert!(state.report.warnings[0].starts_with("policy: GET /api/v1/pods?limit=500 denied (403)"), "{:?}", state.report.warnings);

    // Secrets stay denied even when declared.
    let Run { mut state, api, .. } = run(10, &["GET /api/v1/secrets"]);
    let h = state.list_open("/api/v1/secrets", "", STRIP_MANAGED_FIELDS);
    assert_eq!(state.response_status(h), 403);
    assert!(api.seen().is_empty());
}

#[test]
fn api_statuses_and_non_lists_reach_the_guest() {
    let Run { mut state, .. } = run(10, &["GET /api/v1/pods", "GET /api/v1/nodes", "GET /api/v1/namespaces/default"]);
    let h = state.list_open("/api/v1/nodes", "", 0);
    assert_eq!(state.response_status(h), 404, "the API's own status");
    let (_, body) = state.response_body(h).unwrap();
    assert!(String::from_utf8(body).unwrap().contains("not found"), "and its Status body");
    assert_eq!(state.list_next(h), 0);
    assert_eq!(state.list_open("/api/v1/namespaces/default", "", 0), status::BAD_ARGUMENT, "a 200 that is not a list");
    assert!(state.report.errors.iter().any(|e| e.contains("not a list")), "{:?}", state.report.errors);
}

#[test]
fn arguments_and_handles_are_checked() {
    let Run { mut state, api, .. } = run(10, &["GET /api/v1/pods", "GET /api/v1/namespaces/default"]);
    assert_eq!(state.list_open("/api/v1/pods", "", 4), status::BAD_ARGUMENT, "unknown flag");
    assert_eq!(state.list_open("/api/v1/pods?limit=5", "", 0), status::BAD_ARGUMENT, "the host owns limit");
    assert_eq!(state.list_open("/api/v1/pods?continue=x", "", 0), status::BAD_ARGUMENT, "and continue");
    assert_eq!(state.list_open("", "", 0), status::BAD_ARGUMENT);
    assert_eq!(state.list_open("/api/v1/pods", "metadata/name", 0), status::BAD_ARGUMENT, "fields are JSON Pointers");
    assert_eq!(state.list_open("/api/v1/pods", &"/a\n".repeat(33), 0), status::BAD_ARGUMENT, "at most 32 fields");
    assert!(api.seen().is_empty(), "refused before any request");
    let r = state.request(Request::get("/api/v1/namespaces/default"));
    assert!(r > 0);
    assert_eq!(state.list_next(r), status::BAD_HANDLE, "a plain response is not a list");
    assert_eq!(state.list_emit(r, 0, "x"), status::BAD_HANDLE);
    assert_eq!(state.list_emit(999, 0, "x"), status::BAD_HANDLE);
    // Lists and responses share the 16 open handles.
    let lists: Vec<i32> = (0..15).map(|_| state.list_open("/api/v1/pods", "", 0)).collect();
    assert!(lists.iter().all(|h| *h > 0));
    assert_eq!(state.list_open("/api/v1/pods", "", 0), status::LIMIT);
    assert_eq!(state.response_close(lists[0]), status::OK);
    assert!(state.list_open("/api/v1/pods", "", 0) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_without_the_sdk_sees_the_documented_statuses() {
    let sim = common::start_sample().await;
    let (result, _work) = common::period(&sim, &[common::wat("guests/lists.wat")], AgentConfig::default()).await;
    let r = &result.metadata.status_reports[0];
    assert_eq!((r.exit_code, r.error_kind.as_deref()), (Some(0), None), "every check inside the guest passed: {r:?}");
    let nodes = common::fixture_names("Node");
    assert_eq!(r.records_count as usize, nodes.len());
    let records = common::records(&result.archive);
    for n in nodes {
        let got: Value = serde_json::from_slice(&records[&format!("config/node/{n}.json")]).unwrap();
        assert!(got["metadata"].get("managedFields").is_none());
        assert_eq!(got["metadata"]["name"], n.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_gathered_when_the_list_would_not_fit_the_guest_memory() {
    const MEMORY: usize = 2 * 1024 * 1024;
    let sim = common::start(gather_sim::SimConfig { scale: 200, ..gather_sim::SimConfig::with_fixtures(common::sample_dir()) }).await;
    let cluster = sim.cluster();
    let pods = cluster.objects(cluster.type_index("", "v1", "pods").unwrap());
    let list_bytes: usize = pods.iter().map(|p| p.bytes().len()).sum();
    assert!(pods.len() > 2000 && list_bytes > 4 * MEMORY, "{} pods, {list_bytes} bytes: the list alone is over the limit", pods.len());
    let want: std::collections::BTreeSet<String> = pods
        .iter()
        .map(|p| p.value())
        .filter(io_pod_rule)
        .map(|p| format!("config/pod/{}/{}.json", p["metadata"]["namespace"].as_str().unwrap(), p["metadata"]["name"].as_str().unwrap()))
        .collect();

    let modules: Vec<_> = common::built_gatherers().into_iter().filter(|(n, _)| n == "pods.wasm" || n == "nodes.wasm").collect();
    let cfg: AgentConfig = serde_json::from_value(json!({
        "archiveMaxBytes": 1u64 << 30,
        "limits": {"memoryBytes": MEMORY},
    }))
    .unwrap();
    let (result, _work) = common::period(&sim, &modules, cfg).await;
    for r in &result.metadata.status_reports {
        assert_eq!((r.error_kind.as_deref(), &r.errors), (None, &None), "{r:?}");
    }
    let records = common::records(&result.archive);
    let got: std::collections::BTreeSet<String> = records.keys().filter(|k| k.starts_with("config/pod/")).cloned().collect();
    assert!(want.len() > 20, "{} pods need attention", want.len());
    assert_eq!(got, want);
    let nodes = records.keys().filter(|k| k.starts_with("config/node/")).count();
    assert_eq!(nodes, cluster.objects(cluster.type_index("", "v1", "nodes").unwrap()).len());
    let pods_report = result.metadata.status_reports.iter().find(|r| r.name == "pods").unwrap();
    assert!(pods_report.requests as usize >= pods.len() / 500, "paged: {} requests", pods_report.requests);
}
