//! The platform contract (`platform.yaml`) as plain data.
//!
//! Field names are the YAML keys and the JSON keys of
//! `flywheel contract render --format json`; `docs/platform-yaml.md`
//! documents them.

use flywheel_yaml::Located;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Platform {
    pub schema_version: Located<u32>,
    /// Product name, e.g. `GloriousFlywheel`.
    pub name: String,
    /// Document title, e.g. `Internal Live Contract`.
    pub title: String,
    pub snapshot_date: String,
    #[serde(default)]
    pub purpose: Vec<String>,
    pub audiences: Vec<Audience>,
    pub scope: Scope,
    pub stacks: Vec<Stack>,
    pub state_authority: StateAuthority,
    pub endpoints: Vec<Endpoint>,
    pub endpoint_rules: EndpointRules,
    pub caches: Caches,
    pub auth: Auth,
    pub mutation_authority: Prose,
    pub runner_labels: Vec<RunnerLabel>,
    #[serde(default)]
    pub gitlab_classes: Vec<GitlabClass>,
    #[serde(default)]
    pub proof_only: Vec<ProofSurface>,
    #[serde(default)]
    pub onboarding: Vec<OnboardingRule>,
    #[serde(default)]
    pub out_of_contract: Vec<OutOfContract>,
    #[serde(default)]
    pub not_yet_promised: Vec<String>,
    #[serde(default)]
    pub follow_on: Option<Prose>,
    /// GitLab compatibility runners to show and pause (`flywheel serve`
    /// polls them when `GITLAB_TOKEN` is set). Absent: none. Not part of
    /// the rendered contract document, and left out of the JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<GitlabLane>,
    /// A Prometheus that scrapes ARC's listener metrics (`gha_*`):
    /// `flywheel serve` reads the jobs a paused set holds from it. Absent:
    /// held jobs are unknown. Not part of the rendered document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
}

/// `prometheus:`: where ARC's listener metrics can be queried.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PrometheusSource {
    /// The Prometheus HTTP API base, e.g. `http://prometheus.monitoring:9090`.
    pub url: Located<String>,
    /// Seconds between queries (10 to 3600, default 30).
    #[serde(default)]
    pub poll_seconds: Option<Located<u32>>,
}

impl PrometheusSource {
    pub const DEFAULT_POLL_SECONDS: u32 = 30;
}

/// `gitlab:`: where the GitLab compatibility runners are registered.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct GitlabLane {
    /// The GitLab instance, e.g. `https://gitlab.com` (https; http only for
    /// a loopback host).
    pub url: Located<String>,
    /// A group id or full path: poll `GET /api/v4/groups/:id/runners`
    /// (a group owner's token) instead of `GET /api/v4/runners/all` (an
    /// administrator's or auditor's token).
    #[serde(default)]
    pub group: Option<Located<String>>,
    /// Seconds between polls (10 to 3600, default 60), each with ±10 % jitter.
    #[serde(default)]
    pub poll_seconds: Option<Located<u32>>,
}

impl GitlabLane {
    pub const DEFAULT_POLL_SECONDS: u32 = 60;

    /// The poll interval in seconds.
    pub fn poll_seconds(&self) -> u32 {
        self.poll_seconds
            .as_ref()
            .map_or(Self::DEFAULT_POLL_SECONDS, |p| p.value)
    }
}

