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

/// The flags for submitting a record of `len` bytes to `ring`: wake the
/// consumer only where this record took what is waiting past a multiple
/// of the mark (the mark, twice the mark, …). Not on every record past
/// it: a reader that lags would be woken once a notice, at ~1.7 µs each.
/// A crossing missed in a race between CPUs only waits for the timer.
#[inline(always)]
pub fn submit_flags(ring: *mut c_void, len: u64) -> u64 {
    // SAFETY: `ring` is the ring buffer map; queries read two counters.
    let (waiting, size) = unsafe {
        (
            helpers::ringbuf_query(ring, BPF_RB_AVAIL_DATA),
            helpers::ringbuf_query(ring, BPF_RB_RING_SIZE),
        )
    };
    let mark = size >> MARK_SHIFT;
    // This record's bytes, as the ring counts them: 8-byte aligned.
    let record = (len + RECORD_HEADER + 7) & !7;
    // The ring's size is a power of two, so is the mark: a multiple of it
    // lies in (before, waiting] exactly where the two differ in its bit or
    // above.
    let before = waiting.saturating_sub(record);
    if waiting > mark && (waiting ^ before) >= mark {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}
