//! The built binary attached to a `TestNet` in one mode: ping and UDP from
//! the other end must come out as the right text lines, and after SIGINT
//! nothing may stay attached. What is attached is asked of the kernel.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use xdp_hello::abi::{IPPROTO_ICMP, IPPROTO_ICMPV6};
use xdp_hello::loader::Mode;
use xdp_hello::output::HEADER;
pub use xdp_hello::selftest::attach::{eventually, send_traffic, Expected, EACH, NOTICE_WAIT};
use xdp_hello::selftest::veth::{Side, TestNet, XdpProg};

use super::observer::{Finished, Observe};
use super::{prog_loaded, prog_name_and_type};

/// Whether `line` (`TIME IFACE LEN PROTO VERDICT SRC → DST DETAIL…`)
/// reports the packet `want` on `iface`, passed.
pub fn line_matches(want: &Expected, iface: &str, line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [_time, seen_iface, len, proto, verdict, src, "→", dst, detail @ ..] = &words[..] else {
        return false;
    };
    let (name, endpoint, what): (_, fn(&SocketAddr) -> String, _) = match want.l4_proto {
        IPPROTO_ICMP => ("ICMP", |a| a.ip().to_string(), "echo-request"),
        IPPROTO_ICMPV6 => ("ICMPv6", |a| a.ip().to_string(), "echo-request"),
        _ => ("UDP", |a| a.to_string(), ""),
    };
    *seen_iface == iface
        && len.parse() == Ok(want.len)
        && *proto == name
        && *src == endpoint(&want.src)
        && *dst == endpoint(&want.dst)
        && *verdict == "PASS"
        && detail.join(" ") == what
}

/// The one program on A's veth, in `mode`, by the kernel (bpf_xdp_query),
/// and an XDP program named xdp_hello by its info.
pub fn attached(net: &TestNet, mode: Mode) -> Result<XdpProg> {
    let on_a = net.xdp(Side::A)?;
    let [prog] = on_a[..] else {
        bail!("want one XDP program, found {on_a:?}");
    };
    ensure!(prog.mode == mode, "want {mode} mode, found {prog:?}");
    let (name, kind) = prog_name_and_type(prog.id)
        .with_context(|| format!("program {} is not loaded", prog.id))?;
    ensure!(
        kind == libbpf_rs::libbpf_sys::BPF_PROG_TYPE_XDP && name == "xdp_hello",
        "program {} is not an XDP program named xdp_hello: type {kind}, name {name:?}",
        prog.id
    );
    Ok(prog)
}

/// Nothing on A's veth, and program `gone` unloaded (freed after an RCU
/// grace period, so allow it a moment).
pub fn detached(net: &TestNet, gone: XdpProg) -> Result<()> {
    let on_a = net.xdp(Side::A)?;
    ensure!(on_a.is_empty(), "still attached: {on_a:?}");
    let unloaded = eventually(Duration::from_secs(2), || !prog_loaded(gone.id));
    ensure!(unloaded, "program {} is still loaded", gone.id);
    Ok(())
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
    ensure!(mode != Mode::Auto, "check a definite mode, not auto");
    let net = TestNet::new()?;
    let observer = net.observe(binary, mode, &[])?;
    let prog = attached(&net, mode)?;

    let iface = net.veth(Side::A);
    let expected = send_traffic(&net)?;
    for want in &expected {
        observer.wait_for_lines(EACH, |line| line_matches(want, iface, line), NOTICE_WAIT);
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
            .filter(|line| line_matches(want, iface, line))
            .count();
        ensure!(
            seen == EACH,
            "{} {} → {}: want {EACH} lines, saw {seen}:\n{}",
            want.what,
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
