//! `runs-on` in GitHub workflows and `tags` in `.gitlab-ci.yml`.

use flywheel_contract::Severity;
use flywheel_yaml::{Node, Pos, Value};

use crate::text::line_text;
use crate::{Rules, Violation, rule};

/// How one workflow label stands against the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelVerdict {
    Shared,
    GithubHosted,
    /// `self-hosted`: fine next to a shared label, adds nothing.
    SelfHosted,
    GitlabClass,
    ProofOnly,
    RepoSpecific,
}

pub fn classify_label(rules: &Rules, label: &str) -> LabelVerdict {
    if rules.shared_set.contains(label) {
        LabelVerdict::Shared
    } else if label == "self-hosted" {
        LabelVerdict::SelfHosted
    } else if ["ubuntu-", "windows-", "macos-"]
        .iter()
        .any(|p| label.starts_with(p))
    {
        LabelVerdict::GithubHosted
    } else if rules.gitlab_classes.contains(label) {
        LabelVerdict::GitlabClass
    } else if rules.proof_only.contains(label) {
        LabelVerdict::ProofOnly
    } else {
        LabelVerdict::RepoSpecific
    }
}

/// The shared label most like `label` (longest common prefix), if any is close.
fn suggest(rules: &Rules, label: &str) -> Option<String> {
    let common = |s: &str| {
        s.chars()
            .zip(label.chars())
            .take_while(|(a, b)| a == b)
            .count()
    };
    rules
        .shared
        .iter()
        .max_by_key(|s| (common(s), std::cmp::Reverse(s.len())))
        .filter(|s| common(s) >= 4)
        .cloned()
}

pub(crate) struct Ctx<'a> {
    pub rules: &'a Rules,
    pub file: &'a str,
    pub lines: Vec<&'a str>,
    pub out: &'a mut Vec<Violation>,
    /// Whether some job's `runs-on` reaches a shared label.
    pub targets_shared: bool,
    /// `runs-on: {group: ...}` selectors, with positions.
    pub groups: Vec<(String, Pos)>,
}

impl Ctx<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        pos: Pos,
        rule: &'static str,
        severity: Severity,
        value: &str,
        message: String,
        replacement: Option<String>,
    ) {
        let excerpt = self
            .lines
            .get((pos.line as usize).wrapping_sub(1))
            .map(|l| line_text(l.as_bytes()))
            .unwrap_or_default();
        self.out.push(Violation {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            rule,
            severity,
            value: value.to_string(),
            message,
            replacement,
            excerpt,
        });
    }
}

/// The text between `${{` and `}}`, trimmed, when `s` holds exactly one.
fn single_expression(s: &str) -> Option<(&str, &str, &str)> {
    let start = s.find("${{")?;
    let end = s[start..].find("}}")? + start;
    if s[end + 2..].contains("${{") {
        return None;
    }
    Some((&s[..start], s[start + 3..end].trim(), &s[end + 2..]))
}

