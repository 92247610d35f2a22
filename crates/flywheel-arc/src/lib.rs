//! Operator actions on ARC.
//!
//! - [`secret`]: the owner GitHub App credentials, validated before anything
//!   is touched, rendered as redacted manifests, and written into both ARC
//!   namespaces by server-side apply.
//! - [`tofu`]: the arc-runners stack's init / plan / show / guard / apply
//!   sequence around `tofu` from PATH, applying exactly the saved plan the
//!   destroy guard allowed.

pub mod secret;
pub mod tofu;
