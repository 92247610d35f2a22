//! The fleet model as one value, built by a pure function ([`build`]) from
//! what the watches hold (scale sets, ephemeral runners, listeners), the
//! contract's shared labels and the configured overlays. No I/O: the
//! watches ([`crate::watch`]) call it on every change, tests call it with
//! plain objects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use flywheel_cluster::{Registration, ScaleSet};
use kube::api::DynamicObject;
use serde::Serialize;

use crate::{Owner, owner_of, paused, set_labels};

/// The label ARC puts on a set's listener, runner set and runners: the
/// AutoscalingRunnerSet's `metadata.name`.
pub const SCALE_SET_NAME_LABEL: &str = "actions.github.com/scale-set-name";
/// Its namespace (the listener lives in the controller's namespace).
pub const SCALE_SET_NAMESPACE_LABEL: &str = "actions.github.com/scale-set-namespace";

/// What the fleet is judged against: fixed at start.
#[derive(Clone, Debug, Default)]
pub struct FleetConfig {
    /// Namespaces watched (the contract's ARC namespaces and the overlays').
    pub namespaces: Vec<String>,
    /// The contract's shared labels (`runner_labels[].label`).
    pub shared_labels: Vec<String>,
    /// The configured overlays' owners.
    pub overlay_owners: Vec<String>,
    /// `extra_runner_sets[*].runner_label` of the overlays, by set name
    /// (the map key, also the Helm release and so the object name).
    pub overlay_labels: BTreeMap<String, String>,
    /// Watch timeout in seconds (`None`: kube's default, 290 s). Tests
    /// shorten it.
    pub watch_timeout: Option<u32>,
}

impl FleetConfig {
    /// The contract's ARC namespaces: `arc-systems` and `arc-runners`.
    pub fn default_namespaces() -> Vec<String> {
        vec![
            flywheel_cluster::ARC_SYSTEMS.to_string(),
            flywheel_cluster::ARC_RUNNERS.to_string(),
        ]
    }
}

/// Whether the watches reach the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    pub reachable: bool,
    /// Since when the fleet shown may be out of date (RFC 3339), while a
    /// watch fails.
    pub stale_since: Option<String>,
    /// Every watch has listed its resources at least once.
    pub synced: bool,
}

/// One runner (EphemeralRunner) of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunnerRow {
    pub name: String,
    pub phase: Option<String>,
    pub job_repository: Option<String>,
    pub workflow_ref: Option<String>,
    pub job_display_name: Option<String>,
    /// `metadata.creationTimestamp` (RFC 3339); the API adds the age.
    pub created: Option<String>,
    /// The phase of its pod (same name and namespace), when seen.
    pub pod_phase: Option<String>,
    /// The GitHub job it took (`status.jobId`), when it took one.
    pub job_id: Option<String>,
}

/// One AutoscalingListener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListenerRow {
    pub namespace: String,
    pub name: String,
    pub created: Option<String>,
    /// Being deleted (the controller recreates it on a limit change).
    pub terminating: bool,
    /// The phase of the listener's pod (same name and namespace), when seen.
    pub pod_phase: Option<String>,
}

/// The EphemeralRunnerSet of a scale set (the controller's desired runner
/// count for it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunnerSetRow {
    pub name: String,
    /// `spec.replicas`: runners the controller wants now.
    pub replicas: i64,
    /// `status.currentReplicas`.
    pub current_replicas: i64,
    /// `status.failedEphemeralRunners`.
    pub failed: i64,
}

/// One scale set as the fleet shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetRow {
    pub namespace: String,
    pub name: String,
    pub runner_scale_set_name: String,
    /// The overlay's owner, else the config URL.
    pub owner: String,
    /// `overlay` or `url`.
    pub owner_kind: &'static str,
    /// The shared labels it serves.
    pub labels: Vec<String>,
    /// Labels it answers to that the contract does not share (flagged:
    /// the enrollment contract forbids repo-specific labels).
    pub foreign_labels: Vec<String>,
    pub label_source: crate::LabelSource,
    pub min: i64,
    /// `None`: no limit.
    pub max: Option<i64>,
    pub current: i64,
    pub pending: i64,
    pub running: i64,
    pub registered: bool,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<String>,
    /// A flywheel pause annotation that cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_error: Option<String>,
    /// Its listener exists, is not being deleted, and its pod runs.
    pub listener_healthy: bool,
    /// Jobs acquired by a paused set that wait (ARC #3446): its listener's
    /// `gha_assigned_jobs` - `gha_running_jobs`, read from Prometheus
    /// ([`crate::watch::Fleet::set_held_jobs`]); `null` when not paused, or
    /// when that cannot be read (the watched objects cannot tell).
    pub held_jobs: Option<u64>,
    /// Its EphemeralRunners (not in the fleet JSON; the set's detail).
    #[serde(skip)]
    pub runners: Vec<RunnerRow>,
    #[serde(skip)]
    pub listener: Option<ListenerRow>,
    #[serde(skip)]
    pub runner_set: Option<RunnerSetRow>,
}

