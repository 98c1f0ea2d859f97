//! Gathers every Node into `config/node/<name>.json`, as the Insights Operator does.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "nodes",
    description: "Node objects (config/node/<name>.json)",
    permissions: ["GET /api/v1/nodes"],
    run: gather,
}

fn gather() -> Result<()> {
    let nodes = guest::list_all("/api/v1/nodes")?;
    guest::log(format!("{} nodes", nodes.len()));
    for node in nodes {
        let name = format!("config/node/{}.json", guest::name_of(&node));
        guest::record_json(&name, node)?;
    }
    Ok(())
}
