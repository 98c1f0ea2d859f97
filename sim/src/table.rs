//! Server-side `Table` rendering, which `kubectl get` asks for when printing columns.

use serde_json::{json, Value};

use super::resources::ResourceType;

/// kubectl's `HumanDuration`: `45s`, `3m12s`, `5h`, `12d`, `3y41d`.
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 { format!("{y}y") } else { format!("{y}y{}d", d % 365) }
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value, now: time::OffsetDateTime) -> String {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .map(|t| human_age((now - t).whole_seconds()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn col(name: &str, ty: &str, format: &str, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": 0})
}

fn node_cells(obj: &Value) -> Vec<Value> {
    let ready = obj.pointer("/status/conditions").and_then(Value::as_array).and_then(|cs| {
        cs.iter().find(|c| c["type"] == "Ready").map(|c| c["status"] == "True")
    });
    let mut status = match ready {
        Some(true) => "Ready".to_owned(),
        Some(false) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if obj.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<&str> = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| l.keys().filter_map(|k| k.strip_prefix("node-role.kubernetes.io/")).collect())
        .unwrap_or_default();
    roles.sort_unstable();
    let roles = if roles.is_empty() { "<none>".to_owned() } else { roles.join(",") };
    let version = obj.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).unwrap_or("");
    vec![json!(status), json!(roles), json!(version)]
}

fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = obj.pointer("/status/containerStatuses").and_then(Value::as_array);
    let total = obj.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
    let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    let restarts: i64 = statuses.map_or(0, |s| s.iter().filter_map(|c| c["restartCount"].as_i64()).sum());
    let waiting = statuses.and_then(|s| {
        s.iter().find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
    });
    let status = waiting
        .or_else(|| obj.pointer("/status/reason").and_then(Value::as_str))
        .or_else(|| obj.pointer("/status/phase").and_then(Value::as_str))
        .unwrap_or("Unknown");
    vec![json!(format!("{ready}/{total}")), json!(status), json!(restarts)]
}

fn partial_metadata(obj: &Value) -> Value {
    let metadata = obj.get("metadata").cloned().map(|mut m| {
        if let Some(m) = m.as_object_mut() {
            m.remove("managedFields");
        }
        m
    });
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
}

/// kube-apiserver's event columns (`LAST SEEN TYPE REASON OBJECT MESSAGE`): events have no
/// Name column, unlike every other kind.
fn event_table(objects: &[Value], list_meta: Value, now: time::OffsetDateTime) -> Value {
    let columns = vec![
        col("Last Seen", "string", "", "Time when last the event was observed"),
        col("Type", "string", "", "Type of the event"),
        col("Reason", "string", "", "Reason of the event"),
        col("Object", "string", "", "The object the event is about"),
        col("Message", "string", "", "A human-readable description of the event"),
    ];
    let rows: Vec<Value> = objects
        .iter()
        .map(|e| {
            let last_seen = e["lastTimestamp"]
                .as_str()
                .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
                .map(|t| human_age((now - t).whole_seconds()))
                .unwrap_or_else(|| "<unknown>".into());
            let object = format!(
                "{}/{}",
                e["involvedObject"]["kind"].as_str().unwrap_or_default().to_ascii_lowercase(),
                e["involvedObject"]["name"].as_str().unwrap_or_default()
            );
            let cells = vec![json!(last_seen), e["type"].clone(), e["reason"].clone(), json!(object), e["message"].clone()];
            json!({"cells": cells, "object": partial_metadata(e)})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns, "rows": rows})
}

/// Renders objects as a `meta.k8s.io/v1` Table with `metadata` carrying paging info.
pub fn table(rt: &ResourceType, objects: &[Value], list_meta: Value) -> Value {
    let now = time::OffsetDateTime::now_utc();
    if rt.group.is_empty() && rt.plural == "events" {
        return event_table(objects, list_meta, now);
    }
    let name_col = col("Name", "string", "name", "Name must be unique within a namespace.");
    let age_col = col("Age", "string", "", "CreationTimestamp is the time the object was created.");
    let (columns, extra): (Vec<Value>, fn(&Value) -> Vec<Value>) = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "nodes") => (
            vec![name_col, col("Status", "string", "", "The status of the node"), col("Roles", "string", "", "The roles of the node"), age_col, col("Version", "string", "", "Kubelet Version reported by the node.")],
            node_cells,
        ),
        ("", "pods") => (
            vec![name_col, col("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic."), col("Status", "string", "", "The aggregate status of the containers in this pod."), col("Restarts", "integer", "", "The number of times the containers in this pod have been restarted."), age_col],
            pod_cells,
        ),
        _ => (vec![name_col, age_col], |_| Vec::new()),
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let name = obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
            let mut cells = vec![name];
            let more = extra(obj);
            match rt.plural.as_str() {
                "nodes" if rt.group.is_empty() => {
                    cells.extend(more[..2].iter().cloned());
                    cells.push(json!(age(obj, now)));
                    cells.push(more[2].clone());
                }
                "pods" if rt.group.is_empty() => {
                    cells.extend(more);
                    cells.push(json!(age(obj, now)));
                }
                _ => cells.push(json!(age(obj, now))),
            }
            json!({"cells": cells, "object": partial_metadata(obj)})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(45), "45s");
        assert_eq!(human_age(192), "3m12s");
        assert_eq!(human_age(5 * 3600), "5h");
        assert_eq!(human_age(12 * 86400), "12d");
        assert_eq!(human_age(3 * 365 * 86400 + 41 * 86400), "3y41d");
    }
}
