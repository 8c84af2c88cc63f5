//! Rule-set scale: ns/packet of xdp-hello with 0, 1, 100, 1,000 and 10,000
//! rules (each set on a veth of its own, the attached programs timed in
//! turn, round after round), and SIGHUP reloads of 1 and 10,000 rules
//! (start-up is the startup part's).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use xdp_hello::abi::XDP_PASS;
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::TestNet;

use crate::frames;
use crate::ours::Ours;
use crate::report::{self, Report, Samples};
use crate::rulegen::{self, Shapes};
use crate::SEED;

const SIZES: [usize; 5] = [0, 1, 100, 1_000, 10_000];
/// Runs per BPF_PROG_TEST_RUN call, and calls per set and frame.
const REPEAT: u32 = 500_000;
const ROUNDS: usize = 7;
/// Reloads timed per set.
const START_ROUNDS: usize = 5;

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
    Ok(())
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

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}
