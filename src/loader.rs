//! Opens the skeleton, sizes the ring buffer, loads the program into the
//! kernel and attaches it to an interface with a bpf_link — explaining every
//! refusal in terms of what the user can do about it.

use std::fmt;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

use crate::abi::Config;
use crate::privileges;
use crate::skel::{XdpHelloSkel, XdpHelloSkelBuilder};

/// How the program is attached to the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Native (driver) mode where the driver supports XDP, else skb mode.
    Auto,
    /// Native (driver) mode: fastest, needs driver support.
    Native,
    /// Generic (skb) mode: works on every interface, slower.
    Skb,
}

impl Mode {
    fn flags(self) -> u32 {
        match self {
            Mode::Auto => 0,
            Mode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            Mode::Skb => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Native => "native",
            Mode::Skb => "skb",
        })
    }
}

/// Opens and loads the XDP object with a ring buffer of `ring_bytes` and the
/// load-time settings `config`.
pub fn load(
    object: &mut MaybeUninit<OpenObject>,
    ring_bytes: u32,
    config: Config,
) -> Result<XdpHelloSkel<'_>> {
    privileges::check()?;
    require_ring_buffer()?;
    let mut open = XdpHelloSkelBuilder::default()
        .open(object)
        .context("opening the embedded BPF object failed")?;
    open.maps
        .events
        .set_max_entries(ring_bytes)
        .context("sizing the ring buffer failed")?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("the BPF object has no .rodata")?;
    rodata.CONFIG.default_verdict = config.default_verdict;
    rodata.CONFIG.notice_mode = config.notice_mode;
    open.load().map_err(|err| explain_load_error(&err))
}

/// EPERM is a missing privilege; EACCES is how the verifier says no.
fn explain_load_error(err: &libbpf_rs::Error) -> anyhow::Error {
    if has_errno(err, libc::EPERM) {
        privileges::denied()
    } else if has_errno(err, libc::EACCES) {
        let hint = privileges::verifier_hint()
            .map(|hint| format!("; {hint}"))
            .unwrap_or_default();
        anyhow!(
            "the kernel's verifier rejected the XDP program (EACCES): run with -v to see its \
             log{hint}"
        )
    } else {
        anyhow!(
            "loading the XDP program failed: {err} (run with -v to see libbpf's and the verifier's log)"
        )
    }
}

/// Whether `err` came from `errno`. libbpf_rs::Error has no raw_os_error(),
/// and its kind() folds EPERM and EACCES into PermissionDenied alike; but it
/// is made from `io::Error::from_raw_os_error`, whose text ends its chain.
fn has_errno(err: &libbpf_rs::Error, errno: i32) -> bool {
    format!("{err:#}").ends_with(&io::Error::from_raw_os_error(errno).to_string())
}

/// BPF ring buffers came with Linux 5.8; say so instead of failing obscurely.
fn require_ring_buffer() -> Result<()> {
    let supported = unsafe {
        libbpf_sys::libbpf_probe_bpf_map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null())
    };
    match supported {
        1 => Ok(()),
        0 => bail!(
            "kernel {} has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF needs Linux 5.8 or newer)",
            kernel_release()
        ),
        err if -err == libc::EPERM => Err(privileges::denied()),
        err => Err(io::Error::from_raw_os_error(-err)).context("probing for BPF ring buffers"),
    }
}

/// An XDP program attached through a bpf_link. The kernel detaches it when
/// the last descriptor of the link closes: on drop, on exit, on SIGKILL.
pub struct Attachment {
    _link: OwnedFd,
    /// The mode the kernel accepted (never `Auto`).
    pub mode: Mode,
    /// Set when `auto` had to fall back to skb mode.
    pub fell_back: bool,
}

impl Attachment {
    /// The bpf_link, for asking the kernel whether it still holds (watch.rs).
    pub fn link(&self) -> BorrowedFd<'_> {
        self._link.as_fd()
    }
}

