//! The binary stands alone: a copy of `gather-agent` in an empty directory, run with its
//! working directory, `HOME` and environment away from the source tree, still runs `demo`
//! (embedded gatherers and sample cluster) and `sim` (embedded sample), and `gather` works
//! against that simulator.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit as common;

/// A copy of the built binary alone in `dir/bin`, plus an empty working directory `dir/cwd`.
fn copied_binary(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let exe = bin.join("gather-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_gather-agent"), &exe).unwrap();
    (exe, cwd)
}

/// Runs `f` until it does not fail with ETXTBSY. The binary was just copied, and another test
/// thread forking at that moment can hold the copy's write descriptor until its child execs.
fn unless_busy<T>(mut f: impl FnMut() -> std::io::Result<T>) -> T {
    for _ in 0..50 {
        match f() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => std::thread::sleep(std::time::Duration::from_millis(100)),
            r => return r.unwrap(),
        }
    }
    f().unwrap()
}

/// A command with nothing pointing at the repository: empty cwd, empty environment but `HOME`.
fn isolated(exe: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.current_dir(cwd).env_clear().env("HOME", cwd);
    cmd
}

#[test]
fn copied_binary_runs_the_demo_with_no_source_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, cwd) = copied_binary(dir.path());
    let out = unless_busy(|| isolated(&exe, &cwd).args(["demo", "--period", "1s", "--dir", "work"]).output());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("the embedded sample cluster"), "{stdout}");
    assert!(stdout.contains("[6/6] done"), "{stdout}");
    assert!(stdout.contains("ingresscontroller@1.1.0"), "{stdout}");
    let archives = std::fs::read_dir(cwd.join("work/archives")).unwrap().count();
    assert!(archives >= 3, "three periods, three archives");
}

#[test]
fn copied_binary_serves_the_embedded_sample_and_gathers_it_with_the_embedded_set() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, cwd) = copied_binary(dir.path());
    let mut sim = unless_busy(|| {
        isolated(&exe, &cwd)
            .args(["sim", "--listen", "127.0.0.1:0", "--write-kubeconfig", "k.yaml"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
    });
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("sim prints its status").unwrap();
        let ready = line.starts_with("press Ctrl-C");
        seen.push(line);
        if ready {
            break;
        }
    }
    let seen = seen.join("\n");
    assert!(seen.contains("from the embedded sample cluster"), "{seen}");
    let nodes = common::fixture_names("Node").len();
    assert!(nodes > 0);
    assert!(seen.contains(&format!("{nodes:>6}  nodes")), "the sample's {nodes} nodes are served:\n{seen}");

    // `gather` with no `--modules`: the set embedded in the binary (it reads no build path).
    let out = unless_busy(|| isolated(&exe, &cwd).args(["gather", "--kubeconfig", "k.yaml", "--out", "archives"]).output());
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(out.status.success(), "gather failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let archive = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default());
    let archive = if archive.is_absolute() { archive } else { cwd.join(archive) };
    let records = common::records(&archive);
    for node in common::fixture_names("Node") {
        assert!(records.contains_key(&format!("config/node/{node}.json")), "node {node} gathered: {:?}", records.keys().collect::<Vec<_>>());
    }
}
