//! The platform contract as data.
//!
//! `platform.yaml` is the single source of truth: [`load`] reads and validates
//! it (every problem with file, line, column and key path), [`render`] turns
//! it into the live contract document, and the scanner in `flywheel-check`
//! takes its out-of-contract values and label sets.

pub mod model;
mod render;
mod validate;

use std::path::Path;

pub use flywheel_yaml::FileError;
pub use model::*;
pub use render::render_markdown;
pub use validate::{Problem, gitlab_url, is_cidr, validate};

/// Why a contract could not be loaded. Each entry is one problem.
#[derive(Debug)]
pub struct LoadError {
    pub problems: Vec<FileError>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Parses and validates a contract held in memory; `file` names it in errors.
pub fn load_str(file: &Path, text: &str) -> Result<Platform, LoadError> {
    let (platform, _node): (Platform, _) =
        flywheel_yaml::load(file, text).map_err(|e| LoadError { problems: vec![e] })?;
    let problems = validate(&platform);
    if problems.is_empty() {
        Ok(platform)
    } else {
        Err(LoadError {
            problems: problems
                .into_iter()
                .map(|p| FileError::new(file, p.pos, p.path, p.message))
                .collect(),
        })
    }
}

/// Reads (bounded: a regular file within the platform.yaml size limit),
/// parses and validates `platform.yaml`.
pub fn load(file: &Path) -> Result<Platform, LoadError> {
    let text = flywheel_fs::read(file, flywheel_fs::Kind::Platform).map_err(|e| LoadError {
        problems: vec![read_error(e)],
    })?;
    load_str(file, &text)
}

/// A bounded-reader error as a file problem (line:column when the reader
/// found a bad byte).
fn read_error(e: flywheel_fs::ReadError) -> FileError {
    let pos = match e.problem {
        flywheel_fs::Problem::InvalidUtf8 { line, column, .. } => flywheel_yaml::Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        },
        _ => flywheel_yaml::Pos::UNKNOWN,
    };
    FileError::new(&e.path, pos, "", e.reason())
}

impl Platform {
    /// Every label workflows may use: the shared runner labels.
    pub fn shared_labels(&self) -> impl Iterator<Item = &str> {
        self.runner_labels
            .iter()
            .filter(|l| l.status.value != LabelStatus::ProofOnly)
            .map(|l| l.label.value.as_str())
    }

    /// The whole model as JSON (`contract render --format json`).
    pub fn to_json(&self) -> String {
        let mut s =
            serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        s.push('\n');
        s
    }
}
