//! A fixture cluster with planted values: distinctive strings in every field the Insights
//! Operator anonymizes (and that the host's always-on table covers), plus planted IP
//! addresses and a base domain for networking obfuscation, and values that must survive.
//! Tests write it into a temp dir, serve it with the simulator, gather, and scan every
//! archive record for the planted strings ([`Planted::leaks`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

/// The cluster's base domain (in `dnses.config.openshift.io/cluster` and the ingress domain).
pub const BASE_DOMAIN: &str = "planted-base.example.net";
/// A node's internal IPv4 address.
pub const IPV4: &str = "10.23.45.67";
/// A node's IPv6 address.
pub const IPV6: &str = "fd12:3456:789a::42";

/// What was planted.
#[derive(Debug, Clone, Default)]
pub struct Planted {
    /// (where, value): values IO always anonymizes; none may reach any record.
    pub secrets: Vec<(String, String)>,
    /// (where, value): addresses and the base domain; none may reach any record when
    /// networking obfuscation is on (and they do reach them when it is off).
    pub network: Vec<(String, String)>,
    /// (where, value): values that must survive anonymization.
    pub kept: Vec<(String, String)>,
}

impl Planted {
    /// Every planted value found in `records` (name → bytes), names included, as
    /// `"<where> = <value> in <record>"`. `networking`: whether the network values count too.
    pub fn leaks(&self, records: &BTreeMap<String, Vec<u8>>, networking: bool) -> Vec<String> {
        let mut found = Vec::new();
        let network = self.network.iter().filter(|_| networking);
        for (what, value) in self.secrets.iter().chain(network) {
            for (name, data) in records {
                if name.contains(value.as_str()) || contains(data, value.as_bytes()) {
                    found.push(format!("{what} = {value} in {name}"));
                }
            }
        }
        found
    }

