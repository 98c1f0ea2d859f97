//! The one shared test harness of the workspace (a dev-dependency of every crate's tests):
//! the sample fixture cluster on the simulator, a raw HTTPS client, WAT guests, one period,
//! and a periodic agent running in the test's runtime.
//!
//! [`planted`] builds a fixture cluster with planted sensitive values, for privacy tests.
//!
//! Test files that still say `mod common;` get all of this through `tests/common/mod.rs`,
//! which re-exports this crate.

use std::path::PathBuf;

pub mod prom;

pub use gather_sim as sim;

pub mod planted;
use gather_sim::{SimConfig, SimHandle};

/// `testdata/cluster/sample` in the source tree.
pub fn sample_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/cluster/sample"))
}

/// Starts the simulator on the sample cluster on a free loopback port.
pub async fn start_sample() -> SimHandle {
    start(SimConfig::with_fixtures(sample_dir())).await
}

/// Starts the simulator with `config` (listening on 127.0.0.1:0 unless it says otherwise).
pub async fn start(config: SimConfig) -> SimHandle {
    sim::start(config).await.expect("simulator starts")
}

/// A reqwest client that trusts the simulator's CA (and only it).
pub fn https_client(sim: &SimHandle) -> reqwest::Client {
    agent::tls::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).expect("CA parses");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client builds")
}

/// GET `path` with the simulator's token; returns status, headers and the JSON body.
pub async fn get_json(sim: &SimHandle, path: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let resp = https_client(sim)
        .get(format!("{}{path}", sim.url))
        .bearer_auth(&sim.token)
        .send()
        .await
        .expect("request succeeds");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.expect("body is JSON");
    (status, headers, body)
}

/// Names of every fixture object of `kind` (read straight from the fixture files).
pub fn fixture_names(kind: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, kind: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, kind, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                if v["kind"] == kind {
                    let ns = v["metadata"]["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
                    out.push(format!("{ns}{}", v["metadata"]["name"].as_str().unwrap()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&sample_dir(), kind, &mut out);
    out.sort();
    out
}

/// The wasm gatherers built by `cargo xtask gatherers` (which `cargo xtask test` runs first).
pub fn built_gatherers() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/gatherers"));
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|_| panic!("{} is missing: run `cargo xtask gatherers` (or `cargo xtask test`)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= 6, "expected the six default gatherers in {}; run `cargo xtask gatherers`", dir.display());
    out
}

/// Compiles a WAT file under testdata/ (for example `guests/loop.wat`).
pub fn wat(rel: &str) -> (String, Vec<u8>) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata")).join(rel);
    let bytes = wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_stem().unwrap().to_string_lossy().into_owned() + ".wasm";
    (name, bytes)
}

/// Runs one period of `modules` against `sim`; returns the result and the output dir.
pub async fn period(
    sim: &SimHandle,
    modules: &[(String, Vec<u8>)],
    config: agent::config::AgentConfig,
) -> (agent::gather::PeriodResult, tempfile::TempDir) {
    use std::sync::Arc;
    let work = tempfile::tempdir().unwrap();
    let mdir = work.path().join("modules");
    std::fs::create_dir_all(&mdir).unwrap();
    for (name, bytes) in modules {
        std::fs::write(mdir.join(name), bytes).unwrap();
    }
    let kc = work.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let client = agent::kubeclient::from_kubeconfig(&kc).await.unwrap();
    let sandbox = Arc::new(agent::sandbox::Sandbox::new());
    let (specs, failures) = agent::gather::load_modules_dir(&sandbox, &mdir, &config).unwrap();
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let out = work.path().join("out");
    let mut opts = agent::gather::PeriodOptions::new(&out);
    opts.obfuscate_networking = config.obfuscates_networking();
    let result = agent::gather::run_period(sandbox, api, specs, failures, &opts)
        .await
        .expect("an archive is written");
    (result, work)
}

/// The records of an archive as name → bytes.
pub fn records(archive: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    agent::archive::read_entries(archive).unwrap().into_iter().collect()
}

/// The fixture object of `kind` (or `Kind.group`, when kinds repeat across groups) named
/// `ns/name` (or `name`), parsed.
pub fn fixture(kind: &str, key: &str) -> serde_json::Value {
    let (kind, group) = kind.split_once('.').map_or((kind, None), |(k, g)| (k, Some(g)));
    walk(&sample_dir(), kind, group, key).unwrap_or_else(|| panic!("no fixture {kind} {key}"))
}

fn walk(dir: &std::path::Path, kind: &str, group: Option<&str>, key: &str) -> Option<serde_json::Value> {
    {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if let Some(v) = walk(&p, kind, group, key) {
                    return Some(v);
                }
            } else if p.extension().is_some_and(|x| x == "json") {
                let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                let ns = v["metadata"]["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
                let group_ok = group.is_none_or(|g| v["apiVersion"].as_str().is_some_and(|av| av.starts_with(&format!("{g}/"))));
                if v["kind"] == kind && group_ok && format!("{ns}{}", v["metadata"]["name"].as_str().unwrap()) == key {
                    return Some(v);
                }
            }
        }
        None
    }
}

/// A WAT gatherer named `name` at `version` that records `config/<name>.txt` = `text`.
pub fn hello(name: &str, version: &str, text: &str) -> Vec<u8> {
    let rec = format!("config/{name}.txt");
    let manifest = format!(r#"{{\"name\":\"{name}\",\"version\":\"{version}\",\"abi\":1,\"permissions\":[]}}"#);
    wat::parse_str(format!(
        r#"(module
             (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0) "{rec}")
             (data (i32.const 256) "{text}")
             (func (export "gather_abi_version_1"))
             (func (export "gather") (result i32)
               (drop (call $record (i32.const 0) (i32.const {}) (i32.const 256) (i32.const {})))
               (i32.const 0))
             (@custom "gather.manifest" "{manifest}"))"#,
        rec.len(),
        text.len()
    ))
    .unwrap()
}

