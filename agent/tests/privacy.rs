//! What the Insights Operator anonymizes never leaves the cluster in clear, whatever module
//! gathered it: a naive guest copies every resource raw (`request` + `record`, with and
//! without a Table `Accept`) and through `list_emit`, against a fixture cluster with planted
//! values (`testkit::planted`), and no planted value may reach any archive record; with
//! `"obfuscation": ["networking"]` no planted address or base domain either. The redaction
//! host functions (`record_redact`, `list_redact`, `now`) are exercised from wasm too.

mod common;

use std::collections::BTreeMap;

use agent::config::AgentConfig;
use testkit::planted;

/// (path, raw record name, list_emit template or "" for a single object).
const PATHS: &[(&str, &str, &str)] = &[
    ("/api/v1/nodes", "raw/nodes.json", "emit/node/{name}.json"),
    ("/api/v1/nodes/planted-master-0", "raw/node.json", ""),
    ("/api/v1/nodes/planted-master-0/status", "raw/node-status.json", ""),
    ("/apis/config.openshift.io/v1/proxies/cluster", "raw/proxy.json", ""),
    ("/apis/config.openshift.io/v1/proxies", "raw/proxies.json", "emit/proxy/{name}.json"),
    ("/apis/config.openshift.io/v1/clusterversions/version", "raw/version.json", ""),
    ("/apis/config.openshift.io/v1/infrastructures/cluster", "raw/infrastructure.json", ""),
    ("/apis/config.openshift.io/v1/ingresses/cluster", "raw/ingress.json", ""),
    ("/apis/config.openshift.io/v1/dnses/cluster", "raw/dns.json", ""),
    ("/apis/machine.openshift.io/v1beta1/machines", "raw/machines.json", "emit/machines/{namespace}/{name}.json"),
    ("/apis/machine.openshift.io/v1beta1/machinesets", "raw/machinesets.json", "emit/machinesets/{namespace}/{name}.json"),
    ("/apis/machine.openshift.io/v1/controlplanemachinesets", "raw/cpms.json", "emit/cpms/{namespace}/{name}.json"),
    ("/apis/machineconfiguration.openshift.io/v1/machineconfigs", "raw/machineconfigs.json", "emit/machineconfigs/{name}.json"),
    ("/api/v1/configmaps", "raw/configmaps.json", "emit/configmaps/{namespace}/{name}.json"),
    ("/apis/imageregistry.operator.openshift.io/v1/configs/cluster", "raw/imageregistry.json", ""),
    ("/apis/operator.openshift.io/v1/authentications/cluster", "raw/authentication.json", ""),
    ("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", "raw/mwc.json", "emit/mwc/{name}.json"),
    ("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", "raw/vwc.json", "emit/vwc/{name}.json"),
    ("/apis/nmstate.io/v1beta1/nodenetworkstates", "raw/nns.json", "emit/nns/{name}.json"),
    ("/apis/image.openshift.io/v1/imagestreams", "raw/imagestreams.json", "emit/imagestreams/{namespace}/{name}.json"),
];

/// A kubectl Table, which would otherwise carry labels and printed columns past the rules.
const TABLE_ACCEPT: &str = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io";

