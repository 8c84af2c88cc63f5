//! The rule language, the same on the command line and in a rules file:
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

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ipnet::{IpNet, Ipv4Net};

use crate::abi;

/// The most rules one set may hold (flags and file together). Both
/// generations must be able to hold a full set at once while one replaces
/// the other, so this is half of what the maps hold.
pub const MAX_RULES_PER_SET: usize = (abi::MAX_RULES / abi::GENERATIONS) as usize;

/// The most a rules file may hold, in bytes: far more than a full set in
/// any spelling, and a stop for `--rules /dev/zero`.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// `MAX_FILE_BYTES` as messages and the README say it.
pub const MAX_FILE_SIZE: &str = "16 MiB";

/// How much of the user's input a message echoes, in characters.
const SHOWN_CHARS: usize = 80;

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
    /// An inclusive port range.
    Port(Transport, Direction, u16, u16),
    /// `v6`, and the ICMP type (`None`: any).
    Icmp(bool, Option<u8>),
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
            Match::Port(transport, dir, lo, hi) => {
                let dir = match dir {
                    Direction::Src => "sport",
                    Direction::Dst => "dport",
                };
                if lo == hi {
                    write!(f, "{action} {transport} {dir} {lo}")
                } else {
                    write!(f, "{action} {transport} {dir} {lo}-{hi}")
                }
            }
            Match::Icmp(v6, kind) => {
                let proto = if v6 { "icmpv6" } else { "icmp" };
                match kind {
                    Some(kind) => write!(f, "{action} {proto} type {kind}"),
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

impl std::str::FromStr for Rule {
    type Err = String;

    /// Parses one rule; the error says what was expected.
    fn from_str(text: &str) -> Result<Rule, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let action = match words.first() {
            Some(&"allow") => Action::Allow,
            Some(&"deny") => Action::Deny,
            Some(other) => {
                return Err(format!(
                    "starts with {}; a rule starts with allow or deny",
                    quote(other)
                ))
            }
            None => return Err("empty rule".into()),
        };
        let matches = parse_match(&words[1..])?;
        Ok(Rule { action, matches })
    }
}

/// What follows the action: one thing to match, and nothing after it.
fn parse_match(words: &[&str]) -> Result<Match, String> {
    let Some((&what, rest)) = words.split_first() else {
        return Err(format!(
            "nothing to match after the action; expected {FORMS}"
        ));
    };
    // The match, how many words after `what` it took, and what to call
    // them if more follow.
    let (matches, used, taken) = match what {
        "src" | "dst" => {
            let net = rest.first().ok_or_else(|| {
                format!("{what} needs an address after it, e.g. deny {what} 10.0.0.0/8")
            })?;
            (
                Match::Address(direction(what), parse_net(net)?),
                1,
                "the address",
            )
        }
        "tcp" | "udp" => {
            let transport = if what == "tcp" {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            let dir = match rest.first() {
                Some(&"sport") => Direction::Src,
                Some(&"dport") => Direction::Dst,
                Some(other) => {
                    return Err(format!(
                        "expected sport or dport after {what}, found {}",
                        quote(other)
                    ))
                }
                None => {
                    return Err(format!(
                        "{what} needs sport or dport and a port, e.g. deny {what} dport 22 \
                         (deny proto {what} matches all of it)"
                    ))
                }
            };
            let ports = rest.get(1).ok_or_else(|| {
                format!(
                    "{} needs a port or a range after it, e.g. {what} {} 22 or 8000-8080",
                    rest[0], rest[0]
                )
            })?;
            let (lo, hi) = parse_ports(ports)?;
            (Match::Port(transport, dir, lo, hi), 2, "the ports")
        }
        "icmp" | "icmpv6" => {
            let v6 = what == "icmpv6";
            match rest.first() {
                None => (Match::Icmp(v6, None), 0, what),
                Some(&"type") => {
                    let kind = rest.get(1).ok_or_else(|| {
                        format!(
                            "type needs a number from 0 to 255 after it, e.g. deny {what} type 8"
                        )
                    })?;
                    let kind = decimal::<u8>(kind).ok_or_else(|| {
                        format!("ICMP type {} is not a number from 0 to 255", quote(kind))
                    })?;
                    (Match::Icmp(v6, Some(kind)), 2, "the ICMP type")
                }
                Some(other) => {
                    return Err(format!(
                        "expected `type N` or nothing after {what}, found {}",
                        quote(other)
                    ))
                }
            }
        }
        "proto" => {
            let proto = rest.first().ok_or_else(|| {
                "proto needs a protocol name or number after it, e.g. deny proto esp".to_string()
            })?;
            (Match::Proto(parse_protocol(proto)?), 1, "the protocol")
        }
        other => {
            return Err(format!(
                "expected {FORMS} after the action, found {}",
                quote(other)
            ))
        }
    };
    match rest.get(used) {
        Some(extra) => Err(format!(
            "unexpected {} after {taken}; a rule matches one thing",
            quote(extra)
        )),
        None => Ok(matches),
    }
}

/// The forms a rule can take after its action, for messages.
const FORMS: &str = "`src|dst ADDRESS[/PREFIX]`, `tcp|udp sport|dport PORT[-PORT]`, \
                     `icmp|icmpv6 [type N]` or `proto NAME|NUMBER`";

fn direction(word: &str) -> Direction {
    if word == "src" {
        Direction::Src
    } else {
        Direction::Dst
    }
}

/// A number written in decimal digits only: no sign, no spaces.
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A host or a network; host bits set under the prefix are an error, since
/// they usually mean a typo.
fn parse_net(text: &str) -> Result<IpNet, String> {
    let net = match text.parse::<IpAddr>() {
        Ok(addr) => IpNet::from(addr),
        Err(_) => text
            .parse::<IpNet>()
            .map_err(|_| format!("{} is not an IPv4 or IPv6 address or network", quote(text)))?,
    };
    // IPv4 packets never carry an IPv4-mapped IPv6 address (::ffff:0:0/96):
    // such a rule would match nothing. Say what the IPv4 rule is.
    if let Some(v4) = mapped_v4(net) {
        let advice = if v4.prefix_len() == 32 {
            v4.addr().to_string()
        } else {
            v4.trunc().to_string()
        };
        return Err(format!(
            "{} is an IPv4-mapped address, which packets never carry: write {advice}",
            quote(text)
        ));
    }
    if net.trunc() != net {
        return Err(format!(
            "{} has host bits set; did you mean {}?",
            quote(text),
            net.trunc()
        ));
    }
    Ok(net)
}

/// The IPv4 network an IPv4-mapped IPv6 network stands for: only a prefix
/// of /96 or longer lies wholly inside ::ffff:0:0/96.
fn mapped_v4(net: IpNet) -> Option<Ipv4Net> {
    let IpNet::V6(v6) = net else { return None };
    let v4: Ipv4Addr = v6.addr().to_ipv4_mapped()?;
    let prefix = v6.prefix_len().checked_sub(96)?;
    Ipv4Net::new(v4, prefix).ok()
}

fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| {
        decimal::<u16>(p).ok_or_else(|| format!("{} is not a port from 0 to 65535", quote(p)))
    };
    let (lo, hi) = match text.split_once('-') {
        None => (port(text)?, port(text)?),
        Some(("", _)) => {
            return Err(format!(
                "{} is not a port: ports run from 0 to 65535",
                quote(text)
            ))
        }
        Some((_, "")) => {
            return Err(format!(
                "port range {} has no last port; write FIRST-LAST, e.g. 1-1024",
                quote(text)
            ))
        }
        Some((_, hi)) if hi.contains('-') => {
            return Err(format!(
                "{} is not a port range; write FIRST-LAST, e.g. 1-1024",
                quote(text)
            ))
        }
        Some((lo, hi)) => (port(lo)?, port(hi)?),
    };
    if lo > hi {
        return Err(format!("port range {lo}-{hi} runs backwards"));
    }
    Ok((lo, hi))
}

/// An IP protocol by name or number. Extension headers are refused: the
/// walk looks through them, so a packet never shows one as its protocol.
fn parse_protocol(text: &str) -> Result<u8, String> {
    let number = match decimal::<u8>(text) {
        Some(number) => number,
        None if text.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!(
                "protocol {} is not a number from 0 to 255",
                quote(text)
            ))
        }
        None => protocols().number(text).ok_or_else(|| {
            format!(
                "unknown protocol {}; write a name such as tcp, udp, icmp, icmpv6, gre, esp, \
                 sctp, udplite (or one from /etc/protocols), or a number from 0 to 255",
                quote(text)
            )
        })?,
    };
    if abi::is_extension_header(4, number) || abi::is_extension_header(6, number) {
        let why = if number == abi::IPPROTO_AH {
            "an authentication header (AH), which the walk looks through in IPv4 and IPv6"
        } else {
            "an IPv6 extension header, which the walk looks through"
        };
        return Err(format!(
            "protocol {} ({number}) is {why}: a rule sees the protocol behind it, so match \
             that one (e.g. deny proto esp, deny tcp dport 22)",
            quote(text)
        ));
    }
    Ok(number)
}