/// A shared label with the sets that serve it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LabelRow {
    pub label: String,
    /// `namespace/name` of each set.
    pub sets: Vec<String>,
    /// `None` when any of those sets has no limit.
    pub max_sum: Option<i64>,
    pub running_sum: i64,
}

/// An owner with its sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OwnerRow {
    pub owner: String,
    pub kind: &'static str,
    pub sets: Vec<String>,
    pub max_sum: Option<i64>,
    pub running_sum: i64,
}

/// The whole fleet at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FleetSnapshot {
    pub revision: u64,
    pub cluster: ClusterView,
    /// Shared with the next revision when unchanged ([`BuildCache`]).
    pub scale_sets: Vec<Arc<SetRow>>,
    pub labels: Vec<LabelRow>,
    pub owners: Vec<OwnerRow>,
    /// GitLab compatibility runners (rows of the GitLab poller, when
    /// configured; [`crate::watch::Fleet::set_gitlab_runners`]).
    pub gitlab_runners: Vec<serde_json::Value>,
}

impl FleetSnapshot {
    /// The set `namespace/name`, if the fleet has it.
    pub fn find_set(&self, namespace: &str, name: &str) -> Option<&SetRow> {
        self.scale_sets
            .iter()
            .map(|r| &**r)
            .find(|r| r.namespace == namespace && r.name == name)
    }
}

/// A subset of the fleet (`?label=&owner=&namespace=`); empty fields match all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub label: Option<String>,
    pub owner: Option<String>,
    pub namespace: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.owner.is_none() && self.namespace.is_none()
    }

    pub fn matches(&self, s: &SetRow) -> bool {
        self.label.as_ref().is_none_or(|l| {
            s.labels
                .iter()
                .chain(&s.foreign_labels)
                .any(|x| x.eq_ignore_ascii_case(l))
        }) && self
            .owner
            .as_ref()
            .is_none_or(|o| s.owner.eq_ignore_ascii_case(o))
            && self.namespace.as_ref().is_none_or(|n| &s.namespace == n)
    }
}

fn text(v: &serde_json::Value, k: &str) -> Option<String> {
    v.get(k).and_then(|x| x.as_str()).map(str::to_string)
}

fn created(o: &DynamicObject) -> Option<String> {
    o.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
}

fn sums<'a>(rows: impl Iterator<Item = &'a SetRow>) -> (Vec<String>, Option<i64>, i64) {
    let mut sets = Vec::new();
    let mut max = Some(0i64);
    let mut running = 0;
    for r in rows {
        sets.push(format!("{}/{}", r.namespace, r.name));
        max = max.zip(r.max).map(|(a, b)| a.saturating_add(b));
        running += r.running;
    }
    (sets, max, running)
}

