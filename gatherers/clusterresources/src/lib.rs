//! Gathers the cluster resources the Insights Operator copies one record per object, each
//! under IO's record path and content rule. One table row per IO function; a kind that is not
//! installed (404) is a warning and the other rows go on.
//!
//! IO sources (`pkg/gatherers/clusterconfig/`): `gather_container_runtime_configs.go`,
//! `gather_kubeletconfig.go`, `gather_schedulers.go`, `gather_storageclass.go`,
//! `gather_storage_cluster.go`, `gather_ceph_cluster.go`, `gather_jaeger_cr.go`,
//! `gather_openshift_logging.go`, `gather_opentelemetry_collectors.go`,
//! `gather_subscription.go`, `gather_cost_management_metrics_configs.go`,
//! `gather_cluster_roles.go`, `gather_openstack_*.go`.

use hostapi::guest::{self, Result};
use hostapi::objects::{self, remove};
use serde_json::Value;

hostapi::gatherer! {
    name: "clusterresources",
    description: "Cluster resources IO copies one record per object (runtime/kubelet configs, schedulers, storage, OLM subscriptions, ...)",
    reproduces: [
        "clusterconfig/container_runtime_configs",
        "clusterconfig/kubeletconfigs",
        "clusterconfig/schedulers",
        "clusterconfig/storage_classes",
        "clusterconfig/storage_cluster",
        "clusterconfig/ceph_cluster",
        "clusterconfig/jaegers",
        "clusterconfig/openshift_logging",
        "clusterconfig/opentelemetry_collectors",
        "clusterconfig/subscriptions",
        "clusterconfig/cost_management_metrics_configs",
        "clusterconfig/clusterroles",
        "clusterconfig/openstack_controlplanes",
        "clusterconfig/openstack_version",
        "clusterconfig/openstack_dataplanedeployments",
        "clusterconfig/openstack_dataplanenodesets",
    ],
    permissions: [
        "GET /apis/machineconfiguration.openshift.io/v1/containerruntimeconfigs",
        "GET /apis/machineconfiguration.openshift.io/v1/kubeletconfigs",
        "GET /apis/config.openshift.io/v1/schedulers",
        "GET /apis/storage.k8s.io/v1/storageclasses",
        "GET /apis/ocs.openshift.io/v1/storageclusters",
        "GET /apis/ceph.rook.io/v1/cephclusters",
        "GET /apis/jaegertracing.io/v1/jaegers",
        "GET /apis/logging.openshift.io/v1/clusterloggings",
        "GET /apis/opentelemetry.io/v1beta1/opentelemetrycollectors",
        "GET /apis/operators.coreos.com/v1alpha1/subscriptions",
        "GET /apis/costmanagement-metrics-cfg.openshift.io/v1beta1/costmanagementmetricsconfigs",
        "GET /apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
        "GET /apis/rbac.authorization.k8s.io/v1/clusterroles/edit",
        "GET /apis/core.openstack.org/v1beta1/openstackcontrolplanes",
        "GET /apis/core.openstack.org/v1beta1/openstackversions",
        "GET /apis/dataplane.openstack.org/v1beta1/openstackdataplanedeployments",
        "GET /apis/dataplane.openstack.org/v1beta1/openstackdataplanenodesets",
    ],
    run: gather,
}

