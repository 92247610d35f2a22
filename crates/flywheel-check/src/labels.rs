//! `runs-on` in GitHub workflows and `tags` in `.gitlab-ci.yml`.

use flywheel_contract::Severity;
use flywheel_yaml::{Node, Pos, Value};
use serde::Serialize;

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

/// GitHub's standard hosted-runner labels, exact names (a prefix such as
/// `macos-` proves nothing: `macos-lab-m1` is a self-hosted label).
///
/// Source: GitHub Docs, "GitHub-hosted runners reference" (standard runners
/// for public and private repositories, and the macOS larger runners), and
/// the actions/runner-images README "Available Images" table; read
/// 2026-11-30. Update the list and the date together.
pub const GITHUB_HOSTED: &[&str] = &[
    "ubuntu-latest",
    "ubuntu-26.04",
    "ubuntu-24.04",
    "ubuntu-22.04",
    "ubuntu-slim",
    "ubuntu-26.04-arm",
    "ubuntu-24.04-arm",
    "ubuntu-22.04-arm",
    "windows-latest",
    "windows-2025",
    "windows-2022",
    "windows-11-arm",
    "macos-latest",
    "macos-26",
    "macos-15",
    "macos-14",
    "macos-26-intel",
    "macos-15-intel",
    "macos-latest-large",
    "macos-26-large",
    "macos-15-large",
    "macos-14-large",
    "macos-latest-xlarge",
    "macos-26-xlarge",
    "macos-15-xlarge",
    "macos-14-xlarge",
];

pub fn classify_label(rules: &Rules, label: &str) -> LabelVerdict {
    if rules.shared_set.contains(label) {
        LabelVerdict::Shared
    } else if label == "self-hosted" {
        LabelVerdict::SelfHosted
    } else if GITHUB_HOSTED.contains(&label) {
        LabelVerdict::GithubHosted
    } else if rules.gitlab_classes.contains(label) {
        LabelVerdict::GitlabClass
    } else if rules.proof_only.contains(label) {
        LabelVerdict::ProofOnly
    } else {
        LabelVerdict::RepoSpecific
    }
}

/// Levenshtein distance over characters, giving up past `limit`.
fn distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        if cur.iter().min().is_some_and(|m| *m > limit) {
            return None;
        }
        prev = cur;
    }
    prev.last().copied().filter(|d| *d <= limit)
}

