//! Archive integrity and `inspect` on hostile archives (issue 11): records that would shadow a
//! directory (or the host's own `insights-operator/`), Kubernetes names too long for one path
//! segment, a `gathers.json` that inflates to hundreds of megabytes, and names and records
//! carrying terminal escapes or bidi overrides. Run alone with
//! `cargo test -p gather-agent --test resilience_archive` (it runs the binary, so it lives in `cli/tests`).

use testkit as common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

use agent::archive::{StatusReport, GATHERS_JSON};
use agent::config::AgentConfig;
use serde_json::{json, Value};

// ---------- helpers ----------

const IMPORTS: &str = r#"
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))"#;

/// A WAT guest with `body` (which exports `gather`) and a manifest that asks for nothing.
fn guest(name: &str, body: &str) -> (String, Vec<u8>) {
    let manifest = format!(r#"{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[]}}"#);
    let src = format!(
        r#"(module {IMPORTS}
             (memory (export "memory") 1)
             (func (export "gather_abi_version_1"))
             {body}
             (@custom "gather.manifest" "{manifest}"))"#
    );
    (format!("{name}.wasm"), wat::parse_str(&src).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn report<'a>(reports: &'a [StatusReport], name: &str) -> &'a StatusReport {
    reports.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no report for {name}: {reports:?}"))
}

