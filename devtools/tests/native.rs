//! The native build of the default gatherers (`gather_devtools::native`) against the same host: it
//! writes byte-for-byte the records the wasm build writes, reports the same counts, and a
//! panicking native gatherer is reported like a wasm one without taking the agent down.

use testkit as common;

use std::sync::Arc;

use agent::config::AgentConfig;
use gather_devtools::native::{self, NativeGatherer, NativeSpec};
use gather_sim::SimHandle;
use hostapi::guest;

async fn native_period(sim: &SimHandle, gatherers: Vec<NativeGatherer>) -> (agent::gather::PeriodResult, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let kc = work.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let client = agent::kubeclient::from_kubeconfig(&kc).await.unwrap();
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let specs = gatherers.into_iter().map(NativeSpec::new).collect();
    let result = native::run_period(api, specs, &agent::gather::PeriodOptions::new(work.path().join("out"))).await.unwrap();
    (result, work)
}

async fn same_records_as_wasm(sim: SimHandle) {
    // The Rust gatherers, which have native builds (the Go ones do not).
    let natives = native::default_gatherers();
    let rust: Vec<_> = common::built_gatherers()
        .into_iter()
        .filter(|(file, _)| natives.iter().any(|n| format!("{}.wasm", n.manifest.name) == *file))
        .collect();
    assert_eq!(rust.len(), natives.len());
    let (wasm, _w) = common::period(&sim, &rust, AgentConfig::default()).await;
    let (native, _n) = native_period(&sim, natives).await;
    let mut wasm_records = common::records(&wasm.archive);
    let mut native_records = common::records(&native.archive);
    wasm_records.remove("insights-operator/gathers.json");
    native_records.remove("insights-operator/gathers.json");
    assert!(wasm_records.len() > 50, "{} records", wasm_records.len());
    assert_eq!(native_records.keys().collect::<Vec<_>>(), wasm_records.keys().collect::<Vec<_>>());
    for (name, bytes) in &wasm_records {
        assert!(native_records[name] == *bytes, "{name} differs between the wasm and native builds");
    }
    let summary = |r: &agent::gather::PeriodResult| {
        r.metadata.status_reports.iter().map(|s| (s.name.clone(), s.records_count, s.bytes_emitted, s.requests, s.errors.clone())).collect::<Vec<_>>()
    };
    assert_eq!(summary(&native), summary(&wasm));
    for r in &native.metadata.status_reports {
        assert_eq!((r.error_kind.as_deref(), r.exit_code, r.fuel_used, r.sha256.as_str()), (None, Some(0), 0, "native"), "{r:?}");
    }
}

#[test]
fn every_built_rust_gatherer_has_a_native_build() {
    // The built set decides: a module that is not a Go (WASI) guest must be linked natively,
    // so the benchmark's wasm ÷ native covers the whole Rust default set.
    let built = common::built_gatherers();
    for (file, bytes) in &built {
        let name = file.trim_end_matches(".wasm");
        assert!(
            native::has_native_build(name) || gather_devtools::bench::imports_wasi(bytes),
            "{file} is a Rust gatherer with no native build: add it to devtools/Cargo.toml and native.rs's table"
        );
    }
    let go = built.iter().filter(|(_, b)| gather_devtools::bench::imports_wasi(b)).count();
    assert!(go >= 2, "the Go default gatherers are built too ({go})");
    for g in native::default_gatherers() {
        assert!(built.iter().any(|(f, _)| *f == format!("{}.wasm", g.manifest.name)), "{} has no wasm build", g.manifest.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_wasm_builds_write_identical_records_on_the_sample_cluster() {
    same_records_as_wasm(common::start_sample().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_wasm_builds_write_identical_records_at_scale() {
    let sim = common::start(gather_sim::SimConfig { scale: 60, ..gather_sim::SimConfig::with_fixtures(common::sample_dir()) }).await;
    same_records_as_wasm(sim).await;
}

fn panics() -> guest::Result<()> {
    guest::log("about to fail");
    let empty: Vec<u8> = Vec::new();
    guest::record("test/never.txt", [empty[1]])
}

fn panicking_entry() -> i32 {
    guest::__run(panics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_panic_is_reported_and_the_agent_carries_on() {
    let sim = common::start_sample().await;
    let manifest = r#"{"name":"boom","version":"1.0.0","abi":1,"permissions":[]}"#;
    let boom = NativeGatherer::new(manifest, panicking_entry).unwrap();
    let nodes = native::default_gatherers().into_iter().filter(|g| g.manifest.name == "nodes").collect::<Vec<_>>();
    let (result, _work) = native_period(&sim, [vec![boom], nodes].concat()).await;
    let boom = result.metadata.status_reports.iter().find(|r| r.name == "boom").unwrap();
    assert_eq!(boom.error_kind.as_deref(), Some("panic"), "{boom:?}");
    assert!(boom.panic.as_deref().unwrap().contains("index out of bounds"), "{boom:?}");
    let nodes = result.metadata.status_reports.iter().find(|r| r.name == "nodes").unwrap();
    assert!(nodes.errors.is_none() && nodes.records_count > 0, "{nodes:?}");
    // A panic on a thread with no gatherer still goes to the usual hook, not to a host.
    let other = std::thread::spawn(|| panic!("an ordinary panic")).join();
    assert!(other.is_err());
}
