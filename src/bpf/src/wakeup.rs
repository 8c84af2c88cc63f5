//! When a submitted notice wakes the consumer: only once the ring fills
//! past a mark. Below it the consumer finds the notices on its own short
//! timer (src/notices.rs), so a caught-up consumer is not woken for every
//! packet (a wake-up costs ~1.7 µs a packet here).

use core::ffi::c_void;

use crate::helpers;

/// `bpf_ringbuf_submit` flags and `bpf_ringbuf_query` selectors
/// (include/uapi/linux/bpf.h).
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_RING_SIZE: u64 = 1;

/// The fill mark, as a shift of the ring's size: 1/8. The consumer reads
/// every 2 ms; at 1 M notices/s that is ~0.2 MiB, 1/20 of the default
/// 4 MiB ring, so a reader that keeps up never reaches the mark, while a
/// burst or a consumer asleep gets woken with 7/8 of the ring still free.
const MARK_SHIFT: u64 = 3;
/// Bytes of a record's header in the ring (`BPF_RINGBUF_HDR_SZ`).
const RECORD_HEADER: u64 = 8;

/// The flags for submitting a reserved record of `len` bytes to `ring`:
/// wake the consumer only where this record took what is waiting past a
/// multiple of the mark (the mark, twice the mark, …). Not on every record
/// past it: a reader that lags would be woken once a notice, at ~1.7 µs
/// each. A crossing missed in a race between CPUs only waits for the timer.
#[inline(always)]
pub fn submit_flags(ring: *mut c_void, len: u64) -> u64 {
    // Reserved, the record is already counted as waiting.
    let (waiting, size) = waiting_and_size(ring);
    let record = record_bytes(len);
    wake_if_crossed(waiting.saturating_sub(record), waiting, size >> MARK_SHIFT)
}

/// As [`submit_flags`], for a record of `len` bytes that `bpf_ringbuf_output`
/// is about to copy in (not counted as waiting yet).
#[inline(always)]
pub fn output_flags(ring: *mut c_void, len: u64) -> u64 {
    let (waiting, size) = waiting_and_size(ring);
    wake_if_crossed(waiting, waiting + record_bytes(len), size >> MARK_SHIFT)
}

#[inline(always)]
fn waiting_and_size(ring: *mut c_void) -> (u64, u64) {
    // SAFETY: `ring` is the ring buffer map; queries read two counters.
    unsafe {
        (
            helpers::ringbuf_query(ring, BPF_RB_AVAIL_DATA),
            helpers::ringbuf_query(ring, BPF_RB_RING_SIZE),
        )
    }
}

/// A record's bytes, as the ring counts them: header included, 8-byte aligned.
#[inline(always)]
fn record_bytes(len: u64) -> u64 {
    (len + RECORD_HEADER + 7) & !7
}

/// Wake-up where what is waiting went from `before` to `after` across a
/// multiple of `mark`. The ring's size is a power of two, so is the mark:
/// a multiple of it lies in (before, after] exactly where the two differ
/// in its bit or above.
#[inline(always)]
fn wake_if_crossed(before: u64, after: u64, mark: u64) -> u64 {
    if after > mark && (after ^ before) >= mark {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}
