//! GitHub reads for flywheel, through octocrab.
//!
//! octocrab does the authentication (a token, or a GitHub App's JWT and one
//! installation-token exchange per run); responses are read into the small
//! structs below, which carry only what flywheel uses. Every read is a GET:
//! this crate has no call that changes anything on GitHub.
//!
//! Reads retry 5xx answers and connection errors a bounded number of times
//! with backoff, and wait out rate limits (403/429 with `retry-after` or
//! `x-ratelimit-reset`) only while the run's time budget allows; past it the
//! read fails with [`ErrorKind::RateLimited`] so the caller can say `unknown`.

mod auth;
mod client;
mod types;

pub use auth::{Auth, AuthError, CREDENTIAL_VARS, SHOWN_PREFIX, check_env, shown, shown_path};
pub use client::{Error, ErrorKind, GitHub, MAX_BODY, Policy};
pub use types::{Repository, WorkflowRun};

/// Installs rustls' ring provider as the process default. Call once at
/// process start (and in every test binary); later calls do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The public API, used when `GITHUB_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