/// IP protocol names: ours first (the names rules print), then those of
/// /etc/protocols if the machine has one.
pub struct Protocols {
    names: Vec<(String, u8)>,
}

/// The names rules know without /etc/protocols, and print numbers as.
const BUILT_IN_PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", abi::IPPROTO_ICMP),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", abi::IPPROTO_TCP),
    ("udp", abi::IPPROTO_UDP),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", abi::IPPROTO_ESP),
    ("icmpv6", abi::IPPROTO_ICMPV6),
    ("ipv6-icmp", abi::IPPROTO_ICMPV6),
    ("ipv6-nonxt", 59),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
    ("udplite", 136),
    // Known so that a rule naming one is refused for the right reason.
    ("hopopt", abi::IPPROTO_HOPOPTS),
    ("ipv6-route", abi::IPPROTO_ROUTING),
    ("ipv6-frag", abi::IPPROTO_FRAGMENT),
    ("ah", abi::IPPROTO_AH),
    ("ipv6-opts", abi::IPPROTO_DSTOPTS),
];

impl Protocols {
    /// The built-in names, then those of `etc_protocols` (the text of an
    /// /etc/protocols: `name number aliases… # comment`).
    pub fn new(etc_protocols: Option<&str>) -> Protocols {
        let mut names: Vec<(String, u8)> = BUILT_IN_PROTOCOLS
            .iter()
            .map(|&(name, number)| (name.to_string(), number))
            .collect();
        for line in etc_protocols.unwrap_or("").lines() {
            let mut fields = without_comment(line).split_whitespace();
            let (Some(name), Some(number)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some(number) = decimal::<u8>(number) else {
                continue;
            };
            for name in std::iter::once(name).chain(fields) {
                names.push((name.to_ascii_lowercase(), number));
            }
        }
        Protocols { names }
    }

    /// The number of protocol `name` (any case).
    pub fn number(&self, name: &str) -> Option<u8> {
        let name = name.to_ascii_lowercase();
        self.names
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, number)| number)
    }

    /// The name protocol `number` is printed as.
    pub fn name(&self, number: u8) -> Option<&str> {
        self.names
            .iter()
            .find(|&&(_, known)| known == number)
            .map(|(name, _)| name.as_str())
    }
}

