//! Redaction specs (ABI.md §5.14): the rules that hide values in a JSON document before it
//! becomes a record, whether a gatherer asks for them (`list_redact`, `record_redact`) or the
//! host applies them on its own (`anonymize.rs`).
//!
//! A spec is UTF-8 text, one rule per line, `<action> <json-pointer> [except-product-keys]`.
//! Pointers are RFC 6901 with `*` for every element or member, as in list projections
//! (`pdk/list.rs`, whose pointer segments and raw-JSON walking this reuses).
//!
//! A document is rewritten from its own bytes, like a projection: only the objects and arrays
//! on the path of some rule are opened, everything else is copied as sent. So redacting costs
//! a scan of the document plus the rewritten parts, and holds at most the output and one
//! level of member references per pointer segment, never a parsed tree of the whole document.

use std::borrow::Cow;
use std::fmt;

use hostapi::abi::redact::{EXCEPT_PRODUCT_KEYS, MAX_RULES, MAX_SEGMENTS, MAX_SPEC_BYTES, PRODUCT_KEY_MARKERS};
use serde_json::value::RawValue;

use crate::pdk::list::{array, segment, write_key, Entries, Seg};

/// What a rule does to the values its pointer reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delete the member (or array element).
    Remove,
    /// A string becomes `""`; any other value becomes `null`.
    Blank,
    /// A string becomes as many `x` as it has bytes (the Insights Operator's
    /// `anonymize.String`); other values are left alone.
    Xout,
    /// Every character of a string other than `.`, `-`, `/` and `:` becomes `x` (IO's
    /// `anonymize.URL`); other values are left alone.
    Url,
    /// A string is split at `,` and each part treated as `url` (IO's `anonymize.URLCSV`); an
    /// array has each string element treated as `url` (IO's `anonymize.URLSlice`).
    UrlList,
    /// A string made only of PEM blocks has each block replaced by an empty certificate
    /// block (IO's config map rule); any other value is left alone.
    Pem,
}

impl Action {
    fn parse(word: &str) -> Option<Action> {
        Some(match word {
            "remove" => Action::Remove,
            "blank" => Action::Blank,
            "xout" => Action::Xout,
            "url" => Action::Url,
            "url-list" => Action::UrlList,
            "pem" => Action::Pem,
            _ => return None,
        })
    }

    /// The action's name in a spec.
    pub fn name(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Blank => "blank",
            Action::Xout => "xout",
            Action::Url => "url",
            Action::UrlList => "url-list",
            Action::Pem => "pem",
        }
    }
}

/// One rule: an action on what a pointer reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    action: Action,
    segs: Vec<Seg>,
    /// Skip a member whose key, as matched by the pointer's last `*`, is a product key.
    except_product_keys: bool,
    /// Index of the pointer's last `*` segment (set when `except_product_keys`).
    last_star: usize,
}

/// Why a spec was refused; the text names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Longer than [`MAX_SPEC_BYTES`].
    #[error("redaction spec is {0} bytes (max {MAX_SPEC_BYTES})")]
    TooLong(usize),
    /// More than [`MAX_RULES`] rules.
    #[error("redaction spec has more than {MAX_RULES} rules")]
    TooManyRules,
    /// A line breaks the grammar.
    #[error("redaction spec line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A parsed redaction spec. The empty spec changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    rules: Vec<Rule>,
}

