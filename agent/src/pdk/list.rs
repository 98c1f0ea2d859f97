//! The bulk side of the paged-list host functions (`list_open`, `list_next`, `list_emit`,
//! ABI.md §5.13): splitting a page into items, projecting the fields a guest decides on, and
//! turning an item into a record with a templated name.
//!
//! Everything works on the page's bytes as the API server sent them: an item is kept as a
//! [`RawValue`] and only the parts a projection or a record name needs are parsed, so a
//! 500-pod page costs a scan rather than a full parse into a tree and a re-serialization.

use std::borrow::Cow;
use std::fmt;

use hostapi::abi::list::{MAX_FIELDS, PAGE_SIZE};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A map key, borrowed from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object's members in document order, values left unparsed.
pub(crate) struct Entries<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(k)) = map.next_key()? {
                    out.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Entries<'a> {
    pub(crate) fn parse(raw: &'a RawValue) -> Option<Self> {
        raw.get().starts_with('{').then(|| serde_json::from_str(raw.get()).ok())?
    }

    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| serde_json::from_str(v.get()).ok())
    }
}

pub(crate) fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    raw.get().starts_with('[').then(|| serde_json::from_str(raw.get()).ok())?
}

/// One page of a list, split into items.
#[derive(Debug)]
pub(crate) struct Page {
    /// The items, as sent.
    pub items: Vec<Box<RawValue>>,
    /// The `metadata.continue` token, when there are more pages.
    pub next: Option<String>,
}

/// Splits a 2xx list body into its items and continue token; `Err` when it is not a list.
pub(crate) fn parse_page(body: &[u8]) -> Result<Page, String> {
    fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }
    #[derive(Deserialize, Default)]
    struct Meta {
        #[serde(rename = "continue", default)]
        next: Option<String>,
    }
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        metadata: Meta,
        // Missing means "not a list"; `null` is an empty list.
        #[serde(default, deserialize_with = "present")]
        items: Option<Option<Vec<Box<RawValue>>>>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON list: {e}"))?;
    let items = doc.items.ok_or("the body has no `items`: the path is not a list")?.unwrap_or_default();
    Ok(Page { items, next: doc.metadata.next.filter(|t| !t.is_empty()) })
}

/// The path of one page: `path` plus `limit` and, after the first page, `continue`.
pub(crate) fn page_path(path: &str, next: Option<&str>) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    match next {
        None => format!("{path}{sep}limit={PAGE_SIZE}"),
        Some(token) => {
            let token: String = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC).collect();
            format!("{path}{sep}limit={PAGE_SIZE}&continue={token}")
        }
    }
}

/// Whether a list path is acceptable: it parses as an API path (so no `#` can cut off what
/// [`page_path`] appends), and the host owns `limit` and `continue`, however they are spelt
/// (`%6cimit`, `LIMIT`): the API server reads the first `limit`, so a guest's would win.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    let parsed = crate::apipath::ApiPath::parse(path).map_err(|e| e.to_string())?;
    match ["limit", "continue"].into_iter().find(|k| parsed.has_query_key(k)) {
        Some(k) => Err(format!("{k:?}: the host sets limit and continue itself")),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Any,
}

/// The fields a guest asked for, parsed, plus their union as a tree so an item is walked once.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    paths: Vec<Vec<Seg>>,
    tree: Node,
}

#[derive(Debug, Default, Clone)]
struct Node {
    /// The whole value at this point is wanted.
    whole: bool,
    children: Vec<(Seg, Node)>,
}

impl Node {
    fn insert(&mut self, segs: &[Seg]) {
        match segs.split_first() {
            None => self.whole = true,
            Some((seg, rest)) => {
                let child = match self.children.iter().position(|(s, _)| s == seg) {
                    Some(i) => &mut self.children[i].1,
                    None => {
                        self.children.push((seg.clone(), Node::default()));
                        &mut self.children.last_mut().expect("just pushed").1
                    }
                };
                child.insert(rest);
            }
        }
    }