/// The shared label `label` is a clear misspelling of: at most two edits
/// away and nearer than any other shared label. A different lane
/// (`tinyland-darwin` is not `tinyland-dind`) gets no suggestion.
pub(crate) fn suggest(rules: &Rules, label: &str) -> Option<String> {
    let mut best: Vec<(usize, &String)> = rules
        .shared
        .iter()
        .filter_map(|s| distance(s, label, 2).map(|d| (d, s)))
        .collect();
    best.sort();
    match best.as_slice() {
        [(d, s), rest @ ..] if rest.first().is_none_or(|(d2, _)| d2 > d) => Some((*s).clone()),
        _ => None,
    }
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
    pub triggers: Triggers,
    /// Where `secrets.ATTIC_TOKEN` is used without a push/schedule guard.
    pub attic_token_uses: Vec<Pos>,
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

/// One label a job may get: `origin` is empty for a literal, else the
/// expression it came from.
struct Candidate {
    label: String,
    pos: Pos,
    origin: String,
}

/// Checks the labels of one `runs-on`. `covered` says whether every label
/// set the job may get holds a shared label (so `self-hosted` adds nothing).
fn check_labels(ctx: &mut Ctx<'_>, candidates: &[Candidate], covered: bool) {
    for Candidate { label, pos, origin } in candidates {
        let from = if origin.is_empty() {
            String::new()
        } else {
            format!(" (from {origin})")
        };
        let (pos, label) = (*pos, label.as_str());
        match classify_label(ctx.rules, label) {
            LabelVerdict::Shared | LabelVerdict::GithubHosted => {}
            LabelVerdict::SelfHosted if covered => {}
            LabelVerdict::SelfHosted => ctx.push(
                pos,
                rule::REPO_SPECIFIC_LABEL,
                Severity::Error,
                label,
                format!("`self-hosted`{from} without a shared label reaches any runner; name a shared label"),
                ctx.rules.shared.first().cloned(),
            ),
            LabelVerdict::GitlabClass => ctx.push(
                pos,
                rule::GITLAB_CLASS_IN_GITHUB,
                Severity::Error,
                label,
                format!("`{label}`{from} is a GitLab compatibility class; GitHub workflows use the shared labels"),
                suggest(ctx.rules, &label.replacen("gl-", "tinyland-", 1)),
            ),
            LabelVerdict::ProofOnly => ctx.push(
                pos,
                rule::PROOF_ONLY_LABEL,
                Severity::Warning,
                label,
                format!("`{label}`{from} is a repo-scoped proof-only surface, not a shared-platform promise"),
                None,
            ),
            LabelVerdict::RepoSpecific => ctx.push(
                pos,
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
    // Each expression stands for one of its (distinct) resolved values; the
    // job gets the literals plus one value of each expression. The label sets
    // are never enumerated (a matrix product can be astronomically large):
    // every distinct label is judged once, and whether every set holds a
    // shared label follows from the literals and each expression's values.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut literal_shared = false;
    let mut some_expression_always_shared = false;
    let mut some_value_shared = false;
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
                literal_shared |= classify_label(ctx.rules, &label) == LabelVerdict::Shared;
                candidates.push(Candidate {
                    label,
                    pos,
                    origin: String::new(),
                });
            }
            continue;
        };
        match resolve(expr, workflow, job) {
            Some(values) => {
                let mut seen = std::collections::HashSet::new();
                let mut all_shared = true;
                for v in values {
                    let full = format!("{before}{v}{after}");
                    if !seen.insert(full.clone()) {
                        continue;
                    }
                    let shared = classify_label(ctx.rules, &full) == LabelVerdict::Shared;
                    all_shared &= shared;
                    some_value_shared |= shared;
                    candidates.push(Candidate {
                        label: full,
                        pos,
                        origin: "an expression".into(),
                    });
                }
                some_expression_always_shared |= all_shared;
            }
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
    ctx.targets_shared |= literal_shared || some_value_shared;
    let before = ctx.out.len();
    check_labels(
        ctx,
        &candidates,
        literal_shared || some_expression_always_shared,
    );
    // The same wrong value at the same place is reported once.
    let mut seen = std::collections::HashSet::new();
    let found: Vec<Violation> = ctx.out.drain(before..).collect();
    for v in found {
        if seen.insert((v.line, v.column, v.value.clone(), v.rule)) {
            ctx.out.push(v);
        }
    }
}

/// Every value of `key` in a mapping: a duplicated key is not resolved
/// last-wins (or first-wins) but checked in every occurrence.
fn get_all<'a>(node: &'a Node, key: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
    node.as_map()
        .unwrap_or_default()
        .iter()
        .filter(move |(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// `.github/workflows/*.yml`: every job's `runs-on`, the triggers, and
/// where `secrets.ATTIC_TOKEN` is used.
pub(crate) fn workflow(ctx: &mut Ctx<'_>, root: &Node) {
    ctx.triggers = Triggers::of(root);
    for jobs in get_all(root, "jobs") {
        let Some(jobs) = jobs.as_map() else { continue };
        for (_, job) in jobs {
            for runs_on in get_all(job, "runs-on") {
                check_runs_on(ctx, root, job, runs_on);
            }
        }
    }
    attic_token_uses(ctx, root);
}

/// The events that start a workflow (`on:` as a string, a list or a map).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Triggers {
    /// `push`: `None` when the workflow has no push trigger.
    pub push: Option<Branches>,
    pub schedule: bool,
    pub pull_request: bool,
    pub pull_request_target: bool,
    pub workflow_run: bool,
    pub workflow_dispatch: bool,
    /// Every event name, in file order.
    pub events: Vec<String>,
}

/// Which branch pushes start the workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "patterns")]
pub enum Branches {
    All,
    Only(Vec<String>),
    Except(Vec<String>),
    /// `push: {tags: [...]}` without `branches`: no branch push runs it.
    None,
}

/// GitHub's branch filter glob: `*` matches within a path segment, `**`
/// anything, `?` one character; a leading `!` negates (handled by the
/// caller). Dynamic programming over (pattern, name) positions: linear in
/// their product, never exponential backtracking.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    if p.len() > 1024 || n.len() > 1024 {
        return false;
    }
    // ok[i][j]: p[i..] matches n[j..].
    let mut ok = vec![vec![false; n.len() + 1]; p.len() + 1];
    ok[p.len()][n.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=n.len()).rev() {
            ok[i][j] = match p[i] {
                b'*' if p.get(i + 1) == Some(&b'*') => {
                    // `**`: skip it, or eat one character and stay.
                    ok[i + 2][j] || (j < n.len() && ok[i][j + 1])
                }
                b'*' => ok[i + 1][j] || (j < n.len() && n[j] != b'/' && ok[i][j + 1]),
                b'?' => j < n.len() && ok[i + 1][j + 1],
                c => j < n.len() && n[j] == c && ok[i + 1][j + 1],
            };
        }
    }
    ok[0][0]
}

fn filter_matches(patterns: &[String], branch: &str) -> bool {
    // Later patterns win, `!` excludes again (GitHub's rule).
    let mut hit = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob_matches(neg, branch) {
                hit = false;
            }
        } else if glob_matches(p, branch) {
            hit = true;
        }
    }
    hit
}

