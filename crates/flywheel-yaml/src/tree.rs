//! A YAML node tree where every node knows its line and column.
//!
//! Built from the event stream of the parser that serde-saphyr uses
//! (`serde_saphyr::granit_parser`), so plain scalars keep their source text
//! (a commit SHA stays a string, `1.0` stays `1.0`) and quoting is known.

use std::collections::HashMap;
use std::fmt;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

/// 1-based line and column (in characters) of a node in its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    /// Position of something that has no place in a file (line 0).
    pub const UNKNOWN: Pos = Pos { line: 0, column: 0 };

    pub fn is_known(self) -> bool {
        self.line > 0
    }

    /// The byte offset of this line and character column in `text`; `None`
    /// when the position is not in it.
    pub fn to_offset(self, text: &str) -> Option<usize> {
        if !self.is_known() || self.column == 0 {
            return None;
        }
        let mut start = 0;
        for _ in 1..self.line {
            start += text[start..].find('\n')? + 1;
        }
        let line = &text[start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        let col = self.column as usize - 1;
        match line.char_indices().nth(col) {
            Some((i, _)) => Some(start + i),
            None if line.chars().count() == col => Some(start + line.len()),
            None => None,
        }
    }

    /// Line and character column of byte `offset` in `text` (for parsers
    /// that report byte offsets: HCL, Starlark).
    pub fn from_offset(text: &str, offset: usize) -> Pos {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX),
            column: u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A scalar's text after escape processing, and whether it was written plain
/// (unquoted, not a block scalar). Only plain scalars can be null, bool or
/// numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    pub plain: bool,
}

impl Scalar {
    /// YAML 1.2 core schema null: `~`, `null`, `Null`, `NULL`, or nothing.
    pub fn is_null(&self) -> bool {
        self.plain && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    pub fn as_bool(&self) -> Option<bool> {
        if !self.plain {
            return None;
        }
        match self.text.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in source order; `<<` merge keys are already applied.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn null(pos: Pos) -> Node {
        Node {
            value: Value::Scalar(Scalar {
                text: String::new(),
                plain: true,
            }),
            pos,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.is_null())
    }

    /// The scalar's text, if this node is a non-null scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) if !s.is_null() => Some(&s.text),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of `key` in a mapping (the key compared as scalar text).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// The key node and value of `key` in a mapping.
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// What kind of node this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) if s.is_null() => "null",
            Value::Scalar(_) => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A document that is not valid YAML.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Upper bound on nodes after alias expansion ("billion laughs" guard).
pub const MAX_NODES: usize = 1_000_000;

fn pos_of(marker: &serde_saphyr::granit_parser::Marker) -> Pos {
    Pos {
        line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
        column: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
    }
}

/// A collection being built; `size` counts its nodes so far (itself
/// included), so an anchor's copy is counted without walking it.
enum Frame {
    Seq {
        anchor: usize,
        pos: Pos,
        items: Vec<Node>,
        size: usize,
    },
    Map {
        anchor: usize,
        pos: Pos,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        size: usize,
    },
}

fn too_many(pos: Pos, how: &str) -> SyntaxError {
    SyntaxError {
        pos,
        message: format!("document has more than {MAX_NODES} nodes{how}"),
    }
}

/// Parses every document in `text`. An empty stream yields no documents.
pub fn parse_all(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Anchored nodes with their size in nodes.
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut total = 0usize;
    let mut pending_doc: Option<Node> = None;
    let mut in_doc = false;

    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: pos_of(e.marker()),
            message: e.info(),
        })?;
        let pos = pos_of(&span.start);
        // The finished node, its anchor id (0: none) and its size in nodes.
        let finished: Option<(Node, usize, usize)> = match event {
            Event::DocumentStart(..) => {
                in_doc = true;
                anchors.clear();
                None
            }
            Event::DocumentEnd => {
                if in_doc {
                    docs.push(pending_doc.take().unwrap_or_else(|| Node::null(pos)));
                }
                in_doc = false;
                None
            }
            Event::Scalar(text, style, anchor, _tag) => Some((
                Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: matches!(style, ScalarStyle::Plain),
                    }),
                    pos,
                },
                anchor,
                1,
            )),
            Event::Alias(id) => {
                let (target, size) = anchors.get(&id).ok_or_else(|| SyntaxError {
                    pos,
                    message: "alias to an unknown anchor".into(),
                })?;
                // Every node of the copy is counted before it is made.
                total += size;
                if total > MAX_NODES {
                    return Err(too_many(pos, " through aliases"));
                }
                let mut node = target.clone();
                node.pos = pos;
                Some((node, 0, *size))
            }
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Frame::Seq {
                    anchor,
                    pos,
                    items: Vec::new(),
                    size: 1,
                });
                None
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Frame::Map {
                    anchor,
                    pos,
                    entries: Vec::new(),
                    pending_key: None,
                    size: 1,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    anchor,
                    pos,
                    items,
                    size,
                }) => Some((
                    Node {
                        value: Value::Seq(items),
                        pos,
                    },
                    anchor,
                    size,
                )),
                _ => {
                    return Err(SyntaxError {
                        pos,
                        message: "unbalanced sequence end".into(),
                    });
                }
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    anchor,
                    pos,
                    entries,
                    size,
                    ..
                }) => Some((
                    Node {
                        value: Value::Map(apply_merges(entries)),
                        pos,
                    },
                    anchor,
                    size,
                )),
                _ => {
                    return Err(SyntaxError {
                        pos,
                        message: "unbalanced mapping end".into(),
                    });
                }
            },
            _ => None,
        };

        let Some((node, anchor, size)) = finished else {
            continue;
        };
        total += 1;
        if total > MAX_NODES {
            return Err(too_many(pos, ""));
        }
        if anchor != 0 {
            // The anchor keeps a copy: its nodes count like any others
            // (nested anchors would otherwise copy each level again, unbounded).
            total += size;
            if total > MAX_NODES {
                return Err(too_many(pos, " counting anchored copies"));
            }
            anchors.insert(anchor, (node.clone(), size));
        }
        match stack.last_mut() {
            None => pending_doc = Some(node),
            Some(Frame::Seq {
                items,
                size: frame_size,
                ..
            }) => {
                *frame_size += size;
                items.push(node);
            }
            Some(Frame::Map {
                entries,
                pending_key,
                size: frame_size,
                ..
            }) => {
                *frame_size += size;
                match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => entries.push((key, node)),
                }
            }
        }
    }
    if let Some(doc) = pending_doc.take() {
        docs.push(doc);
    }
    Ok(docs)
}

