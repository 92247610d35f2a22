//! Rules the contract must satisfy beyond its shape. Every problem is
//! reported (not just the first), each with its line and key path.

use std::collections::HashMap;
use std::net::IpAddr;

use flywheel_yaml::{Located, Pos};

use crate::model::{Layer, Platform, Role};

/// One broken rule: where, which key, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, pos: Pos, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            pos,
            path: path.into(),
            message: message.into(),
        });
    }

    fn non_empty(&mut self, v: &Located<String>, path: impl Into<String>) {
        if v.value.trim().is_empty() {
            self.push(v.pos, path, "must not be empty");
        }
    }

    /// Reports every name seen twice, at its second place.
    fn unique<'a>(
        &mut self,
        items: impl Iterator<Item = (&'a Located<String>, String)>,
        what: &str,
    ) {
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for (item, path) in items {
            if let Some(first) = seen.get(item.value.as_str()) {
                self.push(
                    item.pos,
                    path,
                    format!(
                        "duplicate {what} `{}` (first at line {})",
                        item.value, first.line
                    ),
                );
            } else {
                seen.insert(item.value.as_str(), item.pos);
            }
        }
    }
}

/// A runner label or class name: lowercase letters, digits, `-`, `_`, `.`.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// `a.b.c.d/n` or `x::y/n` with a prefix no longer than the address.
pub fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(prefix)) = (addr.parse::<IpAddr>(), prefix.parse::<u8>()) else {
        return false;
    };
    prefix <= if addr.is_ipv4() { 32 } else { 128 }
}

