//! One real attach, in this process: the program loaded and attached in one
//! mode to a veth pair in namespaces of the selftest's own; ping and UDP
//! from the other end must come out of the ring as the right notices, and
//! once the link is closed nothing may stay attached. And the swap a run
//! that starts with no rules makes when its first rules come.

use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::abi::{Config, Notice, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_UDP, XDP_PASS};
use crate::attach::{self, Mode};
use crate::firewall::{Firewall, RuleMaps, RuleSet};
use crate::loader;
use crate::selftest::test_run::{drain, CONFIG};
use crate::selftest::veth::{Side, TestNet, XdpProg, A_V4, A_V6, B_V4, B_V6};
use crate::stats::Counters;

/// How long a notice may take to show after its packet was sent.
pub const NOTICE_WAIT: Duration = Duration::from_secs(3);
/// Packets of each kind that `send_traffic` sends.
pub const EACH: usize = 3;
/// Room for every notice of the traffic, and the neighbour discovery with it.
const RING_BYTES: u32 = 256 * 1024;

/// What the notice of one kind of packet sent from B to A should hold.
pub struct Expected {
    pub what: &'static str,
    pub l4_proto: u8,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub len: u32,
    /// The ICMP type, for pings (echo request).
    pub icmp_type: u8,
}

impl Expected {
    /// Whether `notice` reports this packet on `ifindex`, passed.
    pub fn matches(&self, ifindex: u32, notice: &Notice) -> bool {
        let port = |addr: &SocketAddr| {
            if self.l4_proto == IPPROTO_UDP {
                addr.port()
            } else {
                0
            }
        };
        notice.ifindex == ifindex
            && notice.verdict == XDP_PASS
            && notice.packet_len == self.len
            && notice.l4_proto == self.l4_proto
            && notice.src_addr == octets(self.src.ip())
            && notice.dst_addr == octets(self.dst.ip())
            && notice.src_port == port(&self.src)
            && notice.dst_port == port(&self.dst)
            && notice.icmp_type == self.icmp_type
    }
}

