//! The reliability and security suite: malicious guests, hostile distribution servers, API
//! faults and local faults. Every case asserts the exact outcome (the error class, what stayed
//! active) and that no archive was lost or left partial. Run it alone with
//! `cargo test -p agent --test resilience`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agent::config::AgentConfig;
use agent::sandbox::Sandbox;
use agent::state::StateDir;
use agent::update::{Ctx, IndexSettings, IndexSource, PollOutcome};

// ---------- guests ----------

use common::{guest, records_forever, report};

fn many_records() -> (String, Vec<u8>) {
    guest(
        "many",
        r#"(data (i32.const 0) "many/rec-00000.txt") (data (i32.const 64) "x")
           (func (export "gather") (result i32) (local $i i32)
             (loop $l
               (call $digits (local.get $i) (i32.const 9))
               (if (i32.ne (call $record (i32.const 0) (i32.const 18) (i32.const 64) (i32.const 1)) (i32.const 0)) (then (return (i32.const 1))))
               (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 5000))))
             (i32.const 0))"#,
    )
}

fn huge_record() -> (String, Vec<u8>) {
    guest(
        "huge",
        r#"(data (i32.const 0) "config/huge.bin") (data (i32.const 32) "config/after-huge.txt") (data (i32.const 64) "still here")
           (func (export "gather") (result i32)
             ;; 25 MiB, over the 24 MiB archive cap: dropped with ARCHIVE_FULL (-10).
             (if (i32.eq (memory.grow (i32.const 401)) (i32.const -1)) (then (return (i32.const 2))))
             (if (i32.ne (call $record (i32.const 0) (i32.const 15) (i32.const 65536) (i32.const 26214400)) (i32.const -10)) (then (return (i32.const 3))))
             (drop (call $record (i32.const 32) (i32.const 21) (i32.const 64) (i32.const 10)))
             (i32.const 0))"#,
    )
}

fn deep_recursion() -> (String, Vec<u8>) {
    guest(
        "recursion",
        r#"(func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))
           (func (export "gather") (result i32) (call $down (i32.const 0)))"#,
    )
}

