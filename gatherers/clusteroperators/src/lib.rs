//! Gathers every ClusterOperator into `config/clusteroperator/<name>.json`, and the
//! `*.operator.openshift.io` objects each one lists in `status.relatedObjects` into
//! `config/clusteroperator/<group>/<kind>/[<namespace>/]<name>.json`, as the Insights
//! Operator's `clusterconfig/operators` does (IO: `gather_cluster_operators.go`).
//!
//! IO's content rules for a related object: only `apiVersion`, `kind`, `name` and `spec`
//! (plus `status` for the InsightsOperator), with the identity providers' sensitive attributes
//! in the authentication operator's observed config x-ed out. Image-registry objects are left to
//! the image-registry gatherer, which IO also does.

use hostapi::guest::{self, List, Result};
use serde_json::{Map, Value, json};

hostapi::gatherer! {
    name: "clusteroperators",
    description: "ClusterOperators and their operator.openshift.io related objects (config/clusteroperator/...)",
    reproduces: ["clusterconfig/operators"],
    permissions: [
        "GET /apis/config.openshift.io/v1/clusteroperators",
        "GET /apis/operator.openshift.io/v1/authentications/*",
        "GET /apis/operator.openshift.io/v1/cloudcredentials/*",
        "GET /apis/operator.openshift.io/v1/configs/*",
        "GET /apis/operator.openshift.io/v1/consoles/*",
        "GET /apis/operator.openshift.io/v1/csisnapshotcontrollers/*",
        "GET /apis/operator.openshift.io/v1/dnses/*",
        "GET /apis/operator.openshift.io/v1/etcds/*",
        "GET /apis/operator.openshift.io/v1/namespaces/openshift-ingress-operator/ingresscontrollers/*",
        "GET /apis/operator.openshift.io/v1/insightsoperators/*",
        "GET /apis/operator.openshift.io/v1/kubeapiservers/*",
        "GET /apis/operator.openshift.io/v1/kubecontrollermanagers/*",
        "GET /apis/operator.openshift.io/v1/kubeschedulers/*",
        "GET /apis/operator.openshift.io/v1/kubestorageversionmigrators/*",
        "GET /apis/operator.openshift.io/v1/networks/*",
        "GET /apis/operator.openshift.io/v1/openshiftapiservers/*",
        "GET /apis/operator.openshift.io/v1/openshiftcontrollermanagers/*",
        "GET /apis/operator.openshift.io/v1/servicecas/*",
        "GET /apis/operator.openshift.io/v1/storages/*",
        "GET /apis/samples.operator.openshift.io/v1/configs/*",
    ],
    run: gather,
}

/// The related-object types this module may read: (group, resource). Anything else a
/// ClusterOperator lists is skipped without a request, so the policy never sees an
/// undeclared path (IO reads whatever discovery serves; a published module can widen this).
const KNOWN: &[(&str, &str)] = &[
    ("operator.openshift.io", "authentications"),
    ("operator.openshift.io", "cloudcredentials"),
    ("operator.openshift.io", "configs"),
    ("operator.openshift.io", "consoles"),
    ("operator.openshift.io", "csisnapshotcontrollers"),
    ("operator.openshift.io", "dnses"),
    ("operator.openshift.io", "etcds"),
    ("operator.openshift.io", "ingresscontrollers"),
    ("operator.openshift.io", "insightsoperators"),
    ("operator.openshift.io", "kubeapiservers"),
    ("operator.openshift.io", "kubecontrollermanagers"),
    ("operator.openshift.io", "kubeschedulers"),
    ("operator.openshift.io", "kubestorageversionmigrators"),
    ("operator.openshift.io", "networks"),
    ("operator.openshift.io", "openshiftapiservers"),
    ("operator.openshift.io", "openshiftcontrollermanagers"),
    ("operator.openshift.io", "servicecas"),
    ("operator.openshift.io", "storages"),
    ("samples.operator.openshift.io", "configs"),
];

/// IO x-es out these attributes of every identity provider in the observed OAuth config.
const PROVIDER_SECRETS: [&str; 7] = ["url", "bindDN", "hostname", "clientID", "hostedDomain", "issuer", "domainName"];

fn gather() -> Result<()> {
    // The host pages through the list and writes each operator itself; this module sees only
    // each operator's name and related objects.
    let mut operators = List::open("/apis/config.openshift.io/v1/clusteroperators", &["/metadata/name", "/status/relatedObjects"])?;
    let (mut count, mut related) = (0, 0);
    while let Some(page) = operators.next_page()? {
        count += page.emit_all("config/clusteroperator/{name}.json")?;
        for co in page.items() {
            let name = co["/metadata/name"].as_str().unwrap_or_default();
            for object in co["/status/relatedObjects"].as_array().into_iter().flatten() {
                if related_object(name, object)? {
                    related += 1;
                }
            }
        }
    }
    guest::log(format!("{count} cluster operators, {related} related objects"));
    Ok(())
}

