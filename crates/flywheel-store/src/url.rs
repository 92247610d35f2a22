//! Database URLs: the default location, SQLite paths, redaction.

use crate::StoreError;

/// `$XDG_DATA_HOME/flywheel/flywheel.db` (a relative `XDG_DATA_HOME` is
/// ignored, as the XDG spec says), else `~/.local/share/flywheel/flywheel.db`.
pub fn default_url() -> Result<String, StoreError> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(std::path::PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/share"))
        })
        .ok_or_else(|| {
            StoreError::Usage(
                "no data directory: set XDG_DATA_HOME or HOME, or pass --database-url".into(),
            )
        })?;
    Ok(format!(
        "sqlite://{}",
        base.join("flywheel/flywheel.db").display()
    ))
}

/// The file of an SQLite URL (`sqlite://PATH`, `sqlite:PATH`).
pub(crate) fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| path.to_string())
}

/// The URL with the password of `user:password@` (and a `password=` query
/// parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let url = &redact_query(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}

fn redact_query(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", parts.join("&"))
}
