//! The rule language, the same on the command line and in a rules file:
//!
//! ```text
//! allow|deny src|dst ADDRESS[/PREFIX]        IPv4 or IPv6, host or CIDR
//! allow|deny tcp|udp sport|dport PORT[-PORT]
//! allow|deny icmp|icmpv6 [type N]
//! ```
//!
//! A rule matches one thing. For each kind (source address, destination
//! address, source port, destination port, ICMP type) the most specific rule
//! that matches counts: the longest prefix, the exact ICMP type before "any".
//! A deny among those wins, else an allow, else the default policy. Rules
//! apply to IPv4 and IPv6; everything else (ARP, …) always passes.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

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
                    "starts with '{other}'; a rule starts with allow or deny"
                ))
            }
            None => return Err("empty rule".into()),
        };
        let matches = match &words[1..] {
            [dir @ ("src" | "dst"), net] => Match::Address(direction(dir), parse_net(net)?),
            [proto @ ("tcp" | "udp"), dir @ ("sport" | "dport"), ports] => {
                let transport = if *proto == "tcp" {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                let dir = if *dir == "sport" {
                    Direction::Src
                } else {
                    Direction::Dst
                };
                let (lo, hi) = parse_ports(ports)?;
                Match::Port(transport, dir, lo, hi)
            }
            ["src" | "dst", _, extra, ..] => {
                return Err(format!(
                    "unexpected '{extra}' after the address; a rule matches one thing"
                ))
            }
            ["tcp" | "udp", "sport" | "dport", _, extra, ..] => {
                return Err(format!(
                    "unexpected '{extra}' after the ports; a rule matches one thing"
                ))
            }
            [proto @ ("tcp" | "udp"), other, ..] if !matches!(*other, "sport" | "dport") => {
                return Err(format!(
                    "expected sport or dport after {proto}, found '{other}'"
                ))
            }
            ["icmp" | "icmpv6", "type", _, extra, ..] => {
                return Err(format!("unexpected '{extra}' after the ICMP type"))
            }
            [proto @ ("icmp" | "icmpv6"), other, ..] if *other != "type" => {
                return Err(format!(
                    "expected `type N` or nothing after {proto}, found '{other}'"
                ))
            }
            [proto @ ("icmp" | "icmpv6")] => Match::Icmp(*proto == "icmpv6", None),
            [proto @ ("icmp" | "icmpv6"), "type", kind] => {
                let kind = kind
                    .parse::<u8>()
                    .map_err(|_| format!("ICMP type '{kind}' is not a number from 0 to 255"))?;
                Match::Icmp(*proto == "icmpv6", Some(kind))
            }
            [] => return Err("nothing to match after the action".into()),
            _ => {
                return Err(
                    "expected `src|dst ADDRESS[/PREFIX]`, `tcp|udp sport|dport PORT[-PORT]` \
                     or `icmp|icmpv6 [type N]` after the action"
                        .into(),
                )
            }
        };
        Ok(Rule { action, matches })
    }
}

fn direction(word: &str) -> Direction {
    if word == "src" {
        Direction::Src
    } else {
        Direction::Dst
    }
}

/// A host or a network; host bits set under the prefix are an error, since
/// they usually mean a typo.
fn parse_net(text: &str) -> Result<IpNet, String> {
    // IPv4 packets never carry an IPv4-mapped IPv6 address: such a rule
    // would match nothing.
    let host = text.split('/').next().unwrap_or(text);
    if let Ok(IpAddr::V6(v6)) = host.parse::<IpAddr>() {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Err(format!(
                "'{text}' is an IPv4-mapped address, which packets never carry: write {v4}"
            ));
        }
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text
        .parse()
        .map_err(|_| format!("'{text}' is not an IPv4 or IPv6 address or network"))?;
    if net.trunc() != net {
        return Err(format!(
            "'{text}' has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("'{p}' is not a port from 0 to 65535"))
    };
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (port(lo)?, port(hi)?),
        None => (port(text)?, port(text)?),
    };
    if lo > hi {
        return Err(format!("port range {lo}-{hi} runs backwards"));
    }
    Ok((lo, hi))
}

/// The rule before any `#` comment, trimmed.
fn without_comment(text: &str) -> &str {
    text.split('#').next().unwrap_or("").trim()
}

/// Reads the rules of a file: one a line, `#` comments, blank lines.
pub fn read_file(path: &Path) -> Result<Vec<SourcedRule>, RuleError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| RuleError(format!("cannot read rules file {}: {err}", path.display())))?;
    parse_lines(&text, path)
}

/// The rules in `text`, as if read from `path`.
pub fn parse_lines(text: &str, path: &Path) -> Result<Vec<SourcedRule>, RuleError> {
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let content = without_comment(line);
        if content.is_empty() {
            continue;
        }
        let origin = Origin::File(path.to_path_buf(), index + 1);
        let rule = content
            .parse()
            .map_err(|why| RuleError(format!("{origin}: bad rule '{content}': {why}")))?;
        rules.push(SourcedRule { rule, origin });
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
                .map_err(|why| RuleError(format!("{origin}: bad rule '{text}': {why}")))?;
            Ok(SourcedRule { rule, origin })
        })
        .collect()
}

/// Fails on a rule given twice, or on two rules claiming the same thing
/// (the same prefix, an overlapping port range, the same ICMP type).
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

/// All rules from the flags, then the file, checked for clashes.
pub fn load(flags: &[String], file: Option<&Path>) -> Result<Vec<SourcedRule>, RuleError> {
    let mut rules = parse_flags(flags)?;
    if let Some(path) = file {
        rules.extend(read_file(path)?);
    }
    check_clashes(&rules)?;
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        text.parse().unwrap_or_else(|e| panic!("'{text}': {e}"))
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
            let err = text.parse::<Rule>().expect_err(text);
            assert!(err.contains(why), "'{text}' gave '{err}', wanted '{why}'");
        }
    }

    #[test]
    fn files_skip_comments_and_blank_lines_and_keep_line_numbers() {
        let text = "# a rules file\n\ndeny src 10.0.0.0/8   # the lab\n  \nallow src 10.1.2.3\n";
        let rules = parse_lines(text, Path::new("fw.rules")).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].origin, Origin::File("fw.rules".into(), 3));
        assert_eq!(rules[1].origin, Origin::File("fw.rules".into(), 5));
        assert_eq!(rules[1].rule, rule("allow src 10.1.2.3"));
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
        ])
        .unwrap();
    }
}
