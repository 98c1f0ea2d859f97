//! The command line behaves the same everywhere: durations parse alike, `gather` reads `run`'s
//! environment variables, every usage error exits 2 (and runtime failures 1), errors name what
//! they are about (kubeconfig paths unquoted, an unreachable API server by URL and cause), and
//! `version` / `completions` describe this very binary.

use testkit as common;

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gather-agent"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GATHER_AGENT_") {
            c.env_remove(k);
        }
    }
    c.env_remove("KUBECONFIG").env_remove("KUBERNETES_SERVICE_HOST");
    c
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the binary off the test's runtime so the in-process simulator keeps serving.
async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

#[test]
fn every_usage_error_exits_2_and_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| s(&dir.path().join(p));
    let bad_config = dir.path().join("bad.json");
    std::fs::write(&bad_config, b"{\"concurrency\": \"four\"}").unwrap();
    let archive = dir.path().join("a.tar.gz");
    std::fs::write(&archive, b"not an archive").unwrap();
    let usage: Vec<Vec<String>> = vec![
        // clap's own checks.
        vec!["run".into(), "--keep-archives".into(), "many".into()],
        vec!["gather".into(), "--kubeconfig".into(), "k".into()],
        vec!["completions".into(), "tcsh".into()],
        vec!["publish".into(), "--modules".into(), d("m"), "--out".into(), d("site"), "--expires-in".into(), "soon".into()],
        vec!["nonsense".into()],
        // Ours, after parsing: the same status.
        vec!["run".into(), "--out".into(), d("o"), "--state-dir".into(), d("s"), "--period".into(), "abc".into()],
        vec!["run".into(), "--out".into(), d("o"), "--state-dir".into(), d("s"), "--listen".into(), "nowhere".into()],
        vec!["run".into(), "--state-dir".into(), d("s")],
        vec!["gather".into(), "--out".into(), d("o"), "--config".into(), s(&bad_config)],
        vec!["inspect".into(), "a".into(), "b".into(), "c".into(), "d".into()],
        vec!["inspect".into(), s(&archive), "--all".into()],
        vec!["serve".into(), d("no-site")],
    ];
    #[cfg(feature = "devtools")]
    let usage = {
        let mut u = usage;
        // A bare number is not a duration, for `demo --period` as for every other duration.
        u.push(vec!["demo".into(), "--period".into(), "1".into(), "--dir".into(), d("demo")]);
        u
    };
    for args in &usage {
        let o = bin().args(args).env("GATHER_AGENT_LISTEN", "off").output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error"), "{args:?}: {}", stderr(&o));
    }
    // Failures of the work itself, with valid arguments.
    for args in [
        vec!["gather".into(), "--kubeconfig".into(), d("missing.yaml"), "--out".into(), d("o")],
        vec!["inspect".into(), s(&archive)],
    ] {
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    }
    let help = bin().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit status: 0 success; 1 the command failed"));
}

