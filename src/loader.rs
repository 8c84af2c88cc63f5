//! Opens the skeleton, sizes the ring buffer, loads the program into the
//! kernel and attaches it to an interface with a bpf_link — explaining every
//! refusal in terms of what the user can do about it.

use std::fmt;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

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
    open.load().map_err(|err| {
        if err.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            privileges::denied()
        } else {
            anyhow!(
                "loading the XDP program failed: {err} (run with -v to see libbpf's and the verifier's log)"
            )
        }
    })
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
        libc::EBUSY | libc::EEXIST => {
            let (other, removal) = match attached_program(ifindex) {
                Some((id, other_mode)) => (
                    format!("program id {id}, {other_mode} mode"),
                    match other_mode {
                        "skb" => format!("`ip link set dev {iface} xdpgeneric off`"),
                        "native" => format!("`ip link set dev {iface} xdpdrv off`"),
                        _ => format!("`ip link set dev {iface} xdp off`"),
                    },
                ),
                None => (
                    "another program".to_string(),
                    format!("`ip link set dev {iface} xdp off`"),
                ),
            };
            let mismatch = if errno == libc::EEXIST {
                " in another mode"
            } else {
                ""
            };
            anyhow!(
                "{iface} already has an XDP program{mismatch} ({other}): see it with \
                 `bpftool net show dev {iface}`; if a process holds it through a link \
                 (xdp-hello, xdp-loader), stop that process, else remove it with {removal}"
            )
        }
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

/// The id and mode of the XDP program already on `ifindex`, if any.
fn attached_program(ifindex: u32) -> Option<(u32, &'static str)> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    let ret = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if ret != 0 || opts.prog_id == 0 {
        return None;
    }
    let mode = match opts.attach_mode as u32 {
        libbpf_sys::XDP_ATTACHED_DRV => "native",
        libbpf_sys::XDP_ATTACHED_SKB => "skb",
        libbpf_sys::XDP_ATTACHED_HW => "offload",
        _ => "several",
    };
    Some((opts.prog_id, mode))
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
