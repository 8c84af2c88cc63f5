//! Rule-set scale: ns/packet of xdp-hello with 0, 1, 100, 1,000 and 10,000
//! rules (each set on a veth of its own, the attached programs timed in
//! turn, round after round), the start-up with no rules, and what loading
//! 10,000 rules adds, at start and on SIGHUP.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use xdp_hello::abi::XDP_PASS;
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::TestNet;

use crate::frames;
use crate::ours::{self, Ours};
use crate::report::{self, Report, Samples};
use crate::rulegen::{self, Shapes};
use crate::SEED;

const SIZES: [usize; 5] = [0, 1, 100, 1_000, 10_000];
/// Runs per BPF_PROG_TEST_RUN call, and calls per set and frame.
const REPEAT: u32 = 500_000;
const ROUNDS: usize = 15;
/// Starts (and reloads) timed per set.
const START_ROUNDS: usize = 7;

pub fn run(report: &mut Report, shapes: Shapes) -> Result<()> {
    let sets: Vec<_> = SIZES
        .iter()
        .map(|&n| rulegen::rule_set(n, shapes, SEED))
        .collect();
    let nets = SIZES
        .iter()
        .map(|_| TestNet::new())
        .collect::<Result<Vec<_>>>()?;
    let mut running = Vec::new();
    for (net, rules) in nets.iter().zip(&sets) {
        let (ours, _) = Ours::start(net, Mode::Skb, rules)
            .with_context(|| format!("starting xdp-hello with {}", report::rules(rules.len())))?;
        running.push(ours);
    }

    let probes = frames::probes();
    // costs[set][probe]: interleaved, so drift on a shared machine hits all alike.
    let mut costs = vec![vec![Vec::new(); probes.len()]; SIZES.len()];
    for _ in 0..ROUNDS {
        for (p, probe) in probes.iter().enumerate() {
            for (s, ours) in running.iter().enumerate() {
                let (ns, verdict) = ours.prog.time(&probe.frame, REPEAT)?;
                let want = rulegen::verdict(&sets[s], probe.src);
                ensure!(
                    verdict == want,
                    "{} rules gave {} verdict {verdict}, not {want}",
                    SIZES[s],
                    probe.name
                );
                costs[s][p].push(ns);
            }
        }
    }
    let costs: Vec<Vec<Samples>> = costs
        .into_iter()
        .map(|per_probe| per_probe.into_iter().map(Samples).collect())
        .collect();
    for (s, ours) in running.iter().enumerate() {
        let (xlated, jited) = ours.prog.size()?;
        for (p, probe) in probes.iter().enumerate() {
            let what = format!("xdp-hello, {}", report::rules(SIZES[s]));
            let late_unmatched = probe.name.ends_with("late")
                && rulegen::verdict(&sets[s], probe.src) == u32::from(XDP_PASS);
            let note = if late_unmatched {
                "no rule here denies it".into()
            } else {
                format!("{xlated} xlated insns, {jited} B jited")
            };
            report.row(&what, probe.name, &costs[s][p], "ns/packet", &note);
        }
    }
    let one = SIZES.iter().position(|&n| n == 1).expect("a 1-rule set");
    for (s, label) in [(2, "100-rules"), (3, "1k-rules"), (4, "10k-rules")] {
        // The frame it costs most on: the goal holds for every frame or not at all.
        let worst = (0..probes.len())
            .map(|p| costs[s][p].median() / costs[one][p].median())
            .fold(0.0, f64::max);
        report.ratio(&format!("{label}/1-rule"), worst);
    }

    let [.., one_rule, _, _, ten_thousand] = &mut running[..] else {
        unreachable!("SIZES has five sets")
    };
    let reloads = reload_times(one_rule, ten_thousand)?;
    report.row(
        "reload 1 rule (SIGHUP → logged)",
        "skb",
        &reloads.0,
        "ms",
        "",
    );
    report.row(
        "reload 10,000 rules (SIGHUP → logged)",
        "skb",
        &reloads.1,
        "ms",
        "",
    );
    for ours in running {
        ours.stop()?;
    }
    drop(nets);
    start_up(report, &sets[4])
}

/// SIGHUPs to both, in turn; ms each.
fn reload_times(one: &mut Ours, many: &mut Ours) -> Result<(Samples, Samples)> {
    let (mut few, mut lots) = (Vec::new(), Vec::new());
    for _ in 0..START_ROUNDS {
        few.push(ms(one.reload()?));
        lots.push(ms(many.reload()?));
    }
    Ok((Samples(few), Samples(lots)))
}

/// exec → "attached" with no rules and with 10,000, less what `ip netns
/// exec` costs by itself; all three in turn.
fn start_up(report: &mut Report, many: &[rulegen::Rule]) -> Result<()> {
    let net = TestNet::new()?;
    let (mut bare, mut loaded, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..START_ROUNDS {
        overhead.push(ms(ours::netns_exec_overhead(&net)?));
        let (ours, took) = Ours::start(&net, Mode::Skb, &[])?;
        bare.push(ms(took));
        ours.stop()?;
        let (ours, took) = Ours::start(&net, Mode::Skb, many)?;
        loaded.push(ms(took));
        ours.stop()?;
    }
    let (exec, bare, loaded) = (Samples(overhead), Samples(bare), Samples(loaded));
    let less = |a: &Samples, b: &Samples| (a.median() - b.median(), a.min() - b.min());
    report.row_of(
        "start-up, no rules (exec → attached)",
        "skb",
        less(&bare, &exec),
        "ms",
        "less `ip netns exec true`",
    );
    report.row_of(
        "load 10,000 rules at start",
        "skb",
        less(&loaded, &bare),
        "ms",
        "start-up with them − without",
    );
    Ok(())
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}