    /// Kept values (or network values, with `network`) found in no record.
    pub fn missing(&self, records: &BTreeMap<String, Vec<u8>>, network: bool) -> Vec<String> {
        let list = if network { &self.network } else { &self.kept };
        list.iter()
            .filter(|(_, v)| !records.values().any(|d| contains(d, v.as_bytes())))
            .map(|(w, v)| format!("{w} = {v}"))
            .collect()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A CRD for `kind` (`plural.group`, served at `version`).
fn crd(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{"name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    })
}

/// Builds the planted cluster's objects, noting each planted value.
struct Builder {
    planted: Planted,
    objects: Vec<Value>,
}

impl Builder {
    /// A secret value for `what`: distinctive, and unchanged by JSON escaping.
    fn secret(&mut self, what: &str) -> String {
        let v = format!("PLANTED-{}-SECRET", what.replace(['/', '.', ' '], "-").to_uppercase());
        self.planted.secrets.push((what.to_owned(), v.clone()));
        v
    }

    /// A secret URL for `what` (user, password, host, all planted).
    fn secret_url(&mut self, what: &str) -> String {
        let host = self.secret(&format!("{what} host"));
        let pass = self.secret(&format!("{what} password"));
        format!("http://user:{pass}@{host}.corp:3128")
    }

    fn kept(&mut self, what: &str, value: &str) -> String {
        self.planted.kept.push((what.to_owned(), value.to_owned()));
        value.to_owned()
    }
}

/// Writes the planted cluster into `dir` (one JSON file per object) and returns what was
/// planted.
pub fn write_cluster(dir: &Path) -> Planted {
    let mut b = Builder { planted: Planted::default(), objects: Vec::new() };
    b.planted.network = vec![
        ("node InternalIP".into(), IPV4.into()),
        ("node IPv6 address".into(), IPV6.into()),
        ("dns spec.baseDomain".into(), BASE_DOMAIN.into()),
    ];
    for (g, v, k, p, ns) in [
        ("config.openshift.io", "v1", "Proxy", "proxies", false),
        ("config.openshift.io", "v1", "ClusterVersion", "clusterversions", false),
        ("config.openshift.io", "v1", "Infrastructure", "infrastructures", false),
        ("config.openshift.io", "v1", "Ingress", "ingresses", false),
        ("config.openshift.io", "v1", "DNS", "dnses", false),
        ("machine.openshift.io", "v1beta1", "Machine", "machines", true),
        ("machine.openshift.io", "v1beta1", "MachineSet", "machinesets", true),
        ("machine.openshift.io", "v1", "ControlPlaneMachineSet", "controlplanemachinesets", true),
        ("machineconfiguration.openshift.io", "v1", "MachineConfig", "machineconfigs", false),
        ("imageregistry.operator.openshift.io", "v1", "Config", "configs", false),
        ("operator.openshift.io", "v1", "Authentication", "authentications", false),
        ("nmstate.io", "v1beta1", "NodeNetworkState", "nodenetworkstates", false),
        ("image.openshift.io", "v1", "ImageStream", "imagestreams", true),
    ] {
        b.objects.push(crd(g, v, k, p, ns));
    }

    let hostname = b.kept("node name / kubernetes.io/hostname label", "planted-master-0");
    let kubelet = b.kept("node kubeletVersion", "v1.27.99+planted");
    let current_config = b.kept("node product annotation", "rendered-master-planted");
    let (boot, uuid, machine_id) = (b.secret("node bootID"), b.secret("node systemUUID"), b.secret("node machineID"));
    let image = b.secret("node status.images");
    let (label, annotation) = (b.secret("node label team"), b.secret("node annotation owner"));
    let region = b.secret("node region label");
    b.objects.push(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": hostname,
            "labels": {"kubernetes.io/hostname": hostname, "node-role.kubernetes.io/master": "", "team": label,
                       "topology.kubernetes.io/region": region},
            "annotations": {"machineconfiguration.openshift.io/currentConfig": current_config, "owner": annotation}},
        "spec": {},
        "status": {
            "nodeInfo": {"bootID": boot, "systemUUID": uuid, "machineID": machine_id, "kubeletVersion": kubelet},
            "images": [{"names": [format!("quay.io/{image}@sha256:0")], "sizeBytes": 1}],
            "addresses": [{"type": "InternalIP", "address": IPV4}, {"type": "InternalIP", "address": IPV6},
                          {"type": "Hostname", "address": hostname}],
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    }));

    let (http, https) = (b.secret_url("proxy spec.httpProxy"), b.secret_url("proxy spec.httpsProxy"));
    let no_proxy = format!(".{},{}", b.secret("proxy noProxy domain"), b.secret("proxy noProxy host"));
    let readiness = b.secret_url("proxy readinessEndpoints");
    let status_http = b.secret_url("proxy status.httpProxy");
    let trusted = b.kept("proxy trustedCA name", "planted-user-ca-bundle");
    b.objects.push(json!({
        "apiVersion": "config.openshift.io/v1", "kind": "Proxy", "metadata": {"name": "cluster"},
        "spec": {"httpProxy": http, "httpsProxy": https, "noProxy": no_proxy, "readinessEndpoints": [readiness],
                 "trustedCA": {"name": trusted}},
        "status": {"httpProxy": status_http, "httpsProxy": "", "noProxy": ""}
    }));

    let upstream = b.secret_url("clusterversion spec.upstream");
    let channel = b.kept("clusterversion channel", "stable-4.99-planted");
    b.objects.push(json!({
        "apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion", "metadata": {"name": "version"},
        "spec": {"clusterID": "00000000-0000-4000-8000-000000000000", "channel": channel, "upstream": upstream},
        "status": {"desired": {"version": "4.99.0"}}
    }));

    let infra_name = b.secret("infrastructureName");
    let (aws_region, gcp_project) = (b.secret("infrastructure aws region"), b.secret("infrastructure gcp projectID"));
    let platform = b.kept("infrastructure platform", "AWS");
    b.objects.push(json!({
        "apiVersion": "config.openshift.io/v1", "kind": "Infrastructure", "metadata": {"name": "cluster"},
        "spec": {},
        "status": {"infrastructureName": infra_name, "platform": platform,
                   "platformStatus": {"type": "AWS", "aws": {"region": aws_region}, "gcp": {"projectID": gcp_project}}}
    }));

    b.objects.push(json!({
        "apiVersion": "config.openshift.io/v1", "kind": "Ingress", "metadata": {"name": "cluster"},
        "spec": {"domain": format!("apps.{BASE_DOMAIN}")}
    }));
    b.objects.push(json!({
        "apiVersion": "config.openshift.io/v1", "kind": "DNS", "metadata": {"name": "cluster"},
        "spec": {"baseDomain": BASE_DOMAIN}
    }));

    let (provider_id, zone, mregion) = (b.secret("machine providerID"), b.secret("machine availabilityZone"), b.secret("machine region"));
    let mlabel = b.secret("machine region label");
    let instance_type = b.kept("machine instanceType", "m5.planted");
    b.objects.push(json!({
        "apiVersion": "machine.openshift.io/v1beta1", "kind": "Machine",
        "metadata": {"name": "planted-machine-0", "namespace": "openshift-machine-api", "labels": {"machine.openshift.io/region": mlabel}},
        "spec": {"providerID": provider_id, "providerSpec": {"value": {"instanceType": instance_type, "placement": {"availabilityZone": zone, "region": mregion}}}},
        "status": {"addresses": [{"type": "InternalIP", "address": IPV4}]}
    }));

    let (project, msregion, mszone, email) =
        (b.secret("machineset projectID"), b.secret("machineset region"), b.secret("machineset zone"), b.secret("machineset serviceAccount email"));
    b.objects.push(json!({
        "apiVersion": "machine.openshift.io/v1beta1", "kind": "MachineSet",
        "metadata": {"name": "planted-worker", "namespace": "openshift-machine-api"},
        "spec": {"replicas": 3, "template": {"spec": {"providerSpec": {"value": {"projectID": project, "region": msregion,
            "placement": {"availabilityZone": mszone, "region": msregion}, "serviceAccounts": [{"email": email, "scopes": ["x"]}]}}}}}
    }));

    let cpms = b.secret("controlplanemachineset template");
    b.objects.push(json!({
        "apiVersion": "machine.openshift.io/v1", "kind": "ControlPlaneMachineSet",
        "metadata": {"name": "cluster", "namespace": "openshift-machine-api"},
        "spec": {"replicas": 3, "state": "Active", "template": {"machines_v1beta1_machine_openshift_io": {"spec": {"providerSpec": {"value": {"zone": cpms}}}}}}
    }));

    let (file, key) = (b.secret("machineconfig file contents"), b.secret("machineconfig ssh key"));
    let mc_name = b.kept("machineconfig name", "99-planted-master-ssh");
    b.objects.push(json!({
        "apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfig",
        "metadata": {"name": mc_name},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
            "storage": {"files": [{"path": "/etc/x", "contents": {"source": format!("data:,{file}")}}]},
            "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [format!("ssh-ed25519 {key}")]}]}}}
    }));

    let pem_body = b.secret("configmap certificate body");
    let cm_kept = b.kept("configmap plain value", "planted-plain-setting");
    b.objects.push(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "planted-ca", "namespace": "openshift-config"},
        "data": {"ca-bundle.crt": format!("-----BEGIN CERTIFICATE-----\n{pem_body}\n-----END CERTIFICATE-----\n"), "setting": cm_kept}
    }));

    let (secret, bucket, key_id, region) =
        (b.secret("imageregistry httpSecret"), b.secret("imageregistry s3 bucket"), b.secret("imageregistry s3 keyID"), b.secret("imageregistry s3 region"));
    let status_bucket = b.secret("imageregistry status s3 bucket");
    let lac = b.secret("imageregistry last-applied-configuration");
    b.objects.push(json!({
        "apiVersion": "imageregistry.operator.openshift.io/v1", "kind": "Config",
        "metadata": {"name": "cluster", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": lac}},
        "spec": {"httpSecret": secret, "managementState": "Managed", "storage": {"s3": {"bucket": bucket, "keyID": key_id, "region": region}}},
        "status": {"storage": {"s3": {"bucket": status_bucket}}}
    }));

    let (idp_url, bind) = (b.secret("identity provider url"), b.secret("identity provider bindDN"));
    b.objects.push(json!({
        "apiVersion": "operator.openshift.io/v1", "kind": "Authentication", "metadata": {"name": "cluster"},
        "spec": {"managementState": "Managed", "observedConfig": {"oauthServer": {"oauthConfig": {"identityProviders": [
            {"name": "ldap", "provider": {"kind": "LDAPPasswordIdentityProvider", "url": idp_url, "bindDN": bind}}]}}}}
    }));

    let (mca, vca) = (b.secret("mutating webhook caBundle"), b.secret("validating webhook caBundle"));
    for (kind, ca) in [("MutatingWebhookConfiguration", mca), ("ValidatingWebhookConfiguration", vca)] {
        b.objects.push(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": format!("planted-{}", kind.to_lowercase())},
            "webhooks": [{"name": "x.planted.io", "clientConfig": {"caBundle": ca, "service": {"name": "s", "namespace": "n"}}}]
        }));
    }

    let mac = b.secret("nodenetworkstate mac-address");
    b.objects.push(json!({
        "apiVersion": "nmstate.io/v1beta1", "kind": "NodeNetworkState", "metadata": {"name": "planted-master-0"},
        "status": {"currentState": {"interfaces": [{"name": "eth0", "mac-address": mac, "state": "up"}]}}
    }));

    let (repo, from, reference) = (b.secret("imagestream dockerImageRepository"), b.secret("imagestream tag from"), b.secret("imagestream dockerImageReference"));
    b.objects.push(json!({
        "apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "planted-is", "namespace": "openshift"},
        "spec": {"dockerImageRepository": repo, "tags": [{"name": "latest", "from": {"kind": "DockerImage", "name": from}}]},
        "status": {"dockerImageRepository": repo, "tags": [{"tag": "latest", "items": [{"dockerImageReference": reference}]}]}
    }));

    std::fs::create_dir_all(dir).unwrap();
    for (i, o) in b.objects.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.json")), serde_json::to_vec_pretty(o).unwrap()).unwrap();
    }
    b.planted
}
