//! Who holds an interface's XDP slot: the programs on it, the bpf_link
//! that attaches each, and what keeps that link alive — the processes with
//! it open, and its pins in the bpffs mounts this process can see.

use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libbpf_rs::libbpf_sys;

use crate::attach::Mode;

/// An XDP program on an interface.
#[derive(Debug)]
pub struct Occupant {
    pub prog_id: u32,
    pub mode: Mode,
    /// The bpf_link that holds it there, if one does.
    pub link: Option<Link>,
}

/// A bpf_link, and what keeps it alive.
#[derive(Debug)]
pub struct Link {
    pub id: u32,
    /// Pid and command of the processes with the link open, as far as /proc
    /// shows them.
    pub holders: Vec<(u32, String)>,
    /// Where it is pinned, in the bpffs mounts this mount namespace shows.
    pub pins: Vec<PathBuf>,
}

/// The XDP programs on `ifindex` (in this network namespace), one a mode.
pub fn occupants(ifindex: u32) -> Vec<Occupant> {
    programs(ifindex)
        .into_iter()
        .map(|(prog_id, mode)| Occupant {
            prog_id,
            mode,
            link: xdp_link(prog_id, ifindex).map(|id| Link {
                id,
                holders: link_holders(id),
                pins: link_pins(id),
            }),
        })
        .collect()
}

/// The ids of the XDP programs on `ifindex` here and the mode of each, as
/// the kernel reports them (none where it cannot be asked).
pub fn programs(ifindex: u32) -> Vec<(u32, Mode)> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    if unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) } != 0 {
        return Vec::new();
    }
    let mut found: Vec<(u32, Mode)> = [
        (opts.drv_prog_id, Mode::Native),
        (opts.skb_prog_id, Mode::Skb),
        (opts.hw_prog_id, Mode::Offload),
    ]
    .into_iter()
    .filter(|&(id, _)| id != 0)
    .collect();
    // Older kernels report no id per mode, only the one program and its mode.
    if found.is_empty() && opts.prog_id != 0 {
        let mode = match opts.attach_mode as u32 {
            libbpf_sys::XDP_ATTACHED_SKB => Mode::Skb,
            libbpf_sys::XDP_ATTACHED_HW => Mode::Offload,
            _ => Mode::Native,
        };
        found.push((opts.prog_id, mode));
    }
    found
}

/// The id of the XDP link that attaches program `prog_id` to `ifindex`.
/// Link ids are global while ifindexes are per network namespace: the
/// program id tells ours apart.
fn xdp_link(prog_id: u32, ifindex: u32) -> Option<u32> {
    links()
        .find(|info| {
            info.type_ == libbpf_sys::BPF_LINK_TYPE_XDP
                && info.prog_id == prog_id
                && unsafe { info.__bindgen_anon_1.xdp.ifindex } == ifindex
        })
        .map(|info| info.id)
}

/// The info of every bpf_link on the machine that can be read now.
/// (libbpf_rs::query::LinkInfoIter would do, but it ends at the first link
/// whose info it cannot read or parse.)
pub fn links() -> impl Iterator<Item = libbpf_sys::bpf_link_info> {
    let mut id = 0;
    std::iter::from_fn(move || loop {
        if unsafe { libbpf_sys::bpf_link_get_next_id(id, &mut id) } != 0 {
            return None;
        }
        let fd = unsafe { libbpf_sys::bpf_link_get_fd_by_id(id) };
        if fd < 0 {
            continue; // gone meanwhile
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Zeroed, padding included: the kernel wants unknown bytes zero.
        let mut info: libbpf_sys::bpf_link_info = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libbpf_sys::bpf_link_info>() as u32;
        if unsafe { libbpf_sys::bpf_link_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } == 0
        {
            return Some(info);
        }
    })
}

/// The processes with link `link_id` open: descriptors of bpf links, whose
/// fdinfo names the link id. None for a link kept only by a bpffs pin, or
/// by processes this /proc does not show.
fn link_holders(link_id: u32) -> Vec<(u32, String)> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let holds = |pid: u32| {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target == Path::new("anon_inode:bpf_link"))
                && fdinfo_link_id(&format!(
                    "/proc/{pid}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                )) == Some(link_id)
        })
    };
    let mut holders: Vec<(u32, String)> = procs
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| holds(pid))
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|comm| comm.trim_end().to_string())
                .unwrap_or_else(|_| "?".into());
            (pid, comm)
        })
        .collect();
    holders.sort();
    holders
}

/// The link id in an fdinfo file (`link_id:\t7`), where it is a link's.
fn fdinfo_link_id(path: &str) -> Option<u32> {
    let info = std::fs::read_to_string(path).ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("link_id:")?.trim().parse().ok())
}

/// Most entries of bpffs looked at when searching for pins: a bound on the
/// time an error message may take.
const MAX_PIN_ENTRIES: usize = 10_000;

/// The pins of link `link_id` in every bpffs mounted in this mount
/// namespace: each pinned object is opened (bpf_obj_get) and its link id,
/// if it is a link, compared.
fn link_pins(link_id: u32) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut pins = Vec::new();
    let mut budget = MAX_PIN_ENTRIES;
    for mount in bpffs_mounts(&mountinfo) {
        let mut dirs = vec![mount];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if budget == 0 {
                    return pins;
                }
                budget -= 1;
                let path = entry.path();
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => dirs.push(path),
                    Ok(kind) if kind.is_file() && pinned_link_id(&path) == Some(link_id) => {
                        pins.push(path)
                    }
                    _ => {}
                }
            }
        }
    }
    pins.sort();
    pins
}

/// The link id of the object pinned at `path`, if it is a link.
fn pinned_link_id(path: &Path) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let fd = unsafe { libbpf_sys::bpf_obj_get(c_path.as_ptr()) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Only a link's fdinfo has a link_id line (maps and programs have
    // map_id / prog_id).
    fdinfo_link_id(&format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
}

/// The mount points of bpffs in a /proc/PID/mountinfo text: field 5 is the
/// mount point (octal escapes for space, tab, newline and backslash), the
/// file system type follows the ` - ` separator.
fn bpffs_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            (fs.split(' ').next() == Some("bpf"))
                .then(|| mount.split(' ').nth(4).map(unescape_mount_path))
                .flatten()
        })
        .collect()
}

/// `/a\040b` → `/a b`: mountinfo's escapes undone.
fn unescape_mount_path(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bpffs_mounts_in_mountinfo() {
        let mountinfo = "\
22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
35 22 0:30 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:14 - bpf bpf rw,mode=700
90 1 0:45 / /tmp/my\\040pins rw,relatime - bpf none rw
91 1 0:46 / /mnt/bpfish rw - tmpfs bpf rw
";
        assert_eq!(
            bpffs_mounts(mountinfo),
            [PathBuf::from("/sys/fs/bpf"), PathBuf::from("/tmp/my pins")]
        );
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(
            unescape_mount_path("/a\\011b\\134c"),
            PathBuf::from("/a\tb\\c")
        );
        assert_eq!(unescape_mount_path("/plain\\"), PathBuf::from("/plain\\"));
    }
}
