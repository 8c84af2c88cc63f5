//! Runs crafted frames through the loaded XDP program with BPF_PROG_TEST_RUN
//! and checks the verdict and the one notice each frame must produce; also
//! times the program per packet.

use std::fmt;
use std::mem::{size_of, MaybeUninit};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use libbpf_rs::{libbpf_sys, MapCore, ProgramInput, ProgramMut, RingBufferBuilder};

use crate::abi::{Config, Notice, ETH_HLEN, NOTICES_ALL, XDP_PASS};
use crate::notices::split_record;
use crate::selftest::packets::{self, Case};
use crate::selftest::Report;
use crate::skel::XdpHelloSkel;
use crate::stats::Counters;
use crate::{iface, loader};

/// Ring buffer size for case runs: each run leaves a single notice in it.
pub const RING_BYTES: u32 = 64 * 1024;

/// The program as the cases expect it: no rules, so the default policy
/// passes every packet, and a notice for each.
pub const CONFIG: Config = Config {
    default_verdict: XDP_PASS as u32,
    notice_mode: NOTICES_ALL,
    dry_run: 0,
    ..Config::DEFAULT
};

// Since Linux commit 6b3d638ca897 (6.14; stable 6.1.130, 6.6.80, 6.12.17)
// the kernel refuses XDP test input shorter than an Ethernet header
// (abi::ETH_HLEN) with EINVAL.
/// Metadata in front of a frame shorter than that, on older kernels: at
/// least ETH_HLEN, at most 32 bytes, a multiple of 4.
const SHORT_FRAME_META: usize = 16;

/// Loads the program once and runs every case as a check of its own.
pub fn run_all(report: &mut Report) {
    let mut object = MaybeUninit::uninit();
    let skel = match loader::load(&mut object, RING_BYTES, CONFIG) {
        Ok(skel) => skel,
        Err(err) => return report.check("test_run: load the program", Err(err)),
    };
    report.check(
        "test_run capture: a frame's first bytes come with its notice",
        check_capture(),
    );
    for case in packets::cases() {
        let name = format!("test_run {}", case.name);
        match run_case(&skel, &case) {
            // This kernel cannot run the frame at all (see Untestable).
            Err(err) if err.is::<Untestable>() => report.skip(&name, err),
            outcome => report.check(&name, outcome),
        }
    }
}

/// Runs `case.frame` through the program once, then checks the XDP return
/// value and that exactly the expected notice came out of the ring buffer.
pub fn run_case(skel: &XdpHelloSkel<'_>, case: &Case) -> Result<()> {
    // Anything already in the ring is not this frame's notice.
    drain(&skel.maps.events, drop)?;
    let before = monotonic_ns();
    let output = test_run(skel, &case.frame, 1)?;
    let after = monotonic_ns();

    let want = case.expect.verdict as u32;
    ensure!(
        output.return_value == want,
        "XDP return value: got {}, want {want}",
        output.return_value
    );
    let mut notices = Vec::new();
    drain(&skel.maps.events, |notice| notices.push(notice))?;
    let [notice] = notices.as_slice() else {
        bail!("want exactly one notice, got {}", notices.len());
    };
    check_notice(notice, &case.expect, before..=after)
}

/// Per-packet cost of the program, as BPF_PROG_TEST_RUN measures it.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The kernel's average over the repeats, in whole nanoseconds.
    pub ns_per_packet: u64,
    pub repeat: u32,
    /// Notices handed to the ring buffer during the run.
    pub notices_sent: u64,
    /// Notices dropped because the ring buffer was full.
    pub notices_lost: u64,
}

/// Times the program on `frame` (the benchmark's is [`packets::udp64`]),
/// `repeat` times in one BPF_PROG_TEST_RUN: one call costs milliseconds to
/// set up, so a large `repeat` is what makes the figure per packet. Whether
/// the notices went out or the ring was full depends on the ring's size, so
/// the counters' change comes with the time. Leaves the ring empty.
pub fn ns_per_packet(skel: &XdpHelloSkel<'_>, frame: &[u8], repeat: u32) -> Result<Timing> {
    drain(&skel.maps.events, drop)?;
    let before = Counters::read(&skel.maps.counters)?;
    let output = test_run(skel, frame, repeat)?;
    let after = Counters::read(&skel.maps.counters)?;
    drain(&skel.maps.events, drop)?;
    Ok(Timing {
        ns_per_packet: output.duration.as_nanos() as u64,
        repeat,
        notices_sent: after.notices_sent - before.notices_sent,
        notices_lost: after.notices_lost - before.notices_lost,
    })
}

