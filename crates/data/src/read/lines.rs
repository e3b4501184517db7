//! The physical line a CSV record starts on.
//!
//! The tokenizer's record positions are taken where its read of the record begins: before the
//! blank lines it skips and before the `\n` of a `\r\n` that ended the previous record, so on
//! Windows line endings every record would be reported one line early. [`LineStarts`] sits
//! between the file and the tokenizer and remembers, for every line that starts with
//! something other than a line break, its byte offset and line number; the record whose read
//! began at byte `b` starts on the first such line at or after `b`. Queries come in file
//! order, so what lies behind them is dropped: memory stays bounded by the read-ahead.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Mutex, PoisonError};

fn is_break(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// A reader that records where non-empty lines start.
pub(crate) struct LineStarts<R> {
    inner: R,
    /// Offset of the next byte read.
    offset: u64,
    /// Line of the next byte read (1-based; a line ends at each `\n`).
    line: u64,
    /// The last byte read was a line break (true at the start of the input).
    after_break: bool,
    starts: Mutex<VecDeque<(u64, u64)>>,
}

impl<R> LineStarts<R> {
    pub(crate) fn new(inner: R) -> Self {
        LineStarts {
            inner,
            offset: 0,
            line: 1,
            after_break: true,
            starts: Mutex::new(VecDeque::new()),
        }
    }

    /// The line of the first non-empty line starting at or after byte `at`; `None` when the
    /// input read so far holds none. Forgets every line before `at`.
    pub(crate) fn line_at(&self, at: u64) -> Option<u64> {
        let mut s = self.starts.lock().unwrap_or_else(PoisonError::into_inner);
        while s.front().is_some_and(|&(o, _)| o < at) {
            s.pop_front();
        }
        s.front().map(|&(_, l)| l)
    }
}

impl<R: Read> Read for LineStarts<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let bytes = &buf[..n];
        let mut s = self.starts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.after_break && n > 0 && !is_break(bytes[0]) {
            s.push_back((self.offset, self.line));
        }
        for p in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if bytes[p] == b'\n' {
                self.line += 1;
            }
            if p + 1 < n && !is_break(bytes[p + 1]) {
                s.push_back((self.offset + p as u64 + 1, self.line));
            }
        }
        if n > 0 {
            self.after_break = is_break(bytes[n - 1]);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The same for a chunk in memory: the line (counting from 1 at the chunk's first byte) of
/// the first non-empty line at or after byte `at`. `cursor` carries `(offset, line)` of the
/// last answer, so that queries in order scan each byte once.
pub(crate) fn line_in(chunk: &[u8], at: usize, cursor: &mut (usize, u64)) -> u64 {
    let (mut o, mut line) = *cursor;
    let mut start = at.max(o);
    while start < chunk.len() && is_break(chunk[start]) {
        start += 1;
    }
    if start > o {
        line += memchr::memchr_iter(b'\n', &chunk[o..start]).count() as u64;
        o = start;
    }
    *cursor = (o, line);
    line
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_start_on_their_own_line_after_crlf_and_blank_lines() {
        let text = b"h1,h2\r\na,1\r\n\r\n\nb,\"x\r\ny\"\r\nc,3\n\rd,4";
        // Lines: 1 header, 2 a, 3 blank, 4 blank, 5 b (to 6), 7 c, 8 (\r) d.
        let mut r = LineStarts::new(&text[..]);
        let mut sink = Vec::new();
        // Small reads, so line breaks fall on read boundaries.
        let mut buf = [0u8; 3];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            sink.extend_from_slice(&buf[..n]);
        }
        assert_eq!(sink, text);
        let at = |needle: &[u8]| {
            text.windows(needle.len())
                .position(|w| w == needle)
                .unwrap() as u64
        };
        // Queried at the byte just after the previous record's `\r`, as the tokenizer does.
        assert_eq!(r.line_at(at(b"a,1") - 1), Some(2));
        assert_eq!(r.line_at(at(b"\r\n\r\n\nb") + 1), Some(5));
        assert_eq!(r.line_at(at(b"c,3") - 1), Some(7));
        assert_eq!(r.line_at(at(b"d,4") - 1), Some(8));
        assert_eq!(r.line_at(text.len() as u64), None);

        let mut cur = (0, 1);
        assert_eq!(line_in(text, 0, &mut cur), 1);
        assert_eq!(line_in(text, at(b"a,1") as usize - 1, &mut cur), 2);
        assert_eq!(line_in(text, at(b"\r\n\r\n\nb") as usize + 1, &mut cur), 5);
        assert_eq!(line_in(text, at(b"c,3") as usize - 1, &mut cur), 7);
    }
}
