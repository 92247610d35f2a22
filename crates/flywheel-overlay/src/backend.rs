//! `tofu/backend/<cluster>.s3.hcl`: the S3 state backend settings.
//! Reads the current `endpoints = { s3 = "..." }` and the deprecated
//! top-level `endpoint = "..."`.

use std::path::Path;

use flywheel_yaml::{FileError, Located, Pos};

use crate::hcl::{Reader, key_text, parse, pos};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Backend {
    pub bucket: Option<Located<String>>,
    pub key: Option<Located<String>>,
    pub region: Option<Located<String>>,
    /// From `endpoints.s3`, or the deprecated `endpoint`.
    pub endpoint: Option<Located<String>>,
    /// True when the endpoint came from the deprecated top-level key.
    pub deprecated_endpoint: bool,
    /// `use_path_style`, or the older `force_path_style`.
    pub path_style: Option<bool>,
}

/// Keys only the `http` backend (GitLab-managed state) takes.
const HTTP_KEYS: &[&str] = &[
    "address",
    "lock_address",
    "unlock_address",
    "lock_method",
    "unlock_method",
    "retry_max",
];

/// Refuses a backend file that configures GitLab-managed HTTP state: a
/// `backend "http"` block, an HTTP-backend key (`address`, `lock_address`,
/// ...), or a GitLab `/api/v4/projects/.../terraform/state/` address. The
/// active stacks keep their state in S3; HTTP state is compatibility-only.
pub fn refuse_http_state(file: &Path, text: &str) -> Result<(), FileError> {
    let body = parse(file, text)?;
    let refuse = |at: Pos, what: String| {
        Err(FileError::new(
            file,
            at,
            "",
            format!(
                "{what}: GitLab-managed HTTP state is compatibility-only; the active stacks use backend \"s3\" (tofu/backend/<cluster>.s3.hcl with bucket, key and endpoints.s3)"
            ),
        ))
    };
    for block in body.blocks() {
        let labels: Vec<String> = block
            .labels
            .iter()
            .map(|l| l.as_str().to_string())
            .collect();
        if labels.iter().any(|l| l.eq_ignore_ascii_case("http")) {
            return refuse(
                pos(text, block),
                format!("{} \"http\" block", block.ident.as_str()),
            );
        }
        if let Some(inner) = block.body.blocks().find(|b| {
            b.ident.as_str() == "backend"
                && b.labels
                    .iter()
                    .any(|l| l.as_str().eq_ignore_ascii_case("http"))
        }) {
            return refuse(pos(text, inner), "backend \"http\" block".into());
        }
    }
    for attr in body.attributes() {
        let key = attr.key.value().as_str();
        if HTTP_KEYS.contains(&key) {
            return refuse(
                pos(text, attr),
                format!("`{key}` is an http-backend setting"),
            );
        }
        if let Some(s) = attr.value.as_str()
            && s.contains("/api/v4/projects/")
            && s.contains("/terraform/state")
        {
            return refuse(
                pos(text, &attr.value),
                format!("`{key}` is a GitLab terraform/state address"),
            );
        }
    }
    Ok(())
}

pub fn load_backend(file: &Path, text: &str) -> Result<S3Backend, FileError> {
    refuse_http_state(file, text)?;
    let body = parse(file, text)?;
    let r = Reader { file, text };
    let mut b = S3Backend::default();
    for attr in body.attributes() {
        let key = attr.key.value().as_str();
        let e = &attr.value;
        match key {
            "bucket" => b.bucket = Some(r.string(e, key)?),
            "key" => b.key = Some(r.string(e, key)?),
            "region" => b.region = Some(r.string(e, key)?),
            "endpoint" if b.endpoint.is_none() => {
                b.endpoint = Some(r.string(e, key)?);
                b.deprecated_endpoint = true;
            }
            "endpoints" => {
                for (k, v) in r.object(e, key)? {
                    if key_text(k).as_deref() == Some("s3") {
                        b.endpoint = Some(r.string(v.expr(), "endpoints.s3")?);
                        b.deprecated_endpoint = false;
                    }
                }
            }
            "use_path_style" | "force_path_style" => b.path_style = Some(r.boolean(e, key)?.value),
            _ => {}
        }
    }
    if b.key.is_none() {
        return Err(FileError::new(
            file,
            Pos { line: 1, column: 1 },
            "key",
            "required key is missing",
        ));
    }
    Ok(b)
}
