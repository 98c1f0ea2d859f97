// The source's git commit, for `gather-agent version`. Shared by `build.rs` (which runs it at
// build time) and the crate's tests (`include!`d by both, so it is plain functions, no `//!`).

/// The commit `dir` is checked out at (40 hex digits), or `None` when `dir` is not in a git
/// work tree or git is not installed: a source tarball, a container build without `.git`.
pub fn git_commit(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let commit = text.trim();
    (out.status.success() && commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())).then(|| commit.to_owned())
}

/// Files whose change means a new commit is checked out: HEAD, the ref it points to, and the
/// packed refs (for `cargo:rerun-if-changed`). Empty outside a git work tree.
pub fn git_watch(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let run = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let mut files = Vec::new();
    let (Some(git_dir), Some(common)) = (run(&["rev-parse", "--absolute-git-dir"]), run(&["rev-parse", "--git-common-dir"])) else {
        return files;
    };
    let git_dir = std::path::PathBuf::from(git_dir);
    let common = if std::path::Path::new(&common).is_absolute() { std::path::PathBuf::from(common) } else { dir.join(common) };
    files.push(git_dir.join("HEAD"));
    if let Some(head_ref) = run(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(common.join(head_ref));
    }
    files.push(common.join("packed-refs"));
    // A missing file would make cargo rerun the build script on every build.
    files.retain(|f| f.exists());
    files
}
