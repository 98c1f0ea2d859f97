//! Running as a cluster operator: endpoints and metrics scraped for real, retention, upload
//! to a loopback receiver. SIGTERM during a period (the binary) is in cli/tests/resilience_cli.rs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::run::RunConfig;
use agent::status::Status;
use common::Running;

fn hello(name: &str, text: &str) -> Vec<u8> {
    common::hello(name, "1.0.0", text)
}

async fn start(sim: &gather_sim::SimHandle, work: &Path, modules: &[(&str, Vec<u8>)], tweak: impl FnOnce(&mut RunConfig)) -> Running {
    let mut cfg = common::quick_run_config(work, modules);
    tweak(&mut cfg);
    common::start_agent(sim, work, cfg).await
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name_and_labels} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_serve_health_readiness_status_and_real_metrics() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let nodes = common::built_gatherers().into_iter().find(|(n, _)| n == "nodes.wasm").unwrap().1;
    let trap = common::wat("guests/trap.wat").1;
    let agent = start(&sim, work.path(), &[("nodes", nodes), ("trap", trap)], |_| {}).await;
    let base = format!("http://{}", agent.endpoints.unwrap());
    agent::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    agent.until("two periods", |s| s.periods >= 2).await;
    assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);

    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"), "0.0.4 unless OpenMetrics is asked for");
    let text = resp.text().await.unwrap();
    assert!(metric(&text, "gather_agent_periods_total") >= 2.0);
    assert!(metric(&text, r#"gather_agent_gatherer_errors_total{gatherer="trap",kind="trap"}"#) >= 2.0);
    let nodes_errors: Vec<&str> = text.lines().filter(|l| l.starts_with(r#"gather_agent_gatherer_errors_total{gatherer="nodes""#)).collect();
    assert_eq!(nodes_errors.len(), agent::errors::ErrorKind::ALL.len(), "a zero series per kind: {nodes_errors:?}");
    assert!(nodes_errors.iter().all(|l| l.ends_with(" 0")), "nodes never failed: {nodes_errors:?}");
    assert_eq!(metric(&text, "gather_agent_module_set_activations_total"), 1.0);
    assert!(metric(&text, r#"gather_agent_gatherer_fuel_total{gatherer="nodes"}"#) > 0.0);
    assert!(metric(&text, r#"gather_agent_gatherer_duration_seconds_count{gatherer="nodes"}"#) >= 2.0);
    assert!(metric(&text, "gather_agent_archive_bytes_total") > 0.0);
    let last_size = metric(&text, "gather_agent_last_archive_bytes");
    let status: Status = http.get(format!("{base}/status")).send().await.unwrap().json().await.unwrap();
    assert!(status.ready && status.periods >= 2);
    let on_disk: Status = serde_json::from_slice(&std::fs::read(work.path().join("state/status.json")).unwrap()).unwrap();
    assert!(on_disk.periods >= 2, "status.json is persisted too");
    let names: Vec<&str> = status.active.as_ref().unwrap().modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["nodes", "trap"]);
    assert!(last_size > 0.0);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_a_first_module_set() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let agent = start(&sim, work.path(), &[], |cfg| {
        cfg.modules_dir = None;
        // An index nobody serves: the agent runs, but has nothing to activate.
        cfg.index_url = Some("http://127.0.0.1:9/index.json".parse().unwrap());
        cfg.poll_interval = Duration::from_millis(100);
    })
    .await;
    let base = format!("http://{}", agent.endpoints.unwrap());
    agent.until("a failed poll", |s| s.last_poll.as_ref().is_some_and(|p| p.result == "error")).await;
    agent::tls::install_crypto_provider();
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("no module set"));
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metric(&metrics, r#"gather_agent_index_polls_total{result="error"}"#) >= 1.0);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_archives() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let agent = start(&sim, work.path(), &[("a", hello("a", "x"))], |cfg| {
        cfg.retention.max_archives = Some(2);
        cfg.period = Duration::from_millis(1100);
    })
    .await;
    agent.until("four periods", |s| s.periods >= 4).await;
    agent.stop().await;
    let left: Vec<PathBuf> = std::fs::read_dir(work.path().join("out")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

/// A receiver that records what it got and answers with the scripted statuses.
async fn receiver(script: Vec<u16>) -> (String, Arc<Mutex<Vec<(u16, Vec<u8>, String, String)>>>) {
    use axum::extract::{Multipart, State};
    use axum::http::HeaderMap;
    type Log = Arc<Mutex<Vec<(u16, Vec<u8>, String, String)>>>;
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script));
    let app = axum::Router::new()
        .route(
            "/upload",
            axum::routing::post(|State((log, script)): State<(Log, Arc<Mutex<Vec<u16>>>)>, headers: HeaderMap, mut form: Multipart| async move {
                let mut file = Vec::new();
                while let Some(field) = form.next_field().await.unwrap() {
                    if field.name() == Some("file") {
                        file = field.bytes().await.unwrap().to_vec();
                    }
                }
                let code = {
                    let mut s = script.lock().unwrap();
                    if s.len() > 1 { s.remove(0) } else { s[0] }
                };
                let h = |k: &str| headers.get(k).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                log.lock().unwrap().push((code, file, h("authorization"), h("user-agent")));
                axum::http::StatusCode::from_u16(code).unwrap()
            }),
        )
        .with_state((log.clone(), script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/upload", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_retry_and_deliver_the_exact_bytes() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let (url, log) = receiver(vec![503, 200]).await;
    std::fs::write(work.path().join("token"), "s3cret\n").unwrap();
    let cv = common::built_gatherers().into_iter().find(|(n, _)| n == "clusterversion.wasm").unwrap().1;
    let token_file = work.path().join("token");
    let agent = start(&sim, work.path(), &[("clusterversion", cv)], |cfg| {
        let mut up = agent::upload::UploadConfig::new(url.parse().unwrap());
        up.token_file = Some(token_file);
        up.backoff = Duration::from_millis(50);
        cfg.upload = Some(up);
        cfg.period = Duration::from_secs(30);
    })
    .await;
    let s = agent.until("an upload", |s| s.last_upload.is_some()).await;
    agent.stop().await;
    let up = s.last_upload.unwrap();
    assert_eq!(up.result, "ok", "{up:?}");
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one 503, then a retry");
    let on_disk = std::fs::read(&up.archive).unwrap();
    for (_, bytes, auth, ua) in &got {
        assert_eq!(bytes, &on_disk, "the receiver got the archive's exact bytes");
        assert_eq!(auth, "Bearer s3cret");
        let id = common::fixture("ClusterVersion", "version")["spec"]["clusterID"].as_str().unwrap().to_owned();
        assert_eq!(ua, &format!("gather-agent/{} cluster/{id}", env!("CARGO_PKG_VERSION")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_uploads_give_up_and_keep_the_archive() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let (url, log) = receiver(vec![401]).await;
    let agent = start(&sim, work.path(), &[("a", hello("a", "x"))], |cfg| {
        cfg.upload = Some(agent::upload::UploadConfig::new(url.parse().unwrap()));
        cfg.period = Duration::from_secs(30);
    })
    .await;
    let s = agent.until("an upload attempt", |s| s.last_upload.is_some()).await;
    let base = format!("http://{}", agent.endpoints.unwrap());
    agent::tls::install_crypto_provider();
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    agent.stop().await;
    let up = s.last_upload.unwrap();
    assert_eq!(up.result, "unauthorized");
    assert!(up.error.unwrap().contains("401"));
    assert_eq!(log.lock().unwrap().len(), 1, "no retries after a 401");
    assert!(Path::new(&up.archive).exists(), "the archive stays on disk");
    assert_eq!(metric(&metrics, r#"gather_agent_uploads_total{result="unauthorized"}"#), 1.0);
}
