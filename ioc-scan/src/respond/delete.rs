//! Delete a detected file, never losing it: its quarantine copy is written
//! and verified first; right before the unlink the original is opened and
//! hashed again and must still be the quarantined content (and the
//! detected one); the name must still point at the inode that was hashed.
//!
//! Killed at any point the file is either still in place, or gone from its
//! place with its verified copy and record already in the store (the
//! record is fsynced before anything is unlinked).

use super::fsx::{self, escape};
use super::quarantine::{self, open_original, QuarantineError, Quarantined};
use super::target::{FileFacts, Target};
use super::{test_pause, Action, ActionRecord, Outcome, ResponseContext};
use crate::eval::Detection;
use nix::errno::Errno;
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde_json::json;
use std::os::fd::AsFd;

/// What the delete step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    /// Already gone, and its copy is in quarantine.
    AlreadyGone,
}

/// Hash `path` again and unlink it if it is still the quarantined content.
pub fn delete_verified(
    path: &[u8],
    quarantined: &Quarantined,
    expect: Option<&FileFacts>,
) -> Result<Deleted, QuarantineError> {
    let shown = escape(path);
    let record = &quarantined.record;
    let (loc, file, st) = match open_original(path) {
        Ok(x) => x,
        Err(QuarantineError::Gone { .. }) => return Ok(Deleted::AlreadyGone),
        Err(e) => return Err(e),
    };
    let changed = |reason: String| QuarantineError::Changed {
        path: shown.clone(),
        reason,
    };
    let (sha, len) = fsx::sha256_file(&file).map_err(|source| QuarantineError::Io {
        op: "hashing",
        path: shown.clone(),
        source,
    })?;
    let sha_hex = hex::encode(sha);
    if sha_hex != record.sha256 || len != record.size {
        return Err(changed(format!(
            "changed since detection: sha256 {sha_hex} now, {} quarantined",
            record.sha256
        )));
    }
    if let Some(reason) = expect.and_then(|f| f.changed(&sha, len, st.st_mtime)) {
        return Err(changed(reason));
    }
    test_pause("rehash");
    // The name must still be the inode just hashed (not swapped meanwhile).
    match loc.lstat() {
        Ok(now) if now.st_dev == st.st_dev && now.st_ino == st.st_ino => {}
        Ok(_) => return Err(changed("replaced by another file while being checked".into())),
        Err(Errno::ENOENT) => return Ok(Deleted::AlreadyGone),
        Err(e) => {
            return Err(QuarantineError::Io {
                op: "stat",
                path: shown,
                source: e.into(),
            })
        }
    }
    unlinkat(loc.dir.as_fd(), loc.name.as_c_str(), UnlinkatFlags::NoRemoveDir).map_err(|e| QuarantineError::Io {
        op: "unlink",
        path: shown.clone(),
        source: e.into(),
    })?;
    // Best effort: the copy is already durable, the unlink need not be.
    let _ = loc.sync_dir();
    test_pause("delete");
    Ok(Deleted::Removed)
}

/// The delete action for one detection: the quarantine step's record and
/// the delete step's record (which also names the quarantine copy).
pub fn respond(d: &Detection, target: &Target, ctx: &ResponseContext<'_>) -> (ActionRecord, ActionRecord) {
    let refused = |o: Outcome, details| ActionRecord::new(Action::Delete, target.clone(), o, details);
    let q = match quarantine::quarantine_detection(d, target, ctx) {
        Ok(q) => q,
        Err(q_record) => {
            let why = q_record.outcome.reason().unwrap_or("quarantine failed").to_string();
            let del = match &q_record.outcome {
                Outcome::Refused(_) => refused(
                    Outcome::Refused(format!("not deleted: {why}")),
                    json!({"quarantine": q_record.outcome}),
                ),
                _ => refused(
                    Outcome::Refused(format!("not deleted: no verified quarantine copy ({why})")),
                    json!({"quarantine": q_record.outcome}),
                ),
            };
            return (*q_record, del);
        }
    };
    let q_details = quarantine::details(&q, ctx);
    let q_record = ActionRecord::new(Action::Quarantine, target.clone(), Outcome::Done, q_details.clone());
    let Some(facts) = FileFacts::of(d) else {
        // (quarantine_detection only succeeds for files)
        return (
            q_record,
            refused(Outcome::Refused("not a file".into()), serde_json::Value::Null),
        );
    };
    let del = match delete_verified(&facts.path, &q, Some(&facts)) {
        Ok(deleted) => ActionRecord::new(
            Action::Delete,
            target.clone(),
            Outcome::Done,
            json!({
                "quarantine": q_details,
                "rehashed_sha256": q.record.sha256,
                "deleted": deleted == Deleted::Removed,
                "already_gone": deleted == Deleted::AlreadyGone,
            }),
        ),
        Err(e) => refused(e.outcome(), json!({"quarantine": q_details, "deleted": false})),
    };
    (q_record, del)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::quarantine::QuarantineStore;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn deletes_only_the_quarantined_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuarantineStore::open(&dir.path().join("q")).unwrap();
        let f = dir.path().join("f");
        let p = f.as_os_str().as_bytes();
        std::fs::write(&f, b"detected").unwrap();
        let q = store.put(p, None, None, 1 << 20).unwrap();
        std::fs::write(&f, b"DETECTED").unwrap();
        let err = delete_verified(p, &q, None).unwrap_err();
        assert!(err.to_string().contains("changed since detection"), "{err}");
        assert!(f.exists());
        std::fs::write(&f, b"detected").unwrap();
        assert_eq!(delete_verified(p, &q, None).unwrap(), Deleted::Removed);
        assert!(!f.exists());
        assert_eq!(delete_verified(p, &q, None).unwrap(), Deleted::AlreadyGone);
    }
}
