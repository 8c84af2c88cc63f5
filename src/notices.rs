//! The ring reader: takes notices out of the ring buffer in batches, and
//! reads it to its end once the program is detached.

use std::cell::RefCell;
use std::io;
use std::mem::size_of;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBuffer, RingBufferBuilder};

use crate::abi::{CaptureHeader, Notice};

/// How long one batch may go on before the caller looks at signals,
/// reloads and statistics again.
pub const BATCH_TIME: Duration = Duration::from_millis(100);
/// How often the ring is read while nothing wakes the reader: the program
/// wakes it only past a fill mark (src/bpf/src/wakeup.rs), so below that
/// this timer is what bounds a notice's wait.
pub const POLL_TIME: Duration = Duration::from_millis(2);
/// Records taken from the ring at a time, between two looks at the clock
/// and at `cut_short`.
const TAKE_AT_MOST: usize = 1024;

/// Reads notices out of the `events` ring buffer.
///
/// libbpf hands records to a callback fixed when the ring is set up; that
/// callback only copies each one into `taken` (a capture's frame bytes
/// into `taken.frames`), at most [`TAKE_AT_MOST`] at a time, and the batch
/// hands them on. Under a flood the ring never runs
/// dry and libbpf's poll would never return: the full `taken` ends its
/// read, and a record libbpf has consumed is always in `taken`, never lost.
pub struct NoticeReader {
    ring: RingBuffer<'static>,
    taken: Rc<RefCell<Taken>>,
}

/// Records taken from the ring and not yet handed on.
#[derive(Default)]
struct Taken {
    notices: Vec<Notice>,
    /// The captured bytes of all of them, one after the other (none
    /// without capture); `frame_ends[i]` is where notice i's end.
    frames: Vec<u8>,
    frame_ends: Vec<usize>,
}

/// A ring record as a notice and the frame bytes captured behind it
/// (`abi::CaptureHeader`; empty for a plain notice). `None` for a record
/// too short to be a notice.
pub fn split_record(record: &[u8]) -> Option<(Notice, &[u8])> {
    let rest = record.get(size_of::<Notice>()..)?;
    // SAFETY: the record holds a whole Notice, which is plain old data
    // (any bytes are a valid one); read unaligned, as the ring's records
    // are only 8-byte aligned. One move, no zeroing first.
    let notice = unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<Notice>()) };
    let mut header = CaptureHeader {
        captured_len: 0,
        _pad: 0,
    };
    if plain::copy_from_bytes(&mut header, rest).is_err() {
        return Some((notice, &[]));
    }
    let frame = &rest[size_of::<CaptureHeader>()..];
    Some((
        notice,
        &frame[..frame.len().min(header.captured_len as usize)],
    ))
}

impl NoticeReader {
    pub fn new(events: &dyn MapCore) -> Result<NoticeReader> {
        let taken = Rc::new(RefCell::new(Taken {
            notices: Vec::with_capacity(TAKE_AT_MOST),
            ..Taken::default()
        }));
        let into = taken.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(events, move |bytes: &[u8]| {
                let Some((notice, frame)) = split_record(bytes) else {
                    return 0; // a record of another size: not ours to read
                };
                let mut taken = into.borrow_mut();
                taken.notices.push(notice);
                taken.frames.extend_from_slice(frame);
                let end = taken.frames.len();
                taken.frame_ends.push(end);
                // libbpf stops reading at a negative answer, this record read.
                if taken.notices.len() >= TAKE_AT_MOST {
                    -libc::EINTR
                } else {
                    0
                }
            })
            .context("setting up the ring buffer")?;
        let ring = builder.build().context("setting up the ring buffer")?;
        Ok(NoticeReader { ring, taken })
    }

