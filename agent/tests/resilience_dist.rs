//! The resilience suite, distribution part: the operator's limits are ceilings, rollback
//! protection survives a damaged state dir, module URLs stay within the index's directory,
//! URL credentials never leave the process, and `serve` stays inside its site. Every case
//! runs real HTTP servers on loopback and asserts the exact outcome.
//! Run it alone with `cargo test -p agent --test resilience_dist`.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::archive::GathersMetadata;
use agent::config::AgentConfig;
use agent::run::RunConfig;
use agent::sandbox::Sandbox;
use agent::state::StateDir;
use agent::update::{Ctx, IndexSettings, IndexSource, PollOutcome};

// ---------- helpers ----------

/// A gatherer that grows its memory by `pages` and records `granted` or `refused` in
/// `config/<name>.txt`.
fn grower(name: &str, pages: u32) -> Vec<u8> {
    let rec = format!("config/{name}.txt");
    let manifest = format!(r#"{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[]}}"#);
    wat::parse_str(format!(
        r#"(module
             (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0) "{rec}")
             (data (i32.const 64) "granted")
             (data (i32.const 80) "refused")
             (func (export "gather_abi_version_1"))
             (func (export "gather") (result i32)
               (if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1))
                 (then (drop (call $record (i32.const 0) (i32.const {len}) (i32.const 80) (i32.const 7))))
                 (else (drop (call $record (i32.const 0) (i32.const {len}) (i32.const 64) (i32.const 7)))))
               (i32.const 0))
             (@custom "gather.manifest" "{manifest}"))"#,
        len = rec.len()
    ))
    .unwrap()
}

/// A signed site served by `agent::serve` on loopback, plus the simulator.
struct Site {
    work: tempfile::TempDir,
    sim: gather_sim::SimHandle,
    server: agent::serve::ServeHandle,
    key: PathBuf,
    public_key: String,
}

