//! Span-aware YAML for flywheel.
//!
//! Every loader in flywheel reads YAML through this crate so that any error
//! names file, line, column and key path, and so that scanners (workflow
//! `runs-on`, GitLab `tags`) can point at the exact node. The parser is the
//! one serde-saphyr is built on (`serde_saphyr::granit_parser`); typed models
//! derive serde's `Deserialize` and are read with [`from_node`].

mod de;
mod located;
mod tree;

use std::fmt;
use std::path::{Path, PathBuf};

pub use de::{Error, from_node};
pub use located::Located;
pub use tree::{MAX_NODES, Node, Pos, Scalar, SyntaxError, Value, parse, parse_all, parse_single};

/// An error in a file: syntax or model, always with a place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub pos: Pos,
    /// Key path; empty for syntax errors and whole-document problems.
    pub path: String,
    pub message: String,
}

impl FileError {
    pub fn new(file: &Path, pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Self {
        FileError {
            file: file.to_path_buf(),
            pos,
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn from_model(file: &Path, e: Error) -> Self {
        FileError::new(file, e.pos, e.path, e.message)
    }

    pub fn from_syntax(file: &Path, e: SyntaxError) -> Self {
        FileError::new(file, e.pos, "", format!("invalid YAML: {}", e.message))
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.pos.is_known() {
            write!(f, ":{}:{}", self.pos.line, self.pos.column)?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for FileError {}

/// Parses `text` (the contents of `file`), which must hold one document (see
/// [`parse_single`]), and deserializes it.
pub fn load<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<(T, Node), FileError> {
    let node = parse_single(text).map_err(|e| FileError::from_syntax(file, e))?;
    let value = from_node(&node, "").map_err(|e| FileError::from_model(file, e))?;
    Ok((value, node))
}
