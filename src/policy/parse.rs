//! The rule language: one rule's words into a [`Rule`], and errors that say
//! what was expected and give an example.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

use super::print::{list_text, Flags};
use super::{protocols, quote, Action, Matches, Rule, TcpFlags};
use crate::abi;

/// The protocols that may stand for `proto X` right after the action.
pub(super) const SHORTHANDS: &[(&str, u8)] = &[
    ("tcp", abi::IPPROTO_TCP),
    ("udp", abi::IPPROTO_UDP),
    ("icmp", abi::IPPROTO_ICMP),
    ("icmpv6", abi::IPPROTO_ICMPV6),
];

/// The TCP flags by letter, FIN (bit 0) first, as pf writes them.
pub(super) const FLAG_LETTERS: &str = "FSRPAUEW";

/// The longest interface name Linux allows (IFNAMSIZ less the NUL).
const MAX_IFACE_BYTES: usize = 15;

/// A word that takes a value after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Proto,
    Src,
    Dst,
    Sport,
    Dport,
    Type,
    Code,
    Flags,
    On,
}

impl Field {
    const ALL: [Field; 9] = [
        Field::Proto,
        Field::Src,
        Field::Dst,
        Field::Sport,
        Field::Dport,
        Field::Type,
        Field::Code,
        Field::Flags,
        Field::On,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Proto => "proto",
            Field::Src => "src",
            Field::Dst => "dst",
            Field::Sport => "sport",
            Field::Dport => "dport",
            Field::Type => "type",
            Field::Code => "code",
            Field::Flags => "flags",
            Field::On => "on",
        }
    }

    /// Values of this field, for messages: `dport 22, dport 8000-8080 or …`.
    fn examples(self) -> &'static str {
        match self {
            Field::Proto => "proto esp, proto 47 or proto tcp,udp",
            Field::Src => "src 10.0.0.0/8, src 10.0.0.1 or src 192.0.2.0/24,2001:db8::/32",
            Field::Dst => "dst 10.0.0.0/8, dst 10.0.0.1 or dst 192.0.2.0/24,2001:db8::/32",
            Field::Sport => "sport 53, sport 1024-65535 or sport 80,443",
            Field::Dport => "dport 22, dport 8000-8080 or dport 80,443",
            Field::Type => "type 8, type 1-4 or type 0,3,8,11",
            Field::Code => "code 0, code 1-4 or code 0,3",
            Field::Flags => "flags S/SA (SYN set, ACK clear) or flags SA",
            Field::On => "on eth0",
        }
    }

    /// A list of two, to show how lists are written.
    fn list_example(self) -> &'static str {
        match self {
            Field::Proto => "proto tcp,udp",
            Field::Src => "src 10.0.0.1,10.0.0.2",
            Field::Dst => "dst 10.0.0.1,10.0.0.2",
            Field::Sport => "sport 80,443",
            Field::Dport => "dport 80,443",
            Field::Type => "type 0,8",
            Field::Code => "code 0,3",
            Field::Flags | Field::On => "dport 80,443",
        }
    }

    fn named(word: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == word)
    }
}

/// What may follow the action, for messages.
const FIELD_WORDS: &str = "tcp, udp, icmp, icmpv6, proto, src, dst, sport, dport, type, code, \
                           flags, on or log";

impl FromStr for Rule {
    type Err = String;

