//! Coverage against the Insights Operator's own sample archive: which of its records the
//! default gatherers produce against the simulator serving the sample fixture cluster, grouped
//! by the IO gather function that writes them. Prints the table, asserts at least 150 present,
//! and keeps the README's coverage table in step with it (`UPDATE_COVERAGE=1` rewrites it).

use testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// IO's sample archive, as packed in testdata.
fn io_sample() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/archives/io-sample.tar.gz"))
}

fn readme() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
}

/// Metadata, not gathered data.
const METADATA: [&str; 2] = ["insights-operator/gathers.json", "insights-operator/conditional-gatherer-rules.json"];

/// Which IO function writes a sample path: the first matching rule (exact path, or prefix
/// ending in `/`). Read from IO's gatherers (`pkg/gatherers/*`); every sample path must match.
const FUNCTIONS: &[(&str, &str)] = &[
    ("config/clusteroperator/imageregistry.operator.openshift.io/config/", "clusterconfig/image_registries"),
    ("config/clusteroperator/imageregistry.operator.openshift.io/imagepruner/", "clusterconfig/image_pruners"),
    ("config/clusteroperator/", "clusterconfig/operators"),
    ("config/version.json", "clusterconfig/version"),
    ("config/id", "clusterconfig/version"),
    ("config/infrastructure.json", "clusterconfig/infrastructures"),
    ("config/network.json", "clusterconfig/networks"),
    ("config/proxy.json", "clusterconfig/proxies"),
    ("config/oauth.json", "clusterconfig/oauths"),
    ("config/ingress.json", "clusterconfig/ingress"),
    ("config/image.json", "clusterconfig/image"),
    ("config/featuregate.json", "clusterconfig/feature_gates"),
    ("config/apiserver.json", "clusterconfig/cluster_apiserver"),
    ("config/authentication.json", "clusterconfig/authentication"),
    ("config/node/logs/", "clusterconfig/node_logs"),
    ("config/node/", "clusterconfig/nodes"),
    ("config/machineconfigpools/", "clusterconfig/machine_config_pools"),
    ("config/machineconfigs/", "clusterconfig/machine_configs"),
    ("config/pdbs/", "clusterconfig/pdbs"),
    ("config/validatingwebhookconfigurations/", "clusterconfig/validating_webhook_configurations"),
    ("config/mutatingwebhookconfigurations/", "clusterconfig/mutating_webhook_configurations"),
    ("config/crd/", "clusterconfig/crds"),
    ("config/machines/", "clusterconfig/machines"),
    ("machinesets/", "clusterconfig/machine_sets"),
    ("config/machinehealthchecks/", "clusterconfig/machine_healthchecks"),
    ("config/machineautoscalers/", "clusterconfig/machine_autoscalers"),
    ("config/controlplanemachinesets/", "clusterconfig/control_plane_machine_sets"),
    ("cluster-scoped-resources/nmstate.io/nodenetworkstates/", "clusterconfig/nodenetworkstates"),
    ("cluster-scoped-resources/nmstate.io/nodenetworkconfigurationpolicies/", "clusterconfig/nodenetworkconfigurationpolicies"),
    ("cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles/", "clusterconfig/clusterroles"),
    ("config/containerruntimeconfigs/", "clusterconfig/container_runtime_configs"),
    ("config/kubeletconfigs/", "clusterconfig/kubeletconfigs"),
    ("config/schedulers/", "clusterconfig/schedulers"),
    ("config/storage/storageclasses/", "clusterconfig/storage_classes"),
    ("config/storage/openshift-storage/storageclusters/", "clusterconfig/storage_cluster"),
    ("config/storage/openshift-storage/cephclusters/", "clusterconfig/ceph_cluster"),
    ("config/jaegertracing.io/", "clusterconfig/jaegers"),
    ("config/logging/", "clusterconfig/openshift_logging"),
    ("config/opentelemetry/", "clusterconfig/opentelemetry_collectors"),
    ("config/subscriptions/", "clusterconfig/subscriptions"),
    ("config/cost_management_metrics_configs/", "clusterconfig/cost_management_metrics_configs"),
    ("namespaces/openstack/core.openstack.org/openstackcontrolplanes/", "clusterconfig/openstack_controlplanes"),
    ("namespaces/openstack/core.openstack.org/openstackversions/", "clusterconfig/openstack_version"),
    ("namespaces/openstack/dataplane.openstack.org/openstackdataplanedeployments/", "clusterconfig/openstack_dataplanedeployments"),
    ("namespaces/openstack/dataplane.openstack.org/openstackdataplanenodesets/", "clusterconfig/openstack_dataplanenodesets"),
    ("namespaces/openshift-logging/", "clusterconfig/lokistack"),
    ("namespaces/openshift-nfd/", "clusterconfig/node_features"),
    ("namespaces/default/pods/", "clusterconfig/qemu_kubevirt_launcher_logs"),
    ("config/configmaps/", "clusterconfig/config_maps"),
    ("config/secrets/openshift-config/support/", "clusterconfig/support_secret"),
    ("config/secrets/openshift-monitoring/alertmanager-main/", "clusterconfig/alertmanager_config"),
    ("config/certificatesigningrequests/", "clusterconfig/certificate_signing_requests"),
    ("config/securitycontextconstraint/", "clusterconfig/sap_config"),
    ("config/clusterrolebinding/", "clusterconfig/sap_config"),
    ("customresources/installers.datahub.sap.com/", "clusterconfig/sap_datahubs"),
    ("config/pod/di-288312/", "clusterconfig/sap_pods"),
    ("config/pod/sdi/logs/", "clusterconfig/sap_license_management_logs"),
    ("config/pod/openshift-apiserver-operator/logs/", "clusterconfig/openshift_apiserver_operator_logs"),
    ("config/pod/openshift-authentication/logs/", "clusterconfig/openshift_authentication_logs"),
    ("config/pod/openshift-kube-controller-manager/logs/", "clusterconfig/kube_controller_manager_logs"),
    ("config/pod/openshift-kube-scheduler/logs/", "clusterconfig/scheduler_logs"),
    ("config/pod/", "clusterconfig/operators_pods_and_events"),
    ("events/", "clusterconfig/openshift_machine_api_events"),
    ("config/persistentvolumes/", "clusterconfig/image_registries"),
    ("config/alerts.json", "clusterconfig/active_alerts"),
    ("config/silenced_alerts.json", "clusterconfig/silenced_alerts"),
    ("config/metrics", "clusterconfig/metrics"),
    ("config/tsdb.json", "clusterconfig/tsdb_status"),
    ("config/dvo_metrics", "clusterconfig/dvo_metrics"),
    ("config/serviceaccounts.json", "clusterconfig/service_accounts"),
    ("config/olm_operators.json", "clusterconfig/olm_operators"),
    ("config/installplans.json", "clusterconfig/install_plans"),
    ("config/namespaces_with_overlapping_uids.json", "clusterconfig/overlapping_namespace_uids"),
    ("config/running_containers.json", "clusterconfig/container_images"),
    ("config/workload_info.json", "workloads/workload_info"),
    ("config/helmchart_info.json", "workloads/helmchart_info"),
    ("config/podnetworkconnectivitychecks.json", "clusterconfig/pod_network_connectivity_checks"),
    ("config/versioned_object_revision_counts.json", "clusterconfig/revisioned_objects"),
    ("aggregated/custom_prometheuses_alertmanagers.json", "clusterconfig/aggregated_monitoring_cr_names"),
    ("aggregated/ingress_controllers_certs.json", "clusterconfig/ingress_certificates"),
    ("aggregated/pods_and_netnamespaces_with_sdn_annotations.json", "clusterconfig/number_of_pods_and_netnamespaces_with_sdn_annotations"),
    ("conditional/", "conditional/*"),
];

