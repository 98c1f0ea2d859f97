//! Gathers kubernetes-nmstate's NodeNetworkStates and NodeNetworkConfigurationPolicies into
//! `cluster-scoped-resources/nmstate.io/<resource>/<name>.json`, as the Insights Operator's
//! `clusterconfig/nodenetworkstates` and `clusterconfig/nodenetworkconfigurationpolicies` do
//! (`gather_nmstate_nodenetworkstate.go`, `gather_nmstate_node_network_configuration_policy.go`).
//! IO's rule: every interface's MAC address in a state is x-ed out. Absent when nmstate is not
//! installed (404: a warning).

use hostapi::guest::{self, Result};
use hostapi::objects::{self, x_out};
use serde_json::Value;

hostapi::gatherer! {
    name: "nmstate",
    description: "NodeNetworkStates (MACs x-ed out) and NodeNetworkConfigurationPolicies",
    reproduces: ["clusterconfig/nodenetworkstates", "clusterconfig/nodenetworkconfigurationpolicies"],
    permissions: [
        "GET /apis/nmstate.io/v1beta1/nodenetworkstates",
        "GET /apis/nmstate.io/v1/nodenetworkconfigurationpolicies",
    ],
    run: gather,
}

fn state(s: &mut Value) {
    if let Some(interfaces) = s.pointer_mut("/status/currentState/interfaces").and_then(Value::as_array_mut) {
        for interface in interfaces {
            x_out(interface, "/mac-address");
        }
    }
}

fn name(prefix: &'static str) -> impl Fn(&Value) -> Option<String> {
    move |o| Some(guest::name_of(o)).filter(|n| !n.is_empty()).map(|n| format!("{prefix}/{n}.json"))
}

fn gather() -> Result<()> {
    let states = objects::record_each(
        "/apis/nmstate.io/v1beta1/nodenetworkstates",
        name("cluster-scoped-resources/nmstate.io/nodenetworkstates"),
        state,
    )?;
    let policies = objects::emit_each(
        "/apis/nmstate.io/v1/nodenetworkconfigurationpolicies",
        "cluster-scoped-resources/nmstate.io/nodenetworkconfigurationpolicies/{name}.json",
    )?;
    guest::log(format!("{states} node network states, {policies} policies"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn macs_are_xed_out() {
        let mut s = json!({"status": {"currentState": {"interfaces": [{"name": "ens5", "mac-address": "02:9A:7F:11:22:33", "mtu": 9001}]}}});
        state(&mut s);
        assert_eq!(s["status"]["currentState"]["interfaces"][0]["mac-address"], "x".repeat(17));
        assert_eq!(s["status"]["currentState"]["interfaces"][0]["mtu"], 9001);
    }
}
