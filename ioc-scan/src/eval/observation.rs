//! The seam between collectors and evaluation: an observed object exposes
//! its fields by [`TermId`]; evaluation never reads the host itself.

use crate::terms::TermId;
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;

/// One value of a field, typed by the collector.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    UInt(u64),
    /// Seconds since the Unix epoch, UTC.
    Time(i64),
    /// A digest's raw bytes (md5, sha1, sha256).
    Digest(Cow<'a, [u8]>),
    Ip(IpAddr),
    Bool(bool),
    /// A duration in seconds.
    Duration(u64),
}

/// What an observation knows of one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// The field's values (a multi-valued field, e.g. the strings of a file,
    /// matches when any one value matches; none means no value matches).
    Values(Vec<Value<'a>>),
    /// One value (the common case, without allocating).
    One(Value<'a>),
    /// Computing the field costs I/O the collector has not done yet (file
    /// content, hashes). Evaluation answers "unknown" and tells the
    /// collector which terms it needs.
    Pending,
    /// This object has no such field (or it could not be read): items on it
    /// do not match.
    Absent,
}

/// How a matched object is named in a detection: `{"kind":"file","path":...}`.
/// The collector chooses the fields; `kind` is one of `file`, `process`,
/// `connection`, `port`, `dns`, `user`, `system`, ...
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectRef {
    pub kind: &'static str,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// An observed object: a file, a process, a connection...
pub trait Observation {
    /// The OpenIOC document this object answers (`FileItem`, `ProcessItem`...).
    fn document(&self) -> &'static str;
    /// The values of one term of this document.
    fn field(&self, term: TermId) -> Field<'_>;
    /// How to name this object in a detection.
    fn object_ref(&self) -> ObjectRef;
}
