//! Small helpers over hcl-edit: values with positions, errors with lines.

use std::path::Path;

use flywheel_yaml::{FileError, Located, Pos};
use hcl_edit::Span;
use hcl_edit::expr::{Expression, Object, ObjectKey};
use hcl_edit::structure::Body;

/// Deepest nesting of brackets, braces, parentheses and template
/// interpolations (`${`, `%{`) read. hcl-edit backtracks on an unclosed
/// nested expression in time exponential in its depth (found by fuzzing: a
/// 691-byte file took minutes; each level about doubles the time, so its own
/// limit of 64 does not bound the time). A tfvars or backend file nests three
/// or four levels.
pub const MAX_DEPTH: usize = 12;

#[derive(Clone, Copy, PartialEq)]
enum Frame {
    Code,
    Str,
}

/// The byte offset of the first opening nested deeper than [`MAX_DEPTH`],
/// without parsing: comments, string text and heredoc bodies are skipped,
/// template interpolations inside strings count as a level.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let depth = |stack: &[Frame]| stack.iter().filter(|f| **f == Frame::Code).count();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if stack.last() == Some(&Frame::Str) {
            match (c, next) {
                (b'\\', _) => i += 1,
                (b'$', Some(b'$')) | (b'%', Some(b'%')) => i += 1,
                (b'$' | b'%', Some(b'{')) => {
                    stack.push(Frame::Code);
                    if depth(&stack) > MAX_DEPTH {
                        return Some(i);
                    }
                    i += 1;
                }
                (b'"' | b'\n', _) => {
                    stack.pop();
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match (c, next) {
            (b'#', _) | (b'/', Some(b'/')) => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(b.len(), |n| i + n);
                continue;
            }
            (b'/', Some(b'*')) => {
                i = text[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                continue;
            }
            (b'<', Some(b'<')) => {
                // A heredoc: skip its body up to the closing identifier line.
                let rest = &text[i + 2..];
                let rest = rest.strip_prefix('-').unwrap_or(rest);
                let ident: String = rest
                    .chars()
                    .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                    .collect();
                if !ident.is_empty() {
                    let body_start = text[i..].find('\n').map_or(b.len(), |n| i + n + 1);
                    let mut at = body_start;
                    let mut end = b.len();
                    while at < b.len() {
                        let line_end = text[at..].find('\n').map_or(b.len(), |n| at + n);
                        if text[at..line_end].trim() == ident {
                            end = line_end;
                            break;
                        }
                        at = line_end + 1;
                    }
                    i = end;
                    continue;
                }
            }
            (b'"', _) => stack.push(Frame::Str),
            (b'[' | b'(' | b'{', _) => {
                stack.push(Frame::Code);
                if depth(&stack) > MAX_DEPTH {
                    return Some(i);
                }
            }
            (b']' | b')' | b'}', _) => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    None
}

pub(crate) fn parse(file: &Path, text: &str) -> Result<Body, FileError> {
    if let Some(at) = too_deep(text) {
        return Err(FileError::new(
            file,
            Pos::from_offset(text, at),
            "",
            format!(
                "nested more than {MAX_DEPTH} levels deep (brackets, braces, parentheses, `${{`); flywheel does not read HCL this deep"
            ),
        ));
    }
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
