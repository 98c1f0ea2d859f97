//! Gathers the Insights Operator's summary records: counts and names rather than objects.
//! - `config/serviceaccounts.json`: service accounts of `default`, `kube-system`,
//!   `kube-public`, `openshift` and every `openshift-*` namespace, name and number of secrets,
//!   at most about 1000 listed (IO: `gather_service_accounts.go`);
//! - `config/namespaces_with_overlapping_uids.json`: sets of namespaces whose
//!   `openshift.io/sa.scc.uid-range` overlap (`gather_namespaces_with_overlapping_uids.go`);
//! - `aggregated/custom_prometheuses_alertmanagers.json`: Prometheus and Alertmanager
//!   instances outside `openshift-monitoring` (`gather_aggregated_instances.go`);
//! - `config/olm_operators.json`: OLM operators with their CSV's display name, version and
//!   conditions (`gather_olm_operators.go`).

use std::collections::BTreeMap;

use hostapi::guest::{self, List, Result};
use hostapi::objects;
use serde_json::{Value, json};

hostapi::gatherer! {
    name: "aggregates",
    description: "IO's summary records: service accounts, overlapping UID ranges, custom monitoring instances, OLM operators",
    reproduces: [
        "clusterconfig/service_accounts",
        "clusterconfig/overlapping_namespace_uids",
        "clusterconfig/aggregated_monitoring_cr_names",
        "clusterconfig/olm_operators",
    ],
    permissions: [
        "GET /api/v1/namespaces",
        "GET /api/v1/namespaces/*/serviceaccounts",
        "GET /apis/monitoring.coreos.com/v1/prometheuses",
        "GET /apis/monitoring.coreos.com/v1/alertmanagers",
        "GET /apis/operators.coreos.com/v1/operators",
        "GET /apis/operators.coreos.com/v1alpha1/namespaces/*/clusterserviceversions/*",
    ],
    run: gather,
}

/// IO lists at most this many service accounts per namespace, and keeps about this many.
const MAX_SERVICE_ACCOUNTS: usize = 1000;
const UID_RANGE: &str = "/metadata/annotations/openshift.io~1sa.scc.uid-range";

fn gather() -> Result<()> {
    let namespaces = namespaces()?;
    service_accounts(&namespaces)?;
    overlapping_uids(&namespaces)?;
    monitoring_instances()?;
    olm_operators()?;
    Ok(())
}

/// (name, uid-range annotation) of every namespace, in list order.
fn namespaces() -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut list = match List::open("/api/v1/namespaces", &["/metadata/name", UID_RANGE]) {
        Ok(l) => l,
        Err(e) => {
            guest::error(format!("namespaces: {e}"));
            return Ok(out);
        }
    };
    while let Some(page) = list.next_page()? {
        for ns in page.items() {
            let name = ns["/metadata/name"].as_str().unwrap_or_default().to_owned();
            out.push((name, ns[UID_RANGE].as_str().map(str::to_owned)));
        }
    }
    Ok(out)
}

fn service_accounts(namespaces: &[(String, Option<String>)]) -> Result<()> {
    let mut wanted: Vec<&str> = vec!["default", "kube-system", "kube-public", "openshift"];
    wanted.extend(namespaces.iter().map(|(n, _)| n.as_str()).filter(|n| n.starts_with("openshift-")));
    let (mut total, mut kept) = (0u64, 0usize);
    let mut by_namespace: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ns in wanted.into_iter().filter(|n| !n.contains('/')) {
        // One page of at most 1000, as IO asks for.
        let path = format!("/api/v1/namespaces/{ns}/serviceaccounts?limit={MAX_SERVICE_ACCOUNTS}");
        let Some(list) = objects::get_object(&path)? else { continue };
        let items = list.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        total += items.len() as u64;
        for sa in items {
            if kept > MAX_SERVICE_ACCOUNTS {
                break;
            }
            kept += 1;
            let secrets = sa.get("secrets").and_then(Value::as_array).map_or(0, Vec::len);
            by_namespace.entry(ns.to_owned()).or_default().push(json!({ "name": guest::name_of(sa), "secrets": secrets }));
        }
    }
    let record = json!({ "serviceAccounts": { "TOTAL_COUNT": total, "namespaces": by_namespace } });
    guest::skip_refused(guest::record_json("config/serviceaccounts.json", record))?;
    Ok(())
}

