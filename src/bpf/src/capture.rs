//! Capture (`-w`): a notice sent with the frame's first `snaplen` bytes
//! behind it, in one ring record only as long as it needs.
//!
//! Kernel 5.10 has neither `bpf_xdp_load_bytes` (5.18) nor dynptrs, and a
//! ring reservation must have a constant size. So the record is put together
//! in this CPU's scratch value, right behind the notice the walk filled in:
//! `bpf_probe_read_kernel` (5.5) copies the bytes from the packet, and
//! `bpf_ringbuf_output` (5.8) copies notice, header and bytes into the ring.
//! Both take a size the verifier only needs to see bounded.

use core::ffi::c_void;
use core::mem::{size_of, transmute};

use crate::abi::*;
use crate::helpers::ktime_get_ns;
use crate::maps::{events, map_ptr};
use crate::parse::copy_ethernet_addresses;
use crate::vmlinux::xdp_md;
use crate::wakeup::output_flags;

const BPF_FUNC_PROBE_READ_KERNEL: usize = 113;
const BPF_FUNC_RINGBUF_OUTPUT: usize = 130;

/// This CPU's record while it is put together: the value of
/// `notice_scratch`. The notice comes first, so a pointer to the value is
/// one to the notice.
#[repr(C)]
pub struct NoticeScratch {
    pub notice: Notice,
    pub capture: CaptureHeader,
    pub bytes: [u8; MAX_SNAPLEN as usize],
}

/// The record's bytes before the frame's.
const HEADER_BYTES: u32 = (size_of::<Notice>() + size_of::<CaptureHeader>()) as u32;
// The scratch value is exactly as large as a per-CPU value may be.
const _: () = assert!(size_of::<NoticeScratch>() == 32768);

/// Sends `notice` (in the scratch value) with up to `snaplen` bytes of the
/// frame, waking the reader as `wakeup.rs` says; false when the ring had
/// no room.
#[inline(always)]
pub fn send_captured(ctx: &xdp_md, notice: &mut Notice, snaplen: u32) -> bool {
    let mut captured = notice.packet_len.min(snaplen);
    // A bound the verifier sees, whatever user space put in .rodata.
    if captured > MAX_SNAPLEN {
        captured = MAX_SNAPLEN;
    }
    if notice.timestamp_ns == 0 {
        // Not read yet (rate.rs reads it under --max-rate).
        notice.timestamp_ns = ktime_get_ns();
    }
    copy_ethernet_addresses(ctx, notice);
    let scratch = notice as *mut Notice as *mut NoticeScratch;
    unsafe {
        (*scratch).capture = CaptureHeader {
            captured_len: captured,
            _pad: 0,
        };
        let from = ctx.data as usize as *const c_void;
        if probe_read_kernel((*scratch).bytes.as_mut_ptr() as *mut c_void, captured, from) != 0 {
            // Never for bytes inside the frame; then the notice goes alone.
            (*scratch).capture.captured_len = 0;
            captured = 0;
        }
        let len = (HEADER_BYTES + captured) as u64;
        let ring = map_ptr(&events);
        ringbuf_output(ring, scratch as *const c_void, len, output_flags(ring, len)) == 0
    }
}

#[inline(always)]
unsafe fn probe_read_kernel(to: *mut c_void, size: u32, from: *const c_void) -> i64 {
    let f: unsafe extern "C" fn(*mut c_void, u32, *const c_void) -> i64 =
        transmute(BPF_FUNC_PROBE_READ_KERNEL);
    f(to, size, from)
}

#[inline(always)]
unsafe fn ringbuf_output(ringbuf: *mut c_void, data: *const c_void, size: u64, flags: u64) -> i64 {
    let f: unsafe extern "C" fn(*mut c_void, *const c_void, u64, u64) -> i64 =
        transmute(BPF_FUNC_RINGBUF_OUTPUT);
    f(ringbuf, data, size, flags)
}
