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
    for name in [
        "GITHUB_APP_ID",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_APP_PRIVATE_KEY_PATH",
    ] {
        if get(name).is_some_and(|v| v.trim().chars().any(char::is_control)) {
            return Err(flywheel_github::AuthError::ControlCharacter { name }.to_string());
        }
    }
    let app_id = positive("GITHUB_APP_ID")?;
    let installation_id = positive("GITHUB_APP_INSTALLATION_ID")?;
    let key_path = PathBuf::from(var("GITHUB_APP_PRIVATE_KEY_PATH")?);
    let key = read_key_file(&key_path)?;
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

/// The smallest RSA key accepted (GitHub issues 2048-bit App keys).
pub const MIN_RSA_BITS: usize = 2048;

/// Reads a key file as text: a regular file of at most 64 KiB, UTF-8
/// without a byte-order mark. Errors name the file, never its content.
pub fn read_key_file(path: &Path) -> Result<String, String> {
    let what = format!(
        "GITHUB_APP_PRIVATE_KEY_PATH {}",
        flywheel_github::shown_path(path)
    );
    // The one bounded reader: a regular file only (a FIFO or device is
    // refused, never waited on), within the key-file size limit.
    let bytes = flywheel_fs::read_bytes(path, flywheel_fs::Kind::KeyFile)
        .map_err(|e| format!("{what}: {}", e.reason()))?;
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(format!(
            "{what}: is UTF-16 text; save the key as plain ASCII (e.g. `iconv -f UTF-16 -t ASCII`)"
        ));
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(format!(
            "{what}: starts with a byte-order mark (BOM), which PEM does not allow; save it without one (e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' key.pem`)"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{what}: is not text (invalid UTF-8 at byte {}); it should be the .pem file the App's settings page downloads",
            e.utf8_error().valid_up_to()
        )
    })
}

/// A PEM label as it may be printed: upper-case words only. Anything else
/// could be key material and is never echoed.
fn safe_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 40
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
}

