//! Pod logs and Events on the sample cluster, over HTTPS: `pods/{name}/log` with its query
//! parameters and errors, the logs served the same from the directory and from in-memory
//! files, and Events whose times the simulator sets relative to its start.

use testkit as common;

use gather_sim::SimConfig;
use serde_json::Value;

const NS: &str = "openshift-cluster-samples-operator";
const POD: &str = "cluster-samples-operator-8ffb9b45f-49mjr";

fn log_path(ns: &str, pod: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods/{pod}/log")
}

/// GET `path` as text: status, content type and body.
async fn get_text(sim: &gather_sim::SimHandle, path: &str) -> (u16, String, String) {
    let resp = common::https_client(sim).get(format!("{}{path}", sim.url)).bearer_auth(&sim.token).send().await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, ctype, resp.text().await.unwrap())
}

fn fixture_log(ns: &str, pod: &str, container: &str) -> String {
    std::fs::read_to_string(common::sample_dir().join(format!("logs/{ns}/{pod}/{container}.log"))).unwrap()
}

#[tokio::test]
async fn pod_logs_are_served_as_text_with_tail_and_limit() {
    let sim = common::start_sample().await;
    let whole = fixture_log(NS, POD, "cluster-samples-operator");
    assert!(whole.lines().count() > 100, "the fixture log is longer than the tail IO asks for");

    let (code, ctype, body) = get_text(&sim, &format!("{}?container=cluster-samples-operator", log_path(NS, POD))).await;
    assert_eq!((code, ctype.as_str()), (200, "text/plain"));
    assert_eq!(body, whole);

    let (code, _, body) = get_text(&sim, &format!("{}?container=cluster-samples-operator&tailLines=100", log_path(NS, POD))).await;
    assert_eq!(code, 200);
    let want: Vec<&str> = whole.lines().skip(whole.lines().count() - 100).collect();
    assert_eq!(body.lines().collect::<Vec<_>>(), want);
    assert!(body.ends_with('\n'));
    // The importer put older synthetic lines before the sample record's 100: the tail drops them.
    assert!(whole.contains("synthetic older line") && !body.contains("synthetic older line"));

    let (_, _, body) = get_text(&sim, &format!("{}?container=cluster-samples-operator&tailLines=0", log_path(NS, POD))).await;
    assert_eq!(body, "");
    let (_, _, body) = get_text(&sim, &format!("{}?container=cluster-samples-operator&limitBytes=10", log_path(NS, POD))).await;
    assert_eq!(body, whole[..10]);
    // The limit applies to what the tail selects.
    let (_, _, tail10) = get_text(&sim, &format!("{}?container=cluster-samples-operator&tailLines=1&limitBytes=10", log_path(NS, POD))).await;
    let last = whole.lines().last().unwrap();
    assert_eq!(tail10, last[..10]);
    // Fixture lines count as written at load: a window keeps them all.
    let (_, _, body) = get_text(&sim, &format!("{}?container=cluster-samples-operator&sinceSeconds=86400", log_path(NS, POD))).await;
    assert_eq!(body, whole);

    // One container: no name needed. A container with no fixture log has an empty log.
    let (code, _, body) = get_text(&sim, &log_path("openshift-monitoring", "prometheus-operator-5474fcdb86-nknz9")).await;
    assert_eq!(code, 200);
    assert_eq!(body, fixture_log("openshift-monitoring", "prometheus-operator-5474fcdb86-nknz9", "prometheus-operator"));
    let (code, _, body) = get_text(&sim, &format!("{}?container=config-reloader", log_path("openshift-monitoring", "alertmanager-main-0"))).await;
    assert_eq!((code, body.as_str()), (200, ""));
}

