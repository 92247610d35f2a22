//! The fleet's history: the recorder task (the fleet's revisions → the
//! pure [`flywheel_fleet::history::Recorder`] → completed minutes in the
//! store), `GET /api/v1/history`, and the charts of the fleet pages.
//!
//! The task lives here, not in `flywheel-fleet`, because it joins the
//! fleet and the store and only the server holds both; the fleet crate
//! keeps the pure part and stays free of a database.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use flywheel_fleet::history::{Flush, Kind, Recorder};
use flywheel_fleet::snapshot::FleetSnapshot;
use flywheel_store::{HOUR, HistoryRow, KEPT, MINUTE, PauseRow, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::chart::{self, Rect, Scale};
use crate::routes::Route;
use crate::{AppState, error};

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    match (route.method, route.path) {
        ("GET", "/api/v1/history") => Some(get(api_history)),
        _ => None,
    }
}

/// How often the recorder closes minutes and retries the store.
const TICK: Duration = Duration::from_secs(5);
/// How often a replica that does not write asks for the writer's lock.
const RETRY_WRITER: Duration = Duration::from_secs(60);
/// How often old minutes are folded and expired rows deleted.
const COMPACT: Duration = Duration::from_secs(600);
/// Minutes kept in memory while the store does not answer (then the
/// oldest are dropped).
const PENDING_LIMIT: usize = 100_000;

/// Writes a recorder's completed minutes and ended pauses.
pub async fn write(store: &Store, f: &Flush) -> Result<(), StoreError> {
    let rows: Vec<HistoryRow> = f
        .samples
        .iter()
        .map(|s| HistoryRow {
            kind: s.kind.as_str().into(),
            key: s.key.clone(),
            step: MINUTE,
            t: s.minute.as_second(),
            running: s.running,
            max: s.max,
            started: s.counts.started as i64,
            finished: s.counts.finished as i64,
            failed: s.counts.failed as i64,
        })
        .collect();
    store.history_put(&rows).await?;
    let pauses: Vec<PauseRow> = f
        .pauses
        .iter()
        .map(|p| PauseRow {
            kind: p.kind.as_str().into(),
            key: p.key.clone(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            by: p.by.clone(),
            from: p.from.as_second(),
            to: p.to.as_second(),
        })
        .collect();
    store.history_put_pauses(&pauses).await
}

fn append(into: &mut Flush, more: Flush) {
    into.samples.extend(more.samples);
    into.pauses.extend(more.pauses);
    let over = into.samples.len().saturating_sub(PENDING_LIMIT);
    into.samples.drain(..over);
}

/// Records the fleet's history until the server closes. Revisions count
/// once every watch has listed (before that the fleet is not the
/// cluster's). Every replica follows the fleet; only the one holding
/// [`Store::history_writer`] writes, the others drop their minutes.
pub async fn record(state: Arc<AppState>) {
    let mut rx = state.fleet.subscribe();
    let mut rec = Recorder::default();
    let mut pending = Flush::default();
    let mut writer = None;
    let mut asked: Option<tokio::time::Instant> = None;
    let mut compacted: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    let closed = state.closed();
    tokio::pin!(closed);
    let mut seen = state.fleet.current();
    let mut fresh = true;
    loop {
        if fresh && seen.snapshot.cluster.synced {
            append(&mut pending, rec.observe(&seen.snapshot, seen.at));
        }
        fresh = false;
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                seen = rx.borrow_and_update().clone();
                fresh = true;
                continue;
            }
            _ = tick.tick() => append(&mut pending, rec.tick(Timestamp::now())),
            () = &mut closed => return,
        }
        if writer.is_none() && asked.is_none_or(|a| a.elapsed() >= RETRY_WRITER) {
            asked = Some(tokio::time::Instant::now());
            match state.store.history_writer().await {
                Ok(w) => writer = w,
                Err(e) => tracing::warn!("history: cannot ask for the writer's lock: {e}"),
            }
        }
        let Some(w) = writer.as_mut() else {
            pending = Flush::default();
            continue;
        };
        if !w.still_held().await {
            tracing::warn!("history: lost the writer's connection; asking again");
            writer = None;
            continue;
        }
        if !pending.is_empty() {
            match write(&state.store, &pending).await {
                Ok(()) => pending = Flush::default(),
                Err(e) => tracing::warn!("history: minutes kept for the next try: {e}"),
            }
        }
        if compacted.is_none_or(|c| c.elapsed() >= COMPACT) {
            compacted = Some(tokio::time::Instant::now());
            if let Err(e) = state.store.history_compact(Timestamp::now()).await {
                tracing::warn!("history: compaction failed: {e}");
            }
        }
    }
}

