//! The one module loader: the same rules (`disabled`, declared permissions against the
//! policy, unique names) whichever way a module arrives, the embedded defaults as the
//! fallback set, and refusals counted under their own reason class.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent::archive::GathersMetadata;
use agent::config::AgentConfig;
use agent::errors::RefusalReason;
use agent::loader::{Loader, ModuleSource};
use agent::run::RunConfig;
use agent::sandbox::Sandbox;
use common::hello;

/// A hello-like guest declaring `permission` (a forbidden one, for the policy tests).
fn declaring(name: &str, permission: &str) -> Vec<u8> {
    let manifest = format!(r#"{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[\"{permission}\"]}}"#);
    wat::parse_str(format!(
        r#"(module
             (memory (export "memory") 1)
             (func (export "gather_abi_version_1"))
             (func (export "gather") (result i32) (i32.const 0))
             (@custom "gather.manifest" "{manifest}"))"#
    ))
    .unwrap()
}

fn config(json: serde_json::Value) -> AgentConfig {
    serde_json::from_value(json).unwrap()
}

fn meta(archive: &Path) -> GathersMetadata {
    serde_json::from_slice(&common::records(archive)["insights-operator/gathers.json"]).unwrap()
}

fn first_archive(out: &Path) -> PathBuf {
    std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with(".tar.gz")).expect("an archive")
}

fn names(archive: &Path) -> Vec<String> {
    meta(archive).status_reports.into_iter().map(|r| r.name).collect()
}

fn run_config(work: &Path) -> RunConfig {
    let mut cfg = RunConfig::new(work.join("out"), work.join("state"));
    cfg.period = Duration::from_secs(3600);
    cfg.poll_interval = Duration::from_millis(100);
    cfg.jitter = 0.0;
    cfg
}

