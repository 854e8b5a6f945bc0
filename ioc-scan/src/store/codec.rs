//! How records are encoded in redb: JSON, under a redb type name that carries
//! the record's version (`ioc_scan::TaskRecordV1+json`), so a table written by
//! a later layout is refused by redb's type check instead of being misread, and
//! a migration can read the old table with the old type.
//!
//! Decoding happens in our code, not inside redb: [`Encoded::decode`] returns
//! an error for a damaged record instead of panicking.

use redb::{TypeName, Value};
use serde::{de::DeserializeOwned, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A record type stored in a table: its serde layout and its versioned name.
pub trait Record: Serialize + DeserializeOwned {
    /// Unique and versioned, e.g. `ioc_scan::RunRecordV1`. Change the layout,
    /// change the name.
    const TYPE_NAME: &'static str;
}

/// The redb value type of a table holding `T` records.
pub struct Json<T>(PhantomData<T>);

impl<T> fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Json")
    }
}

/// The bytes of one `T` record, as read from or written to a table.
pub struct Encoded<'a, T> {
    bytes: Cow<'a, [u8]>,
    _record: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Encoded<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoded({} bytes)", self.bytes.len())
    }
}

/// A record that could not be decoded (damaged, or written by a bug).
#[derive(Debug, thiserror::Error)]
#[error("damaged {type_name} record: {source}")]
pub struct DecodeError {
    pub type_name: &'static str,
    #[source]
    pub source: serde_json::Error,
}

impl<T: Record> Encoded<'static, T> {
    pub fn encode(record: &T) -> Self {
        // Serializing our own plain data types to JSON cannot fail (no maps
        // with non-string keys, no failing Serialize impls); an empty record
        // would be reported as damaged on read, never silently accepted.
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        Encoded {
            bytes: Cow::Owned(bytes),
            _record: PhantomData,
        }
    }
}

impl<T: Record> Encoded<'_, T> {
    pub fn decode(&self) -> Result<T, DecodeError> {
        serde_json::from_slice(&self.bytes).map_err(|source| DecodeError {
            type_name: T::TYPE_NAME,
            source,
        })
    }
}

impl<T: Record> Value for Json<T> {
    type SelfType<'a>
        = Encoded<'a, T>
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a [u8]
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Encoded<'a, T>
    where
        Self: 'a,
    {
        Encoded {
            bytes: Cow::Borrowed(data),
            _record: PhantomData,
        }
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Encoded<'b, T>) -> &'a [u8]
    where
        Self: 'b,
    {
        &value.bytes
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("{}+json", T::TYPE_NAME))
    }
}
