//! The Insights Operator's always-on anonymization, done by the host whatever module gathers
//! a resource: a table from API resource (group, resource) to a redaction spec
//! ([`crate::redaction`]), applied to every 2xx `GET` body of that resource (one object, or
//! every item of a list) before the gatherer sees it. So a raw copy (`request` + `record`),
//! a `list_emit` and a projection all carry the anonymized values, and a gatherer cannot
//! forget a rule.
//!
//! Each rule cites the Insights Operator source it reproduces (openshift/insights-operator,
//! `pkg/gatherers/...`, with `pkg/utils/anonymize` for `xout` = `anonymize.String`, `url` =
//! `anonymize.URL`, `url-list` = `anonymize.URLCSV`/`URLSlice`). What IO anonymizes with
//! logic no pointer rule can express (YAML inside a config map key, pod environment variables
//! chosen by name, derived records such as CSR features) is listed in `docs/SECURITY.md` as
//! the gatherer's job.

use std::sync::LazyLock;

use crate::apipath::{ApiPath, Kind, Verb};
use crate::redaction::Spec;

/// (API group, resource, rules, IO source). The group of the core API is `""`.
const TABLE: &[(&str, &str, &str, &str)] = &[
    (
        "",
        "nodes",
        // IO keeps product-namespaced labels except the two region labels, which it x-es out too.
        "xout /status/nodeInfo/bootID
         xout /status/nodeInfo/systemUUID
         xout /status/nodeInfo/machineID
         remove /status/images
         blank /metadata/annotations/* except-product-keys
         xout /metadata/labels/* except-product-keys
         xout /metadata/labels/failure-domain.beta.kubernetes.io~1region
         xout /metadata/labels/topology.kubernetes.io~1region",
        "pkg/gatherers/clusterconfig/gather_nodes.go (anonymizeNode)",
    ),
    (
        "config.openshift.io",
        "proxies",
        "url-list /spec/httpProxy
         url-list /spec/httpsProxy
         url-list /spec/noProxy
         url-list /spec/readinessEndpoints
         url-list /status/httpProxy
         url-list /status/httpsProxy
         url-list /status/noProxy",
        "pkg/gatherers/clusterconfig/gather_cluster_proxy.go (anonymizeProxy)",
    ),
    ("config.openshift.io", "clusterversions", "url /spec/upstream", "pkg/gatherers/clusterconfig/gather_cluster_version.go (anonymizeClusterVersion)"),
    (
        "config.openshift.io",
        "infrastructures",
        "url /status/infrastructureName
         xout /status/platformStatus/aws/region
         xout /status/platformStatus/azure/cloudName
         xout /status/platformStatus/gcp/region
         xout /status/platformStatus/gcp/projectID
         xout /status/platformStatus/ibmcloud/location
         xout /status/platformStatus/openstack/cloudName",
        "pkg/gatherers/clusterconfig/gather_cluster_infrastructure.go (anonymizeInfrastructure)",
    ),
    (
        "machine.openshift.io",
        "machines",
        "xout /spec/providerID
         xout /spec/providerSpec/value/placement/availabilityZone
         xout /spec/providerSpec/value/placement/region
         xout /metadata/labels/machine.openshift.io~1region",
        "pkg/gatherers/clusterconfig/gather_machines.go (anonymizeMachine)",
    ),
    (
        "machine.openshift.io",
        "machinesets",
        "xout /spec/template/spec/providerSpec/value/projectID
         xout /spec/template/spec/providerSpec/value/region
         xout /spec/template/spec/providerSpec/value/placement/availabilityZone
         xout /spec/template/spec/providerSpec/value/placement/region
         xout /spec/template/spec/providerSpec/value/serviceAccounts/*/email",
        "pkg/gatherers/clusterconfig/gather_machine_sets.go (anonymizeMachineset, anonymizeServiceAccounts)",
    ),
    (
        "machine.openshift.io",
        "controlplanemachinesets",
        // IO sets both to null: the templates carry the provider spec (regions, zones, images).
        "blank /spec/templates
         blank /spec/template",
        "pkg/gatherers/clusterconfig/gather_control_plane_machine_sets.go",
    ),
    (
        "machineconfiguration.openshift.io",
        "machineconfigs",
        // IO sets both to null: file contents and users' SSH keys.
        "blank /spec/config/storage/files
         blank /spec/config/passwd/users",
        "pkg/gatherers/clusterconfig/gather_machine_configs.go",
    ),
    ("", "configmaps", "pem /data/*", "pkg/gatherers/clusterconfig/gather_config_maps.go (anonymizeConfigMap)"),
    (
        "imageregistry.operator.openshift.io",
        "configs",
        "xout /spec/httpSecret
         xout /metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration
         xout /spec/storage/s3/bucket
         xout /spec/storage/s3/keyID
         xout /spec/storage/s3/regionEndpoint
         xout /spec/storage/s3/region
         xout /spec/storage/gcs/bucket
         xout /spec/storage/gcs/keyID
         xout /spec/storage/gcs/projectID
         xout /spec/storage/gcs/region
         xout /spec/storage/azure/accountName
         xout /spec/storage/azure/container
         xout /spec/storage/azure/cloudName
         xout /spec/storage/swift/authURL
         xout /spec/storage/swift/container
         xout /spec/storage/swift/domain
         xout /spec/storage/swift/domainID
         xout /spec/storage/swift/tenant
         xout /spec/storage/swift/tenantID
         xout /spec/storage/swift/regionName
         xout /spec/storage/ibmcos/bucket
         xout /spec/storage/ibmcos/resourceKeyCRN
         xout /spec/storage/ibmcos/serviceInstanceCRN
         xout /spec/storage/ibmcos/resourceGroupName
         xout /spec/storage/ibmcos/location
         xout /status/storage/s3/bucket
         xout /status/storage/s3/keyID
         xout /status/storage/s3/regionEndpoint
         xout /status/storage/s3/region
         xout /status/storage/gcs/bucket
         xout /status/storage/gcs/keyID
         xout /status/storage/gcs/projectID
         xout /status/storage/gcs/region
         xout /status/storage/azure/accountName
         xout /status/storage/azure/container
         xout /status/storage/azure/cloudName
         xout /status/storage/swift/authURL
         xout /status/storage/swift/container
         xout /status/storage/swift/domain
         xout /status/storage/swift/domainID
         xout /status/storage/swift/tenant
         xout /status/storage/swift/tenantID
         xout /status/storage/swift/regionName
         xout /status/storage/ibmcos/bucket
         xout /status/storage/ibmcos/resourceKeyCRN
         xout /status/storage/ibmcos/serviceInstanceCRN
         xout /status/storage/ibmcos/resourceGroupName
         xout /status/storage/ibmcos/location",
        "pkg/gatherers/clusterconfig/gather_cluster_image_registries.go (anonymizeImageRegistry)",
    ),
    (
        "operator.openshift.io",
        "authentications",
        "xout /spec/observedConfig/oauthServer/oauthConfig/identityProviders/*/provider/url
         xout /spec/observedConfig/oauthServer/oauthConfig/identityProviders/*/provider/bindDN
         xout /spec/observedConfig/oauthServer/oauthConfig/identityProviders/*/provider/hostname
         xout /spec/observedConfig/oauthServer/oauthConfig/identityProviders/*/provider/clientID
         xout /spec/observedConfig/oauthServer/oauthConfig/identityProviders/*/provider/hostedDomain
         xout /spec/observedConfig/oauthServer/oauthConfig/identityProviders/*/provider/issuer
         xout /spec/observedConfig/oauthServer/oauthConfig/identityProviders/*/provider/domainName",
        "pkg/gatherers/clusterconfig/gather_cluster_operators.go (anonymizeIdentityProviders)",
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "xout /webhooks/*/clientConfig/caBundle",
        "pkg/gatherers/clusterconfig/gather_mutating_webhook_configurations.go",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        "xout /webhooks/*/clientConfig/caBundle",
        "pkg/gatherers/clusterconfig/gather_validating_webhook_configurations.go",
    ),
    ("nmstate.io", "nodenetworkstates", "xout /status/currentState/interfaces/*/mac-address", "pkg/gatherers/clusterconfig/gather_nmstate_nodenetworkstate.go"),
    (
        "image.openshift.io",
        "imagestreams",
        "xout /spec/dockerImageRepository
         xout /spec/tags/*/from/name
         xout /status/dockerImageRepository
         xout /status/publicDockerImageRepository
         xout /status/tags/*/items/*/dockerImageReference",
        "pkg/gatherers/conditional/gather_image_stream_definitions_of_namespace.go (anonymizeImageStream)",
    ),
];

/// The parsed table: (group, resource) to the spec for one object and for a list of them.
struct Rules {
    object: Spec,
    list: Spec,
}

/// A short table: a scan is as quick as a hash and needs no owned keys.
static RULES: LazyLock<Vec<(&'static str, &'static str, Rules)>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|(group, resource, text, _)| {
            let text: String = text.lines().map(|l| format!("{}\n", l.trim())).collect();
            let object = Spec::parse_builtin(&text).expect("the built-in anonymization rules parse");
            let list = object.under(&["items", "*"]);
            (*group, *resource, Rules { object, list })
        })
        .collect()
});

/// The built-in rules, for documentation and tests: (group, resource, spec text, IO source).
pub fn table() -> impl Iterator<Item = (&'static str, &'static str, String, &'static str)> {
    TABLE.iter().map(|(g, r, text, src)| (*g, *r, text.lines().map(|l| format!("{}\n", l.trim())).collect(), *src))
}

/// The spec to apply to the 2xx body of a `GET path`, if the path addresses a resource IO
/// anonymizes: its object rules for one object (or its `status` subresource), the same rules
/// under `/items/*` for a list.
pub fn spec_for_path(path: &str) -> Option<&'static Spec> {
    let parsed = ApiPath::parse(path).ok()?;
    let Kind::Resource(r) = &parsed.kind else { return None };
    if !matches!(r.subresource, None | Some("status")) {
        return None;
    }
    let (_, _, rules) = RULES.iter().find(|(g, res, _)| *g == r.group && *res == r.resource)?;
    match parsed.verb {
        Verb::Get if r.name.is_some() => Some(&rules.object),
        Verb::List => Some(&rules.list),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn apply(path: &str, doc: Value) -> Value {
        let spec = spec_for_path(path).unwrap_or_else(|| panic!("no rules for {path}"));
        serde_json::from_slice(&spec.apply(doc.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn every_rule_parses() {
        let mut keys: Vec<_> = RULES.iter().map(|(g, r, _)| (*g, *r)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), TABLE.len(), "one entry per (group, resource)");
        for (g, r, text, _) in table() {
            assert!(!Spec::parse_builtin(&text).unwrap().is_empty(), "{g}/{r}");
        }
    }

    #[test]
    fn paths_pick_object_or_list_rules() {
        let node = json!({"status": {"nodeInfo": {"bootID": "b-1"}, "images": [1]}});
        assert_eq!(apply("/api/v1/nodes/n1", node.clone()), json!({"status": {"nodeInfo": {"bootID": "xxx"}}}));
        assert_eq!(apply("/api/v1/nodes/n1/status", node.clone()), json!({"status": {"nodeInfo": {"bootID": "xxx"}}}));
        assert_eq!(
            apply("/api/v1/nodes?limit=500", json!({"items": [node], "metadata": {}})),
            json!({"items": [{"status": {"nodeInfo": {"bootID": "xxx"}}}], "metadata": {}})
        );
        assert!(spec_for_path("/api/v1/pods").is_none());
        assert!(spec_for_path("/api/v1/nodes/n1/proxy/x").is_none());
        assert!(spec_for_path("/apis/config.openshift.io/v1/proxies/cluster").is_some());
        assert!(spec_for_path("/apis/machine.openshift.io/v1beta1/namespaces/openshift-machine-api/machines").is_some());
    }

    #[test]
    fn node_labels_keep_product_keys_but_not_regions() {
        let node = json!({"metadata": {
            "labels": {"kubernetes.io/hostname": "m0", "topology.kubernetes.io/region": "eu-west-1", "team": "pay"},
            "annotations": {"machineconfiguration.openshift.io/currentConfig": "rendered-1", "owner": "bob"}
        }});
        let out = apply("/api/v1/nodes/m0", node);
        assert_eq!(out["metadata"]["labels"], json!({"kubernetes.io/hostname": "m0", "topology.kubernetes.io/region": "xxxxxxxxx", "team": "xxx"}));
        assert_eq!(out["metadata"]["annotations"], json!({"machineconfiguration.openshift.io/currentConfig": "rendered-1", "owner": ""}));
    }

    #[test]
    fn proxy_urls_keep_their_shape() {
        let proxy = json!({"spec": {"httpProxy": "http://u:p@10.0.0.1:3128", "noProxy": ".corp,10.0.0.0/8", "readinessEndpoints": ["http://a.b"]}});
        let out = apply("/apis/config.openshift.io/v1/proxies/cluster", proxy);
        assert_eq!(out["spec"], json!({"httpProxy": "xxxx://x:xxxx.x.x.x:xxxx", "noProxy": ".xxxx,xx.x.x.x/x", "readinessEndpoints": ["xxxx://x.x"]}));
    }
}