/// Reads and records one related object; false if it is skipped (not ours, or missing).
fn related_object(operator: &str, reference: &Value) -> Result<bool> {
    let field = |k: &str| reference.get(k).and_then(Value::as_str).unwrap_or("");
    let group = field("group");
    if !group.contains("operator.openshift.io") || group.contains("imageregistry") {
        return Ok(false);
    }
    // Some operators report the kind ("IngressController") instead of the resource.
    let mut resource = field("resource").to_ascii_lowercase();
    if !resource.ends_with('s') {
        resource.push('s');
    }
    if !KNOWN.contains(&(group, resource.as_str())) {
        guest::debug(format!("{operator}: related {resource}.{group} is not gathered by this module"));
        return Ok(false);
    }
    let namespace = field("namespace");
    // IO: the ingress operator lists its IngressControllers without a name; it means "default".
    let name = match field("name") {
        "" if operator == "ingress" => "default",
        "" => return Ok(false),
        n => n,
    };
    let path = match namespace {
        "" => format!("/apis/{group}/v1/{resource}/{name}"),
        ns => format!("/apis/{group}/v1/namespaces/{ns}/{resource}/{name}"),
    };
    let resp = guest::get(&path)?;
    if resp.status == 404 {
        guest::warn(format!("{operator}: related object {path} not found"));
        return Ok(false);
    }
    if !resp.is_success() {
        guest::error(format!("GET {path}: HTTP {}: {}", resp.status, resp.status_message().unwrap_or_default()));
        return Ok(false);
    }
    let object: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => {
            guest::error(format!("GET {path}: invalid JSON: {e}"));
            return Ok(false);
        }
    };
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    let record_name = match namespace {
        "" => format!("config/clusteroperator/{group}/{kind}/{name}.json"),
        ns => format!("config/clusteroperator/{group}/{kind}/{ns}/{name}.json"),
    };
    guest::skip_refused(guest::record_json(&record_name, trimmed(object)))
}

/// What IO keeps of a related object: apiVersion, kind, name, spec (and status for the
/// InsightsOperator), with identity-provider attributes x-ed out.
fn trimmed(mut object: Value) -> Value {
    if let Some(providers) =
        object.pointer_mut("/spec/observedConfig/oauthServer/oauthConfig/identityProviders").and_then(Value::as_array_mut)
    {
        for provider in providers.iter_mut().filter_map(|p| p.get_mut("provider")).filter_map(Value::as_object_mut) {
            for key in PROVIDER_SECRETS {
                if let Some(Value::String(s)) = provider.get_mut(key) {
                    *s = "x".repeat(s.len());
                }
            }
        }
    }
    let mut out = Map::new();
    for key in ["apiVersion", "kind"] {
        out.insert(key.into(), object.get(key).cloned().unwrap_or(Value::Null));
    }
    out.insert("name".into(), json!(guest::name_of(&object)));
    out.insert("spec".into(), object.get("spec").cloned().unwrap_or(Value::Null));
    if object.get("kind").and_then(Value::as_str) == Some("InsightsOperator")
        && let Some(status) = object.get("status")
    {
        out.insert("status".into(), status.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_io_keeps_and_xes_out_identity_providers() {
        let object = json!({
            "apiVersion": "operator.openshift.io/v1", "kind": "Authentication",
            "metadata": {"name": "cluster", "uid": "u"},
            "spec": {"observedConfig": {"oauthServer": {"oauthConfig": {"identityProviders": [
                {"name": "ldap", "provider": {"url": "ldap://corp.example", "bindDN": "cn=admin", "insecure": false}}
            ]}}}},
            "status": {"x": 1}
        });
        let out = trimmed(object);
        assert_eq!(out["name"], "cluster");
        assert!(out.get("metadata").is_none() && out.get("status").is_none());
        let provider = &out["spec"]["observedConfig"]["oauthServer"]["oauthConfig"]["identityProviders"][0]["provider"];
        assert_eq!(provider["url"], "x".repeat("ldap://corp.example".len()));
        assert_eq!(provider["bindDN"], "xxxxxxxx");
        assert_eq!(provider["insecure"], false);
        let insights = trimmed(json!({"kind": "InsightsOperator", "metadata": {"name": "cluster"}, "status": {"s": 1}}));
        assert_eq!(insights["status"]["s"], 1);
    }
}
