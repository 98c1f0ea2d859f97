//! Operating the agent for real, in-process (issue 15): a period abandoned at shutdown cancels
//! its in-flight API requests; `/healthz` reports a stuck period loop; the configuration
//! reloads from the next period (and a bad one is refused, the old one staying); a broken
//! module file is refused once per content; `/metrics` negotiates its format and passes
//! strict parsers; the endpoints serve over HTTPS with a rotating certificate; start-time
//! checks of URL schemes and the container's memory limit. The binary under SIGHUP and
//! SIGTERM is in cli/tests/operate_e2e.rs.

mod common;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use agent::run::{Agent, RunConfig};

fn nodes() -> Vec<u8> {
    common::built_gatherers().into_iter().find(|(n, _)| n == "nodes.wasm").unwrap().1
}

fn base(work: &Path, modules: &[(&str, Vec<u8>)]) -> RunConfig {
    common::quick_run_config(work, modules)
}

fn http() -> reqwest::Client {
    agent::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// Files in `dir`, temp files included.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_period_cancels_its_in_flight_api_requests() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let mut cfg = base(work.path(), &[("nodes", nodes())]);
    cfg.period = Duration::from_secs(3600);
    cfg.shutdown_grace = Duration::from_secs(1);
    // The API answers after 15 s; the gatherer's deadline (60 s) would let it wait.
    sim.set_delay(Duration::from_secs(15));
    let agent = common::start_agent(&sim, work.path(), cfg).await;
    // The period has started (its set is activated at its start) and its first request is in
    // flight (the simulator counts a request when it answers).
    agent.until("the first period", |s| s.active.is_some()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.request_count(), 0, "still waiting for the API");
    let stop = Instant::now();
    agent.stop().await;
    let took = stop.elapsed();
    assert!(took < Duration::from_secs(3), "grace 1 s + 2 s, took {took:?}");
    let out = entries(&work.path().join("out"));
    let shown: Vec<String> = out
        .iter()
        .filter(|f| f.ends_with(".tar.gz"))
        .map(|f| String::from_utf8_lossy(&common::records(&work.path().join("out").join(f))["insights-operator/gathers.json"]).into_owned())
        .collect();
    assert!(out.is_empty(), "no archive and no temp file: {out:?} {shown:?}");
}

/// An API that never answers until released: a period stuck past every deadline.
struct Stuck(Arc<(Mutex<bool>, Condvar)>);