    /// Parses one rule; the error says what was expected.
    fn from_str(text: &str) -> Result<Rule, String> {
        // The ASCII split is several times quicker, and splits ASCII text
        // where the Unicode one does, but for the vertical tab.
        let words: Vec<&str> = if text.is_ascii() && !text.contains('\x0b') {
            text.split_ascii_whitespace().collect()
        } else {
            text.split_whitespace().collect()
        };
        let action = match words.first() {
            Some(&"allow") => Action::Allow,
            Some(&"deny") => Action::Deny,
            Some(other) => {
                return Err(format!(
                    "starts with {}; a rule starts with allow or deny, e.g. deny tcp dport 22",
                    quote(other)
                ))
            }
            None => return Err("empty rule".into()),
        };
        let mut matches = Matches::default();
        let mut log = false;
        // `tcp` for `proto tcp`, if the rule used it (for messages).
        let mut shorthand = None;
        let mut rest = &words[1..];
        // `log` may come first too: `deny log tcp` is `deny tcp log`.
        if let Some((&"log", after)) = rest.split_first() {
            log = true;
            rest = after;
        }
        if let Some((&word, after)) = rest.split_first() {
            if let Some(&(_, number)) = SHORTHANDS.iter().find(|(name, _)| *name == word) {
                matches.protos = Some(vec![number]);
                shorthand = Some(word);
                rest = after;
            }
        }
        while let Some((&word, after)) = rest.split_first() {
            rest = after;
            if word == "log" {
                if log {
                    return Err("log given twice; once is enough".into());
                }
                log = true;
                continue;
            }
            let field = Field::named(word).ok_or_else(|| not_a_field(word))?;
            // `on` takes any word (an interface may be called `log`); other
            // fields never take a field word, so `src dport 22` says what
            // is missing.
            let value = match rest.split_first() {
                Some((&value, after))
                    if field == Field::On || (Field::named(value).is_none() && value != "log") =>
                {
                    rest = after;
                    value
                }
                _ => {
                    return Err(format!(
                        "{word} needs a value after it, e.g. {}",
                        field.examples()
                    ))
                }
            };
            set_field(&mut matches, field, value, shorthand)?;
        }
        check_combination(&matches)?;
        Ok(Rule {
            action,
            matches,
            log,
        })
    }
}

/// The error for a word where a field should be, with the likely fix.
fn not_a_field(word: &str) -> String {
    let shown = quote(word);
    if word.starts_with(',') {
        return format!("{shown} starts with a comma; no spaces inside a list: dport 80,443");
    }
    if let Some(&(name, _)) = SHORTHANDS.iter().find(|(name, _)| *name == word) {
        return format!(
            "{shown} is short for proto {name} only right after the action: \
             deny {name} dport 22, or write proto {name}"
        );
    }
    if word == "port" {
        return "'port' is not a field; write sport or dport, e.g. deny tcp dport 22".into();
    }
    if word == "allow" || word == "deny" {
        return format!("{shown} again: one rule a line, one action a rule");
    }
    if protocols().number(word).is_some() {
        return format!("{shown} is a protocol: write proto {word}");
    }
    format!("expected {FIELD_WORDS}, found {shown}")
}

/// Parses `value` into the field, which must not be set yet.
fn set_field(
    matches: &mut Matches,
    field: Field,
    value: &str,
    shorthand: Option<&str>,
) -> Result<(), String> {
    let twice = || {
        let word = field.name();
        match (field, shorthand) {
            (Field::Proto, Some(name)) => format!(
                "proto given twice ({name} right after the action is short for proto {name}); \
                 write one list: proto tcp,udp"
            ),
            (Field::Flags | Field::On, _) => format!("{word} given twice; give it once"),
            _ => format!(
                "{word} given twice; write one list: {}",
                field.list_example()
            ),
        }
    };
    fn put<T>(slot: &mut Option<T>, value: T, twice: impl Fn() -> String) -> Result<(), String> {
        if slot.is_some() {
            return Err(twice());
        }
        *slot = Some(value);
        Ok(())
    }
    match field {
        Field::Proto => put(
            &mut matches.protos,
            list(field, value, parse_protocol)?,
            twice,
        ),
        Field::Src => put(&mut matches.src, list(field, value, parse_net)?, twice),
        Field::Dst => put(&mut matches.dst, list(field, value, parse_net)?, twice),
        Field::Sport | Field::Dport => {
            let ports = list(field, value, |item| range(item, &PORTS))?;
            let slot = if field == Field::Sport {
                &mut matches.sport
            } else {
                &mut matches.dport
            };
            put(slot, ports, twice)
        }
        Field::Type => {
            let types = list(field, value, |item| range(item, &ICMP_TYPES))?;
            put(&mut matches.icmp_types, types, twice)
        }
        Field::Code => {
            let codes = list(field, value, |item| range(item, &ICMP_CODES))?;
            put(&mut matches.icmp_codes, codes, twice)
        }
        Field::Flags => put(&mut matches.tcp_flags, parse_tcp_flags(value)?, twice),
        Field::On => put(&mut matches.iface, parse_iface(value)?, twice),
    }
}

