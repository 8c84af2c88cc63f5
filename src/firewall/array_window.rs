//! An array map's values written through a shared mapping of them: a copy
//! in memory, where a batch update costs a syscall's worth of copying per
//! slot (65,537 port classes: 17 ms through the syscall, well under one
//! this way). Only arrays created `BPF_F_MMAPABLE` (Linux 5.5) allow it.
//! The kernel maps every page of the window at once, so a window covers
//! just the slots written.

use std::os::fd::AsRawFd;
use std::ptr::{self, NonNull};

use anyhow::{ensure, Result};
use libbpf_rs::MapCore;

/// Some slots of one array map's values, mapped into this process.
pub(super) struct ArrayWindow {
    /// The start of the mapping: the page that holds slot `first`.
    pages: NonNull<u8>,
    len: usize,
    /// Where slot `first` lies in the mapping.
    offset: usize,
    first: usize,
    slots: usize,
    /// Bytes from one value to the next: the value size rounded up to 8.
    stride: usize,
}

impl ArrayWindow {
    /// Maps slots `first..first + slots` of `map`; `None` where the map
    /// does not allow it, or has no such slots.
    pub(super) fn open(map: &dyn MapCore, first: u32, slots: usize) -> Option<ArrayWindow> {
        let stride = (map.value_size() as usize).next_multiple_of(8);
        let first = first as usize;
        if first + slots > map.max_entries() as usize {
            return None;
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let start = first * stride / page * page;
        let end = (first + slots) * stride;
        let len = (end - start).max(1);
        // SAFETY: a fresh shared mapping of the map's fd at a page offset;
        // the kernel checks that it lies inside the map.
        let pages = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                start as libc::off_t,
            )
        };
        if pages == libc::MAP_FAILED {
            return None;
        }
        Some(ArrayWindow {
            pages: NonNull::new(pages.cast())?,
            len,
            offset: first * stride - start,
            first,
            slots,
            stride,
        })
    }

    /// Writes `values` into the window's slots from its first on.
    pub(super) fn write<V: plain::Plain>(&mut self, values: &[V]) -> Result<()> {
        let size = size_of::<V>();
        ensure!(
            size <= self.stride && values.len() <= self.slots,
            "{} values of {size} bytes do not fit {} slots of {} from slot {}",
            values.len(),
            self.slots,
            self.stride,
            self.first
        );
        // SAFETY: the slots are inside the mapping (checked above), and
        // plain data may be copied as bytes.
        unsafe {
            let base = self.pages.as_ptr().add(self.offset);
            if size == self.stride {
                ptr::copy_nonoverlapping(values.as_ptr().cast(), base, size_of_val(values));
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
        unsafe { libc::munmap(self.pages.as_ptr().cast(), self.len) };
    }
}