impl agent::pdk::Api for Stuck {
    fn send(&self, _: &str, _: &hostapi::Request, _: u64, _: Instant) -> Result<hostapi::Response, agent::policy::BridgeError> {
        let (lock, cv) = &*self.0;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
        Err(agent::policy::BridgeError::Unavailable("released".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_a_stuck_period_loop() {
    let work = tempfile::tempdir().unwrap();
    let mut cfg = base(work.path(), &[("nodes", nodes())]);
    cfg.agent.limits.deadline_seconds = 1;
    cfg.liveness_slack = Duration::from_millis(500);
    cfg.period = Duration::from_secs(3600);
    let agent = Agent::new(cfg).unwrap();
    let url = format!("http://{}/healthz", agent.endpoints_addr().unwrap());
    let status = agent.status();
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(Arc::new(Stuck(gate.clone())), rx));
    let h = http();
    let first = h.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200, "healthy while the period is within its bound");
    // Bound: one wave of 1 s deadlines + 0.5 s slack.
    let t0 = Instant::now();
    let reason = loop {
        let r = h.get(&url).send().await.unwrap();
        if r.status() == 503 {
            break r.text().await.unwrap();
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "never reported stuck");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reason.contains("period 1") && reason.contains("stuck"), "{reason}");
    assert_eq!(status.get().periods, 0);
    // Released, the period ends and the loop is healthy again.
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    let t0 = Instant::now();
    while h.get(&url).send().await.unwrap().status() != 200 {
        assert!(t0.elapsed() < Duration::from_secs(60), "not healthy again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tx.send(true);
    tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap();
}

fn gatherers_in(archive: &Path) -> Vec<String> {
    let meta: agent::archive::GathersMetadata = serde_json::from_slice(&common::records(archive)["insights-operator/gathers.json"]).unwrap();
    meta.status_reports.into_iter().map(|r| r.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_config_applies_from_the_next_period_and_a_bad_one_is_refused() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("config.json");
    std::fs::write(&file, r#"{"concurrency": 2}"#).unwrap();
    let mut cfg = base(work.path(), &[("a", common::hello("a", "1.0.0", "A")), ("b", common::hello("b", "1.0.0", "B"))]);
    cfg.agent = agent::config::AgentConfig::load(&file).unwrap();
    let template = cfg.clone();
    let f = file.clone();
    let reloader = agent::reload::Reloader {
        file: Some(file.clone()),
        build: Arc::new(move || {
            let mut c = template.clone();
            c.agent = agent::config::AgentConfig::load(&f).map_err(|e| e.to_string())?;
            Ok(c)
        }),
    };
    let agent = Agent::new(cfg).unwrap().with_reloader(reloader);
    let trigger = agent.reload_trigger();
    let refused = |s: &agent::status::Status| s.config.as_ref().and_then(|c| c.last_reload.clone()).filter(|r| r.result == "refused");
    let endpoints = agent.endpoints_addr().unwrap();
    let status = agent.status();
    let kc = work.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let client = agent::kubeclient::from_kubeconfig(&kc).await.unwrap();
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()).cancelled_by(agent.cancel_signal()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(api, rx));
    let wait = |what: &str, cond: &dyn Fn(&agent::status::Status) -> bool| {
        let t0 = Instant::now();
        loop {
            let s = status.get();
            if cond(&s) {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "timed out waiting for {what}: {s:#?}");
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    let s = wait("a period", &|s| s.periods >= 1);
    assert_eq!(gatherers_in(Path::new(&s.last_archive.unwrap().path)), ["a", "b"]);
    assert_eq!(s.config.as_ref().unwrap().generation, 1);

    // The file changes (written elsewhere and renamed over it, as a ConfigMap's symlink swap
    // replaces it): `b` disabled, from the next period on.
    let tmp = work.path().join("config.json.new");
    std::fs::write(&tmp, r#"{"concurrency": 2, "modules": {"b": {"disabled": true}}}"#).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let s = wait("the reload", &|s| s.config.as_ref().is_some_and(|c| c.generation == 2));
    let c = s.config.unwrap();
    assert_eq!(c.last_reload.as_ref().unwrap().trigger, "file changed");
    assert_eq!(c.last_reload.as_ref().unwrap().result, "applied");
    let s = wait("a period with the new config", &|s| s.config.as_ref().unwrap().first_period.is_some_and(|p| s.periods >= p));
    let first = s.config.as_ref().unwrap().first_period.unwrap();
    let s = wait("that period's archive", &|s| s.periods > first);
    assert_eq!(gatherers_in(Path::new(&s.last_archive.unwrap().path)), ["a"], "b is disabled from the next period on");

    // A config that fails validation: refused, shown, the old one stays.
    std::fs::write(&file, r#"{"concurrency": 0}"#).unwrap();
    let s = wait("the refusal", &|s| refused(s).is_some());
    assert_eq!(refused(&s).unwrap().trigger, "file changed");
    // SIGHUP reads it again, and refuses it again.
    trigger.reload();
    let s = wait("the refusal on SIGHUP", &|s| refused(s).is_some_and(|r| r.trigger == "SIGHUP"));
    let c = s.config.unwrap();
    assert_eq!(c.generation, 2, "the previous configuration stays");
    assert!(c.last_reload.unwrap().error.unwrap().contains("concurrency"));
    let served: serde_json::Value = http().get(format!("http://{endpoints}/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(served["config"]["lastReload"]["result"], "refused", "{served:#}");
    let before = status.get().periods;
    let s = wait("another period", &|s| s.periods >= before + 2);
    assert_eq!(gatherers_in(Path::new(&s.last_archive.unwrap().path)), ["a"]);
    let metrics = http().get(format!("http://{endpoints}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gather_agent_config_reloads_total{result=\"refused\"} 2"), "{metrics}");
    assert!(metrics.contains("gather_agent_config_reloads_total{result=\"applied\"} 1"), "{metrics}");
    let _ = tx.send(true);
    tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_module_file_is_refused_once_per_content() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let cfg = base(work.path(), &[("a", common::hello("a", "1.0.0", "A")), ("broken", b"not wasm".to_vec())]);
    let agent = common::start_agent(&sim, work.path(), cfg).await;
    agent.until("a period", |s| s.periods >= 1).await;
    let count = |s: &agent::status::Status| s.refused.iter().filter(|r| r.source.contains("broken.wasm")).count();
    // Rescans are triggered by every change in the directory; an archive is written every
    // 300 ms elsewhere, and the agent reads the files itself: none of that re-refuses.
    std::fs::write(work.path().join("modules/other.txt"), "x").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&agent.status.get()), 1, "{:#?}", agent.status.get().refused);
    // New content is judged (and refused) again.
    std::fs::write(work.path().join("modules/broken.wasm"), b"still not wasm").unwrap();
    agent.until("the second refusal", |s| count(s) == 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&agent.status.get()), 2);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_negotiate_their_format_and_pass_strict_parsers() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let cfg = base(work.path(), &[("nodes", nodes()), ("trap", common::wat("guests/trap.wat").1)]);
    let agent = common::start_agent(&sim, work.path(), cfg).await;
    let url = format!("http://{}/metrics", agent.endpoints.unwrap());
    let h = http();

    // Before any period: every label value known in advance has its zero series.
    let text = h.get(&url).send().await.unwrap().text().await.unwrap();
    let fams = common::prom::check_text_0_0_4(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let refusals = &fams["gather_agent_update_refusals_total"];
    assert_eq!(refusals.samples.len(), agent::errors::RefusalReason::ALL.len());
    assert!(refusals.samples.iter().all(|s| s.2 == 0.0));
    for (fam, label) in [("gather_agent_index_polls_total", "error"), ("gather_agent_uploads_total", "unauthorized")] {
        assert!(fams[fam].samples.iter().any(|s| s.1["result"] == label && s.2 == 0.0), "{fam}: {text}");
    }

    agent.until("two periods", |s| s.periods >= 2).await;
    let resp = h.get(&url).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], agent::endpoints::PROMETHEUS_TEXT);
    let text = resp.text().await.unwrap();
    let fams = common::prom::check_text_0_0_4(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let errors = &fams["gather_agent_gatherer_errors_total"];
    for kind in agent::errors::ErrorKind::ALL {
        let v = |g: &str| errors.samples.iter().find(|s| s.1["gatherer"] == g && s.1["kind"] == kind.as_str()).map(|s| s.2);
        assert_eq!(v("nodes"), Some(0.0), "every kind of every gatherer, zero until it happens");
        assert!(v("trap").is_some());
    }
    assert!(errors.samples.iter().any(|s| s.1["gatherer"] == "trap" && s.1["kind"] == "trap" && s.2 >= 2.0));
    assert!(fams["gather_agent_periods_total"].samples[0].2 >= 2.0);
    assert_eq!(fams["gather_agent_gatherer_duration_seconds"].kind, "histogram");
    let py = common::prom::python_parse(&text, false).unwrap_or_else(|e| panic!("prometheus_client 0.0.4 parser: {e}"));
    // The Python parser reports counters under their name without `_total`, with samples.
    assert!(py.iter().any(|l| l.starts_with("gather_agent_periods counter ")), "{py:?}");
    assert!(py.iter().all(|l| !l.contains(" unknown ")), "every family is typed: {py:?}");

    // OpenMetrics when asked, as Prometheus asks for it.
    let resp = h
        .get(&url)
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], agent::endpoints::OPENMETRICS);
    let om = resp.text().await.unwrap();
    assert!(om.ends_with("# EOF\n"));
    let py = common::prom::python_parse(&om, true).unwrap_or_else(|e| panic!("prometheus_client OpenMetrics parser: {e}"));
    assert!(py.iter().any(|l| l.starts_with("gather_agent_update_refusals counter ")), "{py:?}");
    agent.stop().await;
}

fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let pem = cert.cert.pem();
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&c, &pem).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    (c, k, pem)
}

fn trusting(pem: &str) -> reqwest::Client {
    agent::tls::install_crypto_provider();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_serve_https_with_a_mounted_certificate_and_follow_its_rotation() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("serving-cert");
    std::fs::create_dir_all(&certs).unwrap();
    let (c1, k1, pem1) = self_signed(work.path(), "one");
    std::fs::copy(&c1, certs.join("tls.crt")).unwrap();
    std::fs::copy(&k1, certs.join("tls.key")).unwrap();
    let mut cfg = base(work.path(), &[("a", common::hello("a", "1.0.0", "A"))]);
    cfg.tls = Some(agent::endpoints::TlsFiles::in_dir(&certs));
    let agent = common::start_agent(&sim, work.path(), cfg).await;
    let port = agent.endpoints.unwrap().port();
    let url = format!("https://127.0.0.1:{port}/metrics");
    let resp = trusting(&pem1).get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("gather_agent_periods_total"));
    assert!(http().get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err(), "no plain HTTP");

    // The serving certificate rotates (service-ca renews it): new connections get the new one.
    let (c2, k2, pem2) = self_signed(work.path(), "two");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::copy(&c2, certs.join("tls.crt")).unwrap();
    std::fs::copy(&k2, certs.join("tls.key")).unwrap();
    let t0 = Instant::now();
    loop {
        if let Ok(r) = trusting(&pem2).get(&url).send().await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "the rotated certificate is never served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(trusting(&pem1).get(&url).send().await.is_err(), "the old certificate is gone");
    agent.stop().await;
}

#[test]
fn start_refuses_unsupported_schemes_memory_over_the_cgroup_limit_and_a_bad_certificate() {
    let work = tempfile::tempdir().unwrap();
    let mut cfg = RunConfig::new(work.path().join("out"), work.path().join("state"));
    cfg.default_modules = vec![agent::loader::ModuleSource::new("embedded a", common::hello("a", "1.0.0", "A"))];
    let fake_cgroup = work.path().join("cgroup");
    std::fs::create_dir_all(&fake_cgroup).unwrap();
    std::fs::write(fake_cgroup.join("memory.max"), "268435456\n").unwrap();
    cfg.cgroup_root = Some(fake_cgroup.clone());

    let mut ftp = cfg.clone();
    ftp.index_url = Some("ftp://example.com/index.json".parse().unwrap());
    let e = Agent::new(ftp).err().unwrap().to_string();
    assert!(e.contains("unsupported scheme \"ftp\""), "{e}");

    // Four guests at 64 MiB plus the host's margin do not fit in 256 MiB.
    let e = Agent::new(cfg.clone()).err().unwrap().to_string();
    assert!(e.contains("over the container's memory limit of 268435456 bytes") && e.contains("concurrency 4"), "{e}");
    let mut fits = cfg.clone();
    fits.agent.concurrency = 2;
    let agent = Agent::new(fits).unwrap();
    drop(agent);
    std::fs::write(fake_cgroup.join("memory.max"), "max\n").unwrap();

    let mut bad_cert = cfg.clone();
    std::fs::write(work.path().join("tls.crt"), "not a certificate").unwrap();
    std::fs::write(work.path().join("tls.key"), "not a key").unwrap();
    bad_cert.tls = Some(agent::endpoints::TlsFiles::in_dir(work.path()));
    let e = Agent::new(bad_cert).err().unwrap().to_string();
    assert!(e.contains("serving certificate") && e.contains("tls.crt"), "{e}");
}
