use std::collections::HashSet;

use aho_corasick::{AhoCorasick, MatchKind};
use flywheel_contract::{Platform, Severity};

/// What finding a match of the automaton stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An out-of-contract string, found anywhere, any ASCII case.
    Literal,
    /// An out-of-contract URL's host (and path), found with or without a
    /// scheme and in any case, but not inside a longer hostname.
    Host,
    /// A keyword that starts a structural rule on its line.
    Trigger(Trigger),
}

/// Structural rules: not literals, but a key and the value next to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// `backend "http"` (any spacing or quoting).
    Backend,
    /// Any `TF_HTTP_*` variable.
    TfHttp,
    /// A GitLab `/api/v4/projects/.../terraform/state/` address.
    TerraformState,
    /// `--remote_cache=`, `BAZEL_REMOTE_CACHE`.
    RemoteCache,
    /// tfvars or overlay `bazel_cache_endpoint`.
    BazelCacheEndpoint,
    /// Nix `substituters` / `extra-substituters`.
    Substituters,
    /// Runner-side `attic_server`.
    AtticServer,
}

const TRIGGERS: &[(&str, Trigger)] = &[
    ("backend", Trigger::Backend),
    ("tf_http_", Trigger::TfHttp),
    ("/terraform/state", Trigger::TerraformState),
    ("remote_cache", Trigger::RemoteCache),
    ("bazel_cache_endpoint", Trigger::BazelCacheEndpoint),
    ("substituters", Trigger::Substituters),
    ("attic_server", Trigger::AtticServer),
];

/// What one searched pattern stands for.
#[derive(Clone, Debug)]
pub(crate) struct Needle {
    pub value: String,
    pub reason: String,
    pub replacement: Option<String>,
    pub severity: Severity,
    pub kind: Kind,
}

/// Addresses the structural rules compare against, all from the contract.
#[derive(Clone, Debug, Default)]
pub(crate) struct Endpoints {
    /// The in-cluster Bazel cache (`caches.bazel.runner_endpoint`).
    pub bazel_runner: Option<String>,
    /// Attic for runners (`caches.attic.runner_endpoint`) and its audience.
    pub attic_runner: Option<(String, String)>,
    /// Attic for people (`caches.attic.read_endpoint`) and its audience.
    pub attic_read: Option<(String, String)>,
    /// FlakeHub's host (`caches.flakehub.url`): publication only.
    pub flakehub_host: Option<String>,
    /// Whether the contract's stacks use S3 state (then HTTP state is stale).
    pub s3_state: bool,
}

/// Everything a scan needs from the contract, built once.
#[derive(Clone, Debug)]
pub struct Rules {
    pub(crate) needles: Vec<Needle>,
    pub(crate) automaton: Option<AhoCorasick>,
    pub(crate) shared: Vec<String>,
    pub(crate) shared_set: HashSet<String>,
    pub(crate) gitlab_classes: HashSet<String>,
    pub(crate) proof_only: HashSet<String>,
    pub(crate) endpoints: Endpoints,
}

/// `https://Host.Example/path` → `Host.Example/path`, when `s` is a URL with
/// a scheme.
pub(crate) fn strip_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once("://")?;
    (!scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+'))
    .then_some(rest)
}

