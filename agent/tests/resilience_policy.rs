//! The policy's part of the resilience suite: each way a guest reached Secrets, a watch or a
//! page larger than the host's in issue 11, replayed by a real guest against the simulator,
//! now refused before the API server sees it; and the same declarations refused at activation,
//! on the update path and on the local modules-directory path. Run it alone with
//! `cargo test -p agent --test resilience_policy`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agent::archive::StatusReport;
use agent::config::AgentConfig;
use agent::gather::{ModuleSpec, PeriodOptions, PeriodResult};
use agent::sandbox::{LoadError, Sandbox};
use gather_sim::{SimConfig, SimHandle};
use agent::state::StateDir;
use agent::update::{Ctx, IndexSettings, IndexSource, PollOutcome};

const IMPORTS: &str = r#"
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_read" (func $read (param i32 i32 i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (import "gather" "list_open" (func $list_open (param i32 i32 i32 i32 i32) (result i32)))"#;

fn wat_string(s: &str) -> String {
    s.bytes().map(|b| format!("\\{b:02x}")).collect()
}

/// A guest named `name`, declaring `permissions`, that sends `GET` for each of `paths` (with
/// `request`, or `list_open` when `list`) and records what came back as `out/NN`: the body, or
/// `refused` when the call returned a negative status.
fn guest(name: &str, permissions: &[&str], paths: &[&str], list: bool) -> (String, Vec<u8>) {
    let manifest = serde_json::json!({"name": name, "version": "1.0.0", "abi": 1, "permissions": permissions}).to_string();
    // Layout: "GET" at 0, "refused" at 8, "out/NN" at 16, paths from 1024 (one per 512 bytes),
    // response bodies at 65536.
    let mut data = String::from(r#"(data (i32.const 0) "GET") (data (i32.const 8) "refused") (data (i32.const 16) "out/00")"#);
    let mut calls = String::new();
    for (i, p) in paths.iter().enumerate() {
        assert!(p.len() < 512 && i < 100);
        let at = 1024 + 512 * i;
        data += &format!(r#" (data (i32.const {at}) "{}")"#, wat_string(p));
        let open = if list {
            format!("(call $list_open (i32.const {at}) (i32.const {}) (i32.const 0) (i32.const 0) (i32.const 0))", p.len())
        } else {
            format!("(call $request (i32.const 0) (i32.const 3) (i32.const {at}) (i32.const {}) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))", p.len())
        };
        calls += &format!(
            r#"
            (i32.store8 (i32.const 20) (i32.const {tens})) (i32.store8 (i32.const 21) (i32.const {ones}))
            (local.set $h {open})
            (if (i32.lt_s (local.get $h) (i32.const 0))
              (then (drop (call $record (i32.const 16) (i32.const 6) (i32.const 8) (i32.const 7))))
              (else
                (local.set $n (call $read (local.get $h) (i32.const 65536) (i32.const 1000000)))
                (drop (call $record (i32.const 16) (i32.const 6) (i32.const 65536) (local.get $n)))))"#,
            tens = 48 + i / 10,
            ones = 48 + i % 10,
        );
    }
    let src = format!(
        r#"(module {IMPORTS}
             (memory (export "memory") 17)
             (func (export "gather_abi_version_1"))
             {data}
             (func (export "gather") (result i32) (local $h i32) (local $n i32)
               {calls}
               (i32.const 0))
             (@custom "gather.manifest" "{}"))"#,
        wat_string(&manifest)
    );
    (format!("{name}.wasm"), wat::parse_str(&src).unwrap_or_else(|e| panic!("{name}: {e}\n{src}")))
}

/// How many requests the policy denied, from the report's `policy:` warnings.
fn denials(r: &StatusReport) -> usize {
    r.warnings.iter().flatten().filter(|w| w.starts_with("policy:")).count()
}

fn report<'a>(reports: &'a [StatusReport], name: &str) -> &'a StatusReport {
    reports.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no report for {name}: {reports:#?}"))
}

