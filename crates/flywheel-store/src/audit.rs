//! The audit log: append-only rows in `audit_records`, each holding the hash
//! of the one before, so an edited or deleted record breaks the chain.
//!
//! Every mutation writes an `intent` first and a `result` after; a caller
//! that cannot write the intent must not mutate (fail closed).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::tokens::RowGet;
use crate::{Store, StoreError, on_pool};

/// The hash the first record points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Intent,
    Result,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Intent => "intent",
            Phase::Result => "result",
        }
    }
}

/// What a caller records.
#[derive(Clone, Debug, Default)]
pub struct NewRecord {
    pub actor: String,
    pub role: String,
    pub auth_method: String,
    pub action: String,
    pub target: String,
    /// `intent` records say `pending`; results `ok`, `failed` or `unknown`.
    pub outcome: String,
    pub request_id: String,
    /// JSON.
    pub before: serde_json::Value,
    /// JSON.
    pub after: serde_json::Value,
}

/// A stored record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub auth_method: String,
    pub action: String,
    pub target: String,
    pub phase: String,
    pub outcome: String,
    pub request_id: String,
    pub before: String,
    pub after: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// SHA-256 over every field but `hash`, as one JSON array.
    pub fn compute_hash(&self) -> String {
        let fields = [
            self.seq.to_string(),
            self.at.clone(),
            self.actor.clone(),
            self.role.clone(),
            self.auth_method.clone(),
            self.action.clone(),
            self.target.clone(),
            self.phase.clone(),
            self.outcome.clone(),
            self.request_id.clone(),
            self.before.clone(),
            self.after.clone(),
            self.prev_hash.clone(),
        ];
        let canonical = serde_json::to_string(&fields).unwrap_or_default();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// Filters for reading the log; all optional, combined with AND.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// Records with `seq` above this (pagination).
    pub after_seq: Option<i64>,
    pub limit: Option<u32>,
}

/// The answer of [`Store::audit_verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub records: u64,
    pub broken: Option<Broken>,
}

/// The first link that does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

/// Key material and tokens never go into the log.
fn holds_secret(s: &str) -> bool {
    let token = s.match_indices("fw_").any(|(i, _)| {
        s[i + 3..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count()
            >= 32
    });
    token || s.contains("PRIVATE KEY")
}

fn record(row: &impl RowGet) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        seq: row.int("seq")?,
        at: row.text("at")?,
        actor: row.text("actor")?,
        role: row.text("role")?,
        auth_method: row.text("auth_method")?,
        action: row.text("action")?,
        target: row.text("target")?,
        phase: row.text("phase")?,
        outcome: row.text("outcome")?,
        request_id: row.text("request_id")?,
        before: row.text("before_state")?,
        after: row.text("after_state")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

const COLUMNS: &str = "seq, at, actor, role, auth_method, action, target, phase, outcome, \
                       request_id, before_state, after_state, prev_hash, hash";

const INSERT: &str = "INSERT INTO audit_records (seq, at, actor, role, auth_method, action, \
    target, phase, outcome, request_id, before_state, after_state, prev_hash, hash) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

const LAST: &str = "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1";

/// Reads the chain head and inserts the next record, on an executor that
/// already holds the append lock.
macro_rules! append_on {
    ($conn:expr, $rec:expr) => {
        async {
            let last: Option<(i64, String)> =
                sqlx::query_as(LAST).fetch_optional(&mut *$conn).await?;
            let (seq, prev) = match last {
                Some((s, h)) => (s + 1, h),
                None => (1, GENESIS.to_string()),
            };
            let mut r: AuditRecord = $rec;
            r.seq = seq;
            r.prev_hash = prev;
            r.hash = r.compute_hash();
            sqlx::query(INSERT)
                .bind(r.seq)
                .bind(&r.at)
                .bind(&r.actor)
                .bind(&r.role)
                .bind(&r.auth_method)
                .bind(&r.action)
                .bind(&r.target)
                .bind(&r.phase)
                .bind(&r.outcome)
                .bind(&r.request_id)
                .bind(&r.before)
                .bind(&r.after)
                .bind(&r.prev_hash)
                .bind(&r.hash)
                .execute(&mut *$conn)
                .await?;
            Ok::<AuditRecord, sqlx::Error>(r)
        }
    };
}

/// What [`Store::audited`] answers: the mutation's own result, and the
/// error when its result record could not be written (the mutation has
/// already happened then; callers warn).
pub struct Audited<T> {
    pub result: T,
    pub unrecorded: Option<StoreError>,
}

/// The outcome word a mutation's result record carries.
pub fn outcome_of<T, E>(r: &Result<T, E>) -> &'static str {
    if r.is_ok() { "ok" } else { "failed" }
}

impl Store {
    /// No audit record, no mutation: writes `rec` as the intent, then runs
    /// `mutation` (a future does nothing until awaited, so it never runs when
    /// the intent cannot be written: that is the `Err`), then writes the
    /// result with the word `outcome` gives.
    pub async fn audited<T>(
        &self,
        rec: NewRecord,
        mutation: impl std::future::Future<Output = T>,
        outcome: impl FnOnce(&T) -> &'static str,
    ) -> Result<Audited<T>, StoreError> {
        self.audit_append(Phase::Intent, &rec).await?;
        let result = mutation.await;
        let rec = NewRecord {
            outcome: outcome(&result).into(),
            ..rec
        };
        let unrecorded = self.audit_append(Phase::Result, &rec).await.err();
        Ok(Audited { result, unrecorded })
    }