impl Branches {
    pub fn includes(&self, branch: &str) -> bool {
        match self {
            Branches::All => true,
            Branches::Only(p) => filter_matches(p, branch),
            Branches::Except(p) => !filter_matches(p, branch),
            Branches::None => false,
        }
    }
}

impl Triggers {
    pub fn of(root: &Node) -> Triggers {
        let mut t = Triggers::default();
        let Some(on) = root.get("on") else {
            return t;
        };
        let add = |t: &mut Triggers, name: &str, config: Option<&Node>| {
            t.events.push(name.to_string());
            match name {
                "push" => t.push = Some(Branches::of(config)),
                "schedule" => t.schedule = true,
                "pull_request" => t.pull_request = true,
                "pull_request_target" => t.pull_request_target = true,
                "workflow_run" => t.workflow_run = true,
                "workflow_dispatch" => t.workflow_dispatch = true,
                _ => {}
            }
        };
        match &on.value {
            Value::Scalar(_) => {
                if let Some(name) = on.as_str() {
                    add(&mut t, name, None);
                }
            }
            Value::Seq(items) => {
                for name in items.iter().filter_map(Node::as_str) {
                    add(&mut t, name, None);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    if let Some(name) = k.as_str() {
                        add(&mut t, name, Some(v));
                    }
                }
            }
        }
        t
    }

    /// Whether a run of this workflow can prove `branch`: a push to it, or
    /// a schedule (scheduled runs use the default branch).
    pub fn proves(&self, branch: &str) -> bool {
        self.schedule || self.push.as_ref().is_some_and(|b| b.includes(branch))
    }

    /// Whether code or input from outside the repository's writers can run
    /// it: `pull_request` (forks), `pull_request_target`, `workflow_run`
    /// (which may follow a fork's run).
    pub fn untrusted(&self) -> bool {
        self.pull_request || self.pull_request_target || self.workflow_run
    }
}

impl Branches {
    fn of(config: Option<&Node>) -> Branches {
        let Some(config) = config.filter(|c| c.as_map().is_some()) else {
            return Branches::All;
        };
        let list = |key: &str| config.get(key).map(|n| scalars(n).unwrap_or_default());
        if let Some(only) = list("branches") {
            Branches::Only(only)
        } else if let Some(except) = list("branches-ignore") {
            Branches::Except(except)
        } else if config.get("tags").is_some() || config.get("tags-ignore").is_some() {
            Branches::None
        } else {
            Branches::All
        }
    }
}

/// Whether an expression holding `secrets.ATTIC_TOKEN` (or the job's `if:`)
/// confines it to trusted events.
fn guarded(text: &str) -> bool {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    [
        "github.event_name=='push'",
        "github.event_name==\"push\"",
        "github.event_name=='schedule'",
    ]
    .iter()
    .any(|g| t.contains(g))
}

fn mentions_attic_token(s: &str) -> bool {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    t.contains("secrets.ATTIC_TOKEN")
        || t.contains("secrets['ATTIC_TOKEN']")
        || t.contains("secrets[\"ATTIC_TOKEN\"]")
}

/// Every scalar under `node` that uses the Attic push token, with its position.
fn token_uses(node: &Node, out: &mut Vec<(Pos, String)>) {
    match &node.value {
        Value::Scalar(s) => {
            if mentions_attic_token(&s.text) {
                out.push((node.pos, s.text.clone()));
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| token_uses(i, out)),
        // A job or step confined to trusted events may use it.
        Value::Map(_) if node.get("if").and_then(Node::as_str).is_some_and(guarded) => {}
        Value::Map(entries) => entries.iter().for_each(|(_, v)| token_uses(v, out)),
    }
}

/// Enrollment, credential step 4: `ATTIC_TOKEN` is for trusted pushes only;
/// a workflow that pull requests or `workflow_run` can start must not use it
/// (unless the job or the expression itself is confined to push/schedule).
fn attic_token_uses(ctx: &mut Ctx<'_>, root: &Node) {
    let mut uses = Vec::new();
    for (key, value) in root.as_map().unwrap_or_default() {
        match key.as_str() {
            Some("on") => {}
            _ => {
                let mut found = Vec::new();
                token_uses(value, &mut found);
                uses.extend(found.into_iter().filter(|(_, t)| !guarded(t)));
            }
        }
    }
    ctx.attic_token_uses = uses.iter().map(|(p, _)| *p).collect();
    if !ctx.triggers.untrusted() {
        return;
    }
    let events: Vec<String> = ctx
        .triggers
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.as_str(),
                "pull_request" | "pull_request_target" | "workflow_run"
            )
        })
        .cloned()
        .collect();
    for (pos, _) in uses {
        ctx.push(
            pos,
            rule::ATTIC_TOKEN_UNTRUSTED,
            Severity::Error,
            "secrets.ATTIC_TOKEN",
            format!(
                "ATTIC_TOKEN in a workflow started by {}: pull-request validation stays read-only (ATTIC_PUBLIC_KEY); ATTIC_TOKEN is only for trusted pushes",
                events.join(", ")
            ),
            Some("ATTIC_PUBLIC_KEY (substituter only), or confine the job with `if: github.event_name == 'push'`".into()),
        );
    }
}

