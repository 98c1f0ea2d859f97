//! Every byte the host spends on a guest is bounded (issue 11): guest strings quoted in
//! reports and logs, report and `gathers.json` sizes, the log budget, list projections, the
//! host memory open handles hold, host work paid in fuel, and the formula for the most host
//! memory one gatherer can cause (ABI.md §8, §10; docs/SECURITY.md "Bounds"). Also the ABI
//! conformance points: bad JSON Pointer escapes, and the host's texts against ABI.md's.
//!
//! `peak_rss_stays_under_the_formula` measures the process's peak RSS, so it runs the worst
//! module in a child process of this test binary, where no other test disturbs it.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agent::archive::{ArchiveWriter, GathersMetadata, StatusReport, GATHERS_JSON};
use agent::gather::{ModuleSpec, PeriodOptions, PeriodResult};
use agent::pdk::{Api, HostState};
use agent::policy::{BridgeError, ModulePolicy};
use agent::limits::Limits;
use agent::sandbox::Sandbox;
use hostapi::abi::limits::{self, QUOTE_BYTES, REPORT_BYTES, REPORT_ENTRIES, REPORT_ENTRY_BYTES};
use hostapi::abi::status;
use hostapi::{Manifest, Request, Response};

// ---------- a fake API with one big list ----------

/// `/api/v1/pods` is one page of `items` pods of about `item_bytes` each (about 9.5 MB in
/// all by default); the cap is honoured as the real bridge honours it.
struct BigList {
    page: Vec<u8>,
    served: AtomicU64,
}

impl BigList {
    fn new(items: usize, item_bytes: usize) -> Arc<Self> {
        let filler = "x".repeat(item_bytes.saturating_sub(200));
        let items: Vec<serde_json::Value> = (0..items)
            .map(|i| {
                serde_json::json!({"metadata": {"name": format!("pod-{i}"), "namespace": "ns"},
                                   "spec": {"a": filler, "b": [1, 2, 3]}, "status": {"phase": "Running"}})
            })
            .collect();
        let page = serde_json::to_vec(&serde_json::json!({"kind": "PodList", "metadata": {}, "items": items})).unwrap();
        Arc::new(BigList { page, served: AtomicU64::new(0) })
    }

    /// 500 items, 9.5 MB: the page from the issue.
    fn issue_sized() -> Arc<Self> {
        Self::new(500, 19_000)
    }
}

impl Api for BigList {
    fn send(&self, _gatherer: &str, req: &Request, cap: u64, _deadline: Instant) -> Result<Response, BridgeError> {
        if !req.path.starts_with("/api/v1/pods") {
            return Ok(Response { status: 404, headers: Vec::new(), body: b"{}".to_vec() });
        }
        if self.page.len() as u64 > cap {
            return Err(BridgeError::TooLarge { cap });
        }
        self.served.fetch_add(1, Ordering::Relaxed);
        Ok(Response { status: 200, headers: Vec::new(), body: self.page.clone() })
    }
}

// ---------- guests ----------

