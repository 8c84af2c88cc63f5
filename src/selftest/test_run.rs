//! Runs crafted frames through the loaded XDP program with BPF_PROG_TEST_RUN
//! and checks the verdict and the one notice each frame must produce; also
//! times the program per packet.

use std::mem::{size_of, MaybeUninit};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use libbpf_rs::{libbpf_sys, ProgramInput, RingBufferBuilder};

use crate::abi::Notice;
use crate::selftest::packets::{self, Case};
use crate::selftest::Report;
use crate::skel::XdpHelloSkel;
use crate::stats::Counters;
use crate::{iface, loader};

/// Ring buffer size for case runs: each run leaves a single notice in it.
pub const RING_BYTES: u32 = 64 * 1024;

/// The kernel refuses test input shorter than an Ethernet header (ETH_HLEN).
const ETH_HLEN: usize = 14;
/// Metadata in front of a frame shorter than that: the kernel counts it as
/// input but the program's `data` starts after it. At most 32 bytes, a
/// multiple of 4 (`xdp_metalen_invalid`).
const SHORT_FRAME_META: usize = 16;

/// Loads the program once and runs every case as a check of its own.
pub fn run_all(report: &mut Report) {
    let mut object = MaybeUninit::uninit();
    let skel = match loader::load(&mut object, RING_BYTES) {
        Ok(skel) => skel,
        Err(err) => return report.check("test_run: load the program", Err(err)),
    };
    for case in packets::cases() {
        report.check(&format!("test_run {}", case.name), run_case(&skel, &case));
    }
}

/// Runs `case.frame` through the program once, then checks the XDP return
/// value and that exactly the expected notice came out of the ring buffer.
pub fn run_case(skel: &XdpHelloSkel<'_>, case: &Case) -> Result<()> {
    // Anything already in the ring is not this frame's notice.
    drain(skel)?;
    let before = monotonic_ns();
    let output = test_run(skel, &case.frame, 1)?;
    let after = monotonic_ns();

    let want = case.expect.verdict as u32;
    ensure!(
        output.return_value == want,
        "XDP return value: got {}, want {want}",
        output.return_value
    );
    let notices = drain(skel)?;
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

/// Times the program on a 64-byte IPv4/UDP frame, `repeat` times in one
/// BPF_PROG_TEST_RUN (one call costs milliseconds to set up, so a large
/// `repeat` is what makes the figure per packet). Whether the notices went
/// out or the ring was full depends on the ring's size, so the counters'
/// change is returned with the time; the ring is drained afterwards.
pub fn ns_per_packet(skel: &XdpHelloSkel<'_>, repeat: u32) -> Result<Timing> {
    drain(skel)?;
    let before = Counters::read(&skel.maps.counters)?;
    let output = test_run(skel, &packets::udp64(), repeat)?;
    let after = Counters::read(&skel.maps.counters)?;
    drain(skel)?;
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

/// One BPF_PROG_TEST_RUN of the program on `frame`, `repeat` times.
fn test_run(skel: &XdpHelloSkel<'_>, frame: &[u8], repeat: u32) -> Result<Ran> {
    let short;
    let mut context;
    let mut input = ProgramInput::default();
    input.repeat = repeat;
    if frame.len() >= ETH_HLEN {
        input.data_in = Some(frame);
    } else {
        // Pad the input with metadata, and tell the kernel through the
        // context where the frame itself begins.
        short = [&[0; SHORT_FRAME_META][..], frame].concat();
        context = xdp_md_bytes(&libbpf_sys::xdp_md {
            data: SHORT_FRAME_META as u32,
            data_end: short.len() as u32,
            ..Default::default()
        });
        input.data_in = Some(&short);
        input.context_in = Some(&mut context);
    }
    let output = skel
        .progs
        .xdp_hello
        .test_run(input)
        .with_context(|| format!("BPF_PROG_TEST_RUN of a {}-byte frame", frame.len()))?;
    Ok(Ran {
        return_value: output.return_value,
        duration: output.duration,
    })
}

fn xdp_md_bytes(md: &libbpf_sys::xdp_md) -> Vec<u8> {
    // SAFETY: xdp_md is six u32s: no padding, every byte initialised.
    unsafe {
        std::slice::from_raw_parts(
            (md as *const libbpf_sys::xdp_md).cast::<u8>(),
            size_of::<libbpf_sys::xdp_md>(),
        )
    }
    .to_vec()
}

/// Everything in the ring buffer, oldest first.
fn drain(skel: &XdpHelloSkel<'_>) -> Result<Vec<Notice>> {
    let mut notices = Vec::new();
    let mut odd_size = None;
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, |bytes: &[u8]| {
            let mut notice = Notice::ZERO;
            if bytes.len() == size_of::<Notice>()
                && plain::copy_from_bytes(&mut notice, bytes).is_ok()
            {
                notices.push(notice);
            } else {
                odd_size = Some(bytes.len());
            }
            0
        })
        .context("setting up the ring buffer")?;
    let ring = builder.build().context("setting up the ring buffer")?;
    ring.consume().context("reading the ring buffer")?;
    drop(ring);
    if let Some(len) = odd_size {
        bail!(
            "a {len}-byte record in the ring buffer; a notice is {} bytes",
            size_of::<Notice>()
        );
    }
    Ok(notices)
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
        ($($field:ident: $show:expr),+ $(,)?) => {$(
            if got.$field != want.$field {
                let show = $show;
                diffs.push(format!(
                    "{}: got {}, want {}",
                    stringify!($field),
                    show(&got.$field),
                    show(&want.$field)
                ));
            }
        )+};
    }
    let dec = |v: &dyn std::fmt::Display| v.to_string();
    compare!(
        ifindex: |v: &u32| dec(v),
        rx_queue: |v: &u32| dec(v),
        packet_len: |v: &u32| dec(v),
        rule_id: |v: &u32| dec(v),
        ether_type: |v: &u16| format!("{v:#06x}"),
        vlan_outer: |v: &u16| dec(v),
        vlan_inner: |v: &u16| dec(v),
        ip_version: |v: &u8| dec(v),
        l4_proto: |v: &u8| dec(v),
        src_addr: hex,
        dst_addr: hex,
        src_port: |v: &u16| dec(v),
        dst_port: |v: &u16| dec(v),
        icmp_type: |v: &u8| dec(v),
        icmp_code: |v: &u8| dec(v),
        tcp_flags: |v: &u8| format!("{v:#010b}"),
        verdict: |v: &u8| dec(v),
        depth: |v: &u8| dec(v),
        flags: |v: &u8| format!("{v:#06b}"),
        _reserved: hex,
    );
    if diffs.is_empty() {
        Ok(())
    } else {
        bail!("{}", diffs.join("; "))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
