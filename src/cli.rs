//! The command line: flags, their help, and the parsers of their values.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};

use crate::attach::Mode;
use crate::policy::Action;

/// Reports the packets arriving on a network interface, one line each, and
/// allows or denies them by rules — an XDP program written in Rust and loaded
/// through libbpf.
///
/// Rules (with --rule, or one a line in --rules FILE, `#` comments) are
/// tried in order, and the first that matches decides; --default decides
/// when none does. Fields combine with AND, comma lists with OR:
///
///   allow tcp dport 22 src 10.0.0.0/24       SSH from the admin network only
///   deny  tcp dport 22
///   allow udp dport 53 src 192.0.2.0/24,2001:db8::/32
///   allow icmp type 0,3,8,11
///   deny  tcp flags S/SA dport 1-1023        SYN set, ACK clear
///   deny  src 203.0.113.0/24 log             log: a notice for each packet it decides
///
/// Fields: tcp|udp|icmp|icmpv6 or proto LIST, src LIST, dst LIST, sport LIST,
/// dport LIST, type LIST, code LIST, flags VALUE[/MASK], on IFACE. Only IPv4
/// and IPv6 are filtered; ARP and other traffic always passes. A rule set
/// holds at most 65536 rules; a rules file at most 16 MiB. `xdp-hello check`
/// tries a set without loading anything; --dry-run tries it on live traffic.
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
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Interface to attach to; repeat it (-i a -i b) or list several
    /// (-i a,b) to watch them all with one program, its rules and its maps.
    #[arg(
        short,
        long = "iface",
        value_name = "IFACE",
        default_value = "eth0",
        value_delimiter = ','
    )]
    pub ifaces: Vec<String>,

    /// XDP mode: `auto` uses native mode where the driver supports it and
    /// falls back to skb (generic) mode where it does not.
    #[arg(short, long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,

    /// A rule (repeatable), e.g. --rule 'deny tcp dport 22'.
    #[arg(long = "rule", value_name = "RULE")]
    pub rules: Vec<String>,

    /// A file of rules, one a line; reloaded when it changes, or on SIGHUP.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules_file: Option<PathBuf>,

    /// What happens to IP packets no rule matches.
    #[arg(long, default_value = "allow", value_parser = action_parser())]
    pub default: Action,

    /// Compute, count and show every verdict ("would DROP"), but let every
    /// packet pass: to try a policy on a live host without risk.
    #[arg(long)]
    pub dry_run: bool,

    /// Which packets get a line (all are counted either way).
    #[arg(long, value_enum, default_value_t = NoticeFilter::All)]
    pub notices: NoticeFilter,

    /// Print packet rates and the busiest rules to stderr every SECONDS.
    // Negative numbers reach the parser, which says what is wrong with them.
    #[arg(
        long,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        value_parser = parse_seconds
    )]
    pub stats: Option<u64>,

    /// A notice for one packet in N of those --notices asks for (per CPU;
    /// `log` rules' packets are never sampled). All are counted.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_sample)]
    pub sample: Option<u32>,

    /// At most R notices a second from each CPU, decided in the kernel (a
    /// token bucket holding one second's worth). All packets are counted.
    #[arg(long, value_name = "R", allow_negative_numbers = true, value_parser = parse_max_rate)]
    pub max_rate: Option<u32>,

    /// Size of the notice ring buffer: a power of two from 4K to 1G (e.g. 256K, 4M).
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_ring_size)]
    pub ring_size: u32,

    /// Write notices as JSON Lines, one object per packet.
    #[arg(short, long)]
    pub json: bool,

    /// Capture: write the packets as pcapng (for tcpdump, tshark, Wireshark)
    /// to FILE, or to stdout with `-`, instead of lines.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        conflicts_with = "json"
    )]
    pub write: Option<PathBuf>,

    /// With -w: bytes captured of each packet, 1 to 32672 (the most a ring
    /// record holds; 0 means that too) [default: 32672].
    #[arg(long, value_name = "BYTES", requires = "write", value_parser = parse_snaplen)]
    pub snaplen: Option<u32>,

    /// Stop after COUNT notices (lines or captured packets), as tcpdump -c does.
    #[arg(short = 'c', long = "count", value_name = "COUNT", value_parser = parse_count)]
    pub count: Option<u64>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g.
    /// 127.0.0.1:9435, [::]:9435).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen_address)]
    pub metrics: Option<SocketAddr>,

    /// Show libbpf's messages (and the verifier's log when loading fails).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check that xdp-hello works on this kernel (needs root).
    ///
    /// Runs crafted packets through BPF_PROG_TEST_RUN (also under rule sets),
    /// then attaches for real over a veth pair in network namespaces of its
    /// own, in native and skb mode, and removes everything it made. One line
    /// per check, then `N passed, N failed`; exits non-zero on any failure.
    Selftest {
        /// Show libbpf's messages (and the verifier's log when loading fails).
        #[arg(short, long)]
        verbose: bool,
    },
    /// Check a rule set without loading anything (no privileges needed).
    ///
    /// Parses and compiles the rules as a run would, prints how many there
    /// are and each rule that can never match: one that earlier rules
    /// already decide (shadowed), or one no packet can satisfy. Exits 2 on
    /// bad rules, naming each with its FILE:LINE; 0 otherwise, warnings
    /// included.
    Check {
        /// A rule (repeatable), as for a run.
        #[arg(long = "rule", value_name = "RULE")]
        rules: Vec<String>,

        /// A file of rules, one a line.
        #[arg(long = "rules", value_name = "FILE")]
        rules_file: Option<PathBuf>,
    },
    /// Show each xdp-hello running in this network namespace (as root or
    /// its user).
    ///
    /// Its interface and mode, program and link ids, the rules in force
    /// with their hits, its counters, uptime and last reload. Exits 1 when
    /// none is running or one did not answer.
    Status {
        /// One JSON document: {"instances": [...]}.
        #[arg(short, long)]
        json: bool,
    },
}

