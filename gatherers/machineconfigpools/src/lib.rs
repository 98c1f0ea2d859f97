//! Gathers every MachineConfigPool into `config/machineconfigpools/<name>.json`.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "machineconfigpools",
    description: "MachineConfigPool objects (config/machineconfigpools/<name>.json)",
    permissions: ["GET /apis/machineconfiguration.openshift.io/v1/machineconfigpools"],
    run: gather,
}

fn gather() -> Result<()> {
    for pool in guest::list_all("/apis/machineconfiguration.openshift.io/v1/machineconfigpools")? {
        let name = format!("config/machineconfigpools/{}.json", guest::name_of(&pool));
        guest::record_json(&name, pool)?;
    }
    Ok(())
}