/// The machine's protocol names, read once.
fn protocols() -> &'static Protocols {
    static PROTOCOLS: OnceLock<Protocols> = OnceLock::new();
    PROTOCOLS
        .get_or_init(|| Protocols::new(std::fs::read_to_string("/etc/protocols").ok().as_deref()))
}

/// `text` as a message echoes it: in quotes, cut to about 80 characters,
/// with NUL, control and other invisible characters escaped (`\0`, `\u{1b}`,
/// `\u{200b}`), so that what the user sees is what the file holds.
pub fn quote(text: &str) -> String {
    let mut shown = String::from("'");
    let mut chars = 0;
    for c in text.chars() {
        if chars >= SHOWN_CHARS {
            shown.push('…');
            break;
        }
        let before = shown.len();
        match c {
            '\'' | '"' | ' ' => shown.push(c),
            c if c.is_whitespace() && !c.is_ascii() => shown.extend(c.escape_unicode()),
            c => shown.extend(c.escape_debug()),
        }
        chars += shown[before..].chars().count();
    }
    shown.push('\'');
    shown
}

/// The rule before any `#` comment, trimmed.
fn without_comment(text: &str) -> &str {
    text.split('#').next().unwrap_or("").trim()
}

/// One line of a rules file (from 1); `None` for a blank or comment line.
fn parse_line(line: &str, path: &Path, number: usize) -> Result<Option<SourcedRule>, RuleError> {
    let content = without_comment(line);
    if content.is_empty() {
        return Ok(None);
    }
    let origin = Origin::File(path.to_path_buf(), number);
    let rule = content
        .parse()
        .map_err(|why| RuleError(format!("{origin}: bad rule {}: {why}", quote(content))))?;
    Ok(Some(SourcedRule { rule, origin }))
}

