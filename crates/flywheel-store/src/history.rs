//! The fleet's history: per-minute samples of each workflow label and
//! owner, and the pause intervals of their scale sets.
//!
//! Retention (bounded size): minute rows for the last [`MINUTES_KEPT`],
//! then folded into hour rows (running: the hour's peak; max: its highest
//! limit, `NULL` when any minute had none; jobs: summed), and nothing older
//! than [`KEPT`]. Writes are upserts, so writing a minute twice leaves one
//! row. With several replicas on one PostgreSQL, only the holder of
//! [`Store::history_writer`] writes.

use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};

use crate::{Store, StoreError, on_pool};

/// One minute, in seconds (the recorded resolution).
pub const MINUTE: i64 = 60;
/// One hour, in seconds (the resolution of older data).
pub const HOUR: i64 = 3600;
/// How long minute rows stay before they are folded into hours.
pub const MINUTES_KEPT: SignedDuration = SignedDuration::from_hours(48);
/// How long anything stays.
pub const KEPT: SignedDuration = SignedDuration::from_hours(14 * 24);

/// The PostgreSQL advisory lock of the one history writer.
const WRITER_LOCK: i64 = 0x666c_7977_6869_7374;

/// One bucket of one series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    /// `label` or `owner`.
    pub kind: String,
    pub key: String,
    /// Bucket length in seconds ([`MINUTE`] or [`HOUR`] as stored).
    pub step: i64,
    /// Start of the bucket, Unix seconds.
    pub t: i64,
    pub running: i64,
    /// `None`: unlimited.
    pub max: Option<i64>,
    pub started: i64,
    pub finished: i64,
    pub failed: i64,
}

/// A scale set of a series was paused from `from` to `to` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseRow {
    pub kind: String,
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub by: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// What [`Store::history_compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Minute rows folded into hour rows.
    pub folded: u64,
    /// Rows (samples and pauses) past [`KEPT`] deleted.
    pub deleted: u64,
}

/// The right to write the history. On PostgreSQL it is a session advisory
/// lock held by its own connection (not a pooled one, which would keep the
/// lock after it went back to the pool): dropping it, or losing the
/// connection, releases the lock for another replica.
#[derive(Debug)]
pub struct HistoryWriter {
    conn: Option<sqlx::PgConnection>,
}

impl HistoryWriter {
    /// Whether the lock is still held (its connection still answers).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(c) => sqlx::query("SELECT 1").execute(&mut *c).await.is_ok(),
        }
    }
}

/// The start of the `step`-second bucket holding `t` (UTC; `step` divides
/// a day).
pub fn floor_to(t: i64, step: i64) -> i64 {
    let Ok(ts) = Timestamp::from_second(t) else {
        return t;
    };
    ts.round(
        TimestampRound::new()
            .smallest(Unit::Second)
            .increment(step)
            .mode(RoundMode::Trunc),
    )
    .map_or(t, |r| r.as_second())
}

/// Adds `row` into `into` (same series and bucket): peak running, highest
/// limit (unlimited wins), summed jobs.
fn fold(into: &mut HistoryRow, row: &HistoryRow) {
    into.running = into.running.max(row.running);
    into.max = match (into.max, row.max) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    into.started += row.started;
    into.finished += row.finished;
    into.failed += row.failed;
}

/// `rows` (one series, sorted by time) in buckets of `step` seconds; a row
/// coarser than `step` keeps its own bucket.
pub fn bucket(rows: &[HistoryRow], step: i64) -> Vec<HistoryRow> {
    let mut out: Vec<HistoryRow> = Vec::new();
    for r in rows {
        let s = step.max(r.step);
        let t = floor_to(r.t, s);
        match out.last_mut() {
            Some(last) if last.t == t && last.kind == r.kind && last.key == r.key => {
                last.step = last.step.max(s);
                fold(last, r);
            }
            _ => out.push(HistoryRow {
                step: s,
                t,
                ..r.clone()
            }),
        }
    }
    out
}

type Tuple = (String, String, i64, i64, i64, Option<i64>, i64, i64, i64);

fn from_tuple(t: Tuple) -> HistoryRow {
    HistoryRow {
        kind: t.0,
        key: t.1,
        step: t.2,
        t: t.3,
        running: t.4,
        max: t.5,
        started: t.6,
        finished: t.7,
        failed: t.8,
    }
}