/// Attaches the loaded program to `iface` in `mode`.
pub fn attach(
    skel: &XdpHelloSkel<'_>,
    ifindex: u32,
    iface: &str,
    mode: Mode,
) -> Result<Attachment> {
    let prog = skel.progs.xdp_hello.as_fd();
    let try_mode = |mode: Mode| {
        link_create(prog.as_raw_fd(), ifindex, mode.flags())
            .map_err(|err| explain_attach_error(err, iface, ifindex, mode))
    };
    match mode {
        Mode::Auto => match link_create(prog.as_raw_fd(), ifindex, Mode::Native.flags()) {
            Ok(link) => Ok(Attachment {
                _link: link,
                mode: Mode::Native,
                fell_back: false,
            }),
            // The driver has no native XDP: generic mode works everywhere.
            Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(Attachment {
                _link: try_mode(Mode::Skb)?,
                mode: Mode::Skb,
                fell_back: true,
            }),
            Err(err) => Err(explain_attach_error(err, iface, ifindex, Mode::Native)),
        },
        explicit => Ok(Attachment {
            _link: try_mode(explicit)?,
            mode: explicit,
            fell_back: false,
        }),
    }
}

/// libbpf's `bpf_link_create` for BPF_XDP: the only way to get a link in an
/// explicit mode (`bpf_program__attach_xdp` always passes flags 0).
fn link_create(prog_fd: i32, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        flags,
        ..Default::default()
    };
    let fd =
        unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The kernel gives no text on the link path: turn its errno into advice.
fn explain_attach_error(err: io::Error, iface: &str, ifindex: u32, mode: Mode) -> anyhow::Error {
    let errno = err.raw_os_error().unwrap_or(0);
    match errno {
        libc::EBUSY | libc::EEXIST => busy(iface, ifindex, errno == libc::EEXIST),
        libc::EOPNOTSUPP if mode == Mode::Native => {
            anyhow!("{iface}'s driver does not support native XDP: use --mode skb (or --mode auto)")
        }
        libc::EPERM | libc::EACCES => privileges::denied(),
        libc::EINVAL if !kernel_at_least(5, 9) => anyhow!(
            "kernel {} cannot attach XDP through a bpf_link (needs Linux 5.9 or newer)",
            kernel_release()
        ),
        libc::ERANGE | libc::EINVAL if mode == Mode::Native => anyhow!(
            "{iface} refused native XDP ({err}); its MTU may be too large for XDP: try --mode skb"
        ),
        _ => anyhow!("attaching to {iface} in {mode} mode failed: {err}"),
    }
}

/// The interface already has a program (`other_mode`: in a mode the kernel
/// will not combine with ours). Says how to get rid of it: a program held by
/// a bpf_link goes only when the link's holders close it, while `ip link set
/// ... off` is refused ("Can't replace active BPF XDP link"); one attached
/// through netlink goes with `ip link set ... off` in its own mode.
fn busy(iface: &str, ifindex: u32, other_mode: bool) -> anyhow::Error {
    let mismatch = if other_mode { " in another mode" } else { "" };
    let advice = |occupant: &Occupant| match &occupant.link {
        Some(link) => {
            let holders = if link.holders.is_empty() {
                " (no process found with it open: pinned under /sys/fs/bpf, or a process out of \
                 sight, e.g. another xdp-hello): remove the pin or stop that process"
                    .to_string()
            } else {
                let holders: Vec<String> = link
                    .holders
                    .iter()
                    .map(|(pid, comm)| format!("{pid} ({comm})"))
                    .collect();
                let (noun, pronoun) = match holders.len() {
                    1 => ("process", "that process"),
                    _ => ("processes", "those processes"),
                };
                format!(" of {noun} {}: stop {pronoun}", holders.join(", "))
            };
            format!(
                "held by bpf_link id {}{holders}; `bpftool link show id {}` shows the link",
                link.id, link.id
            )
        }
        None => format!(
            "attached without a bpf_link: remove it with `ip link set dev {iface} {} off`",
            occupant.mode.ip_keyword()
        ),
    };
    match &occupants(ifindex)[..] {
        [] => anyhow!(
            "{iface} already has an XDP program{mismatch}, which could not be identified: \
             `bpftool net show dev {iface}` shows it"
        ),
        [one] => anyhow!(
            "{iface} already has an XDP program{mismatch} (program id {}, {} mode) {}",
            one.prog_id,
            one.mode,
            advice(one)
        ),
        several => {
            let each: Vec<String> = several
                .iter()
                .map(|o| format!("program id {} ({} mode) {}", o.prog_id, o.mode, advice(o)))
                .collect();
            anyhow!(
                "{iface} already has XDP programs{mismatch}: {}",
                each.join("; ")
            )
        }
    }
}

/// The slots an interface has for XDP programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Native,
    Skb,
    Offload,
}

