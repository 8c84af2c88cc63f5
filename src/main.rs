//! The command line and the wiring; the work is done in the library modules.

use std::cell::RefCell;
use std::io::{self, BufWriter, Write};
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use xdp_hello::abi::{self, Config};
use xdp_hello::firewall::{Firewall, RuleMaps};
use xdp_hello::grace::GracePeriod;
use xdp_hello::loader::{self, Mode};
use xdp_hello::output::{Formatter, Style};
use xdp_hello::rules::{self, RuleError};
use xdp_hello::stats::{self, Counters};
use xdp_hello::{iface, logging, notices, selftest};

/// Reports the packets arriving on a network interface, one line each, and
/// allows or denies them by rules — an XDP program written in Rust and loaded
/// through libbpf.
///
/// Rules (with --rule, or one a line in --rules FILE, `#` comments):
///
///   allow|deny src|dst ADDRESS[/PREFIX]          e.g. deny src 10.0.0.0/8
///   allow|deny tcp|udp sport|dport PORT[-PORT]   e.g. allow tcp dport 8000-8080
///   allow|deny icmp|icmpv6 [type N]              e.g. deny icmpv6 type 128
///   allow|deny proto NAME|NUMBER                 e.g. deny proto esp
///
/// For each kind (source address, destination address, source port,
/// destination port, ICMP type, protocol) the most specific matching rule
/// counts: the longest prefix, the exact ICMP type before any type. A deny
/// among them wins, else an allow, else --default. Only IPv4 and IPv6 are
/// filtered; ARP and other traffic always passes. A rule set holds at most
/// 65536 rules (--rule and --rules together); a rules file at most 16 MiB.
///
/// Needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON. Ctrl-C or SIGTERM
/// detaches and prints a summary; SIGHUP reloads --rules FILE in place.
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Interface to attach to.
    #[arg(short, long, default_value = "eth0")]
    iface: String,

    /// XDP mode: `auto` uses native mode where the driver supports it and
    /// falls back to skb (generic) mode where it does not.
    #[arg(short, long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,

    /// A rule (repeatable), e.g. --rule 'deny tcp dport 22'.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<String>,

    /// A file of rules, one a line; SIGHUP reloads it.
    #[arg(long = "rules", value_name = "FILE")]
    rules_file: Option<PathBuf>,

    /// What happens to IP packets no rule matches.
    #[arg(long, value_enum, default_value_t = Policy::Allow)]
    default: Policy,

    /// Which packets get a line (all are counted either way).
    #[arg(long, value_enum, default_value_t = NoticeFilter::All)]
    notices: NoticeFilter,

    /// Print packet rates and the busiest rules to stderr every SECONDS.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    stats: Option<u64>,

    /// Size of the notice ring buffer: a power of two, at least 4K (e.g. 256K, 4M).
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_ring_size)]
    ring_size: u32,

    /// Write notices as JSON Lines, one object per packet.
    #[arg(short, long)]
    json: bool,

    /// Show libbpf's messages (and the verifier's log when loading fails).
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check that xdp-hello works on this kernel (needs root).
    ///
    /// Runs crafted packets through BPF_PROG_TEST_RUN (also under rule sets),
    /// then attaches for real over a veth pair in network namespaces of its
    /// own, in native and skb mode, and removes everything it made. One line
    /// per check, then `N passed, N failed`; exits non-zero on any failure.
    Selftest,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Policy {
    Allow,
    Deny,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::Allow => "allow",
            Policy::Deny => "deny",
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum NoticeFilter {
    All,
    Denied,
    None,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let outcome = match cli.command {
        Some(Command::Selftest) => selftest::run().map(|passed| passed.then_some(()).is_some()),
        None => run(&cli).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("xdp-hello: {err:#}");
            // Bad rules share clap's status for bad usage.
            if err.downcast_ref::<RuleError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    // Everything that can be wrong with the input fails before the kernel
    // sees anything.
    let rule_set = rules::load(&cli.rules, cli.rules_file.as_deref())?;
    let ifindex = iface::index_of(&cli.iface)?;
    iface::require_ethernet(&cli.iface)?;
    if let Some(warning) = iface::down_warning(&cli.iface) {
        eprintln!("xdp-hello: warning: {warning}");
    }
    if matches!(cli.default, Policy::Deny) && iface::in_initial_namespace() {
        eprintln!(
            "xdp-hello: warning: --default deny on {} drops all IP traffic no rule allows, \
             remote logins included",
            cli.iface
        );
    }
    let signals = Signals::install()?;

    let config = Config {
        default_verdict: match cli.default {
            Policy::Allow => abi::XDP_PASS as u32,
            Policy::Deny => abi::XDP_DROP as u32,
        },
        notice_mode: match cli.notices {
            NoticeFilter::All => abi::NOTICES_ALL,
            NoticeFilter::Denied => abi::NOTICES_DENIED,
            NoticeFilter::None => abi::NOTICES_NONE,
        },
    };
    let mut object = MaybeUninit::uninit();
    // With no notices to stream, the ring only needs to exist.
    let ring_size = match cli.notices {
        NoticeFilter::None => MIN_RING_SIZE,
        _ => cli.ring_size,
    };
    let skel = loader::load(&mut object, ring_size, config)?;
    let rule_maps = RuleMaps::of(&skel.maps);
    let mut firewall = Firewall::new();
    firewall.install(&rule_maps, &rule_set)?;

    let attachment = loader::attach(&skel, ifindex, &cli.iface, cli.mode)?;
    if attachment.fell_back {
        eprintln!(
            "xdp-hello: {}'s driver has no native XDP; using skb mode",
            cli.iface
        );
    }
    eprintln!(
        "xdp-hello: xdp_hello attached to {} ({} mode, {} rule{}, default {}); Ctrl-C to stop",
        cli.iface,
        attachment.mode,
        rule_set.len(),
        plural(rule_set.len()),
        cli.default.name()
    );

    let out = RefCell::new(BufWriter::new(io::stdout().lock()));
    let mut format = Formatter::new(if cli.json { Style::Json } else { Style::Text });
    if let (Some(header), false) = (format.header(), matches!(cli.notices, NoticeFilter::None)) {
        writeln!(out.borrow_mut(), "{header}").context("writing to stdout")?;
    }
    let mut write_failed = None;
    let mut interval = cli
        .stats
        .map(|secs| stats::Interval::new(Duration::from_secs(secs)));
    let mut after_batch = || -> Result<()> {
        out.borrow_mut()
            .flush()
            .context("writing notices to stdout")?;
        if signals.reload.swap(false, Ordering::Relaxed) {
            reload(cli, &mut firewall, &rule_maps);
        }
        if let Some(interval) = interval.as_mut() {
            if interval.due(Instant::now()) {
                let counters = Counters::read(&skel.maps.counters)?;
                let hits = firewall.hits(&rule_maps)?;
                eprintln!("xdp-hello: {}", interval.line(&counters, &hits));
            }
        }
        Ok(())
    };
    // Detached, and every run of the program over, before the last read and
    // the counts, so both are final.
    let grace = GracePeriod::new()?;
    let detach = move || {
        drop(attachment);
        grace.wait()
    };
    let shown = notices::stream(
        &skel.maps.events,
        &signals.stop,
        &signals.reload,
        &mut after_batch,
        detach,
        |notice| match writeln!(out.borrow_mut(), "{}", format.line(notice)) {
            Ok(()) => true,
            Err(err) => {
                write_failed = Some(err);
                false
            }
        },
    )?;
    if let Some(err) = write_failed.filter(|e| e.kind() != io::ErrorKind::BrokenPipe) {
        return Err(err).context("writing notices to stdout");
    }

    let counters = Counters::read(&skel.maps.counters)?;
    let hits = firewall.hits(&rule_maps)?;
    eprint!("{}", stats::summary(&cli.iface, &counters, shown, &hits));
    Ok(())
}

/// SIGHUP: re-read --rules FILE and swap it in; on any error keep the rules
/// in force and say why. Reloads are counted from 1, so each line names one.
fn reload(cli: &Cli, firewall: &mut Firewall, maps: &RuleMaps<'_>) {
    let Some(path) = cli.rules_file.as_deref() else {
        eprintln!("xdp-hello: SIGHUP ignored: no --rules FILE to reload");
        return;
    };
    static RELOADS: AtomicU32 = AtomicU32::new(0);
    let number = RELOADS.fetch_add(1, Ordering::Relaxed) + 1;
    let outcome = rules::load(&cli.rules, Some(path))
        .map_err(anyhow::Error::from)
        .and_then(|set| firewall.install(maps, &set).map(|()| set.len()));
    match outcome {
        Ok(count) => eprintln!(
            "xdp-hello: reload {number} of {}: {}",
            path.display(),
            in_force(count)
        ),
        Err(err) => eprintln!(
            "xdp-hello: reload {number} of {} failed, keeping the {}: {err:#}",
            path.display(),
            in_force(firewall.rules().len())
        ),
    }
}

/// "1 rule in force", "2 rules in force".
fn in_force(count: usize) -> String {
    format!("{count} rule{} in force", plural(count))
}

/// Flags the signal handlers set: stop on SIGINT or SIGTERM, reload on SIGHUP.
/// A second SIGINT or SIGTERM exits at once (130 or 143), for when the
/// first cannot be acted on — stdout blocked by a reader that does not read;
/// the kernel detaches the program as the process ends.
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let signals = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
        };
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as the previous signal left it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                signals.stop.clone(),
            )
            .context("installing signal handlers")?;
            signal_hook::flag::register(signal, signals.stop.clone())
                .context("installing signal handlers")?;
        }
        signal_hook::flag::register(SIGHUP, signals.reload.clone())
            .context("installing signal handlers")?;
        Ok(signals)
    }
}