/// An RSA private key in PEM, PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8
/// (`PRIVATE KEY`), exactly one block and nothing else, at least
/// [`MIN_RSA_BITS`], not passphrase-protected, proven by signing an RS256
/// token with it. No error ever holds text of the file.
pub fn validate_key(path: &Path, key: &str) -> Result<(), String> {
    let what = format!(
        "GITHUB_APP_PRIVATE_KEY_PATH {}",
        flywheel_github::shown_path(path)
    );
    if key.starts_with('\u{feff}') {
        return Err(format!(
            "{what}: starts with a byte-order mark (BOM), which PEM does not allow; save it without one"
        ));
    }
    let lines: Vec<&str> = key
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(begin) = lines.iter().position(|l| l.contains("-----BEGIN ")) else {
        return Err(format!(
            "{what}: not a PEM file (no -----BEGIN ...----- line)"
        ));
    };
    let one_line =
        lines.len() < 3 || lines[begin].matches("-----").count() > 2 || lines[begin].len() > 64;
    if one_line {
        return Err(format!(
            "{what}: one-line PEM (its newlines were lost, e.g. by `echo $KEY > key.pem` without quotes); write it again with its line breaks (`printf '%s\\n' \"$KEY\" > key.pem`) or download the key again"
        ));
    }
    if begin > 0 {
        return Err(format!(
            "{what}: has text before the -----BEGIN line; the file must hold only the private key"
        ));
    }
    let label = lines[0]
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .filter(|l| safe_label(l))
        .ok_or_else(|| format!("{what}: the -----BEGIN line is not a PEM header"))?;
    let end_line = format!("-----END {label}-----");
    let Some(end) = lines.iter().position(|l| *l == end_line) else {
        return Err(format!(
            "{what}: the `{label}` block has no -----END {label}----- line (the file is cut short?)"
        ));
    };
    if end + 1 < lines.len() {
        let rest = &lines[end + 1..];
        return Err(if rest.iter().any(|l| l.starts_with("-----BEGIN ")) {
            format!(
                "{what}: holds more than one PEM block (a key and a certificate?); the Secret must hold only the private key, keep just the `{label}` block"
            )
        } else {
            format!(
                "{what}: has text after the -----END {label}----- line; the Secret must hold only the private key, remove it"
            )
        });
    }
    let body = &lines[1..end];
    let passphrase = "is passphrase-protected; GitHub App keys are not, and the ARC controller cannot use an encrypted key: decrypt it (`openssl rsa -in key.pem -out key-plain.pem`, then chmod 600) or download the key again";
    match label {
        "RSA PRIVATE KEY" | "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => return Err(format!("{what}: {passphrase}")),
        other => {
            return Err(format!(
                "{what}: holds a `{other}` block, not an RSA private key in PEM (PKCS#1 or PKCS#8); download the App's private key from its settings page"
            ));
        }
    }
    if body
        .iter()
        .any(|l| l.starts_with("Proc-Type:") || l.starts_with("DEK-Info:"))
    {
        return Err(format!("{what}: {passphrase}"));
    }
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.concat())
        .map_err(|_| format!("{what}: the `{label}` block is not valid base64"))?;
    let rsa_key = if label == "RSA PRIVATE KEY" {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        rsa::RsaPrivateKey::from_pkcs1_der(&der).ok()
    } else {
        use rsa::pkcs8::DecodePrivateKey;
        rsa::RsaPrivateKey::from_pkcs8_der(&der).ok()
    };
    let Some(rsa_key) = rsa_key else {
        return Err(format!(
            "{what}: the `{label}` block is not a readable RSA private key"
        ));
    };
    let bits = rsa::traits::PublicKeyParts::size(&rsa_key) * 8;
    drop(rsa_key);
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "{what}: a {bits}-bit RSA key is too weak (at least {MIN_RSA_BITS} bits); generate a new private key on the App's settings page"
        ));
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
    /// Known not written (an error answer, or not attempted).
    Failed(String),
    /// Interrupted (the deadline passed mid-request): it may or may not
    /// have been written.
    Unknown(String),
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Created => f.write_str("created"),
            Applied::Updated => f.write_str("updated"),
            Applied::Unchanged => f.write_str("unchanged"),
            Applied::Cleaned(parts) => write!(f, "updated (removed stale {})", parts.join(", ")),
            Applied::Failed(e) => write!(f, "FAILED: {e}"),
            Applied::Unknown(e) => write!(f, "UNKNOWN: {e}"),
        }
    }
}

