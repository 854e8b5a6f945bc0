//! The console's write transactions, taken one at a time inside the
//! process: a writer waiting here is woken as soon as the previous one
//! commits, instead of polling redb's lock with growing pauses (the store's
//! way of waiting for another process, which stays the fallback).

use super::error::Result;
use crate::store::{DbError, Store};
use std::sync::{Mutex, MutexGuard};

static WRITER: Mutex<()> = Mutex::new(());

/// A write transaction holding the console's writer lock until it ends.
pub struct Write {
    txn: redb::WriteTransaction,
    _turn: MutexGuard<'static, ()>,
}

impl std::ops::Deref for Write {
    type Target = redb::WriteTransaction;
    fn deref(&self) -> &redb::WriteTransaction {
        &self.txn
    }
}

impl Write {
    pub fn commit(self) -> Result<()> {
        self.txn.commit().map_err(DbError::from)?;
        Ok(())
    }
}

/// Begins a write transaction once the console's other writers are done.
pub fn begin(store: &Store) -> Result<Write> {
    let turn = WRITER.lock().unwrap_or_else(|p| p.into_inner());
    let txn = store.write()?;
    Ok(Write { txn, _turn: turn })
}
