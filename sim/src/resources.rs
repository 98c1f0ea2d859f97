//! Resource types the simulator serves: the built-in Kubernetes kinds plus whatever the
//! fixtures declare through CustomResourceDefinitions, as a real API server would.

use serde_json::Value;

/// One served resource: what discovery advertises and what a URL path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group (`/api/v1`).
    pub group: String,
    /// API version within the group, for example `v1`.
    pub version: String,
    /// Lower-case plural used in URLs (`clusteroperators`).
    pub plural: String,
    /// Lower-case singular (`clusteroperator`).
    pub singular: String,
    /// Object kind (`ClusterOperator`).
    pub kind: String,
    /// List kind (`ClusterOperatorList`).
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names kubectl accepts (`co`).
    pub short_names: Vec<String>,
    /// Categories (`all`), used by `kubectl get all`.
    pub categories: Vec<String>,
}

impl ResourceType {
    /// `v1` for core, `group/version` otherwise: the objects' `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The URL prefix for this group/version (`/api/v1` or `/apis/g/v`).
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    fn builtin(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        short_names: &[&str],
    ) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            namespaced,
            short_names: short_names.iter().map(|s| s.to_string()).collect(),
            categories: Vec::new(),
        }
    }

    /// Builds the resource types a CustomResourceDefinition declares (one per served version).
    pub fn from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
        let spec = crd.get("spec").ok_or("CRD has no spec")?;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let group = s(spec.get("group")).ok_or("CRD has no spec.group")?;
        let names = spec.get("names").ok_or("CRD has no spec.names")?;
        let plural = s(names.get("plural")).ok_or("CRD has no spec.names.plural")?;
        let kind = s(names.get("kind")).ok_or("CRD has no spec.names.kind")?;
        let singular = s(names.get("singular")).unwrap_or_else(|| kind.to_ascii_lowercase());
        let list_kind = s(names.get("listKind")).unwrap_or_else(|| format!("{kind}List"));
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let short_names = strings(names.get("shortNames"));
        let categories = strings(names.get("categories"));
        let namespaced = match s(spec.get("scope")).as_deref() {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            other => return Err(format!("CRD spec.scope must be Cluster or Namespaced, got {other:?}")),
        };
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .ok_or("CRD has no spec.versions")?;
        let mut out = Vec::new();
        for v in versions {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let version = s(v.get("name")).ok_or("CRD version has no name")?;
            out.push(ResourceType {
                group: group.clone(),
                version,
                plural: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                namespaced,
                short_names: short_names.clone(),
                categories: categories.clone(),
            });
        }
        if out.is_empty() {
            return Err("CRD serves no version".into());
        }
        Ok(out)
    }

    /// A best guess for a kind nobody declared: lower-case plural, scope from the object.
    pub fn guess(group: &str, version: &str, kind: &str, namespaced: bool) -> Self {
        let lower = kind.to_ascii_lowercase();
        let plural = if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") {
            format!("{lower}es")
        } else if let Some(stem) = lower.strip_suffix('y') {
            if stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
                format!("{lower}s")
            } else {
                format!("{stem}ies")
            }
        } else {
            format!("{lower}s")
        };
        ResourceType::builtin(group, version, kind, &plural, namespaced, &[])
    }
}

/// The built-in Kubernetes resources every API server serves, whether or not fixtures hold any.
pub fn builtins() -> Vec<ResourceType> {
    let b = ResourceType::builtin;
    let mut v = vec![
        b("", "v1", "Namespace", "namespaces", false, &["ns"]),
        b("", "v1", "Node", "nodes", false, &["no"]),
        b("", "v1", "PersistentVolume", "persistentvolumes", false, &["pv"]),
        b("", "v1", "Pod", "pods", true, &["po"]),
        b("", "v1", "ConfigMap", "configmaps", true, &["cm"]),
        b("", "v1", "Secret", "secrets", true, &[]),
        b("", "v1", "Service", "services", true, &["svc"]),
        b("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"]),
        b("", "v1", "Endpoints", "endpoints", true, &["ep"]),
        b("", "v1", "Event", "events", true, &["ev"]),
        b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"]),
        b("", "v1", "ReplicationController", "replicationcontrollers", true, &["rc"]),
        b("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"]),
        b("", "v1", "LimitRange", "limitranges", true, &["limits"]),
        b("apps", "v1", "Deployment", "deployments", true, &["deploy"]),
        b("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"]),
        b("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"]),
        b("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"]),
        b("apps", "v1", "ControllerRevision", "controllerrevisions", true, &[]),
        b("batch", "v1", "Job", "jobs", true, &[]),
        b("batch", "v1", "CronJob", "cronjobs", true, &["cj"]),
        b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[]),
        b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[]),
        b("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[]),
        b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[]),
        b("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"]),
        b("storage.k8s.io", "v1", "CSIDriver", "csidrivers", false, &[]),
        b("storage.k8s.io", "v1", "CSINode", "csinodes", false, &[]),
        b("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", false, &[]),
        b("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, &["crd", "crds"]),
        b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"]),
        b("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"]),
        b("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, &[]),
        b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"]),
        b("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false, &[]),
        b("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false, &[]),
        b("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", false, &["csr"]),
        b("coordination.k8s.io", "v1", "Lease", "leases", true, &[]),
    ];
    for rt in &mut v {
        if matches!(
            rt.plural.as_str(),
            "pods" | "services" | "deployments" | "daemonsets" | "replicasets" | "statefulsets"
                | "jobs" | "cronjobs" | "replicationcontrollers"
        ) {
            rt.categories = vec!["all".into()];
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_english_plurals() {
        assert_eq!(ResourceType::guess("g", "v1", "Proxy", false).plural, "proxies");
        assert_eq!(ResourceType::guess("g", "v1", "Ingress", false).plural, "ingresses");
        assert_eq!(ResourceType::guess("g", "v1", "Gateway", false).plural, "gateways");
        assert_eq!(ResourceType::guess("g", "v1", "Node", false).plural, "nodes");
    }

    #[test]
    fn crd_declares_short_names_and_scope() {
        let crd = serde_json::json!({
            "spec": {"group": "config.openshift.io", "scope": "Cluster",
                     "names": {"plural": "clusteroperators", "kind": "ClusterOperator", "shortNames": ["co"]},
                     "versions": [{"name": "v1", "served": true}, {"name": "v0", "served": false}]}
        });
        let rts = ResourceType::from_crd(&crd).unwrap();
        assert_eq!(rts.len(), 1);
        assert_eq!(rts[0].short_names, vec!["co"]);
        assert!(!rts[0].namespaced);
        assert_eq!(rts[0].list_kind, "ClusterOperatorList");
        assert_eq!(rts[0].api_version(), "config.openshift.io/v1");
        assert!(ResourceType::from_crd(&serde_json::json!({"spec": {}})).is_err());
    }
}