/// The steps callers may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Minute,
    FiveMinutes,
    Hour,
}

impl Step {
    pub fn parse(s: &str) -> Option<Step> {
        match s {
            "1m" => Some(Step::Minute),
            "5m" => Some(Step::FiveMinutes),
            "1h" => Some(Step::Hour),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Minute => "1m",
            Step::FiveMinutes => "5m",
            Step::Hour => "1h",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Step::Minute => MINUTE,
            Step::FiveMinutes => 5 * MINUTE,
            Step::Hour => HOUR,
        }
    }

    /// The default for a range: about 300 points or fewer.
    pub fn for_range(range: SignedDuration) -> Step {
        if range <= SignedDuration::from_hours(6) {
            Step::Minute
        } else if range <= SignedDuration::from_hours(48) {
            Step::FiveMinutes
        } else {
            Step::Hour
        }
    }
}

/// A refused parameter: stable code and words naming it.
#[derive(Debug, PartialEq, Eq)]
pub struct BadParam {
    pub code: &'static str,
    pub message: String,
}

fn bad(code: &'static str, message: String) -> BadParam {
    BadParam { code, message }
}

/// `since`: RFC 3339 or a duration back from `now` (`24h`, `7d`, `90m`);
/// at most [`KEPT`] back, not in the future.
pub fn parse_since(s: &str, now: Timestamp) -> Result<Timestamp, BadParam> {
    let s = s.trim();
    let t = match s.parse::<Timestamp>() {
        Ok(t) => t,
        Err(_) => {
            let span: jiff::Span = s.parse().map_err(|_| {
                bad(
                    "bad_since",
                    format!("since `{s}`: give an RFC 3339 time or a duration such as 24h or 7d"),
                )
            })?;
            if span.is_negative() || span.is_zero() {
                return Err(bad(
                    "bad_since",
                    format!("since `{s}`: the duration must be positive"),
                ));
            }
            now.to_zoned(jiff::tz::TimeZone::UTC)
                .checked_sub(span)
                .map(|z| z.timestamp())
                .map_err(|e| bad("bad_since", format!("since `{s}`: {e}")))?
        }
    };
    let oldest = now
        .checked_sub(KEPT)
        .map_err(|e| bad("bad_since", format!("since: {e}")))?;
    if t < oldest {
        return Err(bad(
            "bad_since",
            format!("since `{s}`: at most 14d back (the history keeps 14 days)"),
        ));
    }
    if t > now {
        return Err(bad("bad_since", format!("since `{s}`: in the future")));
    }
    Ok(t)
}

#[derive(Deserialize, Default)]
pub(crate) struct HistoryQuery {
    label: Option<String>,
    owner: Option<String>,
    since: Option<String>,
    step: Option<String>,
}

/// What `GET /api/v1/history` asks, checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Ask {
    pub kind: Kind,
    pub key: String,
    pub since: Timestamp,
    pub step: Step,
}

