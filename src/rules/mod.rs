//! Firewall rules: their types, and a checked set loaded from `--rule` flags
//! and a rules file. The language, the same in both:
//!
//! ```text
//! allow|deny src|dst ADDRESS[/PREFIX]        IPv4 or IPv6, host or CIDR
//! allow|deny tcp|udp sport|dport PORT[-PORT]
//! allow|deny icmp|icmpv6 [type N]
//! allow|deny proto NAME|NUMBER               an IP protocol: esp, gre, 47, …
//! ```
//!
//! A rule matches one thing. For each kind (source address, destination
//! address, source port, destination port, ICMP type, protocol) the most
//! specific rule that matches counts: the longest prefix, the exact ICMP type
//! before "any". A deny among those wins, else an allow, else the default
//! policy. Rules apply to IPv4 and IPv6; everything else (ARP, …) always
//! passes.

mod check;
mod parse;
mod read;

use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::abi;
use crate::policy::protocols;

pub use crate::policy::{quote, Protocols};
pub use check::check_clashes;
pub use read::{parse_flags, parse_lines, read_file, MAX_FILE_BYTES, MAX_FILE_SIZE};

/// The most rules one set may hold (flags and file together). Both
/// generations must be able to hold a full set at once while one replaces
/// the other, so this is half of what the maps hold.
pub const MAX_RULES_PER_SET: usize = (abi::MAX_RULES / abi::GENERATIONS) as usize;

/// A rule that failed to parse or clashes with another: exit status 2.
#[derive(Debug)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Src,
    Dst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Match {
    Address(Direction, IpNet),
    /// The ports from `first` to `last`, both included.
    Port {
        transport: Transport,
        direction: Direction,
        first: u16,
        last: u16,
    },
    /// ICMP (ICMPv6 where `v6`) of one type, or of any (`None`).
    Icmp {
        v6: bool,
        icmp_type: Option<u8>,
    },
    /// An IP protocol number (never an extension header the walk looks
    /// through).
    Proto(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub action: Action,
    pub matches: Match,
}

/// Where a rule was written, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The n-th `--rule` (from 1).
    Flag(usize),
    /// A line (from 1) of a rules file.
    File(PathBuf, usize),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "--rule #{n}"),
            Origin::File(path, line) => write!(f, "{}:{line}", path.display()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcedRule {
    pub rule: Rule,
    pub origin: Origin,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Allow => "allow",
            Action::Deny => "deny",
        };
        match self.matches {
            Match::Address(dir, net) => {
                // Hosts are written without their /32 or /128.
                if net.prefix_len() == net.max_prefix_len() {
                    write!(f, "{action} {} {}", dir, net.addr())
                } else {
                    write!(f, "{action} {dir} {net}")
                }
            }
            Match::Port {
                transport,
                direction,
                first,
                last,
            } => {
                let dir = match direction {
                    Direction::Src => "sport",
                    Direction::Dst => "dport",
                };
                if first == last {
                    write!(f, "{action} {transport} {dir} {first}")
                } else {
                    write!(f, "{action} {transport} {dir} {first}-{last}")
                }
            }
            Match::Icmp { v6, icmp_type } => {
                let proto = if v6 { "icmpv6" } else { "icmp" };
                match icmp_type {
                    Some(icmp_type) => write!(f, "{action} {proto} type {icmp_type}"),
                    None => write!(f, "{action} {proto}"),
                }
            }
            Match::Proto(number) => match protocols().name(number) {
                Some(name) => write!(f, "{action} proto {name}"),
                None => write!(f, "{action} proto {number}"),
            },
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Src => "src",
            Direction::Dst => "dst",
        })
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// All rules from the flags, then the file, checked for size and clashes.
pub fn load(flags: &[String], file: Option<&Path>) -> Result<Vec<SourcedRule>, RuleError> {
    let mut rules = parse_flags(flags)?;
    if let Some(path) = file {
        rules.extend(read_file(path)?);
    }
    if rules.len() > MAX_RULES_PER_SET {
        let from = match file {
            Some(path) if flags.is_empty() => path.display().to_string(),
            Some(path) => format!("{} and --rule", path.display()),
            None => "--rule".to_string(),
        };
        return Err(RuleError(format!(
            "{from}: {} rules, more than the {MAX_RULES_PER_SET} a rule set may hold; \
             merge address rules into wider prefixes or port rules into ranges",
            rules.len()
        )));
    }
    check_clashes(&rules)?;
    Ok(rules)
}

/// `text` as a rule, for the tests of every part.
#[cfg(test)]
fn rule(text: &str) -> Rule {
    text.parse().unwrap_or_else(|e| panic!("'{text}': {e}"))
}