    /// One batch: reads the ring every [`POLL_TIME`] (or at once when the
    /// program wakes the reader) and calls `on_notice` for each notice, with
    /// its captured bytes, until notices came and the ring is dry again,
    /// [`BATCH_TIME`] has gone by, or `cut_short()` (a stop or a reload)
    /// asks to end it sooner.
    ///
    /// `on_notice` must stay cheap also when it throws the notice away (its
    /// output failed): the ring is read on regardless, so that signals are
    /// seen promptly and every notice is accounted for.
    pub fn poll_batch(
        &mut self,
        mut on_notice: impl FnMut(&Notice, &[u8]),
        cut_short: impl Fn() -> bool,
    ) -> Result<()> {
        let started = Instant::now();
        let mut wait = Some(POLL_TIME);
        let mut handed_on = false;
        loop {
            let dry = self.take(wait).context("polling the ring buffer")?;
            handed_on |= self.hand_on(&mut on_notice);
            if (dry && handed_on) || cut_short() || started.elapsed() >= BATCH_TIME {
                return Ok(());
            }
            wait = dry.then_some(POLL_TIME);
        }
    }

    /// Calls `on_notice` for every notice left in the ring. Called once
    /// nothing can write to it any more (detached, runs over), so that every
    /// notice the program sent is seen.
    pub fn drain_after_detach(&mut self, mut on_notice: impl FnMut(&Notice, &[u8])) -> Result<()> {
        loop {
            let dry = self.take(None).context("reading the last notices")?;
            self.hand_on(&mut on_notice);
            if dry {
                return Ok(());
            }
        }
    }

    /// Takes up to [`TAKE_AT_MOST`] records into `taken`, first waiting up
    /// to `wait` for a wake-up if given; returns whether the ring ran dry.
    fn take(&mut self, wait: Option<Duration>) -> io::Result<bool> {
        if let Some(timeout) = wait {
            // Reads the ring only if woken: records submitted without a
            // wake-up are read by the consume below.
            check(self.ring.poll_raw(timeout))?;
        }
        if self.taken.borrow().notices.len() < TAKE_AT_MOST {
            check(self.ring.consume_raw())?;
        }
        Ok(self.taken.borrow().notices.len() < TAKE_AT_MOST)
    }

    /// Hands on what was taken; returns whether there was anything.
    fn hand_on(&mut self, on_notice: &mut impl FnMut(&Notice, &[u8])) -> bool {
        let mut taken = self.taken.borrow_mut();
        let any = !taken.notices.is_empty();
        let mut start = 0;
        for (notice, &end) in taken.notices.iter().zip(&taken.frame_ends) {
            on_notice(notice, &taken.frames[start..end]);
            start = end;
        }
        taken.notices.clear();
        taken.frames.clear();
        taken.frame_ends.clear();
        any
    }
}

/// libbpf's answer as a result. EINTR is no failure: a signal, or the
/// callback ending the read with `taken` full.
fn check(answer: i32) -> io::Result<()> {
    if answer < 0 && answer != -libc::EINTR {
        return Err(io::Error::from_raw_os_error(-answer));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(notice: &Notice, header: Option<(u32, &[u8])>) -> Vec<u8> {
        // SAFETY: Notice is plain old data without padding.
        let mut record = unsafe { plain::as_bytes(notice) }.to_vec();
        if let Some((captured_len, bytes)) = header {
            record.extend_from_slice(&captured_len.to_ne_bytes());
            record.extend_from_slice(&[0; 4]);
            record.extend_from_slice(bytes);
        }
        record
    }

    #[test]
    fn records_split_into_notice_and_captured_bytes() {
        let mut notice = Notice::ZERO;
        notice.packet_len = 60;
        let alone = record(&notice, None);
        let (plain_notice, none) = split_record(&alone).unwrap();
        assert_eq!((plain_notice.packet_len, none), (60, &[][..]));

        let captured = record(&notice, Some((3, b"abc")));
        let (got, bytes) = split_record(&captured).unwrap();
        assert_eq!((got.packet_len, bytes), (60, &b"abc"[..]));

        // A header that claims more than the record holds gets what is there.
        let overclaimed = record(&notice, Some((9, b"ab")));
        let (_, short) = split_record(&overclaimed).unwrap();
        assert_eq!(short, b"ab");
        assert!(split_record(&[0; 10]).is_none());
    }
}
