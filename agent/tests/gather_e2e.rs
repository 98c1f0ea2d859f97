//! End to end on the sample cluster: the default gatherers (wasm, built from gatherers/) and
//! the WAT gatherer run against the simulator, and the archive reproduces the Insights
//! Operator's paths with every record equal to its fixture object minus managedFields.

mod common;

use common::io_pod_rule;

use std::collections::BTreeSet;

use agent::config::AgentConfig;
use serde_json::Value;

fn without_managed_fields(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_gatherers_reproduce_the_sample_archive() {
    let sim = common::start_sample().await;
    let mut modules = common::built_gatherers();
    modules.push(common::wat("gatherers/ingresscontroller.wat"));
    let (result, _work) = common::period(&sim, &modules, AgentConfig::default()).await;
    let records = common::records(&result.archive);

    // tar itself can list it.
    let listing = std::process::Command::new("tar").arg("-tzf").arg(&result.archive).output().unwrap();
    assert!(listing.status.success());
    let listed: BTreeSet<String> = String::from_utf8(listing.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(listed, records.keys().cloned().collect::<BTreeSet<_>>());
    let file_name = result.archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(file_name.starts_with("insights-") && file_name.ends_with(".tar.gz"), "{file_name}");

    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut check = |record: String, kind: &str, key: &str| {
        let mut got: Value = serde_json::from_slice(records.get(&record).unwrap_or_else(|| panic!("missing {record}"))).unwrap();
        let want = without_managed_fields(common::fixture(kind, key));
        if want["metadata"].get("resourceVersion").is_none() {
            // The simulator, like any API server, gives every object a resourceVersion.
            let rv = got["metadata"].as_object_mut().unwrap().remove("resourceVersion");
            assert!(rv.is_some_and(|rv| rv.is_string()), "{record} has a resourceVersion");
        }
        assert_eq!(got, want, "{record}");
        assert!(got["metadata"].get("managedFields").is_none());
        expected.insert(record);
    };
    for n in common::fixture_names("Node") {
        check(format!("config/node/{n}.json"), "Node", &n);
    }
    for n in common::fixture_names("ClusterOperator") {
        check(format!("config/clusteroperator/{n}.json"), "ClusterOperator", &n);
    }
    check("config/version.json".into(), "ClusterVersion", "version");
    for (record, kind) in [
        ("infrastructure", "Infrastructure"), ("network", "Network"), ("proxy", "Proxy"), ("oauth", "OAuth"),
        ("ingress", "Ingress"), ("image", "Image"), ("featuregate", "FeatureGate"), ("apiserver", "APIServer"),
        ("authentication", "Authentication"),
    ] {
        let kind = format!("{kind}.config.openshift.io");
        check(format!("config/{record}.json"), &kind, "cluster");
    }
    for n in common::fixture_names("MachineConfigPool") {
        check(format!("config/machineconfigpools/{n}.json"), "MachineConfigPool", &n);
    }
    let mut wanted_pods = 0;
    for key in common::fixture_names("Pod") {
        let pod = common::fixture("Pod", &key);
        let record = format!("config/pod/{key}.json");
        if io_pod_rule(&pod) {
            wanted_pods += 1;
            check(record, "Pod", &key);
        } else if pod["metadata"]["namespace"] == "di-288312" {
            // IO's SAP rule (the `sap` gatherer) records the failing pods of DataHub namespaces.
            assert_eq!(pod["status"]["phase"] == "Running", !records.contains_key(&record), "{record}");
        } else {
            assert!(!records.contains_key(&record), "{record} does not match IO's pod rule");
        }
    }
    assert!(wanted_pods > 20 && wanted_pods < common::fixture_names("Pod").len());
    check(
        "config/ingresscontroller/openshift-ingress-operator/default.json".into(),
        "IngressController",
        "openshift-ingress-operator/default",
    );
    // The Go gatherers: PDBs of openshift* namespaces only, and both kinds of webhook configuration.
    for key in common::fixture_names("PodDisruptionBudget") {
        let record = format!("config/pdbs/{key}.json");
        if key.starts_with("openshift") {
            check(record, "PodDisruptionBudget", &key);
        } else {
            assert!(!records.contains_key(&record), "{record} is outside IO's openshift* namespaces");
        }
    }
    for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
        for n in common::fixture_names(kind) {
            check(format!("config/{}s/{n}.json", kind.to_lowercase()), kind, &n);
        }
    }
    let version = common::fixture("ClusterVersion", "version");
    assert_eq!(records["config/id"], version["spec"]["clusterID"].as_str().unwrap().as_bytes());
    expected.insert("config/id".into());
    expected.insert("insights-operator/gathers.json".into());
    // Everything else is one of IO's records (io_coverage.rs checks their content): a path of
    // IO's sample archive, or one IO writes that the sample happens to lack.
    let sample = common::records(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/archives/io-sample.tar.gz")));
    let io_extra = |r: &str| {
        r == "aggregated/unused_machine_configs_count.json"
            || r.starts_with("config/machineconfigs/")
            || r.starts_with("customresources/installers.datahub.sap.com/datahubs/")
    };
    let unexpected: Vec<&String> = records.keys().filter(|r| !expected.contains(*r) && !sample.contains_key(*r) && !io_extra(r)).collect();
    assert!(unexpected.is_empty(), "records IO does not write: {unexpected:?}");
    assert!(expected.iter().all(|r| records.contains_key(r)));

    // gathers.json: one report per gatherer, IO's fields plus ours, all clean.
    let meta: Value = serde_json::from_slice(&records["insights-operator/gathers.json"]).unwrap();
    let reports = meta["status_reports"].as_array().unwrap();
    assert_eq!(reports.len(), modules.len());
    for r in reports {
        for field in ["name", "duration_in_ms", "records_count", "errors", "warnings", "panic", "version", "sha256", "fuel_used", "requests", "bytes_emitted", "guest_memory_bytes"] {
            assert!(r.get(field).is_some(), "report lacks {field}: {r}");
        }
        assert!(r["errors"].is_null() && r["panic"].is_null(), "{r}");
        assert!(r["fuel_used"].as_u64().unwrap() > 0);
        assert!(r["requests"].as_u64().unwrap() >= 1);
        // Every guest has at least the one page of linear memory it started with.
        assert!(r["guest_memory_bytes"].as_u64().unwrap() >= 65_536, "{r}");
        let name = r["name"].as_str().unwrap();
        let (_, bytes) = modules.iter().find(|(f, _)| f.trim_end_matches(".wasm") == name).unwrap();
        assert_eq!(r["sha256"], agent::util::sha256_hex(bytes));
    }
    let records_total: u64 = reports.iter().map(|r| r["records_count"].as_u64().unwrap()).sum();
    assert_eq!(records_total as usize, records.len() - 1);
    assert!(meta["uptime_seconds"].as_f64().is_some() && meta["memory_alloc_bytes"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_faults_reach_the_gatherer_and_the_archive() {
    let sim = common::start(gather_sim::SimConfig {
        faults: vec![
            "/api/v1/nodes=500".parse().unwrap(),
            "/apis/config.openshift.io/v1/clusterversions=404".parse().unwrap(),
            "/apis/config.openshift.io/v1/proxies=403".parse().unwrap(),
        ],
        ..gather_sim::SimConfig::with_fixtures(common::sample_dir())
    })
    .await;
    let (result, _work) = common::period(&sim, &common::built_gatherers(), AgentConfig::default()).await;
    let report = |name: &str| result.metadata.status_reports.iter().find(|r| r.name == name).unwrap().clone();

    let nodes = report("nodes");
    assert_eq!(nodes.records_count, 0);
    assert_eq!(nodes.error_kind.as_deref(), Some("exit"));
    assert!(nodes.errors.unwrap().iter().any(|e| e.contains("HTTP 500")), "the gatherer saw the status");

    let cv = report("clusterversion");
    assert!(cv.errors.is_none(), "a 404 is the gatherer's call: it warns");
    assert!(cv.warnings.unwrap().iter().any(|w| w.contains("404")));

    let cc = report("clusterconfig");
    assert_eq!(cc.records_count, 8, "one singleton forbidden, eight gathered");
    assert!(cc.errors.unwrap().iter().any(|e| e.contains("proxies") && e.contains("403")));

    let records = common::records(&result.archive);
    assert!(records.keys().any(|k| k.starts_with("config/clusteroperator/")), "other gatherers still wrote");
    assert!(!records.contains_key("config/proxy.json"));
}
