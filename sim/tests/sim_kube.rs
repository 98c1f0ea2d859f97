//! The real kube-rs client (TLS + bearer token from the written kubeconfig) against the
//! simulator on 127.0.0.1:0.

use testkit as common;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};

async fn client_for(sim: &gather_sim::SimHandle, dir: &tempfile::TempDir) -> kube::Client {
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).unwrap();
    common::kube_client(&path).await
}

#[tokio::test]
async fn lists_nodes_one_page_at_a_time() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes: Api<Node> = Api::all(client_for(&sim, &dir).await);
    let (mut names, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let mut lp = ListParams::default().limit(1);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = nodes.list(&lp).await.unwrap();
        assert!(page.items.len() <= 1);
        assert!(page.metadata.resource_version.as_deref().is_some_and(|rv| !rv.is_empty()));
        names.extend(page.items.into_iter().map(|n| n.metadata.name.unwrap()));
        pages += 1;
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, common::fixture_names("Node"));
    assert_eq!(pages, names.len(), "limit=1 gives one node per page");
}

#[tokio::test]
async fn gets_a_cluster_operator_and_lists_pods_everywhere() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let client = client_for(&sim, &dir).await;
    let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "ClusterOperator");
    let co: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    let dns = co.get("dns").await.unwrap();
    assert_eq!(dns.metadata.name.as_deref(), Some("dns"));
    let on_disk: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::sample_dir().join("config.openshift.io/clusteroperators/dns.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dns.data["status"], on_disk["status"], "served object equals the fixture");

    let pods: Api<Pod> = Api::all(client);
    let all = pods.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<String> = all
        .items
        .iter()
        .map(|p| format!("{}/{}", p.metadata.namespace.as_deref().unwrap(), p.metadata.name.as_deref().unwrap()))
        .collect();
    names.sort();
    assert_eq!(names, common::fixture_names("Pod"));
}

#[tokio::test]
async fn not_found_is_a_status_with_reason() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes: Api<Node> = Api::all(client_for(&sim, &dir).await);
    match nodes.get("no-such-node").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
            assert_eq!(status.message, "nodes \"no-such-node\" not found");
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
}

#[tokio::test]
async fn unauthorized_without_the_token() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    // Same CA and server, no token: the real TLS path still works, auth does not.
    let yaml = sim.kubeconfig_yaml().replace(&format!("token: {}", sim.token), "token: wrong-token");
    std::fs::write(&path, yaml).unwrap();
    let client = common::kube_client(&path).await;
    let nodes: Api<Node> = Api::all(client);
    match nodes.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 401);
            assert_eq!(status.reason, "Unauthorized");
        }
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_rs_reads_pod_logs() {
    let sim = common::start_sample().await;
    let dir = tempfile::tempdir().unwrap();
    let pods: Api<Pod> = Api::namespaced(client_for(&sim, &dir).await, "openshift-monitoring");
    let lp = kube::api::LogParams { container: Some("alertmanager".into()), tail_lines: Some(50), ..Default::default() };
    let text = pods.logs("alertmanager-main-0", &lp).await.unwrap();
    let on_disk = std::fs::read_to_string(common::sample_dir().join("logs/openshift-monitoring/alertmanager-main-0/alertmanager.log")).unwrap();
    let tail: Vec<&str> = on_disk.lines().skip(on_disk.lines().count().saturating_sub(50)).collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), tail);
    assert!(on_disk.lines().count() > 50);
    let err = pods.logs("no-such-pod", &kube::api::LogParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err}");
}