/// `start/size` → (start, size).
fn uid_range(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('/')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// IO's test: one range's end falls inside the other.
fn overlaps((s1, l1): (i64, i64), (s2, l2): (i64, i64)) -> bool {
    let (e1, e2) = (s1.saturating_add(l1), s2.saturating_add(l2));
    (e1 > s2 && e1 <= e2) || (e2 > s1 && e2 <= e1)
}

/// Groups namespaces into sets, each holding namespaces that overlap pairwise with another
/// member, in IO's order (first discovery).
fn overlapping_sets(ranges: &[(String, (i64, i64))]) -> Vec<Vec<String>> {
    let mut sets: Vec<Vec<String>> = Vec::new();
    for (i, (n1, r1)) in ranges.iter().enumerate() {
        for (n2, r2) in &ranges[i + 1..] {
            if !overlaps(*r1, *r2) {
                continue;
            }
            match sets.iter_mut().find(|s| s.contains(n1) || s.contains(n2)) {
                Some(set) => {
                    for n in [n1, n2] {
                        if !set.contains(n) {
                            set.push(n.clone());
                        }
                    }
                }
                None => sets.push(vec![n1.clone(), n2.clone()]),
            }
        }
    }
    for set in &mut sets {
        set.sort();
    }
    sets
}

fn overlapping_uids(namespaces: &[(String, Option<String>)]) -> Result<()> {
    let mut ranges = Vec::new();
    for (name, range) in namespaces {
        match range.as_deref().and_then(uid_range) {
            Some(r) => ranges.push((name.clone(), r)),
            None => guest::debug(format!("namespace {name}: no readable uid range")),
        }
    }
    let sets = overlapping_sets(&ranges);
    guest::skip_refused(guest::record_json("config/namespaces_with_overlapping_uids.json", json!(sets)))?;
    Ok(())
}

fn monitoring_instances() -> Result<()> {
    let mut names = serde_json::Map::new();
    for kind in ["prometheuses", "alertmanagers"] {
        let path = format!("/apis/monitoring.coreos.com/v1/{kind}");
        let mut found = Vec::new();
        let mut list = match List::open(&path, &["/metadata/namespace", "/metadata/name"]) {
            Ok(l) => l,
            Err(e) => {
                guest::warn(format!("{kind}: {e}"));
                return Ok(());
            }
        };
        while let Some(page) = list.next_page()? {
            found.extend(
                page.items()
                    .filter(|i| i["/metadata/namespace"].as_str() != Some("openshift-monitoring"))
                    .filter_map(|i| i["/metadata/name"].as_str().map(|s| json!(s))),
            );
        }
        names.insert(kind.into(), Value::Array(found));
    }
    if names.values().all(|v| v.as_array().is_some_and(Vec::is_empty)) {
        return Ok(());
    }
    guest::skip_refused(guest::record_json("aggregated/custom_prometheuses_alertmanagers.json", Value::Object(names)))?;
    Ok(())
}

fn olm_operators() -> Result<()> {
    let mut list = match List::open("/apis/operators.coreos.com/v1/operators", &["/metadata/name", "/status/components/refs"]) {
        Ok(l) => l,
        Err(e) => {
            guest::warn(format!("OLM operators: {e}"));
            return Ok(());
        }
    };
    let mut operators: Vec<Value> = Vec::new();
    while let Some(page) = list.next_page()? {
        for op in page.items() {
            let name = op["/metadata/name"].as_str().unwrap_or_default();
            let refs = op["/status/components/refs"].as_array().cloned().unwrap_or_default();
            for r in refs.iter().filter(|r| r.get("kind").and_then(Value::as_str) == Some("ClusterServiceVersion")) {
                let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
                let (csv, ns) = (field("name"), field("namespace"));
                let Some((_, version)) = csv.split_once('.') else {
                    guest::error(format!("ClusterServiceVersion {csv:?} probably doesn't include a version"));
                    continue;
                };
                if operators.iter().any(|o| o["name"] == name && o["version"] == version) {
                    continue;
                }
                let mut entry = json!({ "name": name, "displayName": "", "version": version, "csv_conditions": null });
                if !ns.is_empty() && !ns.contains('/') && !csv.contains('/') {
                    let path = format!("/apis/operators.coreos.com/v1alpha1/namespaces/{ns}/clusterserviceversions/{csv}");
                    if let Some(object) = objects::get_object(&path)? {
                        entry["displayName"] = object.pointer("/spec/displayName").cloned().unwrap_or(json!(""));
                        entry["csv_conditions"] = object.pointer("/status/conditions").cloned().unwrap_or(Value::Null);
                    }
                }
                operators.push(entry);
            }
        }
    }
    if !operators.is_empty() {
        guest::skip_refused(guest::record_json("config/olm_operators.json", Value::Array(operators)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_group_as_io_groups_them() {
        let r = |n: &str, s: i64| (n.to_owned(), (s, 10000));
        let ranges = vec![r("openshift", 1000), r("a", 50000), r("test-2", 1000), r("test-1", 1000), r("b", 70000), r("c", 75000)];
        assert_eq!(overlapping_sets(&ranges), vec![vec!["openshift", "test-1", "test-2"], vec!["b", "c"]]);
        assert_eq!(uid_range("1000680000/10000"), Some((1000680000, 10000)));
        assert_eq!(uid_range("garbage"), None);
        assert!(!overlaps((0, 10), (10, 10)));
    }
}