fn function_of(path: &str) -> &'static str {
    FUNCTIONS
        .iter()
        .find(|(p, _)| if p.ends_with('/') { path.starts_with(p) } else { path == *p })
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no IO function known for sample path {path}: add a rule to FUNCTIONS"))
}

/// Records compare as parsed JSON when both parse (key order and spacing are not content),
/// byte for byte otherwise.
fn same(a: &[u8], b: &[u8]) -> bool {
    match (serde_json::from_slice::<serde_json::Value>(a), serde_json::from_slice::<serde_json::Value>(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[derive(Default)]
struct Row {
    sample: usize,
    present: usize,
    equal: usize,
    missing: Vec<String>,
}

const START: &str = "<!-- coverage:start (generated by agent/tests/io_coverage.rs; UPDATE_COVERAGE=1 rewrites it) -->";
const END: &str = "<!-- coverage:end -->";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_gatherers_reproduce_most_of_ios_sample() {
    let sim = common::start_sample().await;
    let (result, _work) = common::period(&sim, &common::built_gatherers(), Default::default()).await;
    let ours = common::records(&result.archive);
    let sample = common::records(&io_sample());
    let meta: agent::archive::GathersMetadata = serde_json::from_slice(&ours["insights-operator/gathers.json"]).unwrap();

    // IO function → the module that reproduces it, from the modules' own manifests.
    let mut module_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &meta.status_reports {
        assert!(r.errors.is_none(), "{} reported errors on the sample cluster: {:?}", r.name, r.errors);
        for f in &r.reproduces {
            module_of.entry(f.as_str()).or_default().insert(r.name.as_str());
        }
    }

    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    for (path, bytes) in sample.iter().filter(|(p, _)| !METADATA.contains(&p.as_str())) {
        let row = rows.entry(function_of(path)).or_default();
        row.sample += 1;
        match ours.get(path) {
            Some(mine) => {
                row.present += 1;
                row.equal += usize::from(same(mine, bytes));
            }
            None => row.missing.push(path.clone()),
        }
    }

    let (mut total, mut present, mut equal) = (0, 0, 0);
    let mut table = String::from(
        "| IO function | module | sample records | present | equal after anonymization |\n|---|---|---|---|---|\n",
    );
    for (function, row) in &rows {
        total += row.sample;
        present += row.present;
        equal += row.equal;
        let module = module_of.get(function).map_or("—".to_owned(), |m| m.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "));
        table.push_str(&format!("| `{function}` | {module} | {} | {} | {} |\n", row.sample, row.present, row.equal));
    }
    table.push_str(&format!("| **total** | | **{total}** | **{present}** | **{equal}** |\n"));
    println!("coverage of IO's sample archive ({total} records):\n\n{table}");
    for (function, row) in &rows {
        for path in &row.missing {
            println!("missing ({function}): {path}");
        }
    }
    assert!(present >= 150, "only {present} of {total} of IO's sample records are produced");

    // The README's table is this one.
    let text = std::fs::read_to_string(readme()).unwrap();
    let (Some(a), Some(b)) = (text.find(START), text.find(END)) else { panic!("README.md lacks the coverage markers") };
    let current = &text[a + START.len()..b];
    let wanted = format!("\n{table}");
    if std::env::var_os("UPDATE_COVERAGE").is_some() {
        std::fs::write(readme(), format!("{}{wanted}{}", &text[..a + START.len()], &text[b..])).unwrap();
    } else {
        assert_eq!(current, wanted, "README.md's coverage table is stale: rerun with UPDATE_COVERAGE=1");
    }
}
