//! Network interfaces by name and by index.

use std::ffi::{CStr, CString};

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
    let inode = |path: &str| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    match (inode("/proc/self/ns/net"), inode("/proc/1/ns/net")) {
        (Ok(ours), Ok(init)) => ours == init,
        _ => true, // cannot tell: assume the worst
    }
}