/// A comma list of `item`s: no empty item, no spaces (a word that ends in a
/// comma is a list someone spaced out).
fn list<T>(
    field: Field,
    text: &str,
    item: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let hint = || format!("no spaces inside a list: {}", field.list_example());
    if text.ends_with(',') {
        return Err(format!("{} ends in a comma; {}", quote(text), hint()));
    }
    if text.split(',').any(str::is_empty) {
        return Err(format!("{} has an empty item; {}", quote(text), hint()));
    }
    text.split(',').map(item).collect()
}

/// The protocols a field needs, for [`check_combination`].
struct Needs {
    protos: &'static [u8],
    in_words: &'static str,
    /// How to write one of them, and (if there are two) both.
    one: &'static str,
    both: Option<&'static str>,
}

const TRANSPORTS: Needs = Needs {
    protos: &[abi::IPPROTO_TCP, abi::IPPROTO_UDP],
    in_words: "tcp or udp",
    one: "tcp",
    both: Some("proto tcp,udp"),
};
const ICMPS: Needs = Needs {
    protos: &[abi::IPPROTO_ICMP, abi::IPPROTO_ICMPV6],
    in_words: "icmp or icmpv6",
    one: "icmp",
    both: Some("proto icmp,icmpv6"),
};
const TCP_ALONE: Needs = Needs {
    protos: &[abi::IPPROTO_TCP],
    in_words: "tcp alone",
    one: "tcp",
    both: None,
};

/// The rules a combination of fields must follow (see [`Matches`]).
fn check_combination(matches: &Matches) -> Result<(), String> {
    let protos = matches.protos.as_deref();
    // (field, whether the rule gives it, what it needs, its value as the
    // fix should show it: the user's own, written out only for the message)
    let listed = |list: &Option<Vec<RangeInclusive<u16>>>| {
        list.as_deref().map(list_text).unwrap_or_default()
    };
    let listed_bytes =
        |list: &Option<Vec<RangeInclusive<u8>>>| list.as_deref().map(list_text).unwrap_or_default();
    let fields: [(&str, bool, &Needs, &dyn Fn() -> String); 5] = [
        ("sport", matches.sport.is_some(), &TRANSPORTS, &|| {
            listed(&matches.sport)
        }),
        ("dport", matches.dport.is_some(), &TRANSPORTS, &|| {
            listed(&matches.dport)
        }),
        ("type", matches.icmp_types.is_some(), &ICMPS, &|| {
            listed_bytes(&matches.icmp_types)
        }),
        ("code", matches.icmp_codes.is_some(), &ICMPS, &|| {
            listed_bytes(&matches.icmp_codes)
        }),
        ("flags", matches.tcp_flags.is_some(), &TCP_ALONE, &|| {
            matches
                .tcp_flags
                .map(|flags| Flags(flags).to_string())
                .unwrap_or_default()
        }),
    ];
    for (word, given, needs, value) in fields {
        let allowed = |p: &[u8]| p.iter().all(|n| needs.protos.contains(n));
        if given && !protos.is_some_and(allowed) {
            let value = value();
            let both = match needs.both {
                Some(both) => format!(" (or {both} {word} {value} for both)"),
                None => String::new(),
            };
            return Err(format!(
                "{word} needs {} as the protocol{}: write {} {word} {value}{both}",
                needs.in_words,
                other_protocol(protos, needs.protos),
                needs.one
            ));
        }
    }
    if let (Some(src), Some(dst)) = (&matches.src, &matches.dst) {
        let only_v4 = |nets: &[IpNet]| nets.iter().all(|net| matches!(net, IpNet::V4(_)));
        let only_v6 = |nets: &[IpNet]| nets.iter().all(|net| matches!(net, IpNet::V6(_)));
        let families = if only_v4(src) && only_v6(dst) {
            Some(("IPv4", "IPv6"))
        } else if only_v6(src) && only_v4(dst) {
            Some(("IPv6", "IPv4"))
        } else {
            None
        };
        if let Some((src_family, dst_family)) = families {
            return Err(format!(
                "can never match: src has only {src_family} networks and dst only \
                 {dst_family} ones, and a packet's addresses are of one family; \
                 write one rule per family"
            ));
        }
    }
    Ok(())
}

/// `, not esp` for the first protocol outside `allowed`, or ` first` when
/// the rule names none.
fn other_protocol(protos: Option<&[u8]>, allowed: &[u8]) -> String {
    match protos.and_then(|p| p.iter().find(|n| !allowed.contains(n))) {
        Some(&number) => match protocols().name(number) {
            Some(name) => format!(", not {name}"),
            None => format!(", not {number}"),
        },
        None if protos.is_some() => String::new(),
        None => " first".into(),
    }
}