/// Scalar values a node stands for: a scalar, or a list of scalars.
fn scalars(node: &Node) -> Option<Vec<String>> {
    match &node.value {
        Value::Scalar(_) => node.as_str().map(|s| vec![s.to_string()]),
        Value::Seq(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::Map(_) => None,
    }
}

/// Resolves `matrix.X` or `env.X` from the job's own matrix and env, or the
/// workflow's env. `None` when it cannot be known from the file.
fn resolve(expr: &str, workflow: &Node, job: &Node) -> Option<Vec<String>> {
    if let Some(key) = expr.strip_prefix("matrix.") {
        let matrix = job.get("strategy")?.get("matrix")?;
        let mut values = Vec::new();
        if let Some(v) = matrix.get(key) {
            values.extend(scalars(v)?);
        }
        if let Some(include) = matrix.get("include").and_then(Node::as_seq) {
            for entry in include {
                if let Some(v) = entry.get(key) {
                    values.extend(scalars(v)?);
                }
            }
        }
        if values.is_empty() || values.iter().any(|v| v.contains("${{")) {
            return None;
        }
        return Some(values);
    }
    if let Some(key) = expr.strip_prefix("env.") {
        let v = job
            .get("env")
            .and_then(|e| e.get(key))
            .or_else(|| workflow.get("env").and_then(|e| e.get(key)))?;
        let s = v.as_str()?;
        return (!s.contains("${{")).then(|| vec![s.to_string()]);
    }
    None
}

/// Checks one `runs-on` label set (one resolution of the expression).
fn check_set(ctx: &mut Ctx<'_>, labels: &[(String, Pos)], origin: &str) {
    let has_shared = labels
        .iter()
        .any(|(l, _)| classify_label(ctx.rules, l) == LabelVerdict::Shared);
    ctx.targets_shared |= has_shared;
    for (label, pos) in labels {
        let from = if origin.is_empty() {
            String::new()
        } else {
            format!(" (from {origin})")
        };
        match classify_label(ctx.rules, label) {
            LabelVerdict::Shared | LabelVerdict::GithubHosted => {}
            LabelVerdict::SelfHosted if has_shared => {}
            LabelVerdict::SelfHosted => ctx.push(
                *pos,
                rule::REPO_SPECIFIC_LABEL,
                Severity::Error,
                label,
                format!("`self-hosted`{from} without a shared label reaches any runner; name a shared label"),
                ctx.rules.shared.first().cloned(),
            ),
            LabelVerdict::GitlabClass => ctx.push(
                *pos,
                rule::GITLAB_CLASS_IN_GITHUB,
                Severity::Error,
                label,
                format!("`{label}`{from} is a GitLab compatibility class; GitHub workflows use the shared labels"),
                suggest(ctx.rules, &label.replacen("gl-", "tinyland-", 1)),
            ),
            LabelVerdict::ProofOnly => ctx.push(
                *pos,
                rule::REPO_SPECIFIC_LABEL,
                Severity::Warning,
                label,
                format!("`{label}`{from} is a repo-scoped proof-only surface, not a shared-platform promise"),
                None,
            ),
            LabelVerdict::RepoSpecific => ctx.push(
                *pos,
                rule::REPO_SPECIFIC_LABEL,
                Severity::Error,
                label,
                format!(
                    "`{label}`{from} is neither a shared label of the contract nor a GitHub-hosted label (shared: {})",
                    ctx.rules.shared.join(", ")
                ),
                suggest(ctx.rules, label),
            ),
        }
    }
}

/// Labels written in a `runs-on` (or its `labels:`), with positions.
fn written_labels(node: &Node) -> Vec<(String, Pos)> {
    match &node.value {
        Value::Scalar(_) => node
            .as_str()
            .map(|s| vec![(s.to_string(), node.pos)])
            .unwrap_or_default(),
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(|s| (s.to_string(), i.pos)))
            .collect(),
        Value::Map(_) => Vec::new(),
    }
}

fn check_runs_on(ctx: &mut Ctx<'_>, workflow: &Node, job: &Node, runs_on: &Node) {
    if let Some(group) = runs_on.get("group")
        && let Some(name) = group.as_str()
    {
        ctx.groups.push((name.to_string(), group.pos));
    }
    let written = match &runs_on.value {
        Value::Map(_) => runs_on
            .get("labels")
            .map(written_labels)
            .unwrap_or_default(),
        _ => written_labels(runs_on),
    };
    // Split into literal labels and expressions; each expression multiplies
    // the set by its resolved values.
    let mut literal = Vec::new();
    let mut expanded: Vec<Vec<(String, Pos)>> = Vec::new();
    for (label, pos) in written {
        let Some((before, expr, after)) = single_expression(&label) else {
            if label.contains("${{") {
                ctx.push(
                    pos,
                    rule::UNRESOLVED,
                    Severity::Warning,
                    &label,
                    format!(
                        "runs-on `{label}` cannot be resolved from this workflow; it is not checked"
                    ),
                    None,
                );
            } else {
                literal.push((label, pos));
            }
            continue;
        };
        match resolve(expr, workflow, job) {
            Some(values) => expanded.push(
                values
                    .into_iter()
                    .map(|v| (format!("{before}{v}{after}"), pos))
                    .collect(),
            ),
            None => ctx.push(
                pos,
                rule::UNRESOLVED,
                Severity::Warning,
                &label,
                format!("runs-on `{label}` cannot be resolved from this workflow's matrix or env; it is not checked"),
                None,
            ),
        }
    }
    // Every combination of resolved values is one label set a job may get.
    let mut sets: Vec<Vec<(String, Pos)>> = vec![literal];
    for values in &expanded {
        sets = sets
            .iter()
            .flat_map(|set| {
                values.iter().map(move |v| {
                    let mut s = set.clone();
                    s.push(v.clone());
                    s
                })
            })
            .collect();
    }
    let origin = if expanded.is_empty() {
        ""
    } else {
        "an expression"
    };
    let before = ctx.out.len();
    for set in &sets {
        check_set(ctx, set, origin);
    }
    // A literal label wrong in every combination is reported once.
    let mut seen = std::collections::HashSet::new();
    let found: Vec<Violation> = ctx.out.drain(before..).collect();
    for v in found {
        if seen.insert((v.line, v.column, v.value.clone(), v.rule)) {
            ctx.out.push(v);
        }
    }
}

