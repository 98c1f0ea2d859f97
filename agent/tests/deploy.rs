//! `deploy/` stays correct: the ClusterRole grants exactly what the default gatherers declare
//! (read-only, no Secrets), and the manifests go through `kubectl apply --dry-run=client`
//! against the simulator, then round-trip through the real Kubernetes API types.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;


fn deploy_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
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
            // The simulator serves discovery but not OpenAPI schemas; schema checks are done
            // below against the real API types instead.
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
        BTreeSet::from(["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Namespace", "Service", "ServiceAccount"])
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
            other => panic!("unexpected kind {other}"),
        }
    }

    // The Deployment is hardened as promised.
    let d = items.iter().find(|i| i["kind"] == "Deployment").unwrap();
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let mounts: Vec<&str> = c["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
    assert!(mounts.contains(&"/var/lib/gather-agent"), "a volume for archives and state");
    assert_eq!(pod["serviceAccountName"], "gather-agent");

    // The ConfigMap holds a config the agent accepts.
    let cm = items.iter().find(|i| i["kind"] == "ConfigMap").unwrap();
    let config: agent::config::AgentConfig = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    assert!(config.run.index_url.is_some() && config.run.period.is_some() && config.run.public_key.is_some());
    let svc = items.iter().find(|i| i["kind"] == "Service").unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
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