/// arc-runners tfvars: every `extra_runner_sets[*].runner_label` must be a
/// shared label (the nix, docker and dind lanes carry fixed shared labels).
pub(crate) fn tfvars(rules: &Rules, file: &str, source: &str, out: &mut Vec<Violation>) {
    let vars = match flywheel_overlay::load_tfvars(std::path::Path::new(file), source) {
        Ok(v) => v,
        // Only an arc-runners tfvars is judged; one that cannot be read but
        // declares runner sets must not pass silently.
        Err(e) if source.contains("extra_runner_sets") => {
            out.push(Violation {
                file: file.to_string(),
                line: e.pos.line,
                column: e.pos.column,
                rule: rule::UNPARSEABLE,
                severity: Severity::Error,
                value: String::new(),
                message: format!(
                    "cannot be read, so its runner_label values are not checked: {}",
                    e.message
                ),
                replacement: None,
                excerpt: String::new(),
            });
            return;
        }
        Err(_) => return,
    };
    let lines: Vec<&str> = source.lines().collect();
    for set in &vars.extra_runner_sets {
        let Some(label) = &set.runner_label else {
            continue;
        };
        let verdict = classify_label(rules, &label.value);
        if verdict == LabelVerdict::Shared {
            continue;
        }
        let (rule, severity, why) = match verdict {
            LabelVerdict::ProofOnly => (
                rule::PROOF_ONLY_LABEL,
                Severity::Warning,
                "is a repo-scoped proof-only surface, not a shared-platform promise",
            ),
            _ => (
                rule::REPO_SPECIFIC_LABEL,
                Severity::Error,
                "is not a shared label of the contract: extra runner sets serve shared labels only",
            ),
        };
        out.push(Violation {
            file: file.to_string(),
            line: label.pos.line,
            column: label.pos.column,
            rule,
            severity,
            value: label.value.clone(),
            message: format!(
                "extra_runner_sets.{}.runner_label `{}` {why} (shared: {})",
                set.key.value,
                label.value,
                rules.shared.join(", ")
            ),
            replacement: suggest(rules, &label.value),
            excerpt: lines
                .get((label.pos.line as usize).wrapping_sub(1))
                .map(|l| line_text(l.as_bytes()))
                .unwrap_or_default(),
        });
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
    /// The events that start it.
    pub triggers: Triggers,
    /// Where `secrets.ATTIC_TOKEN` is used without a push/schedule guard.
    pub attic_token_uses: Vec<Pos>,
}

/// Checks one workflow's `runs-on` against `rules` (out-of-contract literals
/// are not searched). A workflow that is not YAML is one `unparseable`
/// error: labels that cannot be read are never a pass.
pub fn workflow_labels(rules: &Rules, file: &str, source: &str) -> WorkflowLabels {
    let mut out = Vec::new();
    let root = match flywheel_yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            out.push(unparseable(file, &e, Severity::Error));
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
        triggers: Triggers::default(),
        attic_token_uses: Vec::new(),
    };
    workflow(&mut ctx, &root);
    let targets_shared = ctx.targets_shared;
    let groups = std::mem::take(&mut ctx.groups);
    let triggers = std::mem::take(&mut ctx.triggers);
    let attic_token_uses = std::mem::take(&mut ctx.attic_token_uses);
    WorkflowLabels {
        violations: out,
        groups,
        targets_shared,
        triggers,
        attic_token_uses,
    }
}

/// The one finding for a workflow or `.gitlab-ci.yml` that is not YAML.
pub(crate) fn unparseable(
    file: &str,
    e: &flywheel_yaml::SyntaxError,
    severity: Severity,
) -> Violation {
    Violation {
        file: file.to_string(),
        line: e.pos.line,
        column: e.pos.column,
        rule: rule::UNPARSEABLE,
        severity,
        value: String::new(),
        message: format!(
            "cannot be read as YAML, so its labels are not checked: {}",
            e.message
        ),
        replacement: None,
        excerpt: String::new(),
    }
}
