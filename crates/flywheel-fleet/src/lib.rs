//! The fleet model's plain functions: which workflow labels a scale set
//! serves ([`labels`]), which overlay owns it ([`owner`]), and the
//! pause/resume operator action as the exact server-side apply bodies
//! ([`pause`]). No I/O: the server's watches feed these, and the governor
//! and the drift view decide labels with the same function.
//!
//! The live fleet: [`snapshot`] builds the fleet model as one value (a pure
//! function of the watched objects), [`watch`] runs the kube-runtime
//! reflectors that feed it and publishes each revision once; [`history`]
//! turns consecutive revisions into per-minute samples per label and owner.

pub mod history;
pub mod labels;
pub mod owner;
pub mod pause;
pub mod snapshot;
pub mod watch;

pub use labels::{LABEL_ANNOTATION, LabelSource, SetLabels, set_labels};
pub use owner::{Owner, config_owner, owner_of};
pub use pause::{
    FIELD_MANAGER, PAUSED_AT, PAUSED_BY, PAUSED_MAX, Paused, Plan, pause, paused, resume,
};
