//! The live fleet: kube-runtime reflectors on AutoscalingRunnerSets,
//! EphemeralRunnerSets, EphemeralRunners, AutoscalingListeners and ARC's
//! pods (those labelled `actions.github.com/scale-set-name`) in the
//! configured namespaces, each a `watcher` that lists again after an
//! error, with backoff ([`relisting`]; a `410 Gone` re-lists at once),
//! feeding one [`Fleet`].
//!
//! Objects are trimmed as they arrive ([`trim`]): managed fields, pod
//! templates and pod specs never reach the stores, so 20,000 runners cost
//! a few kilobytes each at most.
//!
//! On every watch event (debounced by [`DEBOUNCE`]) the fleet is rebuilt by
//! the pure [`snapshot::build`](crate::snapshot::build) from the stores'
//! contents; when it differs from the last one it is published as an
//! `Arc` with the next revision, its JSON body serialized once (gzip made
//! once, on first demand) and the [`Change`]s from the previous revision.
//! Readers ([`Fleet::current`], [`Fleet::changes_since`],
//! [`Fleet::subscribe_changes`]) never reach the cluster: zero Kubernetes
//! requests per page view or API call.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{broadcast, watch};

use crate::snapshot::{self, Change, ClusterView, Filter, FleetConfig, FleetSnapshot, Objects};

/// How long after a watch event more events are gathered before the fleet
/// is rebuilt.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// Revisions of changes kept for `Last-Event-ID` resumes.
pub const HISTORY: usize = 256;

/// The kinds watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ScaleSets,
    RunnerSets,
    Runners,
    Listeners,
    Pods,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ScaleSets,
        Kind::RunnerSets,
        Kind::Runners,
        Kind::Listeners,
        Kind::Pods,
    ];

    /// The name in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ScaleSets => "autoscalingrunnersets",
            Kind::RunnerSets => "ephemeralrunnersets",
            Kind::Runners => "ephemeralrunners",
            Kind::Listeners => "autoscalinglisteners",
            Kind::Pods => "pods",
        }
    }

    pub fn resource(self) -> ApiResource {
        let (kind, plural) = match self {
            Kind::ScaleSets => return flywheel_cluster::scale_set_resource(),
            Kind::Pods => {
                return ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk("", "v1", "Pod"),
                    "pods",
                );
            }
            Kind::RunnerSets => ("EphemeralRunnerSet", "ephemeralrunnersets"),
            Kind::Runners => ("EphemeralRunner", "ephemeralrunners"),
            Kind::Listeners => ("AutoscalingListener", "autoscalinglisteners"),
        };
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("actions.github.com", "v1alpha1", kind),
            plural,
        )
    }

    /// The watch's label selector: only ARC's pods.
    fn selector(self) -> Option<&'static str> {
        (self == Kind::Pods).then_some(snapshot::SCALE_SET_NAME_LABEL)
    }
}

/// Keeps of `o` what the fleet reads, so the stores stay small: metadata
/// without managed fields (annotations only on scale sets), and of the
/// body only what [`snapshot::build`] looks at.
pub fn trim(kind: Kind, o: &mut DynamicObject) {
    let m = &mut o.metadata;
    m.managed_fields = None;
    m.owner_references = None;
    m.finalizers = None;
    m.uid = None;
    m.generation = None;
    m.generate_name = None;
    if kind != Kind::ScaleSets {
        m.annotations = None;
        // Only ARC's scale-set labels say which set an object belongs to.
        if let Some(labels) = m.labels.as_mut() {
            labels.retain(|k, _| {
                k == snapshot::SCALE_SET_NAME_LABEL || k == snapshot::SCALE_SET_NAMESPACE_LABEL
            });
        }
    }
    // Of the body, the fields `snapshot::build` reads (and nothing of pod
    // templates, pod specs, runner configuration).
    let (spec, status): (&[&str], &[&str]) = match kind {
        Kind::ScaleSets => (
            &[
                "githubConfigUrl",
                "githubConfigSecret",
                "runnerScaleSetName",
                "runnerScaleSetLabels",
                "runnerGroup",
                "minRunners",
                "maxRunners",
            ],
            &[
                "currentRunners",
                "pendingEphemeralRunners",
                "runningEphemeralRunners",
                "failedEphemeralRunners",
                "phase",
            ],
        ),
        Kind::RunnerSets => (
            &["replicas"],
            &["currentReplicas", "failedEphemeralRunners"],
        ),
        Kind::Runners => (
            &[],
            &[
                "phase",
                "jobRepositoryName",
                "jobWorkflowRef",
                "jobDisplayName",
                "jobId",
            ],
        ),
        Kind::Pods => (&[], &["phase"]),
        Kind::Listeners => (&[], &[]),
    };
    if let Some(map) = o.data.as_object_mut() {
        map.retain(|k, v| {
            let keep = match k.as_str() {
                "spec" => spec,
                "status" => status,
                _ => return false,
            };
            if keep.is_empty() {
                return false;
            }
            if let Some(fields) = v.as_object_mut() {
                fields.retain(|f, _| keep.contains(&f.as_str()));
            }
            true
        });
    }
}

