//! Kubernetes access for flywheel.
//!
//! Reads only what a check needs: Secrets as metadata (`PartialObjectMetadata`,
//! so a value never crosses the wire) and ARC `AutoscalingRunnerSet`s as plain
//! data ([`ScaleSet`]). Reads retry 5xx answers and connection errors a
//! bounded number of times with backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::Serialize;

/// The namespaces ARC uses: the controller's and the runners'.
pub const ARC_SYSTEMS: &str = "arc-systems";
pub const ARC_RUNNERS: &str = "arc-runners";

/// The annotation ARC writes once GitHub has created the scale set.
pub const SCALE_SET_ID: &str = "runner-scale-set-id";

/// A failed cluster read; the message never holds a credential: every
/// message passes the process-wide redactor, with which [`Cluster`]
/// registered the kubeconfig's token and password.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub message: String,
    /// The HTTP status, when the API server answered.
    pub code: Option<u16>,
}

impl Error {
    fn msg(message: impl Into<String>) -> Self {
        Error {
            message: flywheel_redact::redact(&message.into()),
            code: None,
        }
    }
}

/// The largest response body read from the API server (lists included).
pub const MAX_BODY: usize = 32 << 20;

/// At most this many characters of a message the server sent are kept.
const MAX_MESSAGE: usize = 300;

fn bounded(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}… (cut)", &s[..i]),
        None => s.to_string(),
    }
}

/// A failure below the API (no `Status`), in words: a timeout or an
/// oversized answer says so; anything else names its innermost cause.
fn describe(e: &(dyn std::error::Error + 'static), max_body: usize) -> String {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            return format!(
                "the answer is larger than {} MiB and was not read; is KUBECONFIG's server a Kubernetes API server?",
                max_body >> 20
            );
        }
        let timed_out = err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        let text = err.to_string();
        let lower = text.to_ascii_lowercase();
        if timed_out || lower.contains("timed out") || lower.contains("deadline has elapsed") {
            return "no answer in time (read timeout): the API server accepted the connection but did not respond; check the kubeconfig context's server and the network, or raise --timeout".to_string();
        }
        if lower.contains("length limit exceeded") {
            return format!(
                "the answer is larger than {} MiB and was not read",
                max_body >> 20
            );
        }
        chain.push(text);
        cur = err.source();
    }
    let cause = chain
        .iter()
        .rev()
        .find(|c| !c.trim().is_empty() && !c.contains("SendRequest"))
        .cloned()
        .unwrap_or_else(|| "the request failed".to_string());
    format!(
        "cannot reach the API server ({}); check the kubeconfig context and the network",
        bounded(&cause)
    )
}

fn kube_error(context: &str, e: kube::Error) -> Error {
    match e {
        kube::Error::Api(s) => {
            let message = if s.message.trim().is_empty() {
                "the API server refused the request without a message".to_string()
            } else {
                bounded(&s.message)
            };
            let why = match (s.reason.trim(), s.code) {
                ("", 0) => " (the answer named neither a reason nor an HTTP status; is KUBECONFIG's server a Kubernetes API server?)".to_string(),
                ("", code) => format!(" (HTTP {code})"),
                (reason, 0) => format!(" ({})", bounded(reason)),
                (reason, code) => format!(" ({}, HTTP {code})", bounded(reason)),
            };
            Error {
                message: flywheel_redact::redact(&format!("{context}: {message}{why}")),
                code: Some(s.code),
            }
        }
        other => Error::msg(format!("{context}: {}", describe(&other, MAX_BODY))),
    }
}

/// Registers every credential a kube config holds with the redactor (the
/// bearer token, the password, the token a token file names) and refuses one
/// with a control character, which the kube client would panic on when it
/// builds the `Authorization` header.
fn register_credentials(config: &Config) -> Result<(), Error> {
    use secrecy::ExposeSecret;
    let auth = &config.auth_info;
    let file_token = auth
        .token_file
        .as_ref()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.len() <= 64 << 10))
        .and_then(|f| std::fs::read_to_string(f).ok());
    let values = [
        ("token", auth.token.as_ref().map(|t| t.expose_secret())),
        (
            "password",
            auth.password.as_ref().map(|p| p.expose_secret()),
        ),
        ("tokenFile", file_token.as_deref()),
    ];
    for (what, value) in values {
        let Some(value) = value else { continue };
        flywheel_redact::register(value);
        if value.trim().chars().any(char::is_control) {
            return Err(Error::msg(format!(
                "the kubeconfig user's {what} contains a control character (a line break or the like); fix the kubeconfig (the value is not shown)"
            )));
        }
    }
    Ok(())
}