impl Cli {
    /// Whether libbpf's messages are wanted, for the run or the selftest.
    pub fn verbose(&self) -> bool {
        match self.command {
            Some(Command::Selftest { verbose }) => verbose,
            Some(Command::Check { .. } | Command::Status { .. }) => false,
            None => self.verbose,
        }
    }

    /// The bytes the program copies of each frame: 0 unless capturing.
    pub fn capture_snaplen(&self) -> u32 {
        match self.write {
            Some(_) => self.snaplen.unwrap_or(crate::abi::MAX_SNAPLEN),
            None => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NoticeFilter {
    All,
    Denied,
    None,
}

/// Parses `--default allow|deny`: policy::Action has no clap ValueEnum, and
/// clap lists these values in the help and its errors.
fn action_parser() -> impl TypedValueParser<Value = Action> {
    // Only the possible values get this far.
    PossibleValuesParser::new(["allow", "deny"]).map(|name| match name.as_str() {
        "deny" => Action::Deny,
        _ => Action::Allow,
    })
}

/// The word `--default` takes for `action`.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Allow => "allow",
        Action::Deny => "deny",
    }
}

/// The smallest ring buffer: one page.
pub const MIN_RING_SIZE: u32 = 4096;

/// The largest ring buffer: 1 GiB, as the kernel's u32 sizes and a
/// sensible amount of locked memory allow.
pub const MAX_RING_SIZE: u32 = 1 << 30;

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

/// `127.0.0.1:9435`, `[::]:9435`: an IP address and a port, no host name
/// (a name could stand for several addresses).
fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| "not an IP address and port (e.g. 127.0.0.1:9435, [::]:9435)".to_string())
}

/// `--sample N`: a whole number from 1 (every packet) to 2^32 - 1.
fn parse_sample(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(every) if every >= 1 => Ok(every),
        _ => Err("must be a whole number of packets, at least 1 (1 in N)".to_string()),
    }
}

/// The highest `--max-rate`: a notice a nanosecond.
pub const MAX_NOTICE_RATE: u32 = 1_000_000_000;

/// `--max-rate R`: notices a second, from 1 to [`MAX_NOTICE_RATE`].
fn parse_max_rate(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(rate) if (1..=MAX_NOTICE_RATE).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "must be a whole number of notices a second, from 1 to {MAX_NOTICE_RATE}"
        )),
    }
}

/// `--snaplen`: 1 to `MAX_SNAPLEN`; 0 is the largest, as for tcpdump -s 0.
fn parse_snaplen(text: &str) -> Result<u32, String> {
    let max = crate::abi::MAX_SNAPLEN;
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(max),
        Ok(bytes) if bytes <= max as u64 => Ok(bytes as u32),
        Ok(_) => Err(format!(
            "more than a ring record holds of a packet: at most {max} bytes"
        )),
        Err(_) => Err("not a whole number of bytes".to_string()),
    }
}

