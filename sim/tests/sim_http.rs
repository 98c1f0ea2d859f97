//! The simulator's HTTP surface, byte for byte: auth, discovery, selectors, paging, faults and
//! `Status` errors, driven by a plain HTTPS client against a server on 127.0.0.1:0.

use testkit as common;

use std::time::Duration;

use gather_sim::{Cluster, Fault, SimConfig};
use serde_json::Value;

fn names(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_owned()).collect()
}

fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["code"], code);
    assert_eq!(body["reason"], reason);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_status() {
    let sim = common::start_sample().await;
    let client = common::https_client(&sim);
    for auth in [None, Some("Bearer nope"), Some("Basic abc")] {
        let mut req = client.get(format!("{}/api/v1/nodes", sim.url));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_status(&body, 401, "Unauthorized");
    }
    // Health probes need no token, as on kube-apiserver.
    let resp = client.get(format!("{}/healthz", sim.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn discovery_is_derived_from_fixtures() {
    let sim = common::start_sample().await;
    let (code, _, version) = common::get_json(&sim, "/version").await;
    assert_eq!(code, 200);
    assert_eq!(version["major"], "1");

    let (_, _, api) = common::get_json(&sim, "/api").await;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"][0], "v1");

    let (_, _, apis) = common::get_json(&sim, "/apis").await;
    assert_eq!(apis["kind"], "APIGroupList");
    let groups: Vec<&str> = apis["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    for g in ["config.openshift.io", "machineconfiguration.openshift.io", "apps", "apiextensions.k8s.io"] {
        assert!(groups.contains(&g), "{g} missing from {groups:?}");
    }

    let (_, _, config) = common::get_json(&sim, "/apis/config.openshift.io/v1").await;
    assert_eq!(config["kind"], "APIResourceList");
    assert_eq!(config["groupVersion"], "config.openshift.io/v1");
    let co = config["resources"].as_array().unwrap().iter().find(|r| r["name"] == "clusteroperators").unwrap();
    assert_eq!(co["kind"], "ClusterOperator");
    assert_eq!(co["namespaced"], false);
    assert_eq!(co["shortNames"], serde_json::json!(["co"]));
    assert_eq!(co["verbs"], serde_json::json!(["get", "list"]));

    let (_, _, group) = common::get_json(&sim, "/apis/config.openshift.io").await;
    assert_eq!(group["kind"], "APIGroup");
    assert_eq!(group["preferredVersion"]["version"], "v1");

    let (code, _, body) = common::get_json(&sim, "/apis/nope.example.com/v1").await;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound");
}

#[tokio::test]
async fn lists_carry_kind_api_version_and_resource_version() {
    let sim = common::start_sample().await;
    let (code, _, nodes) = common::get_json(&sim, "/api/v1/nodes").await;
    assert_eq!(code, 200);
    assert_eq!(nodes["kind"], "NodeList");
    assert_eq!(nodes["apiVersion"], "v1");
    assert!(nodes["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().is_ok());
    assert!(nodes["metadata"].get("continue").is_none());

    let (_, _, mcs) = common::get_json(&sim, "/apis/machineconfiguration.openshift.io/v1/machineconfigs").await;
    assert_eq!(mcs["kind"], "MachineConfigList");
    assert_eq!(mcs["apiVersion"], "machineconfiguration.openshift.io/v1");
    assert_eq!(names(&mcs).len(), common::fixture_names("MachineConfig").len());

    // Namespaced list in one namespace, and a namespaced get.
    let (_, _, pods) = common::get_json(&sim, "/api/v1/namespaces/openshift-monitoring/pods").await;
    let expected: Vec<String> = common::fixture_names("Pod")
        .into_iter()
        .filter_map(|n| n.strip_prefix("openshift-monitoring/").map(str::to_owned))
        .collect();
    assert_eq!(names(&pods), expected);
    let (code, _, pod) = common::get_json(&sim, &format!("/api/v1/namespaces/openshift-monitoring/pods/{}", expected[0])).await;
    assert_eq!(code, 200);
    assert_eq!(pod["kind"], "Pod");

    // The same pod under the wrong namespace, and a namespaced resource at the cluster path.
    let (code, _, body) = common::get_json(&sim, &format!("/api/v1/namespaces/default/pods/{}", expected[0])).await;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound");
    assert_eq!(body["details"]["kind"], "pods");
    assert_eq!(body["details"]["name"], expected[0].as_str());
    let (code, _, _) = common::get_json(&sim, &format!("/api/v1/pods/{}", expected[0])).await;
    assert_eq!(code, 404);
    let (code, _, body) = common::get_json(&sim, "/apis/config.openshift.io/v1/nothings").await;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound");
}

#[tokio::test]
async fn label_and_field_selectors() {
    let sim = common::start_sample().await;
    let q = |s: &str| format!("/api/v1/pods?labelSelector={}", urlencode(s));
    let (_, _, eq) = common::get_json(&sim, &q("app=web")).await;
    assert_eq!(names(&eq), ["web-5d8f7c9b6d-failing-m7c9t", "web-5d8f7c9b6d-healthy-x2k4p"]);
    let (_, _, all) = common::get_json(&sim, "/api/v1/pods").await;
    let (_, _, ne) = common::get_json(&sim, &q("app!=web")).await;
    assert_eq!(names(&ne).len(), names(&all).len() - 2);
    let (_, _, exists) = common::get_json(&sim, &q("app")).await;
    assert!(names(&exists).len() >= 2);
    assert!(exists["items"].as_array().unwrap().iter().all(|p| p["metadata"]["labels"]["app"].is_string()));
    let (_, _, not_exists) = common::get_json(&sim, &q("!app")).await;
    assert_eq!(names(&exists).len() + names(&not_exists).len(), names(&all).len());
    let (_, _, set) = common::get_json(&sim, &q("app in (web,nothing)")).await;
    assert_eq!(names(&set).len(), 2);

    let f = |s: &str| format!("/api/v1/nodes?fieldSelector={}", urlencode(s));
    let first = common::fixture_names("Node")[0].clone();
    let (_, _, by_name) = common::get_json(&sim, &f(&format!("metadata.name={first}"))).await;
    assert_eq!(names(&by_name), std::slice::from_ref(&first));
    let (_, _, not_name) = common::get_json(&sim, &f(&format!("metadata.name!={first}"))).await;
    assert!(!names(&not_name).contains(&first));
    let (_, _, in_ns) = common::get_json(&sim, &format!("/api/v1/pods?fieldSelector={}", urlencode("metadata.namespace=sample-app"))).await;
    assert_eq!(names(&in_ns).len(), 2);
    let (_, _, phase) = common::get_json(&sim, &format!("/api/v1/pods?fieldSelector={}", urlencode("status.phase=Failed"))).await;
    assert!(phase["items"].as_array().unwrap().iter().all(|p| p["status"]["phase"] == "Failed"));
    assert!(!names(&phase).is_empty());

    let (code, _, body) = common::get_json(&sim, &f("spec.bogus=1")).await;
    assert_eq!(code, 400);
    assert_status(&body, 400, "BadRequest");
    let (code, _, _) = common::get_json(&sim, &q("a in b")).await;
    assert_eq!(code, 400);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn limit_and_continue_page_through_everything_once() {
    let sim = common::start_sample().await;
    let (_, _, all) = common::get_json(&sim, "/api/v1/pods").await;
    let total = names(&all).len();
    let mut seen = Vec::new();
    let mut path = "/api/v1/pods?limit=7".to_owned();
    let mut pages = 0;
    loop {
        let (code, _, page) = common::get_json(&sim, &path).await;
        assert_eq!(code, 200);
        assert_eq!(page["kind"], "PodList");
        pages += 1;
        let batch = page["items"].as_array().unwrap();
        assert!(batch.len() <= 7);
        seen.extend(batch.iter().map(|p| format!("{}/{}", p["metadata"]["namespace"].as_str().unwrap(), p["metadata"]["name"].as_str().unwrap())));
        match page["metadata"]["continue"].as_str() {
            Some(t) => {
                let remaining = page["metadata"]["remainingItemCount"].as_u64().unwrap() as usize;
                assert_eq!(remaining, total - seen.len());
                path = format!("/api/v1/pods?limit=7&continue={}", urlencode(t));
            }
            None => break,
        }
    }
    assert_eq!(pages, total.div_ceil(7));
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), total, "no duplicates, nothing missing");

    // Paging with a selector counts only matching items.
    let (_, _, page) = common::get_json(&sim, &format!("/api/v1/pods?limit=1&labelSelector={}", urlencode("app=web"))).await;
    assert_eq!(names(&page), ["web-5d8f7c9b6d-failing-m7c9t"]);
    let t = page["metadata"]["continue"].as_str().unwrap().to_owned();
    let (_, _, page2) = common::get_json(&sim, &format!("/api/v1/pods?limit=1&labelSelector={}&continue={}", urlencode("app=web"), urlencode(&t))).await;
    assert_eq!(names(&page2), ["web-5d8f7c9b6d-healthy-x2k4p"]);
    assert!(page2["metadata"].get("continue").is_none());
}

#[tokio::test]
async fn invalid_or_expired_continue_is_410_gone() {
    let sim = common::start_sample().await;
    let (code, _, body) = common::get_json(&sim, "/api/v1/pods?limit=2&continue=not-a-token").await;
    assert_eq!(code, 410);
    assert_status(&body, 410, "Expired");

    let (_, _, page) = common::get_json(&sim, "/api/v1/pods?limit=2").await;
    let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
    // The store moves on (new snapshot): the old token points into a compacted past.
    sim.replace_cluster(Cluster::load_dir(&common::sample_dir()).unwrap());
    let (code, _, body) = common::get_json(&sim, &format!("/api/v1/pods?limit=2&continue={}", urlencode(&token))).await;
    assert_eq!(code, 410);
    assert_status(&body, 410, "Expired");
    assert!(body["message"].as_str().unwrap().contains("too old"));
}

#[tokio::test]
async fn read_only_forbidden_and_injected_faults() {
    let sim = common::start(SimConfig {
        forbid: vec!["secrets".into()],
        faults: vec![
            "/api/v1/nodes=500".parse().unwrap(),
            "/apis/config.openshift.io/v1/clusterversions=429:7".parse().unwrap(),
        ],
        ..SimConfig::with_fixtures(common::sample_dir())
    })
    .await;
    let client = common::https_client(&sim);
    for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let resp = client
            .request(method.clone(), format!("{}/api/v1/namespaces/default/configmaps", sim.url))
            .bearer_auth(&sim.token)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_status(&resp.json().await.unwrap(), 405, "MethodNotAllowed");
    }

    let (code, _, body) = common::get_json(&sim, "/api/v1/secrets").await;
    assert_eq!(code, 403);
    assert_status(&body, 403, "Forbidden");
    assert!(body["message"].as_str().unwrap().contains("cannot list resource \"secrets\""));
    let (code, _, _) = common::get_json(&sim, "/api/v1/namespaces/default/secrets/x").await;
    assert_eq!(code, 403);
    let (code, _, _) = common::get_json(&sim, "/api/v1/configmaps").await;
    assert_eq!(code, 200, "only the listed resource is forbidden");

    let (code, _, body) = common::get_json(&sim, "/api/v1/nodes?limit=1").await;
    assert_eq!(code, 500);
    assert_status(&body, 500, "InternalError");
    let (code, headers, body) = common::get_json(&sim, "/apis/config.openshift.io/v1/clusterversions/version").await;
    assert_eq!(code, 429);
    assert_status(&body, 429, "TooManyRequests");
    assert_eq!(headers["retry-after"], "7");

    sim.set_faults(vec![Fault { prefix: "/api/v1/nodes".into(), status: 503, retry_after: Some(2) }]);
    let (code, headers, _) = common::get_json(&sim, "/api/v1/nodes").await;
    assert_eq!((code, headers["retry-after"].to_str().unwrap()), (503, "2"));
    sim.set_faults(Vec::new());
    let (code, _, _) = common::get_json(&sim, "/api/v1/nodes").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn delay_applies_to_every_request() {
    // The delay holds a response back: a client that gives up long before it gets nothing,
    // and the same request without the delay is answered. (No speed is measured: noise can
    // only make the delayed request slower.)
    let sim = common::start(SimConfig { delay: Duration::from_secs(5), ..SimConfig::with_fixtures(common::sample_dir()) }).await;
    let req = common::https_client(&sim).get(format!("{}/api/v1/nodes", sim.url)).bearer_auth(&sim.token).timeout(Duration::from_millis(300));
    let err = req.send().await.expect_err("the response is held back by the delay");
    assert!(err.is_timeout(), "{err}");
    sim.set_delay(Duration::ZERO);
    let (code, _, _) = common::get_json(&sim, "/api/v1/nodes").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn scale_adds_nodes_and_pods_that_page_and_select() {
    let sim = common::start(SimConfig { scale: 50, ..SimConfig::with_fixtures(common::sample_dir()) }).await;
    let fixture_nodes = common::fixture_names("Node").len();
    let fixture_pods = common::fixture_names("Pod").len();
    let (_, _, nodes) = common::get_json(&sim, "/api/v1/nodes").await;
    assert_eq!(names(&nodes).len(), fixture_nodes + 50);
    let mut count = 0;
    let mut path = "/api/v1/pods?limit=100".to_owned();
    loop {
        let (_, _, page) = common::get_json(&sim, &path).await;
        for p in page["items"].as_array().unwrap() {
            assert_eq!(p["kind"], "Pod");
            assert!(p["metadata"]["managedFields"].is_array() || p["metadata"]["annotations"]["gather-agent.test/synthetic"].is_string() || p["metadata"]["name"].is_string());
        }
        count += page["items"].as_array().unwrap().len();
        match page["metadata"]["continue"].as_str() {
            Some(t) => path = format!("/api/v1/pods?limit=100&continue={}", urlencode(t)),
            None => break,
        }
    }
    assert_eq!(count, fixture_pods + 500);
    let (_, _, app) = common::get_json(&sim, &format!("/api/v1/pods?labelSelector={}", urlencode("app=sim-app-3"))).await;
    assert!(!names(&app).is_empty());
    assert!(app["items"].as_array().unwrap().iter().all(|p| p["metadata"]["labels"]["app"] == "sim-app-3"));
    let ns = app["items"][0]["metadata"]["namespace"].as_str().unwrap().to_owned();
    let (code, _, nsobj) = common::get_json(&sim, &format!("/api/v1/namespaces/{ns}")).await;
    assert_eq!(code, 200, "synthetic pods' namespaces exist");
    assert_eq!(nsobj["kind"], "Namespace");
}
