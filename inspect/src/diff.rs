//! What changed between two periods: records added, removed and changed, the changed fields
//! of JSON records as paths with old and new values, and gatherers whose version changed.
//!
//! # Field paths
//!
//! `.metadata.labels["node-role.kubernetes.io/worker"]`, `.spec.replicas`, `.items[3]`.
//! Arrays of objects that all carry a unique `type` (conditions) or `name` (containers,
//! container statuses) are matched by it rather than by position, so a condition that moved
//! is not a change and a changed one reads `.status.conditions[type=Ready].status`.
//!
//! # Noise
//!
//! Unless `all` is set, fields whose *key* is bookkeeping that changes on every write or every
//! heartbeat are ignored wherever they appear ([`is_noise`]): `resourceVersion`,
//! `managedFields`, `generation`, `observedGeneration`, and timestamps named `last…Time` or
//! `last…Timestamp` (`lastHeartbeatTime`, `lastTransitionTime`, `lastProbeTime`,
//! `lastUpdateTime`…). A record whose only differences are noise counts as unchanged, and the
//! number of ignored differences is reported so nothing disappears silently.
//!
//! # Memory
//!
//! Three streaming passes: hash every record of OLD; hash every record of NEW, spilling the
//! ones that differ to a temporary directory; read OLD again and diff each changed record
//! against its spilled copy. At most one record of each side is in memory at a time, and only
//! up to [`MAX_PARSE_BYTES`]: a larger record is hashed as it streams past, never held, and a
//! changed one is reported by size rather than field by field. A `gathers.json` over
//! [`super::MAX_METADATA_BYTES`] is refused unread.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::reader::{self, Flow};
use super::{gathered, Gathered, InspectError, RecordInfo, Result, MAX_METADATA_BYTES, MAX_PARSE_BYTES};
use insights_format::{GathersMetadata, GATHERS_JSON};

/// Keys ignored by default, in addition to the `last…Time` / `last…Timestamp` timestamps.
pub const NOISE_KEYS: &[&str] = &["resourceVersion", "managedFields", "generation", "observedGeneration"];

/// Whether a field named `key` is noise (see the module docs).
pub fn is_noise(key: &str) -> bool {
    NOISE_KEYS.contains(&key) || (key.starts_with("last") && (key.ends_with("Time") || key.ends_with("Timestamp")))
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// Where, e.g. `.status.conditions[type=Ready].status`; `.` is the whole document.
    pub path: String,
    /// The old value; absent when the field was added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The new value; absent when the field was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// The differences between two JSON documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ValueDiff {
    /// The changed fields, in document order.
    pub changes: Vec<FieldChange>,
    /// How many noise fields differed and were left out.
    pub ignored: usize,
}

/// Diffs two JSON documents; with `all`, noise fields are compared too.
pub fn diff_values(old: &Value, new: &Value, all: bool) -> ValueDiff {
    let mut out = ValueDiff::default();
    let mut path = String::new();
    walk(&mut path, old, new, all, &mut out);
    out
}

fn walk(path: &mut String, old: &Value, new: &Value, all: bool, out: &mut ValueDiff) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => walk_objects(path, a, b, all, out),
        (Value::Array(a), Value::Array(b)) => walk_arrays(path, a, b, all, out),
        _ => out.changes.push(change(path, Some(old), Some(new))),
    }
}

fn walk_objects(path: &mut String, a: &Map<String, Value>, b: &Map<String, Value>, all: bool, out: &mut ValueDiff) {
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        let (old, new) = (a.get(key), b.get(key));
        if old == new {
            continue;
        }
        if !all && is_noise(key) {
            out.ignored += 1;
            continue;
        }
        let len = path.len();
        push_key(path, key);
        match (old, new) {
            (Some(o), Some(n)) => walk(path, o, n, all, out),
            (o, n) => out.changes.push(change(path, o, n)),
        }
        path.truncate(len);
    }
}

