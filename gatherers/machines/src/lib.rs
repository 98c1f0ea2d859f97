//! Gathers the Machine API's objects as the Insights Operator does (`gather_machines.go`,
//! `gather_machine_sets.go`, `gather_machine_health_check.go`, `gather_machine_autoscaler.go`,
//! `gather_control_plane_machine_sets.go`):
//! - Machines → `config/machines/<ns>/<name>.json`, provider ID, zone and region x-ed out;
//! - MachineSets → `machinesets/<ns>/<name>.json` (IO's path has no `config/`), project,
//!   region, zone and service-account e-mails x-ed out;
//! - MachineHealthChecks, MachineAutoscalers → `config/<kind>/<ns>/<name>.json`, as they are;
//! - ControlPlaneMachineSets → `config/controlplanemachinesets/<ns>/<name>.json`, without the
//!   machine templates (they carry the provider spec).

use hostapi::guest::{self, Result};
use hostapi::objects::{self, null_out, x_out};
use serde_json::Value;

hostapi::gatherer! {
    name: "machines",
    description: "Machines, MachineSets, health checks, autoscalers, control-plane machine sets (anonymized)",
    reproduces: [
        "clusterconfig/machines",
        "clusterconfig/machine_sets",
        "clusterconfig/machine_healthchecks",
        "clusterconfig/machine_autoscalers",
        "clusterconfig/control_plane_machine_sets",
    ],
    permissions: [
        "GET /apis/machine.openshift.io/v1beta1/machines",
        "GET /apis/machine.openshift.io/v1beta1/machinesets",
        "GET /apis/machine.openshift.io/v1beta1/machinehealthchecks",
        "GET /apis/autoscaling.openshift.io/v1beta1/machineautoscalers",
        "GET /apis/machine.openshift.io/v1/controlplanemachinesets",
    ],
    run: gather,
}

/// `<prefix>/<namespace>/<name>.json`, or `<prefix>/<name>.json` for an object without one.
fn named(prefix: &'static str) -> impl Fn(&Value) -> Option<String> {
    move |o| match (guest::namespace_of(o), guest::name_of(o)) {
        (_, "") => None,
        ("", name) => Some(format!("{prefix}/{name}.json")),
        (ns, name) => Some(format!("{prefix}/{ns}/{name}.json")),
    }
}

fn machine(m: &mut Value) {
    x_out(m, "/spec/providerID");
    x_out(m, "/spec/providerSpec/value/placement/availabilityZone");
    x_out(m, "/spec/providerSpec/value/placement/region");
    x_out(m, "/metadata/labels/machine.openshift.io~1region");
}

fn machine_set(s: &mut Value) {
    const VALUE: &str = "/spec/template/spec/providerSpec/value";
    for field in ["projectID", "region", "placement/availabilityZone", "placement/region"] {
        x_out(s, &format!("{VALUE}/{field}"));
    }
    if let Some(accounts) = s.pointer_mut(&format!("{VALUE}/serviceAccounts")).and_then(Value::as_array_mut) {
        for account in accounts {
            x_out(account, "/email");
        }
    }
}

fn control_plane_machine_set(s: &mut Value) {
    null_out(s, "/spec/templates");
    null_out(s, "/spec/template");
}

fn gather() -> Result<()> {
    let n = objects::record_each("/apis/machine.openshift.io/v1beta1/machines", named("config/machines"), machine)?
        + objects::record_each("/apis/machine.openshift.io/v1beta1/machinesets", named("machinesets"), machine_set)?
        + objects::emit_each("/apis/machine.openshift.io/v1beta1/machinehealthchecks", "config/machinehealthchecks/{namespace}/{name}.json")?
        + objects::emit_each("/apis/autoscaling.openshift.io/v1beta1/machineautoscalers", "config/machineautoscalers/{namespace}/{name}.json")?
        + objects::record_each(
            "/apis/machine.openshift.io/v1/controlplanemachinesets",
            named("config/controlplanemachinesets"),
            control_plane_machine_set,
        )?;
    guest::log(format!("{n} machine API objects"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn machine_identifiers_are_xed_out() {
        let mut m = json!({"metadata": {"labels": {"machine.openshift.io/region": "us-east-2", "x": "y"}},
            "spec": {"providerID": "aws:///us-east-2a/i-0abc", "providerSpec": {"value": {"placement": {"availabilityZone": "us-east-2a", "region": "us-east-2"}, "instanceType": "m5.xlarge"}}}});
        machine(&mut m);
        assert_eq!(m["spec"]["providerID"], "x".repeat(24));
        assert_eq!(m["spec"]["providerSpec"]["value"]["placement"]["availabilityZone"], "xxxxxxxxxx");
        assert_eq!(m["metadata"]["labels"]["machine.openshift.io/region"], "xxxxxxxxx");
        assert_eq!(m["spec"]["providerSpec"]["value"]["instanceType"], "m5.xlarge");
        let mut s = json!({"spec": {"template": {"spec": {"providerSpec": {"value": {"projectID": "p-1", "serviceAccounts": [{"email": "a@b.c", "scopes": ["s"]}]}}}}}});
        machine_set(&mut s);
        assert_eq!(s["spec"]["template"]["spec"]["providerSpec"]["value"]["projectID"], "xxx");
        assert_eq!(s["spec"]["template"]["spec"]["providerSpec"]["value"]["serviceAccounts"][0]["email"], "xxxxx");
        let mut c = json!({"spec": {"replicas": 3, "template": {"machines_v1beta1_machine_openshift_io": {}}}});
        control_plane_machine_set(&mut c);
        assert_eq!(c["spec"]["template"], Value::Null);
        assert_eq!(c["spec"]["replicas"], 3);
    }

    #[test]
    fn names_carry_the_namespace_when_there_is_one() {
        let f = named("config/machines");
        assert_eq!(f(&json!({"metadata": {"name": "m", "namespace": "ns"}})).unwrap(), "config/machines/ns/m.json");
        assert_eq!(f(&json!({"metadata": {"name": "m"}})).unwrap(), "config/machines/m.json");
        assert!(f(&json!({"metadata": {}})).is_none());
    }
}