/// A rule in words: a lead sentence and its points.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Prose {
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub points: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Audience {
    pub name: Located<String>,
    pub meaning: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Scope {
    pub clusters: Vec<Cluster>,
    pub forges: Forges,
    #[serde(default)]
    pub cache_families: Vec<CacheFamily>,
    #[serde(default)]
    pub operator_surfaces: Vec<String>,
    /// What the platform is explicitly not yet.
    #[serde(default)]
    pub not_yet: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Cluster {
    pub name: Located<String>,
    /// kubeconfig context used to reach it.
    pub context: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Forges {
    pub primary: Located<Forge>,
    #[serde(default)]
    pub compatibility: Vec<Located<Forge>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    Github,
    Gitlab,
}

impl Forge {
    pub fn display(self) -> &'static str {
        match self {
            Forge::Github => "GitHub",
            Forge::Gitlab => "GitLab",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CacheFamily {
    pub name: String,
    #[serde(default)]
    pub backing: String,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Stack {
    pub name: Located<String>,
    pub backend: Located<String>,
    pub key: Located<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StateAuthority {
    /// Must be desired, managed, observed, in that order.
    pub order: Vec<AuthorityLayer>,
    #[serde(default)]
    pub drift_rule: String,
    #[serde(default)]
    pub compatibility_only: Prose,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AuthorityLayer {
    pub layer: Located<Layer>,
    pub source: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Desired,
    Managed,
    Observed,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Endpoint {
    pub surface: String,
    pub audience: Located<String>,
    pub address: Located<String>,
    pub contract: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EndpointRules {
    pub bazel_external: Prose,
    pub dashboard_access: Prose,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Caches {
    pub attic: Attic,
    #[serde(default)]
    pub bazel: Option<Bazel>,
    #[serde(default)]
    pub flakehub: Option<FlakeHub>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Attic {
    pub default_cache: Located<String>,
    pub runner_endpoint: Located<String>,
    pub read_endpoint: Located<String>,
    /// Who may write; the contract says `credentialed`.
    pub write: Located<String>,
    /// Environment variable that selects a dedicated project cache.
    #[serde(default)]
    pub cache_override_env: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Bazel {
    pub runner_endpoint: Located<String>,
    #[serde(default = "yes")]
    pub optional: bool,
    /// What a cache miss means (`rebuild`).
    pub miss: String,
    #[serde(default)]
    pub notes: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FlakeHub {
    pub url: Located<String>,
    pub role: String,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Auth {
    pub modes: Vec<AuthMode>,
    /// With trusted proxy headers on, the proxy identity wins over a stored session.
    #[serde(default)]
    pub proxy_outranks_sessions: bool,
    /// Must be `[viewer, operator, admin]`: each role includes the ones before it.
    pub roles: Vec<Located<Role>>,
    #[serde(default)]
    pub role_mapping: Vec<RoleMapping>,
    /// The role of an authenticated identity no mapping names: `viewer`
    /// (the default), `operator`, `admin`, or `none` (refused).
    #[serde(default)]
    pub default_role: Option<Located<DefaultRole>>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AuthMode {
    pub kind: Located<AuthKind>,
    #[serde(default)]
    pub preferred: bool,
    #[serde(default)]
    pub description: String,
    /// trusted_proxy: networks whose identity headers are believed.
    #[serde(default)]
    pub trusted_cidrs: Vec<Located<String>>,
    #[serde(default)]
    pub user_header: Option<String>,
    #[serde(default)]
    pub groups_header: Option<String>,
    /// oidc: issuer URL and client id (the secret is never in this file).
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// webauthn: relying party id and origin.
    #[serde(default)]
    pub rp_id: Option<String>,
    #[serde(default)]
    pub rp_origin: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    TrustedProxy,
    Oidc,
    Webauthn,
}

impl AuthKind {
    pub fn display(self) -> &'static str {
        match self {
            AuthKind::TrustedProxy => "trusted proxy headers",
            AuthKind::Oidc => "OIDC",
            AuthKind::Webauthn => "WebAuthn",
        }
    }
}

/// `auth.default_role`: a role, or `none` to refuse unmapped identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultRole {
    Viewer,
    Operator,
    Admin,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ORDER: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RoleMapping {
    #[serde(default)]
    pub identity: Option<Located<String>>,
    #[serde(default)]
    pub group: Option<Located<String>>,
    pub role: Located<Role>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RunnerLabel {
    pub label: Located<String>,
    pub status: Located<LabelStatus>,
    pub meaning: String,
    /// The ARC lane that serves it (`nix`, `docker`, `dind`, ...).
    #[serde(default)]
    pub lane: Option<String>,
    /// One concurrency budget across every owner's scale sets for this label.
    #[serde(default)]
    pub global_max_runners: Option<Located<u32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelStatus {
    Baseline,
    Additive,
    ProofOnly,
}

impl LabelStatus {
    pub fn display(self) -> &'static str {
        match self {
            LabelStatus::Baseline => "baseline shared",
            LabelStatus::Additive => "additive shared",
            LabelStatus::ProofOnly => "proof-only",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct GitlabClass {
    pub class: Located<String>,
    #[serde(default)]
    pub meaning: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ProofSurface {
    pub surface: String,
    /// Labels that belong to this surface (repo-scoped, never shared).
    #[serde(default)]
    pub labels: Vec<Located<String>>,
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OnboardingRule {
    pub name: String,
    #[serde(default)]
    pub summary: String,
    pub expectations: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OutOfContract {
    /// What is out of contract, as people name it.
    pub value: Located<String>,
    pub reason: String,
    #[serde(default)]
    pub replacement: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    /// Literal strings `contract check` looks for. Absent: `[value]`.
    /// Empty: the value is a practice, not a string, and cannot be scanned.
    #[serde(default)]
    pub matches: Option<Vec<Located<String>>>,
}

impl OutOfContract {
    /// The literal strings to search for.
    pub fn needles(&self) -> Vec<&str> {
        match &self.matches {
            Some(list) => list.iter().map(|m| m.value.as_str()).collect(),
            None => vec![self.value.value.as_str()],
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    #[default]
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}