/// Reads the rules of a file: one a line, `#` comments, blank lines, UTF-8
/// (a byte-order mark is fine), at most [`MAX_FILE_SIZE`]. Reads line by
/// line, so `/dev/urandom` fails at its first line and `/dev/zero` at the
/// cap.
pub fn read_file(path: &Path) -> Result<Vec<SourcedRule>, RuleError> {
    let cannot = |err: std::io::Error| {
        RuleError(format!("cannot read rules file {}: {err}", path.display()))
    };
    let file = File::open(path).map_err(cannot)?;
    let mut reader = BufReader::new(file.take(MAX_FILE_BYTES + 1));
    let mut rules = Vec::new();
    let (mut bytes, mut total, mut number) = (Vec::new(), 0u64, 0);
    loop {
        bytes.clear();
        let read = reader.read_until(b'\n', &mut bytes).map_err(cannot)?;
        if read == 0 {
            return Ok(rules);
        }
        total += read as u64;
        if total > MAX_FILE_BYTES {
            return Err(RuleError(format!(
                "rules file {} is larger than {MAX_FILE_SIZE}, the most a rules file may hold \
                 ({MAX_RULES_PER_SET} rules fit in far less); is it the right file?",
                path.display()
            )));
        }
        number += 1;
        let line = std::str::from_utf8(&bytes).map_err(|err| {
            RuleError(format!(
                "{}:{number}: not UTF-8 text (byte {} of the line); a rules file is text, \
                 one rule a line",
                path.display(),
                err.valid_up_to() + 1
            ))
        })?;
        let line = if number == 1 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        rules.extend(parse_line(line, path, number)?);
    }
}

/// The rules in `text`, as if read from `path`.
pub fn parse_lines(text: &str, path: &Path) -> Result<Vec<SourcedRule>, RuleError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        rules.extend(parse_line(line, path, index + 1)?);
    }
    Ok(rules)
}

/// The rules given with `--rule`.
pub fn parse_flags(texts: &[String]) -> Result<Vec<SourcedRule>, RuleError> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let origin = Origin::Flag(index + 1);
            let rule = without_comment(text)
                .parse()
                .map_err(|why| RuleError(format!("{origin}: bad rule {}: {why}", quote(text))))?;
            Ok(SourcedRule { rule, origin })
        })
        .collect()
}

/// Fails on a rule given twice, or on two rules claiming the same thing
/// (the same prefix, an overlapping port range, the same ICMP type or
/// protocol).
pub fn check_clashes(rules: &[SourcedRule]) -> Result<(), RuleError> {
    let mut seen: HashMap<Match, &SourcedRule> = HashMap::new();
    for rule in rules {
        if let Some(earlier) = seen.get(&rule.rule.matches) {
            return Err(clash(earlier, rule));
        }
        seen.insert(rule.rule.matches, rule);
    }
    // Port ranges own every port they cover: overlaps are clashes too.
    let mut ranges: Vec<(&SourcedRule, Transport, Direction, u16, u16)> = rules
        .iter()
        .filter_map(|r| match r.rule.matches {
            Match::Port(t, d, lo, hi) => Some((r, t, d, lo, hi)),
            _ => None,
        })
        .collect();
    ranges.sort_by_key(|&(_, t, d, lo, _)| (t as u8, d as u8, lo));
    for pair in ranges.windows(2) {
        let (a, ta, da, _, a_hi) = pair[0];
        let (b, tb, db, b_lo, _) = pair[1];
        if ta == tb && da == db && b_lo <= a_hi {
            return Err(clash(a, b));
        }
    }
    Ok(())
}

