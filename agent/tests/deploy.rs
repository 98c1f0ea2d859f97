//! `deploy/` stays correct:
//! - `kubectl apply --dry-run=client -k deploy/` against the simulator builds every object
//!   (kubectl resolves each kind through discovery), and they round-trip through the real
//!   Kubernetes API types;
//! - the base and both overlays validate offline against the real API schemas
//!   (`kubernetes-validate --strict` from PyPI, installed into `.venv/` by `.ci/run` and
//!   `cargo xtask test`, as Go is); the ServiceMonitor, a CRD kind with no schema there, is
//!   checked field by field against the Service instead;
//! - the ClusterRole grants exactly what the default gatherers declare (read-only, no Secrets);
//! - retention and the data volume agree, the Service carries only the metrics port, and the
//!   NetworkPolicy denies by default.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;

/// Room the `data` volume keeps for the state dir (module cache of the current and a staged
/// set, the last accepted index, status.json) beyond the archives.
const STATE_RESERVE: u64 = 256 << 20;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn deploy_dir() -> PathBuf {
    root().join("deploy")
}

/// `kubectl apply --dry-run=client -k deploy/ -o json` against the simulator: kubectl parses
/// the kustomization, resolves every kind through discovery and builds each object.
async fn rendered() -> Vec<Value> {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let kc = work.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let home = work.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .env("HOME", &home)
            .arg("--kubeconfig")
            .arg(&kc)
            // The simulator serves discovery but not OpenAPI schemas; the schemas are checked
            // offline by `kubernetes-validate` (below) instead.
            .args(["apply", "--dry-run=client", "--validate=false", "-o", "json", "-k"])
            .arg(deploy_dir())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "kubectl apply --dry-run=client failed: {}", String::from_utf8_lossy(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// `kubectl kustomize DIR`: the YAML an apply would send, built offline.
fn kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl").arg("kustomize").arg(dir).output().expect("kubectl is needed (see .ci/run)");
    assert!(out.status.success(), "kubectl kustomize {} failed: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The objects of a kustomization, as JSON.
fn objects(dir: &Path) -> Vec<Value> {
    serde_saphyr::from_multiple(&kustomize(dir)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["kind"] == kind && i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// `kubernetes-validate`: the repository's `.venv/` first (where `.ci/run` and `cargo xtask
/// test` install it), then PATH.
fn kubernetes_validate() -> PathBuf {
    let venv = root().join(".venv/bin/kubernetes-validate");
    if venv.exists() {
        return venv;
    }
    let on_path = Command::new("kubernetes-validate").arg("--version").output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "kubernetes-validate is not installed; install it with `python3 -m venv .venv && .venv/bin/pip install kubernetes-validate==1.37.0` \
         (cargo xtask test does)"
    );
    PathBuf::from("kubernetes-validate")
}

/// Validates YAML against the Kubernetes API's JSON schemas, strictly (an unknown field is an
/// error). Returns the failures and the kinds it had no schema for.
fn validate(yaml: &str) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(kubernetes_validate()).args(["--strict"]).arg(&file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let failures: Vec<String> = text.lines().filter(|l| l.starts_with("ERROR")).map(str::to_owned).collect();
    let unknown: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once("Couldn't find schema for kind ").map(|(_, k)| k.split_whitespace().next().unwrap_or("").to_owned()))
        .collect();
    let passed = text.lines().filter(|l| l.contains(" passed for resource ")).count();
    assert!(out.status.success() || !failures.is_empty(), "kubernetes-validate failed without a reason: {text}");
    assert!(passed + failures.len() + unknown.len() > 0, "kubernetes-validate checked nothing: {text}");
    (failures, unknown)
}

/// Parses `v` as `T` and back: a field the type does not know is dropped, so any difference
/// is a typo or a misplaced field; a wrong type fails to parse.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) {
    let mut v = v.clone();
    if let Some(a) = v.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        if a.is_empty() {
            v["metadata"].as_object_mut().unwrap().remove("annotations");
        }
    }
    let typed: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{} does not parse: {e}", v["kind"]));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, v, "{} has fields the API does not know", v["kind"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_apply_and_match_the_api_types() {
    let items = rendered().await;
    let kinds: BTreeSet<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "Service",
            "ServiceAccount"
        ])
    );
    for item in &items {
        match item["kind"].as_str().unwrap() {
            "Namespace" => round_trips::<Namespace>(item),
            "ServiceAccount" => round_trips::<ServiceAccount>(item),
            "ClusterRole" => round_trips::<ClusterRole>(item),
            "ClusterRoleBinding" => round_trips::<ClusterRoleBinding>(item),
            "ConfigMap" => round_trips::<ConfigMap>(item),
            "Deployment" => round_trips::<Deployment>(item),
            "Service" => round_trips::<Service>(item),
            "NetworkPolicy" => round_trips::<NetworkPolicy>(item),
            other => panic!("unexpected kind {other}"),
        }
    }

    // The Deployment is hardened as promised, and leaves the UID to the platform: OpenShift's
    // restricted-v2 assigns one from the namespace range and refuses a fixed one outside it.
    let d = items.iter().find(|i| i["kind"] == "Deployment").unwrap();
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    for ctx in [&pod["securityContext"], &c["securityContext"]] {
        for fixed in ["runAsUser", "runAsGroup", "fsGroup"] {
            assert!(ctx.get(fixed).is_none(), "{fixed} is set: {ctx}");
        }
    }
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let mounts: Vec<&str> = c["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
    assert!(mounts.contains(&"/var/lib/gather-agent"), "a volume for archives and state");
    assert_eq!(pod["serviceAccountName"], "gather-agent");

    // The ConfigMap holds a config the agent accepts, with no index: as shipped, the agent
    // runs its embedded default gatherers (a placeholder key made it crash-loop).
    // cli/tests/cli_deploy.rs runs the binary on it.
    let cm = items.iter().find(|i| i["kind"] == "ConfigMap").unwrap();
    let config: agent::config::AgentConfig = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    assert!(config.run.index_url.is_none() && config.run.public_key.is_none() && config.run.modules_dir.is_none());
    assert!(config.run.period.is_some());
}

