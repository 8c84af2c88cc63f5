//! The ring reader: takes notices out of the ring buffer in batches, and
//! reads it to its end once the program is detached.

use std::cell::Cell;
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
/// libbpf hands records to a callback fixed (and `'static`) when the ring
/// is set up; for the time of one read that callback hands each record,
/// as it lies in the ring, straight to the caller's `on_notice` (see
/// [`Handing`]): no copy in between. It ends the read after
/// [`TAKE_AT_MOST`] records: under a flood the ring never runs dry and
/// libbpf's poll would never return. A record libbpf has consumed has
/// always been handed on, never lost.
pub struct NoticeReader {
    ring: RingBuffer<'static>,
    handing: Rc<Handing>,
}

/// The `on_notice` of the read under way, shared with the ring's callback.
#[derive(Default)]
struct Handing {
    /// Set only for the time of one libbpf call made by
    /// [`NoticeReader::take`], which borrows the callback for that time;
    /// its lifetime is erased because the ring's callback must be
    /// `'static`.
    on_notice: Cell<Option<*mut OnNotice<'static>>>,
    /// Records handed on in this read.
    count: Cell<usize>,
}

type OnNotice<'a> = dyn FnMut(&Notice, &[u8]) + 'a;

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
        let handing = Rc::new(Handing::default());
        let from_ring = handing.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(events, move |bytes: &[u8]| {
                let Some((notice, frame)) = split_record(bytes) else {
                    return 0; // a record of another size: not ours to read
                };
                let Some(on_notice) = from_ring.on_notice.get() else {
                    unreachable!("libbpf calls back only within NoticeReader::take");
                };
                // SAFETY: set by `take` to a callback it borrows mutably
                // for the whole libbpf call this one is made within, and
                // cleared before that borrow ends.
                unsafe { (*on_notice)(&notice, frame) };
                let count = from_ring.count.get() + 1;
                from_ring.count.set(count);
                // libbpf stops reading at a negative answer, this record read.
                if count >= TAKE_AT_MOST {
                    -libc::EINTR
                } else {
                    0
                }
            })
            .context("setting up the ring buffer")?;
        let ring = builder.build().context("setting up the ring buffer")?;
        Ok(NoticeReader { ring, handing })
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
            let (dry, count) = self
                .take(wait, &mut on_notice)
                .context("polling the ring buffer")?;
            handed_on |= count > 0;
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
            let (dry, _) = self
                .take(None, &mut on_notice)
                .context("reading the last notices")?;
            if dry {
                return Ok(());
            }
        }
    }

    /// Hands up to [`TAKE_AT_MOST`] records to `on_notice`, first waiting
    /// up to `wait` for a wake-up if given; returns whether the ring ran
    /// dry, and how many were handed on.
    fn take(
        &mut self,
        wait: Option<Duration>,
        on_notice: &mut OnNotice<'_>,
    ) -> io::Result<(bool, usize)> {
        let lent = Lent::new(&self.handing, on_notice);
        if let Some(timeout) = wait {
            // Reads the ring only if woken: records submitted without a
            // wake-up are read by the consume below.
            check(self.ring.poll_raw(timeout))?;
        }
        if lent.handing.count.get() < TAKE_AT_MOST {
            check(self.ring.consume_raw())?;
        }
        let count = lent.handing.count.get();
        Ok((count < TAKE_AT_MOST, count))
    }
}

/// `on_notice` lent to the ring's callback; taken back when dropped, also
/// on an early return.
struct Lent<'a> {
    handing: &'a Handing,
}

impl<'a> Lent<'a> {
    fn new(handing: &'a Handing, on_notice: &'a mut OnNotice<'_>) -> Self {
        let borrowed: *mut OnNotice<'_> = on_notice;
        // SAFETY: only the lifetime changes; the pointer is cleared in
        // `drop`, before the borrow of `on_notice` ends.
        let erased =
            unsafe { std::mem::transmute::<*mut OnNotice<'_>, *mut OnNotice<'static>>(borrowed) };
        handing.on_notice.set(Some(erased));
        handing.count.set(0);
        Lent { handing }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.handing.on_notice.set(None);
    }
}

/// libbpf's answer as a result. EINTR is no failure: a signal, or the
/// callback ending the read after [`TAKE_AT_MOST`] records.
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
