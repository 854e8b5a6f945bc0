//! Which terms ioc-scan evaluates.
//!
//! The dictionary lists every term OpenIOC knows; this hand-maintained list
//! says which of them a collector of ioc-scan actually reports. An item on
//! any other term is loaded, reported once as a warning, and never matches.
//!
//! To add a term: implement it in its collector, then add its constant to
//! [`SUPPORTED`] under its document (keep the list grouped; order inside a
//! group does not matter, [`status`] does not depend on it).
//!
//! A term listed here is supported even when the dictionary does not mark it
//! for Linux (e.g. `FileItem/INode`, marked `[Win]` in the 1.1 dictionary):
//! this list is the authority for what ioc-scan evaluates.

use super::{ids, TermId, TERMS};
use crate::indicator::Item;
use std::sync::OnceLock;

/// Whether ioc-scan evaluates a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// Items on this term never match; the reason is shown to the user.
    Unsupported(&'static str),
}

impl Support {
    pub fn is_supported(self) -> bool {
        matches!(self, Support::Supported)
    }
}

/// Reason given for a term the dictionary marks only for other platforms.
pub const NOT_ON_LINUX: &str = "not available on Linux";
/// Reason given for a Linux term no collector reports yet.
pub const NOT_IMPLEMENTED: &str = "not implemented yet";
/// Reason given for a term OpenIOC does not define.
pub const NOT_IN_DICTIONARY: &str = "term not in the OpenIOC 1.1 dictionary";

/// The terms ioc-scan evaluates, grouped by document.
pub static SUPPORTED: &[TermId] = &[
    // FileItem: the file collector (`collect::file`).
    ids::FileItem_FullPath,
    ids::FileItem_FilePath,
    ids::FileItem_FileName,
    ids::FileItem_FileExtension,
    ids::FileItem_SizeInBytes,
    ids::FileItem_Created,
    ids::FileItem_Modified,
    ids::FileItem_Accessed,
    ids::FileItem_Changed,
    ids::FileItem_Username,
    ids::FileItem_Group,
    ids::FileItem_GroupID,
    ids::FileItem_Permissions,
    ids::FileItem_INode,
    ids::FileItem_FileAttributes,
    ids::FileItem_Md5sum,
    ids::FileItem_Sha1sum,
    ids::FileItem_Sha256sum,
    // Content search: see `eval::ContentPatterns`.
    ids::FileItem_StringList_string,
];

/// Whether ioc-scan evaluates `id`.
pub fn status(id: TermId) -> Support {
    if is_listed(id) {
        Support::Supported
    } else if let Some(host) = crate::collect::coverage::host_status(id) {
        // Host collectors (`collect::coverage`): processes, ports, users...
        host.into()
    } else if id.def().on_linux() {
        Support::Unsupported(NOT_IMPLEMENTED)
    } else {
        Support::Unsupported(NOT_ON_LINUX)
    }
}

/// Whether one item of an IOC is evaluated, and why not: what `indicators`,
/// the console and the API show next to each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemSupport<'a> {
    Supported,
    Unsupported(&'static str),
    /// The reader found the item unusable (see [`Item::problem`]).
    Invalid(&'a str),
}

impl<'a> ItemSupport<'a> {
    pub fn of(item: &'a Item) -> Self {
        if let Some(problem) = &item.problem {
            return ItemSupport::Invalid(problem);
        }
        match super::lookup(&item.context.search) {
            None => ItemSupport::Unsupported(NOT_IN_DICTIONARY),
            Some(term) => match status(term) {
                Support::Supported => ItemSupport::Supported,
                Support::Unsupported(why) => ItemSupport::Unsupported(why),
            },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ItemSupport::Supported => "supported",
            ItemSupport::Unsupported(_) => "unsupported",
            ItemSupport::Invalid(_) => "invalid",
        }
    }

    pub fn reason(self) -> Option<&'a str> {
        match self {
            ItemSupport::Supported => None,
            ItemSupport::Unsupported(reason) => Some(reason),
            ItemSupport::Invalid(problem) => Some(problem),
        }
    }
}

/// Every supported term.
pub fn supported() -> impl Iterator<Item = TermId> {
    SUPPORTED.iter().copied().chain(crate::collect::coverage::answered())
}

fn is_listed(id: TermId) -> bool {
    // One bit per dictionary term, built once from SUPPORTED.
    static BITS: OnceLock<Vec<bool>> = OnceLock::new();
    let bits = BITS.get_or_init(|| {
        let mut bits = vec![false; TERMS.len()];
        for t in SUPPORTED {
            bits[t.0 as usize] = true;
        }
        bits
    });
    bits.get(id.0 as usize).copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_terms_are_supported() {
        assert_eq!(status(ids::FileItem_Md5sum), Support::Supported);
        assert_eq!(status(ids::FileItem_INode), Support::Supported);
        assert_eq!(status(ids::FileItem_StringList_string), Support::Supported);
    }

    #[test]
    fn others_say_why_not() {
        assert_eq!(
            status(ids::FileItem_PEInfo_PETimeStamp),
            Support::Unsupported(NOT_ON_LINUX)
        );
        assert_eq!(
            status(ids::FileItem_FileAttributes),
            Support::Unsupported(NOT_IMPLEMENTED)
        );
    }

    #[test]
    fn no_duplicates() {
        let mut v: Vec<_> = SUPPORTED.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), SUPPORTED.len());
    }
}