/// The host of a URL or bare address, lowercased, without port.
pub(crate) fn host_of(s: &str) -> String {
    let rest = strip_scheme(s).unwrap_or(s);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let host = if hostport.starts_with('[') {
        hostport.split_once(']').map_or(hostport, |(h, _)| h)
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    host.trim_start_matches('[').to_ascii_lowercase()
}

/// The endpoint's audience as the contract's `endpoints` table names it.
fn audience(p: &Platform, address: &str, fallback: &str) -> String {
    p.endpoints
        .iter()
        .find(|e| same_address(&e.address.value, address))
        .map_or_else(|| fallback.to_string(), |e| e.audience.value.clone())
}

/// Addresses compare without case, scheme-insensitively on host, ignoring a
/// trailing slash.
pub(crate) fn same_address(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        strip_scheme(s)
            .unwrap_or(s)
            .trim_end_matches('/')
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

impl Rules {
    pub fn from_platform(p: &Platform) -> Rules {
        let mut needles = Vec::new();
        let mut patterns = Vec::new();
        for o in &p.out_of_contract {
            for n in o.needles() {
                if n.trim().is_empty() {
                    continue;
                }
                // A URL is found by its host and path, with any scheme or none.
                let (pattern, kind) = match strip_scheme(n) {
                    Some(rest) if !rest.is_empty() => (rest.to_string(), Kind::Host),
                    _ => (n.to_string(), Kind::Literal),
                };
                patterns.push(pattern.to_ascii_lowercase());
                needles.push(Needle {
                    value: n.to_string(),
                    reason: o.reason.clone(),
                    replacement: o.replacement.clone(),
                    severity: o.severity,
                    kind,
                });
            }
        }
        for (word, trigger) in TRIGGERS {
            patterns.push((*word).to_string());
            needles.push(Needle {
                value: (*word).to_string(),
                reason: String::new(),
                replacement: None,
                severity: Severity::Error,
                kind: Kind::Trigger(*trigger),
            });
        }
        // Leftmost-longest: a full stale URL wins over the namespace inside
        // it. Case-insensitive by searching an ASCII-lowercased copy of the
        // text with lowercase patterns: the automaton's own case-insensitive
        // mode disables its SIMD prefilter and was 1.5x slower end to end.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok();
        let attic = &p.caches.attic;
        let endpoints = Endpoints {
            bazel_runner: p
                .caches
                .bazel
                .as_ref()
                .map(|b| b.runner_endpoint.value.clone()),
            attic_runner: Some((
                attic.runner_endpoint.value.clone(),
                audience(p, &attic.runner_endpoint.value, "in-cluster runners"),
            )),
            attic_read: Some((
                attic.read_endpoint.value.clone(),
                audience(
                    p,
                    &attic.read_endpoint.value,
                    "operators and internal consumers",
                ),
            )),
            flakehub_host: p
                .caches
                .flakehub
                .as_ref()
                .map(|f| host_of(&f.url.value))
                .filter(|h| !h.is_empty()),
            s3_state: p
                .stacks
                .iter()
                .any(|s| s.backend.value.eq_ignore_ascii_case("s3")),
        };
        let shared: Vec<String> = p.shared_labels().map(str::to_string).collect();
        Rules {
            needles,
            automaton,
            shared_set: shared.iter().cloned().collect(),
            shared,
            gitlab_classes: p
                .gitlab_classes
                .iter()
                .map(|c| c.class.value.clone())
                .collect(),
            // Proof-only surfaces, and labels the contract lists as proof-only.
            proof_only: p
                .proof_only
                .iter()
                .flat_map(|s| s.labels.iter().map(|l| l.value.clone()))
                .chain(
                    p.runner_labels
                        .iter()
                        .filter(|l| l.status.value == flywheel_contract::LabelStatus::ProofOnly)
                        .map(|l| l.label.value.clone()),
                )
                .collect(),
            endpoints,
        }
    }

    /// Label rules only: `shared` are the labels workflows may use (an
    /// overlay's `runner_contract.shared_labels`, when no contract is given);
    /// no literal is searched.
    pub fn from_shared_labels(shared: &[String]) -> Rules {
        Rules {
            needles: Vec::new(),
            automaton: None,
            shared_set: shared.iter().cloned().collect(),
            shared: shared.to_vec(),
            gitlab_classes: HashSet::new(),
            proof_only: HashSet::new(),
            endpoints: Endpoints::default(),
        }
    }

    /// The literals searched for, in contract order.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.needles
            .iter()
            .filter(|n| !matches!(n.kind, Kind::Trigger(_)))
            .map(|n| n.value.as_str())
    }

    /// The shared labels of the contract (or the list given).
    pub fn shared_labels(&self) -> &[String] {
        &self.shared
    }

    /// Whether `label` is a shared label.
    pub fn is_shared(&self, label: &str) -> bool {
        self.shared_set.contains(label)
    }

    /// Whether a cache address is cluster-internal (a Service name).
    pub fn is_cluster_internal(address: &str) -> bool {
        let host = host_of(address);
        host.ends_with(".svc")
            || host.ends_with(".svc.cluster.local")
            || host.ends_with(".cluster.local")
            || host == "localhost"
            || (!host.is_empty() && !host.contains('.') && !host.contains(':'))
    }

    /// The Bazel cache address to use instead of a public one.
    pub fn bazel_runner_endpoint(&self) -> Option<&str> {
        self.endpoints.bazel_runner.as_deref()
    }

    /// Runner-side Attic: `Some((right endpoint, its audience, audience of
    /// the one given))` when `address` is the human-facing read endpoint.
    pub fn attic_for_people(&self, address: &str) -> Option<(&str, &str, &str)> {
        let (read, read_aud) = self.endpoints.attic_read.as_ref()?;
        let (runner, runner_aud) = self.endpoints.attic_runner.as_ref()?;
        same_address(read, address).then_some((
            runner.as_str(),
            runner_aud.as_str(),
            read_aud.as_str(),
        ))
    }

    /// Whether `address` is a FlakeHub host (publication only).
    pub fn is_flakehub(&self, address: &str) -> bool {
        let Some(fh) = &self.endpoints.flakehub_host else {
            return false;
        };
        let host = host_of(address);
        let base = fh.rsplit('.').take(2).collect::<Vec<_>>();
        let base = format!(
            "{}.{}",
            base.get(1).copied().unwrap_or(""),
            base.first().copied().unwrap_or("")
        );
        host == *fh || host == base || host.ends_with(&format!(".{base}"))
    }
}
