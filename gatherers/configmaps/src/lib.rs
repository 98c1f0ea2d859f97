//! Gathers config maps as the Insights Operator's `clusterconfig/config_maps` does
//! (`gather_config_maps.go`, `cluster_config_v1_config_map.go`):
//! - every key of every config map in `openshift-config` → `config/configmaps/openshift-config/<name>/<key>`,
//!   with each PEM block's body replaced by `ANONYMIZED`;
//! - `openshift-monitoring/cluster-monitoring-config` and `openshift-network-operator/gateway-mode-config`:
//!   each key's YAML as JSON → `…/<name>/<key without .yaml>.json`;
//! - `openshift-insights/insights-config`: its `config.yaml` as JSON, proxy settings x-ed out;
//! - `kube-system/cluster-config-v1`: the install config, with SSH key, pull secret, base domain,
//!   regions and platform credentials x-ed out, as YAML.
//!
//! Better than IO on one point: IO keeps a value verbatim when anything but PEM follows its
//! first block; here every PEM block is replaced wherever it sits.

use hostapi::guest::{self, Result};
use hostapi::objects::{self, x_out};
use serde_json::Value;

hostapi::gatherer! {
    name: "configmaps",
    description: "Config maps IO reads, certificates and credentials anonymized (config/configmaps/...)",
    reproduces: ["clusterconfig/config_maps"],
    permissions: [
        "GET /api/v1/namespaces/openshift-config/configmaps",
        "GET /api/v1/namespaces/openshift-monitoring/configmaps/cluster-monitoring-config",
        "GET /api/v1/namespaces/openshift-network-operator/configmaps/gateway-mode-config",
        "GET /api/v1/namespaces/openshift-insights/configmaps/insights-config",
        "GET /api/v1/namespaces/kube-system/configmaps/cluster-config-v1",
    ],
    run: gather,
}

const PEM_BEGIN: &str = "-----BEGIN ";
const PEM_END: &str = "-----END ";
const ANONYMIZED_BLOCK: &str = "-----BEGIN CERTIFICATE-----\nANONYMIZED\n-----END CERTIFICATE-----\n";

/// Every PEM block (BEGIN line to END line) becomes IO's anonymized block; text outside
/// blocks stays. A value with no complete block is returned as it is.
fn anonymize_pem(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(4096));
    let mut rest = value;
    while let Some(begin) = rest.find(PEM_BEGIN) {
        let Some(end_rel) = rest[begin..].find(PEM_END) else { break };
        let end_line = begin + end_rel;
        // The END line runs to its newline (or the end of the value).
        let after = rest[end_line..].find('\n').map_or(rest.len(), |n| end_line + n + 1);
        let before = &rest[..begin];
        // IO writes blocks back to back: whitespace between blocks is not kept.
        if !before.trim().is_empty() {
            out.push_str(before);
        }
        out.push_str(ANONYMIZED_BLOCK);
        rest = &rest[after..];
    }
    if out.is_empty() {
        return value.to_owned();
    }
    if !rest.trim().is_empty() {
        out.push_str(rest);
    }
    out
}

