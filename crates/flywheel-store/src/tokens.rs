//! API tokens: `fw_` and 43 URL-safe characters (256 random bits). The
//! store keeps only the SHA-256 of a token; the token itself is shown once.

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Store, StoreError, on_pool};

/// viewer < operator < admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A token as listed: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl TokenInfo {
    /// Usable at `now`: not revoked, not expired.
    pub fn active(&self, now: jiff::Timestamp) -> bool {
        self.revoked_at.is_none()
            && self
                .expires_at
                .as_deref()
                .is_none_or(|e| e.parse::<jiff::Timestamp>().is_ok_and(|e| now < e))
    }
}

/// A freshly created token: `secret` is printed once and never stored.
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: SecretString,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("info", &self.info)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Names: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_token_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `30d`, `12h`, `90m`, `2w` (or any span jiff reads, such as `1 day`) from
/// `now`; `never` for no expiry.
pub fn parse_expiry(s: &str, now: jiff::Timestamp) -> Result<Option<jiff::Timestamp>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let span: jiff::Span = s.parse().map_err(|_| {
        format!("--expires `{s}`: give a duration such as 30d, 12h, 90m or 2w, or `never`")
    })?;
    if span.is_negative() || span.is_zero() {
        return Err(format!("--expires `{s}`: the duration must be positive"));
    }
    now.to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(span)
        .map(|z| Some(z.timestamp()))
        .map_err(|e| format!("--expires `{s}`: {e}"))
}

fn new_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Refused(format!("no system randomness: {e}")))?;
    Ok(format!(
        "fw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

fn info(row: &impl RowGet) -> Result<TokenInfo, sqlx::Error> {
    let role: String = row.text("role")?;
    Ok(TokenInfo {
        name: row.text("name")?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: row.text("created_at")?,
        created_by: row.text("created_by")?,
        expires_at: row.opt_text("expires_at")?,
        revoked_at: row.opt_text("revoked_at")?,
    })
}

/// Column reads that both backends' rows answer.
pub(crate) trait RowGet {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
}

macro_rules! row_get {
    ($row:ty) => {
        impl RowGet for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}
row_get!(sqlx::sqlite::SqliteRow);
row_get!(sqlx::postgres::PgRow);

const COLUMNS: &str = "name, role, created_at, created_by, expires_at, revoked_at";

impl Store {
    /// Creates a token; a name already in use (revoked or not) is refused.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        expires_at: Option<jiff::Timestamp>,
        created_by: &str,
    ) -> Result<NewToken, StoreError> {
        if !valid_token_name(name) {
            return Err(StoreError::Usage(format!(
                "token name `{}`: use 1 to 64 of A-Z a-z 0-9 . _ -",
                name.escape_debug()
            )));
        }
        let secret = new_secret()?;
        let info = TokenInfo {
            name: name.to_string(),
            role,
            created_at: crate::now().to_string(),
            created_by: created_by.to_string(),
            expires_at: expires_at.map(|e| e.to_string()),
            revoked_at: None,
        };
        let sql = "INSERT INTO api_tokens (name, role, token_hash, created_at, created_by, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let hash = hash_token(&secret);
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(&info.name)
            .bind(role.as_str())
            .bind(&hash)
            .bind(&info.created_at)
            .bind(&info.created_by)
            .bind(&info.expires_at)
            .execute(p)
            .await
            .map(|_| ()));
        match r {
            Ok(_) => Ok(NewToken {
                info,
                secret: SecretString::from(secret),
            }),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(StoreError::Refused(
                format!("a token named `{name}` already exists (names are never reused)"),
            )),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Every token, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC, name");
        let rows: Result<Vec<TokenInfo>, sqlx::Error> = on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(p)
                .await
            {
                Ok(rows) => rows.iter().map(info).collect(),
                Err(e) => Err(e),
            }
        });
        rows.map_err(|e| self.err(e))
    }

    /// Revokes by name; `false` when no active token has that name.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";
        let now = crate::now().to_string();
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(&now)
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        r.map(|n| n > 0).map_err(|e| self.err(e))
    }

    /// The token a bearer secret stands for, if it is well formed, known,
    /// not revoked and not expired at `now`.
    pub async fn token_for(
        &self,
        secret: &SecretString,
        now: jiff::Timestamp,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let s = secret.expose_secret();
        let Some(body) = s.strip_prefix("fw_") else {
            return Ok(None);
        };
        if body.len() < 32
            || body.len() > 128
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1");
        let hash = hash_token(s);
        let row: Result<Option<TokenInfo>, sqlx::Error> = on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&hash)
                .fetch_optional(p)
                .await
            {
                Ok(Some(row)) => info(&row).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        Ok(row.map_err(|e| self.err(e))?.filter(|t| t.active(now)))
    }

    /// Whether an admin has ever existed: an admin token (revoked or not;
    /// token rows are never deleted), an admin passkey, or an admin session
    /// (recorded as a fact when it was created, since sessions are deleted).
    pub async fn admin_ever_existed(&self) -> Result<bool, StoreError> {
        let sql = "SELECT (SELECT COUNT(*) FROM api_tokens WHERE role = 'admin') \
                   + (SELECT COUNT(*) FROM passkeys WHERE role = 'admin') AS n";
        let n: Result<i64, sqlx::Error> =
            on_pool!(self, |p| sqlx::query_scalar(sql).fetch_one(p).await);
        Ok(n.map_err(|e| self.err(e))? > 0 || self.admin_seen().await?)
    }
}
