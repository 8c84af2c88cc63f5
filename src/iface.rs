//! Network interfaces by name and by index, and whether xdp-hello can read
//! the frames of one — all asked of the kernel for this process's network
//! namespace (never /sys/class/net, which belongs to the mount namespace).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// An interface as the user named it (`-i`), with its index here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
}

/// The interfaces `names` (`-i`, in order), each one there and named once,
/// at most `max`; else an error that names the one at fault.
pub fn resolve_all(names: &[String], max: usize) -> Result<Vec<Interface>> {
    if names.len() > max {
        bail!(
            "{} interfaces given with -i; one run attaches to at most {max}",
            names.len()
        );
    }
    let mut interfaces: Vec<Interface> = Vec::with_capacity(names.len());
    for name in names {
        let index = index_of(name)?;
        if let Some(earlier) = interfaces.iter().find(|i| i.index == index) {
            bail!(
                "interface '{name}' is given twice with -i (as '{}'): name each once",
                earlier.name
            );
        }
        interfaces.push(Interface {
            name: name.clone(),
            index,
        });
    }
    Ok(interfaces)
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

/// Every interface in this network namespace, sorted: if_nameindex(3),
/// which asks the namespace itself over netlink.
pub fn names() -> Vec<String> {
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Vec::new();
    }
    let mut names = Vec::new();
    // SAFETY: an array ended by an entry with index 0 and a null name, valid
    // until if_freenameindex.
    unsafe {
        let mut entry = list;
        while (*entry).if_index != 0 && !(*entry).if_name.is_null() {
            names.push(
                CStr::from_ptr((*entry).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    names.sort();
    names
}

/// Refuses interfaces whose frames do not begin with an Ethernet header
/// (tun, WireGuard, IP tunnels): the program would read their IP header as
/// Ethernet, and no rule would apply.
pub fn require_ethernet(name: &str) -> Result<()> {
    match hardware_type(name) {
        Ok(kind) => ethernet_or_why_not(name, kind).map_err(anyhow::Error::msg),
        // Cannot tell (e.g. gone meanwhile): the attach will say what is wrong.
        Err(_) => Ok(()),
    }
}

/// Ok for the device types whose frames start with an Ethernet header, else
/// the one-line refusal.
fn ethernet_or_why_not(name: &str, kind: u16) -> Result<(), String> {
    match kind {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Ok(()),
        other => Err(format!(
            "{name} is a {} device without an Ethernet header ({}): xdp-hello reads Ethernet \
             frames and supports Ethernet devices (veth, physical NICs, bridges, bonds, VLANs, \
             tap, loopback) only",
            link_type_name(other),
            arphrd_name(other),
        )),
    }
}

/// iproute2's name for the device type, as `ip link` shows it (`link/none`).
fn link_type_name(kind: u16) -> String {
    let name = match kind {
        libc::ARPHRD_NONE => "none",
        libc::ARPHRD_VOID => "void",
        ARPHRD_RAWIP => "rawip",
        libc::ARPHRD_TUNNEL => "ipip",
        libc::ARPHRD_TUNNEL6 => "tunnel6",
        libc::ARPHRD_SIT => "sit",
        libc::ARPHRD_IPGRE => "gre",
        ARPHRD_IP6GRE => "gre6",
        libc::ARPHRD_PPP => "ppp",
        libc::ARPHRD_INFINIBAND => "infiniband",
        libc::ARPHRD_IEEE80211_RADIOTAP => "ieee802.11/radiotap",
        libc::ARPHRD_CAN => "can",
        _ => return format!("link/{kind}"),
    };
    format!("link/{name}")
}

/// The kernel's name of the device type, with what typically has it.
fn arphrd_name(kind: u16) -> String {
    match kind {
        libc::ARPHRD_NONE => "ARPHRD_NONE: tun, WireGuard".into(),
        ARPHRD_RAWIP => "ARPHRD_RAWIP: raw IP, e.g. a cellular modem".into(),
        libc::ARPHRD_TUNNEL => "ARPHRD_TUNNEL: an IPIP tunnel".into(),
        libc::ARPHRD_TUNNEL6 => "ARPHRD_TUNNEL6: an IP6 tunnel".into(),
        libc::ARPHRD_SIT => "ARPHRD_SIT: a SIT tunnel".into(),
        libc::ARPHRD_IPGRE => "ARPHRD_IPGRE: a GRE tunnel (gretap has Ethernet)".into(),
        ARPHRD_IP6GRE => "ARPHRD_IP6GRE: a GRE6 tunnel (ip6gretap has Ethernet)".into(),
        libc::ARPHRD_PPP => "ARPHRD_PPP".into(),
        other => format!("ARPHRD type {other}"),
    }
}

/// Device types of include/uapi/linux/if_arp.h the libc crate does not
/// name: raw IP without a link-layer header, and GRE over IPv6.
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_IP6GRE: u16 = 823;

/// The warning for an interface that is down, where it is: it can be
/// attached to, but no packet arrives until it is up.
pub fn down_warning(name: &str) -> Option<String> {
    let flags = interface_flags(name).ok()?;
    (flags & libc::IFF_UP == 0).then(|| {
        format!(
            "{name} is down: attaching anyway, but no packet arrives until \
             `ip link set dev {name} up`"
        )
    })
}

/// The device type (ARPHRD_*) of `name`: SIOCGIFHWADDR's address family.
fn hardware_type(name: &str) -> io::Result<u16> {
    let request = interface_ioctl(name, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR fills the hardware-address member.
    Ok(unsafe { request.ifr_ifru.ifru_hwaddr.sa_family })
}

/// The interface flags (IFF_*) of `name`: SIOCGIFFLAGS.
fn interface_flags(name: &str) -> io::Result<libc::c_int> {
    let request = interface_ioctl(name, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS fills the flags member.
    Ok(unsafe { request.ifr_ifru.ifru_flags }.into())
}

/// One of the SIOCGIF* requests about `name`, on a socket of this process's
/// network namespace.
fn interface_ioctl(name: &str, request: libc::Ioctl) -> io::Result<libc::ifreq> {
    if name.len() >= libc::IF_NAMESIZE || name.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid ifreq (an empty name, zeroed union).
    let mut ifreq: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in ifreq.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: the request reads the name and writes within the ifreq.
    if unsafe { libc::ioctl(socket.as_raw_fd(), request, &mut ifreq) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ifreq)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_and_loopback_are_accepted() {
        assert_eq!(ethernet_or_why_not("eth0", libc::ARPHRD_ETHER), Ok(()));
        assert_eq!(ethernet_or_why_not("lo", libc::ARPHRD_LOOPBACK), Ok(()));
    }

    /// Issue 7 item 4: devices without an Ethernet header are refused in
    /// one line that names their type and what is supported.
    #[test]
    fn devices_without_ethernet_are_refused_naming_their_type() {
        for (kind, says) in [
            (libc::ARPHRD_NONE, "a link/none device"),
            (ARPHRD_RAWIP, "a link/rawip device"),
            (libc::ARPHRD_TUNNEL, "a link/ipip device"),
            (libc::ARPHRD_TUNNEL6, "a link/tunnel6 device"),
            (libc::ARPHRD_SIT, "a link/sit device"),
            (libc::ARPHRD_IPGRE, "a link/gre device"),
            (0xfff0, "a link/65520 device"),
        ] {
            let refusal = ethernet_or_why_not("tun0", kind).unwrap_err();
            assert!(refusal.starts_with(&format!("tun0 is {says}")), "{refusal}");
            assert!(refusal.contains("supports Ethernet devices"), "{refusal}");
            assert_eq!(refusal.lines().count(), 1);
        }
        let tun = ethernet_or_why_not("tun0", libc::ARPHRD_NONE).unwrap_err();
        assert!(tun.contains("ARPHRD_NONE: tun, WireGuard"), "{tun}");
    }

    /// Loopback is in every network namespace, so these hold anywhere.
    #[test]
    fn loopback_is_found_by_asking_the_kernel() {
        assert!(names().contains(&"lo".to_string()), "{:?}", names());
        assert_eq!(hardware_type("lo").unwrap(), libc::ARPHRD_LOOPBACK);
        assert!(require_ethernet("lo").is_ok());
        assert_eq!(name_of(index_of("lo").unwrap()), "lo");
        assert!(interface_flags("no-such-iface").is_err());
        assert!(hardware_type("sixteen-chars-xx").is_err());
    }

    /// Several -i: each named once, all there, not too many; the error
    /// names the one at fault.
    #[test]
    fn interfaces_are_resolved_in_order_each_once() {
        let lo = index_of("lo").unwrap();
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            resolve_all(&list(&["lo"]), 16).unwrap(),
            [Interface {
                name: "lo".into(),
                index: lo
            }]
        );
        let twice = resolve_all(&list(&["lo", "lo"]), 16)
            .unwrap_err()
            .to_string();
        assert!(twice.contains("'lo' is given twice"), "{twice}");
        let missing = resolve_all(&list(&["lo", "no-such-iface"]), 16)
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("no interface named 'no-such-iface'"),
            "{missing}"
        );
        let many = resolve_all(&list(&["lo"; 17]), 16).unwrap_err().to_string();
        assert!(many.contains("at most 16"), "{many}");
    }
}