/// How a row's objects become records.
enum Rule {
    /// The host writes each object as it is, named by the template.
    AsIs(&'static str),
    /// The object is edited in the module first; the record name is built from the prefix
    /// (`<prefix>/<namespace>/<name>.json` or `<prefix>/<name>.json`), at most `limit` objects.
    Edited { prefix: Prefix, edit: fn(&mut Value), limit: usize },
}

/// Where a record goes: `{ns}` in the prefix is the object's namespace.
#[derive(Clone, Copy)]
struct Prefix(&'static str);

impl Prefix {
    fn name(self, o: &Value) -> Option<String> {
        let (ns, name) = (guest::namespace_of(o), guest::name_of(o));
        if name.is_empty() || (self.0.contains("{ns}") && ns.is_empty()) {
            return None;
        }
        Some(format!("{}/{name}.json", self.0.replace("{ns}", ns)))
    }
}

const ROWS: &[(&str, Rule)] = &[
    ("/apis/machineconfiguration.openshift.io/v1/containerruntimeconfigs", Rule::AsIs("config/containerruntimeconfigs/{name}.json")),
    ("/apis/machineconfiguration.openshift.io/v1/kubeletconfigs", Rule::AsIs("config/kubeletconfigs/{name}.json")),
    ("/apis/config.openshift.io/v1/schedulers", Rule::AsIs("config/schedulers/{name}.json")),
    ("/apis/storage.k8s.io/v1/storageclasses", Rule::AsIs("config/storage/storageclasses/{name}.json")),
    ("/apis/ocs.openshift.io/v1/storageclusters", Rule::AsIs("config/storage/{namespace}/storageclusters/{name}.json")),
    (
        "/apis/ceph.rook.io/v1/cephclusters",
        Rule::Edited { prefix: Prefix("config/storage/{ns}/cephclusters"), edit: status_only, limit: usize::MAX },
    ),
    ("/apis/jaegertracing.io/v1/jaegers", Rule::Edited { prefix: Prefix("config/jaegertracing.io"), edit: keep, limit: 5 }),
    ("/apis/logging.openshift.io/v1/clusterloggings", Rule::AsIs("config/logging/{namespace}/{name}.json")),
    (
        "/apis/opentelemetry.io/v1beta1/opentelemetrycollectors",
        Rule::Edited { prefix: Prefix("config/opentelemetry/{ns}"), edit: collector, limit: 5 },
    ),
    (
        "/apis/operators.coreos.com/v1alpha1/subscriptions",
        Rule::Edited { prefix: Prefix("config/subscriptions/{ns}"), edit: no_status, limit: usize::MAX },
    ),
    (
        "/apis/costmanagement-metrics-cfg.openshift.io/v1beta1/costmanagementmetricsconfigs",
        Rule::AsIs("config/cost_management_metrics_configs/{name}.json"),
    ),
    (
        "/apis/core.openstack.org/v1beta1/openstackcontrolplanes",
        Rule::Edited { prefix: Prefix("namespaces/{ns}/core.openstack.org/openstackcontrolplanes"), edit: control_plane, limit: usize::MAX },
    ),
    ("/apis/core.openstack.org/v1beta1/openstackversions", Rule::AsIs("namespaces/{namespace}/core.openstack.org/openstackversions/{name}.json")),
    (
        "/apis/dataplane.openstack.org/v1beta1/openstackdataplanedeployments",
        Rule::Edited {
            prefix: Prefix("namespaces/{ns}/dataplane.openstack.org/openstackdataplanedeployments"),
            edit: no_last_applied,
            limit: usize::MAX,
        },
    ),
    (
        "/apis/dataplane.openstack.org/v1beta1/openstackdataplanenodesets",
        Rule::Edited {
            prefix: Prefix("namespaces/{ns}/dataplane.openstack.org/openstackdataplanenodesets"),
            edit: no_last_applied,
            limit: usize::MAX,
        },
    ),
];

/// IO reads these two ClusterRoles by name, through a typed client: no kind or apiVersion.
const CLUSTER_ROLES: [&str; 2] = ["admin", "edit"];

fn keep(_: &mut Value) {}

fn status_only(o: &mut Value) {
    *o = o.get("status").cloned().unwrap_or(Value::Null);
}

fn no_status(o: &mut Value) {
    remove(o, "/status");
}

/// IO keeps only the `service` part of a collector's config: the rest can hold endpoints
/// and credentials.
fn collector(o: &mut Value) {
    if let Some(config) = o.pointer_mut("/spec/config").and_then(Value::as_object_mut) {
        let service = config.remove("service");
        config.clear();
        if let Some(service) = service {
            config.insert("service".into(), service);
        }
    }
}

fn no_last_applied(o: &mut Value) {
    remove(o, "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration");
}

fn control_plane(o: &mut Value) {
    no_last_applied(o);
    if let Some(Value::Object(template)) = o.pointer_mut("/spec/dns/template")
        && template.contains_key("options")
    {
        template.insert("options".into(), Value::String("xxx".into()));
    }
}

fn gather() -> Result<()> {
    let mut total = 0;
    for (path, rule) in ROWS {
        total += match rule {
            Rule::AsIs(template) => objects::emit_each(path, template)?,
            Rule::Edited { prefix, edit, limit } => {
                let seen = std::cell::Cell::new(0usize);
                let name = |o: &Value| {
                    seen.set(seen.get() + 1);
                    (seen.get() <= *limit).then(|| prefix.name(o)).flatten()
                };
                let n = objects::record_each(path, name, edit)?;
                if seen.get() > *limit {
                    guest::error(format!("{path}: {} objects, only the first {limit} gathered (IO's limit)", seen.get()));
                }
                n
            }
        };
    }
    for role in CLUSTER_ROLES {
        let path = format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}");
        if let Some(mut object) = objects::get_object(&path)? {
            guest::strip_managed_fields(&mut object);
            if let Some(map) = object.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            let record = format!("cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles/{role}.json");
            if guest::skip_refused(guest::record_json(&record, object))? {
                total += 1;
            }
        }
    }
    guest::log(format!("{total} objects"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_rules() {
        let mut c = json!({"status": {"phase": "Ready"}, "spec": {"x": 1}});
        status_only(&mut c);
        assert_eq!(c, json!({"phase": "Ready"}));
        let mut o = json!({"spec": {"config": {"receivers": {"otlp": {"endpoint": "10.0.0.1:4317"}}, "service": {"pipelines": {}}}}});
        collector(&mut o);
        assert_eq!(o["spec"]["config"], json!({"service": {"pipelines": {}}}));
        let mut p = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "a": "b"}},
            "spec": {"dns": {"template": {"options": [{"key": "server", "values": ["192.168.122.1"]}]}}}});
        control_plane(&mut p);
        assert_eq!(p["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(p["spec"]["dns"]["template"]["options"], "xxx");
        assert_eq!(Prefix("config/opentelemetry/{ns}").name(&json!({"metadata": {"name": "otel"}})), None);
        assert_eq!(
            Prefix("config/opentelemetry/{ns}").name(&json!({"metadata": {"name": "otel", "namespace": "n"}})).unwrap(),
            "config/opentelemetry/n/otel.json"
        );
    }
}
