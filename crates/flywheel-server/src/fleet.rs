//! `GET /api/v1/fleet` and `GET /api/v1/scale-sets/{namespace}/{name}`:
//! served from the fleet the watches publish ([`flywheel_fleet::watch`]),
//! never from the cluster: zero Kubernetes requests per call. The whole
//! fleet's body is serialized once per revision; a strong `ETag` per
//! revision (and filter) answers `If-None-Match` with 304.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use flywheel_fleet::snapshot::{Filter, filtered};
use serde::Deserialize;

use crate::routes::Route;
use crate::{AppState, error};

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/api/v1/fleet") => get(fleet),
        ("GET", "/api/v1/scale-sets/{namespace}/{name}") => get(scale_set),
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
struct FleetQuery {
    label: Option<String>,
    owner: Option<String>,
    namespace: Option<String>,
}

fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t == etag)
}

fn with_etag(mut resp: Response, etag: &str) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    // Cached by the client, revalidated every time.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    resp
}

async fn fleet(
    State(s): State<Arc<AppState>>,
    Query(q): Query<FleetQuery>,
    headers: HeaderMap,
) -> Response {
    let published = s.fleet.current();
    let filter = Filter {
        label: given(q.label),
        owner: given(q.owner),
        namespace: given(q.namespace),
    };
    let etag = if filter.is_empty() {
        published.etag.clone()
    } else {
        s.fleet.etag(published.snapshot.revision, &filter)
    };
    // A strong validator names one representation: the gzipped body has
    // its own.
    let gzip = accepts_gzip(&headers);
    let etag = match etag.strip_suffix('"') {
        Some(open) if gzip => format!("{open}-gz\""),
        _ => etag,
    };
    if not_modified(&headers, &etag) {
        return with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag);
    }
    let body = if filter.is_empty() {
        if gzip {
            published.gzip()
        } else {
            published.body()
        }
    } else {
        let subset = filtered(
            &published.snapshot,
            &filter,
            &s.fleet.config().shared_labels,
        );
        match serde_json::to_vec(&subset) {
            Ok(b) if gzip => flywheel_fleet::watch::gzip(&b),
            Ok(b) => b.into(),
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &e.to_string(),
                );
            }
        }
    };
    let mut resp = with_etag(
        (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(body),
        )
            .into_response(),
        &etag,
    );
    if gzip {
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// Whether `Accept-Encoding` accepts gzip (`gzip` or `*`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or_default().trim();
            let q_zero = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

fn age_seconds(created: Option<&str>, now: jiff::Timestamp) -> Option<i64> {
    let t: jiff::Timestamp = created?.parse().ok()?;
    Some(now.duration_since(t).as_secs().max(0))
}

async fn scale_set(
    State(s): State<Arc<AppState>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let published = s.fleet.current();
    let Some(set) = published
        .snapshot
        .scale_sets
        .iter()
        .find(|r| r.namespace == namespace && r.name == name)
    else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no scale set {namespace}/{name} in the fleet"),
        );
    };
    let now = jiff::Timestamp::now();
    let runners: Vec<serde_json::Value> = set
        .runners
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "phase": r.phase,
                "job_repository": r.job_repository,
                "workflow_ref": r.workflow_ref,
                "job_display_name": r.job_display_name,
                "created": r.created,
                "pod_phase": r.pod_phase,
                "job_id": r.job_id,
                "age_seconds": age_seconds(r.created.as_deref(), now),
            })
        })
        .collect();
    let mut v = serde_json::to_value(set).unwrap_or_default();
    v["runners"] = serde_json::Value::Array(runners);
    v["listener"] = serde_json::to_value(&set.listener).unwrap_or_default();
    v["runner_set"] = serde_json::to_value(&set.runner_set).unwrap_or_default();
    v["revision"] = published.snapshot.revision.into();
    v["cluster"] = serde_json::to_value(&published.snapshot.cluster).unwrap_or_default();
    axum::Json(v).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_stars_match() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a-1\", \"b-2\""),
        );
        assert!(not_modified(&h, "\"b-2\""));
        assert!(!not_modified(&h, "\"b-3\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, "\"x\""));
        assert!(!not_modified(&HeaderMap::new(), "\"x\""));
    }

    #[test]
    fn gzip_is_used_when_accepted_and_not_when_refused() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, gzip;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
        assert!(!with("x-gzip-not"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