fn gather() -> Result<()> {
    let mut records = 0;
    for cm in config_maps("/api/v1/namespaces/openshift-config/configmaps")? {
        let name = guest::name_of(&cm);
        for (section, binary) in [("data", false), ("binaryData", true)] {
            for (key, value) in cm.get(section).and_then(Value::as_object).into_iter().flatten() {
                let Some(value) = value.as_str() else { continue };
                // binaryData is base64 already; IO anonymizes the decoded bytes, which for
                // binary data never parse as PEM, so the value goes as it is.
                let data = if binary { value.to_owned() } else { anonymize_pem(value) };
                records += record(&format!("config/configmaps/openshift-config/{name}/{key}"), data.as_bytes())?;
            }
        }
    }
    for (namespace, name) in [("openshift-monitoring", "cluster-monitoring-config"), ("openshift-network-operator", "gateway-mode-config")] {
        let Some(cm) = objects::get_object(&format!("/api/v1/namespaces/{namespace}/configmaps/{name}"))? else { continue };
        for (key, value) in cm.get("data").and_then(Value::as_object).into_iter().flatten() {
            let Some(yaml) = value.as_str() else { continue };
            match yaml_to_json(yaml) {
                Ok(json) => {
                    let key = key.strip_suffix(".yaml").unwrap_or(key);
                    records += record(&format!("config/configmaps/{namespace}/{name}/{key}.json"), &json)?;
                }
                Err(e) => guest::error(format!("{namespace}/{name} key {key}: not YAML: {e}")),
            }
        }
    }
    records += insights_config()?;
    records += install_config()?;
    guest::log(format!("{records} config map records"));
    Ok(())
}

fn config_maps(path: &str) -> Result<Vec<Value>> {
    // A missing namespace or a denial is reported by `record_each`'s sibling; here the list
    // is small and needed whole.
    Ok(match guest::list_all(path) {
        Ok(items) => items,
        Err(guest::Error::Status { status, message, .. }) => {
            let what = if status == 403 { objects::needed_permission(path) } else { path.to_owned() };
            let report = if status == 404 { guest::warn } else { guest::error };
            report(format!("config maps: HTTP {status} for {what}: {message}"));
            Vec::new()
        }
        Err(e) => return Err(e),
    })
}

/// Records raw bytes; 1 if accepted, 0 if refused (reported by the host).
fn record(name: &str, data: &[u8]) -> Result<u64> {
    Ok(u64::from(guest::skip_refused(guest::record(name, data))?))
}

