//! Small helpers over hcl-edit: values with positions, errors with lines.

use std::path::Path;

use flywheel_yaml::{FileError, Located, Pos};
use hcl_edit::Span;
use hcl_edit::expr::{Expression, Object, ObjectKey};
use hcl_edit::structure::Body;

pub(crate) fn parse(file: &Path, text: &str) -> Result<Body, FileError> {
    hcl_edit::parser::parse_body(text).map_err(|e| {
        let loc = e.location();
        FileError::new(
            file,
            Pos {
                line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
                column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
            },
            "",
            format!("invalid HCL: {}", e.message()),
        )
    })
}

pub(crate) fn pos(text: &str, e: &impl Span) -> Pos {
    e.span()
        .map_or(Pos::UNKNOWN, |r| Pos::from_offset(text, r.start))
}

/// Reads an expression as a string, bool or unsigned number; anything else
/// (a variable, a function call) is an error naming the key.
pub(crate) struct Reader<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Reader<'_> {
    fn wrong(&self, e: &Expression, key: &str, want: &str) -> FileError {
        FileError::new(
            self.file,
            pos(self.text, e),
            key,
            format!("expected {want}"),
        )
    }

    pub fn string(&self, e: &Expression, key: &str) -> Result<Located<String>, FileError> {
        e.as_str()
            .map(|s| Located::new(s.to_string(), pos(self.text, e)))
            .ok_or_else(|| self.wrong(e, key, "a quoted string"))
    }

    pub fn boolean(&self, e: &Expression, key: &str) -> Result<Located<bool>, FileError> {
        e.as_bool()
            .map(|b| Located::new(b, pos(self.text, e)))
            .ok_or_else(|| self.wrong(e, key, "true or false"))
    }

    pub fn number(&self, e: &Expression, key: &str) -> Result<Located<u64>, FileError> {
        e.as_number()
            .and_then(|n| n.as_u64())
            .map(|n| Located::new(n, pos(self.text, e)))
            .ok_or_else(|| self.wrong(e, key, "a non-negative integer"))
    }

    pub fn object<'e>(&self, e: &'e Expression, key: &str) -> Result<&'e Object, FileError> {
        e.as_object()
            .ok_or_else(|| self.wrong(e, key, "an object { ... }"))
    }
}

pub(crate) fn key_text(k: &ObjectKey) -> Option<String> {
    match k {
        ObjectKey::Ident(i) => Some(i.value().as_str().to_string()),
        ObjectKey::Expression(e) => e.as_str().map(str::to_string),
    }
}
