//! Interactive sign-in state: server-side sessions, passkeys, single-use
//! challenges (OIDC state and nonce, WebAuthn ceremonies, the bootstrap
//! sign-in), and facts that outlive the rows that set them.
//!
//! Secrets the browser holds (a session id, a challenge id) are random 256
//! bits; the store keeps only their SHA-256, so a copy of the database signs
//! no one in. Times are stored as RFC 3339 UTC to the second, so that the
//! text compares in time order on both backends.

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::tokens::{RowGet, hash_token};
use crate::{Role, Store, StoreError, on_pool};

/// A time as stored: RFC 3339, UTC, whole seconds (fixed width).
pub fn stamp(t: jiff::Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

fn parse_stamp(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// 256 random bits, URL-safe.
pub fn random_id() -> Result<SecretString, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Refused(format!("no system randomness: {e}")))?;
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

/// Whether `s` looks like an id [`random_id`] made (43 URL-safe characters);
/// anything else is answered without a database query.
fn well_formed(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How long a session lives: idle (since last seen) and absolute (since
/// sign-in).
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    pub idle: jiff::SignedDuration,
    pub absolute: jiff::SignedDuration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: jiff::SignedDuration::from_hours(8),
            absolute: jiff::SignedDuration::from_hours(24 * 7),
        }
    }
}

/// Who a new session is for.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub identity: String,
    pub groups: Vec<String>,
    pub role: Role,
    /// `oidc`, `passkey` or `bootstrap`.
    pub method: String,
}

/// A live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub identity: String,
    pub groups: Vec<String>,
    pub role: Role,
    pub method: String,
    /// The per-session CSRF token forms and htmx requests carry.
    pub csrf: String,
    pub created_at: jiff::Timestamp,
    pub last_seen_at: jiff::Timestamp,
    /// Absolute expiry.
    pub expires_at: jiff::Timestamp,
}

/// A registered passkey (the credential itself is the JSON webauthn-rs
/// serializes; it holds a public key only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRow {
    pub credential_id: String,
    pub identity: String,
    pub name: String,
    pub role: Role,
    pub passkey: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// Last-seen times are written at most this often per session, so that a
/// busy browser does not turn every read into a write.
const TOUCH_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// The fact set once an admin has signed in.
const ADMIN_SEEN: &str = "admin_seen";

fn session_row(row: &impl RowGet) -> Result<Session, sqlx::Error> {
    let role: String = row.text("role")?;
    Ok(Session {
        identity: row.text("identity")?,
        groups: serde_json::from_str(&row.text("groups")?).unwrap_or_default(),
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        method: row.text("auth_method")?,
        csrf: row.text("csrf_token")?,
        created_at: parse_stamp(&row.text("created_at")?),
        last_seen_at: parse_stamp(&row.text("last_seen_at")?),
        expires_at: parse_stamp(&row.text("expires_at")?),
    })
}

fn passkey_row(row: &impl RowGet) -> Result<PasskeyRow, sqlx::Error> {
    let role: String = row.text("role")?;
    Ok(PasskeyRow {
        credential_id: row.text("credential_id")?,
        identity: row.text("identity")?,
        name: row.text("name")?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        passkey: row.text("passkey")?,
        created_at: row.text("created_at")?,
        last_used_at: row.opt_text("last_used_at")?,
    })
}

const SESSION_COLUMNS: &str =
    "identity, groups, role, auth_method, csrf_token, created_at, last_seen_at, expires_at";
const PASSKEY_COLUMNS: &str =
    "credential_id, identity, name, role, passkey, created_at, last_used_at";

