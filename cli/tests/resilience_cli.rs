//! Resilience of the `gather-agent` binary itself: local faults (an unwritable output, a full
//! disk), SIGTERM during a period and while records stream into the archive, and a second agent
//! on the same state dir. The in-process resilience suite is `agent/tests/resilience.rs`.

use testkit as common;

use std::path::Path;
use std::time::Duration;

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_gather-agent"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_output_and_a_full_disk_lose_nothing() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let modules = common::modules_dir(dir.path());

    // The output "directory" is a file.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let (kc2, m2, f2) = (kc.clone(), modules.clone(), file.clone());
    let o = tokio::task::spawn_blocking(move || bin().arg("gather").arg("--kubeconfig").arg(&kc2).arg("--modules").arg(&m2).arg("--out").arg(&f2).output().unwrap()).await.unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not-a-dir") && err.lines().filter(|l| l.starts_with("error:")).count() == 1, "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // A full disk (a 20 KiB file-size limit): the write fails cleanly, nothing is left behind,
    // and an earlier archive in the same directory is untouched.
    let out = dir.path().join("out");
    let (kc2, m2, o2) = (kc.clone(), modules.clone(), out.clone());
    let ok = tokio::task::spawn_blocking(move || bin().arg("gather").arg("--kubeconfig").arg(&kc2).arg("--modules").arg(&m2).arg("--out").arg(&o2).output().unwrap()).await.unwrap();
    assert!(ok.status.success());
    let earlier = String::from_utf8(ok.stdout).unwrap().lines().last().unwrap_or_default().to_owned();
    let earlier_bytes = std::fs::read(&earlier).unwrap();
    let script = format!(
        "ulimit -f 20; exec '{}' gather --kubeconfig '{}' --modules '{}' --out '{}'",
        env!("CARGO_BIN_EXE_gather-agent"),
        kc.display(),
        modules.display(),
        out.display()
    );
    let o = tokio::task::spawn_blocking(move || std::process::Command::new("bash").arg("-c").arg(script).output().unwrap()).await.unwrap();
    assert!(!o.status.success(), "no archive could be written, so the exit status says so");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("File too large"), "{err}");
    let left: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left.len(), 1, "no partial archive, no temp file: {left:?}");
    assert_eq!(std::fs::read(&earlier).unwrap(), earlier_bytes);
}

#[test]
fn sigterm_while_records_stream_into_the_archive() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(common::start_sample());
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("forever.wasm"), common::records_forever().1).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"modules": {"forever": {"limits": {"deadlineSeconds": 30}}}}"#).unwrap();
    let out = dir.path().join("out");
    let mut child = bin()
        .arg("run").arg("--kubeconfig").arg(&kc).arg("--modules-dir").arg(&m).arg("--out").arg(&out)
        .arg("--state-dir").arg(dir.path().join("state")).arg("--config").arg(&config)
        .args(["--listen", "off", "--shutdown-grace", "0s"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the temp archive is growing: records are being written right now.
    let temp_size = || -> u64 {
        std::fs::read_dir(&out).map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with(".insights-")).map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)).sum()).unwrap_or(0)
    };
    for _ in 0..400 {
        if temp_size() > 64 * 1024 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if temp_size() == 0 {
        let _ = child.kill();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("the archive was never being written; agent stderr:\n{err}\nout: {:?}", std::fs::read_dir(&out).map(|d| d.count()));
    }
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    // A hang guard, not a speed check: the agent must exit at all after SIGTERM.
    let mut status = None;
    for _ in 0..2400 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let Some(status) = status else {
        let _ = child.kill();
        panic!("the agent did not exit after SIGTERM");
    };
    assert!(status.success(), "{status:?}");
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(left.is_empty(), "no partial archive and no temp file: {left:?}");
}

#[test]
fn a_second_agent_on_the_same_state_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("hello.wasm"), common::hello("hello", "1.0.0", "hi")).unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n").unwrap();
    let args = |out: &str| {
        let mut c = bin();
        c.arg("run").arg("--kubeconfig").arg(&kc).arg("--modules-dir").arg(&m).arg("--out").arg(dir.path().join(out))
            .arg("--state-dir").arg(dir.path().join("state")).args(["--listen", "off", "--period", "1h"]);
        c
    };
    let first_log = dir.path().join("first.log");
    let mut first = args("a").stderr(std::fs::File::create(&first_log).unwrap()).spawn().unwrap();
    // Only start the second agent once the first holds the lock (its pid is in the lock file):
    // under load the first may need more than a moment to get there.
    let lock = dir.path().join("state/lock");
    let holds = || std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&first.id().to_string()));
    let waited = std::time::Instant::now();
    while !holds() && waited.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut second = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        // If the first agent died, a second one would take the lock and run its 1 h period:
        // fail with the first one's log instead of hanging.
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the first agent exited early ({status}): {}", std::fs::read_to_string(&first_log).unwrap_or_default());
        }
        let mut c = args("b");
        let mut child = c.stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read as _;
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        let status = status.expect("a second agent on a locked state dir must refuse at once, not run");
        if !status.success() && stderr.contains("in use by another gather-agent") {
            second = Some(stderr);
            break;
        }
    }
    let _ = first.kill();
    let _ = first.wait();
    let err = second.expect("the second agent refused");
    assert!(err.contains(&format!("pid {}", first.id())), "the message names the holder: {err}");
}

#[test]
fn sigterm_during_a_period_leaves_no_partial_archive() {
    use std::process::{Command, Stdio};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(common::start_sample());
    let work = tempfile::tempdir().unwrap();
    let kc = work.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let modules = work.path().join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(modules.join("a.wasm"), common::hello("a", "1.0.0", "x")).unwrap();
    std::fs::write(modules.join("loop.wasm"), common::wat("guests/loop.wat").1).unwrap();
    let config = work.path().join("config.json");
    // Each period takes ~1.5 s (the spinning guest hits its deadline), so SIGTERM lands mid-period.
    std::fs::write(&config, r#"{"modules": {"loop": {"limits": {"deadlineMs": 1500}}}}"#).unwrap();
    let out = work.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .arg("run")
        .arg("--kubeconfig").arg(&kc)
        .arg("--modules-dir").arg(&modules)
        .arg("--out").arg(&out)
        .arg("--state-dir").arg(work.path().join("state"))
        .arg("--config").arg(&config)
        .args(["--period", "200ms", "--listen", "off", "--shutdown-grace", "300ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let archives = |out: &Path| -> Vec<String> {
        std::fs::read_dir(out).map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
    };
    // Wait for the first archive, then for the second period to be under way.
    for _ in 0..400 {
        if archives(&out).iter().any(|n| n.ends_with(".tar.gz")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let first = archives(&out);
    assert_eq!(first.iter().filter(|n| n.ends_with(".tar.gz") && !n.starts_with('.')).count(), 1, "{first:?}");
    assert!(first.iter().any(|n| n.starts_with(".insights-")), "a period is mid-way (its temp file exists): {first:?}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut exit = None;
    for _ in 0..300 {
        if let Some(s) = child.try_wait().unwrap() {
            exit = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exit = exit.expect("the agent exits after SIGTERM");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "exit status {exit:?}\n{stderr}");
    assert!(stderr.contains("abandoning the period"), "{stderr}");
    let left = archives(&out);
    assert_eq!(left.len(), 1, "no temp file and no partial archive: {left:?}");
    let listing = Command::new("tar").arg("-tzf").arg(out.join(&left[0])).output().unwrap();
    assert!(listing.status.success(), "the earlier archive is intact");
    drop(sim);
}