/// The input of [`Spec::apply`] was not JSON.
#[derive(Debug, thiserror::Error)]
#[error("the data is not JSON: {0}")]
pub struct NotJson(#[source] pub serde_json::Error);

impl Spec {
    /// Parses a guest's spec, within the ABI's bounds (rules, pointer segments, bytes).
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        if text.len() > MAX_SPEC_BYTES {
            return Err(SpecError::TooLong(text.len()));
        }
        Self::parse_unbounded(text, MAX_SEGMENTS, MAX_RULES)
    }

    /// Parses a spec of the host's own (the built-in anonymization table), whose pointers may
    /// be longer than a guest's.
    pub(crate) fn parse_builtin(text: &str) -> Result<Spec, SpecError> {
        Self::parse_unbounded(text, usize::MAX, usize::MAX)
    }

    fn parse_unbounded(text: &str, max_segments: usize, max_rules: usize) -> Result<Spec, SpecError> {
        let mut rules = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| SpecError::Line { line: i + 1, message };
            let mut words = line.split(' ').filter(|w| !w.is_empty());
            let (Some(action), Some(pointer)) = (words.next(), words.next()) else {
                return Err(err(format!("{:?}: expected `<action> <json-pointer> [{EXCEPT_PRODUCT_KEYS}]`", clip(line))));
            };
            let action = Action::parse(action).ok_or_else(|| {
                err(format!("unknown action {:?} (expected one of {})", clip(action), hostapi::abi::redact::ACTIONS.join(", ")))
            })?;
            let except = match words.next() {
                None => false,
                Some(EXCEPT_PRODUCT_KEYS) => true,
                Some(other) => return Err(err(format!("unexpected {:?} (only {EXCEPT_PRODUCT_KEYS} may follow the pointer)", clip(other)))),
            };
            if let Some(extra) = words.next() {
                return Err(err(format!("unexpected {:?} after the rule", clip(extra))));
            }
            let Some(rest) = pointer.strip_prefix('/') else {
                return Err(err(format!("pointer {:?} is not a JSON Pointer (it must start with '/')", clip(pointer))));
            };
            let segs = rest.split('/').map(segment).collect::<Result<Vec<Seg>, String>>().map_err(err)?;
            if segs.len() > max_segments {
                return Err(err(format!("pointer has {} segments (max {max_segments})", segs.len())));
            }
            let last_star = segs.iter().rposition(|s| *s == Seg::Any);
            if except && last_star.is_none() {
                return Err(err(format!("{EXCEPT_PRODUCT_KEYS} needs a `*` segment in the pointer to say which keys it tests")));
            }
            if rules.len() == max_rules {
                return Err(SpecError::TooManyRules);
            }
            rules.push(Rule { action, segs, except_product_keys: except, last_star: last_star.unwrap_or(0) });
        }
        Ok(Spec { rules })
    }

    /// Whether the spec has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The same rules, each pointer starting below `prefix` (for example `/items/*` to apply
    /// an object's rules to every item of a list). A prefix `*` is not a rule's "last `*`".
    pub(crate) fn under(&self, prefix: &[&str]) -> Spec {
        let pre: Vec<Seg> = prefix.iter().map(|s| segment(s).expect("host prefixes are valid segments")).collect();
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let mut segs = pre.clone();
                segs.extend(r.segs.iter().cloned());
                Rule { segs, last_star: r.last_star + pre.len(), ..r.clone() }
            })
            .collect();
        Spec { rules }
    }

    /// `data` (a JSON document) with the rules applied, or [`NotJson`]. Parts no rule
    /// reaches keep their bytes.
    pub fn apply(&self, data: &[u8]) -> Result<Vec<u8>, NotJson> {
        let raw: &RawValue = serde_json::from_slice(data).map_err(NotJson)?;
        if self.is_empty() {
            return Ok(raw.get().as_bytes().to_vec());
        }
        Ok(self.apply_raw(raw))
    }

    /// [`Spec::apply`] on an already-validated value.
    pub(crate) fn apply_raw(&self, raw: &RawValue) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.get().len());
        let states: Vec<State<'_>> = self.rules.iter().map(|rule| State { rule, pos: 0, product: false }).collect();
        rewrite(raw, &states, &mut out);
        out
    }
}

fn clip(s: &str) -> Cow<'_, str> {
    crate::text::clip(s, hostapi::abi::limits::QUOTE_BYTES)
}

/// A rule part-way down its pointer: the next segment to match is `segs[pos]`.
#[derive(Clone, Copy)]
struct State<'a> {
    rule: &'a Rule,
    pos: usize,
    /// Whether the key the rule's last `*` matched is a product key.
    product: bool,
}

