//! The store behind `flywheel serve` and the command-line mutations: API
//! tokens, sessions, passkeys, the append-only, hash-chained audit log, and
//! the fleet's history (per-minute samples per label and owner).
//!
//! One [`Store`] over either an embedded SQLite file (the default, WAL mode)
//! or PostgreSQL (several replicas sharing one database). The two backends
//! are separate sqlx drivers (not the `Any` driver), with their own dated
//! migrations in `migrations/{sqlite,postgres}/`; [`Store::open`] applies the
//! missing ones and refuses a database that a newer flywheel has migrated.

mod audit;
mod history;
mod migrate;
mod sessions;
mod tokens;
mod url;

pub use audit::{
    AuditFilter, AuditRecord, Audited, Broken, NewRecord, Phase, Verification, outcome_of,
};
pub use history::{
    Compacted, HOUR, HistoryRow, HistoryWriter, KEPT, MINUTE, MINUTES_KEPT, PauseRow, bucket,
    floor_to,
};
pub use migrate::{LATEST_VERSION, MIGRATIONS};
pub use sessions::{NewSession, PasskeyRow, Session, SessionLimits, random_id, stamp};
pub use tokens::{NewToken, Role, TokenInfo, hash_token, parse_expiry, valid_token_name};
pub use url::{default_url, redact_url};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Everything that can go wrong in the store, in words a person can act on.
/// Messages never hold a password, a token or a key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Usage(String),
    #[error(
        "the database is at schema version {found}, newer than this flywheel knows ({known}): \
         upgrade flywheel, or point it at another database"
    )]
    NewerDatabase { found: i64, known: i64 },
    #[error("database {url}: {message}")]
    Database { url: String, message: String },
    #[error("{0}")]
    Refused(String),
}

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connected, migrated store.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// The URL with any password removed, for messages.
    pub(crate) shown: String,
}

/// Runs `$body` with `$p` bound to whichever pool the store has: the same
/// SQL (written with `$1, $2, ...` in order of first use) runs on both.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Opens (creating an SQLite file when missing) and migrates.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let db = |e: sqlx::Error| StoreError::Database {
            url: shown.clone(),
            message: describe(&e),
        };
        let pool = if let Some(path) = url::sqlite_path(url) {
            if let Some(parent) = std::path::Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Database {
                    url: shown.clone(),
                    message: format!("cannot create {}: {e}", parent.display()),
                })?;
            }
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
                .map_err(db)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await
                    .map_err(db)?,
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(db)?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(db)?,
            )
        } else {
            return Err(StoreError::Usage(format!(
                "{shown}: not a database URL flywheel knows: use sqlite://PATH or postgres://USER@HOST/DB"
            )));
        };
        let store = Store { pool, shown };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL, password removed.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await);
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::Database {
            url: self.shown.clone(),
            message: describe(&e),
        }
    }
}

/// sqlx errors in words; never the connection string.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::PoolTimedOut => "no connection within 10 s (is the database up?)".into(),
        sqlx::Error::Io(io) => format!("cannot reach the database: {io}"),
        sqlx::Error::Configuration(c) => {
            format!("bad database URL: {}", redact_url(&c.to_string()))
        }
        other => redact_url(&other.to_string()),
    }
}

/// The current time as stored (RFC 3339, UTC).
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}
