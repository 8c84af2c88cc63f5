//! Packets/s on a real veth from one AF_PACKET sender (tests/support's
//! Sender, 64-byte UDP from side B to side A): no program, the empty XDP
//! program, ours with notices off, all and sampled, xdp-filter, and an
//! nftables netdev ingress chain, each with the same 1,000 `deny src HOST`
//! rules (no frame matches one, every frame passes), XDP in native and skb
//! mode. Each setup has a veth of its own, set up once; the rounds send to
//! each in turn.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{in_netns, Side, TestNet};

use crate::ours::{self, Ours};
use crate::report::{self, Report, Samples};
use crate::rulegen::{self, Rule};
use crate::support::Sender;
use crate::{c_objects, nftables, xdp_filter, SEED};

const RULES: usize = 1_000;
const ROUNDS: usize = 6;
/// Short sends, many rounds: the load of a shared machine changes by the second.
const SEND_TIME: Duration = Duration::from_secs(1);
const MODES: [Mode; 2] = [Mode::Native, Mode::Skb];
/// What the sender sends: 60 bytes on the wire, 64 with the FCS.
const SENT: &str = "udp4-64 B → A";
const NOTICES_ALL: &[&str] = &["--notices", "all"];
/// One notice in a hundred: the flag is another change's; until the binary
/// has it, its rows say so.
const SAMPLED: &[&str] = &["--notices", "all", "--sample", "100"];

/// What sits on side A's veth.
#[derive(Clone, Copy)]
enum Setup {
    Bare,
    Empty(Mode),
    Ours(Mode, &'static [&'static str]),
    XdpFilter(Mode),
    Nftables,
}

impl Setup {
    fn what(self) -> String {
        let rules = report::rules(RULES);
        match self {
            Setup::Bare => "veth: no program, no chain".into(),
            Setup::Empty(_) => "veth: empty XDP program (C, XDP_PASS)".into(),
            Setup::Ours(_, notices) => {
                format!(
                    "veth: xdp-hello {}, {rules} (`deny src HOST`)",
                    notices.join(" ")
                )
            }
            Setup::XdpFilter(_) => format!(
                "veth: xdp-filter -f {}, {rules} (`ip -m src HOST`)",
                xdp_filter::FEATURES
            ),
            Setup::Nftables => {
                format!("veth: nftables netdev ingress, {rules} (`ip saddr HOST drop`)")
            }
        }
    }

    fn on(self) -> String {
        match self {
            Setup::Empty(mode) | Setup::Ours(mode, _) | Setup::XdpFilter(mode) => {
                format!("{SENT}, {mode}")
            }
            Setup::Bare | Setup::Nftables => SENT.into(),
        }
    }
}

/// A setup in place on a veth of its own.
struct Placed {
    setup: Setup,
    net: TestNet,
    ours: Option<Ours>,
    rates: Vec<f64>,
    /// CPU ns per delivered frame, round by round.
    cpu: Vec<f64>,
}

