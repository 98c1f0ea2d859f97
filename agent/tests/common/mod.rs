//! Shared helpers for the integration tests: the sample fixture cluster and a raw HTTPS client.

#![allow(dead_code)]

use std::path::PathBuf;

use agent::sim::{self, SimConfig, SimHandle};

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
    let result = agent::gather::run_period(sandbox, api, specs, failures, &agent::gather::PeriodOptions::new(&out))
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