/// Server-side applies the secret into both namespaces, one after the
/// other, each bounded by `deadline`: a namespace whose apply the deadline
/// interrupts is [`Applied::Unknown`], one not started before it
/// [`Applied::Failed`] (nothing was sent).
pub async fn apply(
    cluster: &flywheel_cluster::Cluster,
    name: &str,
    c: &AppCredentials,
    deadline: tokio::time::Instant,
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
        if tokio::time::Instant::now() >= deadline {
            out.push((
                ns.to_string(),
                Applied::Failed("not attempted: the --timeout deadline had passed".to_string()),
            ));
            continue;
        }
        let applied =
            tokio::time::timeout_at(deadline, cluster.apply_secret(ns, name, &data, "flywheel"))
                .await;
        let result = match applied {
            Err(_) => Applied::Unknown(
                "interrupted by the --timeout deadline before the API server answered; the Secret may or may not have been written".to_string(),
            ),
            Ok(Ok((flywheel_cluster::Written::Created, _))) => Applied::Created,
            Ok(Ok((flywheel_cluster::Written::Updated, removed))) if !removed.is_empty() => {
                Applied::Cleaned(removed.iter().map(|r| flywheel_redact::redact(r)).collect())
            }
            Ok(Ok((flywheel_cluster::Written::Updated, _))) => Applied::Updated,
            Ok(Ok((flywheel_cluster::Written::Unchanged, _))) => Applied::Unchanged,
            Ok(Err(e)) => Applied::Failed(e.message),
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

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../flywheel/tests/fixtures")
            .join(name);
        std::fs::read_to_string(p).expect("fixture")
    }

    /// Every 12-character piece of the key's body; none may be in `e`.
    fn assert_no_key_text(e: &str, key: &str) {
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            for chunk in line.as_bytes().chunks(12).filter(|c| c.len() == 12) {
                let chunk = std::str::from_utf8(chunk).expect("ascii");
                assert!(!e.contains(chunk), "key text in: {e}");
            }
        }
    }

    #[test]
    fn a_one_line_pem_is_named_and_never_echoed() {
        let key = fixture("test-github-app-key.pem");
        let p = Path::new("k.pem");
        // `echo $KEY > key.pem`: every newline became a space.
        let one_line = key.split_whitespace().collect::<Vec<_>>().join(" ") + "\n";
        let e = validate_key(p, &one_line).expect_err("one line");
        assert!(e.contains("one-line PEM (its newlines were lost"), "{e}");
        assert_no_key_text(&e, &key);
        // Lost newlines without spaces in between.
        let e = validate_key(p, &key.replace('\n', "")).expect_err("one line");
        assert!(e.contains("one-line PEM"), "{e}");
        assert_no_key_text(&e, &key);
    }

    #[test]
    fn exactly_one_key_and_nothing_else() {
        let key = fixture("test-github-app-key.pem");
        let p = Path::new("k.pem");
        assert_eq!(validate_key(p, &key), Ok(()));
        let e = validate_key(p, &format!("{key}trailing junk\n")).expect_err("junk");
        assert!(
            e.contains("text after the -----END RSA PRIVATE KEY----- line"),
            "{e}"
        );
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
        let e = validate_key(p, &format!("{key}{cert}")).expect_err("cert");
        assert!(e.contains("more than one PEM block"), "{e}");
        let e = validate_key(p, &format!("{cert}{key}")).expect_err("cert first");
        assert!(e.contains("CERTIFICATE"), "{e}");
        let e = validate_key(p, &format!("Bag Attributes\n{key}")).expect_err("text before");
        assert!(e.contains("text before"), "{e}");
        let cut: String = key.lines().take(10).map(|l| format!("{l}\n")).collect();
        let e = validate_key(p, &cut).expect_err("cut");
        assert!(e.contains("no -----END RSA PRIVATE KEY----- line"), "{e}");
        for e in [
            validate_key(p, &format!("{key}trailing junk\n")),
            validate_key(p, &format!("{key}{cert}")),
            validate_key(p, &cut),
        ] {
            assert_no_key_text(&e.expect_err("refused"), &key);
        }
    }

    #[test]
    fn weak_bom_and_passphrase_protected_keys_are_refused_clearly() {
        let p = Path::new("k.pem");
        let weak = fixture("test-rsa-1024.pem");
        let e = validate_key(p, &weak).expect_err("1024 bits");
        assert!(e.contains("1024-bit RSA key is too weak"), "{e}");
        assert_no_key_text(&e, &weak);
        let key = fixture("test-github-app-key.pem");
        let e = validate_key(p, &format!("\u{feff}{key}")).expect_err("bom");
        assert!(e.contains("byte-order mark"), "{e}");
        let enc = fixture("test-encrypted-pkcs1.pem");
        let e = validate_key(p, &enc).expect_err("encrypted");
        assert!(e.contains("passphrase-protected"), "{e}");
        assert_no_key_text(&e, &enc);
        let e = validate_key(
            p,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .expect_err("pkcs8 encrypted");
        assert!(e.contains("passphrase-protected"), "{e}");
    }

    #[test]
    fn key_files_are_read_as_small_regular_utf8_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let bom = dir.path().join("bom.pem");
        std::fs::write(&bom, b"\xEF\xBB\xBF-----BEGIN RSA PRIVATE KEY-----\n").expect("write");
        assert!(
            read_key_file(&bom)
                .expect_err("bom")
                .contains("byte-order mark")
        );
        let utf16 = dir.path().join("u16.pem");
        std::fs::write(&utf16, b"\xFF\xFE-\0-\0").expect("write");
        assert!(read_key_file(&utf16).expect_err("utf16").contains("UTF-16"));
        assert!(
            read_key_file(dir.path())
                .expect_err("a directory")
                .contains("not a regular file")
        );
    }

    proptest::proptest! {
        #[test]
        fn validate_key_never_panics(s in "(?s).{0,300}") {
            let _ = validate_key(Path::new("k"), &s);
            let _ = validate_key(Path::new("k"), &format!("-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----\n"));
        }
    }
}
