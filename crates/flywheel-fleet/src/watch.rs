//! The live fleet: kube-runtime reflectors on AutoscalingRunnerSets,
//! EphemeralRunners and AutoscalingListeners in the configured namespaces,
//! each a `watcher` with the default backoff (errors back off; a `410
//! Gone` re-lists), feeding one [`Fleet`].
//!
//! On every watch event (debounced by [`DEBOUNCE`]) the fleet is rebuilt by
//! the pure [`snapshot::build`](crate::snapshot::build) from the stores'
//! contents; when it differs from the last one it is published as an
//! `Arc` with the next revision and its JSON body serialized once. Readers
//! ([`Fleet::current`]) never reach the cluster: zero Kubernetes requests
//! per page view or API call.
//!
//! Not watched yet: EphemeralRunnerSets and runner pods (pod phase on
//! runners, listener pod health); `held_jobs` stays `null`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use crate::snapshot::{self, ClusterView, Filter, FleetConfig, FleetSnapshot};

/// How long after a watch event more events are gathered before the fleet
/// is rebuilt.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The kinds watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ScaleSets,
    Runners,
    Listeners,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::ScaleSets, Kind::Runners, Kind::Listeners];

    pub fn resource(self) -> ApiResource {
        let (kind, plural) = match self {
            Kind::ScaleSets => return flywheel_cluster::scale_set_resource(),
            Kind::Runners => ("EphemeralRunner", "ephemeralrunners"),
            Kind::Listeners => ("AutoscalingListener", "autoscalinglisteners"),
        };
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("actions.github.com", "v1alpha1", kind),
            plural,
        )
    }
}

/// One published revision of the fleet.
#[derive(Debug)]
pub struct Published {
    pub snapshot: FleetSnapshot,
    /// `snapshot` as JSON, serialized once.
    pub body: Bytes,
    /// The strong entity tag of `body` (quoted).
    pub etag: String,
    /// The objects the snapshot came from are in `snapshot`'s rows.
    pub at: jiff::Timestamp,
}

struct Inner {
    config: FleetConfig,
    tx: watch::Sender<Arc<Published>>,
    /// Distinguishes this process's revisions from a previous one's.
    boot: String,
    revision: AtomicU64,
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

fn encode(snapshot: FleetSnapshot, boot: &str) -> Published {
    let body = serde_json::to_vec(&snapshot).unwrap_or_else(|_| b"{}".to_vec());
    Published {
        etag: format!("\"{boot}-{}\"", snapshot.revision),
        snapshot,
        body: Bytes::from(body),
        at: jiff::Timestamp::now(),
    }
}

impl Fleet {
    /// An empty fleet (revision 0, no cluster reached) until [`Fleet::run`].
    pub fn new(config: FleetConfig) -> Fleet {
        let boot = format!(
            "{:x}",
            jiff::Timestamp::now().as_nanosecond() as u64 ^ u64::from(std::process::id())
        );
        let empty = snapshot::build(&config, &[], &[], &[], ClusterView::default(), 0);
        let (tx, _) = watch::channel(Arc::new(encode(empty, &boot)));
        Fleet {
            inner: Arc::new(Inner {
                config,
                tx,
                boot,
                revision: AtomicU64::new(0),
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

    /// Wakes on every new revision (for server-sent events).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.inner.tx.subscribe()
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
        let current = self.current();
        let next = snapshot::build(
            &self.inner.config,
            &gather(Kind::ScaleSets),
            &gather(Kind::Runners),
            &gather(Kind::Listeners),
            cluster,
            current.snapshot.revision,
        );
        if next == current.snapshot {
            return;
        }
        let revision = self.inner.revision.fetch_add(1, Ordering::SeqCst) + 1;
        let next = FleetSnapshot { revision, ..next };
        self.inner
            .tx
            .send_replace(Arc::new(encode(next, &self.inner.boot)));
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
                let i = streams.len();
                streams.push(
                    reflector::reflector(writer, watcher(api, cfg))
                        .default_backoff()
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
            let mut dirty = state.note(i, ev, &stores);
            let deadline = tokio::time::Instant::now() + DEBOUNCE;
            while let Ok(Some((i, ev))) = tokio::time::timeout_at(deadline, all.next()).await {
                dirty |= state.note(i, ev, &stores);
            }
            if dirty {
                self.publish(&stores, state.view());
            }
        }
    }
}

/// A watch event, tagged with the index of its stream.
type Tagged = (usize, Result<watcher::Event<DynamicObject>, watcher::Error>);

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
        stores: &[(Kind, Store<DynamicObject>)],
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
            Err(watcher::Error::WatchError(s)) if s.code == 410 => false,
            Err(e) => {
                let unreachable = !matches!(
                    &e,
                    watcher::Error::InitialListFailed(kube::Error::Api(_))
                        | watcher::Error::WatchStartFailed(kube::Error::Api(_))
                        | watcher::Error::WatchError(_)
                );
                let (kind, _) = &stores[i];
                tracing::warn!(kind = ?kind, error = %e, "fleet watch failed; retrying with backoff");
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