/// A number written in decimal digits only: no sign, no spaces.
pub(super) fn decimal<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// What a range of numbers holds, for its messages.
struct Numbers {
    /// `port`, `ICMP type`.
    noun: &'static str,
    max: u16,
    /// A range to show, e.g. `1024-65535`.
    example: &'static str,
}

const PORTS: Numbers = Numbers {
    noun: "port",
    max: u16::MAX,
    example: "1024-65535",
};
const ICMP_TYPES: Numbers = Numbers {
    noun: "ICMP type",
    max: u8::MAX as u16,
    example: "1-4",
};
const ICMP_CODES: Numbers = Numbers {
    noun: "ICMP code",
    max: u8::MAX as u16,
    example: "0-3",
};

/// `N` or `FIRST-LAST` (both included), each from 0 to `numbers.max`.
fn range<T: FromStr + PartialOrd + Copy + std::fmt::Display>(
    text: &str,
    numbers: &Numbers,
) -> Result<RangeInclusive<T>, String> {
    let Numbers { noun, max, example } = numbers;
    let number = |part: &str| {
        decimal::<T>(part)
            .ok_or_else(|| format!("{noun} {} is not a number from 0 to {max}", quote(part)))
    };
    let (first, last) = match text.split_once('-') {
        // `-5` is a negative number, not a range.
        None | Some(("", _)) => {
            let single = number(text)?;
            (single, single)
        }
        Some((_, "")) => {
            return Err(format!(
                "{noun} range {} has no last {noun}; write FIRST-LAST, e.g. {example}",
                quote(text)
            ))
        }
        Some((_, last)) if last.contains('-') => {
            return Err(format!(
                "{} is not a {noun} range; write FIRST-LAST, e.g. {example}",
                quote(text)
            ))
        }
        Some((first, last)) => (number(first)?, number(last)?),
    };
    if first > last {
        return Err(format!(
            "{noun} range {first}-{last} runs backwards; write {last}-{first}"
        ));
    }
    Ok(first..=last)
}

/// Why `text` is no address or network: a prefix too long for its family,
/// or not one at all.
fn bad_net(text: &str) -> String {
    let prefix = text.split_once('/').and_then(|(addr, len)| {
        let bits = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        Some((bits, decimal::<u32>(len)?))
    });
    match prefix {
        Some((bits, len)) if len > bits => format!(
            "{} has a /{len} prefix, longer than the address's {bits} bits; write /{bits} \
             or less",
            quote(text)
        ),
        _ => format!(
            "{} is not an IPv4 or IPv6 address or network, e.g. 10.0.0.0/8, 10.0.0.1 or \
             2001:db8::/32",
            quote(text)
        ),
    }
}

