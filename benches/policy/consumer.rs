//! The notice consumer: notices/s xdp-hello delivers to /dev/null (count
//! only, text, JSON) while BPF_PROG_TEST_RUN on its attached program fills
//! the ring faster than anyone reads it; the share lost at 1 M notices/s
//! offered in paced chunks with the default ring. (The veth part has the
//! packets/s with notices on next to `--notices none`.)
//! `XDP_HELLO_BEFORE=PATH` adds the same rows for another build (main's),
//! round by round in between.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{Side, TestNet};

use crate::frames::probes;
use crate::ours;
use crate::prog_run::Prog;
use crate::report::{Report, Samples};
use crate::support::observer::{Observer, Summary};
use crate::support::{pipe, xdp_on};

const ROUNDS: usize = 3;
/// How long the producer floods the ring for one delivered-rate figure.
const FLOOD_TIME: Duration = Duration::from_secs(2);
/// Runs of the program in one BPF_PROG_TEST_RUN call of the flood.
const FLOOD_CHUNK: u32 = 100_000;
/// The offered rate of the loss figure: CHUNK runs every PERIOD, 1 M/s.
const PACED_CHUNK: u32 = 10_000;
const PACED_PERIOD: Duration = Duration::from_millis(10);
const PACED_TIME: Duration = Duration::from_secs(3);
/// Native on veth: what `-m auto` picks there.
const MODE: Mode = Mode::Native;

/// What a consumer writes, and the arguments that ask for it.
#[derive(Clone, Copy)]
enum Output {
    /// Nothing formatted: `--default deny` keeps reading the ring after
    /// stdout (a pipe no one reads) fails, and formats nothing from then on.
    CountOnly,
    Text,
    Json,
    /// `-w /dev/null`: pcapng blocks with the whole 64-byte frame.
    Pcapng,
}

impl Output {
    fn name(self) -> &'static str {
        match self {
            Output::CountOnly => "count only",
            Output::Text => "text",
            Output::Json => "JSON",
            Output::Pcapng => "pcapng",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Output::CountOnly => &["--notices", "all", "--default", "deny"],
            Output::Text => &["--notices", "all"],
            Output::Json => &["--notices", "all", "--json"],
            Output::Pcapng => &["--notices", "all", "-w", "/dev/null"],
        }
    }

    /// Notices the consumer took out of the ring: lines written whole, or
    /// with nothing written, every packet's notice not lost.
    fn delivered(self, summary: &Summary) -> u64 {
        match self {
            Output::CountOnly => {
                (summary.passed + summary.dropped + summary.aborted).saturating_sub(summary.lost)
            }
            _ => summary.shown,
        }
    }

    fn stdout(self) -> Result<Stdio> {
        Ok(match self {
            Output::CountOnly => Stdio::from(pipe()?.1), // the reading end is gone
            _ => Stdio::from(File::create("/dev/null").context("opening /dev/null")?),
        })
    }
}

pub fn run(report: &mut Report) -> Result<()> {
    let net = TestNet::new()?;
    let frame = probes().into_iter().next().context("no probe frame")?.frame;
    let mut builds = vec![("", ours::binary())];
    if let Some(before) = std::env::var_os("XDP_HELLO_BEFORE") {
        builds.push(("before: ", PathBuf::from(before)));
    }
    let outputs = [
        Output::CountOnly,
        Output::Text,
        Output::Json,
        Output::Pcapng,
    ];
    // [build][output] samples, and the same for the loss at 1 M/s.
    let mut delivered = vec![vec![Vec::new(); outputs.len()]; builds.len()];
    let mut lost = vec![vec![Vec::new(); 2]; builds.len()];
    for _ in 0..ROUNDS {
        for (b, (_, binary)) in builds.iter().enumerate() {
            for (o, &output) in outputs.iter().enumerate() {
                let (summary, took) = consume(&net, binary, output, |prog| flood(prog, &frame))?;
                delivered[b][o].push(output.delivered(&summary) as f64 / took.as_secs_f64());
            }
            for (o, output) in [Output::Text, Output::Json].into_iter().enumerate() {
                let (summary, _) = consume(&net, binary, output, |prog| paced(prog, &frame))?;
                let offered = summary.shown + summary.lost;
                lost[b][o].push(summary.lost as f64 / offered.max(1) as f64 * 100.0);
            }
        }
    }
    let flood_on = format!("udp4-64, test_run × {FLOOD_CHUNK} for {FLOOD_TIME:?}");
    let paced_on = format!("udp4-64, 1 M/s offered ({PACED_CHUNK} every {PACED_PERIOD:?})");
    for (b, (label, _)) in builds.iter().enumerate() {
        for (o, output) in outputs.iter().enumerate() {
            report.row(
                &format!("{label}consumer {} to /dev/null", output.name()),
                &flood_on,
                &Samples(delivered[b][o].clone()),
                "notices/s",
                "ring kept full",
            );
        }
        for (o, output) in [Output::Text, Output::Json].iter().enumerate() {
            report.row(
                &format!("{label}consumer {} lost at 1 M/s", output.name()),
                &paced_on,
                &Samples(lost[b][o].clone()),
                "% lost",
                "default 4 MiB ring",
            );
        }
    }
    for (b, (label, _)) in builds.iter().enumerate() {
        for (o, output) in outputs.iter().enumerate().skip(1) {
            let median = Samples(delivered[b][o].clone()).median();
            report.ratio(
                &format!("{label}consumer {} M notices/s", output.name()),
                median / 1e6,
            );
        }
    }
    Ok(())
}

/// Starts `binary` with `output`'s arguments, runs `produce` on its
/// attached program, stops it; returns its summary and the time from the
/// start of `produce` to its exit (the last notices read and written).
fn consume(
    net: &TestNet,
    binary: &Path,
    output: Output,
    produce: impl FnOnce(&Prog) -> Result<()>,
) -> Result<(Summary, Duration)> {
    let (ns, iface) = (net.ns(Side::A), net.veth(Side::A));
    let mut observer = Observer::start(
        binary,
        ns,
        iface,
        MODE,
        output.args(),
        output.stdout()?,
        Stdio::piped(),
    )?;
    observer.wait_attached(ns, iface)?;
    let prog = attached(net)?;
    let started = Instant::now();
    produce(&prog)?;
    let finished = observer.stop(libc::SIGINT)?;
    let took = started.elapsed();
    let Some(summary) = finished.summary() else {
        bail!(
            "{} {} wrote no summary: {}",
            binary.display(),
            output.name(),
            finished.stderr.join(" | ")
        );
    };
    Ok((summary, took))
}

/// The one XDP program on side A.
fn attached(net: &TestNet) -> Result<Prog> {
    let ids = xdp_on(net, Side::A)?;
    let [id] = ids[..] else {
        bail!("expected one XDP program on side A, found {ids:?}");
    };
    Prog::by_id(id)
}

/// As many notices as the program can make, for FLOOD_TIME.
fn flood(prog: &Prog, frame: &[u8]) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < FLOOD_TIME {
        prog.time(frame, FLOOD_CHUNK)?;
    }
    Ok(())
}

/// PACED_CHUNK notices every PACED_PERIOD, for PACED_TIME.
fn paced(prog: &Prog, frame: &[u8]) -> Result<()> {
    let started = Instant::now();
    let mut next = started;
    while started.elapsed() < PACED_TIME {
        prog.time(frame, PACED_CHUNK)?;
        next += PACED_PERIOD;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    Ok(())
}