pub fn run(report: &mut Report) -> Result<()> {
    xdp_filter::require()?;
    nftables::require()?;
    let hosts = rulegen::host_list(RULES, SEED);
    let rules: Vec<Rule> = hosts.iter().map(|&host| Rule::deny_src(host)).collect();
    let empty = c_objects::build_c_object("empty")?;
    let sampling = has_flag("--sample")?;

    // The table's order; sampled ones are left out until the binary can.
    let mut setups = vec![Setup::Bare];
    for mode in MODES {
        setups.extend([
            Setup::Empty(mode),
            Setup::Ours(mode, ours::NOTICES_NONE),
            Setup::Ours(mode, NOTICES_ALL),
            Setup::Ours(mode, SAMPLED),
            Setup::XdpFilter(mode),
        ]);
    }
    setups.push(Setup::Nftables);
    let can = |setup: &Setup| sampling || !matches!(setup, Setup::Ours(_, n) if *n == SAMPLED);

    let mut placed = Vec::new();
    for &setup in setups.iter().filter(|s| can(s)) {
        let net = TestNet::new()?;
        let mut ours = None;
        match setup {
            Setup::Bare => {}
            Setup::Empty(mode) => attach_object(&net, mode, &empty)?,
            Setup::Ours(mode, notices) => {
                ours = Some(Ours::start_with(&net, mode, &rules, notices)?.0);
            }
            Setup::XdpFilter(mode) => xdp_filter::load(&net, mode, &hosts)?,
            Setup::Nftables => nftables::load(&net, &rules)?,
        }
        placed.push(Placed {
            setup,
            net,
            ours,
            rates: Vec::new(),
            cpu: Vec::new(),
        });
    }

    for _ in 0..ROUNDS {
        for place in &mut placed {
            let consumer = place.ours.as_ref().map(Ours::pid);
            let (rate, cpu) = packets_per_second(&place.net, consumer)?;
            place.rates.push(rate);
            place.cpu.push(cpu);
        }
    }
    for place in &placed {
        // Every setup must pass the sender's frames: none is a broken setup.
        ensure!(
            place.rates.iter().all(|&rate| rate > 0.0),
            "no frame reached side A's stack through {} ({}): {:?} packets/s",
            place.setup.what(),
            place.setup.on(),
            place.rates
        );
    }

    let rate = |wanted: fn(Setup) -> bool| {
        placed
            .iter()
            .find(|p| wanted(p.setup))
            .map(|p| Samples(p.rates.clone()).median())
    };
    let bare = rate(|s| matches!(s, Setup::Bare)).expect("a bare veth");
    let mut measured = placed.iter();
    for setup in setups {
        if !can(&setup) {
            report.pending(
                &setup.what(),
                &setup.on(),
                "packets/s",
                "not yet: needs --sample",
            );
            continue;
        }
        let place = measured
            .next()
            .expect("a placed setup for each that can be");
        let rates = Samples(place.rates.clone());
        let note = format!(
            "{:.2} × no program; CPU {:.0} ns/packet",
            rates.median() / bare,
            Samples(place.cpu.clone()).median()
        );
        report.row(&setup.what(), &setup.on(), &rates, "packets/s", &note);
    }
    let native_ours = |notices: &'static [&'static str]| {
        placed
            .iter()
            .find(|p| matches!(p.setup, Setup::Ours(Mode::Native, n) if n == notices))
            .map(|p| Samples(p.rates.clone()).median())
            .expect("ours in native mode")
    };
    let (none, all) = (native_ours(ours::NOTICES_NONE), native_ours(NOTICES_ALL));
    let nft = rate(|s| matches!(s, Setup::Nftables)).expect("an nftables chain");
    report.ratio("notices-all/notices-none veth", all / none);
    report.ratio("ours/nftables 1k-rules veth", none / nft);

    for place in placed {
        if let Some(ours) = place.ours {
            ours.stop()?;
        }
    }
    Ok(())
}

/// While one sender on side B sends for SEND_TIME as fast as it can:
/// frames per second that reach side A's UDP stack (its port 9 has no
/// listener: each one counts as a NoPorts), and the CPU time each cost —
/// this process's (the sender, and the receive path it runs inline) and
/// `also`'s (xdp-hello's consumer) — which other load on a shared machine
/// changes less than the rate.
fn packets_per_second(net: &TestNet, also: Option<u32>) -> Result<(f64, f64)> {
    let before = udp_no_ports(net)?;
    let cpu_before = cpu_ns(also)?;
    let started = Instant::now();
    let sender = Sender::start(net, None);
    thread::sleep(SEND_TIME);
    sender.stop()?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_ns(also)? - cpu_before;
    let delivered = (udp_no_ports(net)? - before) as f64;
    Ok((delivered / seconds, cpu / delivered.max(1.0)))
}

/// CPU time (user + system) of this process and of process `also`, in ns.
fn cpu_ns(also: Option<u32>) -> Result<f64> {
    // SAFETY: plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live local of the right type.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage");
    }
    let timeval = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    let mut ns = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    if let Some(pid) = also {
        // /proc/PID/stat: utime and stime are fields 14 and 15, in clock
        // ticks; the name (field 2) may hold spaces, so count from its ')'.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11..13)
            .context("a short /proc/PID/stat")?
            .iter()
            .map(|f| f.parse::<f64>().unwrap_or(0.0))
            .sum();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ns += ticks / per_second * 1e9;
    }
    Ok(ns)
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

/// Attaches the `xdp` section of `object` to side A's veth with iproute2's
/// loader; it stays until the namespace goes.
fn attach_object(net: &TestNet, mode: Mode, object: &Path) -> Result<()> {
    let veth = net.veth(Side::A);
    let object = object.to_str().context("a UTF-8 path")?;
    net.ip(
        Side::A,
        &[
            "link",
            "set",
            "dev",
            veth,
            mode.ip_keyword(),
            "obj",
            object,
            "sec",
            "xdp",
        ],
    )
    .with_context(|| format!("attaching {object} to {veth} in {mode} mode"))?;
    Ok(())
}

/// Whether the binary under test takes `flag` (its --help lists it).
fn has_flag(flag: &str) -> Result<bool> {
    let out = Command::new(ours::binary())
        .arg("--help")
        .output()
        .context("running xdp-hello --help")?;
    let help = String::from_utf8_lossy(&out.stdout);
    Ok(help.split_whitespace().any(|word| word == flag))
}
