//! Gathers the MachineConfigs in use into `config/machineconfigs/<name>.json`, and how many
//! are not into `aggregated/unused_machine_configs_count.json`, as the Insights Operator's
//! `clusterconfig/machine_configs` does (`gather_machine_configs.go`).
//!
//! In use means named by a pool's `spec.configuration` or `status.configuration`, or by a
//! node's `machineconfiguration.openshift.io/currentConfig` or `desiredConfig` annotation, as
//! in IO, and also listed among those configurations' `source`s: the configs a rendered config
//! was merged from are in use too (IO reads only the rendered names, which leaves out the
//! configs that say why a pool looks as it does).
//! If nothing can be found in use, every config counts as in use (IO's rule). IO's content rules:
//! `spec.config.storage.files` and `spec.config.passwd.users` are nulled (file contents and SSH
//! keys never leave), and the `insights.operator.openshift.io/cr-size` annotation records the
//! object's size before that.

use std::collections::BTreeSet;

use hostapi::guest::{self, List, Result};
use serde_json::{Value, json};

hostapi::gatherer! {
    name: "machineconfigs",
    description: "MachineConfigs in use, files and users removed (config/machineconfigs/<name>.json)",
    reproduces: ["clusterconfig/machine_configs"],
    permissions: [
        "GET /apis/machineconfiguration.openshift.io/v1/machineconfigpools",
        "GET /api/v1/nodes",
        "GET /apis/machineconfiguration.openshift.io/v1/machineconfigs",
        "GET /apis/machineconfiguration.openshift.io/v1/machineconfigs/*",
    ],
    run: gather,
}

const CURRENT: &str = "/metadata/annotations/machineconfiguration.openshift.io~1currentConfig";
const DESIRED: &str = "/metadata/annotations/machineconfiguration.openshift.io~1desiredConfig";

fn gather() -> Result<()> {
    let in_use = in_use()?;
    let mut configs = List::open("/apis/machineconfiguration.openshift.io/v1/machineconfigs", &["/metadata/name"])?;
    let (mut kept, mut unused) = (0u64, 0u64);
    while let Some(page) = configs.next_page()? {
        for mc in page.items() {
            let name = mc["/metadata/name"].as_str().unwrap_or_default();
            if !in_use.is_empty() && !in_use.contains(name) {
                unused += 1;
                continue;
            }
            // The whole object is needed (its size, and fields to null), one at a time.
            if machine_config(name)? {
                kept += 1;
            }
        }
    }
    guest::skip_refused(guest::record_json(
        "aggregated/unused_machine_configs_count.json",
        json!({ "unused_machine_configs_count": unused }),
    ))?;
    guest::log(format!("{kept} machine configs in use, {unused} unused"));
    Ok(())
}

/// Names of the configs the pools and nodes use.
fn in_use() -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let sources: [(&str, &[&str]); 2] = [
        (
            "/apis/machineconfiguration.openshift.io/v1/machineconfigpools",
            &[
                "/spec/configuration/name",
                "/status/configuration/name",
                "/spec/configuration/source/*/name",
                "/status/configuration/source/*/name",
            ],
        ),
        ("/api/v1/nodes", &[CURRENT, DESIRED]),
    ];
    for (path, fields) in sources {
        let mut list = match List::open(path, fields) {
            Ok(l) => l,
            Err(e) => {
                guest::error(format!("machine configs in use: {e}"));
                continue;
            }
        };
        while let Some(page) = list.next_page()? {
            for item in page.items() {
                for f in fields {
                    // A `*` field is an array of names; the others are one name.
                    let values = match &item[*f] {
                        Value::Array(a) => a.iter().collect(),
                        v => vec![v],
                    };
                    names.extend(values.into_iter().filter_map(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned));
                }
            }
        }
    }
    Ok(names)
}

fn machine_config(name: &str) -> Result<bool> {
    if name.is_empty() || name.contains('/') {
        return Ok(false);
    }
    let path = format!("/apis/machineconfiguration.openshift.io/v1/machineconfigs/{name}");
    let resp = guest::get(&path)?;
    if !resp.is_success() {
        let level = if resp.status == 404 { guest::warn } else { guest::error };
        level(format!("GET {path}: HTTP {}: {}", resp.status, resp.status_message().unwrap_or_default()));
        return Ok(false);
    }
    let mut mc: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => {
            guest::error(format!("GET {path}: invalid JSON: {e}"));
            return Ok(false);
        }
    };
    guest::strip_managed_fields(&mut mc);
    redact(&mut mc);
    guest::skip_refused(guest::record_json(&format!("config/machineconfigs/{name}.json"), mc))
}

/// IO's content rule: note the size, then null the file list and the users.
fn redact(mc: &mut Value) {
    let size = serde_json::to_vec(mc).map_or(0, |v| v.len());
    if let Some(meta) = mc.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = annotations.as_object_mut() {
            a.insert("insights.operator.openshift.io/cr-size".into(), json!(size.to_string()));
        }
    }
    for (parent, key) in [("/spec/config/storage", "files"), ("/spec/config/passwd", "users")] {
        if let Some(obj) = mc.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.insert(key.into(), Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_users_are_nulled_and_the_size_noted() {
        let mut mc = json!({
            "metadata": {"name": "99-worker-ssh"},
            "spec": {"config": {"passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-rsa AAAA"]}]},
                                 "storage": {"files": [{"path": "/etc/x", "contents": {"source": "data:,secret"}}]}}}
        });
        let before = serde_json::to_vec(&mc).unwrap().len();
        redact(&mut mc);
        assert_eq!(mc["spec"]["config"]["passwd"]["users"], Value::Null);
        assert_eq!(mc["spec"]["config"]["storage"]["files"], Value::Null);
        assert_eq!(mc["metadata"]["annotations"]["insights.operator.openshift.io/cr-size"], before.to_string());
        assert!(!serde_json::to_string(&mc).unwrap().contains("ssh-rsa"));
    }
}
