//! Gathers the image registry's operator config and image pruner, both named `cluster`, into
//! `config/clusteroperator/imageregistry.operator.openshift.io/{config,imagepruner}/cluster.json`,
//! as the Insights Operator's `clusterconfig/image_registries` and `clusterconfig/image_pruners`
//! do (`gather_cluster_image_registries.go`, `gather_image_pruners.go`). When the registry is
//! backed by a PVC, its PersistentVolume goes to `config/persistentvolumes/<name>.json`.
//!
//! IO's rule: the HTTP secret and every storage backend's bucket, key, region, account and
//! tenant fields are x-ed out, in `spec` and `status`.

use hostapi::guest::{self, List, Result};
use serde_json::Value;

hostapi::gatherer! {
    name: "imageregistry",
    description: "Image registry config and pruner (config/clusteroperator/imageregistry.operator.openshift.io/...)",
    reproduces: ["clusterconfig/image_registries", "clusterconfig/image_pruners"],
    permissions: [
        "GET /apis/imageregistry.operator.openshift.io/v1/configs/cluster",
        "GET /apis/imageregistry.operator.openshift.io/v1/imagepruners/cluster",
        "GET /api/v1/persistentvolumeclaims",
        "GET /api/v1/persistentvolumes/*",
    ],
    run: gather,
}

/// Per storage backend, the fields IO x-es out.
const STORAGE_SECRETS: &[(&str, &[&str])] = &[
    ("s3", &["bucket", "keyID", "regionEndpoint", "region"]),
    ("gcs", &["bucket", "keyID", "projectID", "region"]),
    ("azure", &["accountName", "container", "cloudName"]),
    ("swift", &["authURL", "container", "domain", "domainID", "tenant", "tenantID", "regionName"]),
    ("ibmcos", &["bucket", "resourceKeyCRN", "serviceInstanceCRN", "resourceGroupName", "location"]),
];

fn gather() -> Result<()> {
    const BASE: &str = "/apis/imageregistry.operator.openshift.io/v1";
    if let Some(mut config) = get_object(&format!("{BASE}/configs/cluster"))? {
        if let Some(claim) = config.pointer("/spec/storage/pvc/claim").and_then(Value::as_str).map(str::to_owned) {
            persistent_volume(&claim)?;
        }
        anonymize(&mut config);
        guest::skip_refused(guest::record_json("config/clusteroperator/imageregistry.operator.openshift.io/config/cluster.json", config))?;
    }
    if let Some(pruner) = get_object(&format!("{BASE}/imagepruners/cluster"))? {
        guest::skip_refused(guest::record_json(
            "config/clusteroperator/imageregistry.operator.openshift.io/imagepruner/cluster.json",
            pruner,
        ))?;
    }
    Ok(())
}

/// The object at `path`; `None` (with a warning or error in the report) if it cannot be had.
fn get_object(path: &str) -> Result<Option<Value>> {
    let resp = guest::get(path)?;
    if resp.status == 404 {
        guest::warn(format!("{path} not found"));
        return Ok(None);
    }
    if !resp.is_success() {
        guest::error(format!("GET {path}: HTTP {}: {}", resp.status, resp.status_message().unwrap_or_default()));
        return Ok(None);
    }
    match serde_json::from_slice(&resp.body) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            guest::error(format!("GET {path}: invalid JSON: {e}"));
            Ok(None)
        }
    }
}

/// IO finds the claim by name in any namespace, then records the volume bound to it. The
/// claims are read as a projection (name and volume), so a cluster with many stays cheap.
fn persistent_volume(claim: &str) -> Result<()> {
    let mut claims = List::open("/api/v1/persistentvolumeclaims", &["/metadata/name", "/spec/volumeName"])?;
    let mut volume = None;
    while let Some(page) = claims.next_page()? {
        if let Some(c) = page.items().find(|c| c["/metadata/name"].as_str() == Some(claim)) {
            volume = c["/spec/volumeName"].as_str().map(str::to_owned);
            break;
        }
    }
    let Some(volume) = volume.filter(|v| !v.is_empty() && !v.contains('/')) else {
        guest::warn(format!("no bound PersistentVolumeClaim named {claim:?}"));
        return Ok(());
    };
    if let Some(pv) = get_object(&format!("/api/v1/persistentvolumes/{volume}"))? {
        guest::skip_refused(guest::record_json(&format!("config/persistentvolumes/{volume}.json"), pv))?;
    }
    Ok(())
}

fn anonymize(config: &mut Value) {
    if let Some(Value::String(s)) = config.pointer_mut("/spec/httpSecret") {
        *s = "x".repeat(s.len());
    }
    for part in ["spec", "status"] {
        for (backend, fields) in STORAGE_SECRETS {
            let Some(storage) = config.pointer_mut(&format!("/{part}/storage/{backend}")).and_then(Value::as_object_mut) else {
                continue;
            };
            for field in *fields {
                if let Some(Value::String(s)) = storage.get_mut(*field) {
                    *s = "x".repeat(s.len());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn storage_secrets_are_xed_out_in_spec_and_status() {
        let mut c = json!({
            "spec": {"httpSecret": "s3cr3t", "storage": {"s3": {"bucket": "my-bucket", "region": "us-east-1", "encrypt": true}}},
            "status": {"storage": {"azure": {"accountName": "acct", "container": "c1"}}}
        });
        anonymize(&mut c);
        assert_eq!(c["spec"]["httpSecret"], "xxxxxx");
        assert_eq!(c["spec"]["storage"]["s3"]["bucket"], "xxxxxxxxx");
        assert_eq!(c["spec"]["storage"]["s3"]["region"], "xxxxxxxxx");
        assert_eq!(c["spec"]["storage"]["s3"]["encrypt"], true);
        assert_eq!(c["status"]["storage"]["azure"]["accountName"], "xxxx");
    }
}
