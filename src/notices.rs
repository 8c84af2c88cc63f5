//! Streams notices out of the ring buffer until asked to stop.

use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBufferBuilder};

use crate::abi::Notice;

/// How long a poll waits before looking at the stop flag again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long the last read may wait for notices of packets that were being
/// processed as the program was detached.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(200);

/// Where the stream ends.
pub struct Ending<D, S> {
    /// Detaches the program: nothing refills the ring after it.
    pub detach: D,
    /// How many notices the program has handed to the ring so far.
    pub notices_sent: S,
}

/// Calls `on_notice` for each notice in `events` until `stop` is set or the
/// callback asks to stop (returns false); `after_batch` runs after each poll.
/// Then detaches and reads the ring until every notice the program sent is
/// seen, so the notices shown match the packets counted. Returns the number
/// of notices seen.
///
/// Under a flood the ring never runs dry, so a single poll could go on
/// forever: the callback itself breaks out as soon as `stop` is set. Once
/// detached, nothing refills the ring and the last read ends.
pub fn stream<D: FnOnce(), S: Fn() -> Result<u64>>(
    events: &dyn MapCore,
    stop: &AtomicBool,
    after_batch: &mut dyn FnMut() -> Result<()>,
    ending: Ending<D, S>,
    mut on_notice: impl FnMut(&Notice) -> bool,
) -> Result<u64> {
    let seen = Cell::new(0u64);
    let draining = Cell::new(false);
    let reader_gone = Cell::new(false);
    {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(events, |bytes: &[u8]| {
                // libbpf has consumed a record by the time it hands it over:
                // handle it before any breaking out, or it is gone unseen.
                if reader_gone.get() {
                    return -libc::EINTR;
                }
                let mut notice = Notice::ZERO;
                if plain::copy_from_bytes(&mut notice, bytes).is_err() {
                    return 0; // a record of another size: not ours to read
                }
                seen.set(seen.get() + 1);
                if !on_notice(&notice) {
                    reader_gone.set(true);
                    stop.store(true, Ordering::Relaxed);
                    return -libc::EINTR;
                }
                if stop.load(Ordering::Relaxed) && !draining.get() {
                    return -libc::EINTR;
                }
                0
            })
            .context("setting up the ring buffer")?;
        let ring = builder.build().context("setting up the ring buffer")?;

        while !stop.load(Ordering::Relaxed) {
            match ring.poll(POLL_INTERVAL) {
                Ok(()) => {}
                // A signal, or the callback breaking out: look at the flag.
                Err(err) if err.kind() == libbpf_rs::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).context("polling the ring buffer"),
            }
            if let Err(err) = after_batch() {
                let broken_pipe = err
                    .downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe);
                if broken_pipe {
                    reader_gone.set(true); // `| head` went away: a normal end
                    break;
                }
                return Err(err);
            }
        }
        (ending.detach)();
        draining.set(true);
        // A packet the program was handling as it was detached may still be
        // on its way into the ring: read until the counts agree.
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !reader_gone.get() {
            match ring.consume() {
                Ok(()) => {}
                Err(err) if err.kind() == libbpf_rs::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).context("reading the last notices"),
            }
            if seen.get() >= (ending.notices_sent)()? || Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        after_batch()?;
    }
    Ok(seen.get())
}
