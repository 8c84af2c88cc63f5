//! BTF-defined maps, the layout libbpf reads from section `.maps`.
//!
//! C's `__uint(name, N)` is a field `int (*name)[N]`, `__type(key, T)` is a
//! field `T *key`: the values live in the BTF of these pointer types, never in
//! memory. One concrete struct per map keeps the BTF names readable (generic
//! structs get mangled names, and those reach the skeleton).

use core::ffi::c_void;
use core::ptr::null;

use crate::abi::{Notice, COUNTER_SLOTS};
use crate::helpers::map_lookup_elem;

const BPF_MAP_TYPE_PERCPU_ARRAY: usize = 6;
const BPF_MAP_TYPE_RINGBUF: usize = 27;

/// Default ring buffer size; user space resizes it before load.
const EVENTS_BYTES: usize = 256 * 1024;

#[repr(C)]
pub struct RingBufDef {
    r#type: *const [i32; BPF_MAP_TYPE_RINGBUF],
    max_entries: *const [i32; EVENTS_BYTES],
}

#[repr(C)]
pub struct CounterArrayDef {
    r#type: *const [i32; BPF_MAP_TYPE_PERCPU_ARRAY],
    max_entries: *const [i32; COUNTER_SLOTS as usize],
    key: *const u32,
    value: *const u64,
}

// The definitions are only ever read by libbpf, never by two threads.
unsafe impl Sync for RingBufDef {}
unsafe impl Sync for CounterArrayDef {}

/// One notice per packet, for user space.
#[no_mangle]
#[link_section = ".maps"]
#[allow(non_upper_case_globals)]
pub static events: RingBufDef = RingBufDef {
    r#type: null(),
    max_entries: null(),
};

/// Per-CPU packet and notice counters, indexed by `abi::COUNTER_*`.
#[no_mangle]
#[link_section = ".maps"]
#[allow(non_upper_case_globals)]
pub static counters: CounterArrayDef = CounterArrayDef {
    r#type: null(),
    max_entries: null(),
    key: null(),
    value: null(),
};

/// Keeps `Notice` in the object's BTF: a ring buffer has no value type, and a
/// type used only as a local never reaches BTF, so the skeleton would lack it.
#[no_mangle]
#[link_section = ".rodata"]
pub static NOTICE_LAYOUT: Notice = Notice::ZERO;

#[inline(always)]
pub fn map_ptr<T>(map: &'static T) -> *mut c_void {
    map as *const T as *mut c_void
}

/// Adds one to this CPU's slot `index` of `counters`.
#[inline(always)]
pub fn count(index: u32) {
    unsafe {
        let slot = map_lookup_elem(map_ptr(&counters), &index as *const u32 as *const c_void);
        if let Some(slot) = (slot as *mut u64).as_mut() {
            *slot += 1;
        }
    }
}
