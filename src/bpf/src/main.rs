//! xdp_hello: reports every packet on an interface to user space, one notice
//! per packet through a ring buffer, and counts what it did. Every frame —
//! ARP, truncated, malformed — gets exactly one notice and a verdict.
#![no_std]
#![no_main]

#[path = "../../abi.rs"]
#[allow(dead_code)] // user space uses the rest
mod abi;
mod capture;
mod helpers;
mod maps;
mod parse;
mod rate;
mod rules;
#[path = "../../../vmlinux/vmlinux.rs"]
mod vmlinux;
mod wakeup;

use core::mem::size_of;

use abi::*;
use maps::{add, config, count, count_hit, counter_block, events, map_ptr};
use vmlinux::xdp_md;

#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\0";

/// The XDP entry point: parse, decide, count, notify.
///
/// # Safety
/// Called by the kernel, with a valid `xdp_md`.
#[no_mangle]
#[link_section = "xdp"]
pub unsafe extern "C" fn xdp_hello(ctx: *mut xdp_md) -> u32 {
    let ctx = &*ctx;
    let config = config();
    // The notice lives in map memory, not on the stack: the verifier does
    // not track what is written there, so the walk's many paths reach the
    // decision in few states, and it checks the rest of the program once
    // per state instead of once per path.
    let notice = maps::lookup_ptr::<_, u32, Notice>(&maps::notice_scratch, &0u32);
    if notice.is_null() {
        return XDP_PASS as u32; // never: slot 0 of a per-CPU array
    }
    let notice = &mut *notice;
    *notice = Notice::ZERO;
    parse::parse_packet(ctx, notice);
    notice.ifindex = ctx.ingress_ifindex;
    notice.rx_queue = ctx.rx_queue_index;
    let decision = rules::decide(notice, config);
    let verdict = decision.verdict;
    notice.verdict = verdict;
    notice.rule_id = decision.rule_id;

    let block = counter_block(config, notice.ifindex);
    count(block, verdict as u32);
    add(
        block,
        COUNTER_BYTES + verdict as u32,
        notice.packet_len as u64,
    );
    if decision.rule_id != RULE_NONE {
        count_hit(decision.rule_id, notice.packet_len);
    }
    let asked = match config.notice_mode {
        NOTICES_ALL => true,
        NOTICES_DENIED => verdict == XDP_DROP,
        _ => false,
    };
    let wanted = rate::admit(config, block, notice, decision.log, asked);
    if wanted {
        send_notice(ctx, notice, block);
    }
    // A dry run reports every verdict and enforces none.
    if config.dry_run != 0 {
        XDP_PASS as u32
    } else {
        verdict as u32
    }
}

/// Hands the notice to user space, or counts it as lost when the ring is full.
#[inline(always)]
fn send_notice(ctx: &xdp_md, notice: &mut Notice, block: *mut CounterBlock) {
    // Capture (-w): the frame's first bytes ride behind the notice. With
    // snaplen 0 (frozen .rodata) the verifier drops this branch unseen.
    let snaplen = config().snaplen;
    if snaplen != 0 {
        let sent = capture::send_captured(ctx, notice, snaplen);
        count(
            block,
            if sent {
                COUNTER_NOTICES_SENT
            } else {
                COUNTER_NOTICES_LOST
            },
        );
        return;
    }
    unsafe {
        let slot = helpers::ringbuf_reserve(map_ptr(&events), size_of::<Notice>() as u64, 0);
        if slot.is_null() {
            count(block, COUNTER_NOTICES_LOST);
            return;
        }
        // Only notices that are sent pay for the clock and the MACs.
        if notice.timestamp_ns == 0 {
            // Not read yet (rate.rs reads it under --max-rate).
            notice.timestamp_ns = helpers::ktime_get_ns();
        }
        parse::copy_ethernet_addresses(ctx, notice);
        (slot as *mut Notice).write(*notice);
        let flags = wakeup::submit_flags(map_ptr(&events), size_of::<Notice>() as u64);
        helpers::ringbuf_submit(slot, flags);
    }
    count(block, COUNTER_NOTICES_SENT);
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Never reached: the program loads only because no panic path is left
    // in it. Were one reachable, this endless loop would make the verifier
    // refuse the program, instead of LLVM silently assuming it away.
    #[allow(clippy::empty_loop)]
    loop {}
}