const IMPORTS: &str = r#"
  (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "gather" "response_close" (func $close (param i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (import "gather" "list_open" (func $list_open (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "list_emit" (func $list_emit (param i32 i32 i32 i32) (result i32)))"#;

/// A WAT guest named `name` allowed to list pods, with `body` (which defines `gather`).
/// Data at 0: "/api/v1/pods" (12 bytes); at 32: 32 "/*" fields (96 bytes).
fn guest(name: &str, body: &str) -> Vec<u8> {
    let manifest = format!(r#"{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[\"GET /api/v1/pods\"]}}"#);
    let fields = "/*\\n".repeat(32);
    let src = format!(
        r#"(module {IMPORTS}
             (memory (export "memory") 1)
             (data (i32.const 0) "/api/v1/pods")
             (data (i32.const 32) "{fields}")
             (func (export "gather_abi_version_1"))
             {body}
             (@custom "gather.manifest" "{manifest}"))"#
    );
    wat::parse_str(&src).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Grows memory by `pages` 64 KiB pages and fills the new bytes from 65536 with 'a' (97):
/// a guest-controlled string of `pages * 64 KiB` bytes at 65536. Returns 9 if refused.
fn grow_and_fill(pages: u32) -> String {
    format!(
        "(if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1)) (then (return (i32.const 9))))
         (memory.fill (i32.const 65536) (i32.const 97) (i32.const {}))",
        pages * 65536
    )
}

const EIGHT_MIB: u32 = 8 * 1024 * 1024;

/// Calls `record` with an 8 MiB name, 40 times: each is BAD_NAME, each quoted in a report error.
fn huge_names() -> Vec<u8> {
    guest(
        "hugenames",
        &format!(
            r#"(func (export "gather") (result i32) (local $i i32)
                 {}
                 (loop $l
                   (if (i32.ne (call $record (i32.const 65536) (i32.const {EIGHT_MIB}) (i32.const 0) (i32.const 1)) (i32.const {}))
                     (then (return (i32.const 2))))
                   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 40))))
                 (i32.const 0))"#,
            grow_and_fill(129),
            status::BAD_NAME
        ),
    )
}

/// `list_emit` of every item with an 8 MiB template, 20 times: BAD_ARGUMENT, one short error each.
fn huge_template() -> Vec<u8> {
    guest(
        "hugetemplate",
        &format!(
            r#"(func (export "gather") (result i32) (local $h i32) (local $i i32)
                 {}
                 (local.set $h (call $list_open (i32.const 0) (i32.const 12) (i32.const 0) (i32.const 0) (i32.const 0)))
                 (if (i32.lt_s (local.get $h) (i32.const 1)) (then (return (i32.const 3))))
                 (loop $l
                   (if (i32.ne (call $list_emit (local.get $h) (i32.const -1) (i32.const 65536) (i32.const {EIGHT_MIB})) (i32.const {}))
                     (then (return (i32.const 2))))
                   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 20))))
                 (i32.const 0))"#,
            grow_and_fill(129),
            status::BAD_ARGUMENT
        ),
    )
}

/// 20,000 warnings of 8 KiB (160 MB of log), each starting with a forged log line.
fn log_flood() -> Vec<u8> {
    guest(
        "logflood",
        r#"(data (i32.const 1024) "x\nINFO forged line\n")
               (func (export "gather") (result i32) (local $i i32)
                 (memory.fill (i32.const 1043) (i32.const 97) (i32.const 8173))
                 (loop $l
                   (if (i32.ne (call $log (i32.const 2) (i32.const 1024) (i32.const 8192)) (i32.const 0)) (then (return (i32.const 2))))
                   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 20000))))
                 (i32.const 0))"#,
    )
}

/// 16 lists with 32 `/*` fields each over the 9.5 MB page: each projection would be about
/// 300 MB. Returns 0 only if every `list_open` was refused with TOO_LARGE.
fn projections() -> Vec<u8> {
    guest(
        "projections",
        &format!(
            r#"(func (export "gather") (result i32) (local $i i32)
                 (loop $l
                   (if (i32.ne (call $list_open (i32.const 0) (i32.const 12) (i32.const 32) (i32.const 96) (i32.const 0)) (i32.const {}))
                     (then (return (i32.add (i32.const 100) (local.get $i)))))
                   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 16))))
                 (i32.const 0))"#,
            status::TOO_LARGE
        ),
    )
}

/// Opens plain lists of the 9.5 MB page and keeps them open until one is refused; returns
/// how many were open then (as 100 + n) if the refusal was LIMIT, else 1.
fn hoard() -> Vec<u8> {
    guest(
        "hoard",
        &format!(
            r#"(func (export "gather") (result i32) (local $h i32) (local $n i32)
                 (loop $l
                   (local.set $h (call $list_open (i32.const 0) (i32.const 12) (i32.const 0) (i32.const 0) (i32.const 0)))
                   (if (i32.gt_s (local.get $h) (i32.const 0))
                     (then (local.set $n (i32.add (local.get $n) (i32.const 1))) (br $l))))
                 (if (i32.eq (local.get $h) (i32.const {})) (then (return (i32.add (i32.const 100) (local.get $n)))))
                 (i32.const 1))"#,
            status::LIMIT
        ),
    )
}

