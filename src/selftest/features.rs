//! The kernel features xdp-hello needs, each named with the Linux version
//! that brought it.

use anyhow::{bail, Result};
use libbpf_rs::libbpf_sys;

use crate::kernel;

/// BPF ring buffers (5.8), mmapable arrays (5.5) and XDP programs; XDP
/// links (5.9) are proven by the attach checks.
pub fn check() -> Result<()> {
    let ringbuf = kernel::has_map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF);
    let mmapable = kernel::has_mmapable_arrays();
    let xdp = kernel::has_prog_type(libbpf_sys::BPF_PROG_TYPE_XDP);
    let mut missing = Vec::new();
    if !matches!(ringbuf, Ok(true)) {
        missing.push("BPF ring buffer (Linux 5.8)");
    }
    if !matches!(mmapable, Ok(true)) {
        missing.push("mmapable BPF arrays (Linux 5.5)");
    }
    if !matches!(xdp, Ok(true)) {
        missing.push("XDP programs (Linux 4.8)");
    }
    if !missing.is_empty() {
        bail!("kernel {} lacks {}", kernel::release(), missing.join(", "));
    }
    Ok(())
}
