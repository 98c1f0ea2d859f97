//! Gathers pods that need attention, with the Insights Operator's rule: in an `openshift-*`
//! namespace, and either not Running/Succeeded or with a restarted container.
//! Written to `config/pod/<namespace>/<name>.json`.

use hostapi::guest::{self, Result};
use serde_json::Value;

hostapi::gatherer! {
    name: "pods",
    description: "Unhealthy openshift-* pods (config/pod/<namespace>/<name>.json)",
    permissions: ["GET /api/v1/pods"],
    run: gather,
}

fn restarted(pod: &Value) -> bool {
    ["/status/containerStatuses", "/status/initContainerStatuses"].iter().any(|p| {
        pod.pointer(p)
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["restartCount"].as_i64().unwrap_or(0) > 0))
    })
}

fn needs_attention(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    guest::namespace_of(pod).starts_with("openshift-") && (!matches!(phase, "Running" | "Succeeded") || restarted(pod))
}

fn gather() -> Result<()> {
    let pods = guest::list_all("/api/v1/pods")?;
    let total = pods.len();
    let mut kept = 0;
    for pod in pods.into_iter().filter(needs_attention) {
        let name = format!("config/pod/{}/{}.json", guest::namespace_of(&pod), guest::name_of(&pod));
        guest::record_json(&name, pod)?;
        kept += 1;
    }
    guest::log(format!("{kept} of {total} pods need attention"));
    Ok(())
}