/// Opens and closes the 9.5 MB list 20 times: a few hundred instructions of its own.
fn cheap_calls() -> Vec<u8> {
    guest(
        "cheapcalls",
        r#"(func (export "gather") (result i32) (local $h i32) (local $i i32)
             (loop $l
               (local.set $h (call $list_open (i32.const 0) (i32.const 12) (i32.const 0) (i32.const 0) (i32.const 0)))
               (if (i32.lt_s (local.get $h) (i32.const 1)) (then (return (i32.const 3))))
               (drop (call $close (local.get $h)))
               (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 20))))
             (i32.const 0))"#,
    )
}

// ---------- harness ----------

/// Runs `modules` (each with `limits`) in one period against `api`.
async fn period(api: Arc<dyn Api>, modules: &[Vec<u8>], limits: Limits) -> (PeriodResult, tempfile::TempDir) {
    let sandbox = Arc::new(Sandbox::new());
    let specs = modules
        .iter()
        .map(|bytes| ModuleSpec {
            module: sandbox.load(bytes).expect("module loads"),
            limits: limits.clone(),
            policy: ModulePolicy::default(),
            config: Vec::new(),
        })
        .collect();
    let out = tempfile::tempdir().unwrap();
    let result = agent::gather::run_period(sandbox, api, specs, Vec::new(), &PeriodOptions::new(out.path()))
        .await
        .expect("an archive is written");
    (result, out)
}

fn report<'a>(m: &'a GathersMetadata, name: &str) -> &'a StatusReport {
    m.status_reports.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no report for {name}"))
}

/// Every entry is cut, the lists and their bytes are capped.
fn assert_bounded(r: &StatusReport) {
    let (w, e) = (r.warnings.clone().unwrap_or_default(), r.errors.clone().unwrap_or_default());
    // The cut keeps 1 KiB plus the `…(N bytes)` marker.
    let max_entry = REPORT_ENTRY_BYTES + 32;
    for entry in w.iter().chain(&e).chain(r.panic.iter()) {
        assert!(entry.len() <= max_entry, "{} bytes: {}…", entry.len(), &entry[..200]);
        assert!(!entry.contains('\n'), "control characters are escaped: {entry:?}");
    }
    assert!(w.len() <= REPORT_ENTRIES && e.len() <= REPORT_ENTRIES + 2, "{} warnings, {} errors", w.len(), e.len());
    let total: usize = w.iter().chain(&e).map(String::len).sum();
    assert!(total <= REPORT_BYTES + 2 * max_entry, "{total} bytes of entries");
}

fn gathers_json_len(archive: &std::path::Path) -> usize {
    common::records(archive).remove(GATHERS_JSON).expect("gathers.json").len()
}

