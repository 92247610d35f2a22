//! OpenTofu plans (`tofu show -json PLANFILE`) and the destroy guard.
//!
//! [`parse_plan`] accepts only real plan JSON (fail closed: state JSON, `{}`,
//! HCP's redacted format, wrapper output around the JSON, an unknown
//! `format_version` major and errored plans are errors). [`guard`] refuses any
//! delete (plain or either replace order) and any forget in
//! `resource_changes[].change.actions`, unless destruction is explicitly allowed.
//!
//! Whatever the guard does not know fails closed too: an action list OpenTofu
//! never writes (`["destroy"]`, `["Delete"]`, `[]`), `errored` that is not a
//! boolean, and a key that appears twice in any object of the JSON (serde's
//! last-wins reading of a duplicate must never decide the guard; see
//! [`strict`]).

use serde::Serialize;
use serde_json::Value;

/// Reads JSON into a [`Value`], refusing any object that holds a key twice.
pub mod strict {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// A JSON value whose objects (at every depth) had unique keys.
    pub struct StrictValue(pub Value);

    impl<'de> Deserialize<'de> for StrictValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(StrictValue)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            StrictValue::deserialize(d).map(|v| v.0)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(StrictValue(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "duplicate key `{key}` (a key given twice is never read last-wins)"
                    )));
                }
                let StrictValue(v) = map.next_value()?;
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
    }

    /// Parses `text`, refusing duplicate keys anywhere (with line:column).
    pub fn from_str(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str::<StrictValue>(text).map(|v| v.0)
    }
}

/// What a plan does to one resource address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Create,
    Update,
    Replace,
    Delete,
    Forget,
    Read,
    Noop,
}

impl Change {
    /// The change of an action list OpenTofu writes; `None` for any other
    /// list (unknown words, other spellings, empty, other combinations).
    pub fn of(actions: &[&str]) -> Option<Change> {
        Some(match actions {
            ["no-op"] => Change::Noop,
            ["create"] => Change::Create,
            ["read"] => Change::Read,
            ["update"] => Change::Update,
            ["delete"] => Change::Delete,
            ["forget"] => Change::Forget,
            ["delete", "create"] | ["create", "delete"] => Change::Replace,
            // Replace where the old object is forgotten, not destroyed.
            ["forget", "create"] | ["create", "forget"] => Change::Forget,
            _ => return None,
        })
    }

    /// Does this change destroy (or drop from state) something that exists?
    pub fn destroys(self) -> bool {
        matches!(self, Change::Replace | Change::Delete | Change::Forget)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Replace => "replace",
            Change::Delete => "delete",
            Change::Forget => "forget",
            Change::Read => "read",
            Change::Noop => "no-op",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    pub address: String,
    pub change: Change,
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub format_version: String,
    pub terraform_version: Option<String>,
    pub changes: Vec<ResourceChange>,
    /// Drift already happened: reported, never refused.
    pub drift: Vec<ResourceChange>,
    /// Output names that change: reported, never refused.
    pub output_changes: Vec<String>,
}

/// Input that is not a plan flywheel can judge. Never means "allowed".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    /// 1-based line and column, when the JSON itself is broken.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for PlanError {}

fn fail(message: impl Into<String>) -> PlanError {
    PlanError {
        line: 0,
        column: 0,
        message: message.into(),
    }
}

fn changes(list: Option<&Value>, key: &str) -> Result<Vec<ResourceChange>, PlanError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let items = list
        .as_array()
        .ok_or_else(|| fail(format!("`{key}` is not a list")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, rc)| {
            let address = rc
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| fail(format!("`{key}[{i}].address` is missing")))?;
            let actions: Vec<&str> = rc
                .pointer("/change/actions")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    fail(format!(
                        "`{key}[{i}].change.actions` is missing ({})",
                        flywheel_text::human(address)
                    ))
                })?
                .iter()
                .map(|a| {
                    a.as_str().ok_or_else(|| {
                        fail(format!("`{key}[{i}].change.actions` holds a non-string"))
                    })
                })
                .collect::<Result<_, _>>()?;
            let change = Change::of(&actions).ok_or_else(|| {
                let listed: Vec<String> = actions.iter().map(|a| format!("{a:?}")).collect();
                let what = if actions.is_empty() {
                    "an empty action list".to_string()
                } else {
                    format!("unknown actions [{}]", listed.join(", "))
                };
                let address = flywheel_text::human(address);
                fail(format!(
                    "`{key}[{i}]` {address}: {what}; OpenTofu writes only no-op, create, read, \
                     update, delete, forget or a replace pair; refusing to judge it"
                ))
            })?;
            Ok(ResourceChange {
                address: address.to_string(),
                change,
                actions: actions.iter().map(|a| a.to_string()).collect(),
            })
        })
        .collect()
}

