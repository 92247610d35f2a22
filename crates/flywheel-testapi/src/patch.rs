//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// Applies an RFC 7386 merge patch to `target` in place.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch (`add`, `remove`, `replace`, `move`, `copy`, `test`).
pub(crate) fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch
        .as_array()
        .ok_or_else(|| "json patch must be an array of operations".to_string())?;
    for (i, op) in ops.iter().enumerate() {
        apply_op(doc, op).map_err(|e| format!("json patch operation {i}: {e}"))?;
    }
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let name = op
        .get("op")
        .and_then(Value::as_str)
        .ok_or("missing \"op\"")?;
    let path = op
        .get("path")
        .and_then(Value::as_str)
        .ok_or("missing \"path\"")?;
    let value = || op.get("value").cloned().ok_or("missing \"value\"");
    let from = || {
        op.get("from")
            .and_then(Value::as_str)
            .ok_or("missing \"from\"")
    };
    match name {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(drop),
        "replace" => {
            let v = value()?;
            if path.is_empty() {
                *doc = v;
                return Ok(());
            }
            remove(doc, path)?;
            add(doc, path, v)
        }
        "move" => {
            let from = from()?;
            let v = remove(doc, from)?;
            add(doc, path, v)
        }
        "copy" => {
            let from = from()?;
            let v = doc
                .pointer(from)
                .cloned()
                .ok_or_else(|| format!("path {from:?} does not exist"))?;
            add(doc, path, v)
        }
        "test" => {
            let expected = value()?;
            match doc.pointer(path) {
                Some(actual) if *actual == expected => Ok(()),
                _ => Err(format!("test failed at {path:?}")),
            }
        }
        other => Err(format!("unsupported op {other:?}")),
    }
}

/// Splits a JSON pointer into (parent pointer, unescaped last token).
fn split(path: &str) -> Result<(&str, String), String> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    let last = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..idx], last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    let parent = doc
        .pointer_mut(parent)
        .ok_or_else(|| format!("parent of {path:?} does not exist"))?;
    match parent {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let idx: usize = last
                .parse()
                .map_err(|_| format!("invalid array index in {path:?}"))?;
            if idx > items.len() {
                return Err(format!("array index out of bounds in {path:?}"));
            }
            items.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("parent of {path:?} is not a container")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || format!("path {path:?} does not exist");
    match doc.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(map) => map.remove(&last).ok_or_else(missing),
        Value::Array(items) => {
            let idx: usize = last.parse().map_err(|_| missing())?;
            if idx >= items.len() {
                return Err(missing());
            }
            Ok(items.remove(idx))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(
            &mut doc,
            &json!({"a": null, "b": {"c": 5}, "e": [2], "f": "x"}),
        );
        assert_eq!(doc, json!({"b": {"c": 5, "d": 3}, "e": [2], "f": "x"}));
    }

    #[test]
    fn json_ops() {
        let mut doc = json!({"metadata": {"labels": {"a/b": "1"}}, "list": [1, 2]});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/metadata/labels/a~1b", "value": "1"},
                {"op": "add", "path": "/metadata/labels/c", "value": "2"},
                {"op": "replace", "path": "/list/0", "value": 9},
                {"op": "add", "path": "/list/-", "value": 3},
                {"op": "remove", "path": "/metadata/labels/a~1b"},
                {"op": "copy", "from": "/list", "path": "/copy"},
                {"op": "move", "from": "/copy", "path": "/moved"}
            ]),
        )
        .expect("patch applies");
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"c": "2"}}, "list": [9, 2, 3], "moved": [9, 2, 3]})
        );
        let err = json_patch(
            &mut doc,
            &json!([{"op": "test", "path": "/list/0", "value": 1}]),
        );
        assert!(err.is_err());
        let err = json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}]));
        assert!(err.is_err());
    }
}