/// Replaces a bucket (a minute written again is the same minute).
const UPSERT: &str = "INSERT INTO history_samples \
    (kind, key, step, t, running, max_runners, started, finished, failed) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT (kind, key, step, t) DO UPDATE SET running = excluded.running, \
    max_runners = excluded.max_runners, started = excluded.started, \
    finished = excluded.finished, failed = excluded.failed";

/// Adds to an hour bucket (the minutes it folds are deleted in the same
/// transaction, so nothing is counted twice).
const MERGE: &str = "INSERT INTO history_samples \
    (kind, key, step, t, running, max_runners, started, finished, failed) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT (kind, key, step, t) DO UPDATE SET \
    running = CASE WHEN excluded.running > history_samples.running \
        THEN excluded.running ELSE history_samples.running END, \
    max_runners = CASE WHEN excluded.max_runners IS NULL OR history_samples.max_runners IS NULL \
        THEN NULL WHEN excluded.max_runners > history_samples.max_runners \
        THEN excluded.max_runners ELSE history_samples.max_runners END, \
    started = history_samples.started + excluded.started, \
    finished = history_samples.finished + excluded.finished, \
    failed = history_samples.failed + excluded.failed";

macro_rules! put_rows {
    ($tx:expr, $sql:expr, $rows:expr) => {
        async {
            for r in $rows {
                sqlx::query($sql)
                    .bind(&r.kind)
                    .bind(&r.key)
                    .bind(r.step)
                    .bind(r.t)
                    .bind(r.running)
                    .bind(r.max)
                    .bind(r.started)
                    .bind(r.finished)
                    .bind(r.failed)
                    .execute(&mut *$tx)
                    .await?;
            }
            Ok::<(), sqlx::Error>(())
        }
    };
}