#[cfg(feature = "devtools")]
#[test]
fn demo_period_is_a_duration() {
    let o = bin().args(["demo", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("--period <DURATION>") && help.contains("[default: 3s]"), "{help}");
    let o = bin().args(["demo", "--period", "0s"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("must be positive"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_reads_the_environment_variables_run_reads() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let module = dir.path().join("x.wasm");
    std::fs::write(&module, common::hello("x", "1.0.0", "from the environment")).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, br#"{"modules": {"x": {"limits": {"deadlineSeconds": 7}}}}"#).unwrap();
    let out = dir.path().join("out");
    let mut cmd = bin();
    cmd.arg("gather")
        .env("GATHER_AGENT_KUBECONFIG", &kc)
        .env("GATHER_AGENT_MODULES_DIR", &module)
        .env("GATHER_AGENT_OUT", &out)
        .env("GATHER_AGENT_CONFIG", &config);
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", stderr(&o));
    // The summary first; the archive's path is the last line of stdout.
    let archive = String::from_utf8(o.stdout).unwrap().lines().last().unwrap_or_default().to_owned();
    assert!(Path::new(&archive).starts_with(&out), "{archive}");
    assert_eq!(common::records(Path::new(&archive))["config/x.txt"], b"from the environment");
    // Flags still win over the environment.
    let mut cmd = bin();
    cmd.arg("gather").args(["--out"]).arg(dir.path().join("flag")).env("GATHER_AGENT_KUBECONFIG", &kc).env("GATHER_AGENT_MODULES_DIR", &module).env("GATHER_AGENT_OUT", &out);
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8(o.stdout).unwrap().lines().last().unwrap_or_default().starts_with(&s(&dir.path().join("flag"))));
    // And the help says so.
    let help = bin().args(["gather", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for var in ["GATHER_AGENT_KUBECONFIG", "GATHER_AGENT_MODULES_DIR", "GATHER_AGENT_OUT", "GATHER_AGENT_CONFIG"] {
        assert!(help.contains(&format!("[env: {var}=")), "{var} missing from gather --help");
    }
}

#[test]
fn kubeconfig_errors_name_the_path_once_and_unquoted() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let o = bin().arg("gather").arg("--kubeconfig").arg(&missing).arg("--out").arg(dir.path().join("o")).output().unwrap();
    let err = stderr(&o);
    assert_eq!(err.trim(), format!("error: reading kubeconfig {}: No such file or directory (os error 2)", missing.display()));
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "clusters: 7\n").unwrap();
    let o = bin().arg("gather").arg("--kubeconfig").arg(&bad).arg("--out").arg(dir.path().join("o")).output().unwrap();
    let err = stderr(&o);
    assert!(err.starts_with(&format!("error: reading kubeconfig {}: failed to parse kubeconfig YAML", bad.display())), "{err}");
    assert!(!err.contains('"') && !err.contains('\''), "no quoted paths: {err}");
}

/// A kubeconfig for `server`, with a token and no CA unless given.
fn kubeconfig(path: &Path, server: &str, skip_verify: bool) {
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\", insecure-skip-tls-verify: {skip_verify}}}\n\
             contexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_named_with_the_cause() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("nodes.wasm");
    let nodes = common::built_gatherers().into_iter().find(|(n, _)| n == "nodes.wasm").unwrap().1;
    std::fs::write(&module, nodes).unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let sim_url = sim.url.clone();
    let cases = [
        (format!("https://{closed}"), true, "Connection refused"),
        ("https://no-such-host.invalid:6443".to_owned(), true, "dns error"),
        // The simulator's self-signed certificate, with no CA given: a TLS failure.
        (sim_url.trim_end_matches('/').to_owned(), false, "certificate"),
    ];
    for (i, (server, skip, cause)) in cases.into_iter().enumerate() {
        let kc = dir.path().join(format!("k{i}.yaml"));
        kubeconfig(&kc, &server, skip);
        let mut cmd = bin();
        cmd.arg("gather").arg("--kubeconfig").arg(&kc).arg("--modules").arg(&module).arg("--out").arg(dir.path().join(format!("o{i}")));
        let o = output(cmd).await;
        assert!(o.status.success(), "an archive records the failure: {}", stderr(&o));
        let archive = String::from_utf8(o.stdout.clone()).unwrap().lines().last().unwrap_or_default().to_owned();
        let meta: agent::archive::GathersMetadata = serde_json::from_slice(&common::records(Path::new(&archive))["insights-operator/gathers.json"]).unwrap();
        let error = meta.status_reports[0].errors.as_ref().and_then(|e| e.first()).cloned().unwrap_or_default();
        let log = stderr(&o);
        for text in [error.as_str(), log.as_str()] {
            assert!(text.contains(&server), "names the server {server}: {text}");
            assert!(text.contains(cause), "says why ({cause}): {text}");
            assert!(!text.contains("ServiceError"), "{text}");
        }
    }
}

#[test]
fn version_describes_this_binary() {
    let o = bin().args(["version", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["abi_version"], hostapi::abi::ABI_VERSION);
    // Built from this checkout: the same commit git reports now (or `unknown` without git).
    let head = Command::new("git").args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"]).output();
    let expected = match head {
        Ok(h) if h.status.success() => String::from_utf8(h.stdout).unwrap().trim().to_owned(),
        _ => "unknown".to_owned(),
    };
    assert_eq!(v["git_commit"], expected);
    // The embedded set is the built default set, byte for byte.
    let sandbox = agent::sandbox::Sandbox::new();
    let mut want: Vec<(String, String, String)> = common::built_gatherers()
        .iter()
        .map(|(_, b)| {
            let m = sandbox.load(b).unwrap();
            (m.manifest.name.clone(), m.manifest.version.clone(), agent::util::sha256_hex(b))
        })
        .collect();
    want.sort();
    let mut got: Vec<(String, String, String)> = v["default_gatherers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap().into(), g["version"].as_str().unwrap().into(), g["sha256"].as_str().unwrap().into()))
        .collect();
    got.sort();
    assert_eq!(got, want);
    let text = bin().arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("gather-agent {}", env!("CARGO_PKG_VERSION"))) && text.contains(&expected), "{text}");
    assert!(text.contains(&want[0].2), "{text}");
}

#[test]
fn completions_cover_the_subcommands_for_each_shell() {
    for (shell, marker) in [("bash", "-o default gather-agent"), ("zsh", "#compdef gather-agent"), ("fish", "complete -c gather-agent"), ("powershell", "Register-ArgumentCompleter"), ("elvish", "edit:completion:arg-completer[gather-agent]")] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in ["gather", "run", "publish", "inspect", "version", "completions", "kubeconfig", "index-url"] {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
    }
    // bash accepts the script.
    let o = bin().args(["completions", "bash"]).output().unwrap();
    let check = Command::new("bash").args(["-n", "-c"]).arg(String::from_utf8(o.stdout).unwrap()).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}
