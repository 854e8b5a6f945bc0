//! Reading OpenIOC 1.0 and 1.1 files (quick-xml, streaming) into the
//! [`crate::indicator`] model, with diagnostics that name file, line, column.
