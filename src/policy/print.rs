//! Rules as text: one normalized spelling of each rule, which parses back to
//! the same rule (`allow tcp dport 22 src 10.0.0.0/24`).

use std::fmt::{self, Display, Formatter};
use std::ops::RangeInclusive;

use ipnet::IpNet;

use super::parse::{decimal, flag_letters, SHORTHANDS};
use super::{protocols, Action, Rule, TcpFlags};

/// Fields in one fixed order: the protocol, what it carries (ports, ICMP
/// type and code, TCP flags), the addresses, the interface, then `log`.
impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self.action {
            Action::Allow => "allow",
            Action::Deny => "deny",
        })?;
        let m = &self.matches;
        if let Some(protos) = &m.protos {
            match SHORTHANDS
                .iter()
                .find(|&&(_, number)| protos[..] == [number])
            {
                Some((name, _)) => write!(f, " {name}")?,
                None => field(f, "proto", protos, |f, &number| protocol(f, number))?,
            }
        }
        if let Some(ports) = &m.sport {
            field(f, "sport", ports, range)?;
        }
        if let Some(ports) = &m.dport {
            field(f, "dport", ports, range)?;
        }
        if let Some(types) = &m.icmp_types {
            field(f, "type", types, range)?;
        }
        if let Some(codes) = &m.icmp_codes {
            field(f, "code", codes, range)?;
        }
        if let Some(flags) = m.tcp_flags {
            write!(f, " flags {}", Flags(flags))?;
        }
        if let Some(nets) = &m.src {
            field(f, "src", nets, net)?;
        }
        if let Some(nets) = &m.dst {
            field(f, "dst", nets, net)?;
        }
        if let Some(iface) = &m.iface {
            write!(f, " on {iface}")?;
        }
        if self.log {
            f.write_str(" log")?;
        }
        Ok(())
    }
}

/// ` WORD A,B,C`.
fn field<T>(
    f: &mut Formatter<'_>,
    word: &str,
    items: &[T],
    item: impl Fn(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    write!(f, " {word} ")?;
    for (index, value) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(",")?;
        }
        item(f, value)?;
    }
    Ok(())
}

/// By name where the name reads back as this number, else the number.
fn protocol(f: &mut Formatter<'_>, number: u8) -> fmt::Result {
    let table = protocols();
    match table.name(number) {
        Some(name)
            if !name.contains(',')
                && decimal::<u8>(name).is_none()
                && table.number(name) == Some(number) =>
        {
            f.write_str(name)
        }
        _ => write!(f, "{number}"),
    }
}

/// `22,8000-8080`: a list of ranges as a rule writes it.
pub(super) fn list_text<T: Display + PartialEq>(list: &[RangeInclusive<T>]) -> String {
    struct List<'a, T>(&'a [RangeInclusive<T>]);
    impl<T: Display + PartialEq> Display for List<'_, T> {
        fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
            for (index, item) in self.0.iter().enumerate() {
                if index > 0 {
                    f.write_str(",")?;
                }
                range(f, item)?;
            }
            Ok(())
        }
    }
    List(list).to_string()
}

/// `22` or `8000-8080`.
fn range<T: Display + PartialEq>(f: &mut Formatter<'_>, range: &RangeInclusive<T>) -> fmt::Result {
    if range.start() == range.end() {
        write!(f, "{}", range.start())
    } else {
        write!(f, "{}-{}", range.start(), range.end())
    }
}

/// Hosts without their /32 or /128.
fn net(f: &mut Formatter<'_>, net: &IpNet) -> fmt::Result {
    if net.prefix_len() == net.max_prefix_len() {
        write!(f, "{}", net.addr())
    } else {
        write!(f, "{net}")
    }
}

/// `S` when the mask is all eight flags (and the value not empty), else
/// `S/SA`.
pub(super) struct Flags(pub(super) TcpFlags);

