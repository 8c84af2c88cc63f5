//! Where notice lines go: buffered whole lines, counted as shown only once
//! write(2) has taken every byte of them, and no more writing after the
//! first failure — the caller decides what a failure means for the run.

use std::io::{self, ErrorKind, Write};

/// Bytes gathered before a write even if the batch is not over.
const FLUSH_AT: usize = 64 * 1024;

/// Lines for one writer (stdout), written in batches.
pub struct LineSink<W: Write> {
    out: W,
    buffer: Vec<u8>,
    /// Where each buffered line ends in `buffer`.
    line_ends: Vec<usize>,
    written: u64,
    unwritten: u64,
    failure: Option<io::Error>,
}

impl<W: Write> LineSink<W> {
    pub fn new(out: W) -> Self {
        LineSink {
            out,
            buffer: Vec::with_capacity(FLUSH_AT + 4096),
            line_ends: Vec::new(),
            written: 0,
            unwritten: 0,
            failure: None,
        }
    }

    /// Adds `line` and a newline; writes when enough has gathered, and
    /// returns the error if that write is the one that failed. After a
    /// failure the line is only counted as unwritten.
    pub fn push(&mut self, line: &str) -> Option<&io::Error> {
        self.push_with(|buffer| buffer.extend_from_slice(line.as_bytes()))
    }

    /// As [`push`](Self::push), the line being what `write` appends to the
    /// buffer: formatted in place, no String in between. After a failure
    /// `write` is not called.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Option<&io::Error> {
        self.push_bytes(|buffer| {
            write(buffer);
            buffer.push(b'\n');
        })
    }

    /// As [`push`](Self::push) for a record of bytes that is not a line (a
    /// pcapng block): counted as one, no newline added.
    pub fn push_record(&mut self, record: &[u8]) -> Option<&io::Error> {
        self.push_bytes(|buffer| buffer.extend_from_slice(record))
    }

    /// As [`push_record`](Self::push_record), the record being what
    /// `write` appends to the buffer. After a failure `write` is not called.
    pub fn push_record_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Option<&io::Error> {
        self.push_bytes(write)
    }

    fn push_bytes(&mut self, append: impl FnOnce(&mut Vec<u8>)) -> Option<&io::Error> {
        if self.failure.is_some() {
            self.unwritten += 1;
            return None;
        }
        append(&mut self.buffer);
        self.line_ends.push(self.buffer.len());
        if self.buffer.len() >= FLUSH_AT {
            return self.flush();
        }
        None
    }

    /// Writes what is buffered. Returns the error if this call is the one
    /// that failed (so the caller hears of a failure once).
    pub fn flush(&mut self) -> Option<&io::Error> {
        if self.failure.is_some() || self.buffer.is_empty() {
            return None;
        }
        let mut done = 0;
        let outcome = loop {
            if done == self.buffer.len() {
                break self.out.flush();
            }
            match self.out.write(&self.buffer[done..]) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => break Err(err),
            }
        };
        // A line counts only if all of it went out; a torn last line does not.
        let complete = self
            .line_ends
            .iter()
            .take_while(|&&end| end <= done)
            .count();
        self.written += complete as u64;
        self.unwritten += (self.line_ends.len() - complete) as u64;
        self.buffer.clear();
        self.line_ends.clear();
        self.failure = outcome.err();
        self.failure.as_ref()
    }

    /// Lines write(2) took whole.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Lines dropped because writing had failed.
    pub fn unwritten(&self) -> u64 {
        self.unwritten
    }

    /// Why writing stopped, if it did.
    pub fn failure(&self) -> Option<&io::Error> {
        self.failure.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes up to `room` bytes, at most `chunk` a call, then fails like a
    /// closed pipe.
    struct Narrow {
        got: Vec<u8>,
        room: usize,
        chunk: usize,
    }

    impl Write for Narrow {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let n = bytes.len().min(self.chunk).min(self.room - self.got.len());
            if n == 0 {
                return Err(ErrorKind::BrokenPipe.into());
            }
            self.got.extend_from_slice(&bytes[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn counts_only_lines_written_whole() {
        // "line N\n" is 7 bytes: 17 bytes hold two lines and part of a third.
        let mut sink = LineSink::new(Narrow {
            got: Vec::new(),
            room: 17,
            chunk: 5,
        });
        for n in 0..4 {
            assert!(sink.push(&format!("line {n}")).is_none());
        }
        let err = sink.flush().expect("the failure, reported once");
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert!(sink.flush().is_none());
        assert!(sink.push("line 4").is_none());
        assert_eq!((sink.written(), sink.unwritten()), (2, 3));
        assert_eq!(sink.out.got, b"line 0\nline 1\nlin");
        assert_eq!(sink.failure().unwrap().kind(), ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_roomy_writer_gets_everything_in_few_writes() {
        let mut sink = LineSink::new(Vec::new());
        for n in 0..20_000 {
            assert!(sink.push(&format!("{n}")).is_none());
        }
        assert!(sink.flush().is_none());
        assert_eq!((sink.written(), sink.unwritten()), (20_000, 0));
        assert_eq!(sink.out.iter().filter(|&&b| b == b'\n').count(), 20_000);
        assert!(sink.failure().is_none());
    }
}
