//! Publish → serve → run: verified download and hot swap at the next period, against a real
//! HTTP server on loopback, the simulator, and short periods.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent::archive::GathersMetadata;
use agent::publish::{publish, PublishOptions};
use agent::run::{Agent, RunConfig};
use agent::serve::ServeHandle;
use common::{hello, Running};

struct Harness {
    work: tempfile::TempDir,
    sim: gather_sim::SimHandle,
    server: Option<ServeHandle>,
    url: String,
    key: PathBuf,
    public_key: String,
}

impl Harness {
    async fn new() -> Self {
        let work = tempfile::tempdir().unwrap();
        let sim = common::start_sample().await;
        let (secret, public_key) = agent::index::generate_key();
        let key = work.path().join("publisher.key");
        std::fs::write(&key, secret).unwrap();
        std::fs::create_dir_all(work.path().join("site")).unwrap();
        let server = agent::serve::start(&work.path().join("site"), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let url = format!("{}/index.json", server.url);
        Harness { work, sim, server: Some(server), url, key, public_key }
    }

    fn site(&self) -> PathBuf {
        self.work.path().join("site")
    }

    fn out(&self) -> PathBuf {
        self.work.path().join("out")
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    /// Publishes `modules` (name → bytes) signed with the harness key.
    fn publish(&self, modules: &[(&str, Vec<u8>)]) -> agent::index::Index {
        let dir = tempfile::tempdir_in(self.work.path()).unwrap();
        for (name, bytes) in modules {
            std::fs::write(dir.path().join(format!("{name}.wasm")), bytes).unwrap();
        }
        publish(&PublishOptions {
            modules_dir: dir.path().to_owned(),
            site: self.site(),
            key: Some(self.key.clone()),
            settings: None,
            expires_in: None,
        })
        .unwrap()
        .index
    }

    fn config(&self) -> RunConfig {
        let mut cfg = RunConfig::new(self.out(), self.work.path().join("state"));
        cfg.index_url = Some(self.url().parse().unwrap());
        cfg.public_key = Some(agent::index::parse_public_key(&self.public_key).unwrap());
        cfg.period = Duration::from_millis(400);
        cfg.poll_interval = Duration::from_millis(150);
        cfg.jitter = 0.0;
        cfg
    }

    async fn start(&self, cfg: RunConfig) -> Running {
        common::start_agent(&self.sim, self.work.path(), cfg).await
    }
}

/// The finished archives, oldest first (by the period start recorded inside: two periods in
/// the same second are `...-HHMMSS.tar.gz` and `...-HHMMSS-2.tar.gz`, which sort the wrong way).
fn archives(out: &Path) -> Vec<PathBuf> {
    let v: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    for p in &v {
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("insights-") && name.ends_with(".tar.gz"), "only finished archives are visible: {name}");
    }
    let mut v: Vec<(String, PathBuf)> = v.into_iter().map(|p| (meta(&p).started, p)).collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

fn meta(archive: &Path) -> GathersMetadata {
    serde_json::from_slice(&common::records(archive)["insights-operator/gathers.json"]).unwrap()
}

/// (text of each hello record, sha256 of each gatherer) in one archive.
fn versions(archive: &Path) -> Vec<(String, String, String)> {
    let records = common::records(archive);
    let m = meta(archive);
    m.status_reports
        .iter()
        .map(|r| {
            let text = records.get(&format!("config/{}.txt", r.name)).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            (r.name.clone(), r.version.clone(), text)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_run_and_hot_swap_without_mixing_versions() {
    let h = Harness::new().await;
    let v1 = h.publish(&[("a", hello("a", "1.0.0", "a-v1")), ("b", hello("b", "1.0.0", "b-v1"))]);
    let agent = h.start(h.config()).await;
    agent.until("a first archive", |s| s.periods >= 1).await;
    let first = archives(&h.out());
    let m = meta(&first[0]);
    for (r, e) in m.status_reports.iter().zip(&v1.gatherers) {
        assert_eq!((r.name.as_str(), r.sha256.as_str()), (e.name.as_str(), e.sha256.as_str()), "gathers.json names each module's sha256");
    }
    assert_eq!(m.module_set.as_ref().unwrap()["serial"], 1);

    // v2 changes both gatherers' records while the agent runs.
    let v2 = h.publish(&[("a", hello("a", "2.0.0", "a-v2")), ("b", hello("b", "2.0.0", "b-v2"))]);
    assert_eq!(v2.serial, 2);
    let s = agent.until("v2 active", |s| s.active.as_ref().is_some_and(|a| a.serial == Some(2)) && s.periods >= 4).await;
    assert!(s.ready);
    let before_stop = s.periods;
    agent.stop().await;

    let all = archives(&h.out());
    assert!(all.len() as u64 >= before_stop, "one archive per period: {} archives, {before_stop} periods", all.len());
    let mut seen_v2 = false;
    for a in &all {
        let v = versions(a);
        let set: std::collections::BTreeSet<&str> = v.iter().map(|(_, ver, _)| ver.as_str()).collect();
        assert_eq!(set.len(), 1, "{} mixes versions: {v:?}", a.display());
        for (name, ver, text) in &v {
            assert_eq!(text, &format!("{name}-v{}", &ver[..1]), "records come from the version the metadata names");
        }
        if set.contains("2.0.0") {
            seen_v2 = true;
        } else {
            assert!(!seen_v2, "once v2 is active, v1 never comes back");
        }
    }
    assert!(seen_v2);
    let m = meta(all.last().unwrap());
    assert_eq!(m.module_set.as_ref().unwrap()["serial"], 2);
    assert_eq!(m.status_reports[0].sha256, v2.gatherers[0].sha256);
}

fn tamper_module(site: &Path, sha256: &str) {
    let path = site.join(format!("{sha256}.wasm"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_updates_are_refused_and_the_last_good_set_keeps_gathering() {
    let h = Harness::new().await;
    // Keep serial 1's exact signed bytes: replaying them later is a rollback attack.
    h.publish(&[("a", hello("a", "1.0.0", "a-v1"))]);
    let v1_index = std::fs::read(h.site().join("index.json")).unwrap();
    let v1_sig = std::fs::read(h.site().join("index.json.sig")).unwrap();
    let good = h.publish(&[("a", hello("a", "2.0.0", "a-v2"))]);
    assert_eq!(good.serial, 2);
    let agent = h.start(h.config()).await;
    agent.until("v2 active", |s| s.active.as_ref().is_some_and(|a| a.serial == Some(good.serial))).await;

    let expect_refusal = |reason: &'static str| {
        let agent = &agent;
        async move {
            let n = agent.status.get().refused.len();
            let s = agent.until(reason, |s| s.refused.len() > n).await;
            let r = s.refused.last().unwrap();
            assert!(r.reason.starts_with(reason), "expected {reason}, got {}", r.reason);
            assert_eq!(s.active.as_ref().unwrap().serial, Some(good.serial), "the last good set stays active");
            assert_eq!(s.last_error.as_ref().unwrap().reason, r.reason);
            r.reason.clone()
        }
    };

    // 1. Tampered module bytes.
    let bad = h.publish(&[("a", hello("a", "3.0.0", "a-v3"))]);
    tamper_module(&h.site(), &bad.gatherers[0].sha256);
    let reason = expect_refusal("sha256-mismatch").await;
    assert!(reason.contains(&bad.gatherers[0].sha256), "the status names the mismatch: {reason}");

    // 2. An index changed after signing.
    let index_path = h.site().join("index.json");
    let mut text = std::fs::read_to_string(&index_path).unwrap();
    text = text.replace(&format!("\"serial\": {}", bad.serial), &format!("\"serial\": {}", bad.serial + 10));
    std::fs::write(&index_path, &text).unwrap();
    expect_refusal("bad-signature").await;

    // 3. Signed with the wrong key.
    let (other, _) = agent::index::generate_key();
    let other_key = h.work.path().join("other.key");
    std::fs::write(&other_key, other).unwrap();
    let sig = agent::index::sign(&agent::index::read_signing_key(&other_key).unwrap(), text.as_bytes());
    std::fs::write(h.site().join("index.json.sig"), sig).unwrap();
    expect_refusal("bad-signature").await;

    // 4. A replay of an old, correctly signed index (a lower serial).
    std::fs::write(h.site().join("index.json.sig"), &v1_sig).unwrap();
    std::fs::write(&index_path, &v1_index).unwrap();
    let reason = expect_refusal("rollback").await;
    assert!(reason.contains("serial 1 is lower than the accepted serial 2"), "{reason}");

    // 5. The accepted serial again, with other content (mix-and-match).
    let sign = |bytes: &[u8]| {
        std::fs::write(h.site().join("index.json.sig"), agent::index::sign(&agent::index::read_signing_key(&h.key).unwrap(), bytes)).unwrap();
    };
    let mut old: agent::index::Index = serde_json::from_slice(&v1_index).unwrap();
    old.serial = good.serial;
    let old_bytes = serde_json::to_vec_pretty(&old).unwrap();
    sign(&old_bytes);
    std::fs::write(&index_path, &old_bytes).unwrap();
    expect_refusal("replay").await;

    // 6. Expired.
    let mut expired = old.clone();
    expired.serial = 50;
    expired.expires = Some("2020-01-01T00:00:00Z".into());
    let expired_bytes = serde_json::to_vec_pretty(&expired).unwrap();
    sign(&expired_bytes);
    std::fs::write(&index_path, &expired_bytes).unwrap();
    expect_refusal("expired").await;

    // 7. Malformed JSON (signed, so it gets past the signature check).
    let junk = b"{\"apiVersion\": \"gather-agent.io/v1\", \"serial\": 51, ";
    sign(junk);
    std::fs::write(&index_path, junk).unwrap();
    expect_refusal("malformed").await;

    // Through all of it, periods kept producing archives with the good set.
    let periods = agent.status.get().periods;
    agent.until("more periods", |s| s.periods > periods).await;
    agent.stop().await;
    let last = archives(&h.out()).pop().unwrap();
    let m = meta(&last);
    assert_eq!(m.status_reports[0].sha256, good.gatherers[0].sha256);
    let warnings = archives(&h.out()).iter().flat_map(|a| meta(a).warnings).collect::<Vec<_>>();
    assert!(warnings.iter().any(|w| w.contains("sha256-mismatch")), "refusals reach the archives' metadata: {warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_index_is_a_304_and_nothing_is_downloaded_again() {
    let h = Harness::new().await;
    let v1 = h.publish(&[("a", hello("a", "1.0.0", "a-v1"))]);
    let agent = h.start(h.config()).await;
    agent.until("several polls", |s| s.periods >= 3 && s.last_poll.as_ref().is_some_and(|p| p.result == "304")).await;
    agent.stop().await;
    let server = h.server.as_ref().unwrap();
    let (index_requests, index_200s) = server.requests("/index.json");
    assert!(index_requests >= 3, "{index_requests}");
    assert_eq!(index_200s, 1, "every poll after the first was answered 304");
    assert_eq!(server.requests(&format!("/{}.wasm", v1.gatherers[0].sha256)), (1, 1), "the module was downloaded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_the_server_gathers_with_the_cached_set() {
    let mut h = Harness::new().await;
    let v1 = h.publish(&[("a", hello("a", "1.0.0", "a-v1"))]);
    let agent = h.start(h.config()).await;
    agent.until("an archive", |s| s.periods >= 1).await;
    agent.stop().await;
    h.server.take().unwrap().shutdown().await;
    let before = archives(&h.out()).len();

    let agent = h.start(h.config()).await;
    let s = agent.until("a period with the cached set", |s| s.periods >= 1).await;
    assert_eq!(s.last_poll.as_ref().map(|p| p.result.as_str()), Some("error"), "the URL is unreachable");
    agent.stop().await;
    let all = archives(&h.out());
    assert!(all.len() > before);
    let m = meta(all.last().unwrap());
    assert_eq!(m.status_reports[0].sha256, v1.gatherers[0].sha256);
    assert_eq!(common::records(all.last().unwrap())["config/a.txt"], b"a-v1");

    // A second agent on the same state dir is refused while the first holds it.
    let first = Agent::new(h.config()).unwrap();
    let err = Agent::new(h.config()).err().unwrap().to_string();
    assert!(err.contains("in use by another gather-agent"), "{err}");
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cache_entry_is_downloaded_again() {
    let h = Harness::new().await;
    let v1 = h.publish(&[("a", hello("a", "1.0.0", "a-v1"))]);
    let agent = h.start(h.config()).await;
    agent.until("an archive", |s| s.periods >= 1).await;
    agent.stop().await;
    let cached = h.work.path().join("state/modules").join(format!("{}.wasm", v1.gatherers[0].sha256));
    std::fs::write(&cached, b"corrupted on disk").unwrap();
    // The restored index cannot be used without its module, so the agent refetches it.
    let agent = h.start(h.config()).await;
    agent.until("an archive from the re-downloaded module", |s| s.periods >= 1).await;
    agent.stop().await;
    assert_eq!(std::fs::read(&cached).unwrap(), hello("a", "1.0.0", "a-v1"));
    assert_eq!(h.server.as_ref().unwrap().requests(&format!("/{}.wasm", v1.gatherers[0].sha256)).1, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_modules_dir_is_watched() {
    let h = Harness::new().await;
    let dir = h.work.path().join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.wasm"), hello("a", "1.0.0", "a-v1")).unwrap();
    let mut cfg = h.config();
    cfg.index_url = None;
    cfg.public_key = None;
    cfg.modules_dir = Some(dir.clone());
    let agent = h.start(cfg).await;
    agent.until("v1 active", |s| s.active.as_ref().is_some_and(|a| a.modules[0].version == "1.0.0") && s.periods >= 1).await;

    // Replace the file: used from the next period.
    let tmp = dir.join(".a.wasm.tmp");
    std::fs::write(&tmp, hello("a", "2.0.0", "a-v2")).unwrap();
    std::fs::rename(&tmp, dir.join("a.wasm")).unwrap();
    let s = agent.until("v2 active", |s| s.active.as_ref().is_some_and(|a| a.modules[0].version == "2.0.0")).await;
    let periods = s.periods;
    agent.until("a v2 period", |s| s.periods > periods).await;

    // A corrupt file: refused, and v2 keeps running.
    std::fs::write(dir.join("a.wasm"), b"\0asm garbage").unwrap();
    let s = agent.until("the corrupt file is refused", |s| s.refused.iter().any(|r| r.reason.contains("keeping its previous version"))).await;
    assert_eq!(s.active.as_ref().unwrap().modules[0].version, "2.0.0");
    let periods = s.periods;
    agent.until("another period", |s| s.periods > periods + 1).await;
    agent.stop().await;
    let last = archives(&h.out()).pop().unwrap();
    assert_eq!(common::records(&last)["config/a.txt"], b"a-v2");
}
