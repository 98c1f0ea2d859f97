//! Gathers every Node into `config/node/<name>.json`, as the Insights Operator does.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "nodes",
    description: "Node objects (config/node/<name>.json)",
    reproduces: ["clusterconfig/nodes"],
    permissions: ["GET /api/v1/nodes"],
    run: gather,
}

fn gather() -> Result<()> {
    // The host pages through the list and writes each node (minus managedFields) itself.
    let n = guest::emit_list("/api/v1/nodes", "config/node/{name}.json")?;
    guest::log(format!("{n} nodes"));
    Ok(())
}
