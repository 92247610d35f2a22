//! Dated, versioned migrations for both backends, applied on open.

use crate::{Store, StoreError, on_pool};

/// `(version, name, SQLite SQL, PostgreSQL SQL)`, oldest first. Versions
/// are the UTC date and time the migration was written.
pub const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        20261201000000,
        "init",
        include_str!("../migrations/sqlite/20261201000000_init.sql"),
        include_str!("../migrations/postgres/20261201000000_init.sql"),
    ),
    (
        20261202000000,
        "sessions",
        include_str!("../migrations/sqlite/20261202000000_sessions.sql"),
        include_str!("../migrations/postgres/20261202000000_sessions.sql"),
    ),
    (
        20261203000000,
        "history",
        include_str!("../migrations/sqlite/20261203000000_history.sql"),
        include_str!("../migrations/postgres/20261203000000_history.sql"),
    ),
];

/// The newest schema this binary knows.
pub const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// A constant key for the PostgreSQL advisory lock: replicas starting at
/// once migrate one after another.
const LOCK_KEY: i64 = 0x666c_7977_6865_656c;

/// Applies `sql` as `version` in one transaction, unless the database is
/// already there; answers the newest version found.
macro_rules! apply {
    ($pool:expr, $lock:expr, $version:expr, $name:expr, $sql:expr) => {
        async {
            let mut tx = $pool.begin().await?;
            if $lock {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
            }
            let newest: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM flywheel_schema")
                    .fetch_one(&mut *tx)
                    .await?;
            let newest = newest.unwrap_or(0);
            if newest >= $version {
                return Ok::<i64, sqlx::Error>(newest);
            }
            sqlx::raw_sql($sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO flywheel_schema (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind($version)
            .bind($name)
            .bind(crate::now().to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok($version)
        }
    };
}

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let create = "CREATE TABLE IF NOT EXISTS flywheel_schema (\
        version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";
    on_pool!(store, |p| sqlx::query(create).execute(p).await.map(|_| ()))
        .map_err(|e| store.err(e))?;
    for (version, name, sqlite, postgres) in MIGRATIONS {
        let newest = match &store.pool {
            crate::Pool::Sqlite(p) => apply!(p, false, *version, *name, *sqlite).await,
            crate::Pool::Postgres(p) => apply!(p, true, *version, *name, *postgres).await,
        }
        .map_err(|e| store.err(e))?;
        // A database migrated by a newer binary is refused before anything
        // else touches it.
        refuse_newer(newest)?;
    }
    let newest: Option<i64> = on_pool!(store, |p| sqlx::query_scalar(
        "SELECT MAX(version) FROM flywheel_schema"
    )
    .fetch_one(p)
    .await)
    .map_err(|e| store.err(e))?;
    refuse_newer(newest.unwrap_or(0))
}

fn refuse_newer(newest: i64) -> Result<(), StoreError> {
    if newest > LATEST_VERSION {
        return Err(StoreError::NewerDatabase {
            found: newest,
            known: LATEST_VERSION,
        });
    }
    Ok(())
}
