//! The simulated cluster's object store: fixture objects loaded from a directory, indexed by
//! resource type and sorted by namespace/name so that paging is stable, plus the pods'
//! container logs (`logs/<namespace>/<pod>/<container>.log`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::resources::{self, ResourceType};
use super::SimError;

/// Renders the `i`-th synthetic object of a family. The store only needs this much of
/// `--scale`'s templates (`scale.rs`), so it does not depend on that module.
pub trait Render: Send + Sync {
    /// The compact JSON of object `i`.
    fn render(&self, i: u32) -> Vec<u8>;
}

/// Where an object's JSON comes from.
#[derive(Clone)]
pub enum Body {
    /// Compact JSON, serialized once at load.
    Json(Bytes),
    /// A synthetic object rendered on demand from a template, so `--scale` costs no memory.
    Synthetic(Arc<dyn Render>, u32),
}

/// One object in the store, with the index fields selectors need.
#[derive(Clone)]
pub struct StoredObject {
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.resourceVersion`.
    pub resource_version: u64,
    /// The object itself.
    pub body: Body,
}

impl StoredObject {
    /// The compact JSON of the object.
    pub fn bytes(&self) -> Bytes {
        match &self.body {
            Body::Json(b) => b.clone(),
            Body::Synthetic(t, i) => Bytes::from(t.render(*i)),
        }
    }

    /// The object parsed (used for field selectors on non-metadata fields and tables).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes()).unwrap_or(Value::Null)
    }

    /// The sort key: namespace then name, as etcd keys order them.
    pub fn sort_key(&self) -> (&str, &str) {
        (self.namespace.as_deref().unwrap_or(""), &self.name)
    }
}

/// Annotation that makes an Event's timestamps relative to the time the fixtures are loaded:
/// `"600"` means "last seen ten minutes ago". Time filters (IO keeps events newer than its
/// reporting interval) then accept the same fixture on any day.
pub const AGE_ANNOTATION: &str = "gather-agent.test/age-seconds";

/// A container's log in the store: `(namespace, pod, container, previous)`.
pub type LogKey = (String, String, String, bool);

/// A snapshot of the cluster: resource types, their objects and the store's resourceVersion.
pub struct Cluster {
    /// Every served resource type (built-ins first, then CRD-declared ones).
    pub types: Vec<ResourceType>,
    objects: Vec<Vec<StoredObject>>,
    by_path: HashMap<(String, String, String), usize>,
    /// The list resourceVersion: higher than every object's.
    pub resource_version: u64,
    /// Non-fatal problems found while loading (guessed kinds, duplicates...).
    pub warnings: Vec<String>,
    logs: HashMap<LogKey, Bytes>,
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn split_api_version(av: &str) -> (&str, &str) {
    match av.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", av),
    }
}

impl Cluster {
    /// An empty cluster serving only the built-in types.
    pub fn empty() -> Self {
        let mut c = Cluster {
            types: Vec::new(),
            objects: Vec::new(),
            by_path: HashMap::new(),
            resource_version: 1,
            warnings: Vec::new(),
            logs: HashMap::new(),
        };
        for rt in resources::builtins() {
            c.add_type(rt);
        }
        c
    }

    fn add_type(&mut self, rt: ResourceType) -> usize {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        if let Some(&i) = self.by_path.get(&key) {
            return i;
        }
        self.types.push(rt);
        self.objects.push(Vec::new());
        self.by_path.insert(key, self.types.len() - 1);
        self.types.len() - 1
    }

    /// Loads every `*.json` fixture under `dir` (see `testdata/README.md` for the format).
    pub fn load_dir(dir: &Path) -> Result<Self, SimError> {
        if !dir.is_dir() {
            return Err(SimError::Fixtures(format!(
                "fixture directory {} does not exist or is not a directory",
                dir.display()
            )));
        }
        let mut files = Vec::new();
        collect_json_files(dir, &mut files)
            .map_err(|e| SimError::Fixtures(format!("reading {}: {e}", dir.display())))?;
        files.sort();
        let mut objects = Vec::new();
        for path in &files {
            let text = std::fs::read(path)
                .map_err(|e| SimError::Fixtures(format!("reading {}: {e}", path.display())))?;
            let value: Value = serde_json::from_slice(&text)
                .map_err(|e| SimError::Fixtures(format!("{}: not valid JSON: {e}", path.display())))?;
            let source = path.strip_prefix(dir).unwrap_or(path).display().to_string();
            flatten(value, &source, &mut objects)?;
        }
        let mut cluster = Self::from_objects(objects)?;
        if files.is_empty() {
            cluster
                .warnings
                .push(format!("no *.json fixtures under {}", dir.display()));
        }
        let mut logs = Vec::new();
        collect_log_files(dir, dir, &mut logs)
            .map_err(|e| SimError::Fixtures(format!("reading {}: {e}", dir.join("logs").display())))?;
        for (rel, path) in logs {
            let text = std::fs::read(&path)
                .map_err(|e| SimError::Fixtures(format!("reading {}: {e}", path.display())))?;
            cluster.add_log(&rel, Bytes::from(text));
        }
        Ok(cluster)
    }

    /// Loads in-memory fixture files, (path relative to the fixture root, bytes), with the
    /// rules of [`Cluster::load_dir`]: `*.json` only, path components starting with `.` or
    /// `_` skipped, files taken in path order.
    pub fn load_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Self, SimError> {
        let (mut files, logs): (Vec<(&str, &[u8])>, Vec<(&str, &[u8])>) = files
            .into_iter()
            .filter(|(path, _)| !path.split('/').any(|c| c.starts_with('.') || c.starts_with('_')))
            .filter(|(path, _)| path.ends_with(".json") || log_key(path).is_some())
            .partition(|(path, _)| path.ends_with(".json"));
        // Path order, as `load_dir` sorts: resource versions are assigned in this order.
        files.sort_by(|a, b| Path::new(a.0).cmp(Path::new(b.0)));
        let mut objects = Vec::new();
        for (path, bytes) in &files {
            let value: Value = serde_json::from_slice(bytes)
                .map_err(|e| SimError::Fixtures(format!("{path}: not valid JSON: {e}")))?;
            flatten(value, path, &mut objects)?;
        }
        let mut cluster = Self::from_objects(objects)?;
        if files.is_empty() {
            cluster.warnings.push("no *.json fixtures among the in-memory files".to_owned());
        }
        for (path, bytes) in logs {
            cluster.add_log(path, Bytes::copy_from_slice(bytes));
        }
        Ok(cluster)
    }

    /// Builds a cluster from objects (each with a source name used in messages). Events with
    /// an [`AGE_ANNOTATION`] get their timestamps set relative to now.
    pub fn from_objects(objects: Vec<(Value, String)>) -> Result<Self, SimError> {
        Self::from_objects_at(objects, time::OffsetDateTime::now_utc())
    }

    /// [`Cluster::from_objects`] with the load time given, for tests.
    pub fn from_objects_at(objects: Vec<(Value, String)>, now: time::OffsetDateTime) -> Result<Self, SimError> {
        let mut c = Cluster::empty();
        // CRDs first, so that the objects they declare resolve to the declared names.
        for (obj, source) in &objects {
            if obj.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                let rts = ResourceType::from_crd(obj)
                    .map_err(|e| SimError::Fixtures(format!("{source}: {e}")))?;
                for rt in rts {
                    c.add_type(rt);
                }
            }
        }
        let mut max_rv = 0u64;
        let mut next_rv = 1000u64;
        let mut seen: HashMap<(usize, String, String), String> = HashMap::new();
        let mut namespaces_used = BTreeSet::new();
        for (mut obj, source) in objects {
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
            let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
            if kind.is_empty() || api_version.is_empty() || name.is_empty() {
                return Err(SimError::Fixtures(format!(
                    "{source}: every object needs apiVersion, kind and metadata.name (got apiVersion={api_version:?} kind={kind:?} name={name:?})"
                )));
            }
            let (group, version) = split_api_version(&api_version);
            let mut namespace = meta_str(&obj, "namespace").map(str::to_owned);
            let idx = match c
                .types
                .iter()
                .position(|t| t.group == group && t.version == version && t.kind == kind)
            {
                Some(i) => i,
                None => {
                    let rt = ResourceType::guess(group, version, &kind, namespace.is_some());
                    c.warnings.push(format!(
                        "{source}: no CustomResourceDefinition declares {kind}.{group}/{version}; serving it as {} ({})",
                        rt.plural,
                        if rt.namespaced { "namespaced" } else { "cluster-scoped" }
                    ));
                    c.add_type(rt)
                }
            };
            let rt = &c.types[idx];
            if rt.namespaced && namespace.is_none() {
                c.warnings.push(format!("{source}: namespaced {kind} {name} has no namespace; using \"default\""));
                namespace = Some("default".into());
                set_meta(&mut obj, "namespace", Value::String("default".into()));
            } else if !rt.namespaced && namespace.is_some() {
                c.warnings.push(format!("{source}: cluster-scoped {kind} {name} has a namespace; ignoring it"));
                namespace = None;
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("namespace");
                }
            }
            if let Some(age) = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(AGE_ANNOTATION))
                .and_then(Value::as_str)
            {
                let age: i64 = age.trim().parse().map_err(|_| {
                    SimError::Fixtures(format!("{source}: {AGE_ANNOTATION} must be a whole number of seconds, got {age:?}"))
                })?;
                set_event_times(&mut obj, now - time::Duration::seconds(age));
            }
            let rv = match meta_str(&obj, "resourceVersion").and_then(|s| s.parse::<u64>().ok()) {
                Some(rv) => rv,
                None => {
                    next_rv += 1;
                    set_meta(&mut obj, "resourceVersion", Value::String(next_rv.to_string()));
                    next_rv
                }
            };
            max_rv = max_rv.max(rv);
            if let Some(ns) = &namespace {
                namespaces_used.insert(ns.clone());
            }
            let labels = labels_of(&obj);
            let key = (idx, namespace.clone().unwrap_or_default(), name.clone());
            if let Some(prev) = seen.insert(key, source.clone()) {
                c.warnings.push(format!("{source}: {kind} {name} also defined in {prev}; the later file wins"));
                c.objects[idx].retain(|o| !(o.name == name && o.namespace == namespace));
            }
            let bytes = serde_json::to_vec(&obj).map_err(|e| SimError::Fixtures(format!("{source}: {e}")))?;
            c.objects[idx].push(StoredObject {
                namespace,
                name,
                labels,
                resource_version: rv,
                body: Body::Json(Bytes::from(bytes)),
            });
        }
        c.resource_version = max_rv.max(next_rv) + 1;
        c.ensure_namespaces(namespaces_used);
        c.sort();
        Ok(c)
    }

    /// Adds a Namespace object for every namespace in use that has none, as the API server
    /// would refuse objects in a namespace that does not exist.
    pub(crate) fn ensure_namespaces(&mut self, used: BTreeSet<String>) {
        let ns_idx = self.type_index("", "v1", "namespaces").expect("namespaces is built in");
        let existing: BTreeSet<String> = self.objects[ns_idx].iter().map(|o| o.name.clone()).collect();
        for ns in used.difference(&existing) {
            let obj = serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": synthetic_uid(&format!("ns/{ns}")),
                             "resourceVersion": self.resource_version.to_string(),
                             "creationTimestamp": "2021-07-07T11:00:00Z",
                             "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            self.objects[ns_idx].push(StoredObject {
                namespace: None,
                name: ns.clone(),
                labels: labels_of(&obj),
                resource_version: self.resource_version,
                body: Body::Json(Bytes::from(serde_json::to_vec(&obj).expect("json"))),
            });
        }
    }

    pub(crate) fn push_object(&mut self, idx: usize, obj: StoredObject) {
        self.objects[idx].push(obj);
    }

    pub(crate) fn sort(&mut self) {
        for list in &mut self.objects {
            list.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        }
    }

    /// Index of the resource type served at `group/version/plural`.
    pub fn type_index(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .copied()
    }

    /// The objects of resource type `idx`, sorted by namespace/name.
    pub fn objects(&self, idx: usize) -> &[StoredObject] {
        &self.objects[idx]
    }

    /// Adds the log at fixture path `rel` (`logs/<ns>/<pod>/<container>[.previous].log`);
    /// a log of a pod the fixtures do not hold is kept, with a warning.
    fn add_log(&mut self, rel: &str, text: Bytes) {
        let Some(key) = log_key(rel) else { return };
        let has_pod = self.type_index("", "v1", "pods").is_some_and(|i| {
            self.objects[i]
                .binary_search_by(|o| o.sort_key().cmp(&(key.0.as_str(), key.1.as_str())))
                .is_ok()
        });
        if !has_pod {
            self.warnings.push(format!("{rel}: no pod {}/{} in the fixtures holds this log", key.0, key.1));
        }
        self.logs.insert(key, text);
    }

    /// The log of `container` in pod `namespace/pod` (the previous instance's if `previous`).
    pub fn container_log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<&Bytes> {
        self.logs.get(&(namespace.to_owned(), pod.to_owned(), container.to_owned(), previous))
    }

    /// Number of objects of each resource type that has any, for logs (`plural.group` → n).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.types
            .iter()
            .zip(&self.objects)
            .filter(|(_, o)| !o.is_empty())
            .map(|(t, o)| {
                let name = if t.group.is_empty() { t.plural.clone() } else { format!("{}.{}", t.plural, t.group) };
                (name, o.len())
            })
            .collect()
    }
}

fn set_meta(obj: &mut Value, field: &str, v: Value) {
    if let Some(obj) = obj.as_object_mut() {
        let meta = obj.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = meta.as_object_mut() {
            m.insert(field.to_owned(), v);
        }
    }
}

/// Sets an Event's times to `at`: `lastTimestamp`, `firstTimestamp`, the creation time, and
/// the MicroTime fields `eventTime` and `series.lastObservedTime` where they are set.
fn set_event_times(obj: &mut Value, at: time::OffsetDateTime) {
    let secs = at.replace_nanosecond(0).unwrap_or(at);
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    };
    let micro = {
        let t = at.replace_nanosecond(at.microsecond() * 1000).unwrap_or(at);
        let s = rfc3339(t);
        // MicroTime always has six fraction digits (`2006-01-02T15:04:05.000000Z`).
        match s.split_once('.') {
            Some((head, frac)) => format!("{head}.{:0<6}Z", frac.trim_end_matches('Z')),
            None => format!("{}.000000Z", s.trim_end_matches('Z')),
        }
    };
    let Some(o) = obj.as_object_mut() else { return };
    for field in ["lastTimestamp", "firstTimestamp"] {
        o.insert(field.to_owned(), Value::String(rfc3339(secs)));
    }
    if o.get("eventTime").is_some_and(|v| !v.is_null()) {
        o.insert("eventTime".to_owned(), Value::String(micro.clone()));
    }
    if let Some(series) = o.get_mut("series").and_then(Value::as_object_mut) {
        series.insert("lastObservedTime".to_owned(), Value::String(micro));
    }
    set_meta(obj, "creationTimestamp", Value::String(rfc3339(secs)));
}

/// Parses a fixture log path, `logs/<namespace>/<pod>/<container>.log` (or
/// `<container>.previous.log`, the log of the container's previous instance).
pub fn log_key(rel: &str) -> Option<LogKey> {
    let rel = rel.replace('\\', "/");
    let mut parts = rel.split('/');
    let (Some("logs"), Some(ns), Some(pod), Some(file), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let stem = file.strip_suffix(".log")?;
    let (container, previous) = match stem.strip_suffix(".previous") {
        Some(c) => (c, true),
        None => (stem, false),
    };
    (!ns.is_empty() && !pod.is_empty() && !container.is_empty())
        .then(|| (ns.to_owned(), pod.to_owned(), container.to_owned(), previous))
}

/// `metadata.labels` as a map (non-string values are ignored, as the API server refuses them).
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A stable, UUID-shaped id derived from a string.
pub fn synthetic_uid(seed: &str) -> String {
    // FNV-1a, twice with different offsets: stable across runs, no extra dependency.
    let h = |offset: u64| {
        seed.bytes()
            .fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    };
    let (a, b) = (h(0xcbf2_9ce4_8422_2325), h(0x84222325cbf29ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0xfff) as u16,
        (b >> 52) as u16 & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

fn collect_json_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_json_files(&path, out)?;
        } else if name.ends_with(".json") {
            out.push(path);
        }
    }
    Ok(())
}

/// The `logs/<ns>/<pod>/<container>.log` files under a fixture root, as (relative path, path).
fn collect_log_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    let logs = if dir == root { root.join("logs") } else { dir.to_owned() };
    if !logs.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&logs)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_log_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if log_key(&rel).is_some() {
                out.push((rel, path));
            }
        }
    }
    Ok(())
}

/// Expands `List`/`<Kind>List` documents into their items, as `kubectl get -o json` writes them.
fn flatten(value: Value, source: &str, out: &mut Vec<(Value, String)>) -> Result<(), SimError> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let is_list = value.get("items").is_some_and(Value::is_array) && (kind == "List" || kind.ends_with("List") || kind.is_empty());
    if !is_list {
        out.push((value, source.to_owned()));
        return Ok(());
    }
    let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty()).map(str::to_owned);
    let list_api_version = value.get("apiVersion").and_then(Value::as_str).map(str::to_owned);
    let Value::Object(mut map) = value else { unreachable!("checked items above") };
    let Some(Value::Array(items)) = map.remove("items") else { unreachable!("checked items above") };
    for (i, mut item) in items.into_iter().enumerate() {
        let item_source = format!("{source}[{i}]");
        let Some(obj) = item.as_object_mut() else {
            return Err(SimError::Fixtures(format!("{item_source}: list item is not an object")));
        };
        if !obj.contains_key("kind") {
            if let Some(k) = &item_kind {
                obj.insert("kind".into(), Value::String(k.clone()));
            }
        }
        if !obj.contains_key("apiVersion") {
            if let (Some(av), Some(_)) = (&list_api_version, &item_kind) {
                obj.insert("apiVersion".into(), Value::String(av.clone()));
            }
        }
        flatten(item, &item_source, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// In-memory files load as the same directory does: same objects, same versions, and
    /// the same skip rules (`_`/`.` names, non-JSON).
    #[test]
    fn in_memory_files_load_like_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/cluster/sample");
        let from_dir = Cluster::load_dir(&dir).unwrap();
        let mut paths = Vec::new();
        collect_json_files(&dir, &mut paths).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = paths
            .iter()
            .map(|p| (p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned(), std::fs::read(p).unwrap()))
            .collect();
        files.reverse();
        files.push(("_ignored/bad.json".to_owned(), b"not json".to_vec()));
        files.push(("README.md".to_owned(), b"not json".to_vec()));
        let from_files = Cluster::load_files(files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))).unwrap();
        assert!(from_dir.counts().values().sum::<usize>() > 0);
        assert_eq!(from_files.counts(), from_dir.counts());
        let ids = |c: &Cluster| -> Vec<Vec<(Option<String>, String, u64)>> {
            c.objects.iter().map(|objs| objs.iter().map(|o| (o.namespace.clone(), o.name.clone(), o.resource_version)).collect()).collect()
        };
        assert_eq!(ids(&from_files), ids(&from_dir));
    }

    #[test]
    fn lists_are_flattened_and_items_inherit_kind() {
        let list = json!({"apiVersion": "v1", "kind": "NodeList", "items": [
            {"metadata": {"name": "b"}}, {"metadata": {"name": "a", "labels": {"x": "1"}}}
        ]});
        let mut out = Vec::new();
        flatten(list, "nodes.json", &mut out).unwrap();
        let c = Cluster::from_objects(out).unwrap();
        let idx = c.type_index("", "v1", "nodes").unwrap();
        let names: Vec<_> = c.objects(idx).iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c.objects(idx)[0].labels.get("x").map(String::as_str), Some("1"));
        let v = c.objects(idx)[1].value();
        assert_eq!(v["kind"], "Node");
        assert!(v["metadata"]["resourceVersion"].as_str().is_some());
    }

    #[test]
    fn missing_kind_is_a_clear_error() {
        let err = Cluster::from_objects(vec![(json!({"metadata": {"name": "x"}}), "f.json".into())])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("f.json") && err.contains("apiVersion, kind and metadata.name"), "{err}");
    }

    #[test]
    fn namespaces_are_synthesized_and_undeclared_kinds_guessed() {
        let objs = vec![
            (json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a"}}), "p".into()),
            (json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}), "w".into()),
        ];
        let c = Cluster::from_objects(objs).unwrap();
        let ns = c.type_index("", "v1", "namespaces").unwrap();
        assert_eq!(c.objects(ns)[0].name, "team-a");
        assert!(c.type_index("example.com", "v1", "widgets").is_some());
        assert!(c.warnings.iter().any(|w| w.contains("Widget")));
    }

    #[test]
    fn uids_are_stable_and_distinct() {
        assert_eq!(synthetic_uid("a"), synthetic_uid("a"));
        assert_ne!(synthetic_uid("a"), synthetic_uid("b"));
        assert_eq!(synthetic_uid("a").len(), 36);
    }
}
