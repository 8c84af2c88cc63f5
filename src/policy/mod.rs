//! Firewall policies: ordered rules, and the first that matches decides.
//!
//! ```text
//! ACTION [FIELD VALUES]… [log]
//!
//! allow tcp dport 22 src 10.0.0.0/24              # SSH from the admin network only
//! deny  tcp dport 22
//! allow udp dport 53 src 192.0.2.0/24,2001:db8::/32
//! allow icmp type 0,3,8,11
//! deny  tcp flags S/SA dport 1-1023               # SYN set, ACK clear
//! deny  src 203.0.113.0/24 log
//! ```
//!
//! Every field is optional; the fields of a rule combine with AND, the items
//! of a list with OR. `--default` decides when no rule matches. Everything
//! that is not IP (ARP, LLDP, …) passes.
//!
//! Fail closed: where the walk could not read a field a rule asks about (a
//! transport header cut short, a non-first fragment, an extension chain past
//! the limit), a deny rule counts as matching on that field and an allow rule
//! as not: such a packet never gets past a deny by reaching a later allow.

pub mod evaluate;
mod parse;
mod print;
mod protocols;
mod quote;
mod read;

use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;

use crate::abi;

pub(crate) use protocols::protocols;
pub use protocols::Protocols;
pub use quote::quote;
pub use read::{
    load, load_reading_on, parse_flags, parse_lines, read_file, OnBadRule, Unparsed,
    MAX_FILE_BYTES, MAX_FILE_SIZE,
};

/// The most rules one set may hold (flags and file together). Both
/// generations must be able to hold a full set at once while one replaces
/// the other, so this is half of what the maps hold.
pub const MAX_RULES_PER_SET: usize = (abi::MAX_RULES / abi::GENERATIONS) as usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Deny,
}

/// Ports from the first to the last, both included.
pub type PortRange = RangeInclusive<u16>;
/// ICMP types or codes from the first to the last, both included.
pub type ByteRange = RangeInclusive<u8>;

/// `flags VALUE/MASK` (pf's syntax): of the TCP flags in `mask`, exactly
/// those in `value` are set. Bit 0 is FIN, as in `abi::tcp_flag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    pub value: u8,
    pub mask: u8,
}

/// What a rule asks of a packet; `None` is "any". The parser guarantees:
/// every list has at least one item; ports only with protocols ⊆ {tcp, udp};
/// ICMP types and codes only with protocols ⊆ {icmp, icmpv6}; flags only with
/// tcp alone; no protocol is an extension header the walk looks through;
/// networks have no host bits set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Matches {
    /// IP protocol numbers: `tcp`, `proto esp,47`, …
    pub protos: Option<Vec<u8>>,
    /// Source networks, IPv4 and IPv6 in one list.
    pub src: Option<Vec<IpNet>>,
    pub dst: Option<Vec<IpNet>>,
    pub sport: Option<Vec<PortRange>>,
    pub dport: Option<Vec<PortRange>>,
    pub icmp_types: Option<Vec<ByteRange>>,
    pub icmp_codes: Option<Vec<ByteRange>>,
    pub tcp_flags: Option<TcpFlags>,
    /// `on IFACE`: only packets that arrive on this interface.
    pub iface: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub action: Action,
    pub matches: Matches,
    /// `log`: a notice for every packet this rule decides, whatever
    /// `--notices` says.
    pub log: bool,
}

/// Where a rule was written, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The n-th `--rule` (from 1).
    Flag(usize),
    /// A line (from 1) of a rules file.
    File(Arc<Path>, usize),
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

impl AsRef<Rule> for Rule {
    fn as_ref(&self) -> &Rule {
        self
    }
}

impl AsRef<Rule> for SourcedRule {
    fn as_ref(&self) -> &Rule {
        &self.rule
    }
}

/// A rule that failed to parse, or a set that cannot be compiled: exit
/// status 2.
#[derive(Debug)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

/// `text` as a rule, for the tests of every part.
#[cfg(test)]
fn rule(text: &str) -> Rule {
    text.parse().unwrap_or_else(|e| panic!("'{text}': {e}"))
}