    /// The children that apply to `key`: its own and `*`'s, merged when both exist.
    fn child_for(&self, key: &str) -> Option<Cow<'_, Node>> {
        let mut found = self.children.iter().filter(|(s, _)| matches!(s, Seg::Any) || matches!(s, Seg::Key(k) if k == key));
        let first = found.next()?;
        match found.next() {
            None => Some(Cow::Borrowed(&first.1)),
            Some(second) => {
                let mut merged = first.1.clone();
                merged.merge(&second.1);
                Some(Cow::Owned(merged))
            }
        }
    }

    fn merge(&mut self, other: &Node) {
        self.whole |= other.whole;
        for (seg, node) in &other.children {
            match self.children.iter_mut().find(|(s, _)| s == seg) {
                Some((_, mine)) => mine.merge(node),
                None => self.children.push((seg.clone(), node.clone())),
            }
        }
    }

    /// `raw` reduced to the parts this tree reaches, still as the page's own bytes: nothing
    /// is copied, and everything else is never parsed.
    fn prune<'a>(&self, raw: &'a RawValue) -> Pruned<'a> {
        if self.whole {
            return Pruned::Raw(raw);
        }
        if let Some(entries) = Entries::parse(raw) {
            let kept = entries.0.into_iter().filter_map(|(k, v)| self.child_for(&k).map(|c| (k, c.prune(v)))).collect();
            return Pruned::Object(kept);
        }
        if let Some(elements) = array(raw) {
            let pruned = elements
                .into_iter()
                .enumerate()
                .map(|(i, v)| self.child_for(&i.to_string()).map_or(Pruned::Null, |c| c.prune(v)))
                .collect();
            return Pruned::Array(pruned);
        }
        Pruned::Null
    }
}

/// An item cut down to what the fields reach, borrowing the page's bytes.
enum Pruned<'a> {
    /// A wanted value, as sent.
    Raw(&'a RawValue),
    Object(Vec<(Cow<'a, str>, Pruned<'a>)>),
    Array(Vec<Pruned<'a>>),
    Null,
}

impl<'a> Pruned<'a> {
    /// One level of a raw value opened up, for a field that goes deeper than a wanted value.
    fn open(raw: &'a RawValue) -> Pruned<'a> {
        if let Some(entries) = Entries::parse(raw) {
            return Pruned::Object(entries.0.into_iter().map(|(k, v)| (k, Pruned::Raw(v))).collect());
        }
        match array(raw) {
            Some(elements) => Pruned::Array(elements.into_iter().map(Pruned::Raw).collect()),
            None => Pruned::Null,
        }
    }

    fn write(&self, out: &mut Out) -> Result<(), Full> {
        match self {
            Pruned::Raw(raw) => out.push(raw.get().as_bytes()),
            Pruned::Null => out.push(b"null"),
            Pruned::Array(a) => {
                out.push(b"[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b",")?;
                    }
                    v.write(out)?;
                }
                out.push(b"]")
            }
            Pruned::Object(m) => {
                out.push(b"{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b",")?;
                    }
                    out.push(&serde_json::to_vec(k).expect("strings serialize"))?;
                    out.push(b":")?;
                    v.write(out)?;
                }
                out.push(b"}")
            }
        }
    }
}

/// The projection being built, refusing to grow past its cap.
struct Out {
    buf: Vec<u8>,
    cap: usize,
}

/// A projection stopped at its cap.
#[derive(Debug, thiserror::Error)]
#[error("the projection exceeds {cap} bytes (stopped after building {built})")]
pub(crate) struct Full {
    /// The cap.
    pub cap: usize,
    /// Bytes built before it stopped (host work done).
    pub built: usize,
}

impl Out {
    fn push(&mut self, bytes: &[u8]) -> Result<(), Full> {
        if self.buf.len() + bytes.len() > self.cap {
            return Err(Full { cap: self.cap, built: self.buf.len() });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}

impl Fields {
    /// Parses the wire form: JSON Pointers (RFC 6901) joined by `\n`, where a `*` segment
    /// means every element of an array (or every member of an object). A `~` must be
    /// followed by `0` or `1`.
    pub fn parse(wire: &str) -> Result<Fields, String> {
        let mut fields = Fields::default();
        for line in wire.split('\n').map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty()) {
            let Some(rest) = line.strip_prefix('/') else {
                return Err(format!("field {line:?} is not a JSON Pointer (it must start with '/')"));
            };
            let segs = rest.split('/').map(segment).collect::<Result<Vec<Seg>, String>>()?;
            fields.tree.insert(&segs);
            fields.paths.push(segs);
            if fields.paths.len() > MAX_FIELDS {
                return Err(format!("more than {MAX_FIELDS} fields"));
            }
        }
        Ok(fields)
    }

    /// The page as the guest sees it: one JSON array per item, holding each field's value;
    /// `Err` as soon as it would exceed `cap` bytes, so an oversized one is never built.
    pub fn project(&self, items: &[Box<RawValue>], cap: usize) -> Result<Vec<u8>, Full> {
        let mut out = Out { buf: Vec::new(), cap };
        out.push(b"[")?;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b",")?;
            }
            out.push(b"[")?;
            if !self.paths.is_empty() {
                let pruned = self.tree.prune(item);
                for (j, p) in self.paths.iter().enumerate() {
                    if j > 0 {
                        out.push(b",")?;
                    }
                    resolve(&pruned, p, &mut out)?;
                }
            }
            out.push(b"]")?;
        }
        out.push(b"]")?;
        Ok(out.buf)
    }
}

