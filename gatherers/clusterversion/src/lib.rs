//! Gathers the ClusterVersion into `config/version.json` and the cluster ID into `config/id`.

use hostapi::guest::{self, Result};
use serde_json::Value;

hostapi::gatherer! {
    name: "clusterversion",
    description: "ClusterVersion (config/version.json) and cluster ID (config/id)",
    reproduces: ["clusterconfig/version"],
    permissions: ["GET /apis/config.openshift.io/v1/clusterversions/version"],
    run: gather,
}

fn gather() -> Result<()> {
    let path = "/apis/config.openshift.io/v1/clusterversions/version";
    let resp = guest::get(path)?;
    if resp.status == 404 {
        // Not an OpenShift cluster (or no ClusterVersion yet): nothing to gather, not a failure.
        guest::warn("no ClusterVersion \"version\" (HTTP 404); is this an OpenShift cluster?");
        return Ok(());
    }
    let version: Value = guest::get_json(path)?;
    match version.pointer("/spec/clusterID").and_then(Value::as_str) {
        // A refused record is reported already; the other one is still worth writing.
        Some(id) => {
            guest::skip_refused(guest::record("config/id", id))?;
        }
        None => guest::warn("ClusterVersion has no spec.clusterID"),
    }
    guest::skip_refused(guest::record_json("config/version.json", version)).map(drop)
}
