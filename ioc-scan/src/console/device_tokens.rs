//! The cache of device tokens: a device's requests (polls, uploads) are
//! authenticated without a database read. It must never admit a device
//! after it was changed or removed: every change bumps a generation and
//! empties the cache, and a device read from the database is cached only if
//! no change happened since the read began (a request racing a removal may
//! still be answered, but it cannot put the removed device back).
//! It holds only devices whose token was found, so it is bounded by the
//! number of enrolled devices.

use super::tables::DeviceRecordV1;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct DeviceTokens {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every change of a device.
    generation: u64,
    /// sha256 (hex) of a device token → its device.
    by_hash: HashMap<String, DeviceRecordV1>,
}

/// When a database read began, to cache what it found only if still current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl DeviceTokens {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached device of a token hash.
    pub fn get(&self, hash: &str) -> Option<DeviceRecordV1> {
        self.lock().by_hash.get(hash).cloned()
    }

    /// Taken before reading a device from the database.
    pub fn generation(&self) -> Generation {
        Generation(self.lock().generation)
    }

    /// Caches a device read from the database since `read_from`, unless a
    /// device changed meanwhile (then the next request reads again).
    pub fn insert(&self, read_from: Generation, hash: String, device: DeviceRecordV1) {
        let mut inner = self.lock();
        if inner.generation == read_from.0 {
            inner.by_hash.insert(hash, device);
        }
    }

    /// Forgets every cached device; called once a change is committed.
    pub fn changed(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.by_hash.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: u64) -> DeviceRecordV1 {
        DeviceRecordV1 {
            id,
            name: format!("d{id}"),
            hostname: None,
            os: None,
            agent_version: None,
            group_id: None,
            enrolled_at: 0,
            last_seen: None,
            token_hash: format!("h{id}"),
        }
    }

    #[test]
    fn a_device_read_before_its_removal_is_not_cached_after_it() {
        let cache = DeviceTokens::default();
        // A request reads the device; the removal commits and forgets; the
        // request then tries to cache what it read.
        let read_from = cache.generation();
        cache.changed();
        cache.insert(read_from, "h1".into(), device(1));
        assert!(cache.get("h1").is_none());
        // A read that began after the change is cached.
        let read_from = cache.generation();
        cache.insert(read_from, "h2".into(), device(2));
        assert_eq!(cache.get("h2").map(|d| d.id), Some(2));
        cache.changed();
        assert!(cache.get("h2").is_none());
    }
}
