//! Byte offsets to 1-based line and column.
//!
//! The reader asks for positions in increasing offset order, so a cursor that
//! only moves forward makes the whole file cost one pass and no memory (a
//! table of line starts for a 64 MiB file of newlines would cost 512 MiB).
//! Asking for an earlier offset (error positions) restarts from the top.

use crate::indicator::Position;

pub(crate) struct LineCursor<'a> {
    text: &'a [u8],
    /// Offset the cursor stands at, its line (1-based) and the number of
    /// characters between the line's start and the offset (so that a file
    /// on one long line is still read in one pass).
    offset: usize,
    line: u32,
    column_chars: usize,
}

impl<'a> LineCursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineCursor { text: text.as_bytes(), offset: 0, line: 1, column_chars: 0 }
    }

    /// Line and column (in characters, 1-based) of the byte at `offset`.
    /// Offsets past the end are clamped to the end.
    pub(crate) fn position(&mut self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
            self.column_chars = 0;
        }
        let skipped = &self.text[self.offset..offset];
        let mut rest = skipped;
        for nl in memchr::memchr_iter(b'\n', skipped) {
            self.line = self.line.saturating_add(1);
            self.column_chars = 0;
            rest = &skipped[nl + 1..];
        }
        // Count characters, not bytes: skip UTF-8 continuation bytes.
        self.column_chars += rest.iter().filter(|b| (**b & 0xC0) != 0x80).count();
        self.offset = offset;
        Position { line: self.line, column: u32::try_from(self.column_chars + 1).unwrap_or(u32::MAX) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_columns_and_going_back() {
        let text = "ab\ncé\n\nxyz";
        let mut c = LineCursor::new(text);
        assert_eq!(c.position(0), Position { line: 1, column: 1 });
        assert_eq!(c.position(1), Position { line: 1, column: 2 });
        assert_eq!(c.position(3), Position { line: 2, column: 1 });
        // `é` is two bytes but one column.
        assert_eq!(c.position(6), Position { line: 2, column: 3 });
        assert_eq!(c.position(7), Position { line: 3, column: 1 });
        assert_eq!(c.position(10), Position { line: 4, column: 3 });
        assert_eq!(c.position(2), Position { line: 1, column: 3 });
        assert_eq!(c.position(1000), Position { line: 4, column: 4 });
    }
}