/// One published revision of the fleet.
#[derive(Debug)]
pub struct Published {
    pub snapshot: FleetSnapshot,
    /// `snapshot` as JSON, serialized once, on first demand ([`Published::body`]):
    /// events go out before it is made.
    body: OnceLock<Bytes>,
    gzip: OnceLock<Bytes>,
    /// The strong entity tag of `body` (quoted).
    pub etag: String,
    /// The SSE event id of this revision (`boot-revision`).
    pub id: String,
    /// What changed from the previous revision.
    pub changes: Arc<Vec<Change>>,
    pub at: jiff::Timestamp,
}

impl Published {
    /// The snapshot as JSON: made once per revision, on first demand.
    pub fn body(&self) -> Bytes {
        self.body
            .get_or_init(|| {
                Bytes::from(serde_json::to_vec(&self.snapshot).unwrap_or_else(|_| b"{}".to_vec()))
            })
            .clone()
    }

    /// [`Published::body`] gzipped: made once per revision, on first demand.
    pub fn gzip(&self) -> Bytes {
        self.gzip.get_or_init(|| gzip(&self.body())).clone()
    }
}

/// `body` gzipped (fast level: the fleet body compresses about 20:1 anyway).
pub fn gzip(body: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    match enc.write_all(body).and_then(|()| enc.finish()) {
        Ok(v) => Bytes::from(v),
        // Writing to a Vec does not fail; an empty body would say so.
        Err(_) => Bytes::new(),
    }
}

/// One revision's changes, as `/api/v1/events` streams them.
#[derive(Clone, Debug)]
pub struct Revision {
    pub revision: u64,
    /// The SSE event id (`boot-revision`).
    pub id: String,
    pub changes: Arc<Vec<Change>>,
}

/// How one kind's watches fare (for `/metrics`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchStat {
    pub kind: &'static str,
    /// Errors after which the watch backed off and restarted.
    pub restarts: u64,
    /// Since when a watch of this kind fails (unset while it works).
    pub failing_since: Option<jiff::Timestamp>,
    /// Every namespace's watch of this kind has listed once.
    pub synced: bool,
}

struct Inner {
    config: FleetConfig,
    tx: watch::Sender<Arc<Published>>,
    /// Distinguishes this process's revisions from a previous one's.
    boot: String,
    revision: AtomicU64,
    history: Mutex<VecDeque<Revision>>,
    events: broadcast::Sender<Revision>,
    stats: Mutex<Vec<WatchStat>>,
    /// The GitLab rows every revision carries (set by the GitLab poller).
    gitlab: Mutex<Vec<serde_json::Value>>,
    /// Jobs assigned but not running, by set (`namespace`, `name`), from
    /// ARC's listener metrics; `None`: unknown.
    held: Mutex<Option<HashMap<(String, String), u64>>>,
    /// One publisher at a time (the watches and the GitLab poller); the
    /// rows of the last build, reused for the sets that did not change.
    publishing: Mutex<snapshot::BuildCache>,
}

/// The fleet: the latest [`Published`] revision, and the watches that
/// produce it ([`Fleet::run`]). Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("revision", &self.current().snapshot.revision)
            .finish_non_exhaustive()
    }
}