/// Parses the first document; an empty input is a null node at 1:1.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    Ok(parse_all(text)?
        .into_iter()
        .next()
        .unwrap_or_else(|| Node::null(Pos { line: 1, column: 1 })))
}

/// Parses a file that holds one document: a second document with anything
/// in it is an error at its first line (it would otherwise be ignored
/// silently). An empty input is a null node at 1:1.
pub fn parse_single(text: &str) -> Result<Node, SyntaxError> {
    let mut docs = parse_all(text)?.into_iter();
    let first = docs
        .next()
        .unwrap_or_else(|| Node::null(Pos { line: 1, column: 1 }));
    if let Some(second) = docs.find(|d| !d.is_null()) {
        return Err(SyntaxError {
            pos: second.pos,
            message: "a second YAML document starts here; this file holds exactly one \
                      (remove the `---` line and what follows it, or merge the two)"
                .into(),
        });
    }
    Ok(first)
}

/// Applies YAML merge keys (`<<: *base` or `<<: [*a, *b]`): merged entries
/// never override keys written in the mapping itself.
fn apply_merges(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let is_merge = |k: &Node| matches!(&k.value, Value::Scalar(s) if s.plain && s.text == "<<");
    if !entries.iter().any(|(k, _)| is_merge(k)) {
        return entries;
    }
    let mut own = Vec::new();
    let mut sources = Vec::new();
    for (k, v) in entries {
        if is_merge(&k) {
            match v.value {
                Value::Map(m) => sources.push(m),
                Value::Seq(items) => {
                    for item in items {
                        if let Value::Map(m) = item.value {
                            sources.push(m);
                        }
                    }
                }
                Value::Scalar(_) => {}
            }
        } else {
            own.push((k, v));
        }
    }
    for source in sources {
        for (k, v) in source {
            let present = own
                .iter()
                .any(|(ok, _)| ok.as_str().is_some() && ok.as_str() == k.as_str());
            if !present {
                own.push((k, v));
            }
        }
    }
    own
}
