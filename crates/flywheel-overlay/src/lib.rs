//! Implementation overlay files, read as public overlays write them
//! (`shared/spec/overlay-format.md`): `config/organization.yaml`,
//! `MODULE.bazel`, the arc-runners tfvars and the S3 backend files.

use std::path::{Path, PathBuf};

pub mod backend;
mod hcl;
pub mod module_bazel;
pub mod organization;
pub mod pins;
pub mod tfvars;

pub use backend::{S3Backend, load_backend, refuse_http_state};
pub use module_bazel::{CorePin, find_core_pin};
pub use organization::{AccountKind, Organization, Visibility, load_organization};
pub use tfvars::{ArcRunnersVars, DeployedSet, ExtraRunnerSet, Lane, load_tfvars};

/// The one file in `dir` whose name ends with `suffix`; `prefer` + `suffix`
/// wins when it is there. `Ok(None)`: none (or no such folder).
/// `Err(candidates)`: several, sorted, for an error that lists them.
pub fn single_file(
    dir: &Path,
    suffix: &str,
    prefer: Option<&str>,
) -> Result<Option<PathBuf>, Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    found.sort();
    if let Some(prefer) = prefer {
        let want = format!("{prefer}{suffix}");
        if let Some(p) = found
            .iter()
            .find(|p| p.file_name().and_then(|n| n.to_str()) == Some(want.as_str()))
        {
            return Ok(Some(p.clone()));
        }
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(found),
    }
}

/// `  path` lines, for an error that lists candidate files.
pub fn listing(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}