/// Extracts `archive` with the real `tar -xzf` into a new directory.
fn extract(archive: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(dir.path()).output().expect("run tar");
    assert!(out.status.success(), "tar -xzf failed: {}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn gather_agent() -> &'static str {
    env!("CARGO_BIN_EXE_gather-agent")
}

// ---------- record names that clash with directories ----------

/// Records, in order, names that clash; returns 0 when every status is as the ABI says, else
/// 10 + the step that went wrong.
fn shadowing_guest() -> (String, Vec<u8>) {
    guest(
        "shadow",
        r#"(data (i32.const 0) "config")
           (data (i32.const 16) "config/x")
           (data (i32.const 32) "insights-operator")
           (data (i32.const 64) "insights-operator/own.json")
           (data (i32.const 96) "dir/sub/leaf")
           (data (i32.const 112) "dir/sub")
           (data (i32.const 128) "dir")
           (data (i32.const 136) "dir/sub/leaf/deeper")
           (data (i32.const 160) "dir/other")
           (data (i32.const 200) "x")
           (global $step (mut i32) (i32.const 0))
           (func (export "gather") (result i32)
             (block $bad
               (br_if $bad (i32.ne (call $record (i32.const 0) (i32.const 6) (i32.const 200) (i32.const 1)) (i32.const 0)))
               (global.set $step (i32.const 1))
               (br_if $bad (i32.ne (call $record (i32.const 16) (i32.const 8) (i32.const 200) (i32.const 1)) (i32.const -8)))
               (global.set $step (i32.const 2))
               (br_if $bad (i32.ne (call $record (i32.const 32) (i32.const 17) (i32.const 200) (i32.const 1)) (i32.const -8)))
               (global.set $step (i32.const 3))
               (br_if $bad (i32.ne (call $record (i32.const 64) (i32.const 26) (i32.const 200) (i32.const 1)) (i32.const -8)))
               (global.set $step (i32.const 4))
               (br_if $bad (i32.ne (call $record (i32.const 96) (i32.const 12) (i32.const 200) (i32.const 1)) (i32.const 0)))
               (global.set $step (i32.const 5))
               (br_if $bad (i32.ne (call $record (i32.const 112) (i32.const 7) (i32.const 200) (i32.const 1)) (i32.const -8)))
               (global.set $step (i32.const 6))
               (br_if $bad (i32.ne (call $record (i32.const 128) (i32.const 3) (i32.const 200) (i32.const 1)) (i32.const -8)))
               (global.set $step (i32.const 7))
               (br_if $bad (i32.ne (call $record (i32.const 136) (i32.const 19) (i32.const 200) (i32.const 1)) (i32.const -8)))
               (global.set $step (i32.const 8))
               (br_if $bad (i32.ne (call $record (i32.const 160) (i32.const 9) (i32.const 200) (i32.const 1)) (i32.const 0)))
               (return (i32.const 0)))
             (i32.add (i32.const 10) (global.get $step)))"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_may_not_shadow_a_directory_nor_the_hosts_own() {
    let sim = common::start(gather_sim::SimConfig::default()).await;
    let (result, _work) = common::period(&sim, &[shadowing_guest()], AgentConfig::default()).await;
    let r = report(&result.metadata.status_reports, "shadow");
    assert_eq!(r.exit_code, Some(0), "every clash is BAD_NAME (exit 10+step otherwise): {r:?}");
    assert_eq!(r.records_count, 3, "{r:?}");
    let errors = r.errors.clone().unwrap_or_default();
    assert!(errors.iter().any(|e| e.contains(r#"record "config/x" refused: "config" is already a record"#)), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains(r#"record "dir/sub" refused: the archive already has records under"#)), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("reserved for the host")), "{errors:?}");

    // The archive extracts with the real tar, gathers.json included.
    let dir = extract(&result.archive);
    assert_eq!(std::fs::read(dir.path().join("config")).unwrap(), b"x");
    assert_eq!(std::fs::read(dir.path().join("dir/sub/leaf")).unwrap(), b"x");
    let gathers: Value = serde_json::from_slice(&std::fs::read(dir.path().join(GATHERS_JSON)).unwrap()).unwrap();
    assert_eq!(gathers["status_reports"][0]["name"], "shadow");
    assert!(!dir.path().join("insights-operator/own.json").exists());
}

// ---------- Kubernetes names too long for one segment ----------

fn pod(name: &str, extra: Value) -> (Value, String) {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "openshift-long", "uid": gather_sim::cluster::synthetic_uid(name)},
        "status": {"phase": "Pending"}
    });
    if let (Some(meta), Some(extra)) = (pod["metadata"].as_object_mut(), extra.as_object()) {
        meta.extend(extra.clone());
    }
    (pod, format!("{name}.json"))
}

/// A 251- and a 253-byte pod name (the longest Kubernetes allows) each make a 256+ byte
/// segment with `.json`: they are recorded under the ABI's short form with a warning, and a
/// pod the archive refuses (over the module's quota) is skipped, not fatal: every pod after
/// them is still recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_pod_names_are_shortened_and_one_refused_pod_never_stops_the_pods_gatherer() {
    let long_251 = format!("b{}", "1".repeat(250));
    let long_253 = format!("c{}", "2".repeat(252));
    let huge_annotation = json!({"annotations": {"big": "h".repeat(200_000)}});
    let objects = vec![
        pod("a-huge", huge_annotation),
        pod(&long_251, json!({})),
        pod(&long_253, json!({})),
        pod("d-after", json!({})),
        (json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-long"}}), "ns.json".into()),
    ];
    let sim = common::start(gather_sim::SimConfig::default()).await;
    sim.replace_cluster(gather_sim::Cluster::from_objects(objects).unwrap());
    let pods: Vec<_> = common::built_gatherers().into_iter().filter(|(n, _)| n == "pods.wasm").collect();
    assert_eq!(pods.len(), 1);
    let config: AgentConfig =
        serde_json::from_value(json!({"modules": {"pods": {"limits": {"recordBytes": 100_000}}}})).unwrap();
    let (result, _work) = common::period(&sim, &pods, config).await;
    let r = report(&result.metadata.status_reports, "pods");

    let short = |name: &str| {
        format!("config/pod/openshift-long/{}", hostapi::record::shorten_segment(&format!("{name}.json")))
    };
    let records = common::records(&result.archive);
    let names: Vec<&String> = records.keys().filter(|n| n.starts_with("config/pod/")).collect();
    assert_eq!(
        names,
        [&short(&long_251), &short(&long_253), &"config/pod/openshift-long/d-after.json".to_owned()],
        "{r:?}"
    );
    for name in [&long_251, &long_253] {
        let stored: Value = serde_json::from_slice(&records[&short(name)]).unwrap();
        assert_eq!(stored["metadata"]["name"], name.as_str(), "the object is whole; only the record name is short");
        assert!(short(name).rsplit('/').next().unwrap().len() <= 255);
    }
    assert_eq!((r.records_count, r.exit_code, r.panic.as_ref()), (3, Some(0), None), "{r:?}");
    let warnings = r.warnings.clone().unwrap_or_default();
    assert_eq!(warnings.iter().filter(|w| w.contains("record name shortened to")).count(), 2, "{warnings:?}");
    let errors = r.errors.clone().unwrap_or_default();
    assert!(errors.iter().any(|e| e.contains("a-huge") && e.contains("quota")), "the refused pod is reported: {errors:?}");
    extract(&result.archive);
}

// ---------- inspect on hostile archives ----------

/// Writes a tar.gz of `(name, size, data)` entries, streaming each entry's data.
fn write_archive(path: &Path, entries: Vec<(&str, u64, Box<dyn Read>)>) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, size, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn bytes(data: &[u8]) -> (u64, Box<dyn Read>) {
    (data.len() as u64, Box::new(std::io::Cursor::new(data.to_vec())))
}

const META: &[u8] = br#"{"status_reports":[{"name":"x","duration_in_ms":1,"records_count":1,"errors":null,"warnings":null,"panic":null}],"memory_alloc_bytes":0,"uptime_seconds":0,"is_global_obfuscation_enabled":false}"#;

/// Runs `gather-agent inspect ARGS` in `dir` and returns its output and peak RSS in bytes,
/// as GNU time reports it (getrusage's ru_maxrss of the child). Also under a data limit, so
/// an unbounded allocation fails the command even where the RSS could not be measured.
fn inspect_measured(dir: &Path, args: &[&str]) -> (Output, u64) {
    let rss_file = dir.join(".maxrss");
    let _ = std::fs::remove_file(&rss_file);
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -d 262144 && bin=\"$1\" && shift && exec /usr/bin/time -f %M -o \"$0\" \"$bin\" inspect \"$@\"")
        .arg(&rss_file)
        .arg(gather_agent())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let kib: u64 = std::fs::read_to_string(&rss_file)
        .unwrap_or_else(|e| panic!("no peak RSS from /usr/bin/time for {args:?}: {e}; stderr {}", String::from_utf8_lossy(&out.stderr)))
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("unparsable /usr/bin/time output for {args:?}"));
    (out, kib * 1024)
}