impl Default for Fleet {
    fn default() -> Fleet {
        Fleet::new(FleetConfig {
            namespaces: FleetConfig::default_namespaces(),
            ..FleetConfig::default()
        })
    }
}

fn encode(snapshot: FleetSnapshot, boot: &str, changes: Arc<Vec<Change>>) -> Published {
    Published {
        etag: format!("\"{boot}-{}\"", snapshot.revision),
        id: format!("{boot}-{}", snapshot.revision),
        snapshot,
        body: OnceLock::new(),
        gzip: OnceLock::new(),
        changes,
        at: jiff::Timestamp::now(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a client that saw event `last_id` gets on reconnecting.
#[derive(Debug)]
pub enum Resume {
    /// The revisions after `last_id`, oldest first (maybe none).
    Replay(Vec<Revision>),
    /// `last_id` is from another process or too old: read the fleet again.
    Reset,
}

impl Fleet {
    /// An empty fleet (revision 0, no cluster reached) until [`Fleet::run`].
    pub fn new(config: FleetConfig) -> Fleet {
        let boot = format!(
            "{:x}",
            jiff::Timestamp::now().as_nanosecond() as u64 ^ u64::from(std::process::id())
        );
        let empty = snapshot::build(&config, &Objects::default(), ClusterView::default(), 0);
        let (tx, _) = watch::channel(Arc::new(encode(empty, &boot, Arc::default())));
        let (events, _) = broadcast::channel(64);
        let stats = Kind::ALL
            .iter()
            .map(|k| WatchStat {
                kind: k.name(),
                ..WatchStat::default()
            })
            .collect();
        Fleet {
            inner: Arc::new(Inner {
                config,
                tx,
                boot,
                revision: AtomicU64::new(0),
                history: Mutex::new(VecDeque::with_capacity(HISTORY)),
                events,
                stats: Mutex::new(stats),
                gitlab: Mutex::new(Vec::new()),
                held: Mutex::new(None),
                publishing: Mutex::new(snapshot::BuildCache::default()),
            }),
        }
    }

    pub fn config(&self) -> &FleetConfig {
        &self.inner.config
    }

    /// The latest revision (no I/O).
    pub fn current(&self) -> Arc<Published> {
        self.inner.tx.borrow().clone()
    }

    /// Wakes on every new revision.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.inner.tx.subscribe()
    }

    /// Every revision's changes from now on. A receiver that falls more
    /// than 64 revisions behind gets `Lagged` (the server drops it).
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Revision> {
        self.inner.events.subscribe()
    }

    /// What a client that last saw event `last_id` missed.
    pub fn changes_since(&self, last_id: &str) -> Resume {
        let Some((boot, rev)) = last_id.trim().rsplit_once('-') else {
            return Resume::Reset;
        };
        let Ok(rev) = rev.parse::<u64>() else {
            return Resume::Reset;
        };
        if boot != self.inner.boot {
            return Resume::Reset;
        }
        let history = match self.inner.history.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        let current = self.inner.revision.load(Ordering::SeqCst);
        if rev >= current {
            return Resume::Replay(Vec::new());
        }
        // Every revision after `rev` must still be kept.
        match history.front() {
            Some(first) if first.revision <= rev + 1 => Resume::Replay(
                history
                    .iter()
                    .filter(|r| r.revision > rev)
                    .cloned()
                    .collect(),
            ),
            _ => Resume::Reset,
        }
    }

    /// How the watches fare, by kind.
    pub fn watch_stats(&self) -> Vec<WatchStat> {
        match self.inner.stats.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The strong entity tag of `revision` restricted to `filter`.
    pub fn etag(&self, revision: u64, filter: &Filter) -> String {
        if filter.is_empty() {
            return format!("\"{}-{revision}\"", self.inner.boot);
        }
        // FNV-1a over the normalized filter: stable, no allocation per byte.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [&filter.label, &filter.owner, &filter.namespace] {
            for b in part
                .as_deref()
                .unwrap_or("\u{0}")
                .to_ascii_lowercase()
                .bytes()
                .chain([0xff])
            {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("\"{}-{revision}-{h:016x}\"", self.inner.boot)
    }

    /// Publishes `cluster` with the current objects (when the state changed).
    fn publish(&self, stores: &[(Kind, Store<DynamicObject>)], cluster: ClusterView) {
        let gather = |k: Kind| -> Vec<Arc<DynamicObject>> {
            stores
                .iter()
                .filter(|(kind, _)| *kind == k)
                .flat_map(|(_, s)| s.state())
                .collect()
        };
        let objects = Objects {
            sets: gather(Kind::ScaleSets),
            runner_sets: gather(Kind::RunnerSets),
            runners: gather(Kind::Runners),
            listeners: gather(Kind::Listeners),
            pods: gather(Kind::Pods),
        };
        let mut cache = lock(&self.inner.publishing);
        let current = self.current();
        let mut next = snapshot::build_with(
            &self.inner.config,
            &objects,
            cluster,
            current.snapshot.revision,
            &mut cache,
        );
        next.gitlab_runners = lock(&self.inner.gitlab).clone();
        self.publish_next(&current, next);
    }

    /// The GitLab compatibility runners every revision from now on carries;
    /// a change publishes a revision.
    pub fn set_gitlab_runners(&self, rows: Vec<serde_json::Value>) {
        let _one = lock(&self.inner.publishing);
        *lock(&self.inner.gitlab) = rows.clone();
        let current = self.current();
        let next = FleetSnapshot {
            gitlab_runners: rows,
            ..current.snapshot.clone()
        };
        self.publish_next(&current, next);
    }

    /// The jobs each set's listener holds assigned but not running (from
    /// ARC's `gha_assigned_jobs` - `gha_running_jobs`); `None` when they
    /// cannot be read. Paused sets show them as `held_jobs`.
    pub fn set_held_jobs(&self, held: Option<HashMap<(String, String), u64>>) {
        let _one = lock(&self.inner.publishing);
        *lock(&self.inner.held) = held;
        let current = self.current();
        let next = current.snapshot.clone();
        self.publish_next(&current, next);
    }

    /// Publishes `next` as the revision after `current`, when it differs
    /// (the caller holds the publishing lock).
    fn publish_next(&self, current: &Published, mut next: FleetSnapshot) {
        {
            let held = lock(&self.inner.held);
            for row in &mut next.scale_sets {
                // Held jobs are those of a paused set; unknown without metrics.
                let want = match (&*held, row.paused) {
                    (Some(h), true) => h.get(&(row.namespace.clone(), row.name.clone())).copied(),
                    _ => None,
                };
                if row.held_jobs != want {
                    Arc::make_mut(row).held_jobs = want;
                }
            }
        }
        // The views and counts follow from the rows: no change, no revision.
        let changes = snapshot::changes(&current.snapshot, &next);
        if changes.is_empty() {
            return;
        }
        let changes = Arc::new(changes);
        let revision = self.inner.revision.fetch_add(1, Ordering::SeqCst) + 1;
        let next = FleetSnapshot { revision, ..next };
        let published = Arc::new(encode(next, &self.inner.boot, changes.clone()));
        let rev = Revision {
            revision,
            id: published.id.clone(),
            changes,
        };
        {
            let mut history = match self.inner.history.lock() {
                Ok(h) => h,
                Err(p) => p.into_inner(),
            };
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(rev.clone());
        }
        self.inner.tx.send_replace(published);
        // No subscriber is not an error.
        let _ = self.inner.events.send(rev);
    }

    fn record(&self, kind: Kind, f: impl FnOnce(&mut WatchStat)) {
        let mut stats = match self.inner.stats.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = stats.iter_mut().find(|s| s.kind == kind.name()) {
            f(s);
        }
    }

    /// Watches the cluster behind `client` and publishes the fleet, until
    /// dropped. Errors back off and retry; they never end the watches.
    pub async fn run(&self, client: kube::Client) {
        let mut stores = Vec::new();
        let mut streams: Vec<BoxStream<'static, Tagged>> = Vec::new();
        for kind in Kind::ALL {
            let ar = kind.resource();
            for ns in &self.inner.config.namespaces {
                let writer = Writer::new(ar.clone());
                stores.push((kind, writer.as_reader()));
                let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar);
                let mut cfg = watcher::Config::default();
                if let Some(t) = self.inner.config.watch_timeout {
                    cfg = cfg.timeout(t);
                }
                if let Some(sel) = kind.selector() {
                    cfg = cfg.labels(sel);
                }
                let i = streams.len();
                streams.push(
                    reflector::reflector(writer, relisting(api, cfg, kind))
                        .map(move |e| (i, e))
                        .boxed(),
                );
            }
        }
        let n = streams.len();
        let mut all = futures::stream::select_all(streams);
        let mut state = Watches {
            synced: vec![false; n],
            failing: vec![None; n],
            answered: false,
            stale_since: None,
        };
        while let Some((i, ev)) = all.next().await {
            let mut dirty = self.note(&mut state, i, ev, &stores);
            let deadline = tokio::time::Instant::now() + DEBOUNCE;
            while let Ok(Some((i, ev))) = tokio::time::timeout_at(deadline, all.next()).await {
                dirty |= self.note(&mut state, i, ev, &stores);
            }
            if dirty {
                self.publish(&stores, state.view());
            }
        }
    }

    fn note(
        &self,
        state: &mut Watches,
        i: usize,
        ev: Result<watcher::Event<DynamicObject>, watcher::Error>,
        stores: &[(Kind, Store<DynamicObject>)],
    ) -> bool {
        let kind = stores[i].0;
        let failed = ev.as_ref().is_err_and(|e| !is_gone(e));
        let dirty = state.note(i, ev, kind);
        let same_kind: Vec<usize> = (0..stores.len()).filter(|j| stores[*j].0 == kind).collect();
        let synced = same_kind.iter().all(|j| state.synced[*j]);
        let failing = same_kind.iter().any(|j| state.failing[*j].is_some());
        self.record(kind, |s| {
            if failed {
                s.restarts += 1;
            }
            s.synced = synced;
            if failing {
                s.failing_since.get_or_insert_with(jiff::Timestamp::now);
            } else {
                s.failing_since = None;
            }
        });
        dirty
    }
}

/// First wait after a failed watch; doubled per failure up to
/// [`BACKOFF_MAX`], reset once a list succeeds.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

type Events = BoxStream<'static, Result<watcher::Event<DynamicObject>, watcher::Error>>;

struct Relisting {
    api: Api<DynamicObject>,
    cfg: watcher::Config,
    kind: Kind,
    inner: Option<Events>,
    wait: Option<Duration>,
    delay: Duration,
}

/// A `watcher` that starts over after an error (other than `410 Gone`,
/// which the watcher handles by listing again itself): it backs off
/// (exponentially, with jitter), then lists again. kube's watcher would
/// resume the watch silently; starting over makes a recovery visible as
/// `Init`..`InitDone`, so the fleet knows when it is no longer stale, and
/// catches up on anything missed. Objects are [`trim`]med on the way in.
fn relisting(api: Api<DynamicObject>, cfg: watcher::Config, kind: Kind) -> Events {
    let start = Relisting {
        api,
        cfg,
        kind,
        inner: None,
        wait: None,
        delay: BACKOFF_START,
    };
    futures::stream::unfold(start, |mut st| async move {
        loop {
            if st.inner.is_none() {
                if let Some(d) = st.wait.take() {
                    tokio::time::sleep(d).await;
                }
                let kind = st.kind;
                st.inner = Some(
                    watcher(st.api.clone(), st.cfg.clone())
                        .modify(move |o| trim(kind, o))
                        .boxed(),
                );
            }
            let next = match st.inner.as_mut() {
                Some(s) => s.next().await,
                None => None,
            };
            match next {
                Some(Ok(ev)) => {
                    if matches!(ev, watcher::Event::InitDone) {
                        st.delay = BACKOFF_START;
                    }
                    return Some((Ok(ev), st));
                }
                Some(Err(e)) if is_gone(&e) => return Some((Err(e), st)),
                Some(Err(e)) => {
                    st.inner = None;
                    st.wait = Some(jittered(st.delay));
                    st.delay = (st.delay * 2).min(BACKOFF_MAX);
                    return Some((Err(e), st));
                }
                // The watcher does not end; if it did, start over.
                None => {
                    st.inner = None;
                    st.wait = Some(jittered(st.delay));
                }
            }
        }
    })
    .boxed()
}

/// `d` ± 20 %, so that many watches failing together do not retry together.
fn jittered(d: Duration) -> Duration {
    let nanos = jiff::Timestamp::now().subsec_nanosecond().unsigned_abs();
    let factor = 0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0;
    d.mul_f64(factor)
}

/// A watch event, tagged with the index of its stream.
type Tagged = (usize, Result<watcher::Event<DynamicObject>, watcher::Error>);

fn is_gone(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchError(s) if s.code == 410)
}

/// What the watches have said so far.
struct Watches {
    synced: Vec<bool>,
    /// `Some(unreachable)` while a watch fails: `true` when the apiserver
    /// did not answer, `false` when it answered with an error.
    failing: Vec<Option<bool>>,
    answered: bool,
    stale_since: Option<jiff::Timestamp>,
}

impl Watches {
    fn note(
        &mut self,
        i: usize,
        ev: Result<watcher::Event<DynamicObject>, watcher::Error>,
        kind: Kind,
    ) -> bool {
        match ev {
            Ok(ev) => {
                self.answered = true;
                let was_failing = self.failing[i].take().is_some();
                self.fix_stale();
                match ev {
                    watcher::Event::InitDone => {
                        self.synced[i] = true;
                        true
                    }
                    watcher::Event::Init | watcher::Event::InitApply(_) => was_failing,
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) => true,
                }
            }
            // 410 Gone: the watcher re-lists at once; nothing is wrong.
            Err(e) if is_gone(&e) => false,
            Err(e) => {
                let unreachable = !matches!(
                    &e,
                    watcher::Error::InitialListFailed(kube::Error::Api(_))
                        | watcher::Error::WatchStartFailed(kube::Error::Api(_))
                        | watcher::Error::WatchError(_)
                );
                tracing::warn!(kind = kind.name(), error = %e, "fleet watch failed; retrying with backoff");
                self.failing[i] = Some(unreachable);
                self.stale_since.get_or_insert_with(jiff::Timestamp::now);
                true
            }
        }
    }

    fn fix_stale(&mut self) {
        if self.failing.iter().all(Option::is_none) {
            self.stale_since = None;
        }
    }

    fn view(&self) -> ClusterView {
        ClusterView {
            reachable: self.answered && !self.failing.contains(&Some(true)),
            stale_since: self.stale_since.map(|t| t.to_string()),
            synced: self.synced.iter().all(|s| *s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_what_the_fleet_reads_and_drops_templates() {
        let mut o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunner",
            "metadata": {"name": "r", "namespace": "arc-runners",
                "labels": {"actions.github.com/scale-set-name": "s"},
                "annotations": {"big": "x"},
                "managedFields": [{"manager": "m"}]},
            "spec": {"spec": {"containers": [{"name": "runner"}]}},
            "status": {"phase": "Running", "jobId": "7"}
        }))
        .expect("object");
        trim(Kind::Runners, &mut o);
        assert!(o.metadata.managed_fields.is_none() && o.metadata.annotations.is_none());
        assert!(o.metadata.labels.is_some());
        assert!(o.data.get("spec").is_none());
        assert_eq!(o.data["status"]["phase"], "Running");
        let mut set: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": "s", "annotations": {"runner-scale-set-id": "3"}},
            "spec": {"maxRunners": 4, "template": {"spec": {}}}
        }))
        .expect("object");
        trim(Kind::ScaleSets, &mut set);
        assert_eq!(set.data["spec"]["maxRunners"], 4);
        assert!(set.data["spec"].get("template").is_none());
        assert!(set.metadata.annotations.is_some());
    }

    #[test]
    fn resumes_replay_what_was_missed_and_reset_otherwise() {
        let fleet = Fleet::default();
        let boot = fleet.inner.boot.clone();
        assert!(matches!(fleet.changes_since("nonsense"), Resume::Reset));
        assert!(matches!(fleet.changes_since("other-0"), Resume::Reset));
        // Nothing published yet: caught up.
        assert!(
            matches!(fleet.changes_since(&format!("{boot}-0")), Resume::Replay(v) if v.is_empty())
        );
    }
}