/// Writes `raw` with the rules of `states` (none finished) applied below it.
fn rewrite(raw: &RawValue, states: &[State<'_>], out: &mut Vec<u8>) {
    if states.is_empty() {
        out.extend_from_slice(raw.get().as_bytes());
        return;
    }
    if let Some(entries) = Entries::parse(raw) {
        out.push(b'{');
        let mut first = true;
        for (key, value) in &entries.0 {
            let next = advance(states, key, true);
            let Some(written) = member(value, &next) else { continue };
            if !first {
                out.push(b',');
            }
            first = false;
            write_key(out, key);
            out.extend_from_slice(&written);
        }
        out.push(b'}');
        return;
    }
    if let Some(elements) = array(raw) {
        out.push(b'[');
        let mut first = true;
        for (i, value) in elements.iter().enumerate() {
            let index = i.to_string();
            let next = advance(states, &index, false);
            let Some(written) = member(value, &next) else { continue };
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&written);
        }
        out.push(b']');
        return;
    }
    // A scalar where a pointer wanted to go deeper: nothing to do.
    out.extend_from_slice(raw.get().as_bytes());
}

/// The states that continue into the member `key` (an object key, or an array index).
fn advance<'a>(states: &[State<'a>], key: &str, object_key: bool) -> Vec<State<'a>> {
    let mut next = Vec::new();
    for s in states {
        let matched = match &s.rule.segs[s.pos] {
            Seg::Any => true,
            Seg::Key(k) => k == key,
        };
        if !matched {
            continue;
        }
        let product = if s.rule.except_product_keys && s.pos == s.rule.last_star {
            // Array elements have no key, so they are never product keys.
            object_key && is_product_key(key)
        } else {
            s.product
        };
        next.push(State { rule: s.rule, pos: s.pos + 1, product });
    }
    next
}

/// Whether `key` is a product key (IO's `isProductNamespacedKey`).
pub fn is_product_key(key: &str) -> bool {
    PRODUCT_KEY_MARKERS.iter().any(|m| key.contains(m))
}

