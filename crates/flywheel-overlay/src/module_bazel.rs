//! `MODULE.bazel`: the core pin is the `commit` of the `git_override` whose
//! `module_name` is `core.module_name`. Other overrides and modules are
//! read past; a second `git_override` for the core module is an error
//! (Bazel refuses it too).

use std::ops::Range;
use std::path::Path;

use flywheel_yaml::{FileError, Pos};
use starlark_syntax::dialect::Dialect;
use starlark_syntax::syntax::AstModule;
use starlark_syntax::syntax::ast::{ArgumentP, AstExpr, AstLiteral, AstStmt, ExprP, StmtP};

/// The core pin as written in MODULE.bazel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorePin {
    pub commit: String,
    /// Where the commit string starts.
    pub pos: Pos,
    /// Byte range of the string literal's contents (inside the quotes), for
    /// an edit that changes nothing else.
    pub range: Range<usize>,
    pub remote: Option<String>,
}

/// Calls at the top level of the module, flattened.
fn top_level_calls<'a>(stmt: &'a AstStmt, out: &mut Vec<&'a AstExpr>) {
    match &stmt.node {
        StmtP::Statements(list) => list.iter().for_each(|s| top_level_calls(s, out)),
        StmtP::Expression(e) => out.push(e),
        _ => {}
    }
}

fn string_literal(e: &AstExpr) -> Option<&str> {
    match &e.node {
        ExprP::Literal(AstLiteral::String(s)) => Some(s.node.as_str()),
        _ => None,
    }
}

/// Deepest bracket nesting read (`(`, `[`, `{`). The Starlark parser
/// recurses once per level, so thousands of `[` overflow the stack; a real
/// MODULE.bazel nests three or four deep. Like the HCL (64) and YAML (256)
/// readers, the depth is bounded before parsing.
pub const MAX_DEPTH: usize = 64;

/// The place of the first bracket nested deeper than [`MAX_DEPTH`], found
/// without parsing: strings (all quote forms, with escapes) and comments are
/// skipped, so brackets inside them do not count.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                i = memchr_newline(bytes, i);
                continue;
            }
            q @ (b'"' | b'\'') => {
                let triple = bytes.get(i..i + 3) == Some(&[q, q, q][..]);
                let close = if triple { 3 } else { 1 };
                i += close;
                while i < bytes.len() {
                    if bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if !triple && bytes[i] == b'\n' {
                        break;
                    }
                    if bytes[i] == q && (!triple || bytes.get(i..i + 3) == Some(&[q, q, q][..])) {
                        i += close;
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| from + n)
}

/// Finds the pin for `module_name`. `Ok(None)`: the file has no
/// `git_override` for it.
pub fn find_core_pin(
    file: &Path,
    text: &str,
    module_name: &str,
) -> Result<Option<CorePin>, FileError> {
    if let Some(at) = too_deep(text) {
        return Err(FileError::new(
            file,
            Pos::from_offset(text, at),
            "",
            format!(
                "brackets nested more than {MAX_DEPTH} deep; flywheel does not read Starlark this deep (a MODULE.bazel needs a few levels)"
            ),
        ));
    }
    let module = AstModule::parse(
        &file.to_string_lossy(),
        text.to_string(),
        &Dialect::Extended,
    )
    .map_err(|e| {
        let pos = e.span().map_or(Pos::UNKNOWN, |s| {
            let r = s.resolve_span();
            Pos {
                line: u32::try_from(r.begin.line + 1).unwrap_or(u32::MAX),
                column: u32::try_from(r.begin.column + 1).unwrap_or(u32::MAX),
            }
        });
        FileError::new(
            file,
            pos,
            "",
            format!("invalid Starlark: {}", e.without_diagnostic()),
        )
    })?;
    let mut calls = Vec::new();
    top_level_calls(module.statement(), &mut calls);
    let mut found: Option<CorePin> = None;
    for call in calls {
        let ExprP::Call(callee, args) = &call.node else {
            continue;
        };
        let ExprP::Identifier(name) = &callee.node else {
            continue;
        };
        if name.node.ident != "git_override" {
            continue;
        }
        let named = |key: &str| {
            args.args.iter().find_map(|a| match &a.node {
                ArgumentP::Named(k, v) if k.node == key => Some(v),
                _ => None,
            })
        };
        if named("module_name").and_then(string_literal) != Some(module_name) {
            continue;
        }
        let call_pos = Pos::from_offset(text, call.span.begin().get() as usize);
        if found.is_some() {
            return Err(FileError::new(
                file,
                call_pos,
                "git_override",
                format!("a second git_override for `{module_name}`; Bazel allows one"),
            ));
        }
        let Some(commit_expr) = named("commit") else {
            return Err(FileError::new(
                file,
                call_pos,
                "git_override.commit",
                format!(
                    "the git_override for `{module_name}` has no `commit` (a branch or tag is not a pin)"
                ),
            ));
        };
        let Some(commit) = string_literal(commit_expr) else {
            return Err(FileError::new(
                file,
                Pos::from_offset(text, commit_expr.span.begin().get() as usize),
                "git_override.commit",
                "`commit` must be a string literal",
            ));
        };
        let begin = commit_expr.span.begin().get() as usize;
        let end = commit_expr.span.end().get() as usize;
        // The literal's span includes its quotes (one or three on each side).
        let raw = text.get(begin..end).unwrap_or("");
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        let range = (begin + quote)..end.saturating_sub(quote).max(begin + quote);
        found = Some(CorePin {
            commit: commit.to_string(),
            pos: Pos::from_offset(text, begin),
            range,
            remote: named("remote").and_then(string_literal).map(str::to_string),
        });
    }
    Ok(found)
}
