//! serde over the span-aware tree: typed models derive `Deserialize`, and every
//! error names the line, column and key path of the node that failed.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::tree::{Node, Pos, Value};

/// A typed-model error: where it is, which key path, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub pos: Pos,
    /// Dotted key path, e.g. `owner.slug` or `runner_labels[2].label`.
    pub path: String,
    pub message: String,
    /// Set while a "missing field" error travels up to the mapping that lacks it.
    missing: Option<&'static str>,
    /// Set while a "duplicate field" error travels up to the mapping that
    /// holds it, which then points at the second occurrence.
    duplicate: Option<&'static str>,
}

impl Error {
    pub fn new(pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            pos,
            path: path.into(),
            message: message.into(),
            missing: None,
            duplicate: None,
        }
    }

    /// Points a "duplicate field" error at the key written the second time.
    fn at_duplicate(mut self, entries: &[(Node, Node)], path: &str) -> Error {
        let Some(field) = self.duplicate.take() else {
            return self;
        };
        let mut same = entries.iter().filter(|(k, _)| k.as_str() == Some(field));
        if let (Some((first, _)), Some((second, _))) = (same.next(), same.next()) {
            self.pos = second.pos;
            self.path = join(path, field);
            self.message = format!(
                "duplicate key `{field}` (first at line {}); a key may appear once in a mapping",
                first.pos.line
            );
        }
        self
    }

    /// Fills in position and path for errors raised without them (by derived
    /// visitors), using the node being deserialized.
    fn locate(mut self, node: &Node, path: &str) -> Error {
        if !self.pos.is_known() {
            self.pos = node.pos;
            self.path = match self.missing.take() {
                Some(field) => join(path, field),
                None => path.to_string(),
            };
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.pos, self.message)
        } else {
            write!(f, "{}: `{}`: {}", self.pos, self.path, self.message)
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(Pos::UNKNOWN, "", msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            pos: Pos::UNKNOWN,
            path: String::new(),
            message: "required key is missing".into(),
            missing: Some(field),
            duplicate: None,
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error {
            pos: Pos::UNKNOWN,
            path: String::new(),
            message: format!("duplicate key `{field}`"),
            missing: None,
            duplicate: Some(field),
        }
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Deserializes `T` from a node; `path` is the key path of `node` ("" for the root).
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node, path: &str) -> Result<T, Error> {
    T::deserialize(NodeDeserializer {
        node,
        path: path.to_string(),
    })
}

pub(crate) const LOCATED: &str = "$flywheel_yaml::Located";

struct NodeDeserializer<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDeserializer<'a> {
    fn fail(&self, message: impl Into<String>) -> Error {
        Error::new(self.node.pos, self.path.clone(), message)
    }

    fn scalar_text(&self, what: &str) -> Result<&'a str, Error> {
        match &self.node.value {
            Value::Scalar(s) if !s.is_null() => Ok(&s.text),
            _ => Err(self.fail(format!("expected {what}, found {}", self.node.kind()))),
        }
    }

    fn done<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        r.map_err(|e| e.locate(self.node, &self.path))
    }
}