/// The views by label (every shared label, also those no set serves) and
/// by owner, from `rows`.
pub fn views(rows: &[Arc<SetRow>], shared_labels: &[String]) -> (Vec<LabelRow>, Vec<OwnerRow>) {
    let labels = shared_labels
        .iter()
        .map(|l| {
            let (sets, max_sum, running_sum) =
                sums(rows.iter().map(|r| &**r).filter(|r| r.labels.contains(l)));
            LabelRow {
                label: l.clone(),
                sets,
                max_sum,
                running_sum,
            }
        })
        .collect();
    let mut by_owner: BTreeMap<(&str, &'static str), Vec<&SetRow>> = BTreeMap::new();
    for r in rows.iter().map(|r| &**r) {
        by_owner
            .entry((r.owner.as_str(), r.owner_kind))
            .or_default()
            .push(r);
    }
    let owners = by_owner
        .into_iter()
        .map(|((owner, kind), rs)| {
            let (sets, max_sum, running_sum) = sums(rs.into_iter());
            OwnerRow {
                owner: owner.to_string(),
                kind,
                sets,
                max_sum,
                running_sum,
            }
        })
        .collect();
    (labels, owners)
}

/// What the watches hold, by kind.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    /// AutoscalingRunnerSets.
    pub sets: Vec<Arc<DynamicObject>>,
    /// EphemeralRunnerSets.
    pub runner_sets: Vec<Arc<DynamicObject>>,
    /// EphemeralRunners.
    pub runners: Vec<Arc<DynamicObject>>,
    /// AutoscalingListeners.
    pub listeners: Vec<Arc<DynamicObject>>,
    /// Runner and listener pods (those with ARC's scale-set label).
    pub pods: Vec<Arc<DynamicObject>>,
}

fn int(v: &serde_json::Value, k: &str) -> i64 {
    v.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0)
}

/// Remembers each set's row and the objects it was built from, so that a
/// rebuild only builds the rows whose objects changed (the reflectors hand
/// out the same `Arc` for an unchanged object). Holding the objects (not
/// their addresses) means an address can never be reused under it.
#[derive(Default)]
pub struct BuildCache {
    sets: HashMap<(String, String), Cached>,
}

struct Cached {
    inputs: Vec<Option<Arc<DynamicObject>>>,
    row: Arc<SetRow>,
}

fn same(a: &[Option<Arc<DynamicObject>>], b: &[Option<&Arc<DynamicObject>>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            (None, None) => true,
            _ => false,
        })
}

/// The set an object belongs to, borrowed: ARC's labels (the listener's
/// namespace label names the set's namespace; a runner without it lives in
/// its set's namespace).
fn set_of(o: &DynamicObject) -> Option<(&str, &str)> {
    let labels = o.metadata.labels.as_ref()?;
    let name = labels.get(SCALE_SET_NAME_LABEL)?;
    let ns = labels
        .get(SCALE_SET_NAMESPACE_LABEL)
        .or(o.metadata.namespace.as_ref())?;
    Some((ns.as_str(), name.as_str()))
}

fn place(o: &DynamicObject) -> Option<(&str, &str)> {
    Some((
        o.metadata.namespace.as_deref()?,
        o.metadata.name.as_deref()?,
    ))
}

fn pod_phase(pod: Option<&Arc<DynamicObject>>) -> Option<String> {
    pod?.data
        .get("status")?
        .get("phase")?
        .as_str()
        .map(str::to_string)
}

/// The fleet from the watched objects. Sets, runners and listeners outside
/// `config.namespaces` count too (the watches decide what is seen).
pub fn build(
    config: &FleetConfig,
    objects: &Objects,
    cluster: ClusterView,
    revision: u64,
) -> FleetSnapshot {
    build_with(
        config,
        objects,
        cluster,
        revision,
        &mut BuildCache::default(),
    )
}

