use std::path::PathBuf;

use secrecy::SecretString;

/// How flywheel authenticates to GitHub.
pub enum Auth {
    /// `GITHUB_TOKEN` or `GH_TOKEN`.
    Token(SecretString),
    /// A GitHub App installation: one JWT-signed token exchange per run.
    App {
        app_id: u64,
        installation_id: u64,
        private_key: SecretString,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(<redacted>)"),
            Auth::App {
                app_id,
                installation_id,
                ..
            } => write!(
                f,
                "Auth::App {{ app_id: {app_id}, installation_id: {installation_id}, private_key: <redacted> }}"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "{name} contains a control character (a line break or the like); set it again without one (the value is not shown)"
    )]
    ControlCharacter { name: &'static str },
    #[error("{name} must be a number, got {}", shown(value))]
    NotANumber { name: &'static str, value: String },
    #[error(
        "GitHub App credentials are incomplete: {missing} not set (set GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_PATH)"
    )]
    Incomplete { missing: String },
    #[error(
        "cannot read GITHUB_APP_PRIVATE_KEY_PATH {}: {error}",
        shown_path(path)
    )]
    KeyFile {
        path: PathBuf,
        /// What the bounded reader found (never the file's content).
        error: String,
    },
}

/// How many characters of a wrong environment value are ever shown.
pub const SHOWN_PREFIX: usize = 4;

/// An environment value as it may be printed: a short value (up to
/// [`SHOWN_PREFIX`] characters) whole, a longer one only by its first
/// [`SHOWN_PREFIX`] characters and its length. Anything longer could be a
/// secret pasted into the wrong variable, so more is never shown.
pub fn shown(value: &str) -> String {
    let v = value.trim();
    let n = v.chars().count();
    let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic());
    if n <= SHOWN_PREFIX && printable(v) {
        format!("`{v}`")
    } else {
        let prefix: String = v.chars().take(SHOWN_PREFIX).collect();
        if printable(&prefix) {
            format!("`{prefix}…` ({n} characters, the rest not shown)")
        } else {
            format!("a value of {n} characters that is not shown")
        }
    }
}

/// The variables flywheel reads credentials from.
pub const CREDENTIAL_VARS: [&str; 5] = [
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_APP_ID",
    "GITHUB_APP_INSTALLATION_ID",
    "GITHUB_APP_PRIVATE_KEY_PATH",
];

/// Refuses a credential variable holding a control character (a token with
/// a line break in it would otherwise reach an HTTP header). Surrounding
/// whitespace, which is trimmed, is allowed.
pub fn check_env(get: impl Fn(&str) -> Option<String>) -> Result<(), AuthError> {
    for name in CREDENTIAL_VARS {
        if get(name).is_some_and(|v| v.trim().chars().any(char::is_control)) {
            return Err(AuthError::ControlCharacter { name });
        }
    }
    Ok(())
}

/// A key path as it may be printed: a value holding key material instead of
/// a path is never echoed.
pub fn shown_path(path: &std::path::Path) -> String {
    let s = path.to_string_lossy();
    if s.contains("-----BEGIN") || s.contains('\n') || s.len() > 1024 {
        "(the variable holds key material, not a path to a key file)".to_string()
    } else {
        s.to_string()
    }
}

