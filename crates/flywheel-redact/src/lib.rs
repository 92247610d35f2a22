//! One process-wide redactor.
//!
//! Every client that holds a credential (the GitHub token, the App JWT and
//! the installation token it is exchanged for, the kube bearer token or
//! password) [`register`]s it here the moment it has it. Every string that
//! came from a server goes through [`redact`] before it is printed or
//! recorded: the client error constructors, the preflight output, the
//! `arc secret` messages and the audit log all call it. A server that echoes
//! the `Authorization` header back therefore never gets the credential onto a
//! terminal or into a file.
//!
//! Besides the registered values, [`redact`] removes what is a credential by
//! its shape, whoever holds it: the `user:pass@` of a URL, GitHub token
//! formats (`ghp_…`, `ghs_…`, `github_pat_…`) and JSON Web Tokens.

use std::sync::{PoisonError, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};

/// What a removed credential is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this are not registered: they would redact ordinary
/// words, and no real credential is this short.
pub const MIN_LEN: usize = 8;

struct Registry {
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    values: Vec::new(),
    matcher: None,
});

/// Adds a credential to the process-wide set. Short or blank values are
/// ignored; registering the same value twice does nothing.
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_LEN {
        return;
    }
    let mut reg = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if reg.values.iter().any(|v| v == value) {
        return;
    }
    reg.values.push(value.to_string());
    reg.matcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&reg.values)
        .ok();
}

/// How many credentials are registered (for tests and diagnostics).
pub fn registered() -> usize {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .values
        .len()
}

/// `s` with every registered credential, every URL's `user:pass@` and every
/// credential-shaped token replaced by [`REDACTED`].
pub fn redact(s: &str) -> String {
    let replaced = {
        let reg = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
        match &reg.matcher {
            Some(m) => m.replace_all(s, &vec![REDACTED; reg.values.len()]),
            None => s.to_string(),
        }
    };
    token_shapes(&userinfo(&replaced))
}

/// Every string inside a JSON value, redacted in place (keys included).
pub fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = redact(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut v) in old {
                redact_json(&mut v);
                m.insert(redact(&k), v);
            }
        }
        _ => {}
    }
}

/// The `user:pass@` (or `token@`) of every `scheme://` URL in `s`, removed.
pub fn userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>' | '(' | ')'
                ) || c.is_whitespace()
                    || c.is_control()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// GitHub token formats and JSON Web Tokens, removed by shape.
fn token_shapes(s: &str) -> String {
    const PREFIXES: [&str; 6] = ["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !is_b64url(b[i - 1]);
        let mut end = None;
        if boundary {
            if let Some(p) = PREFIXES.iter().find(|p| b[i..].starts_with(p.as_bytes())) {
                let run = b[i + p.len()..].iter().take_while(|c| is_word(**c)).count();
                if run >= 20 {
                    end = Some(i + p.len() + run);
                }
            } else if b[i..].starts_with(b"eyJ") {
                end = jwt_end(b, i);
            }
        }
        match end {
            Some(e) => {
                out.push_str(&s[copied..i]);
                out.push_str(REDACTED);
                copied = e;
                i = e;
            }
            None => i += 1,
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// The end of a `header.payload.signature` JWT starting at `start`.
fn jwt_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    for part in 0..3 {
        let run = b[i..].iter().take_while(|c| is_b64url(**c)).count();
        if run < 10 {
            return None;
        }
        i += run;
        if part < 2 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_removed_everywhere() {
        register("kube-bearer-0123456789");
        register("short");
        let s =
            redact("Unauthorized: Bearer kube-bearer-0123456789 (again kube-bearer-0123456789)");
        assert_eq!(s, "Unauthorized: Bearer <redacted> (again <redacted>)");
        assert_eq!(redact("short stays"), "short stays");
        let mut v = serde_json::json!({"error": ["token kube-bearer-0123456789"], "kube-bearer-0123456789": 1});
        redact_json(&mut v);
        assert!(!v.to_string().contains("kube-bearer-0123456789"), "{v}");
    }

    #[test]
    fn userinfo_is_removed_from_urls() {
        assert_eq!(
            redact("GET https://user:pa55@ghe.example.com/api/v3: refused"),
            "GET https://<redacted>@ghe.example.com/api/v3: refused"
        );
        assert_eq!(
            redact("see http://host:8080/x and https://a@b"),
            "see http://host:8080/x and https://<redacted>@b"
        );
    }

    #[test]
    fn credential_shapes_are_removed() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        assert_eq!(
            redact(&format!("Bearer {jwt}: bad")),
            "Bearer <redacted>: bad"
        );
        assert_eq!(
            redact("token ghs_abcdefghijklmnopqrstuvwxyz0123 ok"),
            "token <redacted> ok"
        );
        assert_eq!(
            redact("github_pat_11ABCDEFG0abcdefghijklmnop_qrstuvw"),
            "<redacted>"
        );
        assert_eq!(
            redact("ghp_short and GHS_SECRET_NAME"),
            "ghp_short and GHS_SECRET_NAME"
        );
        assert_eq!(redact("eyJ.not.a.jwt"), "eyJ.not.a.jwt");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_keeps_a_registered_value(s in "(?s).{0,200}") {
            register("proptest-secret-value");
            let r = redact(&format!("{s}proptest-secret-value{s}"));
            proptest::prop_assert!(!r.contains("proptest-secret-value"));
        }
    }
}
