//! Discovery documents (`/version`, `/api`, `/apis`, APIResourceLists), derived from the
//! resource types the cluster serves, so kubectl resolves names and shortNames.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::cluster::Cluster;
use super::resources::ResourceType;

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0+gather-agent-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`: the legacy core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn version_rank(v: &str) -> (u8, u32, u32) {
    // v1 > v1beta2 > v1beta1 > v1alpha1, and v2 > v1: the API server's preference order.
    let rest = v.trim_start_matches('v');
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stability, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (stability, major, minor)
}

/// Groups (other than core) and their versions, most preferred version first.
pub fn groups(cluster: &Cluster) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in cluster.types.iter().filter(|t| !t.group.is_empty()) {
        let vs = groups.entry(t.group.clone()).or_default();
        if !vs.contains(&t.version) {
            vs.push(t.version.clone());
        }
    }
    for vs in groups.values_mut() {
        vs.sort_by_key(|v| std::cmp::Reverse(version_rank(v)));
    }
    groups
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0].clone()})
}

/// `/apis`.
pub fn group_list(cluster: &Cluster) -> Value {
    let groups: Vec<Value> = groups(cluster).iter().map(|(g, vs)| group_doc(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, or `None` for an unknown group.
pub fn group(cluster: &Cluster, name: &str) -> Option<Value> {
    let groups = groups(cluster);
    let vs = groups.get(name)?;
    let mut doc = group_doc(name, vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_doc(t: &ResourceType) -> Value {
    let mut r = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": ["get", "list"],
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    r
}

/// `/api/v1` or `/apis/{group}/{version}`, or `None` when nothing is served there.
pub fn resource_list(cluster: &Cluster, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = cluster
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .map(resource_doc)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_stable_versions() {
        let mut vs = vec!["v1alpha1".to_owned(), "v1".to_owned(), "v1beta1".to_owned(), "v2".to_owned()];
        vs.sort_by_key(|v| std::cmp::Reverse(version_rank(v)));
        assert_eq!(vs, ["v2", "v1", "v1beta1", "v1alpha1"]);
    }

    #[test]
    fn core_list_has_nodes_with_short_name() {
        let c = Cluster::empty();
        let doc = resource_list(&c, "", "v1").unwrap();
        let nodes = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "nodes").unwrap();
        assert_eq!(nodes["kind"], "Node");
        assert_eq!(nodes["namespaced"], false);
        assert_eq!(nodes["shortNames"][0], "no");
        assert!(resource_list(&c, "nope.example.com", "v1").is_none());
        assert!(group(&c, "apps").is_some());
    }
}