fn hostile_pointers() -> (String, Vec<u8>) {
    // Each check returns its number if the host answered differently than the ABI says.
    guest(
        "pointers",
        r#"(data (i32.const 0) "GET") (data (i32.const 16) "/api/v1/nodes") (data (i32.const 64) "ovl/x.txt!")
           (func (export "gather") (result i32) (local $h i32)
             (if (i32.ne (call $record (i32.const -16) (i32.const 32) (i32.const 0) (i32.const 1)) (i32.const -1)) (then (return (i32.const 1))))
             (if (i32.ne (call $record (i32.const 0) (i32.const 0x7fffffff) (i32.const 0) (i32.const 1)) (i32.const -1)) (then (return (i32.const 2))))
             (if (i32.ne (call $record (i32.const 64) (i32.const 9) (i32.const 65530) (i32.const 100)) (i32.const -1)) (then (return (i32.const 3))))
             ;; Name and data overlap: fine, the host copies both out first.
             (if (i32.ne (call $record (i32.const 64) (i32.const 9) (i32.const 66) (i32.const 8)) (i32.const 0)) (then (return (i32.const 4))))
             (if (i32.ne (call $log (i32.const 1) (i32.const 65530) (i32.const 100)) (i32.const -1)) (then (return (i32.const 5))))
             (if (i32.ne (call $log (i32.const 1) (i32.const 0) (i32.const -1)) (i32.const -1)) (then (return (i32.const 6))))
             (if (i32.ne (call $config (i32.const -1) (i32.const 10)) (i32.const -1)) (then (return (i32.const 7))))
             (if (i32.ne (call $read (i32.const 999) (i32.const 0) (i32.const 10)) (i32.const -1)) (then
               (if (i32.ne (call $read (i32.const 999) (i32.const 0) (i32.const 10)) (i32.const -3)) (then (return (i32.const 8))))))
             (if (i32.ne (call $request (i32.const 0x7ffffff0) (i32.const 3) (i32.const 16) (i32.const 13) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const -1)) (then (return (i32.const 9))))
             (if (i32.ne (call $request (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 13) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const -2)) (then (return (i32.const 10))))
             ;; A real request, then its body read into a buffer that overlaps the path string.
             (local.set $h (call $request (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 13) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
             (if (i32.lt_s (local.get $h) (i32.const 1)) (then (return (i32.const 11))))
             (if (i32.le_s (call $read (local.get $h) (i32.const 10) (i32.const 100)) (i32.const 0)) (then (return (i32.const 12))))
             (if (i32.ne (call $read (local.get $h) (i32.const 65500) (i32.const 0x10000000)) (i32.const -1)) (then (return (i32.const 13))))
             (if (i32.ne (call $header (local.get $h) (i32.const -4) (i32.const 12) (i32.const 0) (i32.const 8)) (i32.const -1)) (then (return (i32.const 14))))
             (i32.const 0))"#,
    )
}

fn unknown_import() -> (String, Vec<u8>) {
    let src = r#"(module (import "env" "system" (func (param i32) (result i32))) (memory (export "memory") 1)
        (func (export "gather_abi_version_1")) (func (export "gather") (result i32) (i32.const 0))
        (@custom "gather.manifest" "{\"name\":\"importer\",\"version\":\"1\",\"abi\":1}"))"#;
    ("importer.wasm".into(), wat::parse_str(src).unwrap())
}

fn too_many_functions() -> (String, Vec<u8>) {
    let funcs = "(func)".repeat(10_001);
    let src = format!(
        r#"(module (memory (export "memory") 1) {funcs}
            (func (export "gather_abi_version_1")) (func (export "gather") (result i32) (i32.const 0))
            (@custom "gather.manifest" "{{\"name\":\"bloated\",\"version\":\"1\",\"abi\":1}}"))"#
    );
    ("bloated.wasm".into(), wat::parse_str(&src).unwrap())
}

