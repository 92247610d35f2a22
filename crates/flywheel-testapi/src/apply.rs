//! A model of server-side apply's field ownership, enough for flywheel's
//! operator actions: per-manager path sets kept in `metadata.managedFields`
//! (`fieldsV1`, leaves only), conflicts with other managers (409 unless
//! `force=true`, which takes ownership), removal of fields a manager applied
//! before and no longer applies (unless another manager also owns them), and
//! `Update` ownership for other writes that name a `fieldManager`.
//!
//! Simplifications: arrays are atomic leaves; `fieldsV1` holds leaf paths
//! only (no `"."` entries for list items); `status` is not modelled.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::util::now_rfc3339;

/// A field path: object keys from the root.
pub(crate) type Path = Vec<String>;

/// Fields no manager owns: identity and server-owned metadata.
fn ignored(path: &[String]) -> bool {
    match path {
        [top] if top == "apiVersion" || top == "kind" => true,
        [top, ..] if top == "status" => true,
        [m, f, ..] if m == "metadata" => matches!(
            f.as_str(),
            "name"
                | "namespace"
                | "resourceVersion"
                | "managedFields"
                | "uid"
                | "creationTimestamp"
                | "generation"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
                | "selfLink"
                | "generateName"
        ),
        _ => false,
    }
}

/// Every leaf path of `v` (a non-object value or an empty object).
pub(crate) fn leaves(v: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    at.push(k.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {
                if !at.is_empty() && !ignored(at) {
                    out.insert(at.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn at<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, k| cur.get(k))
}

fn set(v: &mut Value, p: &[String], value: Value) {
    let mut cur = v;
    for k in &p[..p.len() - 1] {
        if !cur.get(k).is_some_and(Value::is_object) {
            cur[k.as_str()] = json!({});
        }
        cur = &mut cur[k.as_str()];
    }
    cur[p[p.len() - 1].as_str()] = value;
}

/// Removes the field at `p`, and the objects above it that it leaves empty.
fn remove(v: &mut Value, p: &[String]) {
    fn go(v: &mut Value, p: &[String]) -> bool {
        let Some(m) = v.as_object_mut() else {
            return false;
        };
        match p {
            [] => false,
            [last] => {
                m.remove(last);
                m.is_empty()
            }
            [first, rest @ ..] => {
                let Some(child) = m.get_mut(first) else {
                    return false;
                };
                if go(child, rest) {
                    m.remove(first);
                }
                m.is_empty()
            }
        }
    }
    go(v, p);
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// `.spec.maxRunners`
fn dotted(p: &[String]) -> String {
    p.iter().map(|k| format!(".{k}")).collect()
}

fn to_fields(paths: &BTreeSet<Path>) -> Value {
    let mut root = json!({});
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            let key = format!("f:{k}");
            if cur.get(&key).is_none() {
                cur[key.as_str()] = json!({});
            }
            cur = &mut cur[key.as_str()];
        }
    }
    root
}

fn from_fields(v: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = v
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !at.is_empty() {
                out.insert(at.clone());
            }
            return;
        }
        for (k, child) in children {
            at.push(k.trim_start_matches("f:").to_string());
            walk(child, at, out);
            at.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    paths: BTreeSet<Path>,
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    paths: from_fields(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.paths.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields(&e.paths),
            });
            // An entry a test wrote without a time keeps none (an empty
            // string is not a timestamp to a client).
            if !e.time.is_empty() {
                v["time"] = json!(e.time);
            }
            v
        })
        .collect();
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Sets `manager`'s entry for `operation` to `paths`, keeping its time when
/// nothing changed (so a write that changes nothing stays a no-op).
fn own(
    list: &mut Vec<Entry>,
    manager: &str,
    operation: &str,
    api_version: &str,
    paths: BTreeSet<Path>,
) {
    match list
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == operation)
    {
        Some(e) => {
            if e.paths != paths {
                e.time = now_rfc3339();
                e.paths = paths;
            }
        }
        None => list.push(Entry {
            manager: manager.to_string(),
            operation: operation.to_string(),
            api_version: api_version.to_string(),
            time: now_rfc3339(),
            paths,
        }),
    }
}

/// A refused apply: the conflicts, for a 409 `Status`.
#[derive(Debug)]
pub(crate) struct Conflicts {
    pub message: String,
    pub causes: Vec<Value>,
}

