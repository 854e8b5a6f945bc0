//! Collectors: one per kind of object. Each produces
//! [`crate::eval::Observation`]s for evaluation and knows nothing of XML.

pub mod files;
