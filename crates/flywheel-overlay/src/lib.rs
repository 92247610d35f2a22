//! Implementation overlay files, read as public overlays write them
//! (`shared/spec/overlay-format.md`): `config/organization.yaml`,
//! `MODULE.bazel`, the arc-runners tfvars and the S3 backend files.

pub mod backend;
mod hcl;
pub mod module_bazel;
pub mod organization;
pub mod pins;
pub mod tfvars;

pub use backend::{S3Backend, load_backend};
pub use module_bazel::{CorePin, find_core_pin};
pub use organization::{AccountKind, Organization, Visibility, load_organization};
pub use tfvars::{ArcRunnersVars, DeployedSet, ExtraRunnerSet, Lane, load_tfvars};
