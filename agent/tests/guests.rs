//! Misbehaving guests (as WAT): each fails in its own report with the right error kind,
//! while a well-behaved gatherer in the same period still writes its records.

mod common;

use common::report;

use agent::config::AgentConfig;
use agent::sandbox::{LoadError, Sandbox};

fn config(json: &str) -> AgentConfig {
    serde_json::from_str(json).unwrap()
}

fn nodes_module() -> (String, Vec<u8>) {
    common::built_gatherers().into_iter().find(|(n, _)| n == "nodes.wasm").unwrap()
}

fn assert_nodes_gathered(result: &agent::gather::PeriodResult) {
    let records = common::records(&result.archive);
    for n in common::fixture_names("Node") {
        assert!(records.contains_key(&format!("config/node/{n}.json")), "the well-behaved gatherer still wrote {n}");
    }
    let nodes = report(&result.metadata.status_reports, "nodes");
    assert!(nodes.errors.is_none(), "{nodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_guests_are_stopped_and_isolated() {
    let sim = common::start_sample().await;
    let modules = vec![
        nodes_module(),
        common::wat("guests/loop.wat"),
        common::wat("guests/grow.wat"),
        common::wat("guests/trap.wat"),
        common::wat("guests/escape.wat"),
        common::wat("guests/panic.wat"),
    ];
    let cfg = config(
        r#"{"modules": {"loop": {"limits": {"deadlineMs": 400}},
                        "grow": {"limits": {"memoryBytes": 2097152}}}}"#,
    );
    let (result, work) = common::period(&sim, &modules, cfg).await;
    let reports = &result.metadata.status_reports;
    assert_eq!(reports.len(), 6);

    let panicked = report(reports, "panic");
    assert_eq!(panicked.error_kind.as_deref(), Some("panic"), "{panicked:?}");
    assert_eq!(panicked.panic.as_deref(), Some("panicked at src/lib.rs:7:5: index out of bounds"));

    let looped = report(reports, "loop");
    assert_eq!(looped.error_kind.as_deref(), Some("deadline"), "{looped:?}");
    assert!(looped.fuel_used > 0);

    let grow = report(reports, "grow");
    assert_eq!(grow.error_kind.as_deref(), Some("memory"), "{grow:?}");
    assert!(grow.errors.as_ref().unwrap()[0].contains("2097152"));
    // The guest's memory high-water mark: grown page by page up to the cap, the refused
    // growth not counted; a guest that never grows reports its initial page.
    assert_eq!(grow.guest_memory_bytes, 2_097_152, "{grow:?}");
    assert_eq!(report(reports, "loop").guest_memory_bytes, 65_536);

    let trap = report(reports, "trap");
    assert_eq!(trap.error_kind.as_deref(), Some("trap"), "{trap:?}");
    assert!(trap.errors.as_ref().unwrap()[0].contains("unreachable"), "{trap:?}");
    assert_eq!(trap.records_count, 1, "records made before the trap are kept");

    let escape = report(reports, "escape");
    assert!(escape.errors.as_ref().unwrap().iter().any(|e| e.contains("../../etc/x")), "{escape:?}");
    assert_eq!(escape.records_count, 1);

    let records = common::records(&result.archive);
    assert!(records.contains_key("test/before-trap.txt"));
    assert!(records.contains_key("test/escape-status-ok.txt"), "the guest saw BAD_NAME");
    assert!(!records.keys().any(|k| k.contains("..") || k.contains("etc/x")));
    assert!(!work.path().join("etc").exists() && !std::path::Path::new("/etc/x").exists());
    assert_nodes_gathered(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_budget_stops_a_spinning_guest() {
    let sim = common::start_sample().await;
    let modules = vec![nodes_module(), common::wat("guests/loop.wat")];
    let cfg = config(r#"{"modules": {"loop": {"limits": {"fuel": 30000000}}}}"#);
    let (result, _work) = common::period(&sim, &modules, cfg).await;
    let looped = report(&result.metadata.status_reports, "loop");
    assert_eq!(looped.error_kind.as_deref(), Some("fuel"), "{looped:?}");
    // Exhausted to within one instruction's cost of the budget, never over it.
    assert!((29_999_900..=30_000_000).contains(&looped.fuel_used), "{}", looped.fuel_used);
    assert_nodes_gathered(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denials_never_touch_the_api() {
    let sim = common::start_sample().await;
    let modules = vec![
        common::wat("guests/secrets.wat"),
        common::wat("guests/undeclared.wat"),
        common::wat("guests/nonget.wat"),
    ];
    let before = sim.request_count();
    let (result, _work) = common::period(&sim, &modules, AgentConfig::default()).await;
    assert_eq!(sim.request_count(), before, "denied requests are answered locally");
    let records = common::records(&result.archive);
    for (name, code) in [("undeclared", "403"), ("nonget", "405")] {
        let r = report(&result.metadata.status_reports, name);
        assert_eq!(r.error_kind.as_deref(), Some("policy"), "{r:?}");
        assert_eq!(r.requests, 1);
        let warning = &r.warnings.as_ref().unwrap()[0];
        assert!(warning.starts_with("policy:") && warning.contains(code), "{warning}");
        assert!(records.contains_key(&format!("test/{name}-denied.txt")), "the guest saw the denial as a response");
    }
    // A module declaring Secrets without the operator's allowance never runs: activation
    // refuses it (docs/SECURITY.md, the denial table), so it makes no request at all.
    let secrets = report(&result.metadata.status_reports, "secrets");
    assert_eq!(secrets.error_kind.as_deref(), Some("load"), "{secrets:?}");
    assert!(secrets.errors.as_ref().unwrap()[0].contains("could read Secrets"), "{secrets:?}");
    assert!(!records.contains_key("test/secrets-denied.txt"));
    let undeclared = report(&result.metadata.status_reports, "undeclared");
    assert!(undeclared.warnings.as_ref().unwrap()[0].contains("not among the module's declared permissions"));

    // With the operator's explicit permission, the same module reaches the API (an empty list).
    let cfg = config(r#"{"modules": {"secrets": {"policy": {"allowSecrets": true}}}}"#);
    let (result, _work) = common::period(&sim, &[common::wat("guests/secrets.wat")], cfg).await;
    let r = report(&result.metadata.status_reports, "secrets");
    assert!(r.warnings.is_none() && r.error_kind.is_none(), "{r:?}");
    assert!(sim.request_count() > before);
}

#[test]
fn wrong_abi_version_is_refused_before_running() {
    let sandbox = Sandbox::new();
    let (_, bytes) = common::wat("guests/wrong_abi.wat");
    match sandbox.load(&bytes) {
        Err(LoadError::UnsupportedAbi { found }) => assert_eq!(found, ["2"]),
        other => panic!("expected UnsupportedAbi, got {other:?}"),
    }
    let err = sandbox.load(&bytes).unwrap_err().to_string();
    assert!(err.contains("unsupported gatherer ABI version") && err.contains("ABI 1"), "{err}");
    assert!(matches!(sandbox.load(b"definitely not wasm"), Err(LoadError::NotWasm)));
    assert!(matches!(sandbox.load(b"\0asm\x01\0\0\0garbage"), Err(LoadError::Invalid(_))));
    assert_eq!(sandbox.cached(), 0, "refused modules are not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_modules_are_reported_in_the_archive() {
    let sim = common::start_sample().await;
    let modules = vec![nodes_module(), common::wat("guests/wrong_abi.wat"), ("junk.wasm".to_owned(), b"not wasm".to_vec())];
    let (result, _work) = common::period(&sim, &modules, AgentConfig::default()).await;
    let wrong = report(&result.metadata.status_reports, "wrong_abi.wasm");
    assert_eq!(wrong.error_kind.as_deref(), Some("load"));
    assert_eq!(wrong.fuel_used, 0, "never ran");
    let junk = report(&result.metadata.status_reports, "junk.wasm");
    assert!(junk.errors.as_ref().unwrap()[0].contains("not a WebAssembly module"));
    assert_nodes_gathered(&result);
}

#[test]
fn compiled_modules_are_cached_by_sha256() {
    let sandbox = Sandbox::new();
    let (_, bytes) = nodes_module();
    let a = sandbox.load(&bytes).unwrap();
    let b = sandbox.load(&bytes).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(sandbox.cached(), 1);
    assert_eq!(a.manifest.name, "nodes");
    assert_eq!(a.manifest.permissions[0].to_string(), "GET /api/v1/nodes");
}

const MANIFEST: &str = r#"(@custom "gather.manifest" "{\"name\":\"inline\",\"version\":\"1\",\"abi\":1,\"permissions\":[\"GET /api/v1/nodes\"]}")"#;

fn inline(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
             (import "gather" "response_close" (func $close (param i32) (result i32)))
             (import "gather" "response_status" (func $status (param i32) (result i32)))
             (import "gather" "log" (func $log (param i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0) "GET")
             (data (i32.const 16) "/api/v1/nodes")
             {body}
             {MANIFEST})"#
    ))
    .unwrap()
}

#[test]
fn start_functions_and_malformed_markers_are_refused() {
    let sandbox = Sandbox::new();
    let with_start = inline(
        r#"(func $s (loop $l (br $l))) (start $s)
           (func (export "gather_abi_version_1")) (func (export "gather") (result i32) (i32.const 0))"#,
    );
    assert!(matches!(sandbox.load(&with_start), Err(LoadError::StartFunction)), "a start function would run outside the deadline");
    let global_marker = inline(r#"(global (export "gather_abi_version_1") i32 (i32.const 1)) (func (export "gather") (result i32) (i32.const 0))"#);
    assert!(matches!(sandbox.load(&global_marker), Err(LoadError::BadExport(_))));
    let bad_entry = inline(r#"(func (export "gather_abi_version_1")) (func (export "gather") (param i32) (result i32) (i32.const 0))"#);
    assert!(matches!(sandbox.load(&bad_entry), Err(LoadError::BadExport(_))));
    let foreign = wat::parse_str(format!(
        r#"(module (import "env" "abort" (func)) (memory (export "memory") 1)
             (func (export "gather_abi_version_1")) (func (export "gather") (result i32) (i32.const 0)) {MANIFEST})"#
    ))
    .unwrap();
    let err = sandbox.load(&foreign).unwrap_err().to_string();
    assert!(err.contains("env.abort"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_bad_pointers_and_stale_handles() {
    let sim = common::start_sample().await;
    // Returns 3 after checking that: an out-of-bounds path is BAD_POINTER (-1), a bad log
    // level is BAD_ARGUMENT (-2), and a closed handle is BAD_HANDLE (-3) forever after.
    let module = inline(
        r#"(func (export "gather_abi_version_1"))
           (func (export "gather") (result i32) (local $h i32)
             (if (i32.ne (call $request (i32.const 0) (i32.const 3) (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const -1)) (then (return (i32.const 10))))
             (if (i32.ne (call $request (i32.const 0) (i32.const 3) (i32.const 16) (i32.const -1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const -1)) (then (return (i32.const 11))))
             (if (i32.ne (call $log (i32.const 99) (i32.const 0) (i32.const 3)) (i32.const -2)) (then (return (i32.const 12))))
             (local.set $h (call $request (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 13) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
             (if (i32.ne (call $status (local.get $h)) (i32.const 200)) (then (return (i32.const 13))))
             (drop (call $close (local.get $h)))
             (if (i32.ne (call $status (local.get $h)) (i32.const -3)) (then (return (i32.const 14))))
             (if (i32.ne (call $close (local.get $h)) (i32.const -3)) (then (return (i32.const 15))))
             (i32.const 3))"#,
    );
    let (result, _work) = common::period(&sim, &[("inline.wasm".into(), module)], AgentConfig::default()).await;
    let r = report(&result.metadata.status_reports, "inline");
    assert_eq!(r.exit_code, Some(3), "every check inside the guest passed: {r:?}");
    assert_eq!(r.error_kind.as_deref(), Some("exit"));
    assert!(r.errors.as_ref().unwrap().iter().any(|e| e.contains("returned 3")));
}