fn walk_arrays(path: &mut String, a: &[Value], b: &[Value], all: bool, out: &mut ValueDiff) {
    let Some(id) = identity_key(a, b) else {
        for i in 0..a.len().max(b.len()) {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            match (a.get(i), b.get(i)) {
                (Some(o), Some(n)) => walk(path, o, n, all, out),
                (o, n) => out.changes.push(change(path, o, n)),
            }
            path.truncate(len);
        }
        return;
    };
    let ident = |v: &Value| v[id].as_str().unwrap_or_default().to_owned();
    let new_by_id: HashMap<String, &Value> = b.iter().map(|v| (ident(v), v)).collect();
    let old_ids: Vec<String> = a.iter().map(ident).collect();
    let push = |path: &mut String, value: &str, o: Option<&Value>, n: Option<&Value>, out: &mut ValueDiff| {
        let len = path.len();
        path.push_str(&format!("[{id}={}]", quote_if_needed(value)));
        match (o, n) {
            (Some(o), Some(n)) => walk(path, o, n, all, out),
            (o, n) => out.changes.push(change(path, o, n)),
        }
        path.truncate(len);
    };
    for (value, o) in old_ids.iter().zip(a) {
        push(path, value, Some(o), new_by_id.get(value).copied(), out);
    }
    for n in b {
        let value = ident(n);
        if !old_ids.contains(&value) {
            push(path, &value, None, Some(n), out);
        }
    }
}

/// `type` or `name`, when every element of both arrays is an object with a unique string there.
fn identity_key(a: &[Value], b: &[Value]) -> Option<&'static str> {
    ["type", "name"].into_iter().find(|key| {
        let unique = |arr: &[Value]| {
            let mut seen = std::collections::HashSet::new();
            arr.iter().all(|v| v.get(key).and_then(Value::as_str).is_some_and(|s| seen.insert(s.to_owned())))
        };
        !(a.is_empty() && b.is_empty()) && unique(a) && unique(b)
    })
}

fn change(path: &str, old: Option<&Value>, new: Option<&Value>) -> FieldChange {
    let path = if path.is_empty() { ".".to_owned() } else { path.to_owned() };
    FieldChange { path, old: old.cloned(), new: new.cloned() }
}

fn push_key(path: &mut String, key: &str) {
    let simple = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if simple {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_owned()).to_string());
        path.push(']');
    }
}

fn quote_if_needed(value: &str) -> String {
    let plain = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'));
    if plain { value.to_owned() } else { Value::String(value.to_owned()).to_string() }
}

/// One side of a diff.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// The archive, as given.
    pub archive: PathBuf,
    /// When it was gathered.
    pub gathered: Option<Gathered>,
    /// How many records it holds, `gathers.json` included.
    pub records: u64,
}

/// A changed record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedRecord {
    /// Its path.
    pub path: String,
    /// Its old size.
    pub old_size: u64,
    /// Its new size.
    pub new_size: u64,
    /// Whether both versions are JSON (then `fields` says what changed).
    pub json: bool,
    /// The changed fields (JSON records only).
    pub fields: Vec<FieldChange>,
    /// How many noise fields differed and were left out.
    pub ignored: usize,
}

/// A gatherer as one archive saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GathererState {
    /// Module version (ours only).
    pub version: Option<String>,
    /// Module sha256, hex (ours only).
    pub sha256: Option<String>,
    /// Whether it failed (errors or a panic).
    pub failed: bool,
    /// Its first error or its panic, when it failed.
    pub error: Option<String>,
}

/// A gatherer that appeared, disappeared, changed version or started or stopped failing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GathererChange {
    /// The gatherer's name.
    pub name: String,
    /// In OLD; `None` if it is new.
    pub old: Option<GathererState>,
    /// In NEW; `None` if it is gone.
    pub new: Option<GathererState>,
}

/// `inspect OLD NEW diff`.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveDiff {
    /// The older archive.
    pub old: Side,
    /// The newer archive.
    pub new: Side,
    /// Whether noise fields were compared too.
    pub all: bool,
    /// Gatherers that changed, sorted by name.
    pub gatherers: Vec<GathererChange>,
    /// Records only in NEW, sorted by path.
    pub added: Vec<RecordInfo>,
    /// Records only in OLD, sorted by path.
    pub removed: Vec<RecordInfo>,
    /// Records in both that differ, sorted by path.
    pub changed: Vec<ChangedRecord>,
    /// Records that are byte-identical, or differ only in noise (then counted in `noise_only` too).
    pub unchanged: u64,
    /// Records that differ only in noise fields (counted as unchanged; listed with `all`).
    pub noise_only: u64,
}

