//! Gathers every ClusterOperator into `config/clusteroperator/<name>.json`.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "clusteroperators",
    description: "ClusterOperator objects (config/clusteroperator/<name>.json)",
    permissions: ["GET /apis/config.openshift.io/v1/clusteroperators"],
    run: gather,
}

fn gather() -> Result<()> {
    for co in guest::list_all("/apis/config.openshift.io/v1/clusteroperators")? {
        let name = format!("config/clusteroperator/{}.json", guest::name_of(&co));
        guest::record_json(&name, co)?;
    }
    Ok(())
}
