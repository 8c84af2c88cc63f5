//! Network interfaces by name and by index.

use std::ffi::{CStr, CString};
use std::path::Path;

use anyhow::{bail, Result};

/// The index of interface `name`, or an error that lists the ones there are.
pub fn index_of(name: &str) -> Result<u32> {
    let c_name = CString::new(name).unwrap_or_default();
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        bail!(
            "no interface named '{name}'; interfaces here: {} (pick one with -i)",
            names().join(", ")
        );
    }
    Ok(index)
}

/// The name of interface `index`, or the number itself if it has none (gone).
pub fn name_of(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    let found = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if found.is_null() {
        return format!("if{index}");
    }
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Every interface in this network namespace, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether this process shares the network namespace of init — the host's
/// own, where a default-deny policy can cut off remote access.
pub fn in_initial_namespace() -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |path: &Path| std::fs::metadata(path).map(|m| (m.dev(), m.ino())).ok();
    let Some(ours) = id(Path::new("/proc/self/ns/net")) else {
        return true; // cannot tell: assume the worst
    };
    if let Some(init) = id(Path::new("/proc/1/ns/net")) {
        return ours == init;
    }
    // Sandboxes may hide init's namespace even from root: recognise the
    // initial one by its fixed inode, a named one (`ip netns`) by its file.
    if ours.1 == PROC_NET_INIT_INO {
        return true;
    }
    let named = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten();
    !named
        .into_iter()
        .any(|entry| id(&entry.path()) == Some(ours))
}

/// The inode of the initial network namespace (include/linux/proc_ns.h).
const PROC_NET_INIT_INO: u64 = 0xEFFF_FFF9;