/// `.github/workflows/*.yml`: every job's `runs-on`.
pub(crate) fn workflow(ctx: &mut Ctx<'_>, root: &Node) {
    let Some(jobs) = root.get("jobs").and_then(Node::as_map) else {
        return;
    };
    for (_, job) in jobs {
        if let Some(runs_on) = job.get("runs-on") {
            check_runs_on(ctx, root, job, runs_on);
        }
    }
}

const GITLAB_KEYWORDS: &[&str] = &[
    "stages",
    "variables",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "spec",
];

/// `.gitlab-ci.yml`: job and `default` tags outside the compatibility classes.
pub(crate) fn gitlab(ctx: &mut Ctx<'_>, root: &Node) {
    let Some(entries) = root.as_map() else {
        return;
    };
    for (key, job) in entries {
        let Some(name) = key.as_str() else { continue };
        if GITLAB_KEYWORDS.contains(&name) {
            continue;
        }
        let Some(tags) = job.get("tags") else {
            continue;
        };
        for (tag, pos) in written_labels(tags) {
            if tag.contains('$') {
                ctx.push(
                    pos,
                    rule::UNRESOLVED,
                    Severity::Warning,
                    &tag,
                    format!("tag `{tag}` in `{name}` uses a variable and is not checked"),
                    None,
                );
            } else if !ctx.rules.gitlab_classes.contains(&tag) {
                let mut classes: Vec<&str> = ctx
                    .rules
                    .gitlab_classes
                    .iter()
                    .map(String::as_str)
                    .collect();
                classes.sort_unstable();
                ctx.push(
                    pos,
                    rule::GITLAB_TAG,
                    Severity::Warning,
                    &tag,
                    format!(
                        "tag `{tag}` in `{name}` is not a GitLab compatibility class ({})",
                        classes.join(", ")
                    ),
                    None,
                );
            }
        }
    }
}

/// What one GitHub workflow says about runner labels.
#[derive(Clone, Debug, Default)]
pub struct WorkflowLabels {
    /// Labels outside the shared set, unresolved expressions, YAML errors.
    pub violations: Vec<Violation>,
    /// `runs-on: {group: ...}` selectors (a group is not a label).
    pub groups: Vec<(String, Pos)>,
    /// Whether some job runs on a shared label.
    pub targets_shared: bool,
}

/// Checks one workflow's `runs-on` against `rules` (out-of-contract literals
/// are not searched). A file that is not YAML is one `unparseable` warning.
pub fn workflow_labels(rules: &Rules, file: &str, source: &str) -> WorkflowLabels {
    let mut out = Vec::new();
    let root = match flywheel_yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            out.push(unparseable(file, &e));
            return WorkflowLabels {
                violations: out,
                ..WorkflowLabels::default()
            };
        }
    };
    let mut ctx = Ctx {
        rules,
        file,
        lines: source.lines().collect(),
        out: &mut out,
        targets_shared: false,
        groups: Vec::new(),
    };
    workflow(&mut ctx, &root);
    let (targets_shared, groups) = (ctx.targets_shared, std::mem::take(&mut ctx.groups));
    WorkflowLabels {
        violations: out,
        groups,
        targets_shared,
    }
}

/// The one finding for a workflow or `.gitlab-ci.yml` that is not YAML.
pub(crate) fn unparseable(file: &str, e: &flywheel_yaml::SyntaxError) -> Violation {
    Violation {
        file: file.to_string(),
        line: e.pos.line,
        column: e.pos.column,
        rule: rule::UNPARSEABLE,
        severity: Severity::Warning,
        value: String::new(),
        message: format!("not valid YAML, labels not checked: {}", e.message),
        replacement: None,
        excerpt: String::new(),
    }
}