fn transient(e: &Error) -> bool {
    match e.code {
        Some(c) => c >= 500 || c == 429,
        None => true,
    }
}

/// What a Secret's metadata tells: that it exists, and since when.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SecretPresence {
    pub namespace: String,
    pub name: String,
    pub created: Option<String>,
}

/// An `AutoscalingRunnerSet`, reduced to the fields flywheel reads.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ScaleSet {
    pub namespace: String,
    /// `metadata.name` (the Helm release's scale set object).
    pub name: String,
    pub runner_scale_set_name: Option<String>,
    /// `spec.runnerScaleSetLabels` (empty when absent).
    pub runner_scale_set_labels: Vec<String>,
    pub github_config_url: Option<String>,
    pub github_config_secret: Option<String>,
    pub runner_group: Option<String>,
    pub min_runners: Option<i64>,
    /// Absent means unlimited.
    pub max_runners: Option<i64>,
    /// The raw `runner-scale-set-id` annotation.
    pub scale_set_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub current_runners: Option<i64>,
    pub pending_runners: Option<i64>,
    pub running_runners: Option<i64>,
    pub phase: Option<String>,
}

/// Whether ARC has registered a scale set with GitHub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    Registered(u64),
    /// No `runner-scale-set-id` annotation yet.
    Pending,
    /// An annotation that is not a positive integer.
    Invalid(String),
}

impl ScaleSet {
    /// The name GitHub registers: `spec.runnerScaleSetName`, or the object name.
    pub fn registered_name(&self) -> &str {
        self.runner_scale_set_name.as_deref().unwrap_or(&self.name)
    }

    pub fn registration(&self) -> Registration {
        match self.scale_set_id.as_deref() {
            None => Registration::Pending,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(id) if id > 0 => Registration::Registered(id),
                _ => Registration::Invalid(raw.to_string()),
            },
        }
    }

    /// Reads the fields from a dynamic object; missing fields stay `None`.
    pub fn from_object(obj: &DynamicObject) -> ScaleSet {
        let spec = obj.data.get("spec");
        let status = obj.data.get("status");
        let s = |v: Option<&serde_json::Value>, k: &str| {
            v.and_then(|v| v.get(k))
                .and_then(|x| x.as_str())
                .map(str::to_string)
        };
        let n = |v: Option<&serde_json::Value>, k: &str| {
            v.and_then(|v| v.get(k)).and_then(serde_json::Value::as_i64)
        };
        let annotations: BTreeMap<String, String> = obj
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        ScaleSet {
            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
            name: obj.metadata.name.clone().unwrap_or_default(),
            runner_scale_set_name: s(spec, "runnerScaleSetName"),
            runner_scale_set_labels: spec
                .and_then(|v| v.get("runnerScaleSetLabels"))
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            github_config_url: s(spec, "githubConfigUrl"),
            github_config_secret: s(spec, "githubConfigSecret"),
            runner_group: s(spec, "runnerGroup"),
            min_runners: n(spec, "minRunners"),
            max_runners: n(spec, "maxRunners"),
            scale_set_id: annotations.get(SCALE_SET_ID).cloned(),
            labels: obj
                .metadata
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            annotations,
            current_runners: n(status, "currentRunners"),
            pending_runners: n(status, "pendingEphemeralRunners"),
            running_runners: n(status, "runningEphemeralRunners"),
            phase: s(status, "phase"),
        }
    }
}

/// The `AutoscalingRunnerSet` API resource.
pub fn scale_set_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("actions.github.com", "v1alpha1", "AutoscalingRunnerSet"),
        "autoscalingrunnersets",
    )
}

/// What a server-side apply did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    /// The resourceVersion did not move: the object already was this.
    Unchanged,
}

