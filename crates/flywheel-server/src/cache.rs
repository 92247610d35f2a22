//! A small in-process cache of token and session lookups, so that the
//! authentication check costs no database round trip on a busy route.
//!
//! Entries live [`TTL`] at most: a revoke or sign-out made by another
//! process or replica reaches this one within that time; one made through
//! this server drops the entry at once. Only hits are cached (an unknown
//! secret always asks the store), keys are SHA-256 hashes of the secrets,
//! and the cache is bounded: past [`MAX_ENTRIES`] it starts over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flywheel_store::{Session, TokenInfo, hash_token};
use secrecy::{ExposeSecret, SecretString};

/// How long a cached lookup is believed.
pub const TTL: Duration = Duration::from_secs(2);
/// The most entries kept per kind.
pub const MAX_ENTRIES: usize = 10_000;

struct Shelf<T> {
    entries: Mutex<HashMap<String, (T, Instant)>>,
}

impl<T: Clone> Shelf<T> {
    fn new() -> Self {
        Shelf {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<T> {
        let map = self.entries.lock().ok()?;
        map.get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(v, _)| v.clone())
    }

    fn put(&self, key: String, value: T) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, (value, Instant::now()));
        }
    }

    fn remove(&self, key: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(key);
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }
}

/// Cached token and session lookups.
pub struct AuthCache {
    tokens: Shelf<TokenInfo>,
    sessions: Shelf<Session>,
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache {
            tokens: Shelf::new(),
            sessions: Shelf::new(),
        }
    }
}

pub fn key(secret: &SecretString) -> String {
    hash_token(secret.expose_secret())
}

impl AuthCache {
    pub fn token(&self, key: &str) -> Option<TokenInfo> {
        self.tokens.get(key)
    }

    pub fn put_token(&self, key: String, t: TokenInfo) {
        self.tokens.put(key, t);
    }

    /// After a revoke through this server: every cached token is dropped
    /// (revokes are rare; the name-to-hash mapping is not kept).
    pub fn forget_tokens(&self) {
        self.tokens.clear();
    }

    pub fn session(&self, key: &str) -> Option<Session> {
        self.sessions.get(key)
    }

    pub fn put_session(&self, key: String, s: Session) {
        self.sessions.put(key, s);
    }

    pub fn forget_session(&self, id: &SecretString) {
        self.sessions.remove(&key(id));
    }
}