struct Indexed {
    records: BTreeMap<String, (u64, [u8; 32])>,
    metadata: GathersMetadata,
    newest_mtime: u64,
    count: u64,
}

fn parse_metadata(path: &Path, bytes: &[u8]) -> Result<GathersMetadata> {
    serde_json::from_slice(bytes).map_err(|source| InspectError::BadMetadata { path: path.to_path_buf(), source })
}

/// Hashes every record of `path`; records for which `spill` says so are written to `dir`
/// (`None` in `spilled` for a record too large to compare field by field: it is only hashed).
fn index(
    path: &Path,
    mut spill: impl FnMut(&str, u64, &[u8; 32]) -> bool,
    dir: Option<&Path>,
    spilled: &mut HashMap<String, Option<PathBuf>>,
) -> Result<Indexed> {
    let mut records = BTreeMap::new();
    let mut metadata = None;
    let mut newest_mtime = 0;
    let stats = reader::scan(path, |r| {
        newest_mtime = newest_mtime.max(r.mtime());
        if r.path() == GATHERS_JSON {
            if r.size() > MAX_METADATA_BYTES {
                return Err(InspectError::MetadataTooLarge { path: path.to_path_buf(), size: r.size() });
            }
            metadata = Some(parse_metadata(path, &r.read_to_vec()?)?);
            return Ok(Flow::Continue);
        }
        if r.size() > MAX_PARSE_BYTES {
            let hash = r.sha256()?;
            if dir.is_some() && spill(r.path(), r.size(), &hash) {
                spilled.insert(r.path().to_owned(), None);
            }
            records.insert(r.path().to_owned(), (r.size(), hash));
            return Ok(Flow::Continue);
        }
        let data = r.read_to_vec()?;
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&data).into();
        if let Some(dir) = dir
            && spill(r.path(), r.size(), &hash)
        {
            let file = dir.join(spilled.len().to_string());
            std::fs::write(&file, &data).map_err(InspectError::Scratch)?;
            spilled.insert(r.path().to_owned(), Some(file));
        }
        records.insert(r.path().to_owned(), (r.size(), hash));
        Ok(Flow::Continue)
    })?;
    let metadata = metadata.ok_or_else(|| InspectError::MissingMetadata { path: path.to_path_buf() })?;
    Ok(Indexed { records, metadata, newest_mtime, count: stats.records })
}

/// Compares two archives (see the module docs for what is compared and how).
///
/// Both must be intact Insights archives: any damage is an error.
pub fn diff_archives(old_path: &Path, new_path: &Path, all: bool) -> Result<ArchiveDiff> {
    let scratch = tempfile::tempdir().map_err(InspectError::Scratch)?;
    let mut spilled = HashMap::new();
    let old = index(old_path, |_, _, _| false, None, &mut spilled)?;
    let new = index(
        new_path,
        |name, _, hash| old.records.get(name).is_some_and(|(_, h)| h != hash),
        Some(scratch.path()),
        &mut spilled,
    )?;

    let mut changed = Vec::new();
    let mut noise_only = 0;
    if !spilled.is_empty() {
        reader::scan(old_path, |r| {
            let Some(file) = spilled.get(r.path()) else {
                return Ok(Flow::Continue);
            };
            let mut record = ChangedRecord {
                path: r.path().to_owned(),
                old_size: r.size(),
                new_size: new.records.get(r.path()).map_or(0, |(size, _)| *size),
                json: false,
                fields: Vec::new(),
                ignored: 0,
            };
            // Either side too large to parse: compared by size and hash only.
            if let (Some(file), true) = (file, r.size() <= MAX_PARSE_BYTES) {
                let old_bytes = r.read_to_vec()?;
                let new_bytes = std::fs::read(file).map_err(InspectError::Scratch)?;
                if let (Ok(a), Ok(b)) =
                    (serde_json::from_slice::<Value>(&old_bytes), serde_json::from_slice::<Value>(&new_bytes))
                {
                    let d = diff_values(&a, &b, all);
                    record.json = true;
                    record.ignored = d.ignored;
                    record.fields = d.changes;
                }
            }
            if record.json && record.fields.is_empty() {
                noise_only += 1;
            } else {
                changed.push(record);
            }
            Ok(Flow::Continue)
        })?;
    }
    changed.sort_by(|a, b| a.path.cmp(&b.path));

    let info = |name: &String, (size, _): &(u64, [u8; 32])| RecordInfo { path: name.clone(), size: *size };
    let added = new.records.iter().filter(|(n, _)| !old.records.contains_key(*n)).map(|(n, v)| info(n, v)).collect();
    let removed = old.records.iter().filter(|(n, _)| !new.records.contains_key(*n)).map(|(n, v)| info(n, v)).collect();
    let in_both = old.records.keys().filter(|n| new.records.contains_key(*n)).count() as u64;

    Ok(ArchiveDiff {
        old: Side {
            archive: old_path.to_path_buf(),
            gathered: gathered(old_path, Some(&old.metadata), old.newest_mtime),
            records: old.count,
        },
        new: Side {
            archive: new_path.to_path_buf(),
            gathered: gathered(new_path, Some(&new.metadata), new.newest_mtime),
            records: new.count,
        },
        all,
        gatherers: gatherer_changes(&old.metadata, &new.metadata),
        added,
        removed,
        unchanged: in_both - changed.len() as u64,
        changed,
        noise_only,
    })
}

