//! Ours next to nftables on a real veth: the same 1,000 rules as xdp-hello
//! rules and as an nftables `netdev` ingress chain on the bench's veth;
//! packets/s delivered to the stack from one AF_PACKET sender with
//! neither, with ours and with the chain, in turn, round after round. The
//! frames match no rule: every rule is looked at, every frame may pass.

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{in_netns, Side, TestNet};

use crate::ours::Ours;
use crate::report::{Report, Samples};
use crate::rulegen::{self, Rule, Shapes};
use crate::support::Sender;
use crate::SEED;

const RULES: usize = 1_000;
const ROUNDS: usize = 5;
const SEND_TIME: Duration = Duration::from_secs(2);
/// Native on veth: what `-m auto` picks there.
const MODE: Mode = Mode::Native;
const TABLE: &str = "xdp_hello_bench";
/// What the sender sends (tests/support's Sender): side B to side A.
const SENT: &str = "udp4-60 B → A";

pub fn run(report: &mut Report, shapes: Shapes) -> Result<()> {
    if Command::new("nft").arg("--version").output().is_err() {
        bail!("nft is not installed: run scripts/bench-tools.sh (make bench does)");
    }
    let rules = rulegen::rule_set(RULES, shapes, SEED);
    let net = TestNet::new()?;
    let ruleset = nft_ruleset(net.veth(Side::A), &rules);
    // Once first: a translation nft refuses shows before any round.
    nft(&net, &["-f", "-"], Some(&ruleset))?;
    nft(&net, &["delete", "table", "netdev", TABLE], None)?;

    let (mut none, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        none.push(packets_per_second(&net)?);

        let (running, _) = Ours::start(&net, MODE, &rules)?;
        ours.push(packets_per_second(&net)?);
        running.stop()?;

        nft(&net, &["-f", "-"], Some(&ruleset))?;
        theirs.push(packets_per_second(&net)?);
        nft(&net, &["delete", "table", "netdev", TABLE], None)?;
    }
    let (none, ours, theirs) = (Samples(none), Samples(ours), Samples(theirs));
    let setup = format!("veth, {MODE} mode");
    report.row(
        "veth, no program, no chain",
        SENT,
        &none,
        "packets/s",
        "one sender",
    );
    report.row("xdp-hello, 1,000 rules", SENT, &ours, "packets/s", &setup);
    report.row(
        "nftables netdev ingress, 1,000 rules",
        SENT,
        &theirs,
        "packets/s",
        "veth",
    );
    report.ratio(
        "ours/nftables 1k-rules veth",
        ours.median() / theirs.median(),
    );
    Ok(())
}

/// The rules in order as a netdev ingress chain on `iface`.
fn nft_ruleset(iface: &str, rules: &[Rule]) -> String {
    let mut text = format!(
        "table netdev {TABLE} {{\n  chain ingress {{\n    type filter hook ingress device \"{iface}\" priority 0; policy accept;\n"
    );
    for line in rules.iter().flat_map(Rule::nft) {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str("  }\n}\n");
    text
}

/// `nft ARGS…` in side A's namespace, `input` on its stdin.
fn nft(net: &TestNet, args: &[&str], input: Option<&str>) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", net.ns(Side::A), "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    let mut stdin = child.stdin.take().expect("a piped stdin");
    if let Some(input) = input {
        stdin
            .write_all(input.as_bytes())
            .context("writing to nft")?;
    }
    drop(stdin);
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Frames per second that reach side A's UDP stack (its port 9 has no
/// listener: each one counts as a NoPorts) while one sender on side B sends
/// for SEND_TIME as fast as it can.
pub fn packets_per_second(net: &TestNet) -> Result<f64> {
    let before = udp_no_ports(net)?;
    let started = Instant::now();
    let sender = Sender::start(net, None);
    thread::sleep(SEND_TIME);
    sender.stop()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((udp_no_ports(net)? - before) as f64 / seconds)
}

/// Udp NoPorts of side A's namespace, from its /proc/net/snmp.
fn udp_no_ports(net: &TestNet) -> Result<u64> {
    let snmp = in_netns(net.ns(Side::A), || {
        std::fs::read_to_string("/proc/thread-self/net/snmp").context("reading /proc/net/snmp")
    })?;
    // Two `Udp:` lines: the names, then the values.
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        bail!("no Udp lines in /proc/net/snmp");
    };
    let column = names.split_whitespace().position(|name| name == "NoPorts");
    let value = column.and_then(|c| values.split_whitespace().nth(c)?.parse().ok());
    value.context("no Udp NoPorts in /proc/net/snmp")
}
