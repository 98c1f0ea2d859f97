//! `gather-agent inspect` is wired to the `gather-inspect` command line: the same output as the
//! library renders, and the same one-line errors. The inspector's own suite is
//! `inspect/tests/inspect.rs` (run through the `gather-inspect` binary).

use std::path::PathBuf;
use std::process::Command;

use gather_inspect::render;

fn io_sample() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/archives/io-sample.tar.gz"))
}

#[test]
fn inspect_subcommand_prints_the_librarys_summary() {
    let out = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .arg("inspect")
        .arg(io_sample())
        .args(["--color", "never"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = gather_inspect::summary(&io_sample()).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), render::summary_text(&summary, &render::Style::plain()));
}

#[test]
fn inspect_subcommand_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("not-gzip.tar.gz");
    std::fs::write(&bogus, b"plain text").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gather-agent")).arg("inspect").arg(&bogus).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && err.contains("not-gzip.tar.gz"), "{err}");
}
