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

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    auth: Family<AuthLabels, Counter>,
    sessions: Gauge,
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
        Metrics {
            registry,
            requests,
            latency,
            auth,
            sessions,
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