/// A member's value with the rules applied: `None` when it is removed.
fn member(value: &RawValue, states: &[State<'_>]) -> Option<Vec<u8>> {
    let (done, deeper): (Vec<State<'_>>, Vec<State<'_>>) = states.iter().partition(|s| s.pos == s.rule.segs.len());
    let done: Vec<Action> = done
        .iter()
        .filter(|s| !(s.rule.except_product_keys && s.product))
        .map(|s| s.rule.action)
        .collect();
    if done.contains(&Action::Remove) {
        return None;
    }
    let text = value.get();
    let is_string = text.starts_with('"');
    if done.contains(&Action::Blank) {
        return Some(if is_string { b"\"\"".to_vec() } else { b"null".to_vec() });
    }
    if is_string && !done.is_empty() {
        let mut s: String = serde_json::from_str(text).unwrap_or_default();
        for action in done {
            s = string_action(action, &s);
        }
        return Some(serde_json::to_vec(&s).expect("strings serialize"));
    }
    let mut out = Vec::new();
    if !done.is_empty() && done.contains(&Action::UrlList) && text.starts_with('[') {
        // `url-list` on an array: every string element is a URL.
        let url_each = Rule { action: Action::Url, segs: vec![Seg::Any], except_product_keys: false, last_star: 0 };
        let mut states = deeper.clone();
        states.push(State { rule: &url_each, pos: 0, product: false });
        rewrite(value, &states, &mut out);
        return Some(out);
    }
    rewrite(value, &deeper, &mut out);
    Some(out)
}

/// A string action on `s` (`remove` and `blank` are decided before).
fn string_action(action: Action, s: &str) -> String {
    match action {
        Action::Remove | Action::Blank => String::new(),
        Action::Xout => xout(s),
        Action::Url => url(s),
        Action::UrlList => s.split(',').map(url).collect::<Vec<_>>().join(","),
        Action::Pem => pem(s).unwrap_or_else(|| s.to_owned()),
    }
}

/// IO's `anonymize.String`: one `x` per byte.
pub fn xout(s: &str) -> String {
    "x".repeat(s.len())
}

/// IO's `anonymize.URL`: every character but `.`, `-`, `/` and `:` becomes `x`.
pub fn url(s: &str) -> String {
    s.chars().map(|c| if matches!(c, '.' | '-' | '/' | ':') { c } else { 'x' }).collect()
}

/// What IO writes in place of each PEM block of a config map value.
pub const ANONYMIZED_PEM_BLOCK: &str = "-----BEGIN CERTIFICATE-----\nANONYMIZED\n-----END CERTIFICATE-----\n";

/// IO's config map rule (`anonymizeConfigMap`): when `s` is a sequence of PEM blocks, one
/// anonymized block per block; `None` when it is not (IO then keeps the value).
pub fn pem(s: &str) -> Option<String> {
    let mut rest = s;
    let mut blocks = 0;
    loop {
        let begin = rest.find("-----BEGIN ")?;
        let after_begin = &rest[begin..];
        let end = after_begin.find("\n-----END ")? + 1;
        let end_line = &after_begin[end..];
        let close = end_line["-----END ".len()..].find("-----")? + "-----END ".len() + "-----".len();
        let tail = &end_line[close..];
        // The END line's own line break belongs to the block.
        rest = tail.strip_prefix("\r\n").or_else(|| tail.strip_prefix('\n')).unwrap_or(tail);
        blocks += 1;
        if rest.is_empty() {
            return Some(ANONYMIZED_PEM_BLOCK.repeat(blocks));
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.rules {
            let ptr: String = r
                .segs
                .iter()
                .map(|s| match s {
                    Seg::Any => "/*".to_owned(),
                    Seg::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
                })
                .collect();
            let except = if r.except_product_keys { format!(" {EXCEPT_PRODUCT_KEYS}") } else { String::new() };
            writeln!(f, "{} {ptr}{except}", r.action.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn run(spec: &str, doc: Value) -> Value {
        let spec = Spec::parse(spec).unwrap();
        serde_json::from_slice(&spec.apply(doc.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn remove_deletes_members_and_elements() {
        let doc = json!({"status": {"images": [1, 2], "phase": "x"}, "a": [1, 2, 3]});
        assert_eq!(run("remove /status/images\nremove /a/1", doc.clone()), json!({"status": {"phase": "x"}, "a": [1, 3]}));
        assert_eq!(run("remove /a/*", doc), json!({"status": {"images": [1, 2], "phase": "x"}, "a": []}));
    }

    #[test]
    fn blank_empties_strings_and_nulls_the_rest() {
        let doc = json!({"s": "secret", "n": 5, "o": {"k": "v"}, "l": ["a"]});
        assert_eq!(run("blank /s\nblank /n\nblank /o\nblank /l\nblank /missing", doc), json!({"s": "", "n": null, "o": null, "l": null}));
    }

    #[test]
    fn xout_keeps_the_byte_length_of_strings_only() {
        let doc = json!({"id": "abc-123", "u": "né", "n": 42, "o": {"a": 1}});
        assert_eq!(run("xout /id\nxout /u\nxout /n\nxout /o", doc), json!({"id": "xxxxxxx", "u": "xxx", "n": 42, "o": {"a": 1}}));
    }

    #[test]
    fn url_keeps_separators_as_io_does() {
        let doc = json!({"u": "http://user:pw@proxy.example.com:3128/", "l": "a.b,https://c.d:1", "e": ["x.y", 3, "h://z"]});
        assert_eq!(
            run("url /u\nurl-list /l\nurl-list /e", doc),
            json!({"u": "xxxx://xxxx:xxxxxxxx.xxxxxxx.xxx:xxxx/", "l": "x.x,xxxxx://x.x:x", "e": ["x.x", 3, "x://x"]})
        );
    }

    #[test]
    fn pem_replaces_whole_pem_values_only() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let two = format!("{cert}{cert}");
        let doc = json!({"data": {"ca.crt": two, "other": "plain", "mixed": format!("{cert}trailing")}});
        let out = run("pem /data/*", doc);
        assert_eq!(out["data"]["ca.crt"], json!(ANONYMIZED_PEM_BLOCK.repeat(2)));
        assert_eq!(out["data"]["other"], json!("plain"));
        assert_eq!(out["data"]["mixed"], json!(format!("{cert}trailing")));
    }

    #[test]
    fn except_product_keys_spares_product_members() {
        let doc = json!({"metadata": {
            "labels": {"kubernetes.io/hostname": "n1", "team": "payments", "node-role.kubernetes.io/worker": ""},
            "annotations": {"machine.openshift.io/machine": "m", "owner": "alice@example.com"}
        }});
        let out = run("xout /metadata/labels/* except-product-keys\nblank /metadata/annotations/* except-product-keys", doc);
        assert_eq!(out["metadata"]["labels"], json!({"kubernetes.io/hostname": "n1", "team": "xxxxxxxx", "node-role.kubernetes.io/worker": ""}));
        assert_eq!(out["metadata"]["annotations"], json!({"machine.openshift.io/machine": "m", "owner": ""}));
    }

    #[test]
    fn wildcards_reach_every_element_and_member() {
        let doc = json!({"items": [{"spec": {"a": "s1"}}, {"spec": {"a": "s22"}}, {"spec": {}}]});
        assert_eq!(run("xout /items/*/spec/a", doc), json!({"items": [{"spec": {"a": "xx"}}, {"spec": {"a": "xxx"}}, {"spec": {}}]}));
    }

    #[test]
    fn untouched_parts_keep_their_bytes() {
        let text = br#"{"a":1.50,"b":{"c":"\u00e9"},"d":"s"}"#;
        let out = Spec::parse("xout /d").unwrap().apply(text).unwrap();
        assert_eq!(out, br#"{"a":1.50,"b":{"c":"\u00e9"},"d":"x"}"#);
        assert_eq!(Spec::default().apply(b" [1] ").unwrap(), b"[1]");
        assert!(Spec::default().apply(b"not json").is_err());
    }

    #[test]
    fn bad_specs_are_refused_with_a_line_number() {
        for (bad, want) in [
            ("remove", "line 1"),
            ("\nerase /a", "unknown action"),
            ("xout a/b", "must start with '/'"),
            ("xout /a~2", "'~'"),
            ("xout /a/* keep", "only except-product-keys"),
            ("xout /a except-product-keys", "needs a `*`"),
            ("xout /a/* except-product-keys more", "unexpected"),
        ] {
            let e = Spec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        assert_eq!(Spec::parse(&"remove /a\n".repeat(MAX_RULES + 1)), Err(SpecError::TooManyRules));
        assert!(Spec::parse(&"remove /a\n".repeat(MAX_RULES)).is_ok());
        assert!(matches!(Spec::parse(&format!("remove /{}", "a/".repeat(MAX_SEGMENTS))), Err(SpecError::Line { .. })));
        assert!(matches!(Spec::parse(&" ".repeat(MAX_SPEC_BYTES + 1)), Err(SpecError::TooLong(_))));
        assert!(Spec::parse("\n\r\n# comment\n").unwrap().is_empty());
    }

    #[test]
    fn display_round_trips() {
        let text = "remove /a~1b/*\nxout /metadata/labels/* except-product-keys\nurl-list /x~0y\n";
        let spec = Spec::parse(text).unwrap();
        assert_eq!(spec.to_string(), text);
        assert_eq!(Spec::parse(&spec.to_string()).unwrap(), spec);
    }

    #[test]
    fn under_prefixes_every_pointer() {
        let spec = Spec::parse("xout /metadata/labels/* except-product-keys").unwrap().under(&["items", "*"]);
        let doc = json!({"items": [{"metadata": {"labels": {"a": "bb", "k8s.io/x": "y"}}}]});
        let out: Value = serde_json::from_slice(&spec.apply(doc.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(out, json!({"items": [{"metadata": {"labels": {"a": "xx", "k8s.io/x": "y"}}}]}));
    }
}
