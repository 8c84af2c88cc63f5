//! Streams notices out of the ring buffer until asked to stop.

use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBufferBuilder};

use crate::abi::Notice;

/// How long a poll waits before looking at the stop flag again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Calls `on_notice` for each notice in `events` until `stop` is set or the
/// callback asks to stop (returns false); `after_batch` runs after each poll.
/// Then calls `detach` and reads what is left in the ring, so every notice
/// of a packet that was counted is shown. Returns the number of notices seen.
///
/// Under a flood the ring never runs dry, so a single poll could go on
/// forever: the callback itself breaks out as soon as `stop` is set. Once
/// detached, nothing refills the ring and the last read ends.
pub fn stream(
    events: &dyn MapCore,
    stop: &AtomicBool,
    after_batch: &mut dyn FnMut() -> Result<()>,
    detach: impl FnOnce(),
    mut on_notice: impl FnMut(&Notice) -> bool,
) -> Result<u64> {
    let mut seen = 0u64;
    let draining = Cell::new(false);
    let reader_gone = Cell::new(false);
    {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(events, |bytes: &[u8]| {
                if reader_gone.get() || (stop.load(Ordering::Relaxed) && !draining.get()) {
                    return -libc::EINTR;
                }
                let mut notice = Notice::ZERO;
                if plain::copy_from_bytes(&mut notice, bytes).is_err() {
                    return 0; // a record of another size: not ours to read
                }
                seen += 1;
                if on_notice(&notice) {
                    0
                } else {
                    reader_gone.set(true);
                    stop.store(true, Ordering::Relaxed);
                    -libc::EINTR
                }
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
        detach();
        draining.set(true);
        match ring.consume() {
            Ok(()) => {}
            Err(err) if err.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            Err(err) => return Err(err).context("reading the last notices"),
        }
        after_batch()?;
    }
    Ok(seen)
}