#[tokio::test]
async fn pod_log_errors_are_the_api_servers() {
    let sim = common::start_sample().await;
    let (code, _, body) = common::get_json(&sim, &log_path(NS, "no-such-pod")).await;
    assert_eq!(code, 404);
    assert_eq!((body["reason"].as_str(), body["message"].as_str()), (Some("NotFound"), Some("pods \"no-such-pod\" not found")));
    assert_eq!(body["details"]["kind"], "pods");

    let (code, _, body) = common::get_json(&sim, &format!("{}?container=nope", log_path(NS, POD))).await;
    assert_eq!(code, 400);
    assert_eq!(body["message"], format!("container nope is not valid for pod {POD}"));

    // Two containers and none named: kube-apiserver asks which.
    let (code, _, body) = common::get_json(&sim, &log_path(NS, POD)).await;
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().contains("a container name must be specified"), "{body}");

    let (code, _, body) = common::get_json(&sim, &format!("{}?container=cluster-samples-operator&previous=true", log_path(NS, POD))).await;
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().starts_with("previous terminated container"), "{body}");

    let (code, _, body) = common::get_json(&sim, &format!("{}?container=cluster-samples-operator&tailLines=-1", log_path(NS, POD))).await;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")));

    // Other pod subresources are still not served.
    let (code, _, _) = common::get_json(&sim, &format!("/api/v1/namespaces/{NS}/pods/{POD}/exec")).await;
    assert_eq!(code, 404);

    // RBAC treats pods/log apart from pods.
    let sim = common::start(SimConfig { forbid: vec!["pods/log".into()], ..SimConfig::with_fixtures(common::sample_dir()) }).await;
    let (code, _, body) = common::get_json(&sim, &format!("{}?container=cluster-samples-operator", log_path(NS, POD))).await;
    assert_eq!(code, 403);
    assert!(body["message"].as_str().unwrap().contains("cannot get resource \"pods/log\""), "{body}");
    let (code, _, _) = common::get_json(&sim, &format!("/api/v1/namespaces/{NS}/pods/{POD}")).await;
    assert_eq!(code, 200);
}

/// The binary serves the embedded sample from in-memory files: logs included.
#[tokio::test]
async fn logs_load_from_in_memory_files_too() {
    let root = common::sample_dir();
    let mut files = Vec::new();
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, std::borrow::Cow<'static, [u8]>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap().into()));
            }
        }
    }
    walk(&root, &root, &mut files);
    let sim = common::start(SimConfig::with_fixture_files(files)).await;
    let (code, _, body) = get_text(&sim, &format!("{}?container=cluster-samples-operator-watch", log_path(NS, POD))).await;
    assert_eq!(code, 200);
    assert_eq!(body, fixture_log(NS, POD, "cluster-samples-operator-watch"));
}

#[tokio::test]
async fn events_are_listed_with_times_relative_to_the_start() {
    let started = time::OffsetDateTime::now_utc();
    let sim = common::start_sample().await;
    let (code, _, list) = common::get_json(&sim, "/api/v1/namespaces/openshift-machine-api/events").await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "EventList");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), common::fixture_names("Event").len());
    for e in items {
        let age: i64 = e["metadata"]["annotations"]["gather-agent.test/age-seconds"].as_str().unwrap().parse().unwrap();
        let last = time::OffsetDateTime::parse(e["lastTimestamp"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
        let want = started - time::Duration::seconds(age);
        assert!((last - want).whole_seconds().abs() <= 5, "{} is not {age} s before the start", e["lastTimestamp"]);
        assert_eq!(e["firstTimestamp"], e["lastTimestamp"]);
    }
    // What IO's machine-api events rule keeps: not Normal, newer than 2 hours.
    let cutoff = started - time::Duration::hours(2);
    let kept: Vec<&str> = items
        .iter()
        .filter(|e| e["type"] != "Normal")
        .filter(|e| time::OffsetDateTime::parse(e["lastTimestamp"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap() > cutoff)
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");

    // The event field selectors kubectl and gatherers use.
    let (code, _, warnings) = common::get_json(&sim, "/api/v1/namespaces/openshift-machine-api/events?fieldSelector=type%3DWarning,involvedObject.kind%3DMachine").await;
    assert_eq!(code, 200);
    assert_eq!(warnings["items"].as_array().unwrap().len(), 3);
    let (_, _, all): (u16, _, Value) = common::get_json(&sim, "/api/v1/events").await;
    assert_eq!(all["items"].as_array().unwrap().len(), items.len());
}
