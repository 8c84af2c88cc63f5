//! Streams notices out of the ring buffer until asked to stop.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBufferBuilder};

use crate::abi::Notice;

/// How long a poll waits for notices, and how long one batch may go on
/// before the loop looks at signals, reloads and statistics again.
const BATCH_TIME: Duration = Duration::from_millis(100);
/// Records between two looks at the clock while a batch runs.
const RECORDS_PER_CLOCK_CHECK: u64 = 256;

/// Calls `on_notice` for each notice in `events` until `stop` is set.
/// `after_batch` runs at least every [`BATCH_TIME`], also under a flood, and
/// whenever `wake` is set (a reload); it may set `stop`. At the end,
/// `detach` removes the program and returns once no run of it is left, and
/// the ring is read to its end, so every notice the program sent is seen.
///
/// `on_notice` must stay cheap also when it throws the notice away (its
/// output failed): the ring is read on regardless, so that signals are seen
/// promptly and every notice is accounted for.
///
/// Under a flood the ring never runs dry and libbpf's poll would never
/// return; the callback breaks out itself — after handling its record, since
/// libbpf has consumed a record by the time it hands it over.
pub fn stream(
    events: &dyn MapCore,
    stop: &AtomicBool,
    wake: &AtomicBool,
    after_batch: &mut dyn FnMut() -> Result<()>,
    detach: impl FnOnce() -> Result<()>,
    mut on_notice: impl FnMut(&Notice),
) -> Result<()> {
    let seen = Cell::new(0u64);
    let batch_started = Cell::new(Instant::now());
    let draining = Cell::new(false);
    let mut builder = RingBufferBuilder::new();
    builder
        .add(events, |bytes: &[u8]| {
            let mut notice = Notice::ZERO;
            if plain::copy_from_bytes(&mut notice, bytes).is_err() {
                return 0; // a record of another size: not ours to read
            }
            seen.set(seen.get() + 1);
            on_notice(&notice);
            let batch_over = seen.get() % RECORDS_PER_CLOCK_CHECK == 0
                && batch_started.get().elapsed() >= BATCH_TIME;
            let wanted = stop.load(Ordering::Relaxed) || wake.load(Ordering::Relaxed) || batch_over;
            if wanted && !draining.get() {
                return -libc::EINTR;
            }
            0
        })
        .context("setting up the ring buffer")?;
    let ring = builder.build().context("setting up the ring buffer")?;

    while !stop.load(Ordering::Relaxed) {
        batch_started.set(Instant::now());
        match ring.poll(BATCH_TIME) {
            Ok(()) => {}
            // A signal, or the callback breaking out: look at the flags.
            Err(err) if err.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            Err(err) => return Err(err).context("polling the ring buffer"),
        }
        after_batch()?;
    }

    detach()?;
    draining.set(true);
    match ring.consume() {
        Ok(()) => {}
        Err(err) if err.kind() == libbpf_rs::ErrorKind::Interrupted => {}
        Err(err) => return Err(err).context("reading the last notices"),
    }
    after_batch()
}
