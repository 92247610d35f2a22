//! `GET /api/v1/events`: server-sent events of fleet changes, from the
//! revisions the watches publish (never from the cluster).
//!
//! - Each revision sends one event per change (`scale-set-added`,
//!   `scale-set-changed`, `scale-set-removed`, `runner`, `cluster`, or one
//!   `fleet-reset` when too much changed to list), then one `fleet` event;
//!   all carry the revision's id (`boot-revision`), whose data is JSON.
//! - A new stream starts with `hello` (the current revision). A client that
//!   reconnects with `Last-Event-ID` gets what it missed; when that id is
//!   from another process or older than the kept history
//!   ([`flywheel_fleet::watch::HISTORY`] revisions), one `fleet-reset`.
//! - A slow client is dropped, never buffered for: events wait in one
//!   shared ring of 64 revisions, and a stream that falls behind it ends
//!   (the browser's EventSource reconnects with its `Last-Event-ID`).
//! - At most [`MAX_CLIENTS`] streams at once (503 past it).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use flywheel_fleet::watch::{Resume, Revision};
use futures::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::routes::Route;
use crate::{AppState, error};

/// Concurrent event streams served at most.
pub const MAX_CLIENTS: i64 = 1024;

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/api/v1/events") => get(events),
        _ => return None,
    })
}

fn revision_events(r: &Revision) -> Vec<Event> {
    let mut out: Vec<Event> = r
        .changes
        .iter()
        .map(|c| {
            Event::default()
                .event(c.event())
                .id(r.id.clone())
                .json_data(c)
                .unwrap_or_else(|_| Event::default().event(c.event()).id(r.id.clone()))
        })
        .collect();
    out.push(
        Event::default()
            .event("fleet")
            .id(r.id.clone())
            .data(format!("{{\"revision\":{}}}", r.revision)),
    );
    out
}

/// Counts a stream while it lives.
struct ClientGuard(Arc<AppState>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let n = self.0.sse_clients.fetch_sub(1, Ordering::SeqCst) - 1;
        self.0.metrics.set_sse_clients(n);
    }
}

async fn events(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let n = s.sse_clients.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = ClientGuard(s.clone());
    if n > MAX_CLIENTS {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many event streams are open; retry later",
        );
    }
    s.metrics.set_sse_clients(n);
    // Subscribe before reading the current revision: nothing published in
    // between is lost (what is not newer than `after` is skipped).
    let rx = s.fleet.subscribe_changes();
    let current = s.fleet.current();
    let mut after = current.snapshot.revision;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128);
    let first: Vec<Event> = match last.map(|id| s.fleet.changes_since(id)) {
        None => vec![
            Event::default()
                .event("hello")
                .id(current.id.clone())
                .data(format!("{{\"revision\":{after}}}")),
        ],
        Some(Resume::Replay(revs)) => {
            if let Some(r) = revs.last() {
                after = after.max(r.revision);
            }
            revs.iter().flat_map(revision_events).collect()
        }
        Some(Resume::Reset) => vec![
            Event::default()
                .event("fleet-reset")
                .id(current.id.clone())
                .data(format!("{{\"revision\":{after}}}")),
        ],
    };
    let closed = s.closed();
    let live = stream::unfold(
        (rx, after, guard),
        move |(mut rx, after, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok(r) if r.revision <= after => continue,
                    Ok(r) => {
                        let next = r.revision;
                        let evs = stream::iter(revision_events(&r));
                        return Some((evs, (rx, next, guard)));
                    }
                    Err(RecvError::Lagged(_)) => {
                        guard.0.metrics.sse_dropped();
                        tracing::info!("event stream fell behind; dropped");
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    )
    .flatten()
    // The server is shutting down: end, so the drain does not wait.
    .take_until(closed);
    let all = stream::iter(first).chain(live).map(Ok::<_, Infallible>);
    sse(all).into_response()
}

fn sse(s: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> impl IntoResponse {
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
