//! Gathers what the Insights Operator reads about SAP Data Intelligence, only where SAP's
//! DataHub CRs exist (IO: `gather_sap_datahubs.go`, `gather_sap_config.go`,
//! `gather_sap_pods.go`):
//! - each DataHub → `customresources/installers.datahub.sap.com/datahubs/<ns>/<name>.json`;
//! - the `anyuid` and `privileged` SecurityContextConstraints and the cluster role bindings that
//!   grant them (`system:openshift:scc:<scc>`, `:` written `_`) → `config/securitycontextconstraint/`,
//!   `config/clusterrolebinding/`;
//! - in each DataHub namespace, the pods that are neither Running nor Succeeded, unless a Job
//!   that owns them has succeeded → `config/pod/<ns>/<name>.json`.
//!
//! No DataHub (or no CRD: 404) means nothing is read beyond the DataHub list.

use std::collections::BTreeSet;

use hostapi::guest::{self, List, Result};
use hostapi::objects;
use serde_json::Value;

hostapi::gatherer! {
    name: "sap",
    description: "SAP Data Intelligence: DataHubs, the SCCs they need, their failing pods",
    reproduces: ["clusterconfig/sap_datahubs", "clusterconfig/sap_config", "clusterconfig/sap_pods"],
    permissions: [
        "GET /apis/installers.datahub.sap.com/v1alpha1/datahubs",
        "GET /apis/security.openshift.io/v1/securitycontextconstraints/anyuid",
        "GET /apis/security.openshift.io/v1/securitycontextconstraints/privileged",
        "GET /apis/authorization.openshift.io/v1/clusterrolebindings/system:openshift:scc:anyuid",
        "GET /apis/authorization.openshift.io/v1/clusterrolebindings/system:openshift:scc:privileged",
        "GET /api/v1/namespaces/*/pods",
        "GET /apis/batch/v1/namespaces/*/jobs/*",
    ],
    run: gather,
}

const SCCS: [&str; 2] = ["anyuid", "privileged"];

fn gather() -> Result<()> {
    let mut namespaces = BTreeSet::new();
    let datahubs = objects::record_each(
        "/apis/installers.datahub.sap.com/v1alpha1/datahubs",
        |d| {
            let (ns, name) = (guest::namespace_of(d), guest::name_of(d));
            (!ns.is_empty() && !name.is_empty()).then(|| format!("customresources/installers.datahub.sap.com/datahubs/{ns}/{name}.json"))
        },
        |_| {},
    )?;
    if datahubs == 0 {
        guest::log("no SAP DataHub: nothing more to gather");
        return Ok(());
    }
    // The namespaces come from a second, cheap read: record_each keeps no objects.
    let mut hubs = List::open("/apis/installers.datahub.sap.com/v1alpha1/datahubs", &["/metadata/namespace"])?;
    while let Some(page) = hubs.next_page()? {
        namespaces.extend(page.items().filter_map(|h| h["/metadata/namespace"].as_str().map(str::to_owned)));
    }
    for scc in SCCS {
        if let Some(object) = objects::get_object(&format!("/apis/security.openshift.io/v1/securitycontextconstraints/{scc}"))? {
            record_object(&format!("config/securitycontextconstraint/{scc}.json"), object)?;
        }
        let binding = format!("system:openshift:scc:{scc}");
        if let Some(object) = objects::get_object(&format!("/apis/authorization.openshift.io/v1/clusterrolebindings/{binding}"))? {
            record_object(&format!("config/clusterrolebinding/{}.json", binding.replace(':', "_")), object)?;
        }
    }
    let mut pods = 0;
    for ns in namespaces.iter().filter(|ns| !ns.contains('/')) {
        pods += failing_pods(ns)?;
    }
    guest::log(format!("{datahubs} DataHubs, {pods} failing pods in {} namespaces", namespaces.len()));
    Ok(())
}

fn record_object(name: &str, mut object: Value) -> Result<bool> {
    guest::strip_managed_fields(&mut object);
    guest::skip_refused(guest::record_json(name, object))
}

fn failing_pods(ns: &str) -> Result<u64> {
    const FIELDS: [&str; 2] = ["/status/phase", "/metadata/ownerReferences"];
    let mut list = match List::open(&format!("/api/v1/namespaces/{ns}/pods"), &FIELDS) {
        Ok(l) => l,
        Err(e) => {
            guest::error(format!("pods of {ns}: {e}"));
            return Ok(0);
        }
    };
    let mut recorded = 0;
    while let Some(page) = list.next_page()? {
        for pod in page.items() {
            if matches!(pod["/status/phase"].as_str(), Some("Running" | "Succeeded")) {
                continue;
            }
            let jobs = pod["/metadata/ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Job"))
                .filter_map(|o| o.get("name").and_then(Value::as_str))
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .map(str::to_owned)
                .collect::<Vec<_>>();
            let mut done_by_job = false;
            for job in jobs {
                if let Some(j) = objects::get_object(&format!("/apis/batch/v1/namespaces/{ns}/jobs/{job}"))? {
                    done_by_job |= j.pointer("/status/succeeded").and_then(Value::as_i64).unwrap_or(0) > 0;
                }
            }
            if !done_by_job && pod.emit("config/pod/{namespace}/{name}.json")? {
                recorded += 1;
            }
        }
    }
    Ok(recorded)
}
