//! `gather-agent gather` as an operator runs it, including where the kube config comes from:
//! `--kubeconfig`, then `KUBECONFIG`, then in-cluster.

use testkit as common;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary off the test's runtime so the in-process simulator keeps serving.
async fn gather(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gather-agent"));
        cmd.env_remove("KUBECONFIG").env_remove("KUBERNETES_SERVICE_HOST").arg("gather").args(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_writes_one_archive_and_prints_its_path() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let modules = common::modules_dir(dir.path());
    let out = dir.path().join("out");
    let o = gather(vec!["--kubeconfig".into(), s(&kc), "--modules".into(), s(&modules), "--out".into(), s(&out)], vec![]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout.clone()).unwrap();
    let path = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(Path::new(&path).starts_with(&out) && Path::new(&path).exists(), "{path}");
    let listing = Command::new("tar").arg("-tzf").arg(&path).output().unwrap();
    assert!(listing.status.success());
    assert!(String::from_utf8_lossy(&listing.stdout).contains("config/clusteroperator/dns.json"));
    let n = common::built_gatherers().len();
    assert!(stdout.contains(&format!("{n} gatherers")) && stdout.contains("0 failed"), "the summary is on stdout: {stdout}");
    let entries: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 1, "exactly one archive, no temp files: {entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_order_flag_then_env_then_in_cluster() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    sim.write_kubeconfig(&good).unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "this is not a kubeconfig: [").unwrap();
    let modules = common::modules_dir(dir.path());
    let base = |out: &str| vec!["--modules".into(), s(&modules), "--out".into(), s(&dir.path().join(out))];

    // KUBECONFIG alone is used.
    let o = gather(base("a"), vec![("KUBECONFIG", s(&good))]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("KUBECONFIG="));

    // The flag wins over KUBECONFIG.
    let mut args = base("b");
    args.extend(["--kubeconfig".into(), s(&good)]);
    let o = gather(args, vec![("KUBECONFIG", s(&bad))]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--kubeconfig"));

    // A bad KUBECONFIG is an error naming it, not a silent fall-through to in-cluster.
    let o = gather(base("c"), vec![("KUBECONFIG", s(&bad))]).await;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(&s(&bad)));

    // Nothing configured and not in a pod: a clear error, no archive.
    let o = gather(base("d"), vec![]).await;
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no --kubeconfig, no KUBECONFIG") && err.contains("in-cluster"), "{err}");
    assert!(!dir.path().join("d").exists());
}

#[test]
fn gather_without_modules_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .args(["gather", "--kubeconfig", "/nonexistent", "--modules"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_service_account_is_the_last_resort() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    // As the kubelet writes it: no trailing newline.
    std::fs::write(sa.join("token"), &sim.token).unwrap();
    std::fs::write(sa.join("ca.crt"), &sim.ca_pem).unwrap();
    std::fs::write(sa.join("namespace"), "gather-agent").unwrap();
    let modules = common::modules_dir(dir.path());
    let pod_env = |sa: &Path| {
        vec![
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_owned()),
            ("KUBERNETES_SERVICE_PORT", sim.addr.port().to_string()),
            ("GATHER_AGENT_SERVICEACCOUNT_DIR", s(sa)),
        ]
    };
    let o = gather(vec!["--modules".into(), s(&modules), "--out".into(), s(&dir.path().join("a"))], pod_env(&sa)).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("in-cluster service account"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 failed"), "the token and CA from the files work");

    // KUBECONFIG comes before in-cluster: a bad one is reported even inside a pod.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "nope: [").unwrap();
    let mut env = pod_env(&sa);
    env.push(("KUBECONFIG", s(&bad)));
    let o = gather(vec!["--modules".into(), s(&modules), "--out".into(), s(&dir.path().join("b"))], env).await;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(&s(&bad)));

    // A hand-made token file with a newline is a clear error, not a mysterious 401.
    let nl = dir.path().join("nl-sa");
    std::fs::create_dir_all(&nl).unwrap();
    std::fs::write(nl.join("token"), format!("{}\n", sim.token)).unwrap();
    std::fs::write(nl.join("ca.crt"), &sim.ca_pem).unwrap();
    let o = gather(vec!["--modules".into(), s(&modules), "--out".into(), s(&dir.path().join("d"))], pod_env(&nl)).await;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ends with whitespace"));

    // A missing token is a clear error, not a crash.
    let empty = dir.path().join("empty-sa");
    std::fs::create_dir_all(&empty).unwrap();
    let o = gather(vec!["--modules".into(), s(&modules), "--out".into(), s(&dir.path().join("c"))], pod_env(&empty)).await;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no service-account token"));
}

/// Every stderr line, when there is any.
fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr).lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_lines_and_the_summary_is_on_stdout() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let out = dir.path().join("out");
    let o = gather(vec!["--log-format".into(), "json".into(), "--kubeconfig".into(), s(&kc), "--out".into(), s(&out)], vec![]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = stderr_lines(&o);
    assert!(lines.iter().any(|l| l.contains("archive written")), "the summary is also a log event: {lines:?}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"));
        assert!(v.is_object(), "{l}");
    }
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert!(stdout.contains(" gatherers, ") && stdout.contains(" records"), "the human summary is on stdout: {stdout}");
    assert!(Path::new(stdout.lines().last().unwrap()).exists(), "the path is the last line: {stdout}");

    // A fatal error is a JSON line too.
    let o = gather(vec!["--log-format".into(), "json".into(), "--kubeconfig".into(), "/nonexistent/kc".into(), "--out".into(), s(&out)], vec![]).await;
    assert!(!o.status.success());
    let lines = stderr_lines(&o);
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"));
        assert!(v.is_object(), "{l}");
    }
    assert!(lines.last().unwrap().contains("/nonexistent/kc"), "{lines:?}");

    // Text logs into a pipe carry no colour codes.
    let o = gather(vec!["--kubeconfig".into(), s(&kc), "--out".into(), s(&out)], vec![]).await;
    assert!(o.status.success());
    assert!(!o.stderr.is_empty() && !o.stderr.contains(&0x1b), "no ANSI escapes into a pipe: {}", String::from_utf8_lossy(&o.stderr));
}
