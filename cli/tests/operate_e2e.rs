//! The issue-15 end-to-end run of the real binary: `gather-agent --log-format json run`
//! against the simulator, its config file reloaded on SIGHUP (a change applied from the next
//! period and shown in `/status`) and on a ConfigMap-style symlink swap (a bad config refused,
//! shown, the old one staying); `/metrics` scraped and read by strict parsers; SIGTERM while
//! the API takes 15 s to answer (exit within the grace + 2 s, no partial archive); and every
//! stderr line read as one JSON object.

use testkit as common;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn archives(out: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(out).map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn gatherers_in(archive: &Path) -> Vec<String> {
    let meta: agent::archive::GathersMetadata = serde_json::from_slice(&common::records(archive)["insights-operator/gathers.json"]).unwrap();
    meta.status_reports.into_iter().map(|r| r.name).collect()
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reloads_scrapes_and_stops_on_time_with_json_logs() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let kc = w.join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let modules = w.join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(modules.join("a.wasm"), common::hello("a", "1.0.0", "A")).unwrap();
    std::fs::write(modules.join("b.wasm"), common::hello("b", "1.0.0", "B")).unwrap();
    let nodes = common::built_gatherers().into_iter().find(|(n, _)| n == "nodes.wasm").unwrap().1;
    std::fs::write(modules.join("nodes.wasm"), nodes).unwrap();
    // The config is mounted as a ConfigMap is: `config.json` is a symlink in the watched
    // directory; its target lives elsewhere, so editing the target is seen only on SIGHUP.
    let (mounted, real) = (w.join("config"), w.join("real"));
    std::fs::create_dir_all(&mounted).unwrap();
    std::fs::create_dir_all(&real).unwrap();
    let good = r#"{"concurrency": 2, "run": {"period": "1s", "shutdownGrace": "1s"}}"#;
    std::fs::write(real.join("v1.json"), good).unwrap();
    std::os::unix::fs::symlink(real.join("v1.json"), mounted.join("config.json")).unwrap();
    let cgroup = w.join("cgroup");
    std::fs::create_dir_all(&cgroup).unwrap();
    std::fs::write(cgroup.join("memory.max"), "1073741824\n").unwrap();
    let out = w.join("out");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .args(["--log-format", "json", "run"])
        .arg("--kubeconfig").arg(&kc)
        .arg("--modules-dir").arg(&modules)
        .arg("--out").arg(&out)
        .arg("--state-dir").arg(w.join("state"))
        .arg("--config").arg(mounted.join("config.json"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--jitter", "0"])
        .env("GATHER_AGENT_CGROUP_ROOT", &cgroup)
        .env_remove("GATHER_AGENT_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (stderr, lines) = (child.stderr.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr).lines() {
                lines.lock().unwrap().push(l.unwrap());
            }
        })
    };
    agent::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let status = || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http.get(format!("{base}/status")).send().await.ok()?;
            r.json::<serde_json::Value>().await.ok()
        }
    };
    macro_rules! wait {
        ($what:expr, $cond:expr) => {{
            let t0 = Instant::now();
            loop {
                if let Some(s) = status().await {
                    if $cond(&s) {
                        break s;
                    }
                }
                assert!(t0.elapsed() < Duration::from_secs(60), "timed out waiting for {}: {:?}\n{}", $what, status().await, lines.lock().unwrap().join("\n"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }};
    }
    let periods = |s: &serde_json::Value| s["periods"].as_u64().unwrap_or(0);
    let last_archive = |s: &serde_json::Value| PathBuf::from(s["lastArchive"]["path"].as_str().unwrap());

    let s = wait!("a first period", |s: &serde_json::Value| periods(s) >= 1);
    assert_eq!(gatherers_in(&last_archive(&s)), ["a", "b", "nodes"]);
    assert_eq!(s["config"]["generation"], 1);

    // 1. SIGHUP with a changed config (the symlink's target edited): `b` disabled from the
    //    next period on, and /status says which configuration is in force since when.
    std::fs::write(real.join("v1.json"), r#"{"concurrency": 2, "modules": {"b": {"disabled": true}}, "run": {"period": "1s", "shutdownGrace": "1s"}}"#).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status().await.unwrap()["config"]["generation"], 1, "the target is not in the watched directory");
    signal(pid, "-HUP");
    let s = wait!("the SIGHUP reload", |s: &serde_json::Value| s["config"]["generation"] == 2);
    assert_eq!(s["config"]["lastReload"]["trigger"], "SIGHUP");
    assert_eq!(s["config"]["lastReload"]["result"], "applied");
    let s = wait!("a period under the new config", |s: &serde_json::Value| s["config"]["firstPeriod"].as_u64().is_some_and(|p| periods(s) >= p));
    let first = s["config"]["firstPeriod"].as_u64().unwrap();
    let s = wait!("its archive", |s: &serde_json::Value| periods(s) >= first);
    assert_eq!(gatherers_in(&last_archive(&s)), ["a", "nodes"], "b is disabled");
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP does not end the agent");

    // 2. The ConfigMap is updated by a symlink swap, to a config that fails validation:
    //    refused, shown in /status, the previous configuration stays.
    std::fs::write(real.join("v2.json"), r#"{"concurrency": 0}"#).unwrap();
    std::os::unix::fs::symlink(real.join("v2.json"), mounted.join(".config.json.new")).unwrap();
    std::fs::rename(mounted.join(".config.json.new"), mounted.join("config.json")).unwrap();
    let s = wait!("the refusal", |s: &serde_json::Value| s["config"]["lastReload"]["result"] == "refused");
    assert_eq!(s["config"]["lastReload"]["trigger"], "file changed");
    assert!(s["config"]["lastReload"]["error"].as_str().unwrap().contains("concurrency"), "{s:#}");
    assert_eq!(s["config"]["generation"], 2);
    let before = periods(&s);
    let s = wait!("a period after the refusal", |s: &serde_json::Value| periods(s) > before);
    assert_eq!(gatherers_in(&last_archive(&s)), ["a", "nodes"], "the previous configuration still applies");

    // 3. /metrics, read by strict parsers.
    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = resp.text().await.unwrap();
    let fams = common::prom::check_text_0_0_4(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(fams["gather_agent_config_reloads_total"].samples.iter().any(|s| s.1["result"] == "refused" && s.2 == 1.0), "{text}");
    common::prom::python_parse(&text, false).unwrap_or_else(|e| panic!("prometheus_client: {e}"));
    let om = http.get(format!("{base}/metrics")).header("accept", "application/openmetrics-text").send().await.unwrap().text().await.unwrap();
    common::prom::python_parse(&om, true).unwrap_or_else(|e| panic!("prometheus_client OpenMetrics: {e}"));

    // 4. SIGTERM while the API takes 15 s to answer, with a 1 s grace.
    sim.set_delay(Duration::from_secs(15));
    let before = periods(&status().await.unwrap());
    // The next period starts within a second and its `nodes` request waits for the API.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = status().await.unwrap();
    assert_eq!(periods(&s), before, "the period is held up by the API");
    let kept = archives(&out);
    assert!(kept.iter().any(|n| n.starts_with('.')), "a period is under way (its temp file exists): {kept:?}");
    let stop = Instant::now();
    signal(pid, "-TERM");
    let exit = loop {
        if let Some(e) = child.try_wait().unwrap() {
            break e;
        }
        assert!(stop.elapsed() < Duration::from_secs(20), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = stop.elapsed();
    eprintln!("SIGTERM to exit, with a 1 s grace and a 15 s API: {took:?}");
    reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    assert!(exit.success(), "{exit:?}\n{}", lines.join("\n"));
    assert!(took < Duration::from_secs(3), "grace 1 s + 2 s; took {took:?}");
    let left = archives(&out);
    assert_eq!(left, kept.iter().filter(|n| !n.starts_with('.')).cloned().collect::<Vec<_>>(), "no partial archive, no temp file");

    // 5. Every stderr line is one JSON object, with values, not Debug forms, in its fields.
    assert!(lines.len() > 10, "{lines:?}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.is_object() && v["level"].is_string(), "{l}");
        assert!(!l.contains("Some("), "{l}");
    }
    let text = lines.join("\n");
    for expected in ["configuration reloaded", "configuration refused", "abandoning the period", "shutting down"] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
}

/// `run`'s start-up error, with `args` and `env`.
fn run_error(work: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gather-agent"));
    cmd.arg("run").arg("--out").arg(work.join("out")).arg("--state-dir").arg(work.join("state")).args(["--listen", "off"]).args(args);
    for k in ["GATHER_AGENT_PUBLIC_KEY", "GATHER_AGENT_PERIOD", "GATHER_AGENT_INDEX_URL", "GATHER_AGENT_CONFIG"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let o = cmd.output().unwrap();
    assert!(!o.status.success());
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn errors_name_where_the_bad_value_came_from() {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("agent.json");
    std::fs::write(&cfg, r#"{"run": {"publicKey": "not-a-key", "period": "soon"}}"#).unwrap();
    let cfg_s = cfg.display().to_string();
    let e = run_error(work.path(), &["--config", &cfg_s, "--period", "1h"], &[]);
    assert!(e.contains(&format!("run.publicKey in config file {cfg_s}")) && !e.contains("--public-key"), "{e}");
    let e = run_error(work.path(), &["--config", &cfg_s, "--public-key", "also-not-a-key", "--period", "1h"], &[]);
    assert!(e.contains("--public-key"), "{e}");
    let e = run_error(work.path(), &["--config", &cfg_s, "--period", "1h"], &[("GATHER_AGENT_PUBLIC_KEY", "nope")]);
    assert!(e.contains("$GATHER_AGENT_PUBLIC_KEY"), "{e}");
    std::fs::write(&cfg, r#"{"run": {"period": "soon"}}"#).unwrap();
    let e = run_error(work.path(), &["--config", &cfg_s], &[]);
    assert!(e.contains(&format!("run.period in config file {cfg_s}")) && e.contains("\"soon\""), "{e}");
    let e = run_error(work.path(), &["--period", "soon"], &[]);
    assert!(e.contains("--period") && !e.contains("config file"), "{e}");
    // An index URL the agent cannot fetch is refused at start, not at every poll.
    let e = run_error(work.path(), &["--index-url", "ftp://example.com/index.json"], &[]);
    assert!(e.contains("unsupported scheme \"ftp\""), "{e}");
}

#[test]
fn text_logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    // `script` gives the agent a pseudo-terminal for stderr.
    if Command::new("script").arg("--version").output().is_err() {
        panic!("this test needs `script` (util-linux) to give the binary a terminal");
    }
    let work = tempfile::tempdir().unwrap();
    // An index URL that fails on every poll (unreachable): a warning is logged, coloured or not.
    let kc = work.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let cmd = format!(
        "timeout -s TERM 3 '{}' run --kubeconfig '{}' --out '{}' --state-dir '{}' --listen off --index-url http://127.0.0.1:9/index.json --poll-interval 1h",
        env!("CARGO_BIN_EXE_gather-agent"),
        kc.display(),
        work.path().join("out").display(),
        work.path().join("state").display()
    );
    let on_tty = |no_color: Option<&str>| {
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR").env_remove("GATHER_AGENT_LOG_FORMAT");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        c.output().unwrap().stdout
    };
    let coloured = on_tty(None);
    let plain = on_tty(Some("1"));
    let text = String::from_utf8_lossy(&coloured);
    assert!(text.contains("Kubernetes client from") && text.contains("poll failed"), "{text}");
    assert!(coloured.contains(&0x1b), "colour on a terminal: {text:?}");
    assert!(!plain.contains(&0x1b), "NO_COLOR: {:?}", String::from_utf8_lossy(&plain));
}