/// `-c`: a whole number of notices, at least 1.
fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(count) if count >= 1 => Ok(count),
        Ok(_) => Err("must be at least 1 (notices)".to_string()),
        Err(_) => Err("not a whole number of notices".to_string()),
    }
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
        assert_eq!(cli.ifaces, ["eth0"]);
        assert_eq!(cli.mode, Mode::Auto);
        assert_eq!(cli.ring_size, 4 << 20);
        assert_eq!(cli.default, Action::Allow);
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
        assert_eq!(cli.ifaces, ["veth0"]);
        assert_eq!(cli.mode, Mode::Skb);
        assert_eq!(cli.rules, ["deny icmp", "allow src 10.1.2.3"]);
        assert_eq!(cli.rules_file, Some(PathBuf::from("r.txt")));
        assert_eq!(cli.default, Action::Deny);
        assert_eq!(cli.stats, Some(2));
        assert_eq!(cli.ring_size, 256 << 10);
        assert!(cli.verbose);
        let cli = Cli::try_parse_from(["xdp-hello", "selftest", "-v"]).unwrap();
        assert!(cli.verbose() && cli.command.is_some());
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
    fn default_actions_have_their_names() {
        assert_eq!(action_name(Action::Allow), "allow");
        assert_eq!(action_name(Action::Deny), "deny");
    }

    #[test]
    fn selftest_is_a_subcommand() {
        let cli = Cli::try_parse_from(["xdp-hello", "selftest"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Selftest { verbose: false })
        ));
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

    /// `-i` repeated and comma lists (as xdpdump takes them) give one list,
    /// in order.
    #[test]
    fn interfaces_repeat_and_list() {
        let cli =
            Cli::try_parse_from(["xdp-hello", "-i", "a", "--iface", "b,c", "-i", "d"]).unwrap();
        assert_eq!(cli.ifaces, ["a", "b", "c", "d"]);
    }

    #[test]
    fn sample_and_max_rate_parse_and_refuse_nonsense() {
        let cli =
            Cli::try_parse_from(["xdp-hello", "--sample", "10", "--max-rate", "1000"]).unwrap();
        assert_eq!((cli.sample, cli.max_rate), (Some(10), Some(1000)));
        let cli = Cli::try_parse_from(["xdp-hello"]).unwrap();
        assert_eq!((cli.sample, cli.max_rate), (None, None));
        for args in [
            &["xdp-hello", "--sample", "0"][..],
            &["xdp-hello", "--sample", "-3"],
            &["xdp-hello", "--sample", "often"],
            &["xdp-hello", "--max-rate", "0"],
            &["xdp-hello", "--max-rate", "1000000001"],
            &["xdp-hello", "--max-rate", "1.5"],
        ] {
            let err = Cli::try_parse_from(args).expect_err(&format!("{args:?} was accepted"));
            assert!(
                err.to_string().contains("must be a whole number"),
                "{args:?}: {err}"
            );
        }
    }

    /// Issue 7 item 21: `--stats -1` said "unexpected argument".
    #[test]
    fn capture_flags_parse_and_bound_the_snaplen() {
        let max = crate::abi::MAX_SNAPLEN;
        let cli = Cli::try_parse_from(["xdp-hello", "-w", "x.pcapng", "-c", "10"]).unwrap();
        assert_eq!((cli.capture_snaplen(), cli.count), (max, Some(10)));
        let cli = Cli::try_parse_from(["xdp-hello", "-w", "-", "--snaplen", "96"]).unwrap();
        assert_eq!(cli.capture_snaplen(), 96);
        let cli = Cli::try_parse_from(["xdp-hello", "-w", "-", "--snaplen", "0"]).unwrap();
        assert_eq!(cli.capture_snaplen(), max);
        assert_eq!(
            Cli::try_parse_from(["xdp-hello"])
                .unwrap()
                .capture_snaplen(),
            0
        );

        let too_big = (max + 1).to_string();
        let err = Cli::try_parse_from(["xdp-hello", "-w", "-", "--snaplen", &too_big])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 32672 bytes"), "{err}");
        for bad in [
            &["xdp-hello", "--snaplen", "100"][..],
            &["xdp-hello", "-w", "-", "-j"],
            &["xdp-hello", "-c", "0"],
            &["xdp-hello", "-c", "ten"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

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