/// What a BPF_PROG_TEST_RUN reports.
struct Ran {
    return_value: u32,
    /// Average over the repeats.
    duration: Duration,
}

/// A frame this kernel's BPF_PROG_TEST_RUN cannot take: no fault of the
/// program, so `run_all` reports it as skipped.
#[derive(Debug)]
pub struct Untestable(String);

impl fmt::Display for Untestable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untestable {}

/// One BPF_PROG_TEST_RUN of the program on `frame`, `repeat` times.
///
/// Current kernels refuse input shorter than an Ethernet header (see
/// ETH_HLEN), so a shorter frame goes in padded, with a context that hides
/// the padding from the program. Since Linux commit fe9544ed1a2e (6.18,
/// backported to stable kernels) `data_end` can end the linear part early,
/// which puts the padding in a fragment the program cannot read; before it,
/// the padding went in as metadata in front of the frame instead, which that
/// commit forbids. Before 5.15 an XDP test run takes no context at all, but
/// 5.10 takes a short frame as it is: that is tried first.
fn test_run(skel: &XdpHelloSkel<'_>, frame: &[u8], repeat: u32) -> Result<Ran> {
    let prog = &skel.progs.xdp_hello;
    let context = || format!("BPF_PROG_TEST_RUN of a {}-byte frame", frame.len());
    if frame.len() >= ETH_HLEN {
        return run_prog(prog, frame, None, repeat).with_context(context);
    }
    let refused = |ran: &libbpf_rs::Result<Ran>| matches!(ran, Err(err) if err.kind() == libbpf_rs::ErrorKind::InvalidInput);

    let ran = run_prog(prog, frame, None, repeat);
    if !refused(&ran) {
        return ran.with_context(context);
    }

    let padded = [frame, &[0; ETH_HLEN][frame.len()..]].concat();
    let tail_in_fragment = libbpf_sys::xdp_md {
        data: 0,
        data_end: frame.len() as u32,
        ..Default::default()
    };
    let ran = run_prog(prog, &padded, Some(tail_in_fragment), repeat);
    if !refused(&ran) {
        return ran.with_context(context);
    }
    let with_meta = [&[0; SHORT_FRAME_META][..], frame].concat();
    let meta_in_front = libbpf_sys::xdp_md {
        data: SHORT_FRAME_META as u32,
        data_end: with_meta.len() as u32,
        ..Default::default()
    };
    let ran = run_prog(prog, &with_meta, Some(meta_in_front), repeat);
    if refused(&ran) {
        return Err(Untestable(format!(
            "kernel {} runs no frame shorter than {ETH_HLEN} bytes through BPF_PROG_TEST_RUN",
            crate::kernel::release()
        ))
        .into());
    }
    ran.with_context(context)
}

fn run_prog(
    prog: &ProgramMut<'_>,
    data: &[u8],
    context: Option<libbpf_sys::xdp_md>,
    repeat: u32,
) -> libbpf_rs::Result<Ran> {
    let mut context = context.map(|md| xdp_md_bytes(&md));
    let input = ProgramInput {
        data_in: Some(data),
        context_in: context.as_deref_mut(),
        repeat,
        ..Default::default()
    };
    let output = prog.test_run(input)?;
    Ok(Ran {
        return_value: output.return_value,
        duration: output.duration,
    })
}

fn xdp_md_bytes(md: &libbpf_sys::xdp_md) -> Vec<u8> {
    // SAFETY: xdp_md is six u32s: no padding, every byte initialised.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (md as *const libbpf_sys::xdp_md).cast::<u8>(),
            size_of::<libbpf_sys::xdp_md>(),
        )
    };
    bytes.to_vec()
}