/// Parses `tofu show -json PLANFILE` output.
pub fn parse_plan(text: &str) -> Result<Plan, PlanError> {
    let v: Value = strict::from_str(text).map_err(|e| PlanError {
        line: e.line(),
        column: e.column(),
        message: format!(
            "not plan JSON (expected exactly the output of `tofu show -json PLANFILE`): {e}"
        ),
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| fail("not a plan: the JSON is not an object"))?;
    if obj.contains_key("plan_format_version") {
        return Err(fail(
            "not a plan: this is HCP's redacted plan format; use `tofu show -json PLANFILE`",
        ));
    }
    let format_version = obj
        .get("format_version")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("not a plan: `format_version` is missing"))?;
    let major = format_version.split('.').next().unwrap_or("");
    if major != "1" {
        return Err(fail(format!(
            "unknown plan format_version {format_version} (flywheel reads 1.x); refusing to judge it"
        )));
    }
    if !obj.contains_key("planned_values") && !obj.contains_key("resource_changes") {
        let what = if obj.contains_key("values") {
            "state JSON"
        } else {
            "not a plan"
        };
        return Err(fail(format!(
            "{what}: no `planned_values` or `resource_changes`; pass `tofu show -json PLANFILE`"
        )));
    }
    match obj.get("errored") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            return Err(fail(
                "the plan errored (`errored: true`); it cannot be applied or judged",
            ));
        }
        Some(other) => {
            return Err(fail(format!(
                "`errored` is {other}, not a boolean; refusing to judge the plan"
            )));
        }
    }
    Ok(Plan {
        format_version: format_version.to_string(),
        terraform_version: obj
            .get("terraform_version")
            .and_then(Value::as_str)
            .map(str::to_string),
        changes: changes(obj.get("resource_changes"), "resource_changes")?,
        drift: changes(obj.get("resource_drift"), "resource_drift")?,
        output_changes: obj
            .get("output_changes")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter(|(_, c)| {
                        c.get("actions")
                            .and_then(Value::as_array)
                            .is_some_and(|a| a.iter().any(|x| x != "no-op"))
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The guard's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing is destroyed or forgotten.
    Allowed,
    /// Destruction found and not allowed: these addresses.
    Refused { destroys: Vec<ResourceChange> },
    /// Destruction found and explicitly allowed (`ALLOW_ARC_DESTROY=1`).
    Overridden { destroys: Vec<ResourceChange> },
}

pub fn guard(plan: &Plan, allow_destroy: bool) -> Verdict {
    let destroys: Vec<ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.change.destroys())
        .cloned()
        .collect();
    if destroys.is_empty() {
        Verdict::Allowed
    } else if allow_destroy {
        Verdict::Overridden { destroys }
    } else {
        Verdict::Refused { destroys }
    }
}

/// Counts per kind of change, in a fixed order.
pub fn counts(plan: &Plan) -> Vec<(Change, usize)> {
    [
        Change::Create,
        Change::Update,
        Change::Replace,
        Change::Delete,
        Change::Forget,
    ]
    .into_iter()
    .map(|k| (k, plan.changes.iter().filter(|c| c.change == k).count()))
    .collect()
}
