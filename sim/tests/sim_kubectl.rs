//! kubectl (installed on the machine) against the simulator: the proof that it speaks real
//! Kubernetes. Every test compares what kubectl prints with the fixture files.

use testkit as common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs kubectl with its own HOME (so no discovery cache leaks between tests).
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    let home = kubeconfig.parent().unwrap().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new("kubectl");
    cmd.env("HOME", &home)
        .env_remove("KUBECONFIG")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .args(args);
    // kubectl blocks; keep the simulator's runtime free to answer it.
    tokio::task::spawn_blocking(move || cmd.output().expect("kubectl is installed (see .ci/run)"))
        .await
        .unwrap()
}

async fn kubectl_json(kubeconfig: &Path, args: &[&str]) -> Value {
    let out = kubectl(kubeconfig, args).await;
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kubectl printed JSON")
}

fn item_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| {
            let ns = o["metadata"]["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
            format!("{ns}{}", o["metadata"]["name"].as_str().unwrap())
        })
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reads_the_sample_cluster() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();

    let nodes = kubectl_json(&kc, &["get", "nodes", "-o", "json"]).await;
    assert_eq!(item_names(&nodes), common::fixture_names("Node"));

    let cos = kubectl_json(&kc, &["get", "clusteroperators.config.openshift.io", "-o", "json"]).await;
    let co_names = item_names(&cos);
    assert_eq!(co_names, common::fixture_names("ClusterOperator"));
    assert!(co_names.len() >= 30, "the sample has 30-odd cluster operators");

    let before = sim.request_count();
    let pods = kubectl_json(&kc, &["get", "pods", "-A", "--chunk-size=3", "-o", "json"]).await;
    let pod_names = item_names(&pods);
    assert_eq!(pod_names, common::fixture_names("Pod"));
    let requests = sim.request_count() - before;
    assert!(
        requests as usize >= pod_names.len().div_ceil(3),
        "--chunk-size=3 pages: {requests} requests for {} pods",
        pod_names.len()
    );

    let dns = kubectl_json(&kc, &["get", "co", "dns", "-o", "json"]).await;
    assert_eq!(dns["kind"], "ClusterOperator");
    assert_eq!(dns["metadata"]["name"], "dns");

    let mcp = kubectl_json(&kc, &["get", "mcp", "-o", "json"]).await;
    assert_eq!(item_names(&mcp), common::fixture_names("MachineConfigPool"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_table_output_and_errors() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();

    // Human output goes through the server-side Table path.
    let out = kubectl(&kc, &["get", "co"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("NAME"));
    let listed: Vec<&str> = lines.map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(listed.len(), common::fixture_names("ClusterOperator").len());
    assert!(listed.contains(&"dns"));

    let out = kubectl(&kc, &["get", "nonexistent-thing"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the server doesn't have a resource type \"nonexistent-thing\""),
        "unexpected error: {err}"
    );

    let out = kubectl(&kc, &["get", "node", "no-such-node"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nodes \"no-such-node\" not found"));

    let out = kubectl(&kc, &["delete", "co", "dns"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MethodNotAllowed"));

    let sel = kubectl_json(&kc, &["get", "pods", "-A", "-l", "app=web", "--field-selector", "metadata.namespace=sample-app", "-o", "json"]).await;
    let names = item_names(&sel);
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n.starts_with("sample-app/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_the_imported_kinds() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();

    let ns = "openshift-cluster-samples-operator";
    let pod = "cluster-samples-operator-8ffb9b45f-49mjr";
    let log = std::fs::read_to_string(common::sample_dir().join(format!("logs/{ns}/{pod}/cluster-samples-operator.log"))).unwrap();
    let out = kubectl(&kc, &["logs", "-n", ns, pod, "-c", "cluster-samples-operator", "--tail=5"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tail: Vec<&str> = log.lines().skip(log.lines().count() - 5).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().collect::<Vec<_>>(), tail);
    let out = kubectl(&kc, &["logs", "-n", ns, pod, "-c", "nope"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("container nope is not valid"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = kubectl(&kc, &["logs", "-n", ns, "no-such-pod"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("pods \"no-such-pod\" not found"), "{}", String::from_utf8_lossy(&out.stderr));

    // Kinds imported for IO's gatherers, by plural, short name and group.
    for (resource, kind) in [
        ("machines.machine.openshift.io", "Machine"),
        ("machinesets.machine.openshift.io", "MachineSet"),
        ("nns", "NodeNetworkState"),
        ("scc", "SecurityContextConstraints"),
        ("csv", "ClusterServiceVersion"),
        ("clusterroles", "ClusterRole"),
        ("events", "Event"),
        ("configmaps", "ConfigMap"),
    ] {
        let list = kubectl_json(&kc, &["get", resource, "-A", "-o", "json"]).await;
        let names = item_names(&list);
        assert_eq!(names, common::fixture_names(kind), "{resource}");
        assert!(!names.is_empty(), "{resource}");
    }
    let out = kubectl(&kc, &["get", "events", "-n", "openshift-machine-api"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FailedUpdate"));
}