impl Slot {
    /// iproute2's name of the mode, as in `ip link set dev X xdpgeneric off`.
    fn ip_keyword(self) -> &'static str {
        match self {
            Slot::Native => "xdpdrv",
            Slot::Skb => "xdpgeneric",
            Slot::Offload => "xdpoffload",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Native => "native",
            Slot::Skb => "skb",
            Slot::Offload => "offload",
        })
    }
}

/// An XDP program on an interface.
#[derive(Debug)]
struct Occupant {
    prog_id: u32,
    mode: Slot,
    /// The bpf_link that holds it there, if one does.
    link: Option<Link>,
}

#[derive(Debug)]
struct Link {
    id: u32,
    /// Pid and command of the processes with the link open, as far as /proc
    /// shows them.
    holders: Vec<(u32, String)>,
}

/// The XDP programs on `ifindex` (in this network namespace), one a mode.
fn occupants(ifindex: u32) -> Vec<Occupant> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    if unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) } != 0 {
        return Vec::new();
    }
    let mut found: Vec<(u32, Slot)> = [
        (opts.drv_prog_id, Slot::Native),
        (opts.skb_prog_id, Slot::Skb),
        (opts.hw_prog_id, Slot::Offload),
    ]
    .into_iter()
    .filter(|&(id, _)| id != 0)
    .collect();
    if found.is_empty() && opts.prog_id != 0 {
        let slot = match opts.attach_mode as u32 {
            libbpf_sys::XDP_ATTACHED_SKB => Slot::Skb,
            libbpf_sys::XDP_ATTACHED_HW => Slot::Offload,
            _ => Slot::Native,
        };
        found.push((opts.prog_id, slot));
    }
    found
        .into_iter()
        .map(|(prog_id, mode)| Occupant {
            prog_id,
            mode,
            link: xdp_link(prog_id, ifindex).map(|id| Link {
                id,
                holders: link_holders(id),
            }),
        })
        .collect()
}

/// The id of the XDP link that attaches program `prog_id` to `ifindex`.
/// Link ids are global while ifindexes are per network namespace: the
/// program id tells ours apart. (libbpf_rs::query::LinkInfoIter would do,
/// but it ends at the first link whose info it cannot read or parse.)
fn xdp_link(prog_id: u32, ifindex: u32) -> Option<u32> {
    let mut id = 0;
    while unsafe { libbpf_sys::bpf_link_get_next_id(id, &mut id) } == 0 {
        let fd = unsafe { libbpf_sys::bpf_link_get_fd_by_id(id) };
        if fd < 0 {
            continue; // gone meanwhile
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Zeroed, padding included: the kernel wants unknown bytes zero.
        let mut info: libbpf_sys::bpf_link_info = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libbpf_sys::bpf_link_info>() as u32;
        if unsafe { libbpf_sys::bpf_link_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } != 0
        {
            continue;
        }
        if info.type_ == libbpf_sys::BPF_LINK_TYPE_XDP
            && info.prog_id == prog_id
            && unsafe { info.__bindgen_anon_1.xdp.ifindex } == ifindex
        {
            return Some(info.id);
        }
    }
    None
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
                && std::fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ))
                .is_ok_and(|info| {
                    info.lines().any(|line| {
                        line.strip_prefix("link_id:")
                            .is_some_and(|id| id.trim().parse() == Ok(link_id))
                    })
                })
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

/// `uname -r`.
pub fn kernel_release() -> String {
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "(unknown)".into();
    }
    unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = kernel_release();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_and_eacces_are_told_apart() {
        let eacces = libbpf_rs::Error::from_raw_os_error(libc::EACCES);
        let eperm = libbpf_rs::Error::from_raw_os_error(libc::EPERM);
        // The distinction kind() does not make.
        assert_eq!(eacces.kind(), eperm.kind());
        assert!(has_errno(&eacces, libc::EACCES) && !has_errno(&eacces, libc::EPERM));
        assert!(has_errno(&eperm, libc::EPERM) && !has_errno(&eperm, libc::EACCES));
        let verifier = explain_load_error(&eacces).to_string();
        assert!(
            verifier.starts_with("the kernel's verifier rejected"),
            "{verifier}"
        );
        assert!(verifier.contains("-v"), "{verifier}");
        let other = explain_load_error(&libbpf_rs::Error::from_raw_os_error(libc::EINVAL));
        assert!(other
            .to_string()
            .starts_with("loading the XDP program failed"));
    }
}
