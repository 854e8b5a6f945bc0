//! The file collector: a parallel, ripgrep-style directory walker that is
//! safe to point at a live (possibly hostile) system, and the
//! [`FileObservation`] it hands to evaluation.
//!
//! - [`walk`]: the parallel walker ([`WalkBuilder`] → [`WalkParallel`]),
//!   per-thread visitors returning [`WalkState`], per-entry errors as values.
//! - [`safety`]: what the walker never enters (pseudo filesystems) and never
//!   opens (FIFOs, sockets, devices), and the checked open of a regular file.
//! - [`meta`]: file metadata from `statx` (birth time when the filesystem
//!   has one).
//! - [`content`]: one read pass per file feeding only the needed hashers and
//!   the content-pattern automaton.
//! - [`accounts`]: uid/gid → name, read once from /etc/passwd and /etc/group.
//! - [`observation`]: [`FileObservation`], the `FileItem` document.

pub mod accounts;
pub mod content;
pub mod meta;
pub mod observation;
pub mod safety;
pub mod walk;

pub use accounts::Accounts;
pub use content::{ContentNeeds, ContentReader, ContentSink, Digests, ReadReport};
pub use meta::Meta;
pub use observation::{ContentState, FileObservation};
pub use walk::{FileEntry, SkipReason, Visitor, WalkBuilder, WalkError, WalkEvent, WalkOp, WalkParallel, WalkState};