/// One pointer segment, unescaped (`~1` is `/`, `~0` is `~`; any other `~` is an error).
pub(crate) fn segment(s: &str) -> Result<Seg, String> {
    if s == "*" {
        return Ok(Seg::Any);
    }
    let mut key = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, c == '~') {
            (_, false) => key.push(c),
            (_, true) => match chars.next() {
                Some('0') => key.push('~'),
                Some('1') => key.push('/'),
                _ => return Err(format!("segment {s:?}: '~' must be followed by '0' or '1'")),
            },
        }
    }
    Ok(Seg::Key(key))
}

/// Writes the value `segs` reach from `v` (`null` when missing; an array for `*`).
fn resolve(v: &Pruned<'_>, segs: &[Seg], out: &mut Out) -> Result<(), Full> {
    let Some((seg, rest)) = segs.split_first() else { return v.write(out) };
    match (seg, v) {
        (_, Pruned::Raw(raw)) => resolve(&Pruned::open(raw), segs, out),
        (Seg::Key(k), Pruned::Object(m)) => match m.iter().rev().find(|(key, _)| key == k) {
            Some((_, c)) => resolve(c, rest, out),
            None => out.push(b"null"),
        },
        (Seg::Key(k), Pruned::Array(a)) => match k.parse::<usize>().ok().and_then(|i| a.get(i)) {
            Some(c) => resolve(c, rest, out),
            None => out.push(b"null"),
        },
        (Seg::Any, Pruned::Array(a)) => many(a.iter(), rest, out),
        (Seg::Any, Pruned::Object(m)) => many(m.iter().map(|(_, c)| c), rest, out),
        _ => out.push(b"null"),
    }
}

fn many<'p, 'a: 'p>(values: impl Iterator<Item = &'p Pruned<'a>>, rest: &[Seg], out: &mut Out) -> Result<(), Full> {
    out.push(b"[")?;
    for (i, c) in values.enumerate() {
        if i > 0 {
            out.push(b",")?;
        }
        resolve(c, rest, out)?;
    }
    out.push(b"]")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Name,
    Namespace,
}

/// A record name template: literal text with `{name}` and `{namespace}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(Vec<Part>);

impl Template {
    /// Parses `text`; any `{` or `}` outside the two placeholders is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.is_empty() {
            return Err("the record name template is empty".into());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let cut = rest.find(['{', '}']).unwrap_or(rest.len());
            if cut > 0 {
                parts.push(Part::Literal(rest[..cut].to_owned()));
                rest = &rest[cut..];
                continue;
            }
            let part = if let Some(r) = rest.strip_prefix("{name}") {
                rest = r;
                Part::Name
            } else if let Some(r) = rest.strip_prefix("{namespace}") {
                rest = r;
                Part::Namespace
            } else {
                return Err(format!("template {text:?}: only {{name}} and {{namespace}} may appear in braces"));
            };
            parts.push(part);
        }
        Ok(Template(parts))
    }

    /// The record name for an item with this name and namespace.
    ///
    /// A segment over 255 bytes (a 253-byte Kubernetes name plus `.json`) is shortened by
    /// the ABI's rule ([`hostapi::record::shorten_name`]) rather than refused, and reported in
    /// [`Expanded::shortened_from`], so one long name never costs the gatherer its record.
    pub fn expand(&self, item: &ItemMeta) -> Result<Expanded, String> {
        let mut out = String::new();
        for part in &self.0 {
            let (what, value) = match part {
                Part::Literal(l) => {
                    out.push_str(l);
                    continue;
                }
                Part::Name => ("metadata.name", &item.name),
                Part::Namespace => ("metadata.namespace", &item.namespace),
            };
            if value.is_empty() || value.contains('/') {
                return Err(format!("the item's {what} {value:?} cannot fill a record name segment"));
            }
            out.push_str(value);
        }
        Ok(match hostapi::record::shorten_name(&out) {
            Cow::Borrowed(_) => Expanded { name: out, shortened_from: None },
            Cow::Owned(short) => Expanded { name: short, shortened_from: Some(out.len()) },
        })
    }
}

/// A record name made from a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    /// The record name.
    pub name: String,
    /// When an over-long segment was shortened: the length in bytes of the name before.
    pub shortened_from: Option<usize>,
}

