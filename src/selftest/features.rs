//! The kernel features xdp-hello needs, each named with the Linux version
//! that brought it.

use anyhow::{bail, Result};
use libbpf_rs::libbpf_sys;

use crate::loader::kernel_release;

/// BPF ring buffers (5.8) and XDP programs; XDP links (5.9) are proven by
/// the attach checks.
pub fn check() -> Result<()> {
    let ringbuf = probe_map(libbpf_sys::BPF_MAP_TYPE_RINGBUF);
    let lpm = probe_map(libbpf_sys::BPF_MAP_TYPE_LPM_TRIE);
    let xdp = unsafe {
        libbpf_sys::libbpf_probe_bpf_prog_type(libbpf_sys::BPF_PROG_TYPE_XDP, std::ptr::null())
    };
    let mut missing = Vec::new();
    if ringbuf != 1 {
        missing.push("BPF ring buffer (Linux 5.8)");
    }
    if lpm != 1 {
        missing.push("LPM trie maps (Linux 4.11)");
    }
    if xdp != 1 {
        missing.push("XDP programs (Linux 4.8)");
    }
    if !missing.is_empty() {
        bail!("kernel {} lacks {}", kernel_release(), missing.join(", "));
    }
    Ok(())
}

fn probe_map(map_type: libbpf_sys::bpf_map_type) -> i32 {
    unsafe { libbpf_sys::libbpf_probe_bpf_map_type(map_type, std::ptr::null()) }
}