/// A host or a network; host bits set under the prefix are an error, since
/// they usually mean a typo.
fn parse_net(text: &str) -> Result<IpNet, String> {
    // A network has its `/`; a host does not (and parses once).
    let host = (!text.contains('/')).then(|| text.parse::<IpAddr>().ok());
    let net = match host.flatten() {
        Some(addr) => IpNet::from(addr),
        None => text.parse::<IpNet>().map_err(|_| bad_net(text))?,
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
pub(super) fn mapped_v4(net: IpNet) -> Option<Ipv4Net> {
    let IpNet::V6(v6) = net else { return None };
    let v4: Ipv4Addr = v6.addr().to_ipv4_mapped()?;
    let prefix = v6.prefix_len().checked_sub(96)?;
    Ipv4Net::new(v4, prefix).ok()
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

/// `VALUE[/MASK]` in flag letters; the mask defaults to all eight flags.
fn parse_tcp_flags(text: &str) -> Result<TcpFlags, String> {
    let (value, mask) = match text.split_once('/') {
        Some((_, "")) => {
            return Err(format!(
                "flags {} has no mask after the /; write VALUE/MASK, e.g. flags S/SA",
                quote(text)
            ))
        }
        Some((value, mask)) => (flag_bits(value, text)?, flag_bits(mask, text)?),
        None => (flag_bits(text, text)?, u8::MAX),
    };
    let outside = value & !mask;
    if outside != 0 {
        return Err(format!(
            "flags {} can never match: {} is set in the value but not in the mask; \
             add it to the mask, e.g. flags S/SA",
            quote(text),
            flag_letters(outside)
        ));
    }
    Ok(TcpFlags { value, mask })
}

/// The bits of flag letters (`SA` is SYN|ACK), either case.
fn flag_bits(letters: &str, text: &str) -> Result<u8, String> {
    letters.chars().try_fold(0u8, |bits, letter| {
        let bit = FLAG_LETTERS
            .find(letter.to_ascii_uppercase())
            .ok_or_else(|| {
                format!(
                    "flags {}: {} is not a TCP flag; the letters are F S R P A U E W (FIN SYN \
                     RST PSH ACK URG ECE CWR), e.g. flags S/SA",
                    quote(text),
                    quote(&letter.to_string())
                )
            })?;
        Ok(bits | 1 << bit)
    })
}

/// The letters of flag bits, FIN first: `SA`.
pub(super) fn flag_letters(bits: u8) -> String {
    FLAG_LETTERS
        .chars()
        .enumerate()
        .filter(|&(bit, _)| bits & 1 << bit != 0)
        .map(|(_, letter)| letter)
        .collect()
}

/// An interface name as Linux allows it: 1 to 15 bytes, no '/' or ':'
/// (whitespace never reaches here), and not `.` or `..`.
fn parse_iface(text: &str) -> Result<String, String> {
    if text.len() > MAX_IFACE_BYTES {
        return Err(format!(
            "interface name {} is {} bytes long, longer than the {MAX_IFACE_BYTES} Linux \
             allows; see `ip link` for the names, e.g. on eth0",
            quote(text),
            text.len()
        ));
    }
    if text.contains(['/', ':']) || text == "." || text == ".." {
        return Err(format!(
            "{} is not an interface name (no '/' or ':', not . or ..); see `ip link` for \
             the names, e.g. on eth0",
            quote(text)
        ));
    }
    Ok(text.to_string())
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
    fn any_white_space_separates_words() {
        let plain = rule("deny tcp dport 22 src 10.0.0.0/8");
        for spaced in [
            "deny\ttcp  dport\x0c22 src\r10.0.0.0/8",
            "deny\x0btcp dport 22\x0bsrc 10.0.0.0/8",
            "deny\u{a0}tcp dport\u{2003}22 src 10.0.0.0/8",
        ] {
            assert_eq!(spaced.parse::<Rule>().as_ref(), Ok(&plain), "{spaced:?}");
        }
    }

    /// Each `(rule, part of its error)`: the error is one line and says it.
    fn assert_errors(cases: &[(&str, &str)]) {
        for &(text, why) in cases {
            let err = error(text);
            assert!(err.contains(why), "'{text}' gave '{err}', wanted '{why}'");
            assert!(
                !err.contains('\n'),
                "'{text}' gave more than a line: '{err}'"
            );
            assert!(!err.contains("''"), "'{text}' echoes nothing: '{err}'");
        }
    }

    fn nets(texts: &[&str]) -> Option<Vec<IpNet>> {
        Some(texts.iter().map(|t| t.parse().unwrap()).collect())
    }

    #[test]
    fn every_old_one_field_rule_still_parses() {
        for (text, protos) in [
            ("allow src 10.0.0.0/8", None),
            ("deny dst 2001:db8::/32", None),
            ("deny tcp dport 22", Some(vec![6])),
            ("allow udp sport 1000-2000", Some(vec![17])),
            ("allow icmp type 8", Some(vec![1])),
            ("deny icmp", Some(vec![1])),
            ("deny icmpv6", Some(vec![58])),
            ("deny icmpv6 type 128", Some(vec![58])),
            ("deny proto esp", Some(vec![50])),
            ("allow proto 47", Some(vec![47])),
        ] {
            assert_eq!(rule(text).matches.protos, protos, "{text}");
        }
        assert_eq!(
            rule("allow udp sport 1000-2000").matches.sport,
            Some(vec![1000..=2000])
        );
        assert_eq!(
            rule("allow icmp type 8").matches.icmp_types,
            Some(vec![8..=8])
        );
        assert_eq!(
            rule("allow src 10.1.2.3").matches.src,
            nets(&["10.1.2.3/32"])
        );
    }

    #[test]
    fn every_field_parses_into_its_place() {
        let parsed = rule(
            "deny proto tcp,udp src 10.0.0.0/24,2001:db8::1 dst 192.0.2.1 sport 1-1023 \
             dport 80,443,8000-8080 on eth1 log",
        );
        assert_eq!(parsed.action, Action::Deny);
        assert!(parsed.log);
        let m = parsed.matches;
        assert_eq!(m.protos, Some(vec![6, 17]));
        assert_eq!(m.src, nets(&["10.0.0.0/24", "2001:db8::1/128"]));
        assert_eq!(m.dst, nets(&["192.0.2.1/32"]));
        assert_eq!(m.sport, Some(vec![1..=1023]));
        assert_eq!(m.dport, Some(vec![80..=80, 443..=443, 8000..=8080]));
        assert_eq!(m.iface.as_deref(), Some("eth1"));
        assert_eq!(m.tcp_flags, None);

        let m = rule("allow icmpv6 type 1-4,128,129,133-136 code 0").matches;
        assert_eq!(
            m.icmp_types,
            Some(vec![1..=4, 128..=128, 129..=129, 133..=136])
        );
        assert_eq!(m.icmp_codes, Some(vec![0..=0]));
        let m = rule("allow proto icmp,icmpv6 code 0-3").matches;
        assert_eq!((m.protos, m.icmp_types), (Some(vec![1, 58]), None));
        assert_eq!(m.icmp_codes, Some(vec![0..=3]));
    }

    #[test]
    fn a_rule_may_have_no_field_at_all() {
        let everything = rule("deny");
        assert_eq!(everything.matches, Matches::default());
        assert!(!everything.log);
        let logged = rule("allow log");
        assert_eq!((logged.action, logged.log), (Action::Allow, true));
        // `log` may stand between fields too, or before the shorthand.
        assert_eq!(rule("deny tcp log dport 22"), rule("deny tcp dport 22 log"));
        assert_eq!(rule("deny log tcp dport 22"), rule("deny tcp dport 22 log"));
    }

    #[test]
    fn tcp_flags_are_value_and_mask_with_all_eight_by_default() {
        use abi::tcp_flag::*;
        for (text, value, mask) in [
            ("S/SA", SYN, SYN | ACK),
            ("S", SYN, u8::MAX),
            ("SA", SYN | ACK, u8::MAX),
            ("/SA", 0, SYN | ACK),
            ("FSRPAUEW", u8::MAX, u8::MAX),
            ("s/sa", SYN, SYN | ACK),
            ("R/R", RST, RST),
            ("F/FUEW", FIN, FIN | URG | ECE | CWR),
            ("P/PA", PSH, PSH | ACK),
        ] {
            let flags = rule(&format!("deny tcp flags {text}")).matches.tcp_flags;
            assert_eq!(flags, Some(TcpFlags { value, mask }), "flags {text}");
        }
        assert_eq!(flag_letters(SYN | ACK | FIN), "FSA");
    }

    #[test]
    fn interfaces_are_names_linux_allows() {
        for name in ["eth0", "veth-a.100", "wg0@x", "a23456789012345", "log"] {
            let text = format!("deny on {name}");
            assert_eq!(rule(&text).matches.iface.as_deref(), Some(name));
        }
        assert!(rule("deny on log log").log);
        assert_errors(&[
            (
                "deny on a234567890123456",
                "16 bytes long, longer than the 15 Linux allows",
            ),
            ("deny on eth0:1", "not an interface name (no '/' or ':'"),
            ("deny on a/b", "not an interface name"),
            ("deny on ..", "not an interface name"),
            ("deny on", "on needs a value after it, e.g. on eth0"),
            ("deny on eth0 on eth1", "on given twice"),
        ]);
    }

    #[test]
    fn protocols_take_names_and_numbers() {
        for (text, numbers) in [
            ("deny proto esp", vec![50]),
            ("deny proto ESP", vec![50]),
            ("allow proto 47", vec![47]),
            ("deny proto gre,esp,132", vec![47, 50, 132]),
            ("deny proto tcp", vec![6]),
            ("deny proto ipv6-icmp", vec![58]),
            ("deny proto udplite", vec![136]),
            ("deny proto 0059", vec![59]),
        ] {
            assert_eq!(rule(text).matches.protos, Some(numbers), "{text}");
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
            "deny proto esp,44",
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
    fn bad_values_say_what_was_expected() {
        assert_errors(&[
            (
                "deny proto 256",
                "protocol '256' is not a number from 0 to 255",
            ),
            (
                "deny proto quic",
                "unknown protocol 'quic'; write a name such as tcp",
            ),
            ("deny proto +47", "unknown protocol '+47'"),
            (
                "deny src 10.0.0.0/33",
                "'10.0.0.0/33' has a /33 prefix, longer than the address's 32 bits; write /32 \
                 or less",
            ),
            ("deny dst 2001:db8::/129", "write /128 or less"),
            (
                "deny src 10.0.0.0/x",
                "not an IPv4 or IPv6 address or network, e.g. 10.0.0.0/8",
            ),
            ("deny src example.com", "not an IPv4 or IPv6"),
            (
                "deny src 10.1.2.3/8",
                "'10.1.2.3/8' has host bits set; did you mean 10.0.0.0/8?",
            ),
            (
                "deny dst 10.0.0.0/8,2001:db8::1/32",
                "did you mean 2001:db8::/32?",
            ),
            (
                "deny tcp dport 70000",
                "port '70000' is not a number from 0 to 65535",
            ),
            (
                "deny tcp dport -5",
                "port '-5' is not a number from 0 to 65535",
            ),
            ("deny tcp dport +22", "port '+22' is not a number"),
            ("deny tcp dport 22-+30", "port '+30' is not a number"),
            (
                "deny udp sport 1-",
                "port range '1-' has no last port; write FIRST-LAST, e.g.",
            ),
            (
                "deny udp sport 1-2-3",
                "'1-2-3' is not a port range; write FIRST-LAST",
            ),
            (
                "deny tcp dport 90-80",
                "port range 90-80 runs backwards; write 80-90",
            ),
            (
                "deny icmp type 300",
                "ICMP type '300' is not a number from 0 to 255",
            ),
            ("deny icmp type +8", "ICMP type '+8' is not a number"),
            (
                "deny icmp code 4-1",
                "ICMP code range 4-1 runs backwards; write 1-4",
            ),
            (
                "deny icmp code x",
                "ICMP code 'x' is not a number from 0 to 255",
            ),
            (
                "deny tcp flags SX",
                "'X' is not a TCP flag; the letters are F S R P A U E W",
            ),
            (
                "deny tcp flags S/",
                "has no mask after the /; write VALUE/MASK, e.g. flags S/SA",
            ),
            (
                "deny tcp flags S/A",
                "can never match: S is set in the value but not in the mask",
            ),
            ("deny tcp flags S,A", "',' is not a TCP flag"),
        ]);
    }

    #[test]
    fn missing_values_and_unknown_words_say_what_to_write() {
        assert_errors(&[
            ("", "empty rule"),
            (
                "block src 10.0.0.1",
                "starts with 'block'; a rule starts with allow or deny",
            ),
            (
                "deny src",
                "src needs a value after it, e.g. src 10.0.0.0/8",
            ),
            ("deny src dport 22", "src needs a value after it"),
            (
                "deny tcp dport",
                "dport needs a value after it, e.g. dport 22, dport 8000-8080",
            ),
            ("deny tcp dport log", "dport needs a value after it"),
            ("deny proto", "proto needs a value after it, e.g. proto esp"),
            ("deny icmp type", "type needs a value after it, e.g. type 8"),
            ("deny icmp code", "code needs a value after it, e.g. code 0"),
            (
                "deny tcp flags",
                "flags needs a value after it, e.g. flags S/SA",
            ),
            (
                "deny tcp port 22",
                "'port' is not a field; write sport or dport",
            ),
            (
                "deny ssh",
                "expected tcp, udp, icmp, icmpv6, proto, src, dst",
            ),
            ("deny esp", "'esp' is a protocol: write proto esp"),
            (
                "deny dport 22 tcp",
                "'tcp' is short for proto tcp only right after the action",
            ),
            ("deny log log tcp", "log given twice"),
            ("deny src 10.0.0.1 10.0.0.2", "found '10.0.0.2'"),
            ("deny tcp dport 22 80", "found '80'"),
            ("allow tcp deny", "one rule a line"),
        ]);
    }

    #[test]
    fn each_field_is_given_at_most_once() {
        assert_errors(&[
            (
                "deny tcp dport 22 dport 80",
                "dport given twice; write one list: dport 80,443",
            ),
            (
                "deny src 10.0.0.1 src 10.0.0.2",
                "write one list: src 10.0.0.1,10.0.0.2",
            ),
            (
                "deny tcp proto udp",
                "proto given twice (tcp right after the action is short",
            ),
            (
                "deny proto tcp proto udp",
                "proto given twice; write one list: proto tcp,udp",
            ),
            (
                "deny icmp type 1 type 2",
                "type given twice; write one list: type 0,8",
            ),
            ("deny icmp code 1 code 2", "code given twice"),
            ("deny udp sport 1 sport 2", "sport given twice"),
            ("deny dst ::1 dst ::2", "dst given twice"),
            (
                "deny tcp flags S flags A",
                "flags given twice; give it once",
            ),
            ("deny log log", "log given twice"),
        ]);
    }

    #[test]
    fn spaced_out_lists_get_a_hint() {
        assert_errors(&[
            (
                "deny tcp dport 80, 443",
                "'80,' ends in a comma; no spaces inside a list: dport 80,443",
            ),
            (
                "deny tcp dport 80 ,443",
                "',443' starts with a comma; no spaces inside a list",
            ),
            (
                "deny tcp dport 80,,443",
                "'80,,443' has an empty item; no spaces inside a list",
            ),
            (
                "deny src ,10.0.0.1",
                "has an empty item; no spaces inside a list: src 10.0.0.1,",
            ),
            (
                "deny proto tcp, udp",
                "no spaces inside a list: proto tcp,udp",
            ),
            ("deny icmp type 0, 8", "no spaces inside a list: type 0,8"),
        ]);
    }

    #[test]
    fn fields_need_the_protocols_that_have_them() {
        assert_errors(&[
            (
                "deny dport 22",
                "dport needs tcp or udp as the protocol first: write tcp dport 22",
            ),
            (
                "deny sport 53",
                "sport needs tcp or udp as the protocol first",
            ),
            (
                "deny proto tcp,esp dport 22",
                "dport needs tcp or udp as the protocol, not esp",
            ),
            ("deny icmp dport 22", "not icmp"),
            (
                "deny type 8",
                "type needs icmp or icmpv6 as the protocol first: write icmp type 8",
            ),
            (
                "deny code 0",
                "code needs icmp or icmpv6 as the protocol first",
            ),
            (
                "deny tcp type 8",
                "type needs icmp or icmpv6 as the protocol, not tcp",
            ),
            ("deny proto icmp,udp code 0", "not udp"),
            (
                "deny flags S",
                "flags needs tcp alone as the protocol first: write tcp flags S",
            ),
            (
                "deny udp flags S/SA",
                "flags needs tcp alone as the protocol, not udp: write tcp flags S/SA",
            ),
            (
                "deny proto tcp,udp flags S",
                "flags needs tcp alone as the protocol, not udp",
            ),
        ]);
        // Both transports, both ICMPs, tcp by number: all fine.
        rule("deny proto tcp,udp dport 53");
        rule("deny proto 6 flags S/SA dport 1-1023");
        rule("allow proto icmp,icmpv6 type 0,8");
    }

    #[test]
    fn addresses_of_two_families_that_never_meet_are_refused() {
        assert_errors(&[
            (
                "deny src 10.0.0.0/8 dst 2001:db8::/32",
                "can never match: src has only IPv4 networks and dst only IPv6 ones",
            ),
            (
                "deny src ::1 dst 10.0.0.1,192.0.2.0/24",
                "src has only IPv6 networks and dst only IPv4",
            ),
        ]);
        assert!(error("deny src ::1 dst 10.0.0.1").ends_with("write one rule per family"));
        // One family in common is enough.
        rule("deny src 10.0.0.0/8,2001:db8::/32 dst 2001:db8::1");
        rule("deny src 10.0.0.0/8 dst 192.0.2.1");
    }

    #[test]
    fn mapped_address_advice_keeps_the_prefix() {
        for (text, advice) in [
            ("deny src ::ffff:10.0.0.0/104", "write 10.0.0.0/8"),
            ("deny src ::ffff:0:0/96", "write 0.0.0.0/0"),
            ("deny dst ::ffff:192.0.2.0/120", "write 192.0.2.0/24"),
            ("deny src ::ffff:10.0.0.1/128", "write 10.0.0.1"),
            ("deny src 10.0.0.2,::ffff:10.0.0.1", "write 10.0.0.1"),
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
