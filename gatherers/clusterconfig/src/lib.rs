//! Gathers the cluster-scoped `config.openshift.io` singletons (all named `cluster`) into
//! `config/<kind>.json`. A missing one is a warning, as the Insights Operator treats it.

use hostapi::guest::{self, Result};

hostapi::gatherer! {
    name: "clusterconfig",
    description: "config.openshift.io singletons (config/<kind>.json)",
    reproduces: ["clusterconfig/infrastructures", "clusterconfig/networks", "clusterconfig/proxies", "clusterconfig/oauths", "clusterconfig/ingress", "clusterconfig/image", "clusterconfig/feature_gates", "clusterconfig/cluster_apiserver", "clusterconfig/authentication"],
    permissions: [
        "GET /apis/config.openshift.io/v1/infrastructures/cluster",
        "GET /apis/config.openshift.io/v1/networks/cluster",
        "GET /apis/config.openshift.io/v1/proxies/cluster",
        "GET /apis/config.openshift.io/v1/oauths/cluster",
        "GET /apis/config.openshift.io/v1/ingresses/cluster",
        "GET /apis/config.openshift.io/v1/images/cluster",
        "GET /apis/config.openshift.io/v1/featuregates/cluster",
        "GET /apis/config.openshift.io/v1/apiservers/cluster",
        "GET /apis/config.openshift.io/v1/authentications/cluster",
    ],
    run: gather,
}

/// (record name, resource plural), in the Insights Operator's naming.
const SINGLETONS: [(&str, &str); 9] = [
    ("infrastructure", "infrastructures"),
    ("network", "networks"),
    ("proxy", "proxies"),
    ("oauth", "oauths"),
    ("ingress", "ingresses"),
    ("image", "images"),
    ("featuregate", "featuregates"),
    ("apiserver", "apiservers"),
    ("authentication", "authentications"),
];

fn gather() -> Result<()> {
    let mut failures = 0;
    for (record, plural) in SINGLETONS {
        let path = format!("/apis/config.openshift.io/v1/{plural}/cluster");
        match guest::get(&path)? {
            resp if resp.status == 404 => guest::warn(format!("{plural}/cluster not found")),
            resp if !resp.is_success() => {
                failures += 1;
                guest::error(format!("GET {path}: HTTP {}: {}", resp.status, resp.status_message().unwrap_or_default()));
            }
            resp => match serde_json::from_slice(&resp.body) {
                // One refused record (reported already) must not lose the other singletons.
                Ok(obj) => {
                    guest::skip_refused(guest::record_json(&format!("config/{record}.json"), obj))?;
                }
                Err(e) => guest::error(format!("GET {path}: invalid JSON: {e}")),
            },
        }
    }
    guest::log(format!("{} of {} singletons gathered", SINGLETONS.len() - failures, SINGLETONS.len()));
    Ok(())
}
