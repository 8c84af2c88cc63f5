//! The command line and the wiring; the work is done in the library modules.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use xdp_hello::abi::{self, Config, Notice};
use xdp_hello::firewall::{Firewall, RuleMaps};
use xdp_hello::grace::GracePeriod;
use xdp_hello::loader::{self, Mode};
use xdp_hello::logging::{self, say};
use xdp_hello::output::{Formatter, Style};
use xdp_hello::rules::{self, RuleError};
use xdp_hello::sink::LineSink;
use xdp_hello::stats::{self, Counters, Shown};
use xdp_hello::watch::LinkWatch;
use xdp_hello::{iface, notices, selftest};

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
// Run options next to `selftest` would be silently ignored: refuse them.
#[command(
    version,
    about,
    long_about,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
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
    // Negative numbers reach the parser, which says what is wrong with them.
    #[arg(
        long,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        value_parser = parse_seconds
    )]
    stats: Option<u64>,

    /// Size of the notice ring buffer: a power of two from 4K to 1G (e.g. 256K, 4M).
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
        None => run(&cli),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            say(format_args!("{err:#}"));
            // Bad rules share clap's status for bad usage.
            if err.downcast_ref::<RuleError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// One run: load, install the rules, attach, stream, summarise. Returns
/// whether it ended as asked (a signal, or a pure observer's reader going
/// away) rather than by a failure the user must hear of in the exit status.
fn run(cli: &Cli) -> Result<bool> {
    // Everything that can be wrong with the input fails before the kernel
    // sees anything.
    let rule_set = rules::load(&cli.rules, cli.rules_file.as_deref())?;
    let ifindex = iface::index_of(&cli.iface)?;
    iface::require_ethernet(&cli.iface)?;
    if let Some(warning) = iface::down_warning(&cli.iface) {
        say(format_args!("warning: {warning}"));
    }
    let default_deny = matches!(cli.default, Policy::Deny);
    if default_deny && iface::in_initial_namespace() {
        say(format_args!(
            "warning: --default deny on {} drops all IP traffic no rule allows, \
             remote logins included",
            cli.iface
        ));
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
    // Reloads change it between batches; notices read it to name rules.
    let firewall = RefCell::new(firewall);

    let attachment = loader::attach(&skel, ifindex, &cli.iface, cli.mode)?;
    if attachment.fell_back {
        say(format_args!(
            "{}'s driver has no native XDP; using skb mode",
            cli.iface
        ));
    }
    say(format_args!(
        "xdp_hello attached to {} ({} mode, {} rule{}, default {}); Ctrl-C to stop",
        cli.iface,
        attachment.mode,
        rule_set.len(),
        plural(rule_set.len()),
        cli.default.name()
    ));
    let watch = RefCell::new(LinkWatch::new(attachment, &cli.iface, ifindex)?);
    let link_lost = Cell::new(false);

    // Straight to the descriptor: std's stdout would split and re-buffer
    // lines, and the sink must know which lines went out whole.
    let stdout = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("opening stdout")?;
    let sink = RefCell::new(LineSink::new(File::from(stdout)));
    let mut format = Formatter::new(if cli.json { Style::Json } else { Style::Text });
    let header = match (format.header(), cli.notices) {
        (_, NoticeFilter::None) | (None, _) => 0,
        (Some(header), _) => {
            sink.borrow_mut().push(header);
            1
        }
    };
    // Rules in force: a failed write must not end the filtering.
    let enforcing = Cell::new(!rule_set.is_empty() || default_deny);
    let on_output_failure = |err: &io::Error| output_failed(err, enforcing.get(), &signals.stop);
    let mut interval = cli
        .stats
        .map(|secs| stats::Interval::new(Duration::from_secs(secs)));
    let mut after_batch = || -> Result<()> {
        if let Some(err) = sink.borrow_mut().flush() {
            on_output_failure(err);
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            let mut firewall = firewall.borrow_mut();
            reload(cli, &mut firewall, &rule_maps);
            enforcing.set(!firewall.rules().is_empty() || default_deny);
        }
        if let Some(what) = watch.borrow_mut().lost() {
            say(what);
            link_lost.set(true);
            signals.stop.store(true, Ordering::Relaxed);
        }
        if let Some(interval) = interval.as_mut() {
            if interval.due(Instant::now()) {
                let counters = Counters::read(&skel.maps.counters)?;
                let hits = firewall.borrow().hits(&rule_maps)?;
                say(interval.line(&counters, &hits));
            }
        }
        Ok(())
    };
    // Detached, and every run of the program over, before the last read and
    // the counts, so both are final.
    let grace = GracePeriod::new()?;
    let detach = || {
        watch.borrow_mut().detach();
        grace.wait()
    };
    notices::stream(
        &skel.maps.events,
        &signals.stop,
        &signals.reload,
        &mut after_batch,
        detach,
        |notice| {
            let mut sink = sink.borrow_mut();
            // Once writing has failed, nothing is formatted: reading the
            // ring stays cheap.
            if sink.failure().is_some() {
                sink.push("");
            } else {
                // The kernel names a rule by its counter slot; users by its id.
                let notice = Notice {
                    rule_id: firewall.borrow().shown_rule_id(notice.rule_id),
                    ..*notice
                };
                if let Some(err) = sink.push(&format.line(&notice)) {
                    on_output_failure(err);
                }
            }
        },
    )?;

    let counters = Counters::read(&skel.maps.counters)?;
    let hits = firewall.borrow().hits(&rule_maps)?;
    let sink = sink.into_inner();
    let shown = Shown {
        written: sink.written().saturating_sub(header),
        unwritten: sink.unwritten(),
    };
    logging::write_stderr(&stats::summary(&cli.iface, &counters, shown, &hits));
    // A reader that went away is a normal end; a full disk is not.
    let output_ok = sink
        .failure()
        .is_none_or(|err| err.kind() == io::ErrorKind::BrokenPipe);
    Ok(output_ok && !link_lost.get())
}

/// Says once why no more notices are written and what happens now: with
/// rules in force the run goes on until a signal; a pure observer ends, as
/// tcpdump does.
fn output_failed(err: &io::Error, enforcing: bool, stop: &AtomicBool) {
    let why = if err.kind() == io::ErrorKind::BrokenPipe {
        "stdout was closed (its reader went away)".to_string()
    } else {
        format!("writing notices to stdout failed ({err})")
    };
    if enforcing {
        say(format_args!(
            "{why}: no more notices are written; the rules stay in force until Ctrl-C or SIGTERM"
        ));
    } else {
        say(format_args!("{why}: stopping, as no rules are in force"));
        stop.store(true, Ordering::Relaxed);
    }
}

/// SIGHUP: re-read --rules FILE and swap it in; on any error keep the rules
/// in force and say why. Reloads are counted from 1, so each line names one.
fn reload(cli: &Cli, firewall: &mut Firewall, maps: &RuleMaps<'_>) {
    let Some(path) = cli.rules_file.as_deref() else {
        say("SIGHUP ignored: no --rules FILE to reload");
        return;
    };
    static RELOADS: AtomicU32 = AtomicU32::new(0);
    let number = RELOADS.fetch_add(1, Ordering::Relaxed) + 1;
    let outcome = rules::load(&cli.rules, Some(path))
        .map_err(anyhow::Error::from)
        .and_then(|set| firewall.install(maps, &set).map(|()| set.len()));
    match outcome {
        Ok(count) => say(format_args!(
            "reload {number} of {}: {}",
            path.display(),
            in_force(count)
        )),
        Err(err) => say(format_args!(
            "reload {number} of {} failed, keeping the {}: {err:#}",
            path.display(),
            in_force(firewall.rules().len())
        )),
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

/// The largest ring buffer: 1 GiB, as the kernel's u32 sizes and a
/// sensible amount of locked memory allow.
const MAX_RING_SIZE: u32 = 1 << 30;

/// `4096`, `256K`, `4M`, `1G`: a power of two from one page to 1G.
fn parse_ring_size(text: &str) -> Result<u32, String> {
    let upper = text.trim().to_ascii_uppercase();
    let (digits, unit) = match upper.char_indices().last() {
        Some((at, 'K')) => (&upper[..at], 1u64 << 10),
        Some((at, 'M')) => (&upper[..at], 1u64 << 20),
        Some((at, 'G')) => (&upper[..at], 1u64 << 30),
        _ => (upper.as_str(), 1),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("'{text}' is not a size (e.g. 256K, 4M, 1G)"))?;
    if !bytes.is_power_of_two() || !(MIN_RING_SIZE as u64..=MAX_RING_SIZE as u64).contains(&bytes) {
        return Err(format!("'{text}': must be a power of two from 4K to 1G"));
    }
    Ok(bytes as u32)
}

/// A whole number of seconds, at least 1.
fn parse_seconds(text: &str) -> Result<u64, String> {
    match text.trim().parse::<i128>() {
        Ok(secs) if secs >= 1 => u64::try_from(secs).map_err(|_| "too many seconds".to_string()),
        Ok(_) => Err("must be at least 1 (seconds)".to_string()),
        Err(_) => Err("not a whole number of seconds".to_string()),
    }
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

    /// Issue 7 item 19: `--rule 'deny foo' selftest` ran the selftest and
    /// ignored the rule.
    #[test]
    fn run_options_are_refused_with_selftest() {
        for args in [
            &["xdp-hello", "--rule", "deny foo", "selftest"][..],
            &["xdp-hello", "-i", "veth0", "selftest"],
            &["xdp-hello", "--json", "selftest"],
            &["xdp-hello", "selftest", "--rule", "deny foo"],
        ] {
            let err = Cli::try_parse_from(args).expect_err(&format!("{args:?} was accepted"));
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    /// Issue 7 item 21: the largest size the message names is accepted, in
    /// either unit; one more is refused with a message that names it.
    #[test]
    fn ring_size_goes_up_to_1g() {
        for text in ["1G", "1g", "1024M", "1073741824"] {
            assert_eq!(parse_ring_size(text), Ok(1 << 30), "{text}");
        }
        let cli = Cli::try_parse_from(["xdp-hello", "--ring-size", "1G"]).unwrap();
        assert_eq!(cli.ring_size, 1 << 30);
        for text in ["2G", "2048M", "3G"] {
            let err = parse_ring_size(text).unwrap_err();
            assert!(err.ends_with("from 4K to 1G"), "{text}: {err}");
        }
        assert!(parse_ring_size("G").is_err());
    }

    /// Issue 7 item 21: `--stats -1` said "unexpected argument".
    #[test]
    fn stats_below_one_is_a_range_error() {
        for value in ["-1", "0", "-99999999999999999999999"] {
            let err = Cli::try_parse_from(["xdp-hello", "--stats", value]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("must be at least 1"), "{value}: {text}");
            assert!(!text.contains("unexpected argument"), "{value}: {text}");
        }
        let err = Cli::try_parse_from(["xdp-hello", "--stats", "soon"]).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
    }
}