/// A periodic agent running in the test's runtime.
pub struct Running {
    tx: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Its status board.
    pub status: agent::status::StatusBoard,
    /// Where its endpoints listen, when enabled.
    pub endpoints: Option<std::net::SocketAddr>,
}

/// Starts `cfg` as an agent talking to `sim` (kubeconfig written into `work`).
pub async fn start_agent(sim: &SimHandle, work: &std::path::Path, cfg: agent::run::RunConfig) -> Running {
    use std::sync::Arc;
    let agent = agent::run::Agent::new(cfg).expect("agent starts");
    let endpoints = agent.endpoints_addr();
    let status = agent.status();
    let kc = work.join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let client = agent::kubeclient::from_kubeconfig(&kc).await.unwrap();
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()).cancelled_by(agent.cancel_signal()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(api, rx));
    Running { tx, task, status, endpoints }
}

impl Running {
    /// Asks the agent to stop and waits for it.
    pub async fn stop(self) {
        let _ = self.tx.send(true);
        tokio::time::timeout(std::time::Duration::from_secs(30), self.task).await.expect("the agent stops").unwrap();
    }

    /// Waits (generously; this bounds a hang, it is not a timing assertion) for `cond`.
    pub async fn until(&self, what: &str, cond: impl Fn(&agent::status::Status) -> bool) -> agent::status::Status {
        for _ in 0..600 {
            let s = self.status.get();
            if cond(&s) {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}; status: {:#?}", self.status.get());
    }
}

// ---------- hand-written guests ----------

/// The host functions a hand-written WAT guest may call, imported under their usual names.
pub const IMPORTS: &str = r#"
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "gather" "config" (func $config (param i32 i32) (result i32)))
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_header" (func $header (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_read" (func $read (param i32 i32 i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))"#;

/// Writes `$n` as five decimal digits at `$at` (for generated record names).
pub const DIGITS: &str = r#"
  (func $digits (param $n i32) (param $at i32) (local $i i32)
    (local.set $i (i32.const 4))
    (loop $d
      (i32.store8 (i32.add (local.get $at) (local.get $i)) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $d (i32.ge_s (local.tee $i (i32.sub (local.get $i) (i32.const 1))) (i32.const 0)))))"#;

/// A WAT guest `name` (version 1.0.0, allowed `GET /api/v1/nodes`) whose module holds [`IMPORTS`],
/// one page of memory, [`DIGITS`] and `body`; returns its file name and bytes.
pub fn guest(name: &str, body: &str) -> (String, Vec<u8>) {
    let manifest = format!(r#"{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[\"GET /api/v1/nodes\"]}}"#);
    let src = format!(
        r#"(module {IMPORTS}
             (memory (export "memory") 1)
             {DIGITS}
             (func (export "gather_abi_version_1"))
             {body}
             (@custom "gather.manifest" "{manifest}"))"#
    );
    (format!("{name}.wasm"), wat::parse_str(&src).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// A guest that writes records forever, ignoring every status: only a deadline stops it.
pub fn records_forever() -> (String, Vec<u8>) {
    guest(
        "forever",
        r#"(data (i32.const 0) "forever/00000.bin")
           (func (export "gather") (result i32) (local $i i32)
             ;; Ignores every status and never stops on its own.
             (loop $l
               (call $digits (i32.and (local.get $i) (i32.const 65535)) (i32.const 8))
               (drop (call $record (i32.const 0) (i32.const 17) (i32.const 1024) (i32.const 100)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br $l))
             (i32.const 0))"#,
    )
}

/// The report of gatherer `name` among `reports`.
pub fn report<'a>(reports: &'a [agent::archive::StatusReport], name: &str) -> &'a agent::archive::StatusReport {
    reports.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no report for {name}: {reports:#?}"))
}

/// A fast `run` config for tests: `modules` (name without `.wasm`, bytes) written to
/// `work/modules`, a 300 ms period without jitter, endpoints on 127.0.0.1:0.
pub fn quick_run_config(work: &std::path::Path, modules: &[(&str, Vec<u8>)]) -> agent::run::RunConfig {
    let dir = work.join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in modules {
        std::fs::write(dir.join(format!("{name}.wasm")), bytes).unwrap();
    }
    let mut cfg = agent::run::RunConfig::new(work.join("out"), work.join("state"));
    cfg.modules_dir = Some(dir);
    cfg.period = std::time::Duration::from_millis(300);
    cfg.jitter = 0.0;
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg
}

/// `dir/modules`, holding the built default gatherers (see [`built_gatherers`]).
pub fn modules_dir(dir: &std::path::Path) -> PathBuf {
    let m = dir.join("modules");
    std::fs::create_dir_all(&m).unwrap();
    for (name, bytes) in built_gatherers() {
        std::fs::write(m.join(name), bytes).unwrap();
    }
    m
}

/// The Insights Operator's pod rule (which pods it records), computed independently of the
/// gatherer from the fixture or simulator objects.
pub fn io_pod_rule(pod: &serde_json::Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    let restarted = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .any(|k| pod["status"][k].as_array().is_some_and(|cs| cs.iter().any(|c| c["restartCount"].as_i64().unwrap_or(0) > 0)));
    pod["metadata"]["namespace"].as_str().unwrap().starts_with("openshift-") && (!matches!(phase, "Running" | "Succeeded") || restarted)
}

/// A kube-rs client configured from `kubeconfig` the way the agent configures its own.
pub async fn kube_client(kubeconfig: &std::path::Path) -> kube::Client {
    agent::kubeclient::from_kubeconfig(kubeconfig).await.expect("client from kubeconfig")
}