/// What `inspect` may peak at on any of these archives: its own footprint plus the 16 MiB
/// metadata cap, with room to spare, and far below the 200 MiB the hostile file inflates to.
const INSPECT_RSS_BOUND: u64 = 64 * 1024 * 1024;

/// 200 MiB of `gathers.json` compresses to well under 1 MiB; inspect used to read it whole and
/// parse it (gigabytes for a few megabytes of archive). Now every command refuses it unread.
#[cfg(target_os = "linux")]
#[test]
fn a_huge_gathers_json_is_refused_and_inspect_stays_small() {
    const HUGE: u64 = 200 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let head = br#"{"status_reports":[],"memory_alloc_bytes":0,"uptime_seconds":0,"is_global_obfuscation_enabled":false,"warnings":[""#;
    let tail = br#""]}"#;
    let filler = HUGE - (head.len() + tail.len()) as u64;
    let json: Box<dyn Read> =
        Box::new(std::io::Cursor::new(head.to_vec()).chain(std::io::repeat(b'a').take(filler)).chain(std::io::Cursor::new(tail.to_vec())));
    let (id_len, id) = bytes(b"cluster-1");
    write_archive(&dir.path().join("hostile.tar.gz"), vec![("config/id", id_len, id), (GATHERS_JSON, HUGE, json)]);
    let compressed = std::fs::metadata(dir.path().join("hostile.tar.gz")).unwrap().len();
    assert!(compressed < 2 * 1024 * 1024, "{compressed} bytes");

    for args in [vec!["hostile.tar.gz"], vec!["hostile.tar.gz", "meta"], vec!["hostile.tar.gz", "hostile.tar.gz", "diff"], vec!["."]] {
        let (out, peak) = inspect_measured(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("inspect {args:?}: peak RSS {} MiB", peak >> 20);
        assert!(peak < INSPECT_RSS_BOUND, "inspect {args:?} peaked at {} MiB: {stderr}", peak >> 20);
        assert!(!out.status.success(), "inspect {args:?} must report the skipped metadata");
        assert!(stderr.contains("gathers.json is 209715200 bytes, over the 16 MiB that inspect reads"), "{args:?}: {stderr}");
    }
    // The summary still lists what it can; ls needs no metadata body at all; show works.
    let (out, peak) = inspect_measured(dir.path(), &["hostile.tar.gz", "ls"]);
    assert!(peak < INSPECT_RSS_BOUND && out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 records"));
    let (out, peak) = inspect_measured(dir.path(), &["hostile.tar.gz", "show", "config/id"]);
    assert!(peak < INSPECT_RSS_BOUND && out.stdout == b"cluster-1");
}

/// A large non-JSON record is streamed by `show` (escaped), not held: 300 MiB under the bound.
#[cfg(target_os = "linux")]
#[test]
fn show_streams_a_large_record() {
    const BIG: u64 = 300 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let (meta_len, meta) = bytes(META);
    let log: Box<dyn Read> = Box::new(std::io::repeat(b'l').take(BIG - 1).chain(std::io::Cursor::new(b"\x1b".to_vec())));
    write_archive(&dir.path().join("big.tar.gz"), vec![("x/big.log", BIG, log), (GATHERS_JSON, meta_len, meta)]);
    let (out, peak) = inspect_measured(dir.path(), &["big.tar.gz", "show", "x/big.log"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("show of a {} MiB record: peak RSS {} MiB", BIG >> 20, peak >> 20);
    assert!(peak < INSPECT_RSS_BOUND, "show peaked at {} MiB", peak >> 20);
    assert_eq!(out.stdout.len() as u64, BIG - 1 + r"\u{1b}".len() as u64);
    assert!(out.stdout.ends_with(br"ll\u{1b}"));
}

fn run_inspect(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(gather_agent()).arg("inspect").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "inspect {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Names and records that would drive the terminal (ESC sequences, U+202E) are shown escaped
/// by `ls` and `show`, and exactly as stored with `--raw`.
#[test]
fn ls_and_show_escape_terminal_controls_and_bidi_overrides_unless_raw() {
    let dir = tempfile::tempdir().unwrap();
    let evil_name = "config/invoice\u{202e}fdp.exe";
    let esc_name = "config/\x1b[2Jclear";
    let text = "line one\n\x1b]0;pwned\x07\x1b[31mred\u{202e}\u{2066}\u{200f}\u{061c}\r\ttab\n";
    let json_rec = "{\"k\":\"a\u{202e}b\\u001b\u{0085}\"}";
    let (m_len, m) = bytes(META);
    let (a_len, a) = bytes(b"{}");
    let (b_len, b) = bytes(b"x");
    let (t_len, t) = bytes(text.as_bytes());
    let (j_len, j) = bytes(json_rec.as_bytes());
    write_archive(
        &dir.path().join("a.tar.gz"),
        vec![
            (evil_name, a_len, a),
            (esc_name, b_len, b),
            ("logs/evil.log", t_len, t),
            ("config/evil.json", j_len, j),
            (GATHERS_JSON, m_len, m),
        ],
    );

    let ls = String::from_utf8(run_inspect(dir.path(), &["a.tar.gz", "ls"]).stdout).unwrap();
    assert!(ls.contains(r"config/invoice\u{202e}fdp.exe"), "{ls}");
    assert!(ls.contains(r"config/\u{1b}[2Jclear"), "{ls}");
    assert!(!ls.contains('\u{202e}') && !ls.contains('\x1b'), "{ls:?}");
    let raw = String::from_utf8(run_inspect(dir.path(), &["a.tar.gz", "ls", "--raw"]).stdout).unwrap();
    assert!(raw.contains(evil_name) && raw.contains(esc_name), "{raw:?}");

    let show = String::from_utf8(run_inspect(dir.path(), &["a.tar.gz", "show", "logs/evil.log"]).stdout).unwrap();
    assert_eq!(
        show,
        "line one\n\\u{1b}]0;pwned\\u{7}\\u{1b}[31mred\\u{202e}\\u{2066}\\u{200f}\\u{61c}\\r\ttab\n",
        "newlines and tabs stay; the rest is escaped"
    );
    let raw = run_inspect(dir.path(), &["a.tar.gz", "show", "logs/evil.log", "--raw"]).stdout;
    assert_eq!(raw, text.as_bytes());

    // JSON stays valid JSON with the same value: the dangerous characters become \u escapes.
    let show = String::from_utf8(run_inspect(dir.path(), &["a.tar.gz", "show", "config/evil.json"]).stdout).unwrap();
    assert!(!show.contains('\u{202e}') && !show.contains('\u{85}') && !show.contains('\x1b'), "{show:?}");
    let reparsed: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(reparsed, serde_json::from_str::<Value>(json_rec).unwrap());

    // Bytes that are not UTF-8 (0x9b is CSI on 8-bit terminals) are shown as \x escapes.
    let dir2 = tempfile::tempdir().unwrap();
    let (m_len, m) = bytes(META);
    let (c_len, c) = bytes(b"ok \x9b31m \xe2\x80");
    write_archive(&dir2.path().join("b.tar.gz"), vec![("bin/c1", c_len, c), (GATHERS_JSON, m_len, m)]);
    let show = run_inspect(dir2.path(), &["b.tar.gz", "show", "bin/c1"]).stdout;
    assert_eq!(show, br"ok \x9b31m \xe2\x80");
}
