//! An array map's values written through a shared mapping of them: a copy
//! in memory, where a batch update costs a syscall's worth of copying per
//! slot (65,537 port classes: 17 ms through the syscall, well under one
//! this way). Only arrays created `BPF_F_MMAPABLE` (Linux 5.5) allow it.

use std::os::fd::AsRawFd;
use std::ptr::{self, NonNull};

use anyhow::{ensure, Result};
use libbpf_rs::MapCore;

/// All of one array map's values, mapped into this process.
pub(super) struct ArrayWindow {
    values: NonNull<u8>,
    /// Bytes from one value to the next: the value size rounded up to 8.
    stride: usize,
    slots: usize,
}

impl ArrayWindow {
    /// Maps `map`'s values; `None` where the map does not allow it.
    pub(super) fn open(map: &dyn MapCore) -> Option<ArrayWindow> {
        let stride = (map.value_size() as usize).next_multiple_of(8);
        let slots = map.max_entries() as usize;
        // SAFETY: a fresh shared mapping of the map's fd; the kernel checks
        // that the length fits the map.
        let values = unsafe {
            libc::mmap(
                ptr::null_mut(),
                stride * slots,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if values == libc::MAP_FAILED {
            return None;
        }
        Some(ArrayWindow {
            values: NonNull::new(values.cast())?,
            stride,
            slots,
        })
    }

    /// Writes `values` into the slots from `first` on.
    pub(super) fn write<V: plain::Plain>(&mut self, first: u32, values: &[V]) -> Result<()> {
        let (first, size) = (first as usize, size_of::<V>());
        ensure!(
            size <= self.stride && first + values.len() <= self.slots,
            "{} values of {size} bytes from slot {first} do not fit an array of {} slots of {}",
            values.len(),
            self.slots,
            self.stride
        );
        // SAFETY: the slots are inside the mapping (checked above), and
        // plain data may be copied as bytes.
        unsafe {
            let base = self.values.as_ptr().add(first * self.stride);
            if size == self.stride {
                ptr::copy_nonoverlapping(values.as_ptr().cast(), base, size * values.len());
            } else {
                for (i, value) in values.iter().enumerate() {
                    let bytes: *const u8 = (value as *const V).cast();
                    ptr::copy_nonoverlapping(bytes, base.add(i * self.stride), size);
                }
            }
        }
        Ok(())
    }
}

impl Drop for ArrayWindow {
    fn drop(&mut self) {
        // SAFETY: the mapping `open` made, unmapped once.
        unsafe { libc::munmap(self.values.as_ptr().cast(), self.stride * self.slots) };
    }
}
