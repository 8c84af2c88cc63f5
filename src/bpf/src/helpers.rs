//! The few kernel helpers the program calls, by their stable ids
//! (include/uapi/linux/bpf.h, `___BPF_FUNC_MAPPER`). A helper call in BPF is a
//! call to a constant address, which is what the transmutes below produce.

use core::ffi::c_void;
use core::mem::transmute;

const BPF_FUNC_MAP_LOOKUP_ELEM: usize = 1;
const BPF_FUNC_KTIME_GET_NS: usize = 5;
const BPF_FUNC_RINGBUF_RESERVE: usize = 131;
const BPF_FUNC_RINGBUF_SUBMIT: usize = 132;
const BPF_FUNC_RINGBUF_QUERY: usize = 134;

#[inline(always)]
pub unsafe fn map_lookup_elem(map: *mut c_void, key: *const c_void) -> *mut c_void {
    let f: unsafe extern "C" fn(*mut c_void, *const c_void) -> *mut c_void =
        transmute(BPF_FUNC_MAP_LOOKUP_ELEM);
    f(map, key)
}

#[inline(always)]
pub fn ktime_get_ns() -> u64 {
    unsafe {
        let f: unsafe extern "C" fn() -> u64 = transmute(BPF_FUNC_KTIME_GET_NS);
        f()
    }
}

#[inline(always)]
pub unsafe fn ringbuf_reserve(ringbuf: *mut c_void, size: u64, flags: u64) -> *mut c_void {
    let f: unsafe extern "C" fn(*mut c_void, u64, u64) -> *mut c_void =
        transmute(BPF_FUNC_RINGBUF_RESERVE);
    f(ringbuf, size, flags)
}

#[inline(always)]
pub unsafe fn ringbuf_submit(data: *mut c_void, flags: u64) {
    let f: unsafe extern "C" fn(*mut c_void, u64) = transmute(BPF_FUNC_RINGBUF_SUBMIT);
    f(data, flags)
}

/// `bpf_ringbuf_query` (5.8+): `flags` names what to read (`BPF_RB_AVAIL_DATA`, …).
#[inline(always)]
pub unsafe fn ringbuf_query(ringbuf: *mut c_void, flags: u64) -> u64 {
    let f: unsafe extern "C" fn(*mut c_void, u64) -> u64 = transmute(BPF_FUNC_RINGBUF_QUERY);
    f(ringbuf, flags)
}
