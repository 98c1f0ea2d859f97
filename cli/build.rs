//! Captures the source's git commit for `gather-agent version`, as `GATHER_AGENT_GIT_COMMIT`
//! (a value already set in the build's environment wins: packagers building from a tarball
//! can pass it in; otherwise `unknown` when there is no git work tree or no git).

include!("src/git_commit.rs");

fn main() {
    println!("cargo:rerun-if-env-changed=GATHER_AGENT_GIT_COMMIT");
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let commit = match std::env::var("GATHER_AGENT_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => {
            for f in git_watch(&dir) {
                println!("cargo:rerun-if-changed={}", f.display());
            }
            git_commit(&dir).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=GATHER_AGENT_GIT_COMMIT={commit}");
}
