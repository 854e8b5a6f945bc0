//! Helpers for the store tests: small IOCs built in code, a store on a
//! tempdir with a manual clock.
#![allow(dead_code)]
use chrono::{DateTime, Utc};
use ioc_scan::indicator::{
    Condition, Content, Context, Indicator, Ioc, IocMeta, Item, Node, NodeId, OpenIocVersion,
    Operator, Position,
};
use ioc_scan::store::{
    IocFile, ManualClock, NewCollection, NewTask, OpenOptions, ResponseSettingsV1, Schedule,
    ScopeV1, Store, TaskRecordV1,
};
use std::path::Path;
use std::sync::Arc;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An IOC with one `FileItem/FullPath is <path>` item.
pub fn ioc(id: &str, source: &str, path: &str) -> Ioc {
    Ioc {
        id: id.into(),
        version: OpenIocVersion::V1_1,
        meta: IocMeta {
            short_description: Some(format!("{id} name")),
            description: Some(format!("{id} description")),
            ..Default::default()
        },
        nodes: vec![
            Node::Indicator(Indicator {
                id: format!("{id}-root"),
                operator: Operator::Or,
                children: vec![NodeId(1)],
                position: Position::default(),
            }),
            Node::Item(Item {
                id: format!("{id}-item"),
                condition: Condition::Is,
                context: Context {
                    document: "FileItem".into(),
                    search: "FileItem/FullPath".into(),
                    context_type: "mir".into(),
                },
                content: Content {
                    content_type: "string".into(),
                    value: path.into(),
                },
                negate: false,
                preserve_case: false,
                position: Position { line: 1, column: 1 },
                problem: None,
            }),
        ],
        source: source.into(),
    }
}

/// A collection of one file per (file name, ioc id, path).
pub fn collection(entries: &[(&str, &str, &str)]) -> NewCollection {
    NewCollection {
        files: entries
            .iter()
            .map(|(f, id, _)| IocFile {
                name: f.to_string(),
                bytes: format!("<ioc id='{id}'/>").into_bytes(),
            })
            .collect(),
        iocs: entries.iter().map(|(f, id, p)| ioc(id, f, p)).collect(),
    }
}

pub fn new_task(name: &str, coll: NewCollection) -> NewTask {
    NewTask {
        name: name.into(),
        description: String::new(),
        collection: coll,
        scope: ScopeV1 {
            critical_areas: true,
            ioc_paths: true,
            ..Default::default()
        },
        response: ResponseSettingsV1::default(),
        schedule: Schedule::Manual,
        monitor_seconds: None,
    }
}

pub fn open_at(path: &Path, clock: Arc<ManualClock>) -> Store {
    Store::open(
        path,
        OpenOptions {
            clock,
            ..Default::default()
        },
    )
    .unwrap()
}

/// A store (file `db`) in a fresh tempdir, with a manual clock set to
/// `now`. Keep the tempdir bound (not `_`) while the store is used.
pub fn temp_store(now: &str) -> (tempfile::TempDir, Arc<ManualClock>, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(now)));
    let store = open_at(&dir.path().join("db"), clock.clone());
    (dir, clock, store)
}

/// A manual task `name` over a collection of (file name, ioc id, path).
pub fn create_task(store: &Store, name: &str, entries: &[(&str, &str, &str)]) -> TaskRecordV1 {
    store.create_task(new_task(name, collection(entries))).unwrap()
}