/// Runs one period of `modules` against `sim` *without* the activation check, as if an older
/// host had activated them: the request-time policy must hold on its own.
async fn period_unchecked(sim: &SimHandle, modules: &[(String, Vec<u8>)], config: &AgentConfig) -> (PeriodResult, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let kc = work.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let client = agent::kubeclient::from_kubeconfig(&kc).await.unwrap();
    let sandbox = Arc::new(Sandbox::new());
    let specs = modules
        .iter()
        .map(|(_, bytes)| {
            let module = sandbox.load(bytes).unwrap();
            let settings = config.module(&module.manifest.name);
            let limits = config.limits_for(&module.manifest.name).unwrap();
            ModuleSpec { module, limits, policy: settings.policy, config: Vec::new() }
        })
        .collect();
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let out = work.path().join("out");
    let result = agent::gather::run_period(sandbox, api, specs, Vec::new(), &PeriodOptions::new(&out)).await.unwrap();
    (result, work)
}

/// Every path the issue saw reach Secrets or stream, each declared so only the new rules can
/// stop it. With the old string matching, each of these was forwarded to the API server.
const SECRET_PATHS: &[(&str, &str)] = &[
    ("/api/v1/watch/secrets", "watches are refused"),
    ("/api/v1/watch/namespaces/openshift-config/secrets", "watches are refused"),
    ("/api/v1/watch/namespaces/openshift-config/secrets/pull-secret", "watches are refused"),
    ("/apis/image.openshift.io/v1/namespaces/openshift/imagestreams/cli/secrets", "secrets are never read"),
    ("/api/v1/namespaces/default/serviceaccounts/default/token", "secrets are never read"),
    ("/api/v1/pods?watch=true", "watches are refused"),
    ("/api/v1/pods?watch=1", "watches are refused"),
    ("/api/v1/pods?WATCH=yes", "watches are refused"),
    ("/api/v1/pods?x=1#", "'#' is not allowed"),
    ("/api/v1/nodes/master-0/proxy/metrics", "proxy subresource"),
    ("/api/v1/proxy/nodes/master-0/metrics", "proxy subresource"),
];

