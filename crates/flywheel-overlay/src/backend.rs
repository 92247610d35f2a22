//! `tofu/backend/<cluster>.s3.hcl`: the S3 state backend settings.
//! Reads the current `endpoints = { s3 = "..." }` and the deprecated
//! top-level `endpoint = "..."`.

use std::path::Path;

use flywheel_yaml::{FileError, Located, Pos};

use crate::hcl::{Reader, key_text, parse};

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

pub fn load_backend(file: &Path, text: &str) -> Result<S3Backend, FileError> {
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