/// What a server-side apply of a scale set did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Written: the set as the API server now holds it, and its
    /// resourceVersion.
    Applied(Box<ScaleSet>, String),
    /// 409: another manager owns a field (unforced), or the set changed since
    /// the resourceVersion in the body; the API server's message.
    Conflict(String),
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Data keys of a Secret that other field managers own and `ours` does not
/// set, from `managedFields` (names only), plus kubectl's last-applied
/// annotation (`annotation <name>`), which holds a copy of old data.
pub fn stale_parts(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    manager: &str,
    ours: &[&str],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in meta.managed_fields.iter().flatten() {
        if entry.manager.as_deref() == Some(manager) {
            continue;
        }
        let Some(fields) = entry
            .fields_v1
            .as_ref()
            .and_then(|f| f.0.get("f:data"))
            .and_then(|d| d.as_object())
        else {
            continue;
        };
        for key in fields.keys().filter_map(|k| k.strip_prefix("f:")) {
            if !ours.contains(&key) && !out.iter().any(|o| o == key) {
                out.push(key.to_string());
            }
        }
    }
    if meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LAST_APPLIED))
    {
        out.push(format!("annotation {LAST_APPLIED}"));
    }
    out
}

/// Retry settings for cluster reads.
#[derive(Clone, Debug)]
pub struct Policy {
    pub retries: u32,
    pub backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retries: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

/// kube reads the kubeconfig itself, without a bound: every file it would
/// read (each `KUBECONFIG` entry, else `~/.kube/config`) must first pass the
/// bounded reader's check (a regular file within the kubeconfig limit), so
/// `KUBECONFIG=/dev/zero` or a FIFO is an error instead of a hang.
pub fn check_kubeconfig_paths(
    kubeconfig: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<(), Error> {
    let paths: Vec<std::path::PathBuf> = match kubeconfig.filter(|v| !v.is_empty()) {
        Some(v) => std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => home
            .map(|h| std::path::Path::new(&h).join(".kube/config"))
            .into_iter()
            .collect(),
    };
    for p in paths {
        match flywheel_fs::check(&p, flywheel_fs::Kind::Kubeconfig) {
            Err(e) if !e.is_not_found() => return Err(Error::msg(e.to_string())),
            _ => {}
        }
    }
    Ok(())
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    policy: Policy,
    /// Where the connection came from, for reports.
    pub source: String,
}

impl Cluster {
    /// The standard kubeconfig (`KUBECONFIG` or `~/.kube/config`) with
    /// `context`, or the in-cluster service account when no kubeconfig exists.
    pub async fn connect(context: Option<&str>, policy: Policy) -> Result<Cluster, Error> {
        check_kubeconfig_paths(std::env::var_os("KUBECONFIG"), std::env::var_os("HOME"))?;
        match Kubeconfig::read() {
            Ok(kc) => Self::from_kubeconfig(kc, context, policy).await,
            Err(kubeconfig_error) => match Config::incluster() {
                Ok(c) => Self::from_config(c, "in-cluster service account".to_string(), policy),
                Err(_) => Err(Error::msg(format!(
                    "no Kubernetes credentials: {kubeconfig_error}; set KUBECONFIG or run in a pod"
                ))),
            },
        }
    }

    /// A kubeconfig file at `path` (tests, and operators with several files).
    pub async fn from_kubeconfig_file(
        path: &std::path::Path,
        context: Option<&str>,
        policy: Policy,
    ) -> Result<Cluster, Error> {
        flywheel_fs::check(path, flywheel_fs::Kind::Kubeconfig)
            .map_err(|e| Error::msg(e.to_string()))?;
        let kc = Kubeconfig::read_from(path)
            .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
        Self::from_kubeconfig(kc, context, policy).await
    }

    async fn from_kubeconfig(
        kc: Kubeconfig,
        context: Option<&str>,
        policy: Policy,
    ) -> Result<Cluster, Error> {
        if let Some(ctx) = context
            && !kc.contexts.iter().any(|c| c.name == ctx)
        {
            let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::msg(format!(
                "kubeconfig has no context `{ctx}` (contexts: {}); pass --context",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| Error::msg(format!("kubeconfig: {e}")))?;
        Self::from_config(
            config,
            format!("kubeconfig context {}", context.unwrap_or("(current)")),
            policy,
        )
    }

    pub fn from_config(
        mut config: Config,
        source: String,
        policy: Policy,
    ) -> Result<Cluster, Error> {
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(30));
        register_credentials(&config)?;
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| Error::msg(format!("Kubernetes client: {}", describe(&e, MAX_BODY))))?
            .with_layer(&tower::util::MapResponseLayer::new(
                |r: http::Response<Box<kube::client::DynBody>>| {
                    r.map(|b| http_body_util::Limited::new(b, MAX_BODY))
                },
            ))
            .build();
        Ok(Cluster {
            client,
            policy,
            source,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if transient(&e) && attempt < self.policy.retries => {
                    tokio::time::sleep(self.policy.backoff * 2u32.saturating_pow(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Whether a Secret exists, from its metadata only. `Ok(None)` when absent.
    pub async fn secret_presence(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretPresence>, Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        self.retry(|| async {
            let meta = api.get_metadata_opt(name).await.map_err(|e| {
                kube_error(&format!("reading Secret {namespace}/{name} metadata"), e)
            })?;
            Ok(meta.map(|m| SecretPresence {
                namespace: namespace.to_string(),
                name: name.to_string(),
                created: m.metadata.creation_timestamp.map(|t| t.0.to_string()),
            }))
        })
        .await
    }

    /// Server-side applies an Opaque Secret with `data` (field manager
    /// `manager`, forced). Only metadata is read before; the answer's data is
    /// dropped unread. Data keys other managers wrote and kubectl's
    /// last-applied copy are removed by name, and returned. Errors name the
    /// namespace and Secret, never a value.
    pub async fn apply_secret(
        &self,
        namespace: &str,
        name: &str,
        data: &[(&str, String)],
        manager: &str,
    ) -> Result<(Written, Vec<String>), Error> {
        use k8s_openapi::ByteString;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        use kube::api::{Patch, PatchParams};
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("Secret {namespace}/{name}");
        let before = self
            .retry(|| async {
                api.get_metadata_opt(name)
                    .await
                    .map_err(|e| kube_error(&format!("reading {what} metadata"), e))
            })
            .await?;
        let ours: Vec<&str> = data.iter().map(|(k, _)| *k).collect();
        let stale = before
            .as_ref()
            .map(|m| stale_parts(&m.metadata, manager, &ours))
            .unwrap_or_default();
        let before_rv = before.map(|m| m.metadata.resource_version);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_string(),
                        "flywheel".to_string(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        let params = PatchParams::apply(manager).force();
        let after = api
            .patch(name, &params, &Patch::Apply(&secret))
            .await
            .map_err(|e| kube_error(&format!("applying {what}"), e))?;
        if !stale.is_empty() {
            // Keys other writers left (a `github_token` next to App keys is an
            // ARC error) and kubectl's copy of old data go, by name only.
            let mut data = serde_json::Map::new();
            let mut annotations = serde_json::Map::new();
            for part in &stale {
                match part.strip_prefix("annotation ") {
                    Some(a) => annotations.insert(a.to_string(), serde_json::Value::Null),
                    None => data.insert(part.clone(), serde_json::Value::Null),
                };
            }
            let patch = serde_json::json!({"data": data, "metadata": {"annotations": annotations}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| kube_error(&format!("removing stale keys from {what}"), e))?;
            return Ok((Written::Updated, stale));
        }
        Ok((
            match before_rv {
                None => Written::Created,
                Some(rv) if rv.is_some() && rv == after.metadata.resource_version => {
                    Written::Unchanged
                }
                Some(_) => Written::Updated,
            },
            stale,
        ))
    }

    /// One `AutoscalingRunnerSet` and the `resourceVersion` it was read at;
    /// `Ok(None)` when there is no such set.
    pub async fn scale_set(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<(ScaleSet, String)>, Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &scale_set_resource());
        self.retry(|| async {
            let obj = api.get_opt(name).await.map_err(|e| {
                kube_error(
                    &format!("reading AutoscalingRunnerSet {namespace}/{name}"),
                    e,
                )
            })?;
            Ok(obj.map(|o| {
                let rv = o.metadata.resource_version.clone().unwrap_or_default();
                (ScaleSet::from_object(&o), rv)
            }))
        })
        .await
    }

    /// Server-side applies `body` to the `AutoscalingRunnerSet`
    /// `namespace/name` as field manager `manager` (`force`: take the fields
    /// other managers own). A `metadata.resourceVersion` in `body` is a
    /// precondition. A 409 (a conflict with another manager, or the set
    /// changed since it was read) is [`ApplyOutcome::Conflict`], not an
    /// error; the write is never retried.
    pub async fn apply_scale_set(
        &self,
        namespace: &str,
        name: &str,
        body: &serde_json::Value,
        manager: &str,
        force: bool,
    ) -> Result<ApplyOutcome, Error> {
        use kube::api::{Patch, PatchParams};
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &scale_set_resource());
        let mut params = PatchParams::apply(manager);
        if force {
            params = params.force();
        }
        match api.patch(name, &params, &Patch::Apply(body)).await {
            Ok(o) => {
                let rv = o.metadata.resource_version.clone().unwrap_or_default();
                Ok(ApplyOutcome::Applied(
                    Box::new(ScaleSet::from_object(&o)),
                    rv,
                ))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(ApplyOutcome::Conflict(
                flywheel_redact::redact(&bounded(&s.message)),
            )),
            Err(e) => Err(kube_error(
                &format!("applying AutoscalingRunnerSet {namespace}/{name}"),
                e,
            )),
        }
    }

    /// Every `AutoscalingRunnerSet` in `namespace`.
    pub async fn scale_sets(&self, namespace: &str) -> Result<Vec<ScaleSet>, Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &scale_set_resource());
        self.retry(|| async {
            let list = api.list(&ListParams::default()).await.map_err(|e| {
                kube_error(&format!("listing AutoscalingRunnerSets in {namespace}"), e)
            })?;
            Ok(list.items.iter().map(ScaleSet::from_object).collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).expect("object")
    }

    #[test]
    fn reads_the_fields_arc_writes() {
        let s = ScaleSet::from_object(&obj(serde_json::json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "jesssullivan-nix", "namespace": "arc-runners",
                "annotations": {"runner-scale-set-id": "42"}},
            "spec": {"runnerScaleSetName": "jesssullivan-nix", "githubConfigUrl": "https://github.com/Jesssullivan/jesssullivan-infra",
                "githubConfigSecret": "github-app-secret-jesssullivan", "maxRunners": 2},
            "status": {"currentRunners": 1, "phase": "Running"}
        })));
        assert_eq!(s.registration(), Registration::Registered(42));
        assert_eq!(s.max_runners, Some(2));
        assert_eq!(s.min_runners, None);
        assert_eq!(s.current_runners, Some(1));
        assert_eq!(s.registered_name(), "jesssullivan-nix");
    }

    #[test]
    fn a_status_without_reason_or_code_says_what_that_means() {
        let e = kube_error(
            "listing AutoscalingRunnerSets in arc-runners",
            kube::Error::Api(kube::core::Status::failure("no", "").boxed()),
        );
        assert!(!e.message.contains("(, HTTP 0)"), "{e}");
        assert!(
            e.message
                .contains("named neither a reason nor an HTTP status"),
            "{e}"
        );
        let e = kube_error(
            "x",
            kube::Error::Api(kube::core::Status::failure("", "").with_code(502).boxed()),
        );
        assert!(
            e.message
                .ends_with("x: the API server refused the request without a message (HTTP 502)"),
            "{e}"
        );
        let long = "y".repeat(5000);
        let e = kube_error(
            "x",
            kube::Error::Api(
                kube::core::Status::failure(&long, "Bad")
                    .with_code(400)
                    .boxed(),
            ),
        );
        assert!(e.message.len() < 400, "{}", e.message.len());
    }

    #[test]
    fn registration_needs_a_positive_id() {
        let mut s = ScaleSet::default();
        assert_eq!(s.registration(), Registration::Pending);
        s.scale_set_id = Some("0".into());
        assert_eq!(s.registration(), Registration::Invalid("0".into()));
        s.scale_set_id = Some("abc".into());
        assert_eq!(s.registration(), Registration::Invalid("abc".into()));
    }
}
