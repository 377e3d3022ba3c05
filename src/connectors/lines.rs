//! The lines of a byte stream (a file, an archive object), each handed out as a [`Bytes`]
//! that shares the buffer it was read into: no copy and no allocation per line.
//!
//! `BufReader::read_until` copied every line into a buffer of the source's, and the record
//! copied it again into a `Vec` of its own: two copies and an allocation per line. With the
//! read itself that was 9% of a distinct-heavy file run's CPU.

use std::io::{self, Read};

use bytes::{Buf, Bytes, BytesMut};

/// The most read at once.
const READ_BYTES: usize = 64 << 10;

/// The size of a new buffer (lines share it until they are all dropped; a line longer than
/// this doubles it).
pub(super) const BUFFER_BYTES: usize = 1 << 20;

/// Reads `reader` in blocks and splits it into lines.
pub struct Lines<R> {
    reader: R,
    /// What was read and not handed out yet: the start of the next line.
    buffer: BytesMut,
    /// The first bytes of `buffer` known to hold no newline.
    searched: usize,
    /// `reader` has no more bytes.
    ended: bool,
}

impl<R: Read> Lines<R> {
    pub fn new(reader: R) -> Self {
        Lines {
            reader,
            buffer: BytesMut::new(),
            searched: 0,
            ended: false,
        }
    }

    /// The next line with its `\n`, or the last bytes when they have none; `None` at the end.
    /// After an error the reader is in an unknown state: open it again.
    pub fn next_line(&mut self) -> io::Result<Option<Bytes>> {
        Ok(self
            .next_end()?
            .map(|end| self.buffer.split_to(end).freeze()))
    }

    /// Skips `count` lines as [`Lines::next_line`] would give them (fewer when the reader
    /// ends first), without making them: a restart passes every line a file's position
    /// covers. Returns the bytes skipped.
    pub fn skip(&mut self, count: u64) -> io::Result<u64> {
        let mut skipped = 0;
        for _ in 0..count {
            let Some(end) = self.next_end()? else { break };
            self.buffer.advance(end);
            skipped += end as u64;
        }
        Ok(skipped)
    }

    /// Where the next line ends in `buffer` (reading as needed): after its `\n`, or at the
    /// end of the last bytes when they have none; `None` at the end.
    fn next_end(&mut self) -> io::Result<Option<usize>> {
        loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buffer[self.searched..]) {
                let end = self.searched + at + 1;
                self.searched = 0;
                return Ok(Some(end));
            }
            self.searched = self.buffer.len();
            if self.ended {
                self.searched = 0;
                return Ok((!self.buffer.is_empty()).then_some(self.buffer.len()));
            }
            self.read()?;
        }
    }

    /// Reads the next block behind what `buffer` holds. When the buffer is full, a new one is
    /// taken (the old one stays with the lines handed out) and the unfinished line moves to
    /// its start.
    fn read(&mut self) -> io::Result<()> {
        if self.buffer.capacity() - self.buffer.len() < READ_BYTES {
            self.buffer.reserve(BUFFER_BYTES.max(self.buffer.len()));
        }
        let held = self.buffer.len();
        self.buffer.resize(held + READ_BYTES, 0);
        let read = loop {
            match self.reader.read(&mut self.buffer[held..]) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.buffer
            .truncate(held + read.as_ref().map_or(0, |read| *read));
        self.ended = read? == 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<Bytes> {
        let mut lines = Lines::new(bytes);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn splits_after_each_newline_and_keeps_a_last_line_without_one() {
        assert_eq!(all(b"a\nbc\n\nd"), [&b"a\n"[..], b"bc\n", b"\n", b"d"]);
        assert_eq!(all(b"a\n"), [Bytes::from_static(b"a\n")]);
        assert!(all(b"").is_empty());
    }

    /// Lines across blocks and buffers, and a line longer than a buffer, come out whole and
    /// in order.
    #[test]
    fn lines_across_blocks_and_buffers_come_out_whole() {
        let mut text = Vec::new();
        let mut expected = Vec::new();
        for i in 0..20_000usize {
            let line = format!("{i}:{}\n", "x".repeat(i % 300));
            text.extend_from_slice(line.as_bytes());
            expected.push(line);
        }
        let long = format!("{}\n", "y".repeat(3 * BUFFER_BYTES + 17));
        text.extend_from_slice(long.as_bytes());
        expected.push(long);
        text.extend_from_slice(b"tail");
        expected.push("tail".into());
        let lines = all(&text);
        assert_eq!(lines.len(), expected.len());
        for (line, expected) in lines.iter().zip(&expected) {
            assert_eq!(line, expected.as_bytes());
        }
    }

    /// Skipping n lines leaves the reader where n calls of `next_line` would, and says how many
    /// bytes they held.
    #[test]
    fn skipping_lands_where_reading_would() {
        let mut text = Vec::new();
        for i in 0..30_000usize {
            text.extend_from_slice(format!("{i}:{}\n", "x".repeat(i % 200)).as_bytes());
        }
        text.extend_from_slice(b"tail");
        let lines = all(&text);
        for skip in [0, 1, 2_999, 17_000, 30_000, 30_001, 40_000] {
            let mut reader = Lines::new(&text[..]);
            let skipped = reader.skip(skip as u64).unwrap();
            let mut rest = Vec::new();
            while let Some(line) = reader.next_line().unwrap() {
                rest.push(line);
            }
            let passed = &lines[..skip.min(lines.len())];
            assert_eq!(rest, lines[passed.len()..], "skip {skip}");
            let passed_bytes: usize = passed.iter().map(Bytes::len).sum();
            assert_eq!(skipped, passed_bytes as u64, "skip {skip}");
        }
    }

    /// A reader that gives a few bytes at a time (a network body) gives the same lines.
    #[test]
    fn short_reads_give_the_same_lines() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(7);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text = b"{\"a\":1}\n{\"b\":22}\r\n\nlast";
        let mut lines = Lines::new(Trickle(text));
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(line);
        }
        assert_eq!(out, all(text));
        assert_eq!(out.concat(), text);
    }
}