/// [`build`], reusing the rows in `cache` whose objects did not change
/// (and keeping this build's rows there for the next).
pub fn build_with(
    config: &FleetConfig,
    objects: &Objects,
    cluster: ClusterView,
    revision: u64,
    cache: &mut BuildCache,
) -> FleetSnapshot {
    let pods: HashMap<(&str, &str), &Arc<DynamicObject>> = objects
        .pods
        .iter()
        .filter_map(|p| Some((place(p)?, p)))
        .collect();
    let pod_of = |o: &DynamicObject| place(o).and_then(|k| pods.get(&k).copied());
    let mut runner_set_of: HashMap<(&str, &str), &Arc<DynamicObject>> = HashMap::new();
    for r in &objects.runner_sets {
        if let Some(key) = set_of(r) {
            runner_set_of.insert(key, r);
        }
    }
    let mut listener_of: HashMap<(&str, &str), &Arc<DynamicObject>> = HashMap::new();
    for l in &objects.listeners {
        if let Some(key) = set_of(l) {
            listener_of.insert(key, l);
        }
    }
    let mut runners_of: HashMap<(&str, &str), Vec<&Arc<DynamicObject>>> = HashMap::new();
    for r in &objects.runners {
        if let Some(key) = set_of(r) {
            runners_of.entry(key).or_default().push(r);
        }
    }
    let shared: Vec<&str> = config.shared_labels.iter().map(String::as_str).collect();
    let owners: Vec<&str> = config.overlay_owners.iter().map(String::as_str).collect();
    let mut next: HashMap<(String, String), Cached> = HashMap::with_capacity(objects.sets.len());
    let mut rows: Vec<Arc<SetRow>> = Vec::with_capacity(objects.sets.len());
    for set in &objects.sets {
        let Some(key) = place(set) else { continue };
        let mut runners = runners_of.remove(&key).unwrap_or_default();
        runners.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let listener = listener_of.get(&key).copied();
        // What the row is made of, in a fixed order.
        let mut inputs: Vec<Option<&Arc<DynamicObject>>> =
            Vec::with_capacity(4 + 2 * runners.len());
        inputs.push(Some(set));
        inputs.push(runner_set_of.get(&key).copied());
        inputs.push(listener);
        inputs.push(listener.and_then(|l| pod_of(l)));
        for r in &runners {
            inputs.push(Some(r));
            inputs.push(pod_of(r));
        }
        let owned = (key.0.to_string(), key.1.to_string());
        let row = match cache.sets.remove(&owned) {
            Some(c) if same(&c.inputs, &inputs) => c.row,
            _ => Arc::new(set_row(config, &shared, &owners, set, &inputs)),
        };
        rows.push(row.clone());
        next.insert(
            owned,
            Cached {
                inputs: inputs.into_iter().map(|o| o.cloned()).collect(),
                row,
            },
        );
    }
    cache.sets = next;
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let (labels, owners) = views(&rows, &config.shared_labels);
    FleetSnapshot {
        revision,
        cluster,
        scale_sets: rows,
        labels,
        owners,
        gitlab_runners: Vec::new(),
    }
}

/// One set's row from its inputs: `[set, runner set, listener, listener
/// pod, (runner, runner pod)...]`.
fn set_row(
    config: &FleetConfig,
    shared: &[&str],
    owners: &[&str],
    o: &DynamicObject,
    inputs: &[Option<&Arc<DynamicObject>>],
) -> SetRow {
    let at = |i: usize| inputs.get(i).copied().flatten();
    let s = ScaleSet::from_object(o);
    let l = set_labels(
        &s,
        shared,
        config.overlay_labels.get(&s.name).map(String::as_str),
    );
    let (owner, owner_kind) = match owner_of(s.github_config_url.as_deref(), owners) {
        Owner::Overlay(o) => (o, "overlay"),
        Owner::Url(u) => (u, "url"),
    };
    let (paused_flag, paused_by, paused_at, pause_error) = match paused(&s) {
        Ok(Some(p)) => (
            true,
            Some(p.by).filter(|b| !b.is_empty()),
            Some(p.at).filter(|a| !a.is_empty()),
            None,
        ),
        // A limit of 0 set by someone else: paused all the same.
        Ok(None) => (s.max_runners == Some(0), None, None, None),
        Err(e) => (true, None, None, Some(e)),
    };
    let runner_set = at(1).map(|r| {
        let null = serde_json::Value::Null;
        let spec = r.data.get("spec").unwrap_or(&null);
        let status = r.data.get("status").unwrap_or(&null);
        RunnerSetRow {
            name: r.metadata.name.clone().unwrap_or_default(),
            replicas: int(spec, "replicas"),
            current_replicas: int(status, "currentReplicas"),
            failed: int(status, "failedEphemeralRunners"),
        }
    });
    let listener = at(2).map(|l| ListenerRow {
        namespace: l.metadata.namespace.clone().unwrap_or_default(),
        name: l.metadata.name.clone().unwrap_or_default(),
        created: created(l),
        terminating: l.metadata.deletion_timestamp.is_some(),
        pod_phase: pod_phase(at(3)),
    });
    let runners: Vec<RunnerRow> = inputs
        .get(4..)
        .unwrap_or_default()
        .chunks(2)
        .filter_map(|pair| {
            let r = pair.first().copied().flatten()?;
            let null = serde_json::Value::Null;
            let status = r.data.get("status").unwrap_or(&null);
            Some(RunnerRow {
                name: r.metadata.name.clone().unwrap_or_default(),
                phase: text(status, "phase"),
                job_repository: text(status, "jobRepositoryName"),
                workflow_ref: text(status, "jobWorkflowRef"),
                job_display_name: text(status, "jobDisplayName"),
                created: created(r),
                pod_phase: pod_phase(pair.get(1).copied().flatten()),
                job_id: text(status, "jobId").filter(|j| !j.is_empty()),
            })
        })
        .collect();
    SetRow {
        runner_scale_set_name: s.registered_name().to_string(),
        owner,
        owner_kind,
        labels: l.shared,
        foreign_labels: l.foreign,
        label_source: l.source,
        min: s.min_runners.unwrap_or(0),
        max: s.max_runners,
        current: s.current_runners.unwrap_or(0),
        pending: s.pending_runners.unwrap_or(0),
        running: s.running_runners.unwrap_or(0),
        registered: matches!(s.registration(), Registration::Registered(_)),
        paused: paused_flag,
        paused_by,
        paused_at,
        pause_error,
        listener_healthy: listener
            .as_ref()
            .is_some_and(|l| !l.terminating && l.pod_phase.as_deref() == Some("Running")),
        held_jobs: None,
        runners,
        listener,
        runner_set,
        namespace: s.namespace,
        name: s.name,
    }
}

