//! Implementation overlay files, read as public overlays write them
//! (`shared/spec/overlay-format.md`).

pub mod organization;

pub use organization::{AccountKind, Organization, Visibility, load_organization};