macro_rules! number {
    ($method:ident, $visit:ident, $ty:ty, $what:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let text = self.scalar_text($what)?;
            let n: $ty = text
                .trim()
                .parse()
                .map_err(|_| self.fail(format!("expected {}, found `{}`", $what, text)))?;
            self.done(visitor.$visit(n))
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Scalar(s) if s.is_null() => visitor.visit_unit(),
            Value::Scalar(s) if s.plain => {
                if let Some(b) = s.as_bool() {
                    visitor.visit_bool(b)
                } else if let Ok(n) = s.text.parse::<u64>() {
                    visitor.visit_u64(n)
                } else if let Ok(n) = s.text.parse::<i64>() {
                    visitor.visit_i64(n)
                } else {
                    visitor.visit_str(&s.text)
                }
            }
            Value::Scalar(s) => visitor.visit_str(&s.text),
            Value::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            Value::Map(entries) => visitor
                .visit_map(MapAccess {
                    entries: entries.iter(),
                    value: None,
                    path: &self.path,
                })
                .map_err(|e| e.at_duplicate(entries, &self.path)),
        };
        self.done(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar(s) => match s.as_bool() {
                Some(b) => self.done(visitor.visit_bool(b)),
                None => Err(self.fail(format!("expected true or false, found `{}`", s.text))),
            },
            _ => Err(self.fail(format!(
                "expected true or false, found {}",
                self.node.kind()
            ))),
        }
    }

    number!(deserialize_i8, visit_i8, i8, "an integer");
    number!(deserialize_i16, visit_i16, i16, "an integer");
    number!(deserialize_i32, visit_i32, i32, "an integer");
    number!(deserialize_i64, visit_i64, i64, "an integer");
    number!(deserialize_u8, visit_u8, u8, "a non-negative integer");
    number!(deserialize_u16, visit_u16, u16, "a non-negative integer");
    number!(deserialize_u32, visit_u32, u32, "a non-negative integer");
    number!(deserialize_u64, visit_u64, u64, "a non-negative integer");
    number!(deserialize_f32, visit_f32, f32, "a number");
    number!(deserialize_f64, visit_f64, f64, "a number");

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = self.scalar_text("a string")?;
        self.done(visitor.visit_borrowed_str(text))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            self.done(visitor.visit_none())
        } else {
            let node = self.node;
            let path = self.path.clone();
            visitor.visit_some(self).map_err(|e| e.locate(node, &path))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            self.done(visitor.visit_unit())
        } else {
            Err(self.fail(format!("expected null, found {}", self.node.kind())))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let node = self.node;
        let path = self.path.clone();
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.locate(node, &path))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Seq(items) => self.done(visitor.visit_seq(SeqAccess {
                items: items.iter(),
                index: 0,
                path: &self.path,
            })),
            _ => Err(self.fail(format!("expected a sequence, found {}", self.node.kind()))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Map(entries) => self.done(
                visitor
                    .visit_map(MapAccess {
                        entries: entries.iter(),
                        value: None,
                        path: &self.path,
                    })
                    .map_err(|e| e.at_duplicate(entries, &self.path)),
            ),
            _ => Err(self.fail(format!("expected a mapping, found {}", self.node.kind()))),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == LOCATED {
            return visitor.visit_map(LocatedAccess {
                node: self.node,
                path: self.path.clone(),
                step: 0,
            });
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let text = self.scalar_text("one of the allowed words")?;
        if !variants.contains(&text) {
            return Err(self.fail(format!("`{text}` is not one of: {}", variants.join(", "))));
        }
        let inner = de::value::BorrowedStrDeserializer::<Error>::new(text);
        self.done(visitor.visit_enum(inner))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'p str,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDeserializer { node, path }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a, 'p> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, String)>,
    path: &'p str,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let key_text = key.as_str().unwrap_or("?");
        let path = join(self.path, key_text);
        self.value = Some((value, path.clone()));
        seed.deserialize(NodeDeserializer { node: key, path })
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (node, path) = self
            .value
            .take()
            .ok_or_else(|| Error::new(Pos::UNKNOWN, self.path, "value requested before key"))?;
        seed.deserialize(NodeDeserializer { node, path })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Feeds `Located<T>`: `line`, `column`, then the node itself as `value`.
struct LocatedAccess<'a> {
    node: &'a Node,
    path: String,
    step: u8,
}

impl<'de> de::MapAccess<'de> for LocatedAccess<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match self.step {
            0 => "line",
            1 => "column",
            2 => "value",
            _ => return Ok(None),
        };
        seed.deserialize(de::value::BorrowedStrDeserializer::<Error>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(self.node.pos.line.into_deserializer()),
            2 => seed.deserialize(self.node.pos.column.into_deserializer()),
            _ => seed.deserialize(NodeDeserializer {
                node: self.node,
                path: self.path.clone(),
            }),
        }
    }
}