/// An address as a notice holds it: IPv4 in the first four bytes.
fn octets(ip: IpAddr) -> [u8; 16] {
    let mut out = [0; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

/// Pings (v4, v6) and UDP (v4, v6, known ports) from B, [`EACH`] of each,
/// and the notices they must produce.
pub fn send_traffic(net: &TestNet) -> Result<Vec<Expected>> {
    const PAYLOAD: &[u8] = b"hello";
    let udp_v4 = SocketAddr::new(A_V4.into(), 50001);
    let udp_v6 = SocketAddr::new(A_V6.into(), 50002);
    net.ping(A_V4.into(), EACH as u32)?;
    net.ping(A_V6.into(), EACH as u32)?;
    net.send_udp(40001, udp_v4, &[PAYLOAD; EACH])?;
    net.send_udp(40002, udp_v6, &[PAYLOAD; EACH])?;

    // Frame lengths: Ethernet 14 + IPv4 20 / IPv6 40 + ICMP 8 + ping's 56,
    // or + UDP 8 + the payload.
    let udp_len = |ip_header: u32| 14 + ip_header + 8 + PAYLOAD.len() as u32;
    let host = |ip: IpAddr| SocketAddr::new(ip, 0);
    Ok(vec![
        Expected {
            what: "ping",
            l4_proto: IPPROTO_ICMP,
            src: host(B_V4.into()),
            dst: host(A_V4.into()),
            len: 98,
            icmp_type: 8,
        },
        Expected {
            what: "ping6",
            l4_proto: IPPROTO_ICMPV6,
            src: host(B_V6.into()),
            dst: host(A_V6.into()),
            len: 118,
            icmp_type: 128,
        },
        Expected {
            what: "UDP",
            l4_proto: IPPROTO_UDP,
            src: SocketAddr::new(B_V4.into(), 40001),
            dst: udp_v4,
            len: udp_len(20),
            icmp_type: 0,
        },
        Expected {
            what: "UDP over IPv6",
            l4_proto: IPPROTO_UDP,
            src: SocketAddr::new(B_V6.into(), 40002),
            dst: udp_v6,
            len: udp_len(40),
            icmp_type: 0,
        },
    ])
}

/// Polls `done` every 20 ms for up to `timeout`.
pub fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Attach in `mode` (native or skb), send traffic, read its notices from
/// the ring, detach, find nothing left attached.
pub fn check(mode: Mode) -> Result<()> {
    ensure!(mode != Mode::Auto, "check a definite mode, not auto");
    let net = TestNet::new()?;
    let iface = net.veth(Side::A);
    let ifindex = net.within(Side::A, || crate::iface::index_of(iface))?;
    // Loaded as a run on this interface with a rate set is (one rate no
    // test traffic reaches): the verifier sees the interface table and the
    // clock of the bucket on this kernel too.
    let mut ifindexes = [0; crate::abi::MAX_IFACES as usize];
    ifindexes[0] = ifindex;
    let config = crate::abi::Config {
        iface_count: 1,
        ifindexes,
        ..CONFIG
    }
    .with_max_rate(1_000_000);
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, config)?;
    let attachment = net.within(Side::A, || attach::attach(&skel, ifindex, iface, mode))?;
    let on_a = net.xdp(Side::A)?;
    let [XdpProg { mode: seen, .. }] = on_a[..] else {
        anyhow::bail!("want one XDP program on {iface}, the kernel shows {on_a:?}");
    };
    ensure!(seen == mode, "attached in {seen} mode, not {mode}");

    let expected = send_traffic(&net)?;
    let mut notices = Vec::new();
    let count = |notices: &[Notice], want: &Expected| {
        notices.iter().filter(|n| want.matches(ifindex, n)).count()
    };
    eventually(NOTICE_WAIT, || {
        drain(&skel.maps.events, |notice| notices.push(notice)).is_ok()
            && expected.iter().all(|want| count(&notices, want) >= EACH)
    });
    drop(attachment);
    drain(&skel.maps.events, |notice| notices.push(notice))
        .context("reading the ring after detaching")?;
    for want in &expected {
        let seen = count(&notices, want);
        ensure!(
            seen == EACH,
            "{} {} → {}: want {EACH} notices, saw {seen} (of {} in all)",
            want.what,
            want.src,
            want.dst,
            notices.len()
        );
    }
    // Every packet counted in the interface's own block, none held back.
    let counted = crate::stats::Counters::read_block(&skel.maps.counters, 0)?;
    ensure!(
        counted.notices_sent == notices.len() as u64
            && counted.packets() == counted.accounted()
            && counted.over_rate == 0,
        "{iface}'s counters do not account for its {} notices: {counted:?}",
        notices.len()
    );
    let left = net.xdp(Side::A)?;
    ensure!(
        left.is_empty(),
        "still attached after the link closed: {left:?}"
    );
    Ok(())
}

/// A run that starts with no rules: the program without its classifier,
/// attached in skb mode, is replaced on its link by the one with it, loaded
/// beside it on the other's maps but the classifier's own; a rule that then
/// goes into those holds.
pub fn classifier_swap() -> Result<()> {
    let net = TestNet::new()?;
    let iface = net.veth(Side::A);
    let ifindex = net.within(Side::A, || crate::iface::index_of(iface))?;
    let config = Config {
        classifier: 0,
        ..CONFIG
    };
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, config)?;
    let attachment = net.within(Side::A, || attach::attach(&skel, ifindex, iface, Mode::Skb))?;
    let with_it = loader::load_classifier_beside(&skel)?;
    attachment
        .replace_program(
            skel.progs.xdp_hello.as_fd(),
            with_it.progs.xdp_hello.as_fd(),
        )
        .context("replacing the program on its bpf_link")?;
    let id = libbpf_rs::Program::id_from_fd(with_it.progs.xdp_hello.as_fd())?;
    let on_a = net.xdp(Side::A)?;
    ensure!(
        matches!(on_a[..], [XdpProg { id: seen, .. }] if seen == id),
        "want program {id} alone on {iface}, the kernel shows {on_a:?}"
    );
    let rules = crate::policy::parse_flags(&["deny udp dport 9".to_string()])?;
    Firewall::new().install(&RuleMaps::of(&with_it.maps), &RuleSet::of(rules)?)?;
    let discard = SocketAddr::from((A_V4, 9));
    let mut dropped = 0;
    eventually(NOTICE_WAIT, || {
        let sent = net.send_udp(40000, discard, &[b"ping"]).is_ok();
        dropped = Counters::read(&skel.maps.counters).map_or(0, |c| c.dropped);
        sent && dropped > 0
    });
    ensure!(
        dropped > 0,
        "'deny udp dport 9' dropped nothing after the swap"
    );
    drop(attachment);
    ensure!(
        net.xdp(Side::A)?.is_empty(),
        "still attached after the link closed"
    );
    Ok(())
}