/// A GitLab instance URL: `https://host[:port][/path]`, or `http://` for a
/// loopback host only (a token never crosses a network in the clear); no
/// user information, query or fragment.
pub fn gitlab_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a URL such as https://gitlab.com"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL has a space or control character".into());
    }
    if authority.contains('@') {
        return Err("the URL may not hold user information (the token is GITLAB_TOKEN)".into());
    }
    if rest.contains('?') || rest.contains('#') {
        return Err("the URL may not have a query or fragment".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{url}`: plain http only for a loopback host; use https"
        )),
        _ => Err(format!("`{url}`: the scheme must be https")),
    }
}

pub fn validate(p: &Platform) -> Vec<Problem> {
    let mut out = Problems::default();

    if p.schema_version.value != 1 {
        out.push(
            p.schema_version.pos,
            "schema_version",
            format!(
                "unsupported schema_version {} (this flywheel reads 1)",
                p.schema_version.value
            ),
        );
    }

    // Audiences (endpoint audiences are free text: the contract names
    // narrower readers there, such as "operators and internal consumers").
    out.unique(
        p.audiences
            .iter()
            .enumerate()
            .map(|(i, a)| (&a.name, format!("audiences[{i}].name"))),
        "audience",
    );
    for (i, e) in p.endpoints.iter().enumerate() {
        out.non_empty(&e.address, format!("endpoints[{i}].address"));
    }

    // Scope.
    if p.scope.clusters.is_empty() {
        out.push(
            Pos::UNKNOWN,
            "scope.clusters",
            "at least one cluster is required",
        );
    }
    out.unique(
        p.scope
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.name, format!("scope.clusters[{i}].name"))),
        "cluster",
    );
    for (i, f) in p.scope.forges.compatibility.iter().enumerate() {
        if f.value == p.scope.forges.primary.value {
            out.push(
                f.pos,
                format!("scope.forges.compatibility[{i}]"),
                "the primary forge cannot also be a compatibility forge",
            );
        }
    }

    // State.
    out.unique(
        p.stacks
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.name, format!("stacks[{i}].name"))),
        "stack",
    );
    out.unique(
        p.stacks
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.key, format!("stacks[{i}].key"))),
        "state key",
    );
    for (i, s) in p.stacks.iter().enumerate() {
        out.non_empty(&s.name, format!("stacks[{i}].name"));
        out.non_empty(&s.key, format!("stacks[{i}].key"));
        if s.backend.value != "s3" {
            out.push(
                s.backend.pos,
                format!("stacks[{i}].backend"),
                format!(
                    "backend `{}`: the active stack contract is backend \"s3\"",
                    s.backend.value
                ),
            );
        }
    }
    let layers: Vec<Layer> = p
        .state_authority
        .order
        .iter()
        .map(|l| l.layer.value)
        .collect();
    if layers != [Layer::Desired, Layer::Managed, Layer::Observed] {
        let pos = p
            .state_authority
            .order
            .first()
            .map_or(Pos::UNKNOWN, |l| l.layer.pos);
        out.push(
            pos,
            "state_authority.order",
            "authority order must be desired, managed, observed (repo, OpenTofu state, cluster)",
        );
    }

    // Auth.
    let roles: Vec<Role> = p.auth.roles.iter().map(|r| r.value).collect();
    if roles != Role::ORDER {
        let pos = p.auth.roles.first().map_or(Pos::UNKNOWN, |r| r.pos);
        out.push(
            pos,
            "auth.roles",
            "the role model is exactly [viewer, operator, admin], lowest first",
        );
    }
    for (i, m) in p.auth.modes.iter().enumerate() {
        for (j, c) in m.trusted_cidrs.iter().enumerate() {
            if !is_cidr(&c.value) {
                out.push(
                    c.pos,
                    format!("auth.modes[{i}].trusted_cidrs[{j}]"),
                    format!("`{}` is not a CIDR such as 100.64.0.0/10", c.value),
                );
            }
        }
    }
    for (i, m) in p.auth.role_mapping.iter().enumerate() {
        if m.identity.is_some() == m.group.is_some() {
            out.push(
                m.role.pos,
                format!("auth.role_mapping[{i}]"),
                "give exactly one of `identity` or `group`",
            );
        }
    }

    // Labels.
    let labels = p
        .runner_labels
        .iter()
        .enumerate()
        .map(|(i, l)| (&l.label, format!("runner_labels[{i}].label")));
    out.unique(labels, "runner label");
    for (i, l) in p.runner_labels.iter().enumerate() {
        if !is_label(&l.label.value) {
            out.push(
                l.label.pos,
                format!("runner_labels[{i}].label"),
                format!(
                    "`{}` is not a runner label (lowercase letters, digits, -, _, .)",
                    l.label.value
                ),
            );
        }
        if let Some(max) = &l.global_max_runners
            && max.value == 0
        {
            out.push(
                max.pos,
                format!("runner_labels[{i}].global_max_runners"),
                "a budget of 0 would hold every job; pause the label instead",
            );
        }
    }
    if !p
        .runner_labels
        .iter()
        .any(|l| l.status.value == crate::model::LabelStatus::Baseline)
    {
        out.push(
            Pos::UNKNOWN,
            "runner_labels",
            "at least one baseline label is required",
        );
    }
    out.unique(
        p.gitlab_classes
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.class, format!("gitlab_classes[{i}].class"))),
        "GitLab class",
    );
    for (i, c) in p.gitlab_classes.iter().enumerate() {
        if p.runner_labels
            .iter()
            .any(|l| l.label.value == c.class.value)
        {
            out.push(
                c.class.pos,
                format!("gitlab_classes[{i}].class"),
                format!(
                    "`{}` is both a GitHub runner label and a GitLab class",
                    c.class.value
                ),
            );
        }
    }
    for (i, s) in p.proof_only.iter().enumerate() {
        for (j, l) in s.labels.iter().enumerate() {
            if p.runner_labels.iter().any(|r| r.label.value == l.value) {
                out.push(
                    l.pos,
                    format!("proof_only[{i}].labels[{j}]"),
                    format!(
                        "`{}` is a shared label; a proof-only surface cannot reuse it",
                        l.value
                    ),
                );
            }
        }
    }

    // GitLab compatibility runners.
    if let Some(g) = &p.gitlab {
        if let Err(why) = gitlab_url(&g.url.value) {
            out.push(g.url.pos, "gitlab.url", why);
        }
        if let Some(group) = &g.group
            && (group.value.trim().is_empty() || group.value.chars().any(char::is_control))
        {
            out.push(
                group.pos,
                "gitlab.group",
                "give a group id or full path (e.g. 42 or tinyland/infra)",
            );
        }
        if let Some(secs) = &g.poll_seconds
            && !(10..=3600).contains(&secs.value)
        {
            out.push(
                secs.pos,
                "gitlab.poll_seconds",
                format!("{} s is outside 10 to 3600", secs.value),
            );
        }
    }

    // The Prometheus held jobs are read from.
    if let Some(pr) = &p.prometheus {
        let u = &pr.url.value;
        let rest = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"));
        let why = match rest {
            None => {
                Some("give an http:// or https:// URL such as http://prometheus.monitoring:9090")
            }
            Some(r) if r.split('/').next().unwrap_or_default().is_empty() => {
                Some("the URL has no host")
            }
            Some(r) if r.split('/').next().unwrap_or_default().contains('@') => {
                Some("the URL may not hold user information")
            }
            Some(r)
                if r.contains(['?', '#'])
                    || u.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Some("the URL may not have a query, fragment, space or control character")
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            out.push(pr.url.pos, "prometheus.url", why);
        }
        if let Some(secs) = &pr.poll_seconds
            && !(10..=3600).contains(&secs.value)
        {
            out.push(
                secs.pos,
                "prometheus.poll_seconds",
                format!("{} s is outside 10 to 3600", secs.value),
            );
        }
    }

    // Out-of-contract values: unique, scannable, and the contract never uses them.
    out.unique(
        p.out_of_contract
            .iter()
            .enumerate()
            .map(|(i, o)| (&o.value, format!("out_of_contract[{i}].value"))),
        "out-of-contract value",
    );
    for (i, o) in p.out_of_contract.iter().enumerate() {
        out.non_empty(&o.value, format!("out_of_contract[{i}].value"));
        if let Some(matches) = &o.matches {
            for (j, m) in matches.iter().enumerate() {
                out.non_empty(m, format!("out_of_contract[{i}].matches[{j}]"));
            }
        }
    }
    let needles: Vec<&str> = p
        .out_of_contract
        .iter()
        .flat_map(|o| o.needles())
        .filter(|n| !n.trim().is_empty())
        .collect();
    let mut contract_values: Vec<(&Located<String>, String)> = Vec::new();
    for (i, e) in p.endpoints.iter().enumerate() {
        contract_values.push((&e.address, format!("endpoints[{i}].address")));
    }
    contract_values.push((
        &p.caches.attic.runner_endpoint,
        "caches.attic.runner_endpoint".into(),
    ));
    contract_values.push((
        &p.caches.attic.read_endpoint,
        "caches.attic.read_endpoint".into(),
    ));
    contract_values.push((
        &p.caches.attic.default_cache,
        "caches.attic.default_cache".into(),
    ));
    if let Some(b) = &p.caches.bazel {
        contract_values.push((&b.runner_endpoint, "caches.bazel.runner_endpoint".into()));
    }
    for (i, s) in p.stacks.iter().enumerate() {
        contract_values.push((&s.key, format!("stacks[{i}].key")));
    }
    for (v, path) in contract_values {
        if let Some(n) = needles.iter().find(|n| v.value.contains(**n)) {
            out.push(
                v.pos,
                path,
                format!("`{}` contains the out-of-contract value `{n}`", v.value),
            );
        }
    }
    for (i, o) in p.out_of_contract.iter().enumerate() {
        if let Some(r) = &o.replacement
            && let Some(n) = needles.iter().find(|n| r.contains(**n))
        {
            out.push(
                o.value.pos,
                format!("out_of_contract[{i}].replacement"),
                format!("the replacement itself contains the out-of-contract value `{n}`"),
            );
        }
    }
    out.0
}