impl Display for Flags {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let TcpFlags { value, mask } = self.0;
        if mask == u8::MAX && value != 0 {
            f.write_str(&flag_letters(value))
        } else {
            write!(f, "{}/{}", flag_letters(value), flag_letters(mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::parse::mapped_v4;
    use super::super::{rule, Matches};
    use super::*;
    use crate::abi;

    #[test]
    fn rules_print_in_one_normalized_spelling() {
        for (text, printed) in [
            ("deny src 10.0.0.0/8", "deny src 10.0.0.0/8"),
            ("allow src 10.1.2.3/32", "allow src 10.1.2.3"),
            ("allow dst 2001:db8:0::1/128", "allow dst 2001:db8::1"),
            ("deny proto tcp", "deny tcp"),
            ("deny proto 58", "deny icmpv6"),
            ("deny proto ipv6-icmp type 128", "deny icmpv6 type 128"),
            ("allow proto 47", "allow proto gre"),
            ("deny proto 253", "deny proto 253"),
            ("deny proto udp,6", "deny proto udp,tcp"),
            (
                "allow tcp src 10.0.0.0/24 dport 22",
                "allow tcp dport 22 src 10.0.0.0/24",
            ),
            (
                "allow tcp dport 80,443,8000-8080",
                "allow tcp dport 80,443,8000-8080",
            ),
            ("allow udp dport 53-53", "allow udp dport 53"),
            (
                "allow proto tcp src 10.0.0.0/24 dport 22",
                "allow tcp dport 22 src 10.0.0.0/24",
            ),
            (
                "allow udp dport 53 src 192.0.2.0/24,2001:db8::/32",
                "allow udp dport 53 src 192.0.2.0/24,2001:db8::/32",
            ),
            (
                "allow icmpv6 type 1-4,128,129,133-136",
                "allow icmpv6 type 1-4,128,129,133-136",
            ),
            ("allow icmp code 0 type 3", "allow icmp type 3 code 0"),
            ("deny src 203.0.113.0/24 log", "deny src 203.0.113.0/24 log"),
            (
                "deny tcp flags S/SA dport 1-1023",
                "deny tcp dport 1-1023 flags S/SA",
            ),
            ("deny tcp flags as", "deny tcp flags SA"),
            ("deny tcp flags /FSRPAUEW", "deny tcp flags /FSRPAUEW"),
            ("deny tcp flags AS/AS", "deny tcp flags SA/SA"),
            ("deny log on eth1 dst ::/0", "deny dst ::/0 on eth1 log"),
            ("  deny   ", "deny"),
            ("allow log", "allow log"),
        ] {
            assert_eq!(rule(text).to_string(), printed, "'{text}'");
            assert_eq!(rule(printed).to_string(), printed, "'{printed}'");
        }
    }

    /// A random rule as the parser could have made it (see [`Matches`]).
    fn random_rule(rng: &mut fastrand::Rng) -> Rule {
        const TCP: u8 = abi::IPPROTO_TCP;
        const UDP: u8 = abi::IPPROTO_UDP;
        const ICMP: u8 = abi::IPPROTO_ICMP;
        const ICMPV6: u8 = abi::IPPROTO_ICMPV6;
        fn some<T>(
            rng: &mut fastrand::Rng,
            value: impl FnOnce(&mut fastrand::Rng) -> T,
        ) -> Option<T> {
            rng.bool().then(|| value(rng))
        }
        fn some_if<T>(
            given: bool,
            rng: &mut fastrand::Rng,
            value: impl FnOnce(&mut fastrand::Rng) -> T,
        ) -> Option<T> {
            if given {
                some(rng, value)
            } else {
                None
            }
        }
        fn many<T>(rng: &mut fastrand::Rng, item: impl Fn(&mut fastrand::Rng) -> T) -> Vec<T> {
            let count = if rng.u8(..4) == 0 {
                rng.usize(2..20)
            } else {
                rng.usize(1..3)
            };
            (0..count).map(|_| item(rng)).collect()
        }
        fn ranges<T: Copy + PartialOrd>(
            rng: &mut fastrand::Rng,
            number: fn(&mut fastrand::Rng) -> T,
        ) -> Vec<RangeInclusive<T>> {
            many(rng, |rng| {
                let (a, b) = (number(rng), number(rng));
                match (rng.bool(), a <= b) {
                    (true, _) => a..=a,
                    (false, true) => a..=b,
                    (false, false) => b..=a,
                }
            })
        }
        fn net(rng: &mut fastrand::Rng, v4: bool) -> IpNet {
            let (addr, max): (IpAddr, u8) = if v4 {
                (Ipv4Addr::from(rng.u32(..)).into(), 32)
            } else {
                (Ipv6Addr::from(rng.u128(..)).into(), 128)
            };
            let prefix = if rng.bool() { max } else { rng.u8(0..=max) };
            IpNet::new(addr, prefix).unwrap().trunc()
        }
        let protos = match rng.u8(..8) {
            0 => None,
            1 => Some(vec![TCP]),
            2 => Some(vec![UDP]),
            3 => Some(vec![TCP, UDP]),
            4 => Some(vec![ICMP]),
            5 => Some(vec![ICMPV6, ICMP]),
            _ => Some(many(rng, |rng| loop {
                let number = rng.u8(..);
                if !abi::is_extension_header(4, number) && !abi::is_extension_header(6, number) {
                    break number;
                }
            })),
        };
        let only = |allowed: &[u8]| {
            protos
                .as_ref()
                .is_some_and(|p| p.iter().all(|n| allowed.contains(n)))
        };
        let (ports, icmp, tcp_alone) = (only(&[TCP, UDP]), only(&[ICMP, ICMPV6]), only(&[TCP]));
        let port = |rng: &mut fastrand::Rng| rng.u16(..);
        let byte = |rng: &mut fastrand::Rng| rng.u8(..);
        // Both families in dst whenever src has any, so the two always meet.
        let src = some(rng, |rng| {
            many(rng, |rng| {
                let v4 = rng.bool();
                net(rng, v4)
            })
        });
        let dst = some(rng, |rng| {
            let mut nets = many(rng, |rng| {
                let v4 = rng.bool();
                net(rng, v4)
            });
            nets.extend([net(rng, true), net(rng, false)]);
            nets
        });
        let iface = some(rng, |rng| {
            let chars = b"abcdefghijklmnopqrstuvwxyz0123456789-_.@";
            let name: String = (0..rng.usize(1..=15))
                .map(|_| chars[rng.usize(..chars.len())] as char)
                .collect();
            if name == "." || name == ".." {
                "eth0".into()
            } else {
                name
            }
        });
        let matches = Matches {
            protos: protos.clone(),
            src: src.filter(|nets| !nets.iter().any(|n| mapped_v4(*n).is_some())),
            dst: dst.filter(|nets| !nets.iter().any(|n| mapped_v4(*n).is_some())),
            sport: some_if(ports, rng, |rng| ranges(rng, port)),
            dport: some_if(ports, rng, |rng| ranges(rng, port)),
            icmp_types: some_if(icmp, rng, |rng| ranges(rng, byte)),
            icmp_codes: some_if(icmp, rng, |rng| ranges(rng, byte)),
            tcp_flags: some_if(tcp_alone, rng, |rng| {
                let mask = if rng.bool() { u8::MAX } else { rng.u8(1..) };
                let value = rng.u8(..) & mask;
                TcpFlags { value, mask }
            }),
            iface,
        };
        let action = if rng.bool() {
            Action::Allow
        } else {
            Action::Deny
        };
        Rule {
            action,
            matches,
            log: rng.bool(),
        }
    }

    #[test]
    fn every_rule_parses_back_from_its_text() {
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..20_000 {
            let rule = random_rule(&mut rng);
            let text = rule.to_string();
            assert_eq!(text.parse::<Rule>(), Ok(rule), "'{text}'");
        }
    }
}
