//! `gather-inspect` (the same command line as `gather-agent inspect`) on real archives: three periods gathered from the simulator (the
//! second after the fixtures changed, the third with the nodes API failing), the Insights
//! Operator's own sample archive, and damaged files.
//!
//! Golden files live in `testdata/archives/golden/`. Output that depends on the clock or the
//! build (times, durations, compressed sizes, wasm sha256s) is masked in the model before it is
//! rendered for the golden comparison; the binary's own output is then checked to be exactly
//! the library's rendering of the unmasked model. `UPDATE_GOLDEN=1` rewrites the golden files.

use testkit as common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use agent::config::AgentConfig;
use gather_inspect::{self as inspect, diff, render, trend, GatheredFrom, Gathered, InspectError};
use serde_json::{json, Value};
use time::macros::datetime;

const NODE: &str = "config/node/worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com.json";
const DELETED_POD: &str = "config/pod/openshift-service-ca/service-ca-7d7647cfdb-szfd8.json";
const ADDED_POD: &str = "config/pod/openshift-monitoring/prometheus-k8s-2.json";

fn testdata() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata"))
}

fn io_sample() -> PathBuf {
    testdata().join("archives/io-sample.tar.gz")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gather-inspect"))
}

/// Runs `gather-inspect ARGS...` (in `dir`, when given).
fn inspect_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.args(args).env_remove("NO_COLOR");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().expect("run gather-inspect");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "inspect {args:?} panicked: {stderr}");
    assert_ne!(out.status.code(), Some(101), "inspect {args:?} panicked");
    out
}

fn inspect(args: &[&str]) -> Output {
    inspect_in(None, args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = inspect(args);
    assert!(out.status.success(), "inspect {args:?} failed: {}", stderr(&out));
    stdout(&out)
}

/// Exit status 1 and exactly one `error:` line on stderr, which is returned.
fn fails(out: &Output) -> String {
    fails_with(out, 1)
}

/// A command-line mistake: exit status 2, as clap gives for its own usage errors.
fn usage_error(out: &Output) -> String {
    fails_with(out, 2)
}

fn fails_with(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "stdout: {}\nstderr: {}", stdout(out), stderr(out));
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    errors[0].to_owned()
}

/// Compares `actual` with `testdata/archives/golden/NAME`, or writes it with `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = testdata().join("archives/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if want != actual {
        let first = want.lines().zip(actual.lines()).position(|(a, b)| a != b);
        panic!(
            "{name} differs from the golden file (first differing line: {first:?}; UPDATE_GOLDEN=1 rewrites it)\n--- golden\n{want}\n--- actual\n{actual}"
        );
    }
}

const MASK_SHA: &str = "5ha256masked0000000000000000000000000000000000000000000000000000";

fn masked_time(n: i64) -> Option<Gathered> {
    Some(Gathered { at: datetime!(2024-05-01 10:00:00 UTC) + time::Duration::hours(n), from: GatheredFrom::Metadata })
}

fn mask_summary(s: &mut inspect::Summary) {
    s.archive = "ARCHIVE.tar.gz".into();
    s.gathered = masked_time(0);
    s.duration_in_ms = Some(1500);
    s.agent_version = Some("X.Y.Z".into());
    s.compressed_bytes = 100 * 1024;
    s.uncompressed_bytes = 1024 * 1024;
    for g in s.gatherers.iter_mut().flatten() {
        g.duration_in_ms = 25;
        g.sha256 = g.sha256.as_ref().map(|_| MASK_SHA.into());
    }
}

fn mask_diff(d: &mut diff::ArchiveDiff) {
    d.old.archive = "OLD.tar.gz".into();
    d.new.archive = "NEW.tar.gz".into();
    d.old.gathered = masked_time(0);
    d.new.gathered = masked_time(1);
    for c in &mut d.gatherers {
        for (state, mask) in [(&mut c.old, "a"), (&mut c.new, "b")] {
            if let Some(sha) = state.as_mut().and_then(|s| s.sha256.as_mut()) {
                *sha = mask.repeat(64);
            }
        }
    }
}