/// The exact texts ABI.md lists between `<!-- {block}:begin -->` and its end: `(id, text)`.
fn documented(block: &str) -> Vec<(String, String)> {
    let doc = include_str!("../../hostapi/ABI.md");
    let start = doc.find(&format!("<!-- {block}:begin -->")).expect("block begins");
    let end = doc.find(&format!("<!-- {block}:end -->")).expect("block ends");
    doc[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .map(|l| {
            let (id, text) = l.split_once(' ').unwrap();
            let text = text.strip_prefix("`` ").and_then(|t| t.strip_suffix(" ``")).unwrap_or_else(|| panic!("{l}"));
            (id.to_owned(), text.to_owned())
        })
        .collect()
}

/// Whether `text` is `template` with each `<…>` standing for any text. A quoted guest string
/// (`"<x>"`) may be followed by the cut marker `…(N bytes)`, or not when it was short.
fn matches(template: &str, text: &str) -> bool {
    let template = template.replace("\"…(<N> bytes)", "\"<>");
    let mut pieces = Vec::new();
    let mut rest = template.as_str();
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else { break };
        pieces.push(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    pieces.push(rest);
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if pieces.len() == 1 {
        return text == first;
    }
    let Some(mut at) = text.strip_prefix(first).map(|_| first.len()) else { return false };
    for p in &pieces[1..pieces.len() - 1] {
        match text[at..].find(p) {
            Some(i) => at += i + p.len(),
            None => return false,
        }
    }
    text.len() >= at + last.len() && text.ends_with(last)
}

/// Asserts `text` matches the documented text `id` of `block`.
fn assert_documented(block: &str, id: &str, text: &str) {
    let docs = documented(block);
    let (_, template) = docs.iter().find(|(i, _)| i == id).unwrap_or_else(|| panic!("ABI.md has no {id}"));
    assert!(matches(template, text), "{id}: host says {text:?}, ABI.md says {template:?}");
}

// ---------- tests ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_record_names_and_templates_stay_small_in_reports_and_gathers_json() {
    let api = BigList::new(3, 1000);
    let (result, _out) = period(api, &[huge_names(), huge_template()], Limits::default()).await;
    let names = report(&result.metadata, "hugenames");
    assert_eq!(names.exit_code, Some(0), "{:?}", names.errors);
    assert_bounded(names);
    let errors = names.errors.as_ref().unwrap();
    assert_eq!(errors.len(), 40, "each refusal is reported, and 40 short entries fit");
    let quoted = format!("record \"{}\"…(8388608 bytes) refused: ", "a".repeat(QUOTE_BYTES));
    assert!(errors[0].starts_with(&quoted), "{}", &errors[0][..300]);
    assert_documented("report-texts", "R4", &errors[0]);

    let template = report(&result.metadata, "hugetemplate");
    assert_eq!(template.exit_code, Some(0), "{:?}", template.errors);
    assert_bounded(template);
    let errors = template.errors.as_ref().unwrap();
    assert_eq!(errors.len(), 20);
    assert_documented("report-texts", "R5", &errors[0]);

    // Today: 40 × 8 MiB names in gathers.json (and 1.5 GB for the template).
    let len = gathers_json_len(&result.archive);
    assert!(len < 200 * 1024, "gathers.json is {len} bytes");
}

/// Counts what the host logs for the gatherer `logflood` (the only logger of this binary).
#[derive(Clone, Default)]
struct LogCount(Arc<Mutex<(u64, u64, Vec<String>)>>);

impl Write for LogCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        if line.contains("logflood") {
            let mut c = self.0.lock().unwrap();
            c.0 += buf.len() as u64;
            c.1 += 1;
            if line.matches('\n').count() != 1 || line.contains("\nINFO forged") {
                c.2.push(line.into_owned());
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_hits_the_budget_and_is_reported_once() {
    let count = LogCount::default();
    let writer = count.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");

    let (result, _out) = period(BigList::new(1, 100), &[log_flood()], Limits::default()).await;
    let r = report(&result.metadata, "logflood");
    assert_eq!(r.exit_code, Some(0), "log keeps returning OK past the budget: {:?}", r.errors);
    assert_bounded(r);
    let warnings = r.warnings.as_ref().unwrap();
    // 1 MiB of 8 KiB messages: 128 written (the report keeps the 64 KiB it has room for),
    // then the budget note, which always finds room, then nothing.
    let note = format!("log budget of {} bytes / {} lines reached; further log messages are dropped", limits::LOG_BYTES, limits::LOG_LINES);
    assert_eq!(warnings.last(), Some(&note));
    assert!(warnings.len() < 128, "{}", warnings.len());
    let dropped = r.errors.as_ref().unwrap().last().unwrap();
    assert_documented("report-texts", "R1", dropped);
    assert!(dropped.starts_with(&format!("{} more", 128 - (warnings.len() - 1))), "{dropped}");
    assert!(warnings[0].starts_with("x\\nINFO forged line\\n"), "{}", &warnings[0][..40]);

    let (bytes, lines, forged) = count.0.lock().unwrap().clone();
    assert!(forged.is_empty(), "a guest forged host log lines: {:?}", &forged[0][..100]);
    // 128 messages, the budget line, the run's own lines; never the 20,000 messages.
    assert!((129..=140).contains(&lines), "{lines} host log lines");
    let budget = limits::LOG_BYTES + 2 * limits::LOG_LINE_BYTES as u64;
    assert!(bytes <= budget + 140 * 300, "{bytes} bytes of host log for a {} budget", limits::LOG_BYTES);
    assert_documented("report-texts", "R2", &note);

    // A report can only hold that note if it still had room: with the default report cap the
    // flood filled it first, so ask a state directly.
    let mut state = host(BigList::new(1, 10), Limits { log_lines: 3, ..Limits::default() });
    for _ in 0..10 {
        state.log(hostapi::abi::level::WARN, "w");
    }
    state.log(hostapi::abi::level::PANIC, "still the panic");
    assert_eq!(state.report.warnings, ["w", "w", "w", note.replace("1048576 bytes / 10000", "1048576 bytes / 3").as_str()]);
    assert_eq!(state.report.panic.as_deref(), Some("still the panic"));
}

fn host(api: Arc<dyn Api>, limits: Limits) -> HostState {
    let manifest = Arc::new(Manifest::parse(br#"{"name":"t","version":"1.0.0","abi":1,"permissions":["GET /api/v1/pods"]}"#).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let archive = Arc::new(ArchiveWriter::create(dir.path(), time::OffsetDateTime::now_utc(), 1 << 30).unwrap());
    // The archive's temp file lives in the directory; keep it for the test's length.
    std::mem::forget(dir);
    HostState::new(manifest, ModulePolicy::default(), api, archive, Vec::new(), limits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_blow_ups_and_hoarded_pages_are_refused() {
    let api = BigList::issue_sized();
    let (result, _out) = period(api.clone(), &[projections(), hoard()], Limits::default()).await;
    let p = report(&result.metadata, "projections");
    assert_eq!(p.exit_code, Some(0), "every 300 MB projection is TOO_LARGE: {:?}", p.errors);
    let errors = p.errors.as_ref().unwrap();
    assert_eq!(errors.len(), 16);
    assert_documented("report-texts", "R6", &errors[0]);

    // 9.5 MB pages: six fit the 64 MiB budget; the seventh is refused before it is received.
    let page = api.page.len() as u64;
    let fit = limits::HANDLE_BYTES / page;
    let h = report(&result.metadata, "hoard");
    assert_eq!(h.exit_code, Some(100 + fit as i32), "{:?}", h.errors);
    let refused = h.errors.iter().flatten().find(|e| e.contains("open handles hold")).expect("the refusal is reported");
    assert_documented("report-texts", "R8", refused);

    // A projection that fits the response cap but not what the budget leaves: LIMIT.
    let small = BigList::new(500, 1000);
    let mut state2 = host(small.clone(), Limits { handle_bytes: small.page.len() as u64 * 3 / 2, ..Limits::default() });
    assert_eq!(state2.list_open("/api/v1/pods", "/*", 0), status::LIMIT);
    assert_documented("report-texts", "R7", state2.report.errors.last().unwrap());
    assert!(state2.list_open("/api/v1/pods", "/metadata/name", 0) > 0, "a small projection still fits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_work_is_paid_in_fuel() {
    let api = BigList::issue_sized();
    // 20 pages of 9.5 MB are 190 MB received and 190 MB parsed: at 4 fuel a byte, far more
    // than 100 M fuel, although the guest itself runs a few hundred instructions.
    let limits = Limits { fuel: 100_000_000, ..Limits::default() };
    let (result, _out) = period(api.clone(), &[cheap_calls()], limits).await;
    let r = report(&result.metadata, "cheapcalls");
    assert_eq!(r.error_kind.as_deref(), Some("fuel"), "{:?}", r.errors);
    assert!(r.fuel_used >= 100_000_000);
    assert!(api.served.load(Ordering::Relaxed) < 20, "stopped early");

    // With the default budget the same guest succeeds and its report shows what it paid.
    let (result, _out) = period(api.clone(), &[cheap_calls()], Limits::default()).await;
    let r = report(&result.metadata, "cheapcalls");
    assert_eq!(r.exit_code, Some(0), "{:?}", r.errors);
    let page = api.page.len() as u64;
    assert!(r.fuel_used >= 20 * 2 * page * limits::HOST_WORK_FUEL_PER_BYTE, "{}", r.fuel_used);
}

#[test]
fn bad_pointer_escapes_in_fields_are_bad_argument() {
    let mut state = host(BigList::new(2, 300), Limits::default());
    for bad in ["/~2", "/metadata/name~", "/a~x/b", "/metadata/name\n/~"] {
        assert_eq!(state.list_open("/api/v1/pods", bad, 0), status::BAD_ARGUMENT, "{bad:?}");
    }
    assert!(state.list_open("/api/v1/pods", "/metadata/~0name~1x", 0) > 0);
    assert_eq!(state.report.requests, 1, "refused before any request");
}

#[test]
fn gathers_json_is_trimmed_to_its_cap() {
    let entry = "e".repeat(1000);
    let reports = (0..100)
        .map(|i| StatusReport {
            name: format!("g{i}"),
            warnings: Some(vec![entry.clone(); 60]),
            errors: Some([vec![entry.clone(); 60], vec!["trap: the verdict".into()]].concat()),
            ..Default::default()
        })
        .collect();
    let mut m = GathersMetadata { status_reports: reports, ..Default::default() };
    let cap = limits::GATHERS_JSON_BYTES;
    assert!(serde_json::to_vec_pretty(&m).unwrap().len() > cap);
    agent::gather::fit_metadata(&mut m, cap);
    assert!(serde_json::to_vec_pretty(&m).unwrap().len() <= cap);
    let r = &m.status_reports[0];
    let errors = r.errors.as_ref().unwrap();
    assert_eq!(errors[errors.len() - 2], "trap: the verdict", "the verdict stays");
    assert_documented("report-texts", "R3", errors.last().unwrap());
    assert!(r.warnings.as_ref().is_none_or(|w| w.len() < 60));
}

#[test]
fn load_errors_are_exactly_the_documented_texts() {
    let docs = documented("load-errors");
    let sandbox = Sandbox::new();
    let manifest = r#"(@custom "gather.manifest" "{\"name\":\"x\",\"version\":\"1\",\"abi\":1}")"#;
    let module = |body: &str| wat::parse_str(format!("(module {body})")).unwrap();
    let ok = r#"(memory (export "memory") 1) (func (export "gather_abi_version_1")) (func (export "gather") (result i32) (i32.const 0))"#;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("L1", b"nope".to_vec()),
        ("L2", b"\0asm\x01\0\0\0\x05".to_vec()),
        ("L3", module(&format!(r#"{ok} (func $s) (start $s) {manifest}"#))),
        ("L4", module(r#"(memory (export "memory") 1) (func (export "gather") (result i32) (i32.const 0))"#)),
        ("L5", module(r#"(memory (export "memory") 1) (func (export "gather_abi_version_2"))"#)),
        ("L6", module(r#"(memory (export "memory") 1) (global (export "gather_abi_version_1") i32 (i32.const 0))"#)),
        ("L7", module(r#"(memory (export "memory") 1) (func (export "gather_abi_version_1"))"#)),
        ("L8", module(r#"(memory (export "memory") 1) (func (export "gather_abi_version_1")) (func (export "gather"))"#)),
        ("L9", module(r#"(func (export "gather_abi_version_1")) (func (export "gather") (result i32) (i32.const 0))"#)),
        ("L10", module(&format!(r#"(import "env" "{}" (func)) {ok} {manifest}"#, "n".repeat(100_000)))),
        ("L11", module(&format!(r#"(import "gather" "log" (func)) {ok} {manifest}"#))),
        ("L12", module(&format!(r#"(import "gather" "log" (global i32)) {ok} {manifest}"#))),
        ("L13", module(ok)),
        ("L14", module(&format!(r#"{ok} (@custom "gather.manifest" "{{}}")"#))),
        ("L15", module(&format!(r#"{ok} (global (export "_initialize") i32 (i32.const 0)) {manifest}"#))),
        ("L16", module(&format!(r#"(import "wasi_snapshot_preview1" "path_open" (func)) {ok} {manifest}"#))),
    ];
    assert_eq!(cases.len(), docs.len(), "every documented text is exercised");
    for (id, bytes) in cases {
        let err = sandbox.load(&bytes).expect_err(id).to_string();
        assert_documented("load-errors", id, &err);
        assert!(err.len() < 2 * QUOTE_BYTES + 200, "{id}: {} bytes", err.len());
    }
}

// ---------- the memory formula ----------

/// The worst module we could write, in one run: guest memory at its cap, 8 MiB record
/// names, an 8 MiB template, a log flood, pages hoarded up to the handle budget, then 32 `/*`
/// projections over every further page.
fn worst() -> Vec<u8> {
    let memory_pages = (limits::MEMORY_BYTES / 65536) as u32 - 1;
    guest(
        "worst",
        &format!(
            r#"(func (export "gather") (result i32) (local $h i32) (local $i i32)
                 {}
                 (loop $l
                   (drop (call $record (i32.const 65536) (i32.const {EIGHT_MIB}) (i32.const 0) (i32.const 1)))
                   (drop (call $log (i32.const 2) (i32.const 65536) (i32.const {EIGHT_MIB})))
                   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 50))))
                 (local.set $i (i32.const 0))
                 (loop $l
                   (local.set $h (call $list_open (i32.const 0) (i32.const 12) (i32.const 0) (i32.const 0) (i32.const 0)))
                   (if (i32.gt_s (local.get $h) (i32.const 0))
                     (then (drop (call $list_emit (local.get $h) (i32.const -1) (i32.const 65536) (i32.const {EIGHT_MIB})))))
                   (drop (call $list_open (i32.const 0) (i32.const 12) (i32.const 32) (i32.const 96) (i32.const 0)))
                   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 16))))
                 (i32.const 0))"#,
            grow_and_fill(memory_pages)
        ),
    )
}

/// The bound ABI.md §10 states: M + H + 3R + 1 MiB, plus the compiled module.
fn formula(l: &Limits, module_bytes: usize) -> u64 {
    l.memory_bytes + l.handle_bytes + 3 * l.response_bytes + (1 << 20) + module_bytes as u64
}

#[test]
#[ignore = "the child half of peak_rss_stays_under_the_formula"]
fn worst_module_child() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let api = BigList::issue_sized();
    let module = worst();
    let baseline = agent::archive::current_rss_bytes();
    // Reset this process's peak RSS (VmHWM) to its current RSS, where the kernel allows it.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (result, _out) = rt.block_on(period(api.clone(), std::slice::from_ref(&module), Limits::default()));
    let peak = agent::archive::peak_rss_bytes();
    let r = report(&result.metadata, "worst");
    assert_eq!(r.exit_code, Some(0), "{:?}", r.errors);
    assert_bounded(r);
    println!("FIGURES baseline={baseline} peak={peak} growth={} formula={} page={} served={} fuel={}",
        peak.saturating_sub(baseline), formula(&Limits::default(), module.len()), api.page.len(),
        api.served.load(Ordering::Relaxed), r.fuel_used);
}

#[test]
fn peak_rss_stays_under_the_formula() {
    if agent::archive::peak_rss_bytes() == 0 {
        eprintln!("no /proc: peak RSS cannot be measured here");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worst_module_child", "--ignored", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The harness may print `test worst_module_child ... ` on the same line.
    let line = stdout.lines().find_map(|l| l.find("FIGURES ").map(|i| &l[i..])).expect("figures printed");
    println!("{line}");
    let figure = |k: &str| -> u64 {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap().parse().unwrap()
    };
    assert!(figure("served") > 6, "the module really hoarded pages: {line}");
    assert!(figure("growth") <= figure("formula"), "peak RSS growth over the formula: {line}");
}

/// ABI.md §8 and §11 agree: a trap after both a panic message and a refused `memory.grow`
/// is `panic`, the guest's own account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_wins_over_a_refused_grow() {
    let module = guest(
        "panicgrow",
        r#"(data (i32.const 200) "out of memory, giving up")
           (func (export "gather") (result i32)
             (if (i32.ne (memory.grow (i32.const 2000)) (i32.const -1)) (then (return (i32.const 2))))
             (drop (call $log (i32.const 4) (i32.const 200) (i32.const 24)))
             unreachable)"#,
    );
    let (result, _out) = period(BigList::new(1, 100), &[module], Limits::default()).await;
    let r = report(&result.metadata, "panicgrow");
    assert_eq!(r.error_kind.as_deref(), Some("panic"), "{:?}", r.errors);
    assert_eq!(r.panic.as_deref(), Some("out of memory, giving up"));
    let doc = include_str!("../../hostapi/ABI.md");
    assert!(doc.contains("`panic`, **even if a memory growth was refused earlier**"));
    assert!(doc.contains("| `panic` | A trap after the guest logged at level 4. This takes precedence over `memory`. |"));
}
