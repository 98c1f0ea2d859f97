//! The binary stands alone: with no `--modules` (`gather`) and no module source (`run`) it
//! runs the default gatherers embedded in it; `--modules` takes a directory or one file.

use testkit as common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gather-agent"));
    c.env_remove("KUBECONFIG").env_remove("KUBERNETES_SERVICE_HOST");
    c
}

/// Runs `gather-agent gather ARGS` off the test's runtime so the simulator keeps serving.
async fn gather(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || bin().arg("gather").args(&args).output().unwrap()).await.unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn archive_of(o: &Output) -> PathBuf {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The summary comes first on stdout; the archive's path is the last line.
    PathBuf::from(String::from_utf8(o.stdout.clone()).unwrap().lines().last().unwrap_or_default())
}

fn report_names(archive: &Path) -> Vec<String> {
    let meta: agent::archive::GathersMetadata = serde_json::from_slice(&common::records(archive)["insights-operator/gathers.json"]).unwrap();
    meta.status_reports.into_iter().map(|r| r.name).collect()
}

/// The gatherer names of the built default set (the same modules the binary embeds).
fn default_names() -> Vec<String> {
    let sandbox = agent::sandbox::Sandbox::new();
    let mut names: Vec<String> = common::built_gatherers().iter().map(|(_, b)| sandbox.load(b).unwrap().manifest.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_without_modules_runs_the_embedded_defaults() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let o = gather(vec!["--kubeconfig".into(), s(&kc), "--out".into(), s(&dir.path().join("out"))]).await;
    let archive = archive_of(&o);
    assert_eq!(report_names(&archive), default_names());
    let records = common::records(&archive);
    assert!(records.contains_key("config/clusteroperator/dns.json"), "{:?}", records.keys().collect::<Vec<_>>());
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 failed"), "the summary is on stdout: {}", String::from_utf8_lossy(&o.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_modules_takes_one_file() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let file = dir.path().join("x.wasm");
    std::fs::write(&file, common::hello("x", "1.0.0", "one file")).unwrap();
    let o = gather(vec!["--kubeconfig".into(), s(&kc), "--modules".into(), s(&file), "--out".into(), s(&dir.path().join("out"))]).await;
    let archive = archive_of(&o);
    assert_eq!(report_names(&archive), ["x"]);
    assert_eq!(common::records(&archive)["config/x.txt"], b"one file");
}

#[test]
fn run_without_index_or_modules_dir_runs_the_embedded_defaults() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(common::start_sample());
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let out = dir.path().join("out");
    let mut child = bin()
        .arg("run").arg("--kubeconfig").arg(&kc).arg("--out").arg(&out).arg("--state-dir").arg(dir.path().join("state"))
        .args(["--listen", "off", "--period", "1h"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let finished = || -> Option<PathBuf> {
        std::fs::read_dir(&out).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("insights-") && n.ends_with(".tar.gz")
        })
    };
    // A hang guard, not a speed check.
    let mut archive = None;
    for _ in 0..2400 {
        archive = finished();
        if archive.is_some() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let archive = archive.expect("`run` with no module source writes an archive with the embedded defaults");
    assert_eq!(report_names(&archive), default_names());
    assert!(common::records(&archive).contains_key("config/clusteroperator/dns.json"));
}
