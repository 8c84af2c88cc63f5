//! Ours next to xdp-filter (Debian's xdp-tools) with the same 10,000
//! addresses denied: xdp-filter loaded by its own commands on a bench veth,
//! inside a private mount namespace with its own bpffs and /run (nothing of
//! the host's bpffs or lock files touched); both attached programs timed in
//! turn with BPF_PROG_TEST_RUN on the same frames.

use std::fs;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{Side, TestNet};

use crate::frames;
use crate::ours::Ours;
use crate::prog_run::Prog;
use crate::report::{Report, Samples};
use crate::rulegen::{self, Rule};
use crate::support::xdp_on;
use crate::SEED;

const ADDRESSES: usize = 10_000;
const REPEAT: u32 = 500_000;
const ROUNDS: usize = 9;
/// Its default, what `xdp-filter load IFACE` gives (the program the issue's
/// "today 1.45×" was measured against); `ipv4,ipv6` loads its leanest
/// address filter instead.
pub const FEATURES: &str = "all";

/// `sh -c MOUNTS sh PROGRAM ARGS…` in a private mount namespace: xdp-filter's
/// pins and lock file live and die there; a program it attached stays on
/// the interface (it holds its maps) after it ends.
const MOUNTS: &str = r#"set -e
mount -t bpf bpf /sys/fs/bpf
mount -t tmpfs tmpfs /run
exec "$@"
"#;

/// Run with `sh -c SCRIPT sh IFACE FILE` (MODE, FEATURES from the environment).
const LOAD_SCRIPT: &str = r#"set -e
xdp-filter load -m "$MODE" -p allow -f "$FEATURES" "$1"
while read -r address; do xdp-filter ip -m src "$address"; done < "$2"
"#;

pub fn run(report: &mut Report) -> Result<()> {
    require()?;
    let hosts = rulegen::host_list(ADDRESSES, SEED);
    let rules: Vec<Rule> = hosts.iter().map(|&host| Rule::deny_src(host)).collect();

    let their_net = TestNet::new()?;
    let took = Instant::now();
    load_xdp_filter(&their_net, &hosts)?;
    let load_s = took.elapsed().as_secs_f64();
    let ids = xdp_on(&their_net, Side::A)?;
    let [id] = ids[..] else {
        bail!(
            "expected xdp-filter's program on {}, found {ids:?}",
            their_net.veth(Side::A)
        );
    };
    let theirs = Prog::by_id(id)?;

    let our_net = TestNet::new()?;
    let (ours, _) = Ours::start(&our_net, Mode::Skb, &rules)?;

    let probes = frames::probes();
    let mut costs = vec![[Vec::new(), Vec::new()]; probes.len()];
    for _ in 0..ROUNDS {
        for (p, probe) in probes.iter().enumerate() {
            for (side, prog) in [&ours.prog, &theirs].into_iter().enumerate() {
                let (ns, verdict) = prog.time(&probe.frame, REPEAT)?;
                let want = rulegen::verdict(&rules, probe.src);
                ensure!(
                    verdict == want,
                    "{} got verdict {verdict}, not {want}",
                    probe.name
                );
                costs[p][side].push(ns);
            }
        }
    }
    let (our_size, their_size) = (ours.prog.size()?, theirs.size()?);
    let mut worst: f64 = 0.0;
    for (probe, [our_costs, their_costs]) in probes.iter().zip(costs) {
        let (our_costs, their_costs) = (Samples(our_costs), Samples(their_costs));
        let note = |(xlated, jited): (u32, u32)| format!("{xlated} xlated insns, {jited} B jited");
        report.row(
            "xdp-hello, 10,000 `deny src HOST`",
            probe.name,
            &our_costs,
            "ns/packet",
            &note(our_size),
        );
        report.row(
            &format!("xdp-filter -f {FEATURES}, 10,000 `ip -m src HOST`"),
            probe.name,
            &their_costs,
            "ns/packet",
            &note(their_size),
        );
        worst = worst.max(our_costs.median() / their_costs.median());
    }
    report.row(
        "xdp-filter: load + 10,000 `xdp-filter ip`",
        "skb",
        &Samples(vec![load_s]),
        "s",
        "one run",
    );
    report.ratio("ours/xdp-filter 10k-rules", worst);
    ours.stop()
}

/// Fails with what to do when xdp-filter is not installed.
pub fn require() -> Result<()> {
    if Command::new("xdp-filter")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!("xdp-filter is not installed: run `make setup`");
    }
    Ok(())
}

/// `ip netns exec NS unshare --mount … sh -c MOUNTS sh`, side A's namespace
/// with a bpffs and a /run of its own: the caller adds the program to run.
pub fn with_own_bpffs(net: &TestNet) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", net.ns(Side::A)])
        .args(["unshare", "--mount", "--propagation", "private"])
        .args(["sh", "-c", MOUNTS, "sh"]);
    command
}

/// `xdp-filter load` on side A's veth, then one `xdp-filter ip` an address.
pub fn load_xdp_filter(net: &TestNet, hosts: &[std::net::IpAddr]) -> Result<()> {
    load(net, Mode::Skb, hosts)
}

/// As [`load_xdp_filter`], in `mode`.
pub fn load(net: &TestNet, mode: Mode, hosts: &[std::net::IpAddr]) -> Result<()> {
    let list =
        std::env::temp_dir().join(format!("xdp-hello-{}-xdp-filter.list", std::process::id()));
    let text: String = hosts.iter().map(|h| format!("{h}\n")).collect();
    fs::write(&list, text).with_context(|| format!("writing {}", list.display()))?;
    let out = with_own_bpffs(net)
        .args(["sh", "-c", LOAD_SCRIPT, "sh", net.veth(Side::A)])
        .arg(&list)
        .env("MODE", mode.to_string())
        .env("FEATURES", FEATURES)
        .output()
        .context("running xdp-filter through ip netns exec and unshare")?;
    let _ = fs::remove_file(&list);
    if !out.status.success() {
        bail!(
            "loading xdp-filter failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
