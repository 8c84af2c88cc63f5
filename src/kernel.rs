//! What the running kernel is and has: its release, and probes for the BPF
//! map and program types xdp-hello needs.

use std::io;

use libbpf_rs::libbpf_sys;

/// `uname -r`.
pub fn release() -> String {
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "(unknown)".into();
    }
    unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Whether the release is `major.minor` or newer.
pub fn at_least(major: u32, minor: u32) -> bool {
    let release = release();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

/// Whether the kernel has maps of `map_type`: libbpf creates a small one to
/// see. An error is the errno of a probe that could not tell (EPERM: not
/// allowed to create maps at all).
pub fn has_map_type(map_type: libbpf_sys::bpf_map_type) -> io::Result<bool> {
    probed(unsafe { libbpf_sys::libbpf_probe_bpf_map_type(map_type, std::ptr::null()) })
}

/// Whether the kernel loads programs of `prog_type`, as [`has_map_type`].
pub fn has_prog_type(prog_type: libbpf_sys::bpf_prog_type) -> io::Result<bool> {
    probed(unsafe { libbpf_sys::libbpf_probe_bpf_prog_type(prog_type, std::ptr::null()) })
}

/// libbpf's probes answer 1 (yes), 0 (no) or a negative errno.
fn probed(answer: i32) -> io::Result<bool> {
    match answer {
        0 => Ok(false),
        err if err < 0 => Err(io::Error::from_raw_os_error(-err)),
        _ => Ok(true),
    }
}
