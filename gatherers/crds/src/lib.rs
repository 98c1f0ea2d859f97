//! Gathers the two CustomResourceDefinitions the Insights Operator reads,
//! `volumesnapshots` and `volumesnapshotcontents` of `snapshot.storage.k8s.io`, into
//! `config/crd/<name>.json` (IO: `clusterconfig/crds`, `gather_custom_resource_definitions.go`).
//! A missing one is skipped quietly, as in IO.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "crds",
    description: "VolumeSnapshot CRDs (config/crd/<name>.json)",
    reproduces: ["clusterconfig/crds"],
    permissions: [
        "GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/volumesnapshots.snapshot.storage.k8s.io",
        "GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/volumesnapshotcontents.snapshot.storage.k8s.io",
    ],
    run: gather,
}

const CRDS: [&str; 2] = ["volumesnapshots.snapshot.storage.k8s.io", "volumesnapshotcontents.snapshot.storage.k8s.io"];

fn gather() -> Result<()> {
    for name in CRDS {
        let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
        let resp = guest::get(&path)?;
        if resp.status == 404 {
            guest::debug(format!("CRD {name} not found"));
            continue;
        }
        if !resp.is_success() {
            guest::error(format!("GET {path}: HTTP {}: {}", resp.status, resp.status_message().unwrap_or_default()));
            continue;
        }
        match serde_json::from_slice(&resp.body) {
            Ok(crd) => {
                guest::skip_refused(guest::record_json(&format!("config/crd/{name}.json"), crd))?;
            }
            Err(e) => guest::error(format!("GET {path}: invalid JSON: {e}")),
        }
    }
    Ok(())
}
