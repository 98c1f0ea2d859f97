//! The README's first command: `gather-agent demo` runs to completion, alone, and shows the
//! hot swap it promises.

use testkit as common;

#[test]
fn demo_runs_to_completion_and_shows_the_swap() {
    common::built_gatherers();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .args(["demo", "--period", "1s", "--dir"])
        .arg(dir.path())
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in 1..=6 {
        assert!(stdout.contains(&format!("[{step}/6]")), "step {step} missing:\n{stdout}");
    }
    assert!(stdout.contains("starts with module set generation 2 (index serial 2)"), "{stdout}");
    assert!(stdout.contains("ingresscontroller@1.1.0"));
    assert!(stdout.contains("ingresscontroller  1.0.0") && stdout.contains("→ 1.1.0"), "the diff shows the version change:\n{stdout}");
    assert!(stdout.contains("answered 304 Not Modified"));
    let archives: Vec<_> = std::fs::read_dir(dir.path().join("archives")).unwrap().collect();
    assert!(archives.len() >= 3, "three periods, three archives");
}
