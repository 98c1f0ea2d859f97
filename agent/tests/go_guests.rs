//! Guests built by the standard Go toolchain (`GOOS=wasip1 -buildmode=c-shared`) run in the
//! sandbox: the WASI subset, `_initialize`, Go-sized modules, and every limit holding for a
//! real Go runtime. The modules are built by `cargo xtask gatherers` (which `cargo xtask test`
//! runs first): the default Go gatherers into target/gatherers, the test guests of
//! testdata/guests/go into target/testguests/go.
//! Run alone with `cargo test -p agent --test go_guests`.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent::archive::{ArchiveWriter, StatusReport};
use agent::config::AgentConfig;
use agent::pdk::HostState;
use agent::policy::ModulePolicy;
use agent::limits::Limits;
use agent::sandbox::{LoadError, Sandbox};
use serde_json::Value;

/// An API the guest never reaches: the sleeping guest makes no request.
struct NoApi;

impl agent::pdk::Api for NoApi {
    fn send(&self, _: &str, _: &hostapi::Request, _: u64, _: std::time::Instant) -> Result<hostapi::Response, agent::policy::BridgeError> {
        Err(agent::policy::BridgeError::Unavailable("no API in this test".into()))
    }
}

fn testguest(name: &str) -> (String, Vec<u8>) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/testguests/go")).join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask gatherers` (it needs Go: see ABI.md)", path.display()));
    (format!("{name}.wasm"), bytes)
}

fn gatherer(name: &str) -> (String, Vec<u8>) {
    let file = format!("{name}.wasm");
    common::built_gatherers().into_iter().find(|(n, _)| *n == file).unwrap_or_else(|| panic!("no {file}: run `cargo xtask gatherers`"))
}

fn report<'a>(reports: &'a [StatusReport], name: &str) -> &'a StatusReport {
    reports.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no report for {name}: {reports:#?}"))
}