/// The metrics Service, its serving certificate and the NetworkPolicy fit together, and
/// `/status` is not exposed beyond monitoring.
#[test]
fn metrics_service_certificate_and_network_policy() {
    let items = objects(&deploy_dir());
    let svc = find(&items, "Service", "gather-agent-metrics");
    let ports = svc["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1, "only the metrics port on the Service: {ports:?}");
    assert_eq!(ports[0]["name"], "metrics");
    let d = find(&items, "Deployment", "gather-agent");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let target = c["ports"].as_array().unwrap().iter().find(|p| p["name"] == ports[0]["targetPort"]).expect("targetPort names a container port");
    let container_port = &target["containerPort"];

    // The service-ca certificate lands in a Secret the pod mounts, optionally (absent off
    // OpenShift), read-only.
    let secret = svc["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"].as_str().expect("serving-cert annotation");
    let vol = pod["volumes"].as_array().unwrap().iter().find(|v| v["secret"]["secretName"] == secret).expect("the serving cert is mounted");
    assert_eq!(vol["secret"]["optional"], true, "optional: plain Kubernetes has no service-ca");
    let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == vol["name"]).unwrap();
    assert_eq!(mount["readOnly"], true);
    assert_eq!(mount["mountPath"], "/var/run/secrets/serving-cert");

    let ns = svc["metadata"]["namespace"].as_str().unwrap();
    let policies: Vec<&Value> = items.iter().filter(|i| i["kind"] == "NetworkPolicy").collect();
    assert!(policies.iter().all(|p| p["metadata"]["namespace"] == ns));
    let deny = policies
        .iter()
        .find(|p| p["spec"]["podSelector"] == serde_json::json!({}) && p["spec"].get("ingress").is_none() && p["spec"].get("egress").is_none())
        .expect("a default-deny policy for the whole namespace");
    assert_eq!(deny["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    let allow = policies.iter().find(|p| p["spec"]["podSelector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]).expect("a policy for the agent");
    let ingress = allow["spec"]["ingress"].as_array().unwrap();
    let ingress_ports: Vec<&Value> = ingress.iter().flat_map(|r| r["ports"].as_array().unwrap()).map(|p| &p["port"]).collect();
    assert_eq!(ingress_ports, [container_port], "ingress only to the metrics port");
    assert!(ingress.iter().all(|r| r["from"].as_array().is_some_and(|f| !f.is_empty())), "ingress only from named sources");
    let egress_ports: BTreeSet<u64> = allow["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ports"].as_array().expect("egress rules name their ports"))
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(egress_ports, BTreeSet::from([53, 443, 5353, 6443]), "DNS and the API server only");
}

/// Parses a Kubernetes quantity with a binary suffix (`1536Mi`, `2Gi`) into bytes.
fn quantity(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("quantity {q:?}"));
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        other => panic!("unit {other:?} in {q:?}"),
    }
}

/// The most the data volume must hold: one archive more than retention keeps (the one being
/// written), each at the archive cap, plus the state dir's reserve.
fn data_needed(items: &[Value]) -> u64 {
    let cm = find(items, "ConfigMap", "gather-agent");
    let config: agent::config::AgentConfig = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    let keep = config.run.keep_archives.expect("retention is set explicitly in deploy/") as u64;
    (keep + 1) * config.archive_max_bytes + STATE_RESERVE
}