const WIDE: &[&str] = &[
    "GET /api/v1/*/*",
    "GET /api/v1/*/*/*",
    "GET /api/v1/*/*/*/*",
    "GET /api/v1/watch/namespaces/*/secrets",
    "GET /api/v1/watch/namespaces/*/secrets/*",
    "GET /apis/image.openshift.io/v1/namespaces/*/imagestreams/*/secrets",
    "GET /api/v1/namespaces/*/serviceaccounts/*/token",
    "GET /api/v1/nodes/*/proxy/*",
    "GET /api/v1/pods",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_watch_and_proxy_paths_never_reach_the_api() {
    let sim = common::start_sample().await;
    let paths: Vec<&str> = SECRET_PATHS.iter().map(|(p, _)| *p).collect();
    let attacker = guest("wide", WIDE, &paths, false);
    let before = sim.request_count();
    let (result, _work) = period_unchecked(&sim, &[attacker], &AgentConfig::default()).await;
    assert_eq!(sim.request_count(), before, "no denied request reached the API server");
    let r = report(&result.metadata.status_reports, "wide");
    assert_eq!((r.requests, denials(r)), (paths.len() as u64, paths.len()), "{r:?}");
    let warnings = r.warnings.clone().unwrap_or_default();
    for (path, why) in SECRET_PATHS {
        assert!(warnings.iter().any(|w| w.contains(path) && w.contains(why)), "{path}: {why}: {warnings:#?}");
    }
    // The guest saw each denial as a 403 Status, never as data.
    let records = common::records(&result.archive);
    for i in 0..paths.len() {
        let body: serde_json::Value = serde_json::from_slice(&records[&format!("out/{i:02}")]).unwrap();
        assert_eq!((body["kind"].as_str(), body["code"].as_u64()), (Some("Status"), Some(403)), "{}", paths[i]);
    }

    // The harness does reach the API for an allowed path, so the count above means something.
    let control = guest("control", &["GET /api/v1/pods"], &["/api/v1/pods"], false);
    let (result, _work) = period_unchecked(&sim, &[control], &AgentConfig::default()).await;
    assert_eq!(denials(report(&result.metadata.status_reports, "control")), 0);
    assert!(sim.request_count() > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_secrets_still_never_streams() {
    let sim = common::start_sample().await;
    let cfg: AgentConfig = serde_json::from_str(r#"{"modules": {"wide": {"policy": {"allowSecrets": true, "allowSubresources": ["proxy", "token"]}}}}"#).unwrap();
    let paths = ["/api/v1/watch/secrets", "/api/v1/secrets?watch=true", "/api/v1/secrets?x=1#"];
    let attacker = guest("wide", &["GET /api/v1/*/*", "GET /api/v1/secrets"], &paths, false);
    let before = sim.request_count();
    let (result, _work) = period_unchecked(&sim, &[attacker], &cfg).await;
    assert_eq!(sim.request_count(), before);
    assert_eq!(denials(report(&result.metadata.status_reports, "wide")), 3);
}

/// The declarations of the attacks above, each alone in a module.
const REFUSED_DECLARATIONS: &[&str] = &[
    "GET /api/v1/*/*",
    "GET /api/v1/*",
    "GET /api/v1/watch/secrets",
    "GET /api/v1/watch/namespaces/*/secrets",
    "GET /apis/image.openshift.io/v1/namespaces/*/imagestreams/*/secrets",
    "GET /api/v1/namespaces/*/serviceaccounts/*/token",
    "GET /api/v1/nodes/*/proxy",
    "GET /api/v1/namespaces/*/pods/*/exec",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_refuses_declarations_that_could_reach_secrets_on_the_gather_path() {
    let sim = common::start_sample().await;
    let mut modules: Vec<(String, Vec<u8>)> =
        REFUSED_DECLARATIONS.iter().enumerate().map(|(i, p)| guest(&format!("decl{i}"), &[p], &[], false)).collect();
    modules.push(guest("fine", &["GET /api/v1/namespaces/*/pods/*/log", "GET /api/v1/nodes"], &[], false));
    let (result, _work) = common::period(&sim, &modules, AgentConfig::default()).await;
    for (i, p) in REFUSED_DECLARATIONS.iter().enumerate() {
        let r = report(&result.metadata.status_reports, &format!("decl{i}"));
        assert_eq!(r.error_kind.as_deref(), Some("load"), "{p}: {r:?}");
        let errors = r.errors.clone().unwrap_or_default();
        assert!(errors.iter().any(|e| e.contains("policy:") && e.contains(p)), "{p}: {errors:?}");
    }
    assert_eq!(report(&result.metadata.status_reports, "fine").error_kind, None);
}

/// Serves `/index.json` and one module, like a publisher's static site.
async fn site(index: Vec<u8>, sha: String, module: Vec<u8>) -> String {
    let app = axum::Router::new()
        .route("/index.json", axum::routing::get(move || async move { index }))
        .route(&format!("/{sha}.wasm"), axum::routing::get(move || async move { module }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/index.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_refuses_declarations_that_could_reach_secrets_on_the_update_path() {
    for perm in REFUSED_DECLARATIONS {
        let (_, module) = guest("hello", &[perm], &[], false);
        let sha = agent::util::sha256_hex(&module);
        let index = serde_json::json!({
            "apiVersion": "gather-agent.io/v1", "serial": 1, "published": "2026-01-01T00:00:00Z",
            "gatherers": [{"name": "hello", "version": "1.0.0", "sha256": sha, "size": module.len(),
                           "url": format!("{sha}.wasm"), "permissions": [perm]}]
        });
        let url = site(serde_json::to_vec(&index).unwrap(), sha, module).await;
        let dir = tempfile::tempdir().unwrap();
        let ctx = Ctx::new(
            Arc::new(Sandbox::new()),
            Arc::new(StateDir::open(&dir.path().join("state")).unwrap()),
            AgentConfig::default(),
        );
        let mut source = IndexSource::new(IndexSettings {
            url: url.parse().unwrap(),
            public_key: None,
            max_module_bytes: 1024 * 1024,
            timeout: Duration::from_secs(5),
        });
        match source.poll(&ctx).await {
            PollOutcome::Refused(r) => assert!(r.reason == agent::errors::RefusalReason::Policy && r.detail.contains(perm), "{perm}: {r}"),
            other => panic!("{perm}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_open_cannot_override_the_host_page_size() {
    // 1,040 synthetic pods plus the sample's: more than two host pages.
    let sim = common::start(SimConfig { scale: 104, ..SimConfig::with_fixtures(common::sample_dir()) }).await;
    let hostile = ["/api/v1/pods?x=1#", "/api/v1/pods#", "/api/v1/pods?%6cimit=5000", "/api/v1/pods?a=1;limit=5000", "/api/v1/pods?limit"];
    let mut paths = hostile.to_vec();
    paths.push("/api/v1/pods");
    let lister = guest("lister", &["GET /api/v1/pods"], &paths, true);
    let before = sim.request_count();
    let (result, _work) = common::period(&sim, &[lister], AgentConfig::default()).await;
    let records = common::records(&result.archive);
    for (i, p) in hostile.iter().enumerate() {
        assert_eq!(records[&format!("out/{i:02}")], b"refused", "{p} is refused with BAD_ARGUMENT");
    }
    // Only the honest list reached the API, and its first page is the host's size.
    assert_eq!(sim.request_count(), before + 1);
    let page: Vec<serde_json::Value> = serde_json::from_slice(&records[&format!("out/{:02}", hostile.len())]).unwrap();
    assert_eq!(page.len() as u64, u64::from(hostapi::abi::list::PAGE_SIZE));
}

/// A module with `sections` as its `gather.manifest` custom sections.
fn with_sections(sections: &[&str]) -> Vec<u8> {
    let customs: String = sections.iter().map(|m| format!(r#"(@custom "gather.manifest" "{}")"#, wat_string(m))).collect();
    let src = format!(
        r#"(module (memory (export "memory") 1) (func (export "gather_abi_version_1"))
             (func (export "gather") (result i32) (i32.const 0)) {customs})"#
    );
    wat::parse_str(&src).unwrap()
}

#[test]
fn two_manifest_sections_are_refused() {
    let a = r#"{"name":"a","version":"1","abi":1,"permissions":["GET /api/v1/nodes"]}"#;
    let b = r#"{"name":"a","version":"1","abi":1,"permissions":["GET /api/v1/secrets"]}"#;
    let sandbox = Sandbox::new();
    assert!(sandbox.load(&with_sections(&[a])).is_ok());
    match sandbox.load(&with_sections(&[a, b])) {
        Err(LoadError::BadManifest(e)) => assert!(e.contains("more than one"), "{e}"),
        other => panic!("expected a refusal, got {:?}", other.map(|m| m.manifest.clone())),
    }
}

#[test]
fn permissions_that_can_never_match_are_refused_at_load() {
    let sandbox = Sandbox::new();
    for perm in ["GET  /api/v1/nodes", "GET /api/v1/./nodes", "GET /api/v1/%6eodes", "GET /api/v1/nodes#", "GET /api\\v1/nodes", "GET /api/v1/nodes;x", "GET /"] {
        let m = serde_json::json!({"name": "a", "version": "1", "abi": 1, "permissions": [perm]}).to_string();
        match sandbox.load(&with_sections(&[&m])) {
            Err(LoadError::BadManifest(e)) => assert!(e.contains("permission"), "{perm}: {e}"),
            other => panic!("{perm}: expected a refusal, got {:?}", other.map(|m| m.manifest.clone())),
        }
    }
}
