//! `--sample N` and `--max-rate R`, decided per packet: whether a packet
//! that was asked a notice for gets one, every packet that gets none
//! counted by why.
//!
//! Both are per CPU (`rate_state`), so no packet waits on another CPU's:
//! one in N of the packets a CPU sees, and at most R notices a second from
//! each CPU (a token bucket in nanoseconds, full at start). Sampling comes
//! first, so that the clock is read only for the packets it keeps, and only
//! when a rate is set; a `log` rule's packets are never sampled (the rule
//! asked for each of them), but they do count against the rate, which is a
//! ceiling on what reaches the ring.

use crate::abi::*;
use crate::helpers::ktime_get_ns;
use crate::maps::{count, lookup_ptr, rate_state};

/// Whether the packet in `notice` gets a notice: `logged` (a `log` rule
/// decided it) or `asked` (the notice mode wants it), and not held back by
/// `--sample` or `--max-rate`. Counts the reason in the interface's counter `block`
/// when it does not. With a rate set, the clock read here is the notice's
/// timestamp.
#[inline(always)]
pub fn admit(
    config: &Config,
    block: *mut CounterBlock,
    notice: &mut Notice,
    logged: bool,
    asked: bool,
) -> bool {
    if !logged && !asked {
        count(block, COUNTER_NOT_ASKED);
        return false;
    }
    let sample_every = config.sample_every as u64;
    let cost_ns = config.notice_cost_ns;
    if sample_every <= 1 && cost_ns == 0 {
        return true;
    }
    let state = lookup_ptr::<_, u32, RateState>(&rate_state, &0u32);
    if state.is_null() {
        return true; // never: slot 0 of a per-CPU array
    }
    let state = unsafe { &mut *state };
    if sample_every > 1 && !logged {
        if state.skip != 0 {
            state.skip -= 1;
            count(block, COUNTER_SAMPLED_OUT);
            return false;
        }
        state.skip = sample_every - 1;
    }
    if cost_ns != 0 {
        let now = ktime_get_ns();
        notice.timestamp_ns = now;
        // A bucket never used is filled by the time since boot.
        let refilled = state.budget_ns + now.saturating_sub(state.last_ns);
        let budget = if refilled > config.bucket_ns {
            config.bucket_ns
        } else {
            refilled
        };
        state.last_ns = now;
        if budget < cost_ns {
            state.budget_ns = budget;
            count(block, COUNTER_OVER_RATE);
            return false;
        }
        state.budget_ns = budget - cost_ns;
    }
    true
}
