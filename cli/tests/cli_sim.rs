//! `gather-agent sim` as a user runs it: prints its URL, writes a kubeconfig kubectl accepts,
//! and exits cleanly on SIGTERM.

use testkit as common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sim_command_serves_kubectl_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("k.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .args(["sim", "--listen", "127.0.0.1:0", "--forbid", "secrets", "--fixtures"])
        .arg(common::sample_dir())
        .arg("--write-kubeconfig")
        .arg(&kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("sim prints its URL").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_owned();
        }
    };
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    while !lines.next().unwrap().unwrap().starts_with("press Ctrl-C") {}
    assert!(std::fs::read_to_string(&kc).unwrap().contains(&url));

    let home = dir.path().join("home");
    let out = Command::new("kubectl")
        .env("HOME", &home)
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "co", "-o", "name"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(out.stdout).unwrap().lines().count();
    assert_eq!(listed, common::fixture_names("ClusterOperator").len());

    let out = Command::new("kubectl")
        .env("HOME", &home)
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "secrets", "-A"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Forbidden"));

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "sim did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "sim exits 0 on SIGTERM: {exit:?}");
    assert!(lines.any(|l| l.unwrap() == "stopped"));
}

#[test]
fn sim_command_reports_bad_fixtures_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .args(["sim", "--listen", "127.0.0.1:0", "--fixtures", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/dir") && err.contains("does not exist"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .args(["sim", "--listen", "127.0.0.1:0", "--fixtures"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.json") && err.contains("not valid JSON"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .args(["sim", "--fixtures", "x", "--fail", "nodes=500"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PATH_PREFIX=STATUS"));
}
