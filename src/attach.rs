//! Attaches the loaded program to an interface with a bpf_link, in the XDP
//! mode asked for, explaining a refusal in terms of what the user can do
//! about it.

use std::fmt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{anyhow, Result};
use libbpf_rs::libbpf_sys;

use crate::occupants::{occupants, Link, Occupant};
use crate::skel::XdpHelloSkel;
use crate::{kernel, privileges};

/// Where an XDP program runs on an interface: what the user asks for
/// (`--mode`), what the kernel accepted, and where another program sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Native (driver) mode where the driver supports XDP, else skb mode.
    Auto,
    /// Native (driver) mode: fastest, needs driver support.
    Native,
    /// Generic (skb) mode: works on every interface, slower.
    Skb,
    /// Offloaded to the NIC: only ever found holding an interface, never
    /// asked for.
    #[value(skip)]
    Offload,
}

impl Mode {
    fn flags(self) -> u32 {
        match self {
            Mode::Auto => 0,
            Mode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            Mode::Skb => libbpf_sys::XDP_FLAGS_SKB_MODE,
            Mode::Offload => libbpf_sys::XDP_FLAGS_HW_MODE,
        }
    }

    /// iproute2's name of the mode, as in `ip link set dev X xdpgeneric off`.
    pub fn ip_keyword(self) -> &'static str {
        match self {
            Mode::Auto => "xdp",
            Mode::Native => "xdpdrv",
            Mode::Skb => "xdpgeneric",
            Mode::Offload => "xdpoffload",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Native => "native",
            Mode::Skb => "skb",
            Mode::Offload => "offload",
        })
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

    /// Puts `new` on the link in place of `old`, in one step: each packet
    /// runs the one or the other. Refused if the link no longer runs `old`.
    pub fn replace_program(&self, old: BorrowedFd<'_>, new: BorrowedFd<'_>) -> io::Result<()> {
        let opts = libbpf_sys::bpf_link_update_opts {
            sz: size_of::<libbpf_sys::bpf_link_update_opts>() as _,
            flags: libbpf_sys::BPF_F_REPLACE,
            old_prog_fd: old.as_raw_fd() as u32,
            ..Default::default()
        };
        // SAFETY: plain descriptors and an options struct of its own size.
        let err =
            unsafe { libbpf_sys::bpf_link_update(self.link().as_raw_fd(), new.as_raw_fd(), &opts) };
        if err < 0 {
            return Err(io::Error::from_raw_os_error(-err));
        }
        Ok(())
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
    let asked = mode;
    let try_mode = |mode: Mode| {
        link_create(prog.as_raw_fd(), ifindex, mode.flags())
            .map_err(|err| explain_attach_error(err, iface, ifindex, mode, asked))
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
            Err(err) => Err(explain_attach_error(
                err,
                iface,
                ifindex,
                Mode::Native,
                asked,
            )),
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
/// `mode` is the mode tried, `asked` the one the user asked for (`auto`
/// tries native first).
fn explain_attach_error(
    err: io::Error,
    iface: &str,
    ifindex: u32,
    mode: Mode,
    asked: Mode,
) -> anyhow::Error {
    let errno = err.raw_os_error().unwrap_or(0);
    match errno {
        libc::EBUSY | libc::EEXIST => {
            busy(iface, &occupants(ifindex), names_another_mode(errno, asked))
        }
        libc::EOPNOTSUPP if mode == Mode::Native => {
            anyhow!("{iface}'s driver does not support native XDP: use --mode skb (or --mode auto)")
        }
        libc::EPERM | libc::EACCES => privileges::denied(),
        libc::EINVAL if !kernel::at_least(5, 9) => anyhow!(
            "kernel {} cannot attach XDP through a bpf_link (needs Linux 5.9 or newer)",
            kernel::release()
        ),
        libc::ERANGE | libc::EINVAL if mode == Mode::Native => anyhow!(
            "{iface} refused native XDP ({err}); its MTU may be too large for XDP: try --mode skb"
        ),
        _ => anyhow!("attaching to {iface} in {mode} mode failed: {err}"),
    }
}

/// Whether a refusal with `errno` is to be told as a program "in another
/// mode": EEXIST is the kernel's word for one in the other mode, but only a
/// mode the user chose can be "another" — `auto` chose none.
fn names_another_mode(errno: i32, asked: Mode) -> bool {
    errno == libc::EEXIST && asked != Mode::Auto
}

/// The interface already has a program, `occupants` (`other_mode`: in a
/// mode the kernel will not combine with the one asked for). Says how to get
/// rid of it: a program held by a bpf_link goes only when the link's holders
/// close it and its pins are removed, while `ip link set ... off` is refused
/// ("Can't replace active BPF XDP link"); one attached through netlink goes
/// with `ip link set ... off` in its own mode.
fn busy(iface: &str, occupants: &[Occupant], other_mode: bool) -> anyhow::Error {
    let mismatch = if other_mode { " in another mode" } else { "" };
    let advice = |occupant: &Occupant| match &occupant.link {
        Some(link) => link_advice(link),
        None => format!(
            "attached without a bpf_link: remove it with `ip link set dev {iface} {} off`",
            occupant.mode.ip_keyword()
        ),
    };
    match occupants {
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

/// What keeps `link` alive and what to do about it: the processes that
/// hold it open, the pins that hold it, or, where neither can be seen from
/// here, how to find them.
fn link_advice(link: &Link) -> String {
    let id = link.id;
    let show = format!("`bpftool link show id {id}` shows the link");
    let holders: Vec<String> = link
        .holders
        .iter()
        .map(|(pid, comm)| format!("{pid} ({comm})"))
        .collect();
    let pins: Vec<String> = link.pins.iter().map(|p| p.display().to_string()).collect();
    let process = match holders.len() {
        0 => None,
        1 => Some(format!("of process {}", holders[0])),
        _ => Some(format!("of processes {}", holders.join(", "))),
    };
    let pinned = (!pins.is_empty()).then(|| format!("pinned at {}", pins.join(", ")));
    let stop = match holders.len() {
        0 => None,
        1 => Some("stop that process".to_string()),
        _ => Some("stop those processes".to_string()),
    };
    let unpin = match &pins[..] {
        [] => None,
        [pin] => Some(format!("remove the pin (`rm {pin}`)")),
        _ => Some("remove the pins (`rm` each)".to_string()),
    };
    if stop.is_none() && unpin.is_none() {
        return format!(
            "held by bpf_link id {id}, which no process here has open and no pin in the bpffs \
             mounts here holds: a process out of sight (another PID namespace) or a pin in \
             another mount namespace keeps it; `bpftool link show id {id}` names the \
             processes that hold it, and `bpftool -f link show id {id}` run in the pinning \
             mount namespace names the pin"
        );
    }
    let todo: Vec<String> = [stop, unpin].into_iter().flatten().collect();
    let todo = todo.join(" and ");
    let keepers: Vec<String> = [process, pinned].into_iter().flatten().collect();
    format!(
        "held by bpf_link id {id} {}: {todo}; {show}",
        keepers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(holders: &[(u32, &str)], pins: &[&str]) -> Link {
        Link {
            id: 7,
            holders: holders.iter().map(|&(p, c)| (p, c.to_string())).collect(),
            pins: pins.iter().map(std::path::PathBuf::from).collect(),
        }
    }

    /// Issue 7 item 23: a link kept by a pin names the pin and how to remove it.
    #[test]
    fn a_pinned_link_names_its_pin() {
        let advice = link_advice(&held(&[], &["/sys/fs/bpf/xdp/link"]));
        assert_eq!(
            advice,
            "held by bpf_link id 7 pinned at /sys/fs/bpf/xdp/link: remove the pin \
             (`rm /sys/fs/bpf/xdp/link`); `bpftool link show id 7` shows the link"
        );
        let both = link_advice(&held(&[(42, "xdp-hello")], &["/b/p"]));
        assert!(
            both.contains(
                "id 7 of process 42 (xdp-hello), pinned at /b/p: stop that process and remove \
                 the pin (`rm /b/p`)"
            ),
            "{both}"
        );
        let process = link_advice(&held(&[(42, "xdp-hello")], &[]));
        assert_eq!(
            process,
            "held by bpf_link id 7 of process 42 (xdp-hello): stop that process; \
             `bpftool link show id 7` shows the link"
        );
    }

    /// Neither a holder nor a pin in sight: say what to run to find them,
    /// instead of guessing.
    #[test]
    fn a_link_held_out_of_sight_says_how_to_find_its_holder() {
        let advice = link_advice(&held(&[], &[]));
        assert!(advice.contains("`bpftool link show id 7`"), "{advice}");
        assert!(advice.contains("`bpftool -f link show id 7`"), "{advice}");
        assert!(!advice.contains("pinned at"), "{advice}");
    }

    /// Issue 7 item 22: `-m auto` asked for no mode, so the program in the
    /// way is not "in another mode"; an explicit mode is.
    #[test]
    fn busy_in_auto_mode_names_no_other_mode() {
        assert!(!names_another_mode(libc::EEXIST, Mode::Auto));
        assert!(names_another_mode(libc::EEXIST, Mode::Native));
        assert!(names_another_mode(libc::EEXIST, Mode::Skb));
        assert!(!names_another_mode(libc::EBUSY, Mode::Native));
        let occupant = Occupant {
            prog_id: 5,
            mode: Mode::Skb,
            link: None,
        };
        let auto = busy("veth0", std::slice::from_ref(&occupant), false).to_string();
        assert!(
            auto.starts_with("veth0 already has an XDP program (program id 5, skb mode)"),
            "{auto}"
        );
        let native = busy("veth0", &[occupant], true).to_string();
        assert!(
            native.contains("program in another mode (program id 5"),
            "{native}"
        );
    }
}