/// Server-side apply of `body` by `manager` over `existing` (None: create).
/// Returns the object to store, or the conflicts.
pub(crate) fn apply(
    existing: Option<&Value>,
    body: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, Conflicts> {
    let api_version = body["apiVersion"].as_str().unwrap_or_default().to_string();
    let applied = leaves(body);
    let mut obj = existing.cloned().unwrap_or_else(|| json!({}));
    let mut list = entries(&obj);
    // Conflicts: fields another manager owns, with a different value.
    let mut by_manager: BTreeMap<String, (String, Vec<Path>)> = BTreeMap::new();
    for p in &applied {
        let want = at(body, p);
        if at(&obj, p) == want {
            continue;
        }
        for e in list.iter().filter(|e| e.manager != manager) {
            if e.paths.iter().any(|q| overlaps(p, q)) {
                by_manager
                    .entry(e.manager.clone())
                    .or_insert_with(|| (e.api_version.clone(), Vec::new()))
                    .1
                    .push(p.clone());
            }
        }
    }
    if !by_manager.is_empty() && !force {
        let n: usize = by_manager.values().map(|(_, p)| p.len()).sum();
        let mut causes = Vec::new();
        let mut parts = Vec::new();
        for (m, (av, paths)) in &by_manager {
            let fields: Vec<String> = paths.iter().map(|p| dotted(p)).collect();
            for f in &fields {
                causes.push(json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with \"{m}\" using {av}"),
                    "field": f,
                }));
            }
            parts.push(if fields.len() == 1 {
                format!("conflict with \"{m}\" using {av}: {}", fields[0])
            } else {
                format!(
                    "conflicts with \"{m}\" using {av}:\n- {}",
                    fields.join("\n- ")
                )
            });
        }
        let plural = if n == 1 { "" } else { "s" };
        return Err(Conflicts {
            message: format!(
                "Apply failed with {n} conflict{plural}: {}",
                parts.join("\n")
            ),
            causes,
        });
    }
    // Forced: the fields change hands.
    for (m, (_, paths)) in &by_manager {
        for e in list.iter_mut().filter(|e| &e.manager == m) {
            e.paths.retain(|q| !paths.iter().any(|p| overlaps(p, q)));
        }
    }
    // Fields this manager applied before and leaves out now go, unless
    // another manager owns them too.
    let before: BTreeSet<Path> = list
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.paths.clone())
        .unwrap_or_default();
    for q in before.difference(&applied) {
        let shared = list
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.paths.contains(q));
        if !shared {
            remove(&mut obj, q);
        }
    }
    for p in &applied {
        if let Some(v) = at(body, p) {
            set(&mut obj, p, v.clone());
        }
    }
    for k in ["apiVersion", "kind"] {
        if let Some(v) = body.get(k) {
            obj[k] = v.clone();
        }
    }
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    own(&mut list, manager, "Apply", &api_version, applied);
    write_entries(&mut obj, &list);
    Ok(obj)
}

/// Records an `Update` by `manager` (when named) that turned `before` into
/// `after`: the fields it changed become its own and leave other managers;
/// removed fields leave every manager.
pub(crate) fn update(before: Option<&Value>, after: &mut Value, manager: Option<&str>) {
    let mut list = before.map(entries).unwrap_or_default();
    if list.is_empty() && manager.is_none() {
        return;
    }
    let old = before.map(leaves).unwrap_or_default();
    let new = leaves(after);
    let changed: BTreeSet<Path> = new
        .iter()
        .filter(|p| before.and_then(|b| at(b, p)) != at(after, p))
        .cloned()
        .collect();
    let removed: BTreeSet<Path> = old.difference(&new).cloned().collect();
    for e in list.iter_mut() {
        e.paths.retain(|q| {
            !changed.iter().any(|p| overlaps(p, q)) && !removed.iter().any(|p| overlaps(p, q))
        });
    }
    if let Some(m) = manager {
        let mut mine: BTreeSet<Path> = list
            .iter()
            .find(|e| e.manager == m && e.operation == "Update")
            .map(|e| e.paths.clone())
            .unwrap_or_default();
        mine.extend(changed);
        let api_version = after["apiVersion"].as_str().unwrap_or_default().to_string();
        own(&mut list, m, "Update", &api_version, mine);
    }
    write_entries(after, &list);
}

/// The `fieldsV1` leaf paths `manager` owns in `obj`, dotted (for tests).
pub(crate) fn owned(obj: &Value, manager: &str) -> Vec<String> {
    let mut out: Vec<String> = entries(obj)
        .iter()
        .filter(|e| e.manager == manager)
        .flat_map(|e| e.paths.iter().map(|p| dotted(p)))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helm_set() -> Value {
        let mut o = json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "a", "namespace": "arc-runners", "resourceVersion": "7"},
            "spec": {"maxRunners": 3, "template": {"spec": {"containers": [{"name": "runner"}]}}},
        });
        update(None, &mut o, Some("helm"));
        o
    }

    #[test]
    fn conflicts_unless_forced_then_removal_of_what_is_left_out() {
        let o = helm_set();
        assert_eq!(
            owned(&o, "helm"),
            vec![".spec.maxRunners", ".spec.template.spec.containers"]
        );
        let body = json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "a", "annotations": {"x": "3"}}, "spec": {"maxRunners": 0}});
        let e = apply(Some(&o), &body, "flywheel", false).expect_err("conflict");
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"helm\" using actions.github.com/v1alpha1: .spec.maxRunners"
        );
        let p = apply(Some(&o), &body, "flywheel", true).expect("forced");
        assert_eq!(p["spec"]["maxRunners"], 0);
        assert_eq!(owned(&p, "helm"), vec![".spec.template.spec.containers"]);
        assert_eq!(
            owned(&p, "flywheel"),
            vec![".metadata.annotations.x", ".spec.maxRunners"]
        );
        let back = json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "a"}, "spec": {"maxRunners": 3}});
        let r = apply(Some(&p), &back, "flywheel", true).expect("resume");
        assert!(r["metadata"].get("annotations").is_none(), "{r}");
        assert_eq!(r["spec"]["maxRunners"], 3);
        let none = json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "a"}});
        let r = apply(Some(&r), &none, "flywheel", true).expect("leave out");
        assert!(r["spec"].get("maxRunners").is_none(), "{r}");
        assert_eq!(r["spec"]["template"], o["spec"]["template"]);
    }
}