/// One period of the hostile guest in `mode`, with `limits` (JSON) for it.
async fn hostile(mode: &str, limits: &str) -> (StatusReport, std::collections::BTreeMap<String, Vec<u8>>) {
    let sim = common::start_sample().await;
    let cfg: AgentConfig =
        serde_json::from_str(&format!(r#"{{"modules": {{"go-hostile": {{"config": "{mode}", "limits": {limits}}}}}}}"#)).unwrap();
    let (result, _work) = common::period(&sim, &[testguest("hostile")], cfg).await;
    let r = report(&result.metadata.status_reports, "go-hostile").clone();
    (r, common::records(&result.archive))
}

fn kind(r: &StatusReport) -> Option<&str> {
    r.error_kind.as_deref()
}

fn without_managed_fields(mut v: Value) -> Value {
    v["metadata"].as_object_mut().unwrap().remove("managedFields");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_default_gatherers_produce_io_records() {
    let sim = common::start_sample().await;
    let (result, _work) =
        common::period(&sim, &[gatherer("pdbs"), gatherer("webhookconfigurations")], AgentConfig::default()).await;
    for name in ["pdbs", "webhookconfigurations"] {
        let r = report(&result.metadata.status_reports, name);
        assert_eq!(kind(r), None, "{r:#?}");
        assert_eq!(r.exit_code, Some(0));
        // The report gives the guest's linear-memory high-water mark: for a Go guest, its
        // data and the Go runtime's heap, megabytes, far below the 64 MiB cap.
        assert!(r.guest_memory_bytes > 2 << 20 && r.guest_memory_bytes < 64 << 20, "{r:#?}");
    }
    let records = common::records(&result.archive);
    let pdb: Value = serde_json::from_slice(&records["config/pdbs/openshift-machine-config-operator/etcd-quorum-guard.json"]).unwrap();
    assert_eq!(pdb, without_managed_fields(common::fixture("PodDisruptionBudget", "openshift-machine-config-operator/etcd-quorum-guard")));
    assert!(!records.contains_key("config/pdbs/default/web.json"), "IO gathers PDBs of openshift* namespaces only");
    let hook: Value = serde_json::from_slice(&records["config/validatingwebhookconfigurations/snapshot.storage.k8s.io.json"]).unwrap();
    // The sample's CA bundles are already IO-anonymized ("x" bytes), so anonymizing is the identity here.
    assert_eq!(hook, without_managed_fields(common::fixture("ValidatingWebhookConfiguration", "snapshot.storage.k8s.io")));
    assert!(records.contains_key("config/mutatingwebhookconfigurations/pod-identity-webhook.json"));
    assert_eq!(report(&result.metadata.status_reports, "pdbs").records_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_module_written_against_the_abi_alone_loads_and_records() {
    let sim = common::start_sample().await;
    // It declares `gather.record` twice and exports `_initialize`, as Go modules do.
    let (result, _work) = common::period(&sim, &[testguest("raw")], AgentConfig::default()).await;
    let r = report(&result.metadata.status_reports, "go-raw");
    assert_eq!((kind(r), r.exit_code), (None, Some(0)), "{r:#?}");
    let records = common::records(&result.archive);
    let version: Value = serde_json::from_slice(&records["config/version.json"]).unwrap();
    assert_eq!(version["metadata"]["name"], "version");
    assert_eq!(records["go-raw/done.txt"], b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_go_panic_is_reported_from_the_runtime_stderr() {
    let sim = common::start_sample().await;
    let cfg: AgentConfig = serde_json::from_str(r#"{"modules": {"go-raw": {"config": true}}}"#).unwrap();
    let (result, _work) = common::period(&sim, &[testguest("raw")], cfg).await;
    let r = report(&result.metadata.status_reports, "go-raw");
    assert_eq!(kind(r), Some("panic"), "{r:#?}");
    assert_eq!(r.panic.as_deref(), Some("panic: raw boom"));
    assert_eq!(r.exit_code, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_is_info_stderr_is_warnings_line_by_line() {
    let (r, records) = hostile("behave", "{}").await;
    assert_eq!(kind(&r), None, "{r:#?}");
    // "hello " and "from stderr\n" arrive in two fd_write calls: one line.
    assert_eq!(r.warnings.as_deref(), Some(&["hello from stderr".to_owned()][..]));
    let summary: Value = serde_json::from_slice(&records["go/summary.json"]).unwrap();
    assert_eq!(summary["nodes"], common::fixture_names("Node").len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_sleep_returns_and_the_gatherer_goes_on() {
    let (r, records) = hostile("shortsleep", "{}").await;
    assert_eq!(kind(&r), None, "{r:#?}");
    assert_eq!(records["go/slept.txt"], b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_busy_loop_runs_out_of_fuel() {
    let (r, _) = hostile("loop", r#"{"fuel": 300000000}"#).await;
    assert_eq!(kind(&r), Some("fuel"), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_busy_loop_is_stopped_at_the_deadline() {
    // wasmi charges a block's fuel on entry, and Go's code is a few huge blocks: a Go busy loop
    // burns the default 20 G fuel in well under a second. A large budget leaves the deadline.
    let (r, _) = hostile("loop", r#"{"deadlineMs": 1000, "fuel": 100000000000000}"#).await;
    assert_eq!(kind(&r), Some("deadline"), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sleeping_forever_is_stopped_at_the_deadline() {
    // poll_oneoff is asked for an hour; it must give up at the deadline.
    for mode in ["sleep", "goroutine"] {
        let (r, _) = hostile(mode, r#"{"deadlineMs": 1000}"#).await;
        assert_eq!(kind(&r), Some("deadline"), "{mode}: {r:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_allocating_forever_hits_the_memory_cap() {
    let (r, _) = hostile("alloc", r#"{"memoryBytes": 33554432}"#).await;
    assert_eq!(kind(&r), Some("memory"), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_and_stderr_flood_stays_bounded() {
    let (r, _) = hostile("flood", r#"{"deadlineMs": 1500}"#).await;
    assert!(matches!(kind(&r), Some("deadline" | "fuel")), "{r:#?}");
    let warnings = r.warnings.as_ref().expect("stderr lines are warnings");
    // At most the report's 200 entries of stderr lines, plus the host's own notes (the log
    // budget, entries dropped), which are kept even when the report is full.
    let (flood, notes): (Vec<&String>, Vec<&String>) = warnings.iter().partition(|w| w.starts_with("flood "));
    assert!(flood.len() <= 200, "{} stderr lines kept", flood.len());
    assert!(notes.len() <= 2 && notes.iter().all(|n| n.contains("log budget") || n.contains("dropped")), "stdout lines are not warnings: {notes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_exit_3_is_exit_code_3() {
    let (r, _) = hostile("exit3", "{}").await;
    assert_eq!((kind(&r), r.exit_code), (Some("exit"), Some(3)), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_panic_is_kind_panic() {
    let (r, _) = hostile("panic", "{}").await;
    assert_eq!(kind(&r), Some("panic"), "{r:#?}");
    assert_eq!(r.panic.as_deref(), Some("boom"), "the SDK logs the panic value at level 4 first");
}

#[test]
fn a_wasi_import_outside_the_subset_is_refused_naming_it() {
    let (_, bytes) = testguest("badwasi");
    let err = Sandbox::new().load(&bytes).unwrap_err();
    let LoadError::UnknownImport { module, name, .. } = &err else { panic!("{err}") };
    assert_eq!(module, "wasi_snapshot_preview1");
    assert!(["path_open", "fd_filestat_get", "path_filestat_get"].contains(&name.as_str()), "{err}");
    assert!(err.to_string().contains(&format!("wasi_snapshot_preview1.{name} (outside the host's WASI subset)")), "{err}");
}

#[test]
fn go_modules_pass_the_structural_limits() {
    let sandbox = Sandbox::new();
    for (name, bytes) in [gatherer("pdbs"), gatherer("webhookconfigurations"), testguest("hostile")] {
        let m = sandbox.load(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(m.size > 1_000_000, "{name} is a real Go module");
    }
}

#[test]
fn a_sleeping_go_guest_is_cancelled_at_shutdown() {
    let sandbox = Arc::new(Sandbox::new());
    let module = sandbox.load(&testguest("hostile").1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = Arc::new(ArchiveWriter::create(dir.path(), time::OffsetDateTime::now_utc(), 1 << 20).unwrap());
    // The default 60 s deadline: only cancellation can end the hour-long sleep in time.
    let state = HostState::new(
        module.manifest.clone(),
        ModulePolicy::default(),
        Arc::new(NoApi),
        archive,
        br#""sleep""#.to_vec(),
        Limits::default(),
    );
    let runner = {
        let sandbox = sandbox.clone();
        std::thread::spawn(move || sandbox.run(&module, state, &Limits::default()))
    };
    std::thread::sleep(Duration::from_millis(500));
    sandbox.cancel_runs();
    let outcome = runner.join().unwrap();
    assert_eq!(outcome.result.unwrap_err().kind, agent::errors::ErrorKind::Cancelled);
}