    /// Appends one record at the head of the chain. Appends are serialized
    /// (SQLite `BEGIN IMMEDIATE`, PostgreSQL a table lock) so the chain stays
    /// linear across replicas. A record holding a token or key is refused.
    pub async fn audit_append(
        &self,
        phase: Phase,
        rec: &NewRecord,
    ) -> Result<AuditRecord, StoreError> {
        let before = rec.before.to_string();
        let after = rec.after.to_string();
        for field in [
            &rec.actor,
            &rec.action,
            &rec.target,
            &rec.request_id,
            &before,
            &after,
        ] {
            if holds_secret(field) {
                return Err(StoreError::Refused(
                    "an audit record may not hold a token or key material".into(),
                ));
            }
        }
        let draft = AuditRecord {
            seq: 0,
            at: crate::now().to_string(),
            actor: rec.actor.clone(),
            role: rec.role.clone(),
            auth_method: rec.auth_method.clone(),
            action: rec.action.clone(),
            target: rec.target.clone(),
            phase: phase.as_str().to_string(),
            outcome: rec.outcome.clone(),
            request_id: rec.request_id.clone(),
            before,
            after,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let r = match &self.pool {
            crate::Pool::Sqlite(p) => {
                let mut conn = p.acquire().await.map_err(|e| self.err(e))?;
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| self.err(e))?;
                match append_on!(conn, draft).await {
                    Ok(r) => sqlx::raw_sql("COMMIT").execute(&mut *conn).await.map(|_| r),
                    Err(e) => {
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                        Err(e)
                    }
                }
            }
            crate::Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    sqlx::query("LOCK TABLE audit_records IN SHARE ROW EXCLUSIVE MODE")
                        .execute(&mut *tx)
                        .await?;
                    let r = append_on!(tx, draft).await?;
                    tx.commit().await?;
                    Ok(r)
                }
                .await
            }
        };
        r.map_err(|e| self.err(e))
    }

    /// Records in `seq` order, filtered.
    pub async fn audit_records(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_records WHERE seq > $1");
        let mut binds: Vec<String> = Vec::new();
        let mut add = |sql: &mut String, col: &str, op: &str, v: &Option<String>| {
            if let Some(v) = v {
                binds.push(v.clone());
                sql.push_str(&format!(" AND {col} {op} ${}", binds.len() + 1));
            }
        };
        add(&mut sql, "actor", "=", &f.actor);
        add(&mut sql, "action", "=", &f.action);
        add(&mut sql, "target", "=", &f.target);
        add(&mut sql, "at", ">=", &f.since);
        add(&mut sql, "at", "<", &f.until);
        sql.push_str(&format!(
            " ORDER BY seq LIMIT {}",
            f.limit.unwrap_or(1000).clamp(1, 10_000)
        ));
        let after = f.after_seq.unwrap_or(0);
        let rows: Result<Vec<AuditRecord>, sqlx::Error> = on_pool!(self, |p| {
            // Only column names and `$n` come from code; values are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(after);
            for b in &binds {
                q = q.bind(b);
            }
            match q.fetch_all(p).await {
                Ok(rows) => rows.iter().map(record).collect(),
                Err(e) => Err(e),
            }
        });
        rows.map_err(|e| self.err(e))
    }

    /// Walks the whole chain: sequence numbers without gaps from 1, each
    /// record's `prev_hash` equal to the hash before it, each hash
    /// recomputed. Names the first link that does not hold.
    pub async fn audit_verify(&self) -> Result<Verification, StoreError> {
        let mut prev_hash = GENESIS.to_string();
        let mut expected = 1i64;
        let mut count = 0u64;
        loop {
            let page = self
                .audit_records(&AuditFilter {
                    after_seq: Some(expected - 1),
                    limit: Some(5000),
                    ..AuditFilter::default()
                })
                .await?;
            if page.is_empty() {
                return Ok(Verification {
                    records: count,
                    broken: None,
                });
            }
            for r in page {
                let broken = |reason: String| {
                    Ok(Verification {
                        records: count,
                        broken: Some(Broken { seq: r.seq, reason }),
                    })
                };
                if r.seq != expected {
                    return broken(format!(
                        "record {} follows record {}: record {} is missing",
                        r.seq,
                        expected - 1,
                        expected
                    ));
                }
                if r.prev_hash != prev_hash {
                    return broken(format!(
                        "record {} does not point at the hash of record {}",
                        r.seq,
                        r.seq - 1
                    ));
                }
                if r.compute_hash() != r.hash {
                    return broken(format!(
                        "record {} was changed after it was written (its hash does not match)",
                        r.seq
                    ));
                }
                prev_hash = r.hash.clone();
                expected += 1;
                count += 1;
            }
        }
    }
}