/// The sample fixtures as objects, in the order `Cluster::load_dir` reads them.
fn sample_objects() -> Vec<(Value, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&common::sample_dir(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| (serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(), p.display().to_string()))
        .collect()
}

fn condition<'a>(obj: &'a mut Value, kind: &str) -> &'a mut Value {
    obj["status"]["conditions"].as_array_mut().unwrap().iter_mut().find(|c| c["type"] == kind).unwrap()
}

/// The sample cluster, one period later: worker-0 is NotReady and relabelled, the dns operator
/// is Degraded, one unhealthy pod is gone and another appeared.
fn changed_cluster() -> gather_sim::Cluster {
    let mut objects = sample_objects();
    let is = |v: &Value, kind: &str, name: &str| v["kind"] == kind && v["metadata"]["name"] == name;
    let node = objects.iter_mut().map(|(v, _)| v).find(|v| is(v, "Node", "worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com")).unwrap();
    node["metadata"]["labels"]["example.com/pool"] = json!("gpu");
    node["metadata"]["resourceVersion"] = json!("1916999");
    let ready = condition(node, "Ready");
    ready["status"] = json!("False");
    ready["reason"] = json!("KubeletNotReady");
    ready["message"] = json!("container runtime is down");
    ready["lastHeartbeatTime"] = json!("2021-07-13T08:16:44Z");
    ready["lastTransitionTime"] = json!("2021-07-13T08:10:00Z");
    let dns = objects.iter_mut().map(|(v, _)| v).find(|v| is(v, "ClusterOperator", "dns")).unwrap();
    let degraded = condition(dns, "Degraded");
    degraded["status"] = json!("True");
    degraded["reason"] = json!("DNSDegraded");
    degraded["lastTransitionTime"] = json!("2021-07-13T08:11:00Z");
    objects.retain(|(v, _)| !is(v, "Pod", "service-ca-7d7647cfdb-szfd8"));
    let mut added = objects.iter().map(|(v, _)| v).find(|v| is(v, "Pod", "prometheus-k8s-1")).unwrap().clone();
    added["metadata"]["name"] = json!("prometheus-k8s-2");
    added["metadata"]["uid"] = json!("6a1f3c0e-2d7b-4f8e-9c55-000000000002");
    added["metadata"]["resourceVersion"] = json!("1917000");
    objects.push((added, "added.json".into()));
    gather_sim::Cluster::from_objects(objects).unwrap()
}