impl Expanded {
    /// The report warning for a shortened name, if this one was.
    pub fn warning(&self) -> Option<String> {
        self.shortened_from.map(|before| {
            format!(
                "record name shortened to {:?}: a segment of the {before}-byte name exceeded {} bytes (ABI.md §7)",
                self.name,
                hostapi::abi::limits::RECORD_SEGMENT_BYTES
            )
        })
    }
}

/// What a record name template needs from an item.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ItemMeta {
    /// `metadata.name`, or empty.
    pub name: String,
    /// `metadata.namespace`, or empty.
    pub namespace: String,
}

/// An item as a record: its bytes (without `metadata.managedFields` when `strip`), plus its
/// name and namespace. Only the item's top level and `metadata` are parsed.
pub(crate) fn render_item(raw: &RawValue, strip: bool) -> (Vec<u8>, ItemMeta) {
    let text = raw.get();
    let Some(top) = Entries::parse(raw) else { return (text.as_bytes().to_vec(), ItemMeta::default()) };
    let Some(meta) = top.get("metadata").and_then(Entries::parse) else {
        return (text.as_bytes().to_vec(), ItemMeta::default());
    };
    let item = ItemMeta { name: meta.string("name").unwrap_or_default(), namespace: meta.string("namespace").unwrap_or_default() };
    if !strip || meta.get("managedFields").is_none() {
        return (text.as_bytes().to_vec(), item);
    }
    let mut out = Vec::with_capacity(text.len());
    out.push(b'{');
    for (i, (k, v)) in top.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(&mut out, k);
        if k == "metadata" {
            out.push(b'{');
            let kept = meta.0.iter().filter(|(k, _)| k != "managedFields");
            for (j, (mk, mv)) in kept.enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write_key(&mut out, mk);
                out.extend_from_slice(mv.get().as_bytes());
            }
            out.push(b'}');
        } else {
            out.extend_from_slice(v.get().as_bytes());
        }
    }
    out.push(b'}');
    (out, item)
}

pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) {
    serde_json::to_writer(&mut *out, key).expect("writing to a Vec cannot fail");
    out.push(b':');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn raw(v: Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    #[test]
    fn pages_split_into_items_and_a_token() {
        let page = parse_page(br#"{"kind":"PodList","metadata":{"continue":"abc"},"items":[{"a":1},{"b":[2, 3]}]}"#).unwrap();
        assert_eq!(page.items.iter().map(|i| i.get()).collect::<Vec<_>>(), [r#"{"a":1}"#, r#"{"b":[2, 3]}"#]);
        assert_eq!(page.next.as_deref(), Some("abc"));
        let last = parse_page(br#"{"metadata":{"continue":""},"items":null}"#).unwrap();
        assert!(last.items.is_empty() && last.next.is_none());
        assert!(parse_page(br#"{"kind":"Pod","metadata":{"name":"x"}}"#).unwrap_err().contains("not a list"));
        assert!(parse_page(b"nope").is_err());
    }

    #[test]
    fn page_paths_carry_limit_and_an_encoded_token() {
        assert_eq!(page_path("/api/v1/pods", None), "/api/v1/pods?limit=500");
        assert_eq!(page_path("/api/v1/pods?labelSelector=a", Some("x+/=")), "/api/v1/pods?labelSelector=a&limit=500&continue=x%2B%2F%3D");
        assert!(check_path("/api/v1/pods?limit=5").is_err());
        assert!(check_path("/api/v1/pods?fieldSelector=a&continue=x").is_err());
        assert!(check_path("/api/v1/pods?labelSelector=limit").is_ok());
        for hostile in ["/api/v1/pods?x=1#", "/api/v1/pods#", "/api/v1/pods?%6cimit=5000", "/api/v1/pods?LIMIT=5", "/api/v1/pods?a=1;limit=5", "/api/v1/pods?limit"] {
            assert!(check_path(hostile).is_err(), "{hostile}");
        }
    }

    #[test]
    fn projections_follow_pointers_and_wildcards() {
        let fields = Fields::parse("/metadata/name\n/status/containerStatuses/*/restartCount\n/missing/x\n/metadata/annotations/a~1b\n/spec/containers/1/name\n/status").unwrap();
        let pod = raw(json!({
            "metadata": {"name": "p", "annotations": {"a/b": "slash"}, "managedFields": [1]},
            "spec": {"containers": [{"name": "c0"}, {"name": "c1"}]},
            "status": {"phase": "Running", "containerStatuses": [{"restartCount": 0}, {"restartCount": 3}]}
        }));
        let rows: Value = serde_json::from_slice(&fields.project(&[pod], usize::MAX).unwrap()).unwrap();
        assert_eq!(rows, json!([["p", [0, 3], null, "slash", "c1",
            {"phase": "Running", "containerStatuses": [{"restartCount": 0}, {"restartCount": 3}]}]]));
        let none: Value = serde_json::from_slice(&Fields::parse("").unwrap().project(&[raw(json!({"a": 1}))], usize::MAX).unwrap()).unwrap();
        assert_eq!(none, json!([[]]));
        assert!(Fields::parse("status/phase").is_err());
        assert!(Fields::parse(&"/a\n".repeat(MAX_FIELDS + 1)).is_err());
    }

    #[test]
    fn bad_pointer_escapes_are_refused() {
        for bad in ["/~2", "/a~", "/a/~x/b", "/~"] {
            assert!(Fields::parse(bad).is_err(), "{bad:?}");
        }
        let f = Fields::parse("/~01/~10").unwrap();
        assert_eq!(f.paths, [vec![Seg::Key("~1".into()), Seg::Key("/0".into())]]);
    }

    #[test]
    fn projections_stop_at_their_cap_without_building_the_rest() {
        let item = raw(json!({"a": "x".repeat(1000), "b": [1, 2, 3]}));
        let items = vec![item; 100];
        let fields = Fields::parse(&"/*\n".repeat(MAX_FIELDS)).unwrap();
        let full = fields.project(&items, usize::MAX).unwrap();
        assert!(full.len() > 32 * 100 * 1000, "{}", full.len());
        let err = fields.project(&items, 50_000).unwrap_err();
        assert_eq!(err.cap, 50_000);
        assert!(err.built <= 50_000);
        let rows: Value = serde_json::from_slice(&fields.project(&items[..1], 100_000).unwrap()).unwrap();
        assert_eq!(rows[0][31], json!(["x".repeat(1000), [1, 2, 3]]));
    }

    #[test]
    fn templates_take_name_and_namespace_only() {
        let t = Template::parse("config/pod/{namespace}/{name}.json").unwrap();
        let item = ItemMeta { name: "p".into(), namespace: "ns".into() };
        assert_eq!(t.expand(&item).unwrap(), Expanded { name: "config/pod/ns/p.json".into(), shortened_from: None });
        assert!(t.expand(&ItemMeta { name: "p".into(), namespace: String::new() }).is_err());
        assert!(t.expand(&ItemMeta { name: "a/b".into(), namespace: "ns".into() }).is_err());
        for bad in ["", "config/{uid}.json", "config/{name", "config/name}", "{{name}}"] {
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Template::parse("config/id").unwrap().expand(&ItemMeta::default()).unwrap().name, "config/id");
    }

    #[test]
    fn templates_shorten_an_over_long_segment_by_the_abi_rule() {
        let t = Template::parse("config/pod/{namespace}/{name}.json").unwrap();
        for len in [250, 251, 253] {
            let item = ItemMeta { name: "p".repeat(len), namespace: "openshift-x".into() };
            let expanded = t.expand(&item).unwrap();
            let full = format!("config/pod/openshift-x/{}.json", item.name);
            if full.rsplit('/').next().unwrap().len() <= 255 {
                assert_eq!(expanded, Expanded { name: full, shortened_from: None });
                continue;
            }
            let segment = format!("{}.json", item.name);
            assert_eq!(expanded.name, format!("config/pod/openshift-x/{}", hostapi::record::shorten_segment(&segment)));
            assert_eq!(expanded.shortened_from, Some(full.len()));
            assert!(hostapi::record::validate_name(&expanded.name).is_ok(), "{len}");
            assert!(expanded.warning().unwrap().contains("shortened"));
        }
    }

    #[test]
    fn items_render_without_managed_fields_keeping_order_and_bytes() {
        let text = r#"{"kind":"Node","metadata":{"name":"n\u00e9","managedFields":[{"manager":"x"}],"uid":"1"},"status":{"a":1.50}}"#;
        let item = RawValue::from_string(text.to_owned()).unwrap();
        let (bytes, meta) = render_item(&item, true);
        assert_eq!(String::from_utf8(bytes).unwrap(), r#"{"kind":"Node","metadata":{"name":"n\u00e9","uid":"1"},"status":{"a":1.50}}"#);
        assert_eq!(meta, ItemMeta { name: "né".into(), namespace: String::new() });
        let (kept, _) = render_item(&item, false);
        assert_eq!(kept, text.as_bytes());
        let (plain, meta) = render_item(&RawValue::from_string("[1]".into()).unwrap(), true);
        assert_eq!((plain, meta), (b"[1]".to_vec(), ItemMeta::default()));
    }
}