fn clash(earlier: &SourcedRule, later: &SourcedRule) -> RuleError {
    let what = if earlier.rule == later.rule {
        "duplicates"
    } else if earlier.rule.action == later.rule.action {
        "overlaps"
    } else {
        "conflicts with"
    };
    RuleError(format!(
        "{}: '{}' {what} '{}' ({}); keep one",
        later.origin, later.rule, earlier.rule, earlier.origin
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn rule(text: &str) -> Rule {
        text.parse().unwrap_or_else(|e| panic!("'{text}': {e}"))
    }

    fn error(text: &str) -> String {
        text.parse::<Rule>()
            .expect_err(&format!("'{text}' was accepted"))
    }

    /// A file of the test's own with `bytes` in it, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, bytes: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "xdp-hello-rules-{}-{name}.rules",
                std::process::id()
            ));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `job`'s result, or a failure if it takes more than 10 s (the thread
    /// goes on, but the test has failed).
    fn within_10s<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(job());
        });
        result
            .recv_timeout(Duration::from_secs(10))
            .expect("still at it after 10 s")
    }

    #[test]
    fn every_documented_form_parses_and_prints_back() {
        for text in [
            "deny src 10.0.0.0/8",
            "allow src 10.1.2.3",
            "deny dst 2001:db8::/32",
            "allow dst 2001:db8::1",
            "deny tcp dport 22",
            "deny udp sport 53",
            "allow tcp dport 8000-8080",
            "deny icmp",
            "deny icmpv6 type 128",
            "deny proto esp",
            "deny proto gre",
            "deny proto sctp",
            "allow proto udplite",
            "deny proto tcp",
            "deny proto 253",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
    }

    #[test]
    fn parsed_fields_are_right() {
        assert_eq!(
            rule("allow tcp dport 8000-8080"),
            Rule {
                action: Action::Allow,
                matches: Match::Port(Transport::Tcp, Direction::Dst, 8000, 8080)
            }
        );
        assert_eq!(
            rule("deny src 10.1.2.3").matches,
            Match::Address(Direction::Src, "10.1.2.3/32".parse().unwrap())
        );
        assert_eq!(
            rule("deny icmpv6 type 128").matches,
            Match::Icmp(true, Some(128))
        );
        assert_eq!(rule("  deny   icmp ").matches, Match::Icmp(false, None));
    }

    #[test]
    fn protocol_rules_take_names_and_numbers() {
        for (text, number) in [
            ("deny proto esp", 50),
            ("deny proto ESP", 50),
            ("allow proto 47", 47),
            ("deny proto gre", 47),
            ("deny proto sctp", 132),
            ("deny proto tcp", 6),
            ("deny proto udp", 17),
            ("deny proto icmp", 1),
            ("deny proto icmpv6", 58),
            ("deny proto ipv6-icmp", 58),
            ("deny proto udplite", 136),
            ("deny proto 0059", 59),
        ] {
            assert_eq!(rule(text).matches, Match::Proto(number), "{text}");
        }
        // Numbers print by name where there is one.
        assert_eq!(rule("allow proto 47").to_string(), "allow proto gre");
        assert_eq!(rule("deny proto 58").to_string(), "deny proto icmpv6");
    }

    #[test]
    fn protocol_names_come_from_etc_protocols_too() {
        let table = Protocols::new(Some(
            "# Internet (IP) protocols\n\
             ip\t0\tIP\t\t# internet protocol\n\
             ospf\t89\tOSPFIGP\t\t# Open Shortest Path First\n\
             mobility-header 135 Mobility-Header\n\
             broken\n\
             toobig 300\n",
        ));
        assert_eq!(table.number("ospfigp"), Some(89));
        assert_eq!(table.number("mobility-header"), Some(135));
        assert_eq!(table.number("toobig"), None);
        // Ours come first, for names and for printing.
        assert_eq!(table.number("esp"), Some(50));
        assert_eq!(table.name(0), Some("hopopt"));
        assert_eq!(table.name(135), Some("mobility-header"));
        // Without the file, the built-in names still work.
        let bare = Protocols::new(None);
        assert_eq!(bare.number("sctp"), Some(132));
        assert_eq!(bare.number("mobility-header"), None);
        assert_eq!(bare.name(135), None);
        // And the machine's own file, where there is one.
        if let Ok(text) = std::fs::read_to_string("/etc/protocols") {
            let machine = Protocols::new(Some(&text));
            if let Some(number) = machine.number("rsvp") {
                assert_eq!(rule("deny proto rsvp").matches, Match::Proto(number));
            }
        }
    }

    #[test]
    fn extension_headers_are_refused_as_protocols_saying_why() {
        for text in [
            "deny proto ah",
            "deny proto 51",
            "deny proto 0",
            "deny proto hopopt",
            "deny proto 43",
            "deny proto 44",
            "deny proto ipv6-frag",
            "deny proto 60",
        ] {
            let err = error(text);
            assert!(
                err.contains("looks through") && err.contains("a rule sees the protocol behind it"),
                "'{text}' gave '{err}'"
            );
        }
        assert!(error("deny proto ah").contains("authentication header (AH)"));
        assert!(error("deny proto 44").contains("IPv6 extension header"));
    }

    #[test]
    fn bad_protocols_say_why() {
        for (text, why) in [
            ("deny proto", "proto needs a protocol name or number"),
            ("deny proto 256", "'256' is not a number from 0 to 255"),
            ("deny proto quic", "unknown protocol 'quic'"),
            ("deny proto +47", "unknown protocol '+47'"),
            ("deny proto esp 50", "unexpected '50' after the protocol"),
        ] {
            let err = error(text);
            assert!(err.contains(why), "'{text}' gave '{err}', wanted '{why}'");
        }
    }

    #[test]
    fn bad_rules_say_why() {
        for (text, why) in [
            ("", "empty rule"),
            ("block src 10.0.0.1", "starts with 'block'"),
            ("deny", "nothing to match"),
            ("deny src 10.0.0.0/33", "not an IPv4 or IPv6"),
            ("deny src 10.1.2.3/8", "did you mean 10.0.0.0/8"),
            ("deny src example.com", "not an IPv4 or IPv6"),
            ("deny tcp port 22", "expected sport or dport"),
            ("deny tcp dport 22 80", "unexpected '80' after the ports"),
            (
                "deny src 10.0.0.1 10.0.0.2",
                "unexpected '10.0.0.2' after the address",
            ),
            (
                "deny icmp code 3",
                "expected `type N` or nothing after icmp",
            ),
            ("deny icmpv6 type 1 2", "unexpected '2' after the ICMP type"),
            ("deny src ::ffff:10.0.0.1", "write 10.0.0.1"),
            ("deny tcp dport 70000", "not a port"),
            ("deny tcp dport 90-80", "runs backwards"),
            ("deny icmp type 300", "not a number from 0 to 255"),
            ("deny src 10.0.0.1 dport 22", "a rule matches one thing"),
            ("deny ssh", "expected `src|dst"),
        ] {
            let err = error(text);
            assert!(err.contains(why), "'{text}' gave '{err}', wanted '{why}'");
        }
    }

    #[test]
    fn parse_errors_name_what_is_wrong_or_missing() {
        for (text, why) in [
            ("deny tcp dport -5", "'-5' is not a port"),
            ("deny udp sport 1-", "port range '1-' has no last port"),
            ("deny udp sport 1-2-3", "'1-2-3' is not a port range"),
            ("deny icmp type", "type needs a number from 0 to 255"),
            ("deny tcp", "tcp needs sport or dport and a port"),
            ("deny udp", "udp needs sport or dport and a port"),
            ("deny tcp dport", "dport needs a port or a range"),
            ("deny src", "src needs an address"),
            ("deny tcp dport +22", "'+22' is not a port"),
            ("deny tcp dport 22-+30", "'+30' is not a port"),
            ("deny icmp type +8", "ICMP type '+8' is not a number"),
        ] {
            let err = error(text);
            assert!(err.contains(why), "'{text}' gave '{err}', wanted '{why}'");
            assert!(!err.contains("''"), "'{text}' echoes nothing: '{err}'");
        }
    }

    #[test]
    fn mapped_address_advice_keeps_the_prefix() {
        for (text, advice) in [
            ("deny src ::ffff:10.0.0.0/104", "write 10.0.0.0/8"),
            ("deny src ::ffff:0:0/96", "write 0.0.0.0/0"),
            ("deny dst ::ffff:192.0.2.0/120", "write 192.0.2.0/24"),
            ("deny src ::ffff:10.0.0.1/128", "write 10.0.0.1"),
            ("deny src ::ffff:10.0.0.1", "write 10.0.0.1"),
        ] {
            let err = error(text);
            assert!(
                err.ends_with(advice),
                "'{text}' gave '{err}', wanted '{advice}'"
            );
        }
        // Shorter than /96 it is no mapped network, just host bits.
        assert!(error("deny src ::ffff:0:0/80").contains("did you mean ::/80?"));
        rule("deny src ::/80");
    }

    #[test]
    fn echoed_input_is_cut_short() {
        let huge = "A".repeat(10_000_000);
        let text = format!("deny src {huge}\n");
        let err = parse_lines(&text, Path::new("fw.rules")).unwrap_err().0;
        assert!(
            err.len() < 400,
            "a {}-byte message: {}…",
            err.len(),
            &err[..200]
        );
        assert!(
            err.contains(&format!("'deny src {}…'", "A".repeat(71))),
            "{err}"
        );
        // A short rule is shown whole.
        let err = parse_lines("deny src x\n", Path::new("fw.rules"))
            .unwrap_err()
            .0;
        assert!(err.contains("bad rule 'deny src x'"), "{err}");
        let err = parse_flags(&[format!("deny tcp dport {huge}")])
            .unwrap_err()
            .0;
        assert!(err.len() < 400, "a {}-byte message", err.len());
    }

    #[test]
    fn invisible_characters_are_escaped_and_a_bom_is_accepted() {
        let rules = parse_lines("\u{feff}deny icmp\n", Path::new("fw.rules")).unwrap();
        assert_eq!(rules[0].rule, rule("deny icmp"));
        let file = TempFile::new("bom", b"\xef\xbb\xbfdeny icmp\r\nallow src 10.0.0.1\r\n");
        let rules = read_file(&file.0).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].rule, rule("allow src 10.0.0.1"));

        for (text, shown) in [
            ("deny\0src 10.0.0.1", "'deny\\0src 10.0.0.1'"),
            (
                "deny src 10.0.0.\u{1b}[31m1",
                "'deny src 10.0.0.\\u{1b}[31m1'",
            ),
            ("deny src 10.0.\u{200b}0.1", "'deny src 10.0.\\u{200b}0.1'"),
            ("deny src 10.0.0.1\u{202e}", "'deny src 10.0.0.1\\u{202e}'"),
            ("\u{feff}deny icmp", "'\\u{feff}deny icmp'"),
            ("deny\u{a0}src\tx", "'deny\\u{a0}src\\tx'"),
        ] {
            let err = parse_lines(&format!("# one\n{text}\n"), Path::new("fw.rules"))
                .unwrap_err()
                .0;
            assert!(err.contains(shown), "{err:?} should show {shown}");
            assert!(
                !err.chars().any(|c| c.is_control()
                    || matches!(c, '\u{200b}' | '\u{202e}' | '\u{feff}' | '\u{a0}')),
                "raw invisible characters in {err:?}"
            );
        }
    }

    #[test]
    fn rules_files_are_read_up_to_a_cap() {
        let err = within_10s(|| read_file(Path::new("/dev/zero")).unwrap_err().0);
        assert!(err.contains("/dev/zero is larger than 16 MiB"), "{err}");
        let err = within_10s(|| read_file(Path::new("/dev/urandom")).unwrap_err().0);
        assert!(
            err.starts_with("/dev/urandom:") && err.contains("not UTF-8"),
            "{err}"
        );
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_line_number() {
        let file = TempFile::new("latin1", b"deny icmp\n# caf\xe9\ndeny udp dport 53\n");
        let err = read_file(&file.0).unwrap_err().0;
        assert_eq!(
            err,
            format!(
                "{}:2: not UTF-8 text (byte 6 of the line); a rules file is text, one rule a line",
                file.0.display()
            )
        );
    }

    #[test]
    fn a_set_larger_than_the_limit_is_refused_naming_the_file_and_the_limit() {
        let host = |i: u32| format!("deny src 10.{}.{}.{}\n", i >> 16, (i >> 8) & 255, i & 255);
        let text: String = (0..100_000).map(host).collect();
        let file = TempFile::new("100k", text.as_bytes());
        let err = load(&[], Some(&file.0)).unwrap_err().0;
        assert_eq!(
            err,
            format!(
                "{}: 100000 rules, more than the 65536 a rule set may hold; merge address \
                 rules into wider prefixes or port rules into ranges",
                file.0.display()
            )
        );
        // Exactly the limit fits, flags counted with the file.
        let text: String = (0..MAX_RULES_PER_SET as u32 - 1).map(host).collect();
        let file = TempFile::new("64k", text.as_bytes());
        assert_eq!(
            load(&["deny icmp".into()], Some(&file.0)).unwrap().len(),
            MAX_RULES_PER_SET
        );
        let err = load(&["deny icmp".into(), "deny udp".into()], Some(&file.0));
        assert!(err.unwrap_err().0.contains("udp needs sport or dport"));
        let err = load(
            &["deny icmp".into(), "deny proto gre".into()],
            Some(&file.0),
        );
        assert!(err.unwrap_err().0.contains("and --rule: 65537 rules"));
    }

    #[test]
    fn files_skip_comments_and_blank_lines_and_keep_line_numbers() {
        let text = "# a rules file\n\ndeny src 10.0.0.0/8   # the lab\n  \nallow src 10.1.2.3\n";
        let rules = parse_lines(text, Path::new("fw.rules")).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].origin, Origin::File("fw.rules".into(), 3));
        assert_eq!(rules[1].origin, Origin::File("fw.rules".into(), 5));
        assert_eq!(rules[1].rule, rule("allow src 10.1.2.3"));
        let file = TempFile::new("lines", text.as_bytes());
        assert_eq!(
            read_file(&file.0).unwrap(),
            parse_lines(text, &file.0).unwrap()
        );
    }

    #[test]
    fn comments_work_on_the_command_line_too() {
        let rules = parse_flags(&["deny tcp dport 22   # ssh".into()]).unwrap();
        assert_eq!(rules[0].rule, rule("deny tcp dport 22"));
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let err =
            parse_lines("deny icmp\n\ndeny tcp dport x\n", Path::new("fw.rules")).unwrap_err();
        assert!(
            err.0.starts_with("fw.rules:3: bad rule 'deny tcp dport x'"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_a_rule_error() {
        let err = read_file(Path::new("/nonexistent/fw.rules")).unwrap_err();
        assert!(
            err.0
                .contains("cannot read rules file /nonexistent/fw.rules"),
            "{err}"
        );
    }

    #[test]
    fn duplicates_overlaps_and_conflicts_are_reported() {
        let flags = |texts: &[&str]| {
            let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
            check_clashes(&parse_flags(&texts).unwrap())
        };
        let err = flags(&["deny icmp", "deny icmp"]).unwrap_err();
        assert!(
            err.0
                .contains("--rule #2: 'deny icmp' duplicates 'deny icmp' (--rule #1)"),
            "{err}"
        );
        let err = flags(&["deny src 10.0.0.0/8", "allow src 10.0.0.0/8"]).unwrap_err();
        assert!(err.0.contains("conflicts with"), "{err}");
        let err = flags(&["allow tcp dport 8000-8080", "deny tcp dport 8080"]).unwrap_err();
        assert!(err.0.contains("conflicts with"), "{err}");
        let err = flags(&["allow udp sport 1-10", "allow udp sport 5-20"]).unwrap_err();
        assert!(err.0.contains("overlaps"), "{err}");
        let err = flags(&["deny proto esp", "allow proto 50"]).unwrap_err();
        assert!(
            err.0
                .contains("'allow proto esp' conflicts with 'deny proto esp' (--rule #1)"),
            "{err}"
        );
        let err = flags(&["deny proto 47", "deny proto gre"]).unwrap_err();
        assert!(err.0.contains("duplicates"), "{err}");
        // Different kinds, directions or prefixes never clash.
        flags(&[
            "deny src 10.0.0.0/8",
            "allow src 10.1.2.3",
            "deny dst 10.0.0.0/8",
            "deny tcp dport 22",
            "deny udp dport 22",
            "deny tcp sport 22",
            "deny icmp",
            "allow icmp type 8",
            "deny icmpv6",
            "deny proto tcp",
            "deny proto icmp",
            "allow proto esp",
        ])
        .unwrap();
    }
}
