//! Waiting until no XDP program run that started before now is still going.
//!
//! XDP programs run inside RCU read-side sections, so an RCU grace period is
//! that wait. User space has no direct way to ask for one, but updating an
//! array-of-maps from user space makes the kernel call `synchronize_rcu()`
//! (kernel/bpf/syscall.c, `maybe_wait_bpf_programs`; the kernel's own
//! selftests rely on it, see test_btf_map_in_map.c).

use std::os::fd::{AsFd, AsRawFd};

use anyhow::{Context, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

/// A map-in-map whose only use is that updating it waits a grace period.
pub struct GracePeriod {
    outer: MapHandle,
    inner: MapHandle,
}

impl GracePeriod {
    pub fn new() -> Result<Self> {
        let no_opts = libbpf_sys::bpf_map_create_opts {
            sz: size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let inner = MapHandle::create(MapType::Array, Some("xh_grace_in"), 4, 4, 1, &no_opts)
            .context("creating the grace-period map")?;
        let outer_opts = libbpf_sys::bpf_map_create_opts {
            inner_map_fd: inner.as_fd().as_raw_fd() as u32,
            ..no_opts
        };
        let outer = MapHandle::create(MapType::ArrayOfMaps, Some("xh_grace"), 4, 4, 1, &outer_opts)
            .context("creating the grace-period map")?;
        Ok(GracePeriod { outer, inner })
    }

    /// Returns once every XDP run that began before the call has ended.
    pub fn wait(&self) -> Result<()> {
        let inner_fd = self.inner.as_fd().as_raw_fd() as u32;
        self.outer
            .update(&0u32.to_ne_bytes(), &inner_fd.to_ne_bytes(), MapFlags::ANY)
            .context("waiting for an RCU grace period")
    }
}