impl Store {
    /// Signs someone in: a new session with a fresh id (the caller deletes
    /// any session the browser already had: ids rotate on sign-in).
    pub async fn create_session(
        &self,
        new: &NewSession,
        limits: SessionLimits,
        now: jiff::Timestamp,
    ) -> Result<(SecretString, Session), StoreError> {
        let id = random_id()?;
        let csrf = random_id()?;
        let expires_at = now
            .checked_add(limits.absolute)
            .map_err(|e| StoreError::Usage(format!("session lifetime: {e}")))?;
        let session = Session {
            identity: new.identity.clone(),
            groups: new.groups.clone(),
            role: new.role,
            method: new.method.clone(),
            csrf: csrf.expose_secret().to_string(),
            created_at: now,
            last_seen_at: now,
            expires_at,
        };
        let sql = "INSERT INTO sessions (id_hash, identity, groups, role, auth_method, csrf_token, \
                   created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let groups = serde_json::to_string(&new.groups).unwrap_or_else(|_| "[]".into());
        on_pool!(self, |p| sqlx::query(sql)
            .bind(hash_token(id.expose_secret()))
            .bind(&session.identity)
            .bind(&groups)
            .bind(session.role.as_str())
            .bind(&session.method)
            .bind(&session.csrf)
            .bind(stamp(now))
            .bind(stamp(now))
            .bind(stamp(expires_at))
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))?;
        if new.role == Role::Admin {
            self.set_fact(ADMIN_SEEN, &new.identity).await?;
        }
        Ok((id, session))
    }

    /// The live session an id stands for: `None` when unknown, past its
    /// absolute expiry, or idle too long (an expired row is deleted).
    pub async fn session_for(
        &self,
        id: &SecretString,
        limits: SessionLimits,
        now: jiff::Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        if !well_formed(id.expose_secret()) {
            return Ok(None);
        }
        let hash = hash_token(id.expose_secret());
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1");
        let row: Result<Option<Session>, sqlx::Error> = on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&hash)
                .fetch_optional(p)
                .await
            {
                Ok(Some(r)) => session_row(&r).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let Some(mut s) = row.map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let idle_end = s.last_seen_at.checked_add(limits.idle).unwrap_or(now);
        if now >= s.expires_at || now >= idle_end {
            self.delete_session_hash(&hash).await?;
            return Ok(None);
        }
        if now.duration_since(s.last_seen_at) >= TOUCH_EVERY {
            let sql = "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2";
            on_pool!(self, |p| sqlx::query(sql)
                .bind(stamp(now))
                .bind(&hash)
                .execute(p)
                .await
                .map(|_| ()))
            .map_err(|e| self.err(e))?;
            s.last_seen_at = now;
        }
        Ok(Some(s))
    }

    /// Signs a session out; `false` when there was none.
    pub async fn delete_session(&self, id: &SecretString) -> Result<bool, StoreError> {
        if !well_formed(id.expose_secret()) {
            return Ok(false);
        }
        self.delete_session_hash(&hash_token(id.expose_secret()))
            .await
    }

    async fn delete_session_hash(&self, hash: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM sessions WHERE id_hash = $1";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(hash)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
        .map_err(|e| self.err(e))
    }

    /// Sessions not past their absolute expiry (for `/metrics`).
    pub async fn active_sessions(&self, now: jiff::Timestamp) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM sessions WHERE expires_at > $1";
        on_pool!(self, |p| sqlx::query_scalar(sql)
            .bind(stamp(now))
            .fetch_one(p)
            .await)
        .map_err(|e| self.err(e))
    }

    /// Deletes expired sessions and challenges; answers how many went.
    pub async fn purge_expired(&self, now: jiff::Timestamp) -> Result<u64, StoreError> {
        let t = stamp(now);
        let mut n = 0;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM auth_challenges WHERE expires_at <= $1",
        ] {
            n += on_pool!(self, |p| sqlx::query(sql)
                .bind(&t)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    /// Keeps `data` for one later [`Store::take_challenge`] of the same
    /// `kind` within `ttl`; answers the id to hand out.
    pub async fn put_challenge(
        &self,
        kind: &str,
        data: &str,
        ttl: jiff::SignedDuration,
        now: jiff::Timestamp,
    ) -> Result<SecretString, StoreError> {
        let id = random_id()?;
        self.put_challenge_as(kind, &id, data, ttl, now).await?;
        Ok(id)
    }

    /// [`Store::put_challenge`] under an id the caller made with
    /// [`random_id`] (when the id must be known before the data is: an
    /// OIDC `state` is both the id and part of the data's making).
    pub async fn put_challenge_as(
        &self,
        kind: &str,
        id: &SecretString,
        data: &str,
        ttl: jiff::SignedDuration,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        if !well_formed(id.expose_secret()) {
            return Err(StoreError::Usage(
                "a challenge id must come from random_id".into(),
            ));
        }
        let expires = now
            .checked_add(ttl)
            .map_err(|e| StoreError::Usage(format!("challenge lifetime: {e}")))?;
        let sql =
            "INSERT INTO auth_challenges (id_hash, kind, data, expires_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(hash_token(id.expose_secret()))
            .bind(kind)
            .bind(data)
            .bind(stamp(expires))
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Takes a challenge: at most once (the row is deleted in the same
    /// statement that reads it), only for its own `kind`, only before it
    /// expires.
    pub async fn take_challenge(
        &self,
        kind: &str,
        id: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<String>, StoreError> {
        if !well_formed(id) {
            return Ok(None);
        }
        let sql = "DELETE FROM auth_challenges WHERE id_hash = $1 AND kind = $2 \
                   RETURNING data, expires_at";
        let row: Result<Option<(String, String)>, sqlx::Error> = on_pool!(self, |p| {
            sqlx::query_as::<_, (String, String)>(sql)
                .bind(hash_token(id))
                .bind(kind)
                .fetch_optional(p)
                .await
        });
        Ok(row
            .map_err(|e| self.err(e))?
            .filter(|(_, expires)| parse_stamp(expires) > now)
            .map(|(data, _)| data))
    }

    /// Records a fact once (later calls keep the first value).
    pub async fn set_fact(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO store_facts (name, value, set_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (name) DO NOTHING";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(name)
            .bind(value)
            .bind(stamp(crate::now()))
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// A fact's value, if it was ever set.
    pub async fn fact(&self, name: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT value FROM store_facts WHERE name = $1";
        on_pool!(self, |p| sqlx::query_scalar(sql)
            .bind(name)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))
    }

    pub(crate) async fn admin_seen(&self) -> Result<bool, StoreError> {
        let sql = "SELECT COUNT(*) FROM store_facts WHERE name = $1";
        let n: i64 = on_pool!(self, |p| sqlx::query_scalar(sql)
            .bind(ADMIN_SEEN)
            .fetch_one(p)
            .await)
        .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Stores a new passkey; an admin's passkey marks that an admin exists.
    pub async fn add_passkey(&self, row: &PasskeyRow) -> Result<(), StoreError> {
        let sql = "INSERT INTO passkeys (credential_id, identity, name, role, passkey, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let r = on_pool!(self, |p| sqlx::query(sql)
            .bind(&row.credential_id)
            .bind(&row.identity)
            .bind(&row.name)
            .bind(row.role.as_str())
            .bind(&row.passkey)
            .bind(&row.created_at)
            .execute(p)
            .await
            .map(|_| ()));
        match r {
            Ok(()) => {}
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(StoreError::Refused(
                    "this passkey is already registered".into(),
                ));
            }
            Err(e) => return Err(self.err(e)),
        }
        if row.role == Role::Admin {
            self.set_fact(ADMIN_SEEN, &row.identity).await?;
        }
        Ok(())
    }

    /// The passkeys of one identity, oldest first.
    pub async fn passkeys_of(&self, identity: &str) -> Result<Vec<PasskeyRow>, StoreError> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE identity = $1 ORDER BY created_at, credential_id"
        );
        let rows: Result<Vec<PasskeyRow>, sqlx::Error> = on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(identity)
                .fetch_all(p)
                .await
            {
                Ok(rows) => rows.iter().map(passkey_row).collect(),
                Err(e) => Err(e),
            }
        });
        rows.map_err(|e| self.err(e))
    }

    /// The passkey with this credential id, whoever owns it.
    pub async fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRow>, StoreError> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
        let row: Result<Option<PasskeyRow>, sqlx::Error> = on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(credential_id)
                .fetch_optional(p)
                .await
            {
                Ok(Some(r)) => passkey_row(&r).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        row.map_err(|e| self.err(e))
    }

    /// Saves a passkey's state after a sign-in (its signature counter).
    pub async fn touch_passkey(
        &self,
        credential_id: &str,
        passkey: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE credential_id = $3";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(passkey)
            .bind(stamp(now))
            .bind(credential_id)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Deletes one of `identity`'s passkeys; `false` when it has none with
    /// that id (someone else's passkey is never deleted).
    pub async fn delete_passkey(
        &self,
        identity: &str,
        credential_id: &str,
    ) -> Result<bool, StoreError> {
        let sql = "DELETE FROM passkeys WHERE identity = $1 AND credential_id = $2";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(identity)
            .bind(credential_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
        .map_err(|e| self.err(e))
    }
}