/// Empties the ring buffer `events`, handing each notice to `each`, oldest
/// first. The one reader for tests and the selftest alike.
pub fn drain(events: &dyn MapCore, mut each: impl FnMut(Notice)) -> Result<()> {
    let mut odd_size = None;
    drain_records(events, |bytes| {
        let mut notice = Notice::ZERO;
        if bytes.len() == size_of::<Notice>() && plain::copy_from_bytes(&mut notice, bytes).is_ok()
        {
            each(notice);
        } else {
            odd_size = Some(bytes.len());
        }
    })?;
    match odd_size {
        Some(len) => bail!(
            "a {len}-byte record in the ring buffer; a notice is {} bytes",
            size_of::<Notice>()
        ),
        None => Ok(()),
    }
}

/// Compares every field of `got` with `want`; the run-dependent ones with
/// what the run gives: the time of the run, and the context the kernel
/// makes up for a test run (the loopback device of this network namespace,
/// queue 0).
fn check_notice(got: &Notice, want: &Notice, run_time: RangeInclusive<u64>) -> Result<()> {
    let mut diffs = Vec::new();
    if !run_time.contains(&got.timestamp_ns) {
        diffs.push(format!(
            "timestamp_ns: got {}, want between {} and {} (CLOCK_MONOTONIC around the run)",
            got.timestamp_ns,
            run_time.start(),
            run_time.end()
        ));
    }
    let loopback = iface::index_of("lo")?;
    let want = Notice {
        ifindex: loopback,
        rx_queue: 0,
        timestamp_ns: got.timestamp_ns,
        ..*want
    };
    macro_rules! compare {
        ($($field:ident: $format:literal),+ $(,)?) => {$(
            if got.$field != want.$field {
                diffs.push(format!(
                    concat!("{}: got ", $format, ", want ", $format),
                    stringify!($field),
                    got.$field,
                    want.$field
                ));
            }
        )+};
    }
    compare!(
        ifindex: "{}",
        rx_queue: "{}",
        packet_len: "{}",
        rule_id: "{}",
        ether_type: "{:#06x}",
        vlan_outer: "{}",
        vlan_inner: "{}",
        ip_version: "{}",
        l4_proto: "{}",
        src_addr: "{:02x?}",
        dst_addr: "{:02x?}",
        src_port: "{}",
        dst_port: "{}",
        icmp_type: "{}",
        icmp_code: "{}",
        tcp_flags: "{:#010b}",
        verdict: "{}",
        depth: "{}",
        flags: "{:#07b}",
        vlan_count: "{}",
        arp_op: "{}",
        eth_src: "{:02x?}",
        eth_dst: "{:02x?}",
    );
    if diffs.is_empty() {
        Ok(())
    } else {
        bail!("{}", diffs.join("; "))
    }
}

/// CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Empties the ring buffer `events`, handing each record as it is to `each`.
pub fn drain_records(events: &dyn MapCore, mut each: impl FnMut(&[u8])) -> Result<()> {
    let mut builder = RingBufferBuilder::new();
    builder
        .add(events, |bytes: &[u8]| {
            each(bytes);
            0
        })
        .context("setting up the ring buffer")?;
    let ring = builder.build().context("setting up the ring buffer")?;
    ring.consume().context("reading the ring buffer")
}

/// Capture on this kernel: with a snap length, a frame's notice comes with
/// its first bytes, all of a shorter frame and a longer one cut there.
pub fn check_capture() -> Result<()> {
    const SNAPLEN: u32 = 100;
    let mut object = MaybeUninit::uninit();
    let config = Config {
        snaplen: SNAPLEN,
        ..CONFIG
    };
    let skel = loader::load(&mut object, RING_BYTES, config)?;
    let short = packets::udp64();
    let long: Vec<u8> = (0..300)
        .map(|i| short.get(i).copied().unwrap_or(i as u8))
        .collect();
    for frame in [short, long] {
        drain(&skel.maps.events, drop)?;
        test_run(&skel, &frame, 1)?;
        let mut records = Vec::new();
        drain_records(&skel.maps.events, |record| records.push(record.to_vec()))?;
        let [record] = records.as_slice() else {
            bail!("want exactly one record, got {}", records.len());
        };
        let (notice, bytes) = split_record(record).context("a record shorter than a notice")?;
        let want = &frame[..frame.len().min(SNAPLEN as usize)];
        ensure!(
            notice.packet_len as usize == frame.len() && bytes == want,
            "a {}-byte frame: notice of {} bytes with {} captured (a {}-byte record), want {} bytes of it",
            frame.len(),
            notice.packet_len,
            bytes.len(),
            record.len(),
            want.len()
        );
    }
    Ok(())
}
