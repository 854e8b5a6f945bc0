//! [`FileObservation`]: a file as the `FileItem` document.
//!
//! | term | value |
//! |---|---|
//! | `FullPath` | the absolute path, e.g. `/usr/bin/ls` |
//! | `FilePath` | its directory, with a leading `/` and no trailing one: `/usr/bin` (`/` for a file in the root) |
//! | `FileName` | `ls` |
//! | `FileExtension` | after the last dot, without it: `gz` for `a.tar.gz`; absent for `.bashrc`, `Makefile`, `a.` |
//! | `SizeInBytes` | UInt |
//! | `Created` | birth time (statx `btime`) when the filesystem records it, else absent |
//! | `Modified`, `Accessed`, `Changed` | mtime, atime, ctime (Time, seconds) |
//! | `Username`, `Group` | owner and group names from /etc/passwd, /etc/group (absent when unknown) |
//! | `GroupID` | the gid, as a decimal string (the dictionary types it as a string) |
//! | `Permissions` | the mode's permission bits as an Int: `0o755` is 493. An IOC writing the octal spelling (`0755`, `755`) must be read as octal by evaluation; the value here is always the number |
//! | `INode` | the inode number (Int) |
//! | `FileAttributes` | the attributes set, by their `lsattr -l` names: `Immutable`, `Append_Only`, `No_Dump`, `Compression_Requested`, `Encrypted`, `Verity`, `DAX` (and statx's `Automount`, `Mount_Root`); none set: no value (from the walk's own statx: no extra system call) |
//! | `Md5sum`, `Sha1sum`, `Sha256sum` | Digest, once the content is read (`Pending` before, `Absent` when it cannot be read or is over the size limit) |
//! | `StringList/string` | the ids of the IOC content patterns found in the content, as UInt (the handshake of `eval::content`; same states as digests) |
//!
//! Paths that are not valid UTF-8 are matched in their lossy form (invalid
//! bytes as U+FFFD); the detection's object carries the exact bytes in hex
//! (`path_bytes_hex`) so the file can be found again.

use super::accounts::Accounts;
use super::content::{Digests, ReadReport};
use super::walk::FileEntry;
use crate::eval::{Field, ObjectRef, Observation, Value};
use crate::terms::{ids, TermId};
use serde_json::{json, Map};
use std::borrow::Cow;
use std::os::unix::ffi::OsStrExt;

/// Where the content of the file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentState {
    /// Not read yet: content terms are `Pending`.
    NotRead,
    /// Read; terms not computed by that read stay `Pending` until
    /// [`FileObservation::finish_content`].
    Read(ReadReport),
    /// Will not be read (over the size limit, unreadable): content terms are
    /// `Absent`.
    Unavailable,
}

pub struct FileObservation<'a> {
    entry: &'a FileEntry<'a>,
    path: Cow<'a, str>,
    lossy: bool,
    /// Byte offset of the file name in `path`.
    name_start: usize,
    accounts: &'a Accounts,
    digests: Digests,
    /// Ids of the content patterns found (see `eval::content`).
    strings: Option<Vec<u32>>,
    content: ContentState,
    /// Content terms not computed are `Absent` rather than `Pending`.
    content_final: bool,
}

