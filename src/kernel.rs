//! What the running kernel is and has: its release, and probes for the BPF
//! map and program types (and map flags) xdp-hello needs.

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

/// Whether arrays can be created `BPF_F_MMAPABLE` (Linux 5.5): the program's
/// class arrays are, and user space writes them through a mapping.
pub fn has_mmapable_arrays() -> io::Result<bool> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: libbpf_sys::BPF_F_MMAPABLE,
        ..Default::default()
    };
    // SAFETY: a null name is allowed; `opts` lives through the call.
    let fd = unsafe {
        libbpf_sys::bpf_map_create(
            libbpf_sys::BPF_MAP_TYPE_ARRAY,
            std::ptr::null(),
            4,
            8,
            1,
            &opts,
        )
    };
    match fd {
        fd if fd >= 0 => {
            // SAFETY: the fd was just made here and is closed once.
            unsafe { libc::close(fd) };
            Ok(true)
        }
        err if -err == libc::EINVAL => Ok(false),
        err => Err(io::Error::from_raw_os_error(-err)),
    }
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
