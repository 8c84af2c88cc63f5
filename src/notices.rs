//! The ring reader: takes notices out of the ring buffer in batches, and
//! reads it to its end once the program is detached.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBuffer, RingBufferBuilder};

use crate::abi::Notice;

/// How long one batch may go on before the caller looks at signals,
/// reloads and statistics again.
pub const BATCH_TIME: Duration = Duration::from_millis(100);
/// How often the ring is read while nothing wakes the reader: the program
/// wakes it only past a fill mark (src/bpf/src/wakeup.rs), so below that
/// this timer is what bounds a notice's wait.
pub const POLL_TIME: Duration = Duration::from_millis(2);
/// Records taken from the ring at a time, between two looks at the clock
/// and at `cut_short`.
const TAKE_AT_MOST: usize = 256;

/// Reads notices out of the `events` ring buffer.
///
/// libbpf hands records to a callback fixed when the ring is set up; that
/// callback only copies each one into `taken`, at most [`TAKE_AT_MOST`] at
/// a time, and the batch hands them on. Under a flood the ring never runs
/// dry and libbpf's poll would never return: the full `taken` ends its
/// read, and a record libbpf has consumed is always in `taken`, never lost.
pub struct NoticeReader {
    ring: RingBuffer<'static>,
    taken: Rc<RefCell<Vec<Notice>>>,
}

impl NoticeReader {
    pub fn new(events: &dyn MapCore) -> Result<NoticeReader> {
        let taken = Rc::new(RefCell::new(Vec::with_capacity(TAKE_AT_MOST)));
        let into = taken.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(events, move |bytes: &[u8]| {
                let mut notice = Notice::ZERO;
                if plain::copy_from_bytes(&mut notice, bytes).is_err() {
                    return 0; // a record of another size: not ours to read
                }
                let mut taken = into.borrow_mut();
                taken.push(notice);
                // libbpf stops reading at a negative answer, this record read.
                if taken.len() >= TAKE_AT_MOST {
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
    /// program wakes the reader) and calls `on_notice` for each notice,
    /// until notices came and the ring is dry again, [`BATCH_TIME`] has gone
    /// by, or `cut_short()` (a stop or a reload) asks to end it sooner.
    ///
    /// `on_notice` must stay cheap also when it throws the notice away (its
    /// output failed): the ring is read on regardless, so that signals are
    /// seen promptly and every notice is accounted for.
    pub fn poll_batch(
        &mut self,
        mut on_notice: impl FnMut(&Notice),
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
    pub fn drain_after_detach(&mut self, mut on_notice: impl FnMut(&Notice)) -> Result<()> {
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
        if self.taken.borrow().len() < TAKE_AT_MOST {
            check(self.ring.consume_raw())?;
        }
        Ok(self.taken.borrow().len() < TAKE_AT_MOST)
    }

    /// Hands on what was taken; returns whether there was anything.
    fn hand_on(&mut self, on_notice: &mut impl FnMut(&Notice)) -> bool {
        let mut taken = self.taken.borrow_mut();
        let any = !taken.is_empty();
        for notice in taken.drain(..) {
            on_notice(&notice);
        }
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