/// Runs `cfg` until its first archive and returns it.
async fn first_period(work: &Path, cfg: RunConfig) -> PathBuf {
    let sim = common::start_sample().await;
    let out = cfg.out_dir.clone();
    let agent = common::start_agent(&sim, work, cfg).await;
    agent.until("a first archive", |s| s.periods >= 1).await;
    agent.stop().await;
    first_archive(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_honours_disabled_in_a_modules_dir() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.wasm"), hello("a", "1.0.0", "a")).unwrap();
    std::fs::write(dir.join("b.wasm"), hello("b", "1.0.0", "b")).unwrap();
    let mut cfg = run_config(work.path());
    cfg.modules_dir = Some(dir);
    cfg.agent = config(serde_json::json!({"modules": {"b": {"disabled": true}}}));
    let archive = first_period(work.path(), cfg).await;
    assert_eq!(names(&archive), ["a"], "b is disabled in the config file");
    assert!(!common::records(&archive).contains_key("config/b.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_honours_disabled_in_an_index() {
    let work = tempfile::tempdir().unwrap();
    let (site, mods) = (work.path().join("site"), work.path().join("publish"));
    std::fs::create_dir_all(&mods).unwrap();
    std::fs::write(mods.join("a.wasm"), hello("a", "1.0.0", "a")).unwrap();
    std::fs::write(mods.join("b.wasm"), hello("b", "1.0.0", "b")).unwrap();
    agent::publish::publish(&agent::publish::PublishOptions { modules_dir: mods, site: site.clone(), key: None, settings: None, expires_in: None }).unwrap();
    let server = agent::serve::start(&site, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut cfg = run_config(work.path());
    cfg.index_url = Some(format!("{}/index.json", server.url).parse().unwrap());
    cfg.agent = config(serde_json::json!({"modules": {"a": {"disabled": true}}}));
    let archive = first_period(work.path(), cfg).await;
    assert_eq!(names(&archive), ["b"], "a is disabled in the config file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_no_source_runs_the_default_modules() {
    let work = tempfile::tempdir().unwrap();
    let mut cfg = run_config(work.path());
    cfg.default_modules = vec![ModuleSource::new("embedded d.wasm", hello("d", "1.0.0", "default"))];
    let archive = first_period(work.path(), cfg).await;
    assert_eq!(names(&archive), ["d"]);
    assert_eq!(common::records(&archive)["config/d.txt"], b"default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modules_dir_replaces_the_defaults_as_a_whole_set() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.wasm"), hello("a", "1.0.0", "a")).unwrap();
    let mut cfg = run_config(work.path());
    cfg.modules_dir = Some(dir);
    cfg.default_modules = vec![
        ModuleSource::new("embedded a.wasm", hello("a", "0.9.0", "default a")),
        ModuleSource::new("embedded d.wasm", hello("d", "1.0.0", "default d")),
    ];
    let archive = first_period(work.path(), cfg).await;
    let m = meta(&archive);
    assert_eq!(m.status_reports.iter().map(|r| (r.name.as_str(), r.version.as_str())).collect::<Vec<_>>(), [("a", "1.0.0")]);
}

#[test]
fn the_loader_refuses_forbidden_declarations_and_duplicate_names_and_skips_disabled() {
    let sandbox = Sandbox::new();
    let cfg = config(serde_json::json!({"modules": {"off": {"disabled": true}}}));
    let sources = vec![
        ModuleSource::new("m/secret.wasm", declaring("secret", "GET /api/v1/namespaces/*/secrets")),
        ModuleSource::new("m/a.wasm", hello("a", "1.0.0", "a")),
        ModuleSource::new("m/a2.wasm", hello("a", "2.0.0", "a")),
        ModuleSource::new("m/off.wasm", hello("off", "1.0.0", "off")),
        ModuleSource::new("m/junk.wasm", b"\0asm junk".to_vec()),
    ];
    let set = Loader::new(&sandbox, &cfg).load_set(&sources);
    assert_eq!(set.modules.iter().map(|(s, o)| (s.module.manifest.name.as_str(), o.as_str())).collect::<Vec<_>>(), [("a", "m/a.wasm")]);
    assert_eq!(set.disabled, ["off"]);
    let rejected: Vec<_> = set.rejected.iter().map(|r| (r.name.as_str(), r.refused.reason)).collect();
    assert_eq!(
        rejected,
        [("secret", RefusalReason::Policy), ("a2.wasm", RefusalReason::Duplicate), ("junk.wasm", RefusalReason::InvalidModule)]
    );
    // The operator's allowance lets the same module load.
    let allowed = config(serde_json::json!({"modules": {"secret": {"policy": {"allowSecrets": true}}}}));
    assert_eq!(Loader::new(&sandbox, &allowed).load_set(&sources[..1]).modules.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_refuses_a_module_whose_declarations_the_policy_forbids() {
    let sim = common::start_sample().await;
    let modules = vec![
        ("secret.wasm".to_owned(), declaring("secret", "GET /api/v1/namespaces/*/secrets")),
        ("a.wasm".to_owned(), hello("a", "1.0.0", "a")),
    ];
    let (result, _work) = common::period(&sim, &modules, AgentConfig::default()).await;
    let r = common::report(&result.metadata.status_reports, "secret");
    assert_eq!(r.error_kind.as_deref(), Some("load"));
    assert!(r.errors.as_ref().unwrap()[0].starts_with("load: policy: secret:"), "{r:?}");
    assert_eq!(common::report(&result.metadata.status_reports, "a").error_kind, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refusals_are_counted_under_their_own_reason_in_metrics() {
    let work = tempfile::tempdir().unwrap();
    let (site, mods) = (work.path().join("site"), work.path().join("publish"));
    std::fs::create_dir_all(&mods).unwrap();
    std::fs::write(mods.join("nodes.wasm"), declaring("nodes", "GET /api/v1/secrets")).unwrap();
    agent::publish::publish(&agent::publish::PublishOptions { modules_dir: mods, site: site.clone(), key: None, settings: None, expires_in: None }).unwrap();
    let server = agent::serve::start(&site, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut cfg = run_config(work.path());
    cfg.index_url = Some(format!("{}/index.json", server.url).parse().unwrap());
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    let sim = common::start_sample().await;
    let agent = common::start_agent(&sim, work.path(), cfg).await;
    let status = agent.until("a refusal", |s| !s.refused.is_empty()).await;
    assert_eq!(status.refused[0].class.as_deref(), Some("policy"), "{:?}", status.refused);
    let base = format!("http://{}", agent.endpoints.unwrap());
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    agent.stop().await;
    assert!(metrics.contains(r#"gather_agent_update_refusals_total{reason="policy"} "#), "{metrics}");
    assert!(!metrics.contains(r#"reason="nodes""#), "the gatherer's name is not a reason: {metrics}");
}
