//! Opening the database: new, ours, foreign, damaged, newer.
use crate::store_common::*;
use ioc_scan::store::{ManualClock, OpenError, OpenOptions, Store};
use std::sync::Arc;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t("2026-03-01T00:00:00Z")))
}

#[test]
fn creates_a_new_database_with_its_folder_and_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/sub/ioc-scan.redb");
    let store = open_at(&path, clock());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let task = create_task(&store, "t", &[("a.ioc", "A", "/tmp/a")]);
    drop(store);
    let store = open_at(&path, clock());
    assert_eq!(store.task(task.id).unwrap().unwrap().name, "t");
    assert!(store.check_consistency().unwrap().is_empty());
}

#[test]
fn an_empty_file_becomes_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.redb");
    std::fs::write(&path, b"").unwrap();
    let store = open_at(&path, clock());
    assert!(store.tasks().unwrap().is_empty());
}

#[test]
fn random_bytes_are_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.redb");
    // Deterministic pseudo-random bytes (xorshift), 64 KiB.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path, OpenOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::NotRedb { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not an ioc-scan database"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_text_file_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "just some notes\n").unwrap();
    let err = Store::open(&path, OpenOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::NotRedb { .. }), "{err:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "just some notes\n");
}

#[test]
fn a_foreign_redb_file_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        const OTHER: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("other_app");
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(OTHER).unwrap().insert("k", 7).unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, OpenOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::Foreign { .. }), "{err:?}");
    assert!(err.to_string().contains("another program"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "foreign file was modified"
    );
}

#[test]
fn a_newer_schema_version_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.redb");
    drop(open_at(&path, clock()));
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(ioc_scan::store::tables::META)
            .unwrap()
            .insert("schema_version", 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, OpenOptions::default()).unwrap_err();
    match &err {
        OpenError::TooNew {
            found, supported, ..
        } => {
            assert_eq!(
                (*found, *supported),
                (99, ioc_scan::store::tables::SCHEMA_VERSION)
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains("newer than this ioc-scan supports"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn two_handles_in_one_process_and_sequence_ids_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let a = open_at(&path, clock());
    let b = open_at(&path, clock());
    let t1 = create_task(&a, "one", &[("a.ioc", "A", "/a")]);
    let t2 = create_task(&b, "two", &[("b.ioc", "B", "/b")]);
    assert_ne!(t1.id, t2.id);
    assert_eq!(a.tasks().unwrap().len(), 2);
    a.delete_task(t2.id).unwrap();
    let t3 = create_task(&b, "three", &[("c.ioc", "C", "/c")]);
    assert!(t3.id > t2.id);
}
