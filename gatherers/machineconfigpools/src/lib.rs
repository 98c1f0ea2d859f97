//! Gathers every MachineConfigPool into `config/machineconfigpools/<name>.json`.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "machineconfigpools",
    description: "MachineConfigPool objects (config/machineconfigpools/<name>.json)",
    reproduces: ["clusterconfig/machine_config_pools"],
    permissions: ["GET /apis/machineconfiguration.openshift.io/v1/machineconfigpools"],
    run: gather,
}

fn gather() -> Result<()> {
    guest::emit_list("/apis/machineconfiguration.openshift.io/v1/machineconfigpools", "config/machineconfigpools/{name}.json")?;
    Ok(())
}