impl Site {
    async fn new() -> Self {
        let work = tempfile::tempdir().unwrap();
        let sim = common::start_sample().await;
        let (secret, public_key) = agent::index::generate_key();
        let key = work.path().join("publisher.key");
        std::fs::write(&key, secret).unwrap();
        std::fs::create_dir_all(work.path().join("site")).unwrap();
        let server = agent::serve::start(&work.path().join("site"), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        Site { work, sim, server, key, public_key }
    }

    fn site(&self) -> PathBuf {
        self.work.path().join("site")
    }

    /// Publishes `modules`, signed, with the publisher's `settings` (publish.json) if any.
    fn publish(&self, modules: &[(&str, Vec<u8>)], settings: Option<serde_json::Value>) -> agent::index::Index {
        let dir = tempfile::tempdir_in(self.work.path()).unwrap();
        for (name, bytes) in modules {
            std::fs::write(dir.path().join(format!("{name}.wasm")), bytes).unwrap();
        }
        let settings = settings.map(|s| {
            let p = dir.path().join("publish.json.settings");
            std::fs::write(&p, serde_json::to_vec(&s).unwrap()).unwrap();
            p
        });
        agent::publish::publish(&agent::publish::PublishOptions {
            modules_dir: dir.path().to_owned(),
            site: self.site(),
            key: Some(self.key.clone()),
            settings,
            expires_in: None,
        })
        .unwrap()
        .index
    }

    fn config(&self, url: &str) -> RunConfig {
        let mut cfg = RunConfig::new(self.work.path().join("out"), self.work.path().join("state"));
        cfg.index_url = Some(url.parse().unwrap());
        cfg.public_key = Some(agent::index::parse_public_key(&self.public_key).unwrap());
        cfg.period = Duration::from_millis(400);
        cfg.poll_interval = Duration::from_millis(150);
        cfg.jitter = 0.0;
        cfg
    }

    fn archives(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.work.path().join("out"))
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn gathers_json(archive: &Path) -> Vec<u8> {
    common::records(archive)["insights-operator/gathers.json"].clone()
}

/// A loopback server answering exact paths with bytes the test can change between polls.
type Routes = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn mutable_server(routes: Routes) -> String {
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let routes = routes.clone();
        async move {
            let path = req.uri().path().to_owned();
            match routes.lock().unwrap().iter().find(|(p, _)| *p == path) {
                Some((_, b)) => b.clone().into_response(),
                None => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A state dir and what the index source needs, without a running agent.
struct Poller {
    dir: tempfile::TempDir,
    ctx: Ctx,
}

impl Poller {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Ctx::new(
            Arc::new(Sandbox::new()),
            Arc::new(StateDir::open(&dir.path().join("state")).unwrap()),
            AgentConfig::default(),
        );
        Poller { dir, ctx }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn source(&self, url: &str, key: Option<&str>) -> IndexSource {
        IndexSource::new(IndexSettings {
            url: url.parse().unwrap(),
            public_key: key.map(|k| agent::index::parse_public_key(k).unwrap()),
            max_module_bytes: 1024 * 1024,
            timeout: Duration::from_secs(5),
        })
    }
}

fn refused(o: PollOutcome) -> String {
    match o {
        PollOutcome::Refused(r) => r.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// An index for `modules` (name, bytes, url) with `serial`, as bytes.
fn index(serial: u64, modules: &[(&str, &[u8], String)], limits: Option<serde_json::Value>) -> Vec<u8> {
    let gatherers: Vec<serde_json::Value> = modules
        .iter()
        .map(|(name, bytes, url)| {
            let mut g = serde_json::json!({"name": name, "version": "1.0.0", "sha256": agent::util::sha256_hex(bytes),
                          "size": bytes.len(), "url": url, "permissions": []});
            if let Some(l) = &limits {
                g["limits"] = l.clone();
            }
            g
        })
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({
        "apiVersion": "gather-agent.io/v1", "serial": serial, "published": "2026-01-01T00:00:00Z", "gatherers": gatherers
    }))
    .unwrap()
}

/// A signing key: (secret key, public key text).
fn keypair(dir: &Path) -> (ed25519_dalek::SigningKey, String) {
    let (secret, public) = agent::index::generate_key();
    let p = dir.join("k");
    std::fs::write(&p, secret).unwrap();
    (agent::index::read_signing_key(&p).unwrap(), public)
}

/// Routes serving a signed index at `/index.json` and each module under its sha256.
fn signed_routes(key: &ed25519_dalek::SigningKey, serial: u64, modules: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    let entries: Vec<(&str, &[u8], String)> =
        modules.iter().map(|(n, b)| (*n, *b, format!("{}.wasm", agent::util::sha256_hex(b)))).collect();
    let bytes = index(serial, &entries, None);
    let mut r = vec![
        ("/index.json.sig".to_owned(), agent::index::sign(key, &bytes).into_bytes()),
        ("/index.json".to_owned(), bytes),
    ];
    for (_, b) in modules {
        r.push((format!("/{}.wasm", agent::util::sha256_hex(b)), b.to_vec()));
    }
    r
}

// ---------- the operator's limits are ceilings ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_cannot_raise_the_operators_limits() {
    let site = Site::new().await;
    let gib = 1u64 << 30;
    // The publisher suggests 1 GiB for everything, and 1 MiB for `lowered`.
    site.publish(
        &[("small", grower("small", 8192)), ("big", grower("big", 512)), ("lowered", grower("lowered", 32))],
        Some(serde_json::json!({"modules": {
            "small": {"limits": {"memoryBytes": gib}},
            "big": {"limits": {"memoryBytes": gib}},
            "lowered": {"limits": {"memoryBytes": 1u64 << 20}},
        }})),
    );
    let mut cfg = site.config(&format!("{}/index.json", site.server.url));
    // The operator: 16 MiB for every module, 64 MiB for `big`.
    cfg.agent = serde_json::from_value(serde_json::json!({
        "limits": {"memoryBytes": 16u64 << 20},
        "modules": {"big": {"limits": {"memoryBytes": 64u64 << 20}}}
    }))
    .unwrap();
    let agent = common::start_agent(&site.sim, site.work.path(), cfg).await;
    agent.until("a period", |s| s.periods >= 1).await;
    agent.stop().await;
    let records = common::records(&site.archives()[0]);
    let text = |n: &str| String::from_utf8_lossy(&records[&format!("config/{n}.txt")]).into_owned();
    assert_eq!(text("small"), "refused", "a 512 MiB grow under the operator's 16 MiB, whatever the index suggests");
    assert_eq!(text("big"), "granted", "the operator's per-module setting raises the ceiling to 64 MiB (32 MiB grow)");
    assert_eq!(text("lowered"), "refused", "the publisher may lower: 1 MiB, so a 2 MiB grow fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_limits_in_a_signed_index_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let module = common::hello("hello", "1.0.0", "hi");
    let sha = agent::util::sha256_hex(&module);
    let routes: Routes = Arc::new(Mutex::new(Vec::new()));
    let url = format!("{}/index.json", mutable_server(routes.clone()).await);
    let p = Poller::new();
    let mut src = p.source(&url, Some(&public));
    for (serial, (field, limits)) in [
        ("deadlineSeconds", serde_json::json!({"deadlineSeconds": u64::MAX})),
        ("deadlineMs", serde_json::json!({"deadlineMs": u64::MAX})),
        ("fuel", serde_json::json!({"fuel": u64::MAX})),
        ("memoryBytes", serde_json::json!({"memoryBytes": 1u64 << 40})),
        ("requestTimeoutSeconds", serde_json::json!({"requestTimeoutSeconds": u64::MAX})),
        ("responseBytes", serde_json::json!({"responseBytes": u64::MAX})),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = index(serial as u64 + 1, &[("hello", &module, format!("{sha}.wasm"))], Some(limits));
        *routes.lock().unwrap() = vec![
            ("/index.json.sig".into(), agent::index::sign(&key, &bytes).into_bytes()),
            ("/index.json".into(), bytes),
            (format!("/{sha}.wasm"), module.clone()),
        ];
        let r = refused(src.poll(&p.ctx).await);
        assert!(r.starts_with("malformed") && r.contains(field), "{field}: {r}");
    }
    // Limits that never went through a check still cannot overflow the clock: a run with an
    // unchecked u64::MAX deadline finishes normally instead of panicking the host.
    let sim = common::start_sample().await;
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let client = agent::kubeclient::from_kubeconfig(&kc).await.unwrap();
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let sandbox = Arc::new(Sandbox::new());
    let spec = agent::gather::ModuleSpec {
        module: sandbox.load(&module).unwrap(),
        limits: agent::limits::Limits { deadline_seconds: u64::MAX, request_timeout_seconds: u64::MAX, ..Default::default() },
        policy: Default::default(),
        config: Vec::new(),
    };
    let result = agent::gather::run_period(sandbox, api, vec![spec], Vec::new(), &agent::gather::PeriodOptions::new(dir.path().join("out")))
        .await
        .expect("an archive");
    assert_eq!(result.metadata.status_reports[0].errors, None, "{:?}", result.metadata.status_reports[0]);
    assert_eq!(common::records(&result.archive)["config/hello.txt"], b"hi");
}

#[test]
fn out_of_range_run_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let base = || {
        let mut c = RunConfig::new(dir.path().join("out"), dir.path().join("state"));
        c.modules_dir = Some(dir.path().to_owned());
        c
    };
    let mut cases: Vec<(&str, RunConfig)> = Vec::new();
    let mut c = base();
    c.period = Duration::MAX;
    cases.push(("period", c));
    let mut c = base();
    c.poll_interval = Duration::from_secs(u64::MAX);
    cases.push(("pollInterval", c));
    let mut c = base();
    c.shutdown_grace = Duration::MAX;
    cases.push(("shutdownGrace", c));
    let mut c = base();
    c.retention.max_age = Some(Duration::MAX);
    cases.push(("maxArchiveAge", c));
    let mut c = base();
    c.jitter = 5.0;
    cases.push(("jitter", c));
    let mut c = base();
    c.agent.limits.deadline_seconds = u64::MAX;
    cases.push(("deadlineSeconds", c));
    for (field, cfg) in cases {
        let err = agent::run::Agent::new(cfg).err().unwrap_or_else(|| panic!("{field} accepted"));
        assert!(matches!(err, agent::run::RunError::Invalid(_)) && err.to_string().contains(field), "{field}: {err}");
    }
    assert!(agent::run::Agent::new(base()).is_ok());
}

// ---------- rollback protection survives a damaged state dir ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_cache_does_not_forget_the_serial() {
    let p = Poller::new();
    let (key, public) = keypair(p.dir.path());
    let v1 = common::hello("hello", "1.0.0", "v1");
    let v2 = common::hello("hello", "1.0.0", "v2");
    let routes: Routes = Arc::new(Mutex::new(signed_routes(&key, 1, &[("hello", &v1)])));
    let url = format!("{}/index.json", mutable_server(routes.clone()).await);
    let mut src = p.source(&url, Some(&public));
    assert!(matches!(src.poll(&p.ctx).await, PollOutcome::Accepted(_)));
    let v1_routes = routes.lock().unwrap().clone();
    *routes.lock().unwrap() = signed_routes(&key, 2, &[("hello", &v2)]);
    assert!(matches!(src.poll(&p.ctx).await, PollOutcome::Accepted(_)));

    // The cached module of serial 2 is damaged; the agent restarts while the server replays
    // serial 1 (its old, correctly signed bytes).
    let cached = p.state().join("modules").join(format!("{}.wasm", agent::util::sha256_hex(&v2)));
    std::fs::write(&cached, b"damaged on disk").unwrap();
    let v2_routes = std::mem::replace(&mut *routes.lock().unwrap(), v1_routes);
    let mut restarted = p.source(&url, Some(&public));
    let err = restarted.restore(&p.ctx).expect_err("the restore cannot use a damaged module");
    assert!(err.contains("missing from the cache"), "{err}");
    let r = refused(restarted.poll(&p.ctx).await);
    assert!(r.starts_with("rollback") && r.contains("serial 1 is lower than the accepted serial 2"), "{r}");

    // Serving serial 2 again: downloaded and verified again, and the cache is repaired.
    *routes.lock().unwrap() = v2_routes;
    match restarted.poll(&p.ctx).await {
        PollOutcome::Accepted(part) => assert_eq!(part.serial, Some(2)),
        other => panic!("expected the accepted index again, got {other:?}"),
    }
    assert_eq!(std::fs::read(&cached).unwrap(), v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serial_survives_loss_of_accepted_json_and_the_cache() {
    let p = Poller::new();
    let (key, public) = keypair(p.dir.path());
    let v1 = common::hello("hello", "1.0.0", "v1");
    let v2 = common::hello("hello", "1.0.0", "v2");
    let v1_routes = signed_routes(&key, 1, &[("hello", &v1)]);
    let routes: Routes = Arc::new(Mutex::new(signed_routes(&key, 2, &[("hello", &v2)])));
    let url = format!("{}/index.json", mutable_server(routes.clone()).await);
    assert!(matches!(p.source(&url, Some(&public)).poll(&p.ctx).await, PollOutcome::Accepted(_)));
    *routes.lock().unwrap() = v1_routes;
    let state = p.state();
    let clear_cache = || {
        for e in std::fs::read_dir(state.join("modules")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    };

    // A state dir without serial.json (an older agent's) gets one at start.
    std::fs::remove_file(state.join("serial.json")).unwrap();
    assert!(p.source(&url, Some(&public)).restore(&p.ctx).unwrap().is_some());
    let floor: serde_json::Value = serde_json::from_slice(&std::fs::read(state.join("serial.json")).unwrap()).unwrap();
    assert_eq!(floor["serial"], 2, "a floor known only from accepted.json is written down");

    // accepted.json, index.json and the cache deleted.
    std::fs::remove_file(state.join("accepted.json")).unwrap();
    std::fs::remove_file(state.join("index.json")).unwrap();
    clear_cache();
    let mut src = p.source(&url, Some(&public));
    assert!(src.restore(&p.ctx).unwrap().is_none(), "nothing to restore");
    let r = refused(src.poll(&p.ctx).await);
    assert!(r.starts_with("rollback"), "{r}");

    // accepted.json overwritten with garbage.
    std::fs::write(state.join("accepted.json"), b"\0\0garbage").unwrap();
    let r = refused(p.source(&url, Some(&public)).poll(&p.ctx).await);
    assert!(r.starts_with("rollback"), "{r}");

    // A damaged serial.json, with an intact accepted.json: reported, and still refused.
    *routes.lock().unwrap() = signed_routes(&key, 3, &[("hello", &v2)]);
    assert!(matches!(p.source(&url, Some(&public)).poll(&p.ctx).await, PollOutcome::Accepted(_)));
    *routes.lock().unwrap() = signed_routes(&key, 1, &[("hello", &v1)]);
    std::fs::write(state.join("serial.json"), b"{\"serial\": 0").unwrap();
    clear_cache();
    let mut src = p.source(&url, Some(&public));
    let _ = src.restore(&p.ctx);
    let problems = src.take_problems();
    assert!(problems.iter().any(|m| m.contains("serial.json is damaged")), "{problems:?}");
    let r = refused(src.poll(&p.ctx).await);
    assert!(r.contains("serial 1 is lower than the accepted serial 3"), "{r}");
    assert_eq!(std::fs::read(state.join("serial.json.damaged")).unwrap(), b"{\"serial\": 0", "the damaged file is kept for the operator");
}

// ---------- module URLs stay within the index's directory ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_urls_outside_the_index_directory_are_refused() {
    let module = common::hello("hello", "1.0.0", "hi");
    let sha = agent::util::sha256_hex(&module);
    let routes: Routes = Arc::new(Mutex::new(Vec::new()));
    let base = mutable_server(routes.clone()).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    // The module is served wherever the tricks would lead, so only the URL check can refuse.
    let served = |index: Vec<u8>| {
        let mut r = vec![("/site/index.json".to_owned(), index)];
        for p in [format!("/{sha}.wasm"), format!("/other/{sha}.wasm"), format!("/site/{sha}.wasm")] {
            r.push((p, module.clone()));
        }
        *routes.lock().unwrap() = r;
    };
    let p = Poller::new();
    for bad in [
        format!("%2e%2e/{sha}.wasm"),
        format!("%2E%2E/other/{sha}.wasm"),
        format!("sub/..%2f..%2f{sha}.wasm"),
        format!("http:%2e%2e/{sha}.wasm"),
        format!("http:/{sha}.wasm"),
        format!("https:evil.example/{sha}.wasm"),
        format!("http:localhost:{port}/{sha}.wasm"),
        format!("//localhost:{port}/site/{sha}.wasm"),
        format!("http://localhost:{port}/site/{sha}.wasm"),
        format!("..%5c{sha}.wasm"),
        format!("%252e%252e/{sha}.wasm"),
    ] {
        served(index(1, &[("hello", &module, bad.clone())], None));
        let r = refused(p.source(&format!("{base}/site/index.json"), None).poll(&p.ctx).await);
        assert!(r.starts_with("malformed") && r.contains("url"), "{bad}: {r}");
    }
    // The same module under the index's directory is fine, percent-encoded or not.
    for (serial, good) in [(1, format!("{sha}.wasm")), (2, format!("%{:02x}{}.wasm", sha.as_bytes()[0], &sha[1..]))] {
        served(index(serial, &[("hello", &module, good.clone())], None));
        let o = p.source(&format!("{base}/site/index.json"), None).poll(&p.ctx).await;
        assert!(matches!(o, PollOutcome::Accepted(_)), "{good}: {o:?}");
    }
}

// ---------- URL credentials never leave the process ----------

/// Log lines of the whole test binary, captured.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_url_credentials_never_leave_the_process() {
    let _ = tracing_subscriber::fmt().with_writer(|| LogWriter).with_env_filter("info").try_init();
    let site = Site::new().await;
    let v1 = site.publish(&[("a", common::hello("a", "1.0.0", "a-v1"))], None);
    let secret_url = site.server.url.replace("http://", "http://alice7:pa55w0rd@") + "/index.json?token=s3cr3tt0ken&x=y";
    let mut cfg = site.config(&secret_url);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    let agent = common::start_agent(&site.sim, site.work.path(), cfg).await;
    let s = agent.until("a period", |s| s.periods >= 1).await;
    assert_eq!(s.active.as_ref().and_then(|a| a.serial), Some(1), "the signature is fetched with the token: {s:#?}");

    // A refusal and a failed download, whose messages would quote the URL.
    let v2 = site.publish(&[("a", common::hello("a", "2.0.0", "a-v2"))], None);
    std::fs::remove_file(site.site().join(format!("{}.wasm", v2.gatherers[0].sha256))).unwrap();
    agent.until("a failed download", |s| s.last_error.as_ref().is_some_and(|e| e.reason.contains("downloading a"))).await;
    let v3 = site.publish(&[("a", common::hello("a", "3.0.0", "a-v3"))], None);
    let path = site.site().join(format!("{}.wasm", v3.gatherers[0].sha256));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.push(0);
    std::fs::write(&path, bytes).unwrap();
    agent.until("a refusal", |s| s.refused.iter().any(|r| r.reason.starts_with("too-large") || r.reason.starts_with("sha256-mismatch"))).await;
    let n = agent.status.get().periods;
    // A period under way when the refusal landed has already taken its warnings: the one
    // after it carries them.
    agent.until("a period carrying the warnings", |s| s.periods > n + 1).await;

    let addr = agent.endpoints.unwrap();
    let status_body = reqwest::get(format!("http://{addr}/status")).await.unwrap().bytes().await.unwrap().to_vec();
    agent.stop().await;
    assert!(String::from_utf8_lossy(&status_body).contains("REDACTED"), "the URL is shown, redacted");

    let state = site.work.path().join("state");
    let mut shown: Vec<(String, Vec<u8>)> = vec![("/status".into(), status_body)];
    for f in ["status.json", "accepted.json", "serial.json"] {
        shown.push((f.into(), std::fs::read(state.join(f)).unwrap()));
    }
    let archives = site.archives();
    assert!(!archives.is_empty());
    for a in &archives {
        shown.push((a.display().to_string(), gathers_json(a)));
    }
    assert!(
        archives.iter().any(|a| serde_json::from_slice::<GathersMetadata>(&gathers_json(a)).unwrap().warnings.iter().any(|w| w.contains("refused"))),
        "the refusal reached an archive"
    );
    let _ = std::io::stdout().flush();
    let log = LOG.lock().unwrap().clone();
    assert!(String::from_utf8_lossy(&log).contains("accepted a new index"), "the log is captured");
    shown.push(("log".into(), log));
    for (what, bytes) in shown {
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["alice7", "pa55w0rd", "s3cr3tt0ken", "x=y"] {
            assert!(!text.contains(secret), "{secret} appears in {what}: {text}");
        }
    }
    let _ = v1;
}

// ---------- serve stays inside its site ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_does_not_follow_symlinks_out_of_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside-secret").unwrap();
    std::fs::write(site.join("sub/inside.txt"), "inside").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), site.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", site.join("passwd")).unwrap();
    std::os::unix::fs::symlink(&outside, site.join("up")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", site.join("sub/rel.txt")).unwrap();
    std::os::unix::fs::symlink("sub/inside.txt", site.join("alias.txt")).unwrap();
    let server = agent::serve::start(&site, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let get = |p: &str| {
        let url = format!("{}/{p}", server.url);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for p in ["leak.txt", "passwd", "up/secret.txt", "sub/rel.txt", "sub/../up/secret.txt", "sub"] {
        let (status, body) = get(p).await;
        assert_eq!(status, 404, "{p}: {body}");
        assert!(!body.contains("outside-secret") && !body.contains("root:"), "{p}: {body}");
    }
    assert_eq!(get("sub/inside.txt").await, (200, "inside".into()));
    assert_eq!(get("alias.txt").await, (200, "inside".into()), "a symlink within the site is fine");
}