/// "s" unless there is one.
fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// The smallest ring buffer: one page.
const MIN_RING_SIZE: u32 = 4096;

/// `4096`, `256K`, `4M`: a power of two of at least one page.
fn parse_ring_size(text: &str) -> Result<u32, String> {
    let upper = text.trim().to_ascii_uppercase();
    let (digits, unit) = if let Some(d) = upper.strip_suffix('K') {
        (d, 1u64 << 10)
    } else if let Some(d) = upper.strip_suffix('M') {
        (d, 1u64 << 20)
    } else {
        (upper.as_str(), 1)
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("'{text}' is not a size (e.g. 256K, 4M)"))?;
    if !bytes.is_power_of_two() || !(MIN_RING_SIZE as u64..=1 << 30).contains(&bytes) {
        return Err(format!("'{text}': must be a power of two from 4K to 1024M"));
    }
    Ok(bytes as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_readme() {
        let cli = Cli::try_parse_from(["xdp-hello"]).unwrap();
        assert_eq!(cli.iface, "eth0");
        assert_eq!(cli.mode, Mode::Auto);
        assert_eq!(cli.ring_size, 4 << 20);
        assert!(matches!(cli.default, Policy::Allow));
        assert!(matches!(cli.notices, NoticeFilter::All));
        assert!(cli.command.is_none());
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "xdp-hello",
            "-i",
            "veth0",
            "-m",
            "skb",
            "--rule",
            "deny icmp",
            "--rule",
            "allow src 10.1.2.3",
            "--rules",
            "r.txt",
            "--default",
            "deny",
            "--notices",
            "denied",
            "--stats",
            "2",
            "--ring-size",
            "256K",
            "-v",
        ])
        .unwrap();
        assert_eq!(cli.iface, "veth0");
        assert_eq!(cli.mode, Mode::Skb);
        assert_eq!(cli.rules, ["deny icmp", "allow src 10.1.2.3"]);
        assert_eq!(cli.rules_file, Some(PathBuf::from("r.txt")));
        assert_eq!(cli.stats, Some(2));
        assert_eq!(cli.ring_size, 256 << 10);
        assert!(cli.verbose);
    }

    #[test]
    fn bad_flags_are_refused() {
        for args in [
            &["xdp-hello", "-m", "turbo"][..],
            &["xdp-hello", "--ring-size", "3000"],
            &["xdp-hello", "--ring-size", "2K"],
            &["xdp-hello", "--ring-size", "18014398509481985M"],
            &["xdp-hello", "--stats", "0"],
            &["xdp-hello", "--default", "maybe"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn selftest_is_a_subcommand() {
        let cli = Cli::try_parse_from(["xdp-hello", "selftest"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Selftest)));
    }
}