fn check(q: &HistoryQuery, now: Timestamp) -> Result<Ask, BadParam> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (kind, key) = match (given(&q.label), given(&q.owner)) {
        (Some(l), None) => (Kind::Label, l),
        (None, Some(o)) => (Kind::Owner, o),
        (Some(_), Some(_)) => {
            return Err(bad(
                "bad_series",
                "give label or owner, not both".to_string(),
            ));
        }
        (None, None) => {
            return Err(bad(
                "bad_series",
                "give label=<workflow label> or owner=<owner>".to_string(),
            ));
        }
    };
    if key.len() > 256 {
        return Err(bad(
            "bad_series",
            format!("{}: at most 256 characters", kind.as_str()),
        ));
    }
    let since = match given(&q.since) {
        Some(s) => parse_since(&s, now)?,
        None => now
            .checked_sub(SignedDuration::from_hours(24))
            .map_err(|e| bad("bad_since", format!("since: {e}")))?,
    };
    // Whole seconds: `since` is echoed in answers and on the pages.
    let since = since.round(jiff::Unit::Second).unwrap_or(since);
    let range = now.duration_since(since);
    let step = match given(&q.step) {
        None => Step::for_range(range),
        Some(s) => Step::parse(&s)
            .ok_or_else(|| bad("bad_step", format!("step `{s}`: one of 1m, 5m, 1h")))?,
    };
    if step == Step::Minute && range > flywheel_store::MINUTES_KEPT {
        return Err(bad(
            "bad_step",
            "step 1m covers at most 48h (older history is kept by the hour): use 5m or 1h"
                .to_string(),
        ));
    }
    Ok(Ask {
        kind,
        key,
        since,
        step,
    })
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Point {
    pub t: String,
    /// Seconds since the epoch (for charts; not serialized).
    #[serde(skip)]
    pub at: i64,
    pub running: i64,
    pub max: Option<i64>,
    pub started: i64,
    pub finished: i64,
    pub failed: i64,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Pause {
    pub namespace: String,
    pub name: String,
    pub by: Option<String>,
    pub from: String,
    /// `None`: still paused.
    pub to: Option<String>,
    #[serde(skip)]
    pub from_at: i64,
    #[serde(skip)]
    pub to_at: Option<i64>,
}

/// The answer of `GET /api/v1/history`.
#[derive(Serialize, Clone, Debug)]
pub struct Series {
    pub kind: &'static str,
    pub key: String,
    pub step: &'static str,
    pub since: String,
    pub series: Vec<Point>,
    pub pauses: Vec<Pause>,
}

fn rfc3339(t: i64) -> String {
    Timestamp::from_second(t).map_or_else(|_| t.to_string(), |t| t.to_string())
}

/// Pauses going on now in the live fleet, for the series.
fn open_pauses(snap: &FleetSnapshot, kind: Kind, key: &str) -> Vec<Pause> {
    snap.scale_sets
        .iter()
        .filter(|s| s.paused)
        .filter(|s| match kind {
            Kind::Label => s.labels.iter().any(|l| l.eq_ignore_ascii_case(key)),
            Kind::Owner => s.owner.eq_ignore_ascii_case(key),
        })
        .map(|s| {
            let from = s
                .paused_at
                .as_deref()
                .and_then(|p| p.parse::<Timestamp>().ok());
            Pause {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                by: s.paused_by.clone(),
                from: from.map(|t| t.to_string()).unwrap_or_default(),
                to: None,
                from_at: from.map_or(0, |t| t.as_second()),
                to_at: None,
            }
        })
        .collect()
}

/// The series of `ask` from the store, plus the live fleet's open pauses.
pub async fn series(s: &AppState, ask: &Ask) -> Result<Series, StoreError> {
    let since = ask.since.as_second();
    let rows = s
        .store
        .history_rows(ask.kind.as_str(), &ask.key, since)
        .await?;
    let points = flywheel_store::bucket(&rows, ask.step.seconds())
        .into_iter()
        .map(|r| Point {
            t: rfc3339(r.t),
            at: r.t,
            running: r.running,
            max: r.max,
            started: r.started,
            finished: r.finished,
            failed: r.failed,
        })
        .collect();
    let mut pauses: Vec<Pause> = s
        .store
        .history_pauses(ask.kind.as_str(), &ask.key, since)
        .await?
        .into_iter()
        .map(|p| Pause {
            namespace: p.namespace,
            name: p.name,
            by: p.by,
            from: rfc3339(p.from),
            to: Some(rfc3339(p.to)),
            from_at: p.from,
            to_at: Some(p.to),
        })
        .collect();
    pauses.extend(open_pauses(&s.fleet.current().snapshot, ask.kind, &ask.key));
    Ok(Series {
        kind: ask.kind.as_str(),
        key: ask.key.clone(),
        step: ask.step.name(),
        since: ask.since.to_string(),
        series: points,
        pauses,
    })
}

async fn api_history(State(s): State<Arc<AppState>>, Query(q): Query<HistoryQuery>) -> Response {
    let ask = match check(&q, Timestamp::now()) {
        Ok(a) => a,
        Err(b) => return error(StatusCode::BAD_REQUEST, b.code, &b.message),
    };
    match series(&s, &ask).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}

/// One line of a chart.
pub(crate) struct Line {
    pub d: String,
    pub stroke: &'static str,
    pub dash: &'static str,
}

/// A row of a chart's number table.
pub(crate) struct NumberRow {
    pub t: String,
    pub cells: Vec<String>,
}

/// One chart as `templates/chart.html` draws it.
pub(crate) struct Chart {
    pub id: String,
    pub title: String,
    /// What the chart says, in words (`aria-label`, `<desc>`).
    pub summary: String,
    pub lines: Vec<Line>,
    pub bars: Vec<Rect>,
    pub bands: Vec<Rect>,
    pub legend: Vec<(&'static str, String)>,
    pub top: String,
    pub from: String,
    pub to: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<NumberRow>,
}

const RUNNING: &str = "#2b6cb0";
const MAXC: &str = "#c05621";
const BARS: &str = "#68a063";
const FAIL: &str = "#c53030";
pub(crate) const BAND: &str = "#ecc94b";

fn short(t: i64) -> String {
    Timestamp::from_second(t)
        .map_or_else(|_| t.to_string(), |t| t.strftime("%m-%d %H:%M").to_string())
}

fn bands(p: &[Pause], scale: Scale) -> Vec<Rect> {
    p.iter()
        .filter_map(|p| {
            let who = p.by.as_deref().unwrap_or("maxRunners 0");
            chart::band(
                p.from_at,
                p.to_at,
                scale,
                format!(
                    "{}/{} paused ({who}) {} to {}",
                    p.namespace,
                    p.name,
                    p.from,
                    p.to.as_deref().unwrap_or("now")
                ),
            )
        })
        .collect()
}

/// Running vs max over the range, pauses shaded.
pub(crate) fn running_chart(id: &str, what: &str, v: &Series, now: Timestamp) -> Chart {
    let (t0, t1) = (v.since_at(), now.as_second());
    let peak = v
        .series
        .iter()
        .map(|p| p.running.max(p.max.unwrap_or(0)))
        .max()
        .unwrap_or(0);
    let scale = Scale {
        t0,
        t1,
        y_max: chart::nice_max(peak as f64),
    };
    let running: Vec<(i64, Option<f64>)> = v
        .series
        .iter()
        .map(|p| (p.at, Some(p.running as f64)))
        .collect();
    let max: Vec<(i64, Option<f64>)> = v
        .series
        .iter()
        .map(|p| (p.at, p.max.map(|m| m as f64)))
        .collect();
    let last = v.series.last();
    Chart {
        id: id.to_string(),
        title: format!("{what}: runners running vs max"),
        summary: match last {
            Some(p) => format!(
                "{what}: {} points since {}; now {} running of {}; {} pause(s)",
                v.series.len(),
                v.since,
                p.running,
                p.max.map_or("no limit".to_string(), |m| m.to_string()),
                v.pauses.len()
            ),
            None => format!("{what}: no history recorded since {}", v.since),
        },
        lines: vec![
            Line {
                d: chart::line(&max, scale),
                stroke: MAXC,
                dash: "4 3",
            },
            Line {
                d: chart::line(&running, scale),
                stroke: RUNNING,
                dash: "none",
            },
        ],
        bars: vec![],
        bands: bands(&v.pauses, scale),
        legend: vec![
            (RUNNING, "running".into()),
            (MAXC, "max (gaps: no limit)".into()),
            (BAND, "paused".into()),
        ],
        top: format!("{}", scale.y_max),
        from: short(t0),
        to: short(t1),
        columns: vec!["running", "max"],
        rows: v
            .series
            .iter()
            .map(|p| NumberRow {
                t: p.t.clone(),
                cells: vec![
                    p.running.to_string(),
                    p.max.map_or("no limit".into(), |m| m.to_string()),
                ],
            })
            .collect(),
    }
}

/// Jobs finished per hour (bars) and the failure rate (line, 0–100 %
/// on the same height).
pub(crate) fn jobs_chart(id: &str, what: &str, v: &Series, now: Timestamp) -> Chart {
    let (t0, t1) = (v.since_at(), now.as_second());
    let hours: Vec<HistoryRow> = flywheel_store::bucket(
        &v.series
            .iter()
            .map(|p| HistoryRow {
                kind: String::new(),
                key: String::new(),
                step: MINUTE,
                t: p.at,
                running: p.running,
                max: p.max,
                started: p.started,
                finished: p.finished,
                failed: p.failed,
            })
            .collect::<Vec<_>>(),
        HOUR,
    );
    let peak = hours.iter().map(|h| h.finished.max(h.started)).max();
    let scale = Scale {
        t0,
        t1,
        y_max: chart::nice_max(peak.unwrap_or(0) as f64),
    };
    let finished: Vec<(i64, f64)> = hours.iter().map(|h| (h.t, h.finished as f64)).collect();
    let rate_scale = Scale {
        y_max: 1.0,
        ..scale
    };
    let rate: Vec<(i64, Option<f64>)> = hours
        .iter()
        .map(|h| {
            (
                h.t + HOUR / 2,
                (h.finished > 0).then(|| h.failed as f64 / h.finished as f64),
            )
        })
        .collect();
    let (done, failed) = hours
        .iter()
        .fold((0, 0), |(d, f), h| (d + h.finished, f + h.failed));
    Chart {
        id: id.to_string(),
        title: format!("{what}: jobs per hour and failure rate"),
        summary: format!(
            "{what}: {done} jobs finished since {}, {failed} failed ({})",
            v.since,
            if done > 0 {
                format!("{:.0} %", failed as f64 * 100.0 / done as f64)
            } else {
                "no jobs".into()
            }
        ),
        lines: vec![Line {
            d: chart::line(&rate, rate_scale),
            stroke: FAIL,
            dash: "none",
        }],
        bars: chart::bars(&finished, HOUR, scale, "jobs finished"),
        bands: bands(&v.pauses, scale),
        legend: vec![
            (BARS, "jobs finished per hour".into()),
            (FAIL, "failure rate (top = 100 %)".into()),
            (BAND, "paused".into()),
        ],
        top: format!("{}", scale.y_max),
        from: short(t0),
        to: short(t1),
        columns: vec!["started", "finished", "failed"],
        rows: hours
            .iter()
            .map(|h| NumberRow {
                t: rfc3339(h.t),
                cells: vec![
                    h.started.to_string(),
                    h.finished.to_string(),
                    h.failed.to_string(),
                ],
            })
            .collect(),
    }
}

impl Series {
    fn since_at(&self) -> i64 {
        self.since.parse::<Timestamp>().map_or(0, |t| t.as_second())
    }
}

/// The charts of a page (empty when the store does not answer: the page
/// still shows the live fleet).
#[derive(Default)]
pub(crate) struct Charts {
    pub charts: Vec<Chart>,
    pub error: String,
}

/// Charts over the last 24 hours: running vs max of each series in
/// `running`, jobs and failure rate of each in `jobs`.
pub(crate) async fn charts(
    s: &AppState,
    running: &[(Kind, String)],
    jobs: &[(Kind, String)],
) -> Charts {
    let now = Timestamp::now();
    let Ok(since) = now
        .checked_sub(SignedDuration::from_hours(24))
        .and_then(|t| t.round(jiff::Unit::Second))
    else {
        return Charts::default();
    };
    let mut out = Charts::default();
    let ask = |kind: Kind, key: &str| Ask {
        kind,
        key: key.to_string(),
        since,
        step: Step::FiveMinutes,
    };
    let what = |kind: Kind, key: &str| format!("{} {key}", kind.as_str());
    for (i, (kind, key)) in running.iter().enumerate() {
        match series(s, &ask(*kind, key)).await {
            Ok(v) => out.charts.push(running_chart(
                &format!("chart-running-{i}"),
                &what(*kind, key),
                &v,
                now,
            )),
            Err(e) => out.error = e.to_string(),
        }
    }
    for (i, (kind, key)) in jobs.iter().enumerate() {
        match series(s, &ask(*kind, key)).await {
            Ok(v) => out.charts.push(jobs_chart(
                &format!("chart-jobs-{i}"),
                &what(*kind, key),
                &v,
                now,
            )),
            Err(e) => out.error = e.to_string(),
        }
    }
    out
}

/// The overview's charts: running vs max of every shared label.
pub(crate) async fn overview_charts(s: &AppState) -> Charts {
    let labels: Vec<(Kind, String)> = s
        .fleet
        .current()
        .snapshot
        .labels
        .iter()
        .map(|l| (Kind::Label, l.label.clone()))
        .collect();
    charts(s, &labels, &[]).await
}

/// A scale set's charts: its labels' and its owner's running vs max, and
/// its first label's jobs per hour and failure rate.
pub(crate) async fn set_charts(s: &AppState, namespace: &str, name: &str) -> Charts {
    let published = s.fleet.current();
    let Some(set) = published.snapshot.find_set(namespace, name) else {
        return Charts::default();
    };
    let mut running: Vec<(Kind, String)> = set
        .labels
        .iter()
        .map(|l| (Kind::Label, l.clone()))
        .collect();
    running.push((Kind::Owner, set.owner.clone()));
    let jobs: Vec<(Kind, String)> = set
        .labels
        .first()
        .map(|l| (Kind::Label, l.clone()))
        .into_iter()
        .chain(std::iter::once((Kind::Owner, set.owner.clone())))
        .take(1)
        .collect();
    charts(s, &running, &jobs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().expect("t")
    }

    fn q(pairs: &[(&str, &str)]) -> HistoryQuery {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        HistoryQuery {
            label: get("label"),
            owner: get("owner"),
            since: get("since"),
            step: get("step"),
        }
    }

    #[test]
    fn since_takes_times_and_durations_within_fourteen_days() {
        assert_eq!(
            parse_since("24h", now()).expect("24h").to_string(),
            "2026-11-30T12:00:00Z"
        );
        assert_eq!(
            parse_since("7d", now()).expect("7d").to_string(),
            "2026-11-24T12:00:00Z"
        );
        assert!(parse_since("2026-12-01T06:00:00Z", now()).is_ok());
        for bad_one in ["15d", "yesterday", "-2h", "2026-12-02T00:00:00Z", "0s"] {
            let e = parse_since(bad_one, now()).expect_err(bad_one);
            assert_eq!(e.code, "bad_since");
            assert!(e.message.contains("since"), "{}", e.message);
        }
    }

    #[test]
    fn steps_default_from_the_range_and_bad_ones_are_named() {
        let a = check(&q(&[("label", "x")]), now()).expect("ok");
        assert_eq!((a.kind, a.step), (Kind::Label, Step::FiveMinutes));
        let late = now()
            .checked_add(SignedDuration::from_millis(1500))
            .expect("t");
        let a = check(&q(&[("label", "x"), ("since", "1h")]), late).expect("ok");
        assert_eq!(a.since.to_string(), "2026-12-01T11:00:02Z", "whole seconds");
        let a = check(&q(&[("owner", "o"), ("since", "3h")]), now()).expect("ok");
        assert_eq!(a.step, Step::Minute);
        let a = check(&q(&[("owner", "o"), ("since", "7d")]), now()).expect("ok");
        assert_eq!(a.step, Step::Hour);
        let e = check(&q(&[("label", "x"), ("step", "2m")]), now()).expect_err("2m");
        assert_eq!(e.code, "bad_step");
        let e = check(
            &q(&[("label", "x"), ("step", "1m"), ("since", "7d")]),
            now(),
        )
        .expect_err("1m over 7d");
        assert_eq!(e.code, "bad_step");
        assert_eq!(check(&q(&[]), now()).expect_err("none").code, "bad_series");
        assert_eq!(
            check(&q(&[("label", "a"), ("owner", "b")]), now())
                .expect_err("both")
                .code,
            "bad_series"
        );
    }
}
