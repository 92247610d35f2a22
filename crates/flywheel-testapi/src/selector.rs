//! Label and field selectors, as accepted by the apiserver's `labelSelector` / `fieldSelector`.

use serde_json::Value;

#[derive(Debug, Clone)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug, Clone)]
enum FieldReq {
    Eq(String, String),
    NotEq(String, String),
}

/// A parsed combination of label and field selectors.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("invalid set {s:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_label(term: &str) -> Result<LabelReq, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelReq::NotExists(key.trim().to_string()));
    }
    if let Some((key, set)) = term.split_once(" notin ") {
        return Ok(LabelReq::NotIn(key.trim().to_string(), parse_set(set)?));
    }
    if let Some((key, set)) = term.split_once(" in ") {
        return Ok(LabelReq::In(key.trim().to_string(), parse_set(set)?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(LabelReq::NotEq(k.trim().to_string(), v.trim().to_string()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(LabelReq::Eq(k.trim().to_string(), v.trim().to_string()));
    }
    if term.contains(['(', ')', ' ', '<', '>']) {
        return Err(format!("unable to parse requirement {term:?}"));
    }
    Ok(LabelReq::Exists(term.to_string()))
}

fn parse_field(term: &str) -> Result<FieldReq, String> {
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(FieldReq::NotEq(k.trim().to_string(), v.trim().to_string()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(FieldReq::Eq(k.trim().to_string(), v.trim().to_string()));
    }
    Err(format!("invalid field selector {term:?}"))
}

impl Selector {
    pub(crate) fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, String> {
        let labels = labels
            .map(|s| split_top_level(s).into_iter().map(parse_label).collect())
            .transpose()?
            .unwrap_or_default();
        let fields = fields
            .map(|s| split_top_level(s).into_iter().map(parse_field).collect())
            .transpose()?
            .unwrap_or_default();
        Ok(Self { labels, fields })
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|req| match req {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, set) => label(k).is_some_and(|l| set.iter().any(|s| s == l)),
            LabelReq::NotIn(k, set) => label(k).is_none_or(|l| set.iter().all(|s| s != l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|req| match req {
                FieldReq::Eq(k, v) => field_value(obj, k) == *v,
                FieldReq::NotEq(k, v) => field_value(obj, k) != *v,
            })
    }
}

/// The string value of a dotted field path (missing fields read as "").
fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors() {
        let obj = json!({"metadata": {"name": "x", "namespace": "ns", "labels": {"a": "1", "b": "2"}}, "status": {"phase": "Running"}});
        let ok = |l: Option<&str>, f: Option<&str>| {
            Selector::parse(l, f)
                .expect("selector parses")
                .matches(&obj)
        };
        assert!(ok(Some("a=1,b==2"), None));
        assert!(!ok(Some("a=1,b=3"), None));
        assert!(ok(Some("a in (1, 3),c notin (x),!c,b"), None));
        assert!(!ok(Some("a notin (1)"), None));
        assert!(ok(
            Some("a!=3"),
            Some("metadata.name=x,metadata.namespace=ns")
        ));
        assert!(ok(None, Some("status.phase=Running")));
        assert!(!ok(None, Some("metadata.name!=x")));
        assert!(ok(Some(""), Some("")));
    }
}
