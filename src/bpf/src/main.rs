//! xdp_hello: reports every packet on an interface to user space, one notice
//! per packet through a ring buffer, and counts what it did. Every frame —
//! ARP, truncated, malformed — gets exactly one notice and a verdict.
#![no_std]
#![no_main]

#[path = "../../abi.rs"]
#[allow(dead_code)] // user space uses the rest
mod abi;
mod helpers;
mod maps;
mod parse;
#[path = "../../../vmlinux/vmlinux.rs"]
mod vmlinux;

use core::ffi::c_void;
use core::mem::size_of;

use abi::*;
use maps::{count, events, map_ptr};
use vmlinux::xdp_md;

#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\0";

#[no_mangle]
#[link_section = "xdp"]
pub extern "C" fn xdp_hello(ctx: *mut xdp_md) -> u32 {
    let ctx = unsafe { &*ctx };
    let mut notice = Notice::ZERO;
    parse::parse_packet(ctx, &mut notice);
    notice.ifindex = ctx.ingress_ifindex;
    notice.rx_queue = ctx.rx_queue_index;
    notice.verdict = XDP_PASS;

    count(notice.verdict as u32);
    send_notice(&mut notice);
    notice.verdict as u32
}

/// Hands the notice to user space, or counts it as lost when the ring is full.
#[inline(always)]
fn send_notice(notice: &mut Notice) {
    unsafe {
        let slot = helpers::ringbuf_reserve(map_ptr(&events), size_of::<Notice>() as u64, 0);
        if slot.is_null() {
            count(COUNTER_NOTICES_LOST);
            return;
        }
        // Only notices that are sent pay for the clock.
        notice.timestamp_ns = helpers::ktime_get_ns();
        (slot as *mut Notice).write(*notice);
        helpers::ringbuf_submit(slot as *mut c_void, 0);
    }
    count(COUNTER_NOTICES_SENT);
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Nothing here can panic in a way the verifier would accept anyway.
    unsafe { core::hint::unreachable_unchecked() }
}