impl Store {
    /// Writes buckets (upsert: the same bucket again replaces it).
    pub async fn history_put(&self, rows: &[HistoryRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            put_rows!(tx, UPSERT, rows).await?;
            tx.commit().await
        }
        .await)
        .map_err(|e| self.err(e))
    }

    /// Records ended pauses (again: no second row).
    pub async fn history_put_pauses(&self, rows: &[PauseRow]) -> Result<(), StoreError> {
        let sql = "INSERT INTO history_pauses \
            (kind, key, namespace, name, paused_by, from_t, to_t) \
            VALUES ($1, $2, $3, $4, $5, $6, $7) \
            ON CONFLICT (kind, key, namespace, name, from_t) DO UPDATE SET \
            paused_by = excluded.paused_by, to_t = excluded.to_t";
        on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            for r in rows {
                sqlx::query(sql)
                    .bind(&r.kind)
                    .bind(&r.key)
                    .bind(&r.namespace)
                    .bind(&r.name)
                    .bind(&r.by)
                    .bind(r.from)
                    .bind(r.to)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| self.err(e))
    }

    /// The stored buckets of one series from `since` (Unix seconds), in
    /// time order (hour rows before the minute rows that follow them).
    pub async fn history_rows(
        &self,
        kind: &str,
        key: &str,
        since: i64,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let sql = "SELECT kind, key, step, t, running, max_runners, started, finished, failed \
            FROM history_samples \
            WHERE kind = $1 AND key = $2 AND t + step > $3 ORDER BY t, step";
        let rows: Vec<Tuple> = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(kind)
            .bind(key)
            .bind(since)
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(from_tuple).collect())
    }

    /// The pauses of one series that ended at or after `since`.
    pub async fn history_pauses(
        &self,
        kind: &str,
        key: &str,
        since: i64,
    ) -> Result<Vec<PauseRow>, StoreError> {
        let sql = "SELECT kind, key, namespace, name, paused_by, from_t, to_t \
            FROM history_pauses WHERE kind = $1 AND key = $2 AND to_t >= $3 \
            ORDER BY from_t, namespace, name";
        type P = (String, String, String, String, Option<String>, i64, i64);
        let rows: Vec<P> = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(kind)
            .bind(key)
            .bind(since)
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| PauseRow {
                kind: r.0,
                key: r.1,
                namespace: r.2,
                name: r.3,
                by: r.4,
                from: r.5,
                to: r.6,
            })
            .collect())
    }

    /// Folds minute rows older than [`MINUTES_KEPT`] (whole hours) into hour
    /// rows and deletes everything older than [`KEPT`], in one transaction.
    pub async fn history_compact(&self, now: Timestamp) -> Result<Compacted, StoreError> {
        let at = |d: SignedDuration| {
            now.checked_sub(d)
                .map(|t| t.as_second())
                .map_err(|e| StoreError::Usage(format!("history retention: {e}")))
        };
        let fold_before = floor_to(at(MINUTES_KEPT)?, HOUR);
        let drop_before = at(KEPT)?;
        let select = "SELECT kind, key, step, t, running, max_runners, started, finished, failed \
            FROM history_samples WHERE step = $1 AND t < $2 ORDER BY kind, key, t";
        on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            // Expired first, so that nothing about to go is folded.
            let mut deleted = sqlx::query("DELETE FROM history_samples WHERE t < $1")
                .bind(drop_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            deleted += sqlx::query("DELETE FROM history_pauses WHERE to_t < $1")
                .bind(drop_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let old: Vec<Tuple> = sqlx::query_as(select)
                .bind(MINUTE)
                .bind(fold_before)
                .fetch_all(&mut *tx)
                .await?;
            let old: Vec<HistoryRow> = old.into_iter().map(from_tuple).collect();
            let hours = bucket(&old, HOUR);
            put_rows!(tx, MERGE, &hours).await?;
            let folded = sqlx::query("DELETE FROM history_samples WHERE step = $1 AND t < $2")
                .bind(MINUTE)
                .bind(fold_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok::<Compacted, sqlx::Error>(Compacted { folded, deleted })
        }
        .await)
        .map_err(|e| self.err(e))
    }

    /// The right to write the history, when no other replica holds it.
    /// SQLite has one server: always granted.
    pub async fn history_writer(&self) -> Result<Option<HistoryWriter>, StoreError> {
        use sqlx::Connection;
        let crate::Pool::Postgres(p) = &self.pool else {
            return Ok(Some(HistoryWriter { conn: None }));
        };
        let mut conn = sqlx::PgConnection::connect_with(&p.connect_options())
            .await
            .map_err(|e| self.err(e))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(WRITER_LOCK)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| self.err(e))?;
        if got {
            Ok(Some(HistoryWriter { conn: Some(conn) }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: i64, step: i64, running: i64, max: Option<i64>, started: i64) -> HistoryRow {
        HistoryRow {
            kind: "label".into(),
            key: "x".into(),
            step,
            t,
            running,
            max,
            started,
            finished: 0,
            failed: 0,
        }
    }

    #[test]
    fn buckets_keep_peaks_sum_jobs_and_let_unlimited_win() {
        let base = floor_to(1_795_000_000, 3600);
        let rows = [
            row(base, 60, 3, Some(10), 1),
            row(base + 60, 60, 5, Some(10), 2),
            row(base + 300, 60, 1, None, 4),
        ];
        let five = bucket(&rows, 300);
        assert_eq!(five.len(), 2);
        assert_eq!(
            (five[0].running, five[0].max, five[0].started),
            (5, Some(10), 3)
        );
        assert_eq!((five[1].t, five[1].max), (base + 300, None));
        let hour = bucket(&rows, 3600);
        assert_eq!(hour.len(), 1);
        assert_eq!(
            (hour[0].running, hour[0].max, hour[0].started),
            (5, None, 7)
        );
        // A coarse row keeps its own bucket at a finer step.
        let mixed = bucket(&[row(base, 3600, 2, Some(4), 6)], 60);
        assert_eq!((mixed[0].step, mixed[0].t), (3600, base));
        assert!(bucket(&[], 60).is_empty());
    }

    #[test]
    fn floors_are_utc_buckets() {
        let t: Timestamp = "2026-12-01T10:17:42Z".parse().expect("t");
        let at = |s: i64| Timestamp::from_second(s).expect("ts").to_string();
        assert_eq!(at(floor_to(t.as_second(), 60)), "2026-12-01T10:17:00Z");
        assert_eq!(at(floor_to(t.as_second(), 300)), "2026-12-01T10:15:00Z");
        assert_eq!(at(floor_to(t.as_second(), 3600)), "2026-12-01T10:00:00Z");
    }
}