#[test]
fn retention_fits_the_data_volume_and_the_persistent_overlay_keeps_it() {
    let base = objects(&deploy_dir());
    let needed = data_needed(&base);
    let volumes = |items: &[Value]| find(items, "Deployment", "gather-agent")["spec"]["template"]["spec"]["volumes"].as_array().unwrap().clone();
    let data = |items: &[Value]| volumes(items).into_iter().find(|v| v["name"] == "data").unwrap();
    let size = quantity(data(&base)["emptyDir"]["sizeLimit"].as_str().expect("the emptyDir is capped"));
    assert!(needed <= size, "retention needs {needed} bytes, the data emptyDir holds {size}");

    let persistent = objects(&deploy_dir().join("overlays/persistent"));
    let claim = data(&persistent)["persistentVolumeClaim"]["claimName"].as_str().expect("data is a PVC").to_owned();
    assert!(data(&persistent).get("emptyDir").is_none());
    let pvc = find(&persistent, "PersistentVolumeClaim", &claim);
    let size = quantity(pvc["spec"]["resources"]["requests"]["storage"].as_str().unwrap());
    assert!(data_needed(&persistent) <= size, "retention needs {needed} bytes, the PVC holds {size}");
    // Nothing else changes.
    let others = |items: &[Value]| {
        let mut v: Vec<String> = volumes(items).into_iter().filter(|v| v["name"] != "data").map(|v| v.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(others(&base), others(&persistent));
    assert_eq!(base.len() + 1, persistent.len());
}

/// The host's own memory beyond the guests' caps, as the agent's start-up check counts it.
const HOST_MARGIN: u64 = 64 << 20;

/// The container's memory limit holds every gatherer running at its memory cap at once, plus
/// the host: four guests at their 64 MiB caps reached 276 MB, over a 256Mi limit, and the
/// kernel killed the agent mid-period.
#[test]
fn memory_limit_holds_the_gatherers_at_their_caps() {
    let items = objects(&deploy_dir());
    let cm = find(&items, "ConfigMap", "gather-agent");
    let config: agent::config::AgentConfig = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    let d = find(&items, "Deployment", "gather-agent");
    let limit = quantity(d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].as_str().unwrap());
    let needed = config.concurrency as u64 * config.limits.memory_bytes + HOST_MARGIN;
    assert!(needed <= limit, "concurrency {} x memoryBytes {} + {HOST_MARGIN} = {needed} bytes, over the {limit}-byte limit", config.concurrency, config.limits.memory_bytes);
}

/// The base and both overlays against the real API schemas, offline, strictly.
#[test]
fn manifests_validate_against_the_api_schemas() {
    for dir in [deploy_dir(), deploy_dir().join("overlays/persistent"), deploy_dir().join("overlays/servicemonitor")] {
        let (failures, unknown) = validate(&kustomize(&dir));
        assert!(failures.is_empty(), "{}: {failures:#?}", dir.display());
        let expected: &[&str] = if dir.ends_with("servicemonitor") { &["ServiceMonitor"] } else { &[] };
        assert_eq!(unknown, expected, "{}: kinds without a schema", dir.display());
    }
    // The validator is strict: a misspelt field and a wrong type are both caught.
    let base = kustomize(&deploy_dir());
    for (from, to) in [("readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true"), ("sizeLimit: 64Mi", "sizeLimit: [64Mi]")] {
        assert!(base.contains(from), "{from}");
        let (failures, _) = validate(&base.replacen(from, to, 1));
        assert!(!failures.is_empty(), "{to:?} passed validation");
    }
}

/// The ServiceMonitor (a CRD kind, so no schema above) selects the metrics Service and names
/// its port, and scrapes with the service-ca certificate's name.
#[test]
fn service_monitor_overlay_selects_the_metrics_service() {
    let items = objects(&deploy_dir().join("overlays/servicemonitor"));
    let base = objects(&deploy_dir());
    assert_eq!(items.len(), base.len() + 3, "the base plus ServiceMonitor, Role and RoleBinding");
    let svc = find(&items, "Service", "gather-agent-metrics");
    let ns = svc["metadata"]["namespace"].as_str().unwrap();
    let sm = items.iter().find(|i| i["kind"] == "ServiceMonitor").unwrap();
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["namespace"], ns);
    assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"], serde_json::json!([ns]));
    let labels = svc["metadata"]["labels"].as_object().unwrap();
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(labels.get(k), Some(v), "the selector matches the Service's labels");
    }
    let known: Vec<&str> = sm.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(known, ["apiVersion", "kind", "metadata", "spec"]);
    for ep in sm["spec"]["endpoints"].as_array().unwrap() {
        let port = ep["port"].as_str().unwrap();
        assert!(svc["spec"]["ports"].as_array().unwrap().iter().any(|p| p["name"] == port), "port {port} is on the Service");
        assert_eq!(ep["path"], "/metrics");
        assert_eq!(ep["scheme"], "https");
        let name = svc["metadata"]["name"].as_str().unwrap();
        assert_eq!(ep["tlsConfig"]["serverName"], format!("{name}.{ns}.svc"), "the service-ca certificate's name");
    }
    // OpenShift's cluster monitoring scrapes only labelled namespaces.
    assert_eq!(find(&items, "Namespace", ns)["metadata"]["labels"]["openshift.io/cluster-monitoring"], "true");
    // The agent serves HTTPS from the mounted serving certificate, and is probed over HTTPS.
    let deployment = find(&items, "Deployment", "gather-agent");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    let dir = args.iter().position(|a| *a == "--tls-dir").map(|i| args[i + 1]).expect("--tls-dir in the overlay");
    let mounts = container["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().any(|m| m["mountPath"] == dir), "{dir} is the serving-cert mount");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTPS", "{probe}");
    }
    // The base stays plain HTTP: without the certificate there is nothing to serve TLS with.
    let base_container = &find(&base, "Deployment", "gather-agent")["spec"]["template"]["spec"]["containers"][0];
    assert!(!base_container["args"].as_array().unwrap().iter().any(|a| a == "--tls-dir"));
}

