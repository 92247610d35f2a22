//! What several commands share: the GitHub client from the environment and
//! the async runtime.

use flywheel_github::{Auth, GitHub, Policy};

/// `GITHUB_API_URL`, or the public API.
pub fn github_api_url() -> String {
    std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| flywheel_github::DEFAULT_API_URL.to_string())
}

/// A GitHub client from `GITHUB_TOKEN`/`GH_TOKEN` or the `GITHUB_APP_*`
/// variables; an error that says what to set when there are none.
pub async fn github_from_env(policy: Policy) -> Result<GitHub, String> {
    let auth = match Auth::from_env(|k| std::env::var(k).ok()) {
        Err(e) => return Err(e.to_string()),
        Ok(None) => {
            return Err("no GitHub credentials: set GITHUB_TOKEN or GH_TOKEN, or GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_PATH".to_string());
        }
        Ok(Some(a)) => a,
    };
    GitHub::connect(&github_api_url(), Some(auth), policy)
        .await
        .map_err(|e| e.message)
}

/// Exit-2 check before anything is sent: a credential variable with a
/// control character would otherwise reach an HTTP header. Never prints it.
pub fn check_credential_env() -> Result<(), String> {
    flywheel_github::check_env(|k| std::env::var(k).ok()).map_err(|e| e.to_string())
}

/// The async runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