impl<'a> FileObservation<'a> {
    pub fn new(entry: &'a FileEntry<'a>, accounts: &'a Accounts) -> FileObservation<'a> {
        let raw = entry.path().as_os_str();
        let (path, lossy) = match raw.to_str() {
            Some(s) => (Cow::Borrowed(s), false),
            None => (String::from_utf8_lossy(raw.as_bytes()), true),
        };
        let name_start = path.rfind('/').map_or(0, |i| i + 1);
        FileObservation {
            entry,
            path,
            lossy,
            name_start,
            accounts,
            digests: Digests::default(),
            strings: None,
            content: ContentState::NotRead,
            content_final: false,
        }
    }

    pub fn entry(&self) -> &'a FileEntry<'a> {
        self.entry
    }

    pub fn path_str(&self) -> &str {
        &self.path
    }

    pub fn content_state(&self) -> ContentState {
        self.content
    }

    /// The content was read: these digests (those computed) and, when the
    /// patterns were searched, the literals found.
    pub fn set_content(&mut self, digests: Digests, strings: Option<Vec<u32>>, report: ReadReport) {
        self.digests = Digests {
            md5: digests.md5.or(self.digests.md5),
            sha1: digests.sha1.or(self.digests.sha1),
            sha256: digests.sha256.or(self.digests.sha256),
        };
        if strings.is_some() {
            self.strings = strings;
        }
        self.content = ContentState::Read(report);
    }

    /// The content will not be read: content terms are `Absent`.
    pub fn set_content_unavailable(&mut self) {
        self.content = ContentState::Unavailable;
        self.content_final = true;
    }

    /// No further read will happen: content terms not computed are `Absent`.
    pub fn finish_content(&mut self) {
        self.content_final = true;
    }

    pub fn digests(&self) -> &Digests {
        &self.digests
    }

    fn name(&self) -> &str {
        &self.path[self.name_start..]
    }

    fn dir(&self) -> &str {
        match self.name_start {
            0 => "",
            1 => "/",
            n => &self.path[..n - 1],
        }
    }

    fn extension(&self) -> Option<&str> {
        let name = self.name();
        match name.rfind('.') {
            Some(0) | None => None,
            Some(i) if i + 1 == name.len() => None,
            Some(i) => Some(&name[i + 1..]),
        }
    }

    fn pending_or_absent(&self) -> Field<'_> {
        if self.content_final || self.content == ContentState::Unavailable {
            Field::Absent
        } else {
            Field::Pending
        }
    }

    fn digest<'s>(&'s self, d: Option<&'s [u8]>) -> Field<'s> {
        match d {
            Some(d) => Field::One(Value::Digest(Cow::Borrowed(d))),
            None => self.pending_or_absent(),
        }
    }
}

fn str_field(s: &str) -> Field<'_> {
    Field::One(Value::Str(Cow::Borrowed(s)))
}