/// The snapshot restricted to `filter` (the views recomputed from the
/// matching sets; with a label filter, only that label's row).
pub fn filtered(snap: &FleetSnapshot, filter: &Filter, shared_labels: &[String]) -> FleetSnapshot {
    let rows: Vec<Arc<SetRow>> = snap
        .scale_sets
        .iter()
        .filter(|s| filter.matches(s))
        .cloned()
        .collect();
    let (mut labels, owners) = views(&rows, shared_labels);
    if let Some(l) = &filter.label {
        labels.retain(|r| r.label.eq_ignore_ascii_case(l));
    }
    FleetSnapshot {
        revision: snap.revision,
        cluster: snap.cluster.clone(),
        scale_sets: rows,
        labels,
        owners,
        gitlab_runners: snap.gitlab_runners.clone(),
    }
}

/// One change between two revisions, as `/api/v1/events` sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Change {
    /// A scale set appeared, changed or went away (`event` names which).
    ScaleSet {
        #[serde(skip)]
        event: &'static str,
        namespace: String,
        name: String,
    },
    /// A runner appeared, changed phase or went away (`phase: null`).
    Runner {
        namespace: String,
        name: String,
        scale_set: String,
        phase: Option<String>,
        previous: Option<String>,
    },
    /// The GitLab compatibility runners changed (`count` of them now).
    Gitlab { count: usize },
    /// The cluster became reachable or not.
    Cluster {
        reachable: bool,
        stale_since: Option<String>,
        synced: bool,
    },
    /// More changed than is worth listing (a first sync, a re-list): read
    /// the fleet again.
    Many { count: usize },
}

/// More changes than this in one revision become one [`Change::Many`].
pub const MAX_CHANGES: usize = 256;

impl Change {
    /// The SSE event name.
    pub fn event(&self) -> &'static str {
        match self {
            Change::ScaleSet { event, .. } => event,
            Change::Runner { .. } => "runner",
            Change::Cluster { .. } => "cluster",
            Change::Gitlab { .. } => "gitlab-runners",
            Change::Many { .. } => "fleet-reset",
        }
    }
}

fn set_change(event: &'static str, s: &SetRow) -> Change {
    Change::ScaleSet {
        event,
        namespace: s.namespace.clone(),
        name: s.name.clone(),
    }
}

fn runner_changes(old: &SetRow, new: &SetRow, out: &mut Vec<Change>) {
    let before: HashMap<&str, &RunnerRow> =
        old.runners.iter().map(|r| (r.name.as_str(), r)).collect();
    let after: HashMap<&str, &RunnerRow> =
        new.runners.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut push = |name: &str, phase: Option<String>, previous: Option<String>| {
        out.push(Change::Runner {
            namespace: new.namespace.clone(),
            name: name.to_string(),
            scale_set: new.name.clone(),
            phase,
            previous,
        })
    };
    for r in &new.runners {
        match before.get(r.name.as_str()) {
            Some(o) if o.phase == r.phase => {}
            Some(o) => push(&r.name, r.phase.clone(), o.phase.clone()),
            None => push(&r.name, r.phase.clone(), None),
        }
    }
    for r in &old.runners {
        if !after.contains_key(r.name.as_str()) {
            push(&r.name, None, r.phase.clone());
        }
    }
}

