//! Gathers pods that need attention, with the Insights Operator's rule: in an `openshift-*`
//! namespace, and either not Running/Succeeded or with a restarted container.
//! Written to `config/pod/<namespace>/<name>.json` (a name too long for one path segment is
//! shortened by the host, ABI.md §7); a pod that cannot be recorded is reported and skipped.
//!
//! The rule runs here, on a projection of each pod (four small fields); the host pages
//! through the list and writes the chosen pods, so a 50,000-pod cluster never has to fit in
//! this module's memory.

use hostapi::guest::{self, Item, List, Result};

hostapi::gatherer! {
    name: "pods",
    description: "Unhealthy openshift-* pods (config/pod/<namespace>/<name>.json)",
    reproduces: ["clusterconfig/operators_pods_and_events"],
    permissions: ["GET /api/v1/pods"],
    run: gather,
}

const NAMESPACE: &str = "/metadata/namespace";
const PHASE: &str = "/status/phase";
const RESTARTS: &str = "/status/containerStatuses/*/restartCount";
const INIT_RESTARTS: &str = "/status/initContainerStatuses/*/restartCount";

fn restarted(pod: &Item) -> bool {
    [RESTARTS, INIT_RESTARTS]
        .iter()
        .any(|f| pod[*f].as_array().is_some_and(|counts| counts.iter().any(|c| c.as_i64().unwrap_or(0) > 0)))
}

fn needs_attention(pod: &Item) -> bool {
    let phase = pod[PHASE].as_str().unwrap_or("");
    pod[NAMESPACE].as_str().unwrap_or("").starts_with("openshift-") && (!matches!(phase, "Running" | "Succeeded") || restarted(pod))
}

fn gather() -> Result<()> {
    let mut pods = List::open("/api/v1/pods", &[NAMESPACE, PHASE, RESTARTS, INIT_RESTARTS])?;
    let (mut total, mut kept) = (0, 0);
    while let Some(page) = pods.next_page()? {
        total += page.len();
        for pod in page.items().filter(needs_attention) {
            // A pod the archive refuses is reported by the host and skipped: the rest still count.
            if pod.emit("config/pod/{namespace}/{name}.json")? {
                kept += 1;
            }
        }
    }
    guest::log(format!("{kept} of {total} pods need attention"));
    Ok(())
}