/// One grant: (apiGroup, resource, verb, resourceName).
type Grant = (String, String, String, Option<String>);

/// What a declared permission needs from RBAC: `GET .../plural` is list, `GET .../plural/name` is get.
fn needed(p: &hostapi::Permission) -> Grant {
    assert_eq!(p.method, "GET", "default gatherers only read");
    let segs: Vec<&str> = p.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => (String::new(), rest.to_vec()),
        ["apis", g, _v, rest @ ..] => (g.to_string(), rest.to_vec()),
        _ => panic!("not an API path: {p}"),
    };
    let rest = match rest.as_slice() {
        ["namespaces", _ns, r @ ..] if !r.is_empty() => r.to_vec(),
        r => r.to_vec(),
    };
    match rest.as_slice() {
        [plural] => (group, plural.to_string(), "list".into(), None),
        [plural, name] if *name != "*" => (group, plural.to_string(), "get".into(), Some(name.to_string())),
        [plural, _] => (group, plural.to_string(), "get".into(), None),
        _ => panic!("subresources are not expected: {p}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_role_grants_exactly_what_the_default_gatherers_declare() {
    let sandbox = agent::sandbox::Sandbox::new();
    let mut want: BTreeSet<Grant> = BTreeSet::new();
    // Every module `cargo xtask gatherers` builds is a default gatherer (probes and test
    // guests go elsewhere), so the role follows the default set as it grows.
    let modules = common::built_gatherers();
    assert!(modules.len() >= 8, "the default gatherers are not built: {}", modules.len());
    for (_, bytes) in &modules {
        for p in &sandbox.load(bytes).unwrap().manifest.permissions {
            want.insert(needed(p));
        }
    }
    // The host's own reads, not a gatherer's: the cluster base domain for networking
    // obfuscation (`"obfuscation": ["networking"]`, agent/src/gather.rs BASE_DOMAIN_PATH).
    want.insert(needed(&hostapi::Permission { method: "GET".into(), path: agent::gather::BASE_DOMAIN_PATH.into() }));
    let items = rendered().await;
    let role = items.iter().find(|i| i["kind"] == "ClusterRole").unwrap();
    let role: ClusterRole = serde_json::from_value(role.clone()).unwrap();
    let mut granted: BTreeSet<Grant> = BTreeSet::new();
    for rule in role.rules.unwrap() {
        assert!(rule.non_resource_urls.is_none(), "no non-resource URLs");
        for verb in &rule.verbs {
            assert!(matches!(verb.as_str(), "get" | "list"), "only read verbs, found {verb:?}");
        }
        for group in rule.api_groups.unwrap_or_default() {
            assert_ne!(group, "*", "no wildcard groups");
            for resource in rule.resources.clone().unwrap_or_default() {
                assert!(resource != "*" && resource != "secrets" && !resource.contains('/'), "no wildcards, Secrets or subresources: {resource}");
                for verb in &rule.verbs {
                    match &rule.resource_names {
                        Some(names) => {
                            for n in names {
                                granted.insert((group.clone(), resource.clone(), verb.clone(), Some(n.clone())));
                            }
                        }
                        None => {
                            granted.insert((group.clone(), resource.clone(), verb.clone(), None));
                        }
                    }
                }
            }
        }
    }
    let missing: Vec<_> = want.difference(&granted).collect();
    assert!(missing.is_empty(), "the ClusterRole lacks {missing:?}");
    let extra: Vec<_> = granted.difference(&want).collect();
    assert!(extra.is_empty(), "the ClusterRole grants more than the gatherers declare: {extra:?}");
}