fn gatherer_changes(old: &GathersMetadata, new: &GathersMetadata) -> Vec<GathererChange> {
    let state = |m: &GathersMetadata| -> BTreeMap<String, GathererState> {
        m.status_reports
            .iter()
            .map(|r| {
                let row = super::GathererRow::from(r);
                let error = row.errors.first().cloned().or(row.panic.clone()).filter(|_| row.failed);
                (r.name.clone(), GathererState { version: row.version, sha256: row.sha256, failed: row.failed, error })
            })
            .collect()
    };
    let (a, b) = (state(old), state(new));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (o, n) = (a.get(name), b.get(name));
            let differs = match (o, n) {
                (Some(o), Some(n)) => o.version != n.version || o.sha256 != n.sha256 || o.failed != n.failed,
                _ => true,
            };
            differs.then(|| GathererChange { name: name.clone(), old: o.cloned(), new: n.cloned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(d: &ValueDiff) -> Vec<String> {
        d.changes.iter().map(|c| c.path.clone()).collect()
    }

    #[test]
    fn scalars_objects_and_odd_keys() {
        let old = json!({"metadata": {"name": "a", "labels": {"node-role.kubernetes.io/worker": "", "x": "1"}}, "spec": {"n": 1}});
        let new = json!({"metadata": {"name": "a", "labels": {"node-role.kubernetes.io/worker": "", "gpu": "true"}}, "spec": {"n": 2}});
        let d = diff_values(&old, &new, false);
        assert_eq!(
            d.changes,
            vec![
                FieldChange { path: ".metadata.labels.x".into(), old: Some(json!("1")), new: None },
                FieldChange { path: ".metadata.labels.gpu".into(), old: None, new: Some(json!("true")) },
                FieldChange { path: ".spec.n".into(), old: Some(json!(1)), new: Some(json!(2)) },
            ]
        );
        let d = diff_values(&json!({"a.b": 1, "c d": 2}), &json!({"a.b": 2, "c d": 3}), false);
        assert_eq!(paths(&d), [r#"["a.b"]"#, r#"["c d"]"#]);
        let d = diff_values(&json!([1]), &json!({"a": 1}), false);
        assert_eq!(paths(&d), ["."], "a whole-document change has the root path");
    }

    #[test]
    fn noise_is_ignored_but_counted_unless_all() {
        let old = json!({"metadata": {"resourceVersion": "1", "generation": 1, "managedFields": [{"a": 1}], "creationTimestamp": "t0"},
                         "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t1", "lastTransitionTime": "t1"}]}});
        let mut new = old.clone();
        new["metadata"]["resourceVersion"] = json!("2");
        new["metadata"]["generation"] = json!(2);
        new["metadata"]["managedFields"] = json!([]);
        new["status"]["conditions"][0]["lastHeartbeatTime"] = json!("t2");
        let d = diff_values(&old, &new, false);
        assert_eq!((d.changes.len(), d.ignored), (0, 4));
        let d = diff_values(&old, &new, true);
        assert_eq!(
            paths(&d),
            [
                ".metadata.resourceVersion",
                ".metadata.generation",
                ".metadata.managedFields[0]",
                ".status.conditions[type=Ready].lastHeartbeatTime"
            ]
        );
        assert_eq!(d.ignored, 0);
        new["metadata"]["creationTimestamp"] = json!("t9");
        assert_eq!(paths(&diff_values(&old, &new, false)), [".metadata.creationTimestamp"], "a recreated object is news");
        for key in ["lastProbeTime", "lastUpdateTime", "lastTimestamp", "observedGeneration", "managedFields"] {
            assert!(is_noise(key), "{key}");
        }
        for key in ["startTime", "creationTimestamp", "lastState", "status", "last"] {
            assert!(!is_noise(key), "{key}");
        }
    }

    #[test]
    fn conditions_and_containers_match_by_type_and_name() {
        let old = json!({"conditions": [{"type": "A", "status": "True"}, {"type": "Ready", "status": "True"}],
                         "containers": [{"name": "c 1", "image": "x:1"}]});
        let new = json!({"conditions": [{"type": "Ready", "status": "False"}, {"type": "A", "status": "True"}, {"type": "New", "status": "True"}],
                         "containers": [{"name": "c 1", "image": "x:2"}]});
        let d = diff_values(&old, &new, false);
        assert_eq!(
            d.changes,
            vec![
                FieldChange { path: ".conditions[type=Ready].status".into(), old: Some(json!("True")), new: Some(json!("False")) },
                FieldChange { path: ".conditions[type=New]".into(), old: None, new: Some(json!({"type": "New", "status": "True"})) },
                FieldChange { path: r#".containers[name="c 1"].image"#.into(), old: Some(json!("x:1")), new: Some(json!("x:2")) },
            ],
            "reordering alone is not a change"
        );
    }

    #[test]
    fn other_arrays_compare_by_position() {
        let d = diff_values(&json!({"a": [1, 2, 3]}), &json!({"a": [1, 5]}), false);
        assert_eq!(
            d.changes,
            vec![
                FieldChange { path: ".a[1]".into(), old: Some(json!(2)), new: Some(json!(5)) },
                FieldChange { path: ".a[2]".into(), old: Some(json!(3)), new: None },
            ]
        );
        // Duplicate `type`s: not an identity.
        let d = diff_values(&json!([{"type": "x", "v": 1}, {"type": "x", "v": 2}]), &json!([{"type": "x", "v": 1}, {"type": "x", "v": 3}]), false);
        assert_eq!(paths(&d), ["[1].v"]);
        // Null is a value, not an absence.
        let d = diff_values(&json!({"a": null}), &json!({}), false);
        assert_eq!(d.changes, vec![FieldChange { path: ".a".into(), old: Some(Value::Null), new: None }]);
    }

    #[test]
    fn gatherer_changes_cover_versions_failures_and_membership() {
        use insights_format::StatusReport;
        let r = |name: &str, version: &str, errors: Option<Vec<String>>| StatusReport {
            name: name.into(),
            version: version.into(),
            sha256: format!("{version}-sha"),
            errors,
            ..Default::default()
        };
        let old = GathersMetadata {
            status_reports: vec![r("same", "1", None), r("bumped", "1", None), r("breaks", "1", None), r("gone", "1", None)],
            ..Default::default()
        };
        let new = GathersMetadata {
            status_reports: vec![
                r("same", "1", None),
                r("bumped", "2", None),
                r("breaks", "1", Some(vec!["boom".into(), "more".into()])),
                r("added", "1", None),
            ],
            ..Default::default()
        };
        let changes = gatherer_changes(&old, &new);
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["added", "breaks", "bumped", "gone"]);
        assert!(changes[0].old.is_none() && changes[3].new.is_none());
        assert_eq!(changes[1].new.as_ref().unwrap().error.as_deref(), Some("boom"));
        assert_eq!(changes[2].new.as_ref().unwrap().version.as_deref(), Some("2"));
    }
}
