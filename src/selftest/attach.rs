//! The real thing: xdp-hello attached to a veth pair in namespaces of its
//! own, in one mode; ping and UDP from the other end must come out as the
//! right lines, and after SIGINT nothing may stay attached. Used by
//! `xdp-hello selftest` and by the attach tests.

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::loader::Mode;
use crate::output::HEADER;
use crate::selftest::veth::{
    bpf_programs, Finished, Side, TestNet, XdpMode, XdpProg, A_V4, A_V6, B_V4, B_V6,
};

/// How long a notice may take to show after its packet was sent.
pub const NOTICE_WAIT: Duration = Duration::from_secs(3);
/// Packets of each kind that `send_traffic` sends.
pub const EACH: usize = 3;

/// What a notice line should show for one kind of packet sent from B to A.
pub struct Expected {
    pub proto: &'static str,
    pub src: String,
    pub dst: String,
    pub len: u32,
    pub detail: &'static str,
}

impl Expected {
    /// Whether `line` (`TIME IFACE LEN PROTO VERDICT SRC → DST DETAIL…`)
    /// reports this packet on `iface`, passed.
    pub fn matches(&self, iface: &str, line: &str) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [_time, seen_iface, len, proto, verdict, src, "→", dst, detail @ ..] = &words[..]
        else {
            return false;
        };
        *seen_iface == iface
            && len.parse() == Ok(self.len)
            && *proto == self.proto
            && *src == self.src
            && *dst == self.dst
            && *verdict == "PASS"
            && detail.join(" ") == self.detail
    }
}

/// Pings (v4, v6) and UDP (v4, v6, known ports) from B, [`EACH`] of each,
/// and the lines they must produce.
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
    Ok(vec![
        Expected {
            proto: "ICMP",
            src: B_V4.to_string(),
            dst: A_V4.to_string(),
            len: 98,
            detail: "echo-request",
        },
        Expected {
            proto: "ICMPv6",
            src: B_V6.to_string(),
            dst: A_V6.to_string(),
            len: 118,
            detail: "echo-request",
        },
        Expected {
            proto: "UDP",
            src: format!("{B_V4}:40001"),
            dst: udp_v4.to_string(),
            len: udp_len(20),
            detail: "",
        },
        Expected {
            proto: "UDP",
            src: format!("[{B_V6}]:40002"),
            dst: udp_v6.to_string(),
            len: udp_len(40),
            detail: "",
        },
    ])
}

/// The one program on A's veth, in `mode` by both `ip link` and `bpftool
/// net`, and an xdp program named xdp_hello in `bpftool prog list`.
pub fn attached(net: &TestNet, mode: XdpMode) -> Result<XdpProg> {
    let by_ip = net.xdp_by_ip_link(Side::A)?;
    let [prog] = by_ip[..] else {
        bail!("ip link: want one XDP program, found {by_ip:?}");
    };
    ensure!(
        prog.mode == mode,
        "ip link: want {mode:?} mode, found {prog:?}"
    );
    let by_bpftool = net.xdp_by_bpftool(Side::A)?;
    ensure!(
        by_bpftool == [prog],
        "bpftool net shows {by_bpftool:?}, ip link {prog:?}"
    );
    let listed = bpf_programs()?
        .iter()
        .any(|p| p.id == prog.id && p.kind == "xdp" && p.name == "xdp_hello");
    ensure!(
        listed,
        "program {} is not an xdp program named xdp_hello in bpftool prog list",
        prog.id
    );
    Ok(prog)
}

/// Nothing on A's veth by `ip link` and `bpftool net`, and program `gone`
/// unloaded (freed after an RCU grace period, so allow it a moment).
pub fn detached(net: &TestNet, gone: XdpProg) -> Result<()> {
    let by_ip = net.xdp_by_ip_link(Side::A)?;
    ensure!(by_ip.is_empty(), "still attached by ip link: {by_ip:?}");
    let by_bpftool = net.xdp_by_bpftool(Side::A)?;
    ensure!(
        by_bpftool.is_empty(),
        "still attached by bpftool net: {by_bpftool:?}"
    );
    let unloaded = eventually(Duration::from_secs(2), || {
        bpf_programs().is_ok_and(|programs| programs.iter().all(|p| p.id != gone.id))
    });
    ensure!(unloaded, "program {} is still loaded", gone.id);
    Ok(())
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

/// The summary agrees with stdout, shows at least `sent` packets, and
/// nothing was dropped, aborted or lost.
pub fn summary_agrees(done: &Finished, sent: u64) -> Result<()> {
    let summary = done
        .summary()
        .with_context(|| format!("no summary on stderr: {:?}", done.stderr))?;
    let lines = done.stdout.len().saturating_sub(1) as u64; // the header
    ensure!(
        summary.shown == lines,
        "summary says {} shown, stdout has {lines} lines",
        summary.shown
    );
    ensure!(
        summary.shown >= sent,
        "{summary:?}: fewer than the {sent} sent"
    );
    // Every packet counted was shown: the ring is read to the end after detaching.
    ensure!(
        summary.passed == summary.shown,
        "{summary:?}: passed != shown"
    );
    ensure!(
        (summary.dropped, summary.aborted, summary.lost) == (0, 0, 0),
        "{summary:?}"
    );
    Ok(())
}

/// Attach in `mode`, send traffic, see it, stop with SIGINT, find nothing
/// left behind.
pub fn check(binary: &Path, mode: Mode) -> Result<()> {
    let net = TestNet::new()?;
    let xdp_mode = XdpMode::of(mode).context("check a definite mode, not auto")?;
    let observer = net.observe(binary, mode, &[])?;
    let prog = attached(&net, xdp_mode)?;

    let iface = net.veth(Side::A);
    let expected = send_traffic(&net)?;
    for want in &expected {
        observer.wait_for_lines(EACH, |line| want.matches(iface, line), NOTICE_WAIT);
    }
    let done = observer.stop(libc::SIGINT)?;

    ensure!(
        done.stdout.first().map(String::as_str) == Some(HEADER),
        "the first line is not the column header: {:?}",
        done.stdout.first()
    );
    for want in &expected {
        let seen = done
            .stdout
            .iter()
            .filter(|line| want.matches(iface, line))
            .count();
        ensure!(
            seen == EACH,
            "{} {} → {}: want {EACH} lines, saw {seen}:\n{}",
            want.proto,
            want.src,
            want.dst,
            done.stdout.join("\n")
        );
    }
    ensure!(
        done.status.code() == Some(0),
        "exit {:?}: {:?}",
        done.status,
        done.stderr
    );
    summary_agrees(&done, (EACH * expected.len()) as u64)?;
    detached(&net, prog)
}