fn yaml_to_json(yaml: &str) -> std::result::Result<Vec<u8>, String> {
    let value: Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

fn insights_config() -> Result<u64> {
    let Some(cm) = objects::get_object("/api/v1/namespaces/openshift-insights/configmaps/insights-config")? else {
        return Ok(0);
    };
    let Some(yaml) = cm.pointer("/data/config.yaml").and_then(Value::as_str) else { return Ok(0) };
    let mut config: Value = match serde_norway::from_str(yaml) {
        Ok(v) => v,
        Err(e) => {
            guest::error(format!("openshift-insights/insights-config: config.yaml is not YAML: {e}"));
            return Ok(0);
        }
    };
    for field in ["httpProxy", "httpsProxy", "noProxy"] {
        x_out(&mut config, &format!("/proxy/{field}"));
    }
    record("config/configmaps/openshift-insights/insights-config/config.json", &serde_json::to_vec(&config).unwrap_or_default())
}

/// IO's `anonymizeInstallConfig`: credentials, the base domain and the platforms' locations.
fn anonymize_install_config(c: &mut Value) {
    for p in [
        "/sshKey",
        "/pullSecret",
        "/baseDomain",
        "/platform/aws/region",
        "/platform/azure/region",
        "/platform/openstack/cloud",
        "/platform/gcp/projectID",
        "/platform/gcp/region",
        "/platform/vsphere/vCenter",
        "/platform/vsphere/username",
        "/platform/vsphere/password",
        "/platform/vsphere/datacenter",
        "/platform/vsphere/defaultDatastore",
    ] {
        x_out(c, p);
    }
    if let Some(hosts) = c.pointer_mut("/platform/baremetal/hosts").and_then(Value::as_array_mut) {
        for host in hosts {
            for p in ["/bmc/username", "/bmc/password", "/bmc/address"] {
                x_out(host, p);
            }
        }
    }
    if let Some(vcenters) = c.pointer_mut("/platform/vsphere/vcenters").and_then(Value::as_array_mut) {
        for v in vcenters {
            for p in ["/server", "/user", "/password"] {
                x_out(v, p);
            }
        }
    }
    // Fencing credentials of control-plane, arbiter and compute pools.
    let pools: Vec<&mut Value> = match c.as_object_mut() {
        Some(map) => map
            .iter_mut()
            .flat_map(|(k, v)| match k.as_str() {
                "controlPlane" | "arbiter" => vec![v],
                "compute" => v.as_array_mut().map(|a| a.iter_mut().collect()).unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect(),
        None => Vec::new(),
    };
    for pool in pools {
        if let Some(creds) = pool.pointer_mut("/fencing/credentials").and_then(Value::as_array_mut) {
            for cred in creds {
                for p in ["/username", "/password", "/address"] {
                    x_out(cred, p);
                }
            }
        }
    }
}

fn install_config() -> Result<u64> {
    let Some(cm) = objects::get_object("/api/v1/namespaces/kube-system/configmaps/cluster-config-v1")? else {
        return Ok(0);
    };
    let Some(yaml) = cm.pointer("/data/install-config").and_then(Value::as_str) else { return Ok(0) };
    let mut config: Value = match serde_norway::from_str(yaml) {
        Ok(v) => v,
        Err(e) => {
            guest::error(format!("kube-system/cluster-config-v1: install-config is not YAML: {e}"));
            return Ok(0);
        }
    };
    anonymize_install_config(&mut config);
    let Ok(yaml) = serde_norway::to_string(&config) else {
        guest::error("kube-system/cluster-config-v1: install-config could not be written back as YAML");
        return Ok(0);
    };
    record("config/configmaps/kube-system/cluster-config-v1/install-config", anonymize_pem(&yaml).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

    #[test]
    fn pem_blocks_are_anonymized_wherever_they_are() {
        assert_eq!(anonymize_pem(&format!("{CERT}{CERT}")), format!("{ANONYMIZED_BLOCK}{ANONYMIZED_BLOCK}"));
        assert_eq!(anonymize_pem("plain value"), "plain value");
        let mixed = anonymize_pem(&format!("# bundle\n{CERT}trailing note\n"));
        assert!(!mixed.contains("MIIB") && mixed.contains("trailing note") && mixed.contains("ANONYMIZED"));
        let key = anonymize_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----");
        assert!(!key.contains("AAAA"));
        // An unterminated block has no END line to anchor on: the value is not PEM.
        assert_eq!(anonymize_pem("-----BEGIN CERTIFICATE-----\nAAAA"), "-----BEGIN CERTIFICATE-----\nAAAA");
    }

    #[test]
    fn install_config_secrets_are_xed_out() {
        let mut c = json!({
            "baseDomain": "lab.example-dev.com", "sshKey": "ssh-rsa AAAA", "pullSecret": "{\"auths\":{}}",
            "platform": {"aws": {"region": "us-east-2"}, "baremetal": {"hosts": [{"bmc": {"username": "root", "password": "pw", "address": "ipmi://10.0.0.1"}}]}},
            "controlPlane": {"name": "master", "fencing": {"credentials": [{"username": "u", "password": "p", "address": "redfish://h"}]}},
            "compute": [{"name": "worker", "replicas": 3}]
        });
        anonymize_install_config(&mut c);
        let s = c.to_string();
        for secret in ["lab.example-dev.com", "ssh-rsa", "auths", "us-east-2", "root", "ipmi://", "redfish://"] {
            assert!(!s.contains(secret), "{secret} left in {s}");
        }
        assert_eq!(c["baseDomain"], "x".repeat(19));
        assert_eq!(c["compute"][0]["replicas"], 3);
    }

    #[test]
    fn yaml_becomes_json() {
        assert_eq!(yaml_to_json("enableUserWorkload: true\nprometheusK8s:\n  retention: 24h\n").unwrap(), br#"{"enableUserWorkload":true,"prometheusK8s":{"retention":"24h"}}"#);
        assert_eq!(yaml_to_json("local").unwrap(), br#""local""#);
        assert!(yaml_to_json("a: [").is_err());
    }
}
