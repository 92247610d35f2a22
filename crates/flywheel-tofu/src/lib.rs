//! OpenTofu plans (`tofu show -json PLANFILE`) and the destroy guard.
//!
//! [`parse_plan`] accepts only real plan JSON (fail closed: state JSON, `{}`,
//! HCP's redacted format, wrapper output around the JSON, an unknown
//! `format_version` major and errored plans are errors). [`guard`] refuses any
//! delete (plain or either replace order) and any forget in
//! `resource_changes[].change.actions`, unless destruction is explicitly allowed.

use serde::Serialize;
use serde_json::Value;

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
    fn of(actions: &[&str]) -> Change {
        let has = |a: &str| actions.contains(&a);
        if has("forget") {
            Change::Forget
        } else if has("delete") && has("create") {
            Change::Replace
        } else if has("delete") {
            Change::Delete
        } else if has("create") {
            Change::Create
        } else if has("update") {
            Change::Update
        } else if has("read") {
            Change::Read
        } else {
            Change::Noop
        }
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
                        "`{key}[{i}].change.actions` is missing ({address})"
                    ))
                })?
                .iter()
                .map(|a| {
                    a.as_str().ok_or_else(|| {
                        fail(format!("`{key}[{i}].change.actions` holds a non-string"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(ResourceChange {
                address: address.to_string(),
                change: Change::of(&actions),
                actions: actions.iter().map(|a| a.to_string()).collect(),
            })
        })
        .collect()
}

/// Parses `tofu show -json PLANFILE` output.
pub fn parse_plan(text: &str) -> Result<Plan, PlanError> {
    let v: Value = serde_json::from_str(text).map_err(|e| PlanError {
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
    if obj.get("errored").and_then(Value::as_bool) == Some(true) {
        return Err(fail(
            "the plan errored (`errored: true`); it cannot be applied or judged",
        ));
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