impl Observation for FileObservation<'_> {
    fn document(&self) -> &'static str {
        "FileItem"
    }

    fn field(&self, term: TermId) -> Field<'_> {
        match term {
            ids::FileItem_FullPath => return str_field(&self.path),
            ids::FileItem_FilePath => return str_field(self.dir()),
            ids::FileItem_FileName => return str_field(self.name()),
            ids::FileItem_FileExtension => return self.extension().map_or(Field::Absent, str_field),
            ids::FileItem_Md5sum => return self.digest(self.digests.md5.as_ref().map(|d| &d[..])),
            ids::FileItem_Sha1sum => return self.digest(self.digests.sha1.as_ref().map(|d| &d[..])),
            ids::FileItem_Sha256sum => return self.digest(self.digests.sha256.as_ref().map(|d| &d[..])),
            ids::FileItem_StringList_string => {
                return match &self.strings {
                    Some(found) => Field::Values(found.iter().map(|id| Value::UInt(u64::from(*id))).collect()),
                    None => self.pending_or_absent(),
                }
            }
            _ => {}
        }
        let Ok(meta) = self.entry.metadata() else {
            return Field::Absent;
        };
        match term {
            ids::FileItem_SizeInBytes => Field::One(Value::UInt(meta.size)),
            ids::FileItem_Created => meta.btime.map_or(Field::Absent, |t| Field::One(Value::Time(t))),
            ids::FileItem_Modified => Field::One(Value::Time(meta.mtime)),
            ids::FileItem_Accessed => Field::One(Value::Time(meta.atime)),
            ids::FileItem_Changed => Field::One(Value::Time(meta.ctime)),
            ids::FileItem_Username => self.accounts.user(meta.uid).map_or(Field::Absent, str_field),
            ids::FileItem_Group => self.accounts.group(meta.gid).map_or(Field::Absent, str_field),
            ids::FileItem_GroupID => Field::One(Value::Str(Cow::Owned(meta.gid.to_string()))),
            ids::FileItem_Permissions => Field::One(Value::Int(i64::from(meta.permissions()))),
            ids::FileItem_INode => Field::One(Value::Int(meta.ino as i64)),
            ids::FileItem_FileAttributes => Field::Values(meta.attribute_names().map(|n| Value::Str(Cow::Borrowed(n))).collect()),
            _ => Field::Absent,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        let mut fields = Map::new();
        fields.insert("path".into(), json!(self.path));
        if self.lossy {
            fields.insert(
                "path_bytes_hex".into(),
                json!(hex::encode(self.entry.path().as_os_str().as_bytes())),
            );
        }
        if let Ok(meta) = self.entry.metadata() {
            fields.insert("size".into(), json!(meta.size));
            if let Some(t) = chrono::DateTime::from_timestamp(meta.mtime, 0) {
                fields.insert(
                    "mtime".into(),
                    json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                );
            }
            fields.insert("mode".into(), json!(format!("{:o}", meta.permissions())));
            fields.insert("uid".into(), json!(meta.uid));
        }
        if let Some(d) = self.digests.md5 {
            fields.insert("md5".into(), json!(hex::encode(d)));
        }
        if let Some(d) = self.digests.sha1 {
            fields.insert("sha1".into(), json!(hex::encode(d)));
        }
        if let Some(d) = self.digests.sha256 {
            fields.insert("sha256".into(), json!(hex::encode(d)));
        }
        if let ContentState::Read(r) = self.content {
            if r.grew {
                fields.insert(
                    "note".into(),
                    json!("file grew while read; digests cover the bytes read"),
                );
            } else if r.shrank {
                fields.insert(
                    "note".into(),
                    json!("file shrank while read; digests cover the bytes read"),
                );
            }
            if r.truncated {
                fields.insert(
                    "note".into(),
                    json!("file grew past the size limit; digests cover the bytes read"),
                );
            }
        }
        ObjectRef { kind: "file", fields }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::path::Path;

    fn with_obs(name: &str, body: impl FnOnce(&mut FileObservation<'_>)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, b"content").unwrap();
        let dirfd = File::open(dir.path()).unwrap();
        let cname = CString::new(name).unwrap();
        let entry = FileEntry::new(dirfd.as_fd(), &cname, &path);
        let accounts = Accounts::parse("root:x:0:0::/:/bin/sh\n", "root:x:0:\n");
        let mut obs = FileObservation::new(&entry, &accounts);
        body(&mut obs);
    }

    fn s(f: Field<'_>) -> Option<String> {
        match f {
            Field::One(Value::Str(s)) => Some(s.into_owned()),
            _ => None,
        }
    }

    #[test]
    fn path_terms() {
        with_obs("a.tar.gz", |o| {
            let full = s(o.field(ids::FileItem_FullPath)).unwrap();
            assert!(full.ends_with("/a.tar.gz"));
            assert_eq!(s(o.field(ids::FileItem_FileName)).unwrap(), "a.tar.gz");
            assert_eq!(s(o.field(ids::FileItem_FileExtension)).unwrap(), "gz");
            let dir = s(o.field(ids::FileItem_FilePath)).unwrap();
            assert_eq!(Path::new(&dir).join("a.tar.gz"), Path::new(&full));
            assert_eq!(o.field(ids::FileItem_SizeInBytes), Field::One(Value::UInt(7)));
            assert_eq!(s(o.field(ids::FileItem_Username)).unwrap(), "root");
        });
        with_obs(".bashrc", |o| {
            assert_eq!(o.field(ids::FileItem_FileExtension), Field::Absent)
        });
    }

    #[test]
    fn content_terms_are_pending_then_known_or_absent() {
        with_obs("x", |o| {
            assert_eq!(o.field(ids::FileItem_Md5sum), Field::Pending);
            let d = Digests {
                sha256: Some([7; 32]),
                ..Default::default()
            };
            o.set_content(d, None, ReadReport::default());
            assert_eq!(
                o.field(ids::FileItem_Sha256sum),
                Field::One(Value::Digest(Cow::Borrowed(&[7u8; 32][..])))
            );
            assert_eq!(o.field(ids::FileItem_Md5sum), Field::Pending);
            o.finish_content();
            assert_eq!(o.field(ids::FileItem_Md5sum), Field::Absent);
            assert_eq!(o.field(ids::FileItem_StringList_string), Field::Absent);
            assert_eq!(o.object_ref().fields["sha256"], json!(hex::encode([7u8; 32])));
        });
    }

    #[test]
    fn non_utf8_paths_round_trip_in_hex() {
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
        let path = dir.path().join(name);
        std::fs::write(&path, b"").unwrap();
        let dirfd = File::open(dir.path()).unwrap();
        let cname = CString::new(name.as_bytes()).unwrap();
        let entry = FileEntry::new(dirfd.as_fd(), &cname, &path);
        let obs = FileObservation::new(&entry, Accounts::system());
        let r = obs.object_ref();
        let hexed = r.fields["path_bytes_hex"].as_str().unwrap();
        assert_eq!(hex::decode(hexed).unwrap(), path.as_os_str().as_bytes());
        assert!(s(obs.field(ids::FileItem_FileName)).unwrap().starts_with("bad"));
    }
}
