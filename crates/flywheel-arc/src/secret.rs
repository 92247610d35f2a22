//! The ARC GitHub App secret: `github_app_id`, `github_app_installation_id`,
//! `github_app_private_key`, the same in `arc-systems` and `arc-runners`.

use std::path::{Path, PathBuf};

use octocrab::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The namespaces the secret goes into, in this order.
pub const NAMESPACES: [&str; 2] = ["arc-systems", "arc-runners"];

/// Validated App credentials. `Debug` never shows the key.
pub struct AppCredentials {
    pub app_id: u64,
    pub installation_id: u64,
    pub key_path: PathBuf,
    private_key: SecretString,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AppCredentials {{ app_id: {}, installation_id: {}, key_path: {:?}, private_key: {} }}",
            self.app_id,
            self.installation_id,
            self.key_path,
            self.redacted_key()
        )
    }
}

impl AppCredentials {
    pub fn private_key(&self) -> &SecretString {
        &self.private_key
    }

    /// `<redacted sha256:…>`: tells two keys apart without showing either.
    pub fn redacted_key(&self) -> String {
        let digest = Sha256::digest(self.private_key.expose_secret().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("<redacted sha256:{hex}>")
    }
}

/// Loads and validates the three `GITHUB_APP_*` values. Returns warnings
/// (a key file readable by others) next to the credentials. Errors name the
/// variable or file, never key content.
pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<(AppCredentials, Vec<String>), String> {
    let var = |name: &str| {
        get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{name} is not set (the ARC secret needs GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_PATH)"))
    };
    let positive = |name: &str| -> Result<u64, String> {
        let v = var(name)?;
        match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{name} must be a positive integer, got {}",
                flywheel_github::shown(&v)
            )),
        }
    };
    let app_id = positive("GITHUB_APP_ID")?;
    let installation_id = positive("GITHUB_APP_INSTALLATION_ID")?;
    let key_path = PathBuf::from(var("GITHUB_APP_PRIVATE_KEY_PATH")?);
    let key = flywheel_fs::read(&key_path, flywheel_fs::Kind::KeyFile).map_err(|e| {
        format!(
            "GITHUB_APP_PRIVATE_KEY_PATH {}: {}",
            flywheel_github::shown_path(&key_path),
            e.reason()
        )
    })?;
    validate_key(&key_path, &key)?;
    let mut warnings = Vec::new();
    if let Some(mode) = loose_mode(&key_path) {
        warnings.push(format!(
            "{} is readable by group or others (mode {mode:o}); chmod 600 it",
            flywheel_github::shown_path(&key_path)
        ));
    }
    Ok((
        AppCredentials {
            app_id,
            installation_id,
            key_path,
            private_key: SecretString::from(key),
        },
        warnings,
    ))
}

#[cfg(unix)]
fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_: &Path) -> Option<u32> {
    None
}

/// An RSA private key in PEM, PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8
/// (`PRIVATE KEY`), proven by signing an RS256 token with it.
pub fn validate_key(path: &Path, key: &str) -> Result<(), String> {
    let label = key.lines().map(str::trim).find_map(|l| {
        l.strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
    });
    let what = format!(
        "GITHUB_APP_PRIVATE_KEY_PATH {}",
        flywheel_github::shown_path(path)
    );
    match label {
        Some("RSA PRIVATE KEY" | "PRIVATE KEY") => {}
        Some(other) => {
            return Err(format!(
                "{what}: holds a `{other}` block, not an RSA private key in PEM (PKCS#1 or PKCS#8); download the App's private key from its settings page"
            ));
        }
        None => {
            return Err(format!(
                "{what}: not a PEM file (no -----BEGIN ...----- line)"
            ));
        }
    }
    let encoding = EncodingKey::from_rsa_pem(key.as_bytes())
        .map_err(|_| format!("{what}: the PEM block is not a readable RSA private key"))?;
    #[derive(serde::Serialize)]
    struct Probe {
        iss: String,
        iat: u64,
        exp: u64,
    }
    let probe = Probe {
        iss: "flywheel-validation".into(),
        iat: 0,
        exp: 60,
    };
    encode(&Header::new(Algorithm::RS256), &probe, &encoding)
        .map(|_| ())
        .map_err(|_| format!("{what}: the key cannot sign RS256 (is it an RSA key?)"))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The manifests `--dry-run` prints: both namespaces, the key redacted.
pub fn redacted_manifests(name: &str, c: &AppCredentials) -> String {
    NAMESPACES
        .iter()
        .map(|ns| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: flywheel\ntype: Opaque\nstringData:\n  github_app_id: {}\n  github_app_installation_id: {}\n  github_app_private_key: {}\n",
                quote(name),
                quote(&c.app_id.to_string()),
                quote(&c.installation_id.to_string()),
                quote(&c.redacted_key())
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// What one namespace's apply did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "result", content = "detail")]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
    /// Updated, and these stale parts (keys other writers left, kubectl's
    /// last-applied copy) were removed.
    Cleaned(Vec<String>),
    Failed(String),
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Created => f.write_str("created"),
            Applied::Updated => f.write_str("updated"),
            Applied::Unchanged => f.write_str("unchanged"),
            Applied::Cleaned(parts) => write!(f, "updated (removed stale {})", parts.join(", ")),
            Applied::Failed(e) => write!(f, "FAILED: {e}"),
        }
    }
}

/// Server-side applies the secret into both namespaces.
pub async fn apply(
    cluster: &flywheel_cluster::Cluster,
    name: &str,
    c: &AppCredentials,
) -> Vec<(String, Applied)> {
    let data = [
        ("github_app_id", c.app_id.to_string()),
        ("github_app_installation_id", c.installation_id.to_string()),
        (
            "github_app_private_key",
            c.private_key.expose_secret().to_string(),
        ),
    ];
    let mut out = Vec::new();
    for ns in NAMESPACES {
        let result = match cluster.apply_secret(ns, name, &data, "flywheel").await {
            Ok((flywheel_cluster::Written::Created, _)) => Applied::Created,
            Ok((flywheel_cluster::Written::Updated, removed)) if !removed.is_empty() => {
                Applied::Cleaned(removed)
            }
            Ok((flywheel_cluster::Written::Updated, _)) => Applied::Updated,
            Ok((flywheel_cluster::Written::Unchanged, _)) => Applied::Unchanged,
            Err(e) => Applied::Failed(e.message),
        };
        out.push((ns.to_string(), result));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_other_than_rsa_are_refused_without_echoing_content() {
        let p = Path::new("k.pem");
        let e = validate_key(
            p,
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBsecretbits\n-----END EC PRIVATE KEY-----\n",
        )
        .expect_err("ec");
        assert!(
            e.contains("EC PRIVATE KEY") && !e.contains("secretbits"),
            "{e}"
        );
        assert!(
            validate_key(p, "ssh-rsa AAAA")
                .expect_err("not pem")
                .contains("not a PEM")
        );
        let e = validate_key(
            p,
            "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
        )
        .expect_err("garbage");
        assert!(!e.contains("bm90IGEga2V5"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn validate_key_never_panics(s in "(?s).{0,300}") {
            let _ = validate_key(Path::new("k"), &s);
            let _ = validate_key(Path::new("k"), &format!("-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----\n"));
        }
    }
}