impl Auth {
    /// Credentials from the environment, as operators already set them:
    /// `GITHUB_TOKEN` or `GH_TOKEN`, else the three `GITHUB_APP_*` values.
    /// `Ok(None)` when none is set.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Auth>, AuthError> {
        check_env(&get)?;
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        if let Some(t) = get("GITHUB_TOKEN").or_else(|| get("GH_TOKEN")) {
            return Ok(Some(Auth::Token(SecretString::from(t.trim().to_string()))));
        }
        let names = [
            "GITHUB_APP_ID",
            "GITHUB_APP_INSTALLATION_ID",
            "GITHUB_APP_PRIVATE_KEY_PATH",
        ];
        let values: Vec<Option<String>> = names.iter().map(|n| get(n)).collect();
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        let [Some(id), Some(inst), Some(path)] =
            <[Option<String>; 3]>::try_from(values).unwrap_or([None, None, None])
        else {
            return Err(AuthError::Incomplete {
                missing: missing.join(", "),
            });
        };
        let number = |name: &'static str, v: &str| {
            v.trim().parse::<u64>().map_err(|_| AuthError::NotANumber {
                name,
                value: v.to_string(),
            })
        };
        let path = PathBuf::from(path);
        let key = flywheel_fs::read(&path, flywheel_fs::Kind::KeyFile).map_err(|e| {
            AuthError::KeyFile {
                path: path.clone(),
                error: e.reason(),
            }
        })?;
        Ok(Some(Auth::App {
            app_id: number("GITHUB_APP_ID", &id)?,
            installation_id: number("GITHUB_APP_INSTALLATION_ID", &inst)?,
            private_key: SecretString::from(key),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn token_wins_and_is_never_printed() {
        let a = Auth::from_env(env(&[("GH_TOKEN", "ghp_secretvalue")]))
            .expect("ok")
            .expect("some");
        assert!(matches!(a, Auth::Token(_)));
        assert!(!format!("{a:?}").contains("ghp_secretvalue"));
    }

    #[test]
    fn partial_app_credentials_name_what_is_missing() {
        let e = Auth::from_env(env(&[("GITHUB_APP_ID", "1")])).expect_err("incomplete");
        let s = e.to_string();
        assert!(
            s.contains("GITHUB_APP_INSTALLATION_ID") && s.contains("GITHUB_APP_PRIVATE_KEY_PATH"),
            "{s}"
        );
    }

    #[test]
    fn a_control_character_is_refused_by_name_and_never_shown() {
        for name in CREDENTIAL_VARS {
            let e = Auth::from_env(env(&[(name, "ghp_secret\nvalue")])).expect_err("control");
            let s = e.to_string();
            assert!(
                s.starts_with(&format!("{name} contains a control character")),
                "{s}"
            );
            assert!(!s.contains("ghp_secret"), "{s}");
        }
        // A trailing newline (`$(cat token)`) is trimmed, not refused.
        assert!(
            Auth::from_env(env(&[("GITHUB_TOKEN", "ghp_value\n")]))
                .expect("ok")
                .is_some()
        );
    }

    #[test]
    fn only_a_fixed_prefix_of_a_wrong_value_is_shown() {
        assert_eq!(shown("12a"), "`12a`");
        let s = shown("ghp_0123456789abcdef");
        assert!(s.starts_with("`ghp_…` (20 characters"), "{s}");
        assert!(!shown("abcdefghijklmnop").contains("efgh"));
        assert!(!shown("\u{1b}[31mXYZWVU").contains("XYZ"));
    }

    #[test]
    fn nothing_set_is_none() {
        assert!(
            Auth::from_env(env(&[("GITHUB_TOKEN", " ")]))
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn app_credentials_read_the_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "-----BEGIN RSA PRIVATE KEY-----\nxyz\n").expect("write");
        let key = key.to_string_lossy().to_string();
        let a = Auth::from_env(env(&[
            ("GITHUB_APP_ID", "12"),
            ("GITHUB_APP_INSTALLATION_ID", "34"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", &key),
        ]))
        .expect("ok")
        .expect("some");
        assert!(matches!(
            a,
            Auth::App {
                app_id: 12,
                installation_id: 34,
                ..
            }
        ));
        assert!(!format!("{a:?}").contains("xyz"));
        let pem =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretmaterial\n-----END RSA PRIVATE KEY-----";
        let e = Auth::from_env(env(&[
            ("GITHUB_APP_ID", "1"),
            ("GITHUB_APP_INSTALLATION_ID", "2"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", pem),
        ]))
        .expect_err("a key is not a path");
        assert!(!e.to_string().contains("secretmaterial"), "{e}");
        let e = Auth::from_env(env(&[
            ("GITHUB_APP_ID", "ghp_0123456789abcdef0123456789abcdef0123"),
            ("GITHUB_APP_INSTALLATION_ID", "34"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", &key),
        ]))
        .expect_err("a token is not an id");
        assert!(!e.to_string().contains("ghp_0123"), "{e}");
        let e = Auth::from_env(env(&[
            ("GITHUB_APP_ID", "twelve"),
            ("GITHUB_APP_INSTALLATION_ID", "34"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", &key),
        ]))
        .expect_err("not a number");
        assert!(e.to_string().contains("GITHUB_APP_ID"));
    }
}
