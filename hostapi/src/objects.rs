//! Helpers for gatherers that copy API objects into records, with the Insights Operator's
//! handling of what goes wrong (feature `guest`).
//!
//! IO treats a missing resource (404: the CRD is not installed, the object does not exist) as
//! nothing to gather, and anything else as an error of that gatherer, which still goes on with
//! the next resource. These helpers make that the easy path: they report the problem (a 404 as
//! a warning; a 403 as an error naming the verb, resource and path the module needs) and
//! return what was gathered, so one absent kind or odd object never stops a gatherer.

use serde_json::Value;

use crate::guest::{self, Error, Result};

/// What a failed read turned into: `Ok(None)` after reporting it, or a host failure
/// (deadline, cancellation, a bad handle) that should end the gatherer.
fn reported<T>(result: Result<T>, what: &str) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Error::Status { path, status: 404, .. }) => {
            guest::warn(format!("{what}: {path} not found (404)"));
            Ok(None)
        }
        Err(Error::Status { path, status: 403, message }) => {
            guest::error(format!("{what}: forbidden (403): the agent needs {} ({message})", needed_permission(&path)));
            Ok(None)
        }
        Err(e @ (Error::Status { .. } | Error::Json(_))) => {
            guest::error(format!("{what}: {e}"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The RBAC verb and resource a GET of `path` needs, for a 403's message:
/// `list on machines.machine.openshift.io (GET /apis/machine.openshift.io/v1beta1/machines)`.
pub fn needed_permission(path: &str) -> String {
    let bare = path.split_once('?').map_or(path, |(p, _)| p);
    let segs: Vec<&str> = bare.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return format!("GET {bare}"),
    };
    let rest = match rest {
        ["namespaces", _ns, r @ ..] if !r.is_empty() => r,
        r => r,
    };
    let (verb, resource) = match rest {
        [plural] => ("list", *plural),
        // A subresource (`pods/log`) is granted as `get` on `plural/sub`; name the plural.
        [plural, _name] | [plural, _name, _] => ("get", *plural),
        _ => return format!("GET {bare}"),
    };
    let qualified = if group.is_empty() { resource.to_owned() } else { format!("{resource}.{group}") };
    format!("{verb} on {qualified} (GET {bare})")
}

/// Lists `path` and has the host write every item as a record named from `template`
/// (`{name}`, `{namespace}`), without managedFields: [`guest::emit_list`] with IO's error
/// handling. Returns how many records were accepted.
pub fn emit_each(path: &str, template: &str) -> Result<u64> {
    Ok(reported(guest::emit_list(path, template), &format!("list {path}"))?.unwrap_or(0))
}

/// Lists `path` into this module, and records each item that `name` gives a record name,
/// after `edit` changed it (IO's per-kind content rules) and without managedFields.
/// For kinds with few objects: the whole list is held in guest memory.
pub fn record_each(path: &str, name: impl Fn(&Value) -> Option<String>, edit: impl Fn(&mut Value)) -> Result<u64> {
    let Some(items) = reported(guest::list_all(path), &format!("list {path}"))? else {
        return Ok(0);
    };
    let mut recorded = 0;
    for mut item in items {
        let Some(record) = name(&item) else { continue };
        guest::strip_managed_fields(&mut item);
        edit(&mut item);
        if guest::skip_refused(guest::record_json(&record, item))? {
            recorded += 1;
        }
    }
    Ok(recorded)
}

/// GETs one object; `None` (reported) when it cannot be had.
pub fn get_object(path: &str) -> Result<Option<Value>> {
    reported(guest::get_json(path), &format!("get {path}"))
}

/// Sets the string at `pointer` to `x`s of the same length (IO's `anonymize.String`).
pub fn x_out(object: &mut Value, pointer: &str) {
    if let Some(Value::String(s)) = object.pointer_mut(pointer) {
        *s = "x".repeat(s.len());
    }
}

/// Sets the member at `pointer` to JSON null if its parent object exists (IO's
/// `unstructured.SetNestedField(obj, nil, …)` on an existing path).
pub fn null_out(object: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else { return };
    if let Some(obj) = object.pointer_mut(parent).and_then(Value::as_object_mut) {
        obj.insert(key.replace("~1", "/").replace("~0", "~"), Value::Null);
    }
}

/// Removes the member at `pointer`, if there is one.
pub fn remove(object: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else { return };
    if let Some(obj) = object.pointer_mut(parent).and_then(Value::as_object_mut) {
        obj.remove(&key.replace("~1", "/").replace("~0", "~"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_403_names_the_verb_and_resource() {
        assert_eq!(
            needed_permission("/apis/machine.openshift.io/v1beta1/machines?limit=500"),
            "list on machines.machine.openshift.io (GET /apis/machine.openshift.io/v1beta1/machines)"
        );
        assert_eq!(
            needed_permission("/api/v1/namespaces/openshift-config/configmaps/x"),
            "get on configmaps (GET /api/v1/namespaces/openshift-config/configmaps/x)"
        );
        assert_eq!(needed_permission("/api/v1/namespaces/a/pods/p/log"), "get on pods (GET /api/v1/namespaces/a/pods/p/log)");
        assert_eq!(needed_permission("/healthz"), "GET /healthz");
    }

    #[test]
    fn edits_follow_io() {
        let mut o = json!({"spec": {"providerID": "aws:///i-123", "a~b/c": 1}, "metadata": {"annotations": {"k": "v"}}});
        x_out(&mut o, "/spec/providerID");
        null_out(&mut o, "/spec/template");
        null_out(&mut o, "/nothing/here");
        remove(&mut o, "/spec/a~0b~1c");
        assert_eq!(o, json!({"spec": {"providerID": "xxxxxxxxxxxx", "template": null}, "metadata": {"annotations": {"k": "v"}}}));
    }
}