/// The naive guest: for every path, `request` it (plain, and nodes again with a Table
/// `Accept`) and `record` the body as is; for every list, `list_emit` every item.
fn naive_guest() -> (String, Vec<u8>) {
    let mut data = String::new();
    let mut calls = String::new();
    let mut at = 1024;
    let mut place = |s: &str, data: &mut String| -> (usize, usize) {
        let here = at;
        data.push_str(&format!("(data (i32.const {here}) \"{s}\")\n"));
        at += s.len() + 8;
        (here, s.len())
    };
    for (path, raw, template) in PATHS {
        let (p, pl) = place(path, &mut data);
        let (r, rl) = place(raw, &mut data);
        calls.push_str(&format!("(call $copy (i32.const {p}) (i32.const {pl}) (i32.const 0) (i32.const 0) (i32.const {r}) (i32.const {rl}))\n"));
        if !template.is_empty() {
            let (t, tl) = place(template, &mut data);
            calls.push_str(&format!("(call $emit (i32.const {p}) (i32.const {pl}) (i32.const {t}) (i32.const {tl}))\n"));
        }
    }
    let (p, pl) = place("/api/v1/nodes", &mut data);
    let (h, hl) = place(TABLE_ACCEPT, &mut data);
    let (r, rl) = place("raw/nodes-table.json", &mut data);
    calls.push_str(&format!("(call $copy (i32.const {p}) (i32.const {pl}) (i32.const {h}) (i32.const {hl}) (i32.const {r}) (i32.const {rl}))\n"));
    assert!(at < 65536, "the strings fit the first page");
    let permissions: Vec<String> = PATHS.iter().map(|(p, _, _)| format!("\\\"GET {p}\\\"")).collect();
    let manifest = format!(r#"{{\"name\":\"naive\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[{}]}}"#, permissions.join(","));
    let src = format!(
        r#"(module
  (import "gather" "request" (func $request (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "response_status" (func $status (param i32) (result i32)))
  (import "gather" "response_size" (func $size (param i32) (result i64)))
  (import "gather" "response_read" (func $read (param i32 i32 i32) (result i32)))
  (import "gather" "response_close" (func $close (param i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (import "gather" "list_open" (func $list_open (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "list_next" (func $list_next (param i32) (result i32)))
  (import "gather" "list_emit" (func $list_emit (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "GET")
  {data}
  (func (export "gather_abi_version_1"))
  ;; GET path (with headers) and record the body, whatever it is, as name.
  (func $copy (param $p i32) (param $pl i32) (param $h i32) (param $hl i32) (param $n i32) (param $nl i32)
    (local $handle i32) (local $size i32) (local $got i32) (local $total i32)
    (local.set $handle (call $request (i32.const 0) (i32.const 3) (local.get $p) (local.get $pl) (local.get $h) (local.get $hl) (i32.const 0) (i32.const 0)))
    (if (i32.lt_s (local.get $handle) (i32.const 0)) (then (return)))
    (local.set $size (i32.wrap_i64 (call $size (local.get $handle))))
    (if (i32.gt_u (i32.add (i32.const 65536) (local.get $size)) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))))))
    (block $done (loop $more
      (local.set $got (call $read (local.get $handle) (i32.add (i32.const 65536) (local.get $total)) (i32.const 65536)))
      (br_if $done (i32.le_s (local.get $got) (i32.const 0)))
      (local.set $total (i32.add (local.get $total) (local.get $got)))
      (br $more)))
    (drop (call $close (local.get $handle)))
    (drop (call $record (local.get $n) (local.get $nl) (i32.const 65536) (local.get $total))))
  ;; Every item of the list at path, as a record named by the template.
  (func $emit (param $p i32) (param $pl i32) (param $t i32) (param $tl i32) (local $h i32)
    (local.set $h (call $list_open (local.get $p) (local.get $pl) (i32.const 0) (i32.const 0) (i32.const 0)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return)))
    (loop $pages
      (drop (call $list_emit (local.get $h) (i32.const -1) (local.get $t) (local.get $tl)))
      (br_if $pages (i32.gt_s (call $list_next (local.get $h)) (i32.const 0))))
    (drop (call $close (local.get $h))))
  (func (export "gather") (result i32)
    {calls}
    (i32.const 0))
  (@custom "gather.manifest" "{manifest}"))"#
    );
    ("naive.wasm".into(), wat::parse_str(&src).unwrap_or_else(|e| panic!("naive guest: {e}")))
}

async fn gather_planted(config: AgentConfig) -> (planted::Planted, BTreeMap<String, Vec<u8>>, agent::gather::PeriodResult) {
    let fixtures = tempfile::tempdir().unwrap();
    let planted = planted::write_cluster(fixtures.path());
    let sim = common::start(common::sim::SimConfig::with_fixtures(fixtures.path())).await;
    let (result, _work) = common::period(&sim, &[naive_guest()], config).await;
    let records = common::records(&result.archive);
    (planted, records, result)
}

fn expected_records() -> Vec<&'static str> {
    let mut names: Vec<&str> = PATHS.iter().map(|(_, raw, _)| *raw).collect();
    names.extend(["raw/nodes-table.json", "emit/node/planted-master-0.json", "emit/machines/openshift-machine-api/planted-machine-0.json"]);
    names.extend(["emit/configmaps/openshift-config/planted-ca.json", "emit/machineconfigs/99-planted-master-ssh.json"]);
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_io_anonymizes_reaches_the_archive_from_a_naive_gatherer() {
    let (planted, records, result) = gather_planted(AgentConfig::default()).await;
    let report = common::report(&result.metadata.status_reports, "naive");
    assert_eq!(report.error_kind, None, "{report:#?}");
    for name in expected_records() {
        assert!(records.contains_key(name), "no record {name}; records: {:?}", records.keys().collect::<Vec<_>>());
    }
    assert!(planted.secrets.len() >= 40, "every anonymized field is planted: {}", planted.secrets.len());
    let leaks = planted.leaks(&records, false);
    assert!(leaks.is_empty(), "planted values leaked:\n{}", leaks.join("\n"));
    let missing = planted.missing(&records, false);
    assert!(missing.is_empty(), "non-sensitive values were lost: {missing:?}");
    // Without obfuscation the addresses and the base domain are gathered as they are.
    let network = planted.missing(&records, true);
    assert!(network.is_empty(), "network values should be in clear without obfuscation: {network:?}");
    assert!(!result.metadata.is_global_obfuscation_enabled);
    // The Table Accept was not honoured for an anonymized resource: a plain list came back.
    let table: serde_json::Value = serde_json::from_slice(&records["raw/nodes-table.json"]).unwrap();
    assert_eq!(table["kind"], "NodeList", "{table}");
    // Anonymized as IO does, not just removed: x-ed out keeping length, product keys kept.
    let node: serde_json::Value = serde_json::from_slice(&records["emit/node/planted-master-0.json"]).unwrap();
    assert_eq!(node["status"]["nodeInfo"]["bootID"].as_str().unwrap().len(), "PLANTED-NODE-BOOTID-SECRET".len());
    assert!(node["status"]["nodeInfo"]["bootID"].as_str().unwrap().bytes().all(|b| b == b'x'));
    assert!(node["status"].get("images").is_none());
    assert_eq!(node["metadata"]["annotations"]["owner"], "");
    assert_eq!(node["metadata"]["labels"]["kubernetes.io/hostname"], "planted-master-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networking_obfuscation_hides_addresses_and_the_base_domain_everywhere() {
    let config: AgentConfig = serde_json::from_str(r#"{"obfuscation": ["networking"]}"#).unwrap();
    let (planted, records, result) = gather_planted(config).await;
    for name in expected_records() {
        assert!(records.contains_key(name), "no record {name}");
    }
    let leaks = planted.leaks(&records, true);
    assert!(leaks.is_empty(), "planted values leaked:\n{}", leaks.join("\n"));
    assert!(planted.missing(&records, false).is_empty());
    assert!(result.metadata.is_global_obfuscation_enabled);
    let gathers: serde_json::Value = serde_json::from_slice(&records[agent::archive::GATHERS_JSON]).unwrap();
    assert_eq!(gathers["is_global_obfuscation_enabled"], true);
    // Consistent stand-ins: the node's address is the machine's, in every record.
    let node: serde_json::Value = serde_json::from_slice(&records["raw/node.json"]).unwrap();
    let machine: serde_json::Value = serde_json::from_slice(&records["emit/machines/openshift-machine-api/planted-machine-0.json"]).unwrap();
    let v4 = node["status"]["addresses"][0]["address"].as_str().unwrap();
    assert!(v4.starts_with("240."), "{v4}");
    assert_eq!(machine["status"]["addresses"][0]["address"], v4);
    assert!(node["status"]["addresses"][1]["address"].as_str().unwrap().starts_with("2001:db8::"));
    let ingress: serde_json::Value = serde_json::from_slice(&records["raw/ingress.json"]).unwrap();
    assert_eq!(ingress["spec"]["domain"], "apps.<CLUSTER_BASE_DOMAIN>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dns_object_only_addresses_are_obfuscated_with_a_warning() {
    let sim = common::start_sample().await;
    let config: AgentConfig = serde_json::from_str(r#"{"obfuscation": ["networking"]}"#).unwrap();
    let (result, _work) = common::period(&sim, &[("hi.wasm".to_owned(), common::hello("hi", "1.0.0", "node 10.1.2.3"))], config).await;
    let w = result.metadata.warnings.join("\n");
    assert!(w.contains("cannot read the cluster base domain") && w.contains("404"), "{w}");
    let records = common::records(&result.archive);
    assert_eq!(records["config/hi.txt"], b"node 240.0.0.1");
}

/// `record_redact`, `list_redact` and `now` from wasm: the spec is applied, a bad spec is
/// BAD_ARGUMENT with a report error, non-JSON data is BAD_ARGUMENT, and `now` is the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_host_functions_work_from_wasm() {
    let fixtures = tempfile::tempdir().unwrap();
    planted::write_cluster(fixtures.path());
    let sim = common::start(common::sim::SimConfig::with_fixtures(fixtures.path())).await;
    let doc = r#"{\"a\":\"secret\",\"b\":{\"c\":\"k\"},\"l\":[1,2]}"#;
    let spec = "xout /a\nremove /l";
    let bad = "erase /a";
    let list_spec = "blank /metadata/annotations/*\nremove /status";
    let src = format!(
        r#"(module
  (import "gather" "record_redact" (func $rr (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "list_redact" (func $lr (param i32 i32 i32) (result i32)))
  (import "gather" "now" (func $now (result i64)))
  (import "gather" "list_open" (func $list_open (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "list_emit" (func $list_emit (param i32 i32 i32 i32) (result i32)))
  (import "gather" "record" (func $record (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{doc}")
  (data (i32.const 200) "{spec}")
  (data (i32.const 300) "{bad}")
  (data (i32.const 400) "out/redacted.json")
  (data (i32.const 500) "out/bad.json")
  (data (i32.const 600) "not json")
  (data (i32.const 700) "/api/v1/nodes")
  (data (i32.const 800) "{list_spec}")
  (data (i32.const 900) "out/node/{{name}}.json")
  (data (i32.const 1000) "out/codes.bin")
  (func (export "gather_abi_version_1"))
  (func (export "gather") (result i32) (local $h i32)
    (i32.store (i32.const 2000) (call $rr (i32.const 400) (i32.const 17) (i32.const 0) (i32.const {dl}) (i32.const 200) (i32.const {sl})))
    (i32.store (i32.const 2004) (call $rr (i32.const 500) (i32.const 12) (i32.const 0) (i32.const {dl}) (i32.const 300) (i32.const {bl})))
    (i32.store (i32.const 2008) (call $rr (i32.const 500) (i32.const 12) (i32.const 600) (i32.const 8) (i32.const 200) (i32.const {sl})))
    (i32.store (i32.const 2012) (call $rr (i32.const 500) (i32.const 12) (i32.const 0) (i32.const {dl}) (i32.const 65530) (i32.const 100)))
    (local.set $h (call $list_open (i32.const 700) (i32.const 13) (i32.const 0) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 2016) (call $lr (local.get $h) (i32.const 800) (i32.const {ll})))
    (i32.store (i32.const 2020) (call $lr (i32.const 99) (i32.const 800) (i32.const {ll})))
    (i32.store (i32.const 2024) (call $list_emit (local.get $h) (i32.const -1) (i32.const 900) (i32.const 20)))
    (i64.store (i32.const 2028) (call $now))
    (drop (call $record (i32.const 1000) (i32.const 13) (i32.const 2000) (i32.const 36)))
    (i32.const 0))
  (@custom "gather.manifest" "{{\"name\":\"redactor\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[\"GET /api/v1/nodes\"]}}"))"#,
        dl = doc.len() - doc.matches('\\').count(),
        sl = spec.len(),
        bl = bad.len(),
        ll = list_spec.len(),
        spec = spec.replace('\n', "\\n"),
        list_spec = list_spec.replace('\n', "\\n"),
    );
    let module = ("redactor.wasm".to_owned(), wat::parse_str(&src).unwrap());
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (result, _work) = common::period(&sim, &[module], AgentConfig::default()).await;
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let records = common::records(&result.archive);
    assert_eq!(String::from_utf8_lossy(&records["out/redacted.json"]), r#"{"a":"xxxxxx","b":{"c":"k"}}"#);
    assert!(!records.contains_key("out/bad.json"));
    let codes = &records["out/codes.bin"];
    let code = |i: usize| i32::from_le_bytes(codes[i * 4..i * 4 + 4].try_into().unwrap());
    use hostapi::abi::status;
    assert_eq!(
        [code(0), code(1), code(2), code(3), code(4), code(5), code(6)],
        [status::OK, status::BAD_ARGUMENT, status::BAD_ARGUMENT, status::BAD_POINTER, status::OK, status::BAD_HANDLE, 1]
    );
    let now = i64::from_le_bytes(codes[28..36].try_into().unwrap());
    assert!((before..=after).contains(&now), "{before} <= {now} <= {after}");
    let node: serde_json::Value = serde_json::from_slice(&records["out/node/planted-master-0.json"]).unwrap();
    assert!(node.get("status").is_none() && node["metadata"]["annotations"]["machineconfiguration.openshift.io/currentConfig"] == "");
    let report = common::report(&result.metadata.status_reports, "redactor");
    let errors = report.errors.clone().unwrap_or_default().join("\n");
    assert!(errors.contains("unknown action \"erase\"") && errors.contains("not JSON"), "{errors}");
}

/// The default gatherers on the planted cluster, with and without networking obfuscation:
/// what they gather carries none of the planted secrets (and with obfuscation, no planted
/// address or base domain), while the planted cluster is gathered (nodes, machines, config
/// maps, machine configs and more are in the archive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_gatherers_leak_nothing_io_anonymizes() {
    let fixtures = tempfile::tempdir().unwrap();
    let planted = planted::write_cluster(fixtures.path());
    let sim = common::start(common::sim::SimConfig::with_fixtures(fixtures.path())).await;
    for networking in [false, true] {
        let config: AgentConfig =
            serde_json::from_str(if networking { r#"{"obfuscation": ["networking"]}"# } else { "{}" }).unwrap();
        let (result, _work) = common::period(&sim, &common::built_gatherers(), config).await;
        let records = common::records(&result.archive);
        for prefix in ["config/node/", "config/machines/", "config/proxy.json", "config/infrastructure.json", "config/version.json"] {
            assert!(records.keys().any(|k| k.starts_with(prefix)), "nothing under {prefix}: {:?}", records.keys().collect::<Vec<_>>());
        }
        let leaks = planted.leaks(&records, networking);
        assert!(leaks.is_empty(), "networking={networking}: planted values leaked:\n{}", leaks.join("\n"));
        assert_eq!(result.metadata.is_global_obfuscation_enabled, networking);
    }
}

/// The cost of the always-on anonymization at scale (a measurement, not an assertion; run
/// with `cargo test -p agent --release --test privacy -- --ignored --nocapture`): the host's
/// node rules over 5,000 synthetic nodes, alone and inside a period that `list_emit`s them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn anonymization_cost_at_5000_nodes() {
    let mut config = common::sim::SimConfig::with_fixtures(common::sample_dir());
    config.scale = 5000;
    let sim = common::start(config).await;
    let client = common::https_client(&sim);
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/nodes?limit=500", sim.url);
        if let Some(t) = &token {
            url.push_str(&format!("&continue={}", percent_encode(t)));
        }
        let body = client.get(url).bearer_auth(&sim.token).send().await.unwrap().bytes().await.unwrap().to_vec();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        token = v["metadata"]["continue"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
        pages.push(body);
        if token.is_none() {
            break;
        }
    }
    let spec = agent::anonymize::spec_for_path("/api/v1/nodes?limit=500").unwrap();
    let bytes: usize = pages.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        for p in &pages {
            std::hint::black_box(spec.apply(p).unwrap());
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let nodes = (0..5).map(|_| {
        let (_, bytes) = naive_nodes_guest();
        ("nodes-copy.wasm".to_owned(), bytes)
    });
    let mut periods = Vec::new();
    for m in nodes {
        let t = std::time::Instant::now();
        let (result, _work) = common::period(&sim, &[m], AgentConfig::default()).await;
        periods.push(t.elapsed().as_secs_f64());
        assert!(result.metadata.status_reports[0].records_count >= 5000);
    }
    periods.sort_by(f64::total_cmp);
    eprintln!(
        "anonymizing {} node pages ({} MB): {:.1} ms (best of 5, {:.0} MB/s); a period list_emitting them: median {:.0} ms (min {:.0}, max {:.0})",
        pages.len(),
        bytes / 1_000_000,
        best * 1e3,
        bytes as f64 / best / 1e6,
        periods[2] * 1e3,
        periods[0] * 1e3,
        periods[4] * 1e3
    );
}

fn percent_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A guest that `list_emit`s every node.
fn naive_nodes_guest() -> (String, Vec<u8>) {
    let src = r#"(module
  (import "gather" "list_open" (func $list_open (param i32 i32 i32 i32 i32) (result i32)))
  (import "gather" "list_next" (func $list_next (param i32) (result i32)))
  (import "gather" "list_emit" (func $list_emit (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/api/v1/nodes")
  (data (i32.const 100) "config/node/{name}.json")
  (func (export "gather_abi_version_1"))
  (func (export "gather") (result i32) (local $h i32)
    (local.set $h (call $list_open (i32.const 0) (i32.const 13) (i32.const 0) (i32.const 0) (i32.const 1)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return (i32.const 1))))
    (loop $pages
      (drop (call $list_emit (local.get $h) (i32.const -1) (i32.const 100) (i32.const 23)))
      (br_if $pages (i32.gt_s (call $list_next (local.get $h)) (i32.const 0))))
    (i32.const 0))
  (@custom "gather.manifest" "{\"name\":\"nodes-copy\",\"version\":\"1.0.0\",\"abi\":1,\"permissions\":[\"GET /api/v1/nodes\"]}"))"#;
    ("nodes-copy.wasm".into(), wat::parse_str(src).unwrap())
}