/// The WAT gatherer with its manifest version changed.
fn ingresscontroller(version: &str) -> (String, Vec<u8>) {
    let source = std::fs::read_to_string(testdata().join("gatherers/ingresscontroller.wat")).unwrap();
    let needle = r#"\"version\":\"1.0.0\""#;
    assert!(source.contains(needle), "the WAT gatherer's manifest has version 1.0.0");
    let source = source.replace(needle, &format!(r#"\"version\":\"{version}\""#));
    ("ingresscontroller.wasm".into(), wat::parse_str(&source).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_from_the_simulator() {
    let sim = common::start_sample().await;
    // Not `events`: its records carry times relative to when the cluster was loaded, which
    // moves between these periods and would make the goldens depend on the clock.
    let gatherers: Vec<_> = common::built_gatherers().into_iter().filter(|(n, _)| n != "events.wasm").collect();
    let modules = |version: &str| {
        let mut m = gatherers.clone();
        m.push(ingresscontroller(version));
        m
    };
    let (first, _w1) = common::period(&sim, &modules("1.0.0"), AgentConfig::default()).await;
    sim.replace_cluster(changed_cluster());
    let (second, _w2) = common::period(&sim, &modules("1.1.0"), AgentConfig::default()).await;
    sim.set_faults(vec!["/api/v1/nodes=500".parse().unwrap()]);
    let (third, _w3) = common::period(&sim, &modules("1.1.0"), AgentConfig::default()).await;

    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("p1.tar.gz"), dir.path().join("p2.tar.gz"), dir.path().join("p3.tar.gz"));
    std::fs::copy(&first.archive, &a).unwrap();
    std::fs::copy(&second.archive, &b).unwrap();
    std::fs::copy(&third.archive, &c).unwrap();
    let (a_str, b_str, c_str) = (a.to_str().unwrap(), b.to_str().unwrap(), c.to_str().unwrap());
    let style = render::Style::plain();

    // Summary: golden (masked), and the binary prints exactly the library's rendering.
    let mut summary = inspect::summary(&a).unwrap();
    assert!(summary.error.is_none());
    assert_eq!(summary.failed(), 0);
    let records = common::records(&a);
    assert_eq!(summary.records, records.len() as u64);
    assert_eq!(summary.uncompressed_bytes, records.values().map(|v| v.len() as u64).sum::<u64>());
    assert_eq!(summary.compressed_bytes, std::fs::metadata(&a).unwrap().len());
    let g = summary.gathered.unwrap();
    let started = time::OffsetDateTime::parse(&first.metadata.started, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!((g.at, g.from), (started, GatheredFrom::Metadata));
    assert_eq!(ok(&[a_str]), render::summary_text(&summary, &style));
    mask_summary(&mut summary);
    golden("sim-summary.txt", &render::summary_text(&summary, &style));

    // A failing gatherer stands out: marker, count, and its error.
    let mut failed = inspect::summary(&c).unwrap();
    // Both gatherers that read nodes (nodes, and machineconfigs for the configs in use).
    assert_eq!(failed.failed(), 2);
    let text = ok(&[c_str]);
    assert_eq!(text, render::summary_text(&failed, &style));
    assert!(text.lines().any(|l| l.starts_with("! nodes ")), "{text}");
    mask_summary(&mut failed);
    golden("sim-summary-failed.txt", &render::summary_text(&failed, &style));
    let json: Value = serde_json::from_str(&ok(&[c_str, "--json"])).unwrap();
    let nodes = json["gatherers"].as_array().unwrap().iter().find(|g| g["name"] == "nodes").unwrap();
    assert_eq!(nodes["failed"], json!(true));
    assert!(nodes["errors"][0].as_str().unwrap().contains("500"), "{nodes}");
    assert_eq!(json["records"], json!(common::records(&c).len()));
    assert_eq!(json["error"], Value::Null);

    // ls: the config/ subtree is deterministic as a whole.
    golden("sim-ls-config-node.txt", &ok(&[a_str, "ls", "config/node"]));
    golden("sim-ls-clusteroperators.txt", &ok(&[a_str, "ls", "config/clusteroperator/*.json"]));
    let listing: Value = serde_json::from_str(&ok(&[a_str, "ls", "--json"])).unwrap();
    let listed: Vec<(String, u64)> = listing["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap().to_owned(), r["size"].as_u64().unwrap()))
        .collect();
    let want: Vec<(String, u64)> = records.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect();
    assert_eq!(listed, want, "every record, sorted, with its size");
    let all = inspect::list(&a, None).unwrap();
    assert_eq!(ok(&[a_str, "ls"]), render::listing_text(&all));

    // show: pretty JSON (golden), exact bytes with --raw, the value with --json.
    golden("sim-show-node.txt", &ok(&[a_str, "show", NODE]));
    let raw = inspect(&[a_str, "show", NODE, "--raw"]);
    assert!(raw.status.success());
    assert_eq!(raw.stdout, records[NODE], "--raw is byte for byte");
    let shown: Value = serde_json::from_str(&ok(&[a_str, "show", NODE, "--json"])).unwrap();
    assert_eq!(shown["encoding"], json!("json"));
    assert_eq!(shown["content"], serde_json::from_slice::<Value>(&records[NODE]).unwrap());
    assert_eq!(ok(&[a_str, "show", "config/id"]).as_bytes(), &records["config/id"][..], "not JSON: as is");
    let missing = inspect(&[a_str, "show", "config/node/worker-0.json"]);
    assert!(fails(&missing).contains(r#"no record "config/node/worker-0.json""#));
    let dir_err = fails(&inspect(&[a_str, "show", "config/node"]));
    assert!(dir_err.ends_with("it is a directory: try `ls config/node`"), "{dir_err}");

    // meta: gathers.json exactly as written, in full.
    let meta: Value = serde_json::from_str(&ok(&[a_str, "meta", "--json"])).unwrap();
    assert_eq!(meta, serde_json::to_value(&first.metadata).unwrap());
    assert_eq!(ok(&[a_str, "meta"]), render::meta_text(&meta));

    // diff: golden (masked), both spellings, --all, --json.
    let mut d = diff::diff_archives(&a, &b, false).unwrap();
    let text = ok(&[a_str, b_str, "diff"]);
    assert_eq!(text, render::diff_text(&d, &style));
    assert_eq!(ok(&["diff", a_str, b_str]), text, "inspect diff OLD NEW is the same");
    mask_diff(&mut d);
    golden("sim-diff.txt", &render::diff_text(&d, &style));
    let mut d_all = diff::diff_archives(&a, &b, true).unwrap();
    assert_eq!(ok(&[a_str, b_str, "diff", "--all"]), render::diff_text(&d_all, &style));
    mask_diff(&mut d_all);
    golden("sim-diff-all.txt", &render::diff_text(&d_all, &style));
    let dj: Value = serde_json::from_str(&ok(&[a_str, b_str, "diff", "--json"])).unwrap();
    assert_eq!(dj["added"], json!([{"path": ADDED_POD, "size": records_of(&b)[ADDED_POD].len()}]));
    assert_eq!(dj["removed"], json!([{"path": DELETED_POD, "size": records[DELETED_POD].len()}]));
    let node_change = dj["changed"].as_array().unwrap().iter().find(|c| c["path"] == NODE).unwrap();
    assert!(node_change["fields"].as_array().unwrap().contains(&json!({
        "path": ".status.conditions[type=Ready].status", "old": "True", "new": "False"
    })));
    // A non-product label's value is x-ed out by the host, as IO does: the change shows, not the value.
    assert!(node_change["fields"].as_array().unwrap().contains(&json!({
        "path": r#".metadata.labels["example.com/pool"]"#, "new": "xxx"
    })));
    assert_eq!(node_change["ignored"], json!(3), "resourceVersion, lastHeartbeatTime, lastTransitionTime");
    assert_eq!(dj["gatherers"], json!([{
        "name": "ingresscontroller",
        "old": {"version": "1.0.0", "sha256": ingress_sha(&first), "failed": false, "error": null},
        "new": {"version": "1.1.0", "sha256": ingress_sha(&second), "failed": false, "error": null},
    }]));
    // Nothing changed between an archive and itself.
    let same: Value = serde_json::from_str(&ok(&[a_str, a_str, "diff", "--json", "--all"])).unwrap();
    assert_eq!((same["added"].clone(), same["removed"].clone(), same["changed"].clone()), (json!([]), json!([]), json!([])));

    // DIR: three periods and a damaged file; the table still shows, the exit status is 1.
    std::fs::write(dir.path().join("damaged.tar.gz"), b"this is not an archive\n").unwrap();
    let t = trend::trend(dir.path()).unwrap();
    let names: Vec<&str> = t.periods.iter().map(|p| p.archive.as_str()).collect();
    assert_eq!(names, ["p1.tar.gz", "p2.tar.gz", "p3.tar.gz", "damaged.tar.gz"], "by time, unknown last");
    let out = inspect(&[dir.path().to_str().unwrap()]);
    assert_eq!(stdout(&out), render::trend_text(&t, &style));
    let err = fails(&out);
    assert!(err.contains("1 of 4 archives") && err.contains("damaged.tar.gz: not a gzip file"), "{err}");
    let masked = mask_trend(t);
    golden("sim-trend.txt", &render::trend_text(&masked, &style));

    let html_path = dir.path().join("report.html");
    let out = inspect(&[dir.path().to_str().unwrap(), "--json", "--html", html_path.to_str().unwrap()]);
    fails(&out);
    let tj: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = tj["gatherers"].as_array().unwrap().iter().find(|g| g["name"] == "nodes").unwrap();
    assert_eq!(nodes["status"], json!(["ok", "ok", "failed", "unreadable"]));
    assert_eq!(nodes["runs"], json!(3));
    assert!(tj["periods"][3]["error"].as_str().unwrap().contains("not a gzip file"));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(html.contains("<svg") && html.contains("<polyline") && html.contains("nodes: "));
    assert_eq!(html.matches("(failed)</title>").count(), 2, "the failed runs (nodes, machineconfigs) are marked on the chart");
    for g in &t_names(&tj) {
        assert!(html.contains(g.as_str()), "{g} in the report");
    }
    for external in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(!html.contains(external), "self-contained: no {external}");
    }
    golden("sim-trend.html", &render::trend_html(&masked));
}

fn t_names(trend_json: &Value) -> Vec<String> {
    trend_json["gatherers"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().to_owned()).collect()
}

fn records_of(p: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    common::records(p)
}

fn ingress_sha(period: &agent::gather::PeriodResult) -> String {
    period.metadata.status_reports.iter().find(|r| r.name == "ingresscontroller").unwrap().sha256.clone()
}

/// Fixed times, durations and sizes: 10, 20, 30 ms for every gatherer in periods 1 to 3.
fn mask_trend(t: trend::Trend) -> trend::Trend {
    let mut periods = t.periods;
    for (i, p) in periods.iter_mut().enumerate() {
        if p.error.is_some() {
            p.error = Some(InspectError::NotGzip { path: p.archive.clone().into(), found: "it looks like text".into() });
            p.compressed_bytes = 23;
            continue;
        }
        p.gathered = masked_time(i as i64);
        p.duration_in_ms = Some(1500 + 100 * i as u64);
        p.compressed_bytes = 100 * 1024 + i as u64;
        for g in &mut p.gatherers {
            g.duration_in_ms = 10 * (i as u64 + 1);
        }
    }
    trend::Trend::from_periods(Path::new("ARCHIVES"), periods)
}

#[test]
fn the_insights_operator_sample_archive() {
    let archive = io_sample();
    let a = archive.to_str().unwrap();
    let dir = archive.parent().unwrap();
    // Entirely deterministic: the binary's output is the golden file.
    let out = inspect_in(Some(dir), &["io-sample.tar.gz"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{}", stderr(&out));
    golden("io-sample-summary.txt", &stdout(&out));
    golden("io-sample-ls-config-node.txt", &ok(&[a, "ls", "config/node"]));
    golden("io-sample-show-version.txt", &ok(&[a, "show", "config/version.json"]));

    let summary: Value = serde_json::from_str(&ok(&[a, "--json"])).unwrap();
    assert_eq!(summary["records"], json!(224));
    assert_eq!(summary["gatherers"].as_array().unwrap().len(), 64);
    assert_eq!(summary["gathered"], json!({"at": "2024-02-21T13:51:13Z", "from": "mtime"}));
    assert_eq!(summary["agent_version"], Value::Null);
    let failed: Vec<&str> = summary["gatherers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["failed"] == json!(true))
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["clusterconfig/config_maps", "clusterconfig"]);

    // `tar` agrees on the records.
    let tar = Command::new("tar").arg("-tzf").arg(&archive).output().unwrap();
    let mut tar_names: Vec<String> = String::from_utf8(tar.stdout).unwrap().lines().map(str::to_owned).collect();
    tar_names.sort();
    let listing: Value = serde_json::from_str(&ok(&[a, "ls", "--json"])).unwrap();
    let names: Vec<&str> = listing["records"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(names, tar_names);

    // meta is the Insights Operator's gathers.json (the copy kept beside it).
    let meta: Value = serde_json::from_str(&ok(&[a, "meta", "--json"])).unwrap();
    let kept: Value = serde_json::from_slice(&std::fs::read(testdata().join("archives/io-gathers.json")).unwrap()).unwrap();
    assert_eq!(meta, kept);
    assert_eq!(ok(&[a, "show", "config/id", "--raw"]), "d669cb71-8256-4e8b-a8df-333a5e2dd753");
    let log = ok(&[a, "show", "config/node/logs/ip-10-0-135-228.us-east-2.compute.internal.log"]);
    assert_eq!(log.len(), 23582, "text records are shown as they are");

    // A record's base name is enough for a hint.
    let err = fails(&inspect(&[a, "show", "worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com.json"]));
    assert!(err.ends_with("did you mean config/node/worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com.json?"), "{err}");
}

/// `(name, data)` files as a tar.gz.
fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn damaged_archives_list_what_can_be_read_then_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path());
    let sample = std::fs::read(io_sample()).unwrap();
    let full: Value = serde_json::from_str(&ok(&[io_sample().to_str().unwrap(), "ls", "--json"])).unwrap();
    let all: Vec<&str> = full["records"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();

    // Truncated: the intact records are listed, with a warning, then the error.
    std::fs::write(dir.path().join("cut.tar.gz"), &sample[..sample.len() * 2 / 5]).unwrap();
    let out = inspect_in(d, &["cut.tar.gz", "ls"]);
    let err = fails(&out);
    let truncated = "cut.tar.gz: truncated: the archive ends inside record config/persistentvolumes/monitoring-persistent-volume.json after 143 intact records";
    assert_eq!(err, format!("error: {truncated}"));
    assert!(stderr(&out).starts_with("warning: the archive is damaged; the 143 records above are those read intact\n"));
    let listed: Vec<String> = stdout(&out).lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap().to_owned()).filter(|p| p.contains('/')).collect();
    assert_eq!(listed.len(), 143);
    assert!(listed.iter().all(|p| all.contains(&p.as_str())));
    let out = inspect_in(d, &["cut.tar.gz"]);
    assert_eq!(fails(&out), format!("error: {truncated}"));
    golden("io-sample-truncated-summary.txt", &stdout(&out));
    let json: Value = serde_json::from_slice(&inspect_in(d, &["cut.tar.gz", "--json"]).stdout).unwrap();
    assert_eq!(json["error"], json!(truncated));
    assert_eq!(json["records_read"].as_array().unwrap().len(), 143);
    // show streams: a record before the cut is still there; one after it is not.
    assert_eq!(stdout(&inspect_in(d, &["cut.tar.gz", "show", "config/id", "--raw"])), "d669cb71-8256-4e8b-a8df-333a5e2dd753");
    let err = fails(&inspect_in(d, &["cut.tar.gz", "show", "insights-operator/gathers.json"]));
    assert!(err.contains("truncated"), "{err}");
    assert!(fails(&inspect_in(d, &["cut.tar.gz", "meta"])).contains("truncated"));
    assert!(fails(&inspect_in(d, &["cut.tar.gz", "cut.tar.gz", "diff"])).contains("truncated"));

    // Corrupt: a flipped byte in the deflate data.
    let mut bad = sample.clone();
    bad[sample.len() / 2] ^= 0x55;
    std::fs::write(dir.path().join("bad.tar.gz"), &bad).unwrap();
    let out = inspect_in(d, &["bad.tar.gz", "ls"]);
    let err = fails(&out);
    assert!(err.starts_with("error: bad.tar.gz: corrupt "), "{err}");
    assert!(!stdout(&out).is_empty(), "the records before the damage are listed");

    // Not gzip at all: nothing to list.
    for (name, bytes, what) in [
        ("notes.tar.gz", &b"some notes\n"[..], "it looks like text"),
        ("empty.tar.gz", &b""[..], "it is empty"),
        ("archive.zip", &b"PK\x03\x04\x14\x00"[..], "it is a zip archive"),
    ] {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        for args in [vec![name], vec![name, "ls"], vec![name, "meta"], vec![name, "show", "config/id"]] {
            let out = inspect_in(d, &args);
            assert_eq!(fails(&out), format!("error: {name}: not a gzip file ({what}); an Insights archive is a .tar.gz"));
            assert!(out.stdout.is_empty());
        }
    }

    // gzip, tar, but no gathers.json (or a broken one).
    std::fs::write(dir.path().join("nometa.tar.gz"), tar_gz(&[("config/id", b"x"), ("config/a.json", b"{}")])).unwrap();
    let out = inspect_in(d, &["nometa.tar.gz"]);
    assert_eq!(fails(&out), "error: nometa.tar.gz: no insights-operator/gathers.json: not an Insights archive, or an incomplete one");
    assert!(stdout(&out).contains("2 records could be read:\nSIZE  PATH\n   2  config/a.json\n   1  config/id\n"), "{}", stdout(&out));
    let out = inspect_in(d, &["nometa.tar.gz", "ls"]);
    assert!(fails(&out).contains("no insights-operator/gathers.json"));
    assert_eq!(stdout(&out), "SIZE  PATH\n   2  config/a.json\n   1  config/id\n2 records, 3 bytes (3 B)\n");
    assert!(fails(&inspect_in(d, &["nometa.tar.gz", "meta"])).contains("no insights-operator/gathers.json"));
    assert_eq!(stdout(&inspect_in(d, &["nometa.tar.gz", "show", "config/id"])), "x", "show needs no metadata");
    std::fs::write(dir.path().join("badmeta.tar.gz"), tar_gz(&[("insights-operator/gathers.json", b"{\"status_reports\": 7}")])).unwrap();
    let err = fails(&inspect_in(d, &["badmeta.tar.gz"]));
    assert!(err.starts_with("error: badmeta.tar.gz: insights-operator/gathers.json is not valid: invalid type"), "{err}");

    // Missing file, and command-line mistakes.
    assert_eq!(
        fails(&inspect_in(d, &["nope.tar.gz"])),
        "error: cannot open nope.tar.gz: No such file or directory (os error 2)"
    );
    assert!(usage_error(&inspect_in(d, &["nometa.tar.gz", "ls", "--all"])).contains("--all only applies to diff"));
    assert!(usage_error(&inspect_in(d, &["nometa.tar.gz", "--raw"])).contains("--raw only applies to show"));
    assert!(usage_error(&inspect_in(d, &["nometa.tar.gz", "show"])).contains("show needs a record path"));
    assert!(usage_error(&inspect_in(d, &["nometa.tar.gz", "frobnicate"])).contains("unknown command"));
    assert!(usage_error(&inspect_in(d, &["nometa.tar.gz", "--bogus"])).contains("--bogus"), "clap's own");
}

/// Memory follows the largest record, not the archive: 160 MiB of records are inspected under
/// a 64 MiB data limit (RLIMIT_DATA counts the heap and anonymous mappings).
#[cfg(target_os = "linux")]
#[test]
fn memory_is_bounded_by_the_largest_record() {
    const RECORD: usize = 4 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tar.gz");
    {
        let file = std::fs::File::create(&path).unwrap();
        let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        let data = vec![b'x'; RECORD];
        for i in 0..40 {
            let mut header = tar::Header::new_gnu();
            header.set_size(RECORD as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, format!("config/big/{i:02}.bin"), data.as_slice()).unwrap();
        }
        let meta = br#"{"status_reports":[{"name":"big","duration_in_ms":1,"records_count":40,"errors":null,"warnings":null,"panic":null}],"memory_alloc_bytes":0,"uptime_seconds":0,"is_global_obfuscation_enabled":false}"#;
        let mut header = tar::Header::new_gnu();
        header.set_size(meta.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, "insights-operator/gathers.json", &meta[..]).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
    }
    let limited = |args: &[&str]| {
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -d 65536 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_gather-inspect"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "inspect {args:?} under a 64 MiB data limit: {}", stderr(&out));
        out
    };
    assert!(stdout(&limited(&["big.tar.gz"])).contains("160.0 MiB in 41 records"));
    assert!(stdout(&limited(&["big.tar.gz", "ls"])).contains("41 records, 167772"));
    assert_eq!(limited(&["big.tar.gz", "show", "config/big/39.bin", "--raw"]).stdout.len(), RECORD);
    assert!(stdout(&limited(&["big.tar.gz", "big.tar.gz", "diff"])).contains("0 changed, 40 unchanged"));
    assert!(stdout(&limited(&["."])).contains("big.tar.gz"));
}