fn nodes() -> (String, Vec<u8>) {
    common::built_gatherers().into_iter().find(|(n, _)| n == "nodes.wasm").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_never_hurt_the_host_or_the_others() {
    let sim = common::start_sample().await;
    let modules = vec![
        nodes(),
        many_records(),
        records_forever(),
        huge_record(),
        deep_recursion(),
        hostile_pointers(),
        unknown_import(),
        too_many_functions(),
        ("not-wasm.wasm".into(), b"MZ\x90\x00 this is a Windows executable".to_vec()),
    ];
    let cfg: AgentConfig = serde_json::from_str(r#"{"concurrency": 8, "modules": {"forever": {"limits": {"deadlineMs": 1500, "recordBytes": 1048576}}}}"#).unwrap();
    let (result, work) = common::period(&sim, &modules, cfg).await;
    let r = &result.metadata.status_reports;
    let records = common::records(&result.archive);

    // The well-behaved gatherer is untouched.
    let n = report(r, "nodes");
    assert!(n.errors.is_none() && n.error_kind.is_none(), "{n:?}");
    for node in common::fixture_names("Node") {
        assert!(records.contains_key(&format!("config/node/{node}.json")));
    }

    let many = report(r, "many");
    assert_eq!((many.records_count, many.exit_code), (5000, Some(0)), "{many:?}");
    assert_eq!(records.keys().filter(|k| k.starts_with("many/")).count(), 5000);

    let forever = report(r, "forever");
    assert_eq!(forever.error_kind.as_deref(), Some("deadline"), "{forever:?}");
    assert!(forever.records_count > 100, "{forever:?}");
    assert_eq!(forever.records_count as usize, records.keys().filter(|k| k.starts_with("forever/")).count());
    // Its share of the archive is capped, so it cannot starve the others.
    assert!(forever.bytes_emitted <= 1024 * 1024, "{forever:?}");
    assert!(forever.errors.as_ref().unwrap().iter().any(|e| e.contains("record quota of 1048576 bytes")), "{forever:?}");

    let huge = report(r, "huge");
    assert_eq!(huge.exit_code, Some(0), "the guest saw ARCHIVE_FULL and carried on: {huge:?}");
    assert!(huge.errors.as_ref().unwrap().iter().any(|e| e.contains("config/huge.bin") && e.contains("26214400")), "{huge:?}");
    assert!(!records.contains_key("config/huge.bin"));
    assert_eq!(records["config/after-huge.txt"], b"still here");

    let rec = report(r, "recursion");
    assert_eq!(rec.error_kind.as_deref(), Some("trap"));
    assert!(rec.errors.as_ref().unwrap().iter().any(|e| e.contains("stack")), "{rec:?}");

    let p = report(r, "pointers");
    assert_eq!(p.exit_code, Some(0), "every hostile call got the documented status code: {p:?}");
    assert!(records.contains_key("ovl/x.txt"));

    let importer = report(r, "importer.wasm");
    assert_eq!(importer.error_kind.as_deref(), Some("load"));
    assert!(importer.errors.as_ref().unwrap()[0].contains("env.system"));
    let bloated = report(r, "bloated.wasm");
    assert_eq!(bloated.error_kind.as_deref(), Some("load"));
    assert!(bloated.errors.as_ref().unwrap()[0].contains("invalid or oversized"), "{bloated:?}");
    let junk = report(r, "not-wasm.wasm");
    assert!(junk.errors.as_ref().unwrap()[0].contains("not a WebAssembly module"));

    // The archive is whole, within the cap, and alone in its directory.
    let total: u64 = records.values().map(|v| v.len() as u64).sum();
    assert!(total <= hostapi::abi::limits::ARCHIVE_BYTES + 1024 * 1024);
    assert!(std::process::Command::new("tar").arg("-tzf").arg(&result.archive).output().unwrap().status.success());
    let out: Vec<_> = std::fs::read_dir(work.path().join("out")).unwrap().collect();
    assert_eq!(out.len(), 1);
}

// ---------- hostile distribution ----------

#[derive(Clone)]
enum Behavior {
    Bytes(Vec<u8>),
    Truncated(Vec<u8>),
    Endless,
    SlowLoris,
    Redirect(String),
}

type Routes = Arc<std::sync::Mutex<Vec<(String, Behavior)>>>;

async fn hostile_server(routes: Vec<(String, Behavior)>) -> String {
    mutable_server(Arc::new(std::sync::Mutex::new(routes))).await
}

/// A server whose answers the test can change between polls.
async fn mutable_server(routes: Routes) -> String {
    use axum::body::Body;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let routes = routes.clone();
        async move {
            let path = req.uri().path().to_owned();
            let found = routes.lock().unwrap().iter().find(|(p, _)| *p == path).map(|(_, b)| b.clone());
            let Some(b) = found else {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            };
            match b {
                Behavior::Bytes(bytes) => bytes.into_response(),
                Behavior::Truncated(bytes) => bytes[..bytes.len() / 2].to_vec().into_response(),
                Behavior::Endless => {
                    let chunk = bytes::Bytes::from(vec![b'A'; 64 * 1024]);
                    let s = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                    Body::from_stream(s).into_response()
                }
                Behavior::SlowLoris => {
                    let s = futures::stream::unfold((), |()| async {
                        tokio::time::sleep(Duration::from_millis(700)).await;
                        Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{")), ()))
                    });
                    Body::from_stream(s).into_response()
                }
                Behavior::Redirect(to) => (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, to)]).into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn hello() -> Vec<u8> {
    guest(
        "hello",
        r#"(data (i32.const 0) "config/hello.txt") (data (i32.const 32) "hi")
           (func (export "gather") (result i32) (drop (call $record (i32.const 0) (i32.const 16) (i32.const 32) (i32.const 2))) (i32.const 0))"#,
    )
    .1
}

/// A valid index for `module`, as (index bytes, module sha256).
fn index_for(module: &[u8], serial: u64) -> (Vec<u8>, String) {
    let sha = agent::util::sha256_hex(module);
    let index = serde_json::json!({
        "apiVersion": "gather-agent.io/v1", "serial": serial, "published": "2026-01-01T00:00:00Z",
        "gatherers": [{"name": "hello", "version": "1.0.0", "sha256": sha, "size": module.len(),
                       "url": format!("{sha}.wasm"), "permissions": ["GET /api/v1/nodes"]}]
    });
    (serde_json::to_vec_pretty(&index).unwrap(), sha)
}

struct Poller {
    _dir: tempfile::TempDir,
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
        Poller { _dir: dir, ctx }
    }

    fn source(&self, url: &str, key: Option<&str>) -> IndexSource {
        IndexSource::new(IndexSettings {
            url: url.parse().unwrap(),
            public_key: key.map(|k| agent::index::parse_public_key(k).unwrap()),
            max_module_bytes: 1024 * 1024,
            timeout: Duration::from_secs(1),
        })
    }
}

fn refused(o: PollOutcome) -> String {
    match o {
        PollOutcome::Refused(r) => r.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn failed(o: PollOutcome) -> String {
    match o {
        PollOutcome::Failed(r) => r,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_are_refused_without_staging_anything() {
    let module = hello();
    let (index, sha) = index_for(&module, 1);
    let p = Poller::new();
    let case = |behavior: Behavior, index: Vec<u8>| {
        let sha = sha.clone();
        async move { hostile_server(vec![("/index.json".into(), Behavior::Bytes(index)), (format!("/{sha}.wasm"), behavior)]).await }
    };

    // A truncated download never matches its sha256.
    let url = case(Behavior::Truncated(module.clone()), index.clone()).await;
    let r = refused(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await);
    assert!(r.starts_with("sha256-mismatch"), "{r}");

    // An endless body stops at the size cap.
    let url = case(Behavior::Endless, index.clone()).await;
    let r = refused(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await);
    assert!(r.starts_with("too-large"), "{r}");

    // A slow-loris module download times out.
    let url = case(Behavior::SlowLoris, index.clone()).await;
    // The poll returns (it would hang without the timeout) and names the stalled module.
    let r = failed(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await);
    assert!(r.contains("downloading hello"), "{r}");

    // An endless or a 10 MB index.
    let url = hostile_server(vec![("/index.json".into(), Behavior::Endless)]).await;
    assert!(refused(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await).starts_with("too-large"));
    let mut big: serde_json::Value = serde_json::from_slice(&index).unwrap();
    big["gatherers"][0]["config"] = serde_json::json!("x".repeat(10 * 1024 * 1024));
    let url = hostile_server(vec![("/index.json".into(), Behavior::Bytes(serde_json::to_vec(&big).unwrap()))]).await;
    assert!(refused(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await).starts_with("too-large"));

    // A slow-loris index.
    let url = hostile_server(vec![("/index.json".into(), Behavior::SlowLoris)]).await;
    failed(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await);

    // A redirect to another host (127.0.0.1 → localhost is another origin).
    let other = case(Behavior::Bytes(module.clone()), index.clone()).await;
    let to = other.replace("127.0.0.1", "localhost") + "/index.json";
    let url = hostile_server(vec![("/index.json".into(), Behavior::Redirect(to))]).await;
    let r = failed(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await);
    assert!(r.contains("redirect to another origin"), "{r}");

    // Structurally bad indexes: duplicate names, unknown fields, a wrong type.
    let mut dup: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let g = dup["gatherers"][0].clone();
    dup["gatherers"].as_array_mut().unwrap().push(g);
    let mut unknown: serde_json::Value = serde_json::from_slice(&index).unwrap();
    unknown["gatherers"][0]["mirror"] = serde_json::json!("https://evil.example.com/x.wasm");
    let mut wrong: serde_json::Value = serde_json::from_slice(&index).unwrap();
    wrong["serial"] = serde_json::json!("1");
    for (what, bad) in [("listed twice", dup), ("unknown field", unknown), ("invalid type", wrong)] {
        let url = hostile_server(vec![("/index.json".into(), Behavior::Bytes(serde_json::to_vec(&bad).unwrap()))]).await;
        let r = refused(p.source(&format!("{url}/index.json"), None).poll(&p.ctx).await);
        assert!(r.starts_with("malformed") && r.contains(what), "{what}: {r}");
    }

    // Nothing of the above reached the cache, except verified bytes.
    for e in std::fs::read_dir(p.ctx.state.root().join("modules")).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        assert_eq!(agent::util::sha256_hex(&bytes), sha, "only verified modules are cached");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_rollback_replay_and_freeze_are_refused() {
    let module = hello();
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = agent::index::generate_key();
    let key_path = dir.path().join("k");
    std::fs::write(&key_path, secret).unwrap();
    let key = agent::index::read_signing_key(&key_path).unwrap();
    let signed = |serial: u64, extra: Option<(&str, &str)>| {
        let (idx, _) = index_for(&module, serial);
        let mut v: serde_json::Value = serde_json::from_slice(&idx).unwrap();
        if let Some((k, val)) = extra {
            v[k] = serde_json::json!(val);
        }
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        let sig = agent::index::sign(&key, &bytes).into_bytes();
        (bytes, sig)
    };
    let sha = agent::util::sha256_hex(&module);
    let routes: Routes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let set = |index: Vec<u8>, sig: Option<Vec<u8>>| {
        let mut r = vec![("/index.json".to_owned(), Behavior::Bytes(index)), (format!("/{sha}.wasm"), Behavior::Bytes(module.clone()))];
        if let Some(sig) = sig {
            r.push(("/index.json.sig".to_owned(), Behavior::Bytes(sig)));
        }
        *routes.lock().unwrap() = r;
    };
    let url = format!("{}/index.json", mutable_server(routes.clone()).await);
    let p = Poller::new();
    let mut src = p.source(&url, Some(&public));
    let (v2, v2sig) = signed(2, None);
    set(v2.clone(), Some(v2sig.clone()));
    assert!(matches!(src.poll(&p.ctx).await, PollOutcome::Accepted(_)));

    // Each attack, served to the same agent, which has accepted serial 2.
    let (v1, v1sig) = signed(1, None);
    let (v2b, v2bsig) = signed(2, Some(("published", "2026-02-02T00:00:00Z")));
    let (exp, expsig) = signed(3, Some(("expires", "2020-01-01T00:00:00Z")));
    let (v4, _) = signed(4, None);
    let other_sig = {
        let (s2, _) = agent::index::generate_key();
        let p2 = dir.path().join("k2");
        std::fs::write(&p2, s2).unwrap();
        agent::index::sign(&agent::index::read_signing_key(&p2).unwrap(), &v4).into_bytes()
    };
    for (what, index, sig) in [
        ("rollback", v1, Some(v1sig)),
        ("replay", v2b, Some(v2bsig)),
        ("expired", exp, Some(expsig)),
        ("bad-signature", v4.clone(), Some(other_sig)),
        ("bad-signature", v4.clone(), Some(b"AAAA".to_vec())),
        ("bad-signature", v4.clone(), None),
    ] {
        set(index, sig);
        let r = refused(src.poll(&p.ctx).await);
        assert!(r.starts_with(what), "{what}: {r}");
    }
    // The accepted index is still the one a restarted agent would restore.
    let (bytes, _, accepted) = p.ctx.state.load_accepted().unwrap();
    assert_eq!((bytes, accepted.serial), (v2, 2));
    let _ = v2sig;
}

// ---------- API faults ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_faults_are_reported_precisely_within_the_deadline() {
    let path = "/apis/config.openshift.io/v1/clusterversions";
    let cv = common::built_gatherers().into_iter().find(|(n, _)| n == "clusterversion.wasm").unwrap();
    for (fault, expect) in [
        (format!("{path}=403"), "HTTP 403"),
        (format!("{path}=429:7"), "HTTP 429"),
        (format!("{path}=500"), "HTTP 500"),
        (format!("{path}=503"), "HTTP 503"),
    ] {
        let sim = common::start(gather_sim::SimConfig {
            faults: vec![fault.parse().unwrap()],
            ..gather_sim::SimConfig::with_fixtures(common::sample_dir())
        })
        .await;
        let (result, _work) = common::period(&sim, std::slice::from_ref(&cv), AgentConfig::default()).await;
        let r = report(&result.metadata.status_reports, "clusterversion");
        assert!(r.errors.as_ref().is_some_and(|e| e.iter().any(|e| e.contains(expect))), "{fault}: {r:?}");
        assert_eq!(r.records_count, 0);
    }
    // 404: the gatherer's call, a warning.
    let sim = common::start(gather_sim::SimConfig {
        faults: vec![format!("{path}=404").parse().unwrap()],
        ..gather_sim::SimConfig::with_fixtures(common::sample_dir())
    })
    .await;
    let (result, _work) = common::period(&sim, std::slice::from_ref(&cv), AgentConfig::default()).await;
    let r = report(&result.metadata.status_reports, "clusterversion");
    assert!(r.errors.is_none() && r.warnings.as_ref().unwrap()[0].contains("404"), "{r:?}");

    // A slow API: the request times out and the period ends within the gatherer's deadline.
    let sim = common::start(gather_sim::SimConfig { delay: Duration::from_secs(3), ..gather_sim::SimConfig::with_fixtures(common::sample_dir()) }).await;
    let cfg: AgentConfig = serde_json::from_str(r#"{"limits": {"requestTimeoutSeconds": 1, "deadlineMs": 2500}}"#).unwrap();
    let (result, _work) = common::period(&sim, std::slice::from_ref(&cv), cfg).await;
    let r = report(&result.metadata.status_reports, "clusterversion");
    // The request's own timeout ended it (the API would have answered after 3 s), and the
    // gatherer reported it and returned: the period did not wait for the API.
    assert!(r.errors.as_ref().unwrap().iter().any(|e| e.contains("timed out")), "{r:?}");
    assert_ne!(r.error_kind.as_deref(), Some("deadline"), "{r:?}");
}

// ---------- local faults (the binary's own are in cli/tests/resilience_cli.rs) ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_output_dir_does_not_stop_the_agent() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("m");
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(mdir.join("hello.wasm"), hello()).unwrap();
    let out = dir.path().join("out");
    let mut cfg = agent::run::RunConfig::new(&out, dir.path().join("state"));
    cfg.modules_dir = Some(mdir);
    cfg.period = Duration::from_millis(300);
    cfg.jitter = 0.0;
    let agent = agent::run::Agent::new(cfg).unwrap();
    let status = agent.status();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let client = agent::kubeclient::from_kubeconfig(&kc).await.unwrap();
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(api, rx));
    let wait = |cond: &dyn Fn(&agent::status::Status) -> bool| {
        for _ in 0..400 {
            if cond(&status.get()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("timed out: {:#?}", status.get());
    };
    wait(&|s| s.periods >= 1);
    // The output directory disappears and a file takes its place.
    let moved = dir.path().join("out.moved");
    std::fs::rename(&out, &moved).unwrap();
    std::fs::write(&out, b"not a directory").unwrap();
    wait(&|s| s.last_error.as_ref().is_some_and(|e| e.source == "archive"));
    // Put it back: the agent carries on.
    std::fs::remove_file(&out).unwrap();
    std::fs::rename(&moved, &out).unwrap();
    let before = std::fs::read_dir(&out).unwrap().count();
    wait(&|s| s.last_archive.as_ref().is_some_and(|a| std::path::Path::new(&a.path).exists()) && std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) > before);
    let _ = tx.send(true);
    task.await.unwrap();
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        assert!(std::process::Command::new("tar").arg("-tzf").arg(&p).output().unwrap().status.success(), "{}", p.display());
    }
}

