//! Project automation (`cargo xtask <task>`), std-only so it builds in seconds.
//!
//! - `cargo xtask test`: build the wasm gatherers, then run every test in the workspace.
//! - `cargo xtask demo`: build the gatherers, then run `gather-agent demo` (crate `cli/`).
//! - `cargo xtask gatherers`: build the wasm gatherers into `target/gatherers/` (benchmark
//!   probes, `gatherers/bench-*`, into `target/bench/`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_owned()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(mut cmd: Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}

/// Builds every crate under `gatherers/` for wasm32 and copies the modules to `target/gatherers/`.
fn gatherers() -> Result<PathBuf, String> {
    let out = root().join("target/gatherers");
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let manifest = root().join("gatherers/Cargo.toml");
    if !manifest.exists() {
        return Ok(out);
    }
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(root().join("target/wasm"));
    run(cmd).map_err(|e| format!("{e}\nhint: if the wasm32 target is missing, run `rustup target add wasm32-unknown-unknown`"))?;
    let built = root().join("target/wasm/wasm32-unknown-unknown/release");
    // Benchmark probes (`gatherers/bench-*`) are not gatherers: they go to target/bench/.
    let bench = root().join("target/bench");
    std::fs::create_dir_all(&bench).map_err(|e| format!("creating {}: {e}", bench.display()))?;
    let mut n = 0;
    for entry in std::fs::read_dir(&built).map_err(|e| format!("reading {}: {e}", built.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "wasm") {
            let file_name = path.file_name().expect("a file");
            let is_probe = file_name.to_string_lossy().starts_with("bench_");
            let dest = if is_probe { bench.join(file_name) } else { out.join(file_name) };
            std::fs::copy(&path, &dest).map_err(|e| format!("copying {}: {e}", path.display()))?;
            n += usize::from(!is_probe);
        }
    }
    eprintln!("xtask: {n} gatherer module(s) in {}, benchmark probes in {}", out.display(), bench.display());
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gatherers") => gatherers().map(|_| ()),
        Some("test") => gatherers().and_then(|_| {
            let mut cmd = cargo();
            cmd.args(["test", "--workspace", "--locked"]).args(&args[1..]);
            run(cmd)
        }),
        Some("demo") => gatherers().and_then(|_| {
            let mut cmd = cargo();
            cmd.args(["run", "--release", "--locked", "-p", "gather-agent", "--", "demo"]).args(&args[1..]);
            run(cmd)
        }),
        _ => Err("usage: cargo xtask <test|demo|gatherers> [extra args]\n\
                  \n  test       build the wasm gatherers, then run every test (the CI command)\
                  \n  demo       build the gatherers, then run `gather-agent demo`\
                  \n  gatherers  build the wasm gatherers into target/gatherers/"
            .to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
