//! Start-up and footprint: xdp-hello's exec → "attached" with notices off
//! and on, with 1 rule and with 10,000, its peak RSS after a second of traffic,
//! the binary's size; beside `xdp-filter load`'s start-up and peak RSS.
//! Each start is timed less what its wrapper (`ip netns exec`, the private
//! mount namespace) costs alone, measured in the same rounds.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{Side, TestNet};

use crate::ours::{self, peak_rss_at_exit, Ours};
use crate::report::{self, Report, Samples};
use crate::rulegen::{self, Rule, Shapes};
use crate::support::Sender;
use crate::{xdp_filter, SEED};

const ROUNDS: usize = 5;
const MANY: usize = 10_000;
/// Traffic each xdp-hello gets before it is stopped, so its peak RSS is that
/// of a run that has handled (and with notices on, shown) packets.
const TRAFFIC: Duration = Duration::from_secs(1);
const MODE: Mode = Mode::Skb;
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One way of starting xdp-hello: its figures, round by round.
struct Variant<'a> {
    label: String,
    notices: &'static [&'static str],
    rules: &'a [Rule],
    start_ms: Vec<f64>,
    rss_mib: Vec<f64>,
}

pub fn run(report: &mut Report, shapes: Shapes) -> Result<()> {
    xdp_filter::require()?;
    let many = rulegen::rule_set(MANY, shapes, SEED);
    let one = rulegen::rule_set(1, shapes, SEED);
    let variant = |label: &str, notices, rules| Variant {
        label: label.into(),
        notices,
        rules,
        start_ms: Vec::new(),
        rss_mib: Vec::new(),
    };
    let mut variants = [
        variant("--notices none, no rules", ours::NOTICES_NONE, &[][..]),
        variant("--notices all, no rules", &["--notices", "all"], &[][..]),
        variant("--notices none, 1 rule", ours::NOTICES_NONE, &one[..]),
        variant(
            &format!("--notices none, {}", report::rules(MANY)),
            ours::NOTICES_NONE,
            &many[..],
        ),
    ];
    let net = TestNet::new()?;
    let (mut exec, mut wrapper, mut their_ms, mut their_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        exec.push(ms(ours::netns_exec_overhead(&net)?));
        for v in &mut variants {
            let (running, took) = Ours::start_with(&net, MODE, v.rules, v.notices)?;
            v.start_ms.push(ms(took));
            let sender = Sender::start(&net, None);
            thread::sleep(TRAFFIC);
            sender.stop()?;
            v.rss_mib.push(mib(running.stop_with_peak_rss()?));
        }
        wrapper.push(ms(run_measured(
            xdp_filter::with_own_bpffs(&net).arg("true"),
        )?
        .0));
        let veth = net.veth(Side::A);
        let (took, rss) = run_measured(
            xdp_filter::with_own_bpffs(&net)
                .args(["xdp-filter", "load", "-m", &MODE.to_string(), "-p", "allow"])
                .args(["-f", xdp_filter::FEATURES, veth]),
        )?;
        their_ms.push(ms(took));
        their_rss.push(mib(rss));
        net.ip(
            Side::A,
            &["link", "set", "dev", veth, MODE.ip_keyword(), "off"],
        )?;
    }

    let (exec, wrapper) = (Samples(exec), Samples(wrapper));
    let less = |a: &Samples, b: &Samples| (a.median() - b.median(), a.min() - b.min());
    let on = MODE.to_string();
    for v in &variants {
        let started = Samples(v.start_ms.clone());
        report.row_of(
            &format!("start-up, xdp-hello {} (exec → attached)", v.label),
            &on,
            less(&started, &exec),
            "ms",
            "less `ip netns exec true`",
        );
    }
    // Against one rule, not none: with none the program comes without its
    // classifier (quicker to verify), and the difference would count that.
    let [_, _, single, loaded] = &variants;
    report.row_of(
        &format!("load {} at start", report::rules(MANY)),
        &on,
        less(
            &Samples(loaded.start_ms.clone()),
            &Samples(single.start_ms.clone()),
        ),
        "ms",
        "start-up with them − with 1 rule",
    );
    report.row_of(
        &format!("start-up, xdp-filter load -f {}", xdp_filter::FEATURES),
        &on,
        less(&Samples(their_ms), &wrapper),
        "ms",
        "exec → exit (attached), less its mount namespace's set-up",
    );
    for v in &variants {
        report.row(
            &format!("peak RSS, xdp-hello {}", v.label),
            &on,
            &Samples(v.rss_mib.clone()),
            "MiB",
            &format!("VmHWM, after {} s of traffic", TRAFFIC.as_secs()),
        );
    }
    report.row(
        &format!("peak RSS, xdp-filter load -f {}", xdp_filter::FEATURES),
        &on,
        &Samples(their_rss),
        "MiB",
        "VmHWM of its last image; it exits once attached",
    );
    let binary = ours::binary();
    let size = fs::metadata(&binary)
        .with_context(|| format!("reading the size of {}", binary.display()))?
        .len();
    let shown = binary
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(&binary);
    report.row(
        "binary size, xdp-hello",
        "release",
        &Samples(vec![mib(size / 1024)]),
        "MiB",
        &format!("{size} bytes, {}", shown.display()),
    );
    Ok(())
}

/// Runs `command` to its end, which must be a success: how long it took and
/// its peak RSS (KiB, the largest of it and what it waited for).
fn run_measured(command: &mut Command) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let rss = peak_rss_at_exit(child.id(), EXIT_TIMEOUT);
    let took = started.elapsed();
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((took, rss?))
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

/// KiB to MiB.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