/// What changed from `old` to `new` (both sorted by namespace and name, as
/// [`build`] makes them): sets added, changed, removed, runner phases, the
/// cluster's reachability. Past [`MAX_CHANGES`], one [`Change::Many`].
pub fn changes(old: &FleetSnapshot, new: &FleetSnapshot) -> Vec<Change> {
    let mut out = Vec::new();
    if old.cluster != new.cluster {
        out.push(Change::Cluster {
            reachable: new.cluster.reachable,
            stale_since: new.cluster.stale_since.clone(),
            synced: new.cluster.synced,
        });
    }
    if old.gitlab_runners != new.gitlab_runners {
        out.push(Change::Gitlab {
            count: new.gitlab_runners.len(),
        });
    }
    let (mut a, mut b) = (
        old.scale_sets.iter().peekable(),
        new.scale_sets.iter().peekable(),
    );
    loop {
        if out.len() > MAX_CHANGES {
            let count = out.len();
            return vec![Change::Many { count }];
        }
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(o), None) => {
                out.push(set_change("scale-set-removed", o));
                a.next();
            }
            (None, Some(n)) => {
                out.push(set_change("scale-set-added", n));
                b.next();
            }
            (Some(o), Some(n)) => match (&o.namespace, &o.name).cmp(&(&n.namespace, &n.name)) {
                std::cmp::Ordering::Less => {
                    out.push(set_change("scale-set-removed", o));
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push(set_change("scale-set-added", n));
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if !Arc::ptr_eq(o, n) && o != n {
                        out.push(set_change("scale-set-changed", n));
                        runner_changes(o, n, &mut out);
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    if out.len() > MAX_CHANGES {
        return vec![Change::Many { count: out.len() }];
    }
    out
}

/// Whether `s` can name a Kubernetes namespace (an RFC 1123 label).
pub fn is_namespace_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Arc<DynamicObject> {
        Arc::new(serde_json::from_value(v).expect("object"))
    }

    fn config() -> FleetConfig {
        FleetConfig {
            namespaces: FleetConfig::default_namespaces(),
            shared_labels: vec!["tinyland-nix".into(), "tinyland-docker".into()],
            overlay_owners: vec!["tinyland-inc".into()],
            overlay_labels: BTreeMap::from([("jess-docker".into(), "tinyland-docker".into())]),
            watch_timeout: None,
        }
    }

    #[test]
    fn the_fleet_is_built_from_sets_runners_and_listeners() {
        let sets = [
            obj(
                json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
                "metadata": {"name": "tinyland-nix", "namespace": "arc-runners",
                    "annotations": {"runner-scale-set-id": "7"}},
                "spec": {"githubConfigUrl": "https://github.com/Tinyland-Inc", "minRunners": 1, "maxRunners": 10},
                "status": {"currentRunners": 3, "pendingEphemeralRunners": 1, "runningEphemeralRunners": 2}}),
            ),
            obj(
                json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
                "metadata": {"name": "jess-docker", "namespace": "arc-runners",
                    "annotations": {"flywheel.dev/paused-max-runners": "absent",
                        "flywheel.dev/paused-by": "alice", "flywheel.dev/paused-at": "2026-07-01T10:00:00Z"}},
                "spec": {"githubConfigUrl": "https://github.com/jesssullivan", "maxRunners": 0}}),
            ),
            obj(
                json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
                "metadata": {"name": "more-nix", "namespace": "arc-runners"},
                "spec": {"runnerScaleSetLabels": ["tinyland-nix", "my-repo-only"],
                    "githubConfigUrl": "https://github.com/tinyland-inc"},
                "status": {"runningEphemeralRunners": 4}}),
            ),
        ];
        let runners = [obj(
            json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunner",
            "metadata": {"name": "tinyland-nix-abc", "namespace": "arc-runners",
                "creationTimestamp": "2026-07-01T09:00:00Z",
                "labels": {SCALE_SET_NAME_LABEL: "tinyland-nix", SCALE_SET_NAMESPACE_LABEL: "arc-runners"}},
            "status": {"phase": "Running", "jobRepositoryName": "tinyland-inc/app",
                "jobWorkflowRef": "tinyland-inc/app/.github/workflows/ci.yml@refs/heads/main"}}),
        )];
        let listeners = [obj(
            json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingListener",
            "metadata": {"name": "tinyland-nix-754b578d-listener", "namespace": "arc-systems",
                "labels": {SCALE_SET_NAME_LABEL: "tinyland-nix", SCALE_SET_NAMESPACE_LABEL: "arc-runners"}}}),
        )];
        let objects = Objects {
            sets: sets.to_vec(),
            runners: runners.to_vec(),
            listeners: listeners.to_vec(),
            pods: vec![obj(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "tinyland-nix-754b578d-listener", "namespace": "arc-systems"},
                "status": {"phase": "Running"}}))],
            ..Objects::default()
        };
        let snap = build(
            &config(),
            &objects,
            ClusterView {
                reachable: true,
                stale_since: None,
                synced: true,
            },
            4,
        );
        assert_eq!(snap.revision, 4);
        let names: Vec<&str> = snap.scale_sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["jess-docker", "more-nix", "tinyland-nix"]);
        let [docker, more, nix] = &snap.scale_sets[..] else {
            panic!("three sets")
        };
        assert_eq!(
            (nix.owner.as_str(), nix.owner_kind),
            ("tinyland-inc", "overlay")
        );
        assert_eq!(nix.labels, ["tinyland-nix"]);
        assert!(nix.registered && !nix.paused && nix.listener_healthy);
        assert_eq!(
            (nix.min, nix.max, nix.current, nix.pending, nix.running),
            (1, Some(10), 3, 1, 2)
        );
        assert_eq!(nix.runners.len(), 1);
        assert_eq!(
            nix.runners[0].job_repository.as_deref(),
            Some("tinyland-inc/app")
        );
        assert_eq!(docker.labels, ["tinyland-docker"]);
        assert_eq!(docker.owner_kind, "url");
        assert!(docker.paused && !docker.registered && !docker.listener_healthy);
        assert_eq!(docker.paused_by.as_deref(), Some("alice"));
        assert_eq!(more.foreign_labels, ["my-repo-only"]);
        assert_eq!(more.max, None);
        // By label: every shared label; an unlimited set makes the sum null.
        assert_eq!(snap.labels.len(), 2);
        assert_eq!(
            snap.labels[0].sets,
            ["arc-runners/more-nix", "arc-runners/tinyland-nix"]
        );
        assert_eq!(snap.labels[0].max_sum, None);
        assert_eq!(snap.labels[0].running_sum, 6);
        assert_eq!(snap.labels[1].max_sum, Some(0));
        let owners: Vec<&str> = snap.owners.iter().map(|o| o.owner.as_str()).collect();
        assert_eq!(owners, ["https://github.com/jesssullivan", "tinyland-inc"]);
        // Filters.
        let f = Filter {
            owner: Some("TINYLAND-INC".into()),
            ..Filter::default()
        };
        let only = filtered(&snap, &f, &config().shared_labels);
        assert_eq!(only.scale_sets.len(), 2);
        let f = Filter {
            label: Some("tinyland-docker".into()),
            ..Filter::default()
        };
        let only = filtered(&snap, &f, &config().shared_labels);
        assert_eq!(only.scale_sets.len(), 1);
        assert_eq!(only.labels.len(), 1);
        // JSON shape.
        let v = serde_json::to_value(&snap).expect("json");
        assert_eq!(v["scale_sets"][2]["max"], 10);
        assert_eq!(v["scale_sets"][1]["max"], serde_json::Value::Null);
        assert!(v["scale_sets"][0].get("runners").is_none());
        assert_eq!(v["cluster"]["reachable"], true);
    }

    fn row(name: &str, runners: &[(&str, &str)]) -> SetRow {
        SetRow {
            namespace: "arc-runners".into(),
            name: name.into(),
            runner_scale_set_name: name.into(),
            owner: "o".into(),
            owner_kind: "overlay",
            labels: vec![],
            foreign_labels: vec![],
            label_source: crate::LabelSource::ScaleSetName,
            min: 0,
            max: Some(1),
            current: 0,
            pending: 0,
            running: 0,
            registered: true,
            paused: false,
            paused_by: None,
            paused_at: None,
            pause_error: None,
            listener_healthy: true,
            held_jobs: None,
            runners: runners
                .iter()
                .map(|(n, p)| RunnerRow {
                    name: n.to_string(),
                    phase: Some(p.to_string()),
                    job_repository: None,
                    workflow_ref: None,
                    job_display_name: None,
                    created: None,
                    pod_phase: None,
                    job_id: None,
                })
                .collect(),
            listener: None,
            runner_set: None,
        }
    }

    #[test]
    fn changes_name_sets_added_changed_removed_and_runner_phases() {
        let old = FleetSnapshot {
            scale_sets: vec![
                Arc::new(row("a", &[])),
                Arc::new(row("b", &[("b-1", "Pending"), ("b-2", "Running")])),
            ],
            ..FleetSnapshot::default()
        };
        let new = FleetSnapshot {
            scale_sets: vec![
                Arc::new(row("b", &[("b-1", "Running"), ("b-3", "Pending")])),
                Arc::new(row("c", &[])),
            ],
            ..FleetSnapshot::default()
        };
        let events: Vec<(&str, String)> = changes(&old, &new)
            .iter()
            .map(|c| (c.event(), serde_json::to_string(c).expect("json")))
            .collect();
        assert_eq!(events[0].0, "scale-set-removed");
        assert!(events[0].1.contains("\"name\":\"a\""));
        assert_eq!(events[1].0, "scale-set-changed");
        let runners: Vec<&str> = events
            .iter()
            .filter(|(e, _)| *e == "runner")
            .map(|(_, d)| d.as_str())
            .collect();
        assert_eq!(runners.len(), 3, "{runners:?}");
        assert!(
            runners[0].contains("\"name\":\"b-1\"")
                && runners[0].contains("\"previous\":\"Pending\"")
        );
        assert!(runners[2].contains("\"name\":\"b-2\"") && runners[2].contains("\"phase\":null"));
        assert_eq!(events.last().map(|e| e.0), Some("scale-set-added"));
        assert!(changes(&new, &new).is_empty());
        // A first sync of many sets is one reset, not thousands of events.
        let many = FleetSnapshot {
            scale_sets: (0..1000)
                .map(|i| Arc::new(row(&format!("s{i:04}"), &[])))
                .collect(),
            ..FleetSnapshot::default()
        };
        let c = changes(&FleetSnapshot::default(), &many);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].event(), "fleet-reset");
    }

    #[test]
    fn a_rebuild_reuses_the_rows_of_unchanged_sets_and_rebuilds_the_rest() {
        let set = |name: &str| {
            obj(
                json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
                "metadata": {"name": name, "namespace": "arc-runners"},
                "spec": {"maxRunners": 3}}),
            )
        };
        let runner = |set: &str, phase: &str| {
            obj(
                json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunner",
                "metadata": {"name": format!("{set}-r"), "namespace": "arc-runners",
                    "labels": {SCALE_SET_NAME_LABEL: set}},
                "status": {"phase": phase}}),
            )
        };
        let mut objects = Objects {
            sets: vec![set("a"), set("b")],
            runners: vec![runner("a", "Pending"), runner("b", "Pending")],
            ..Objects::default()
        };
        let mut cache = BuildCache::default();
        let one = build_with(&config(), &objects, ClusterView::default(), 1, &mut cache);
        let two = build_with(&config(), &objects, ClusterView::default(), 2, &mut cache);
        assert!(Arc::ptr_eq(&one.scale_sets[0], &two.scale_sets[0]));
        assert!(Arc::ptr_eq(&one.scale_sets[1], &two.scale_sets[1]));
        // b's runner changed: only b is rebuilt, and shows it.
        objects.runners[1] = runner("b", "Running");
        let three = build_with(&config(), &objects, ClusterView::default(), 3, &mut cache);
        assert!(Arc::ptr_eq(&two.scale_sets[0], &three.scale_sets[0]));
        assert!(!Arc::ptr_eq(&two.scale_sets[1], &three.scale_sets[1]));
        assert_eq!(
            three.scale_sets[1].runners[0].phase.as_deref(),
            Some("Running")
        );
        // The same as a build from nothing.
        assert_eq!(three, build(&config(), &objects, ClusterView::default(), 3));
        // A set that goes away leaves the cache.
        objects.sets.remove(0);
        let four = build_with(&config(), &objects, ClusterView::default(), 4, &mut cache);
        assert_eq!(four.scale_sets.len(), 1);
        assert_eq!(cache.sets.len(), 1);
    }
}
