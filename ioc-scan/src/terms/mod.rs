//! The term registry: every term of the OpenIOC 1.1 dictionary (generated
//! into `dictionary.rs`), its document, data type and platforms, and whether
//! ioc-scan evaluates it.

mod dictionary;
pub mod support;

pub use dictionary::{ids, TERMS};

use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Index of a term in [`TERMS`]. Constants for every term are in [`ids`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TermId(pub u16);

/// The dictionary's `data-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    String,
    Int,
    UInt64,
    DateTime,
    Boolean,
}

pub const PLATFORM_WIN: u8 = 1;
pub const PLATFORM_OSX: u8 = 2;
pub const PLATFORM_LINUX: u8 = 4;

/// One `<iocterm>` of the dictionary.
#[derive(Debug, Clone, Copy)]
pub struct TermDef {
    /// e.g. `FileItem/Md5sum`
    pub text: &'static str,
    /// e.g. `md5`, `string`, `IP`, `date`
    pub display_type: &'static str,
    pub data_type: DataType,
    pub title: &'static str,
    /// `PLATFORM_*` bits.
    pub platforms: u8,
}

impl TermDef {
    /// The document (object kind) part: `FileItem` of `FileItem/Md5sum`.
    pub fn document(&self) -> &'static str {
        self.text.split('/').next().unwrap_or(self.text)
    }

    pub fn on_linux(&self) -> bool {
        self.platforms & PLATFORM_LINUX != 0
    }
}

impl TermId {
    pub fn def(self) -> &'static TermDef {
        &TERMS[self.0 as usize]
    }

    pub fn text(self) -> &'static str {
        self.def().text
    }
}

/// Look a term up by its text (`Context/@search`). Exact match first, then
/// ASCII case-insensitive (IOC editors differ in case, e.g. `SecurityID`).
pub fn lookup(text: &str) -> Option<TermId> {
    static EXACT: OnceLock<HashMap<&'static str, TermId>> = OnceLock::new();
    static FOLDED: OnceLock<HashMap<String, TermId>> = OnceLock::new();
    let exact = EXACT.get_or_init(|| TERMS.iter().enumerate().map(|(i, t)| (t.text, TermId(i as u16))).collect());
    if let Some(id) = exact.get(text) {
        return Some(*id);
    }
    let folded = FOLDED.get_or_init(|| {
        let mut m = HashMap::new();
        for (i, t) in TERMS.iter().enumerate() {
            m.entry(t.text.to_ascii_lowercase()).or_insert(TermId(i as u16));
        }
        m
    });
    folded.get(&text.to_ascii_lowercase()).copied()
}

/// Every term of the dictionary marked for Linux.
pub fn linux_terms() -> impl Iterator<Item = (TermId, &'static TermDef)> {
    TERMS.iter().enumerate().filter(|(_, t)| t.on_linux()).map(|(i, t)| (TermId(i as u16), t))
}

// The generator itself, so that a test fails when the dictionary and the
// generated table drift apart.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../xtask/src/gen_terms.rs"]
mod gen_terms;

#[cfg(test)]
mod tests {
    use super::*;

    use super::gen_terms;

    #[test]
    fn dictionary_rs_is_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let dict = std::fs::read_to_string(root.join(gen_terms::DICTIONARY)).unwrap();
        let generated = std::fs::read_to_string(root.join(gen_terms::OUTPUT)).unwrap();
        assert!(gen_terms::render(&dict).unwrap() == generated, "run `cargo xtask gen-terms`");
    }

    #[test]
    fn lookup_exact_and_case_folded() {
        assert_eq!(lookup("FileItem/Md5sum"), Some(ids::FileItem_Md5sum));
        assert_eq!(lookup("fileitem/md5SUM"), Some(ids::FileItem_Md5sum));
        assert_eq!(lookup("NoSuchItem/x"), None);
        assert_eq!(ids::FileItem_Md5sum.def().document(), "FileItem");
        // 293 linux entries in the dictionary, one of them listed twice.
        assert_eq!(linux_terms().count(), 292);
    }
}
