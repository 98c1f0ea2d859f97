//! Gathers every ClusterOperator into `config/clusteroperator/<name>.json`.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "clusteroperators",
    description: "ClusterOperator objects (config/clusteroperator/<name>.json)",
    permissions: ["GET /apis/config.openshift.io/v1/clusteroperators"],
    run: gather,
}

fn gather() -> Result<()> {
    guest::emit_list("/apis/config.openshift.io/v1/clusteroperators", "config/clusteroperator/{name}.json")?;
    Ok(())
}
