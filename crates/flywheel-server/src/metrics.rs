//! `/metrics` in the Prometheus text format: requests by route, method and
//! status with latency histograms, authentication outcomes by method and
//! reason (spoofed identity headers among them), and active sessions.
//! Route labels are the route table's patterns (`/api/v1/tokens/{name}`),
//! never raw paths, so a scanner cannot grow the label space.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    method: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LabelKey {
    label: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OwnerKey {
    owner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindKey {
    kind: String,
}

/// One fleet gauge by workflow label and by owner.
#[derive(Default)]
struct FleetGauge {
    by_label: Family<LabelKey, Gauge>,
    by_owner: Family<OwnerKey, Gauge>,
}

impl FleetGauge {
    fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(
            format!("flywheel_fleet_label_{name}"),
            format!("{help}, by shared workflow label"),
            self.by_label.clone(),
        );
        registry.register(
            format!("flywheel_fleet_owner_{name}"),
            format!("{help}, by owner"),
            self.by_owner.clone(),
        );
    }

    fn clear(&self) {
        self.by_label.clear();
        self.by_owner.clear();
    }
}

/// The fleet gauges, set from the current revision at each scrape.
#[derive(Default)]
struct FleetGauges {
    sets: FleetGauge,
    max: FleetGauge,
    running: FleetGauge,
    pending: FleetGauge,
    paused: FleetGauge,
    watch_restarts: Family<KindKey, Counter>,
    watch_stale: Family<KindKey, Gauge>,
    watch_synced: Family<KindKey, Gauge>,
}

/// The server's metrics.
pub struct Metrics {
    fleet: FleetGauges,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    auth: Family<AuthLabels, Counter>,
    sessions: Gauge,
    sse_clients: Gauge,
    sse_dropped: Counter,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let auth = Family::<AuthLabels, Counter>::default();
        let sessions = Gauge::default();
        let sse_clients = Gauge::default();
        let sse_dropped = Counter::default();
        registry.register(
            "flywheel_sse_clients",
            "Event streams (/api/v1/events) open now",
            sse_clients.clone(),
        );
        registry.register(
            "flywheel_sse_dropped",
            "Event streams ended because the client fell behind",
            sse_dropped.clone(),
        );
        registry.register(
            "flywheel_http_requests",
            "HTTP requests by route pattern, method and status",
            requests.clone(),
        );
        registry.register(
            "flywheel_http_request_duration_seconds",
            "Time to answer, by route pattern and method",
            latency.clone(),
        );
        registry.register(
            "flywheel_auth",
            "Authentication outcomes by method and reason (spoofed: identity headers from an untrusted peer)",
            auth.clone(),
        );
        registry.register(
            "flywheel_sessions_active",
            "Interactive sessions not past their absolute expiry",
            sessions.clone(),
        );
        let fleet = FleetGauges::default();
        fleet
            .sets
            .register(&mut registry, "scale_sets", "ARC scale sets");
        fleet.max.register(
            &mut registry,
            "max_runners",
            "Sum of maxRunners (absent when a set has no limit)",
        );
        fleet
            .running
            .register(&mut registry, "running_runners", "Runners running");
        fleet
            .pending
            .register(&mut registry, "pending_runners", "Runners pending");
        fleet
            .paused
            .register(&mut registry, "paused_scale_sets", "Paused scale sets");
        registry.register(
            "flywheel_watch_restarts",
            "Fleet watch errors after which the watch backed off and restarted, by kind",
            fleet.watch_restarts.clone(),
        );
        registry.register(
            "flywheel_watch_stale_seconds",
            "Seconds since a fleet watch of this kind started failing (0 while it works)",
            fleet.watch_stale.clone(),
        );
        registry.register(
            "flywheel_watch_synced",
            "1 once every watch of this kind has listed its resources",
            fleet.watch_synced.clone(),
        );
        Metrics {
            fleet,
            registry,
            requests,
            latency,
            auth,
            sessions,
            sse_clients,
            sse_dropped,
        }
    }
}

impl Metrics {
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// One authentication outcome: `method` is how the caller tried
    /// (`proxy`, `token`, ...), `outcome` what happened (`ok`, `invalid`,
    /// `spoofed`, `no_role`, `signed_in`, ...).
    pub fn auth(&self, method: &str, outcome: &str) {
        self.auth
            .get_or_create(&AuthLabels {
                method: method.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Sets the fleet gauges from `snap` and the watches' `stats`.
    pub fn set_fleet(
        &self,
        snap: &flywheel_fleet::snapshot::FleetSnapshot,
        stats: &[flywheel_fleet::watch::WatchStat],
    ) {
        let f = &self.fleet;
        for g in [&f.sets, &f.max, &f.running, &f.pending, &f.paused] {
            g.clear();
        }
        let by_name: std::collections::HashMap<String, &flywheel_fleet::snapshot::SetRow> = snap
            .scale_sets
            .iter()
            .map(|s| (format!("{}/{}", s.namespace, s.name), &**s))
            .collect();
        let put = |sets: &[String], label: Option<LabelKey>, owner: Option<OwnerKey>| {
            let rows: Vec<_> = sets.iter().filter_map(|k| by_name.get(k)).collect();
            let max: Option<i64> = rows
                .iter()
                .try_fold(0i64, |a, r| r.max.map(|m| a.saturating_add(m)));
            let values = [
                (&f.sets, Some(rows.len() as i64)),
                (&f.max, max),
                (&f.running, Some(rows.iter().map(|r| r.running).sum())),
                (&f.pending, Some(rows.iter().map(|r| r.pending).sum())),
                (
                    &f.paused,
                    Some(rows.iter().filter(|r| r.paused).count() as i64),
                ),
            ];
            for (g, v) in values {
                let Some(v) = v else { continue };
                if let Some(l) = &label {
                    g.by_label.get_or_create(l).set(v);
                }
                if let Some(o) = &owner {
                    g.by_owner.get_or_create(o).set(v);
                }
            }
        };
        for l in &snap.labels {
            put(
                &l.sets,
                Some(LabelKey {
                    label: l.label.clone(),
                }),
                None,
            );
        }
        for o in &snap.owners {
            put(
                &o.sets,
                None,
                Some(OwnerKey {
                    owner: o.owner.clone(),
                }),
            );
        }
        let now = jiff::Timestamp::now();
        for st in stats {
            let key = KindKey {
                kind: st.kind.to_string(),
            };
            let c = f.watch_restarts.get_or_create(&key);
            c.inc_by(st.restarts.saturating_sub(c.get()));
            let stale = st
                .failing_since
                .map(|t| now.duration_since(t).as_secs().max(0))
                .unwrap_or(0);
            f.watch_stale.get_or_create(&key).set(stale);
            f.watch_synced.get_or_create(&key).set(i64::from(st.synced));
        }
    }

    pub fn set_sse_clients(&self, n: i64) {
        self.sse_clients.set(n);
    }

    pub fn sse_dropped(&self) {
        self.sse_dropped.inc();
    }

    pub fn set_sessions(&self, n: i64) {
        self.sessions.set(n);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
