//! The rule language: one rule's words into a [`Rule`], and errors that say
//! what was expected.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::{quote, Action, Direction, Match, Rule, Transport};
use crate::abi;
use crate::policy::protocols;

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
            let direction = match rest.first() {
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
            let (first, last) = parse_ports(ports)?;
            let matches = Match::Port {
                transport,
                direction,
                first,
                last,
            };
            (matches, 2, "the ports")
        }
        "icmp" | "icmpv6" => {
            let v6 = what == "icmpv6";
            match rest.first() {
                None => (
                    Match::Icmp {
                        v6,
                        icmp_type: None,
                    },
                    0,
                    what,
                ),
                Some(&"type") => {
                    let icmp_type = rest.get(1).ok_or_else(|| {
                        format!(
                            "type needs a number from 0 to 255 after it, e.g. deny {what} type 8"
                        )
                    })?;
                    let icmp_type = decimal::<u8>(icmp_type).ok_or_else(|| {
                        format!(
                            "ICMP type {} is not a number from 0 to 255",
                            quote(icmp_type)
                        )
                    })?;
                    let icmp_type = Some(icmp_type);
                    (Match::Icmp { v6, icmp_type }, 2, "the ICMP type")
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
pub(super) fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
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

/// The rule before any `#` comment, trimmed.
pub(super) fn without_comment(text: &str) -> &str {
    text.split('#').next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::super::rule;
    use super::*;

    fn error(text: &str) -> String {
        text.parse::<Rule>()
            .expect_err(&format!("'{text}' was accepted"))
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
                matches: Match::Port {
                    transport: Transport::Tcp,
                    direction: Direction::Dst,
                    first: 8000,
                    last: 8080
                }
            }
        );
        assert_eq!(
            rule("deny src 10.1.2.3").matches,
            Match::Address(Direction::Src, "10.1.2.3/32".parse().unwrap())
        );
        assert_eq!(
            rule("deny icmpv6 type 128").matches,
            Match::Icmp {
                v6: true,
                icmp_type: Some(128)
            }
        );
        assert_eq!(
            rule("  deny   icmp ").matches,
            Match::Icmp {
                v6: false,
                icmp_type: None
            }
        );
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
}
