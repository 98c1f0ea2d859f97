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
