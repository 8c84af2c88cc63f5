//! IP protocol names for `proto` rules: our own, then /etc/protocols.

use std::sync::OnceLock;

use super::parse::{decimal, without_comment};
use crate::abi;

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
pub(crate) fn protocols() -> &'static Protocols {
    static PROTOCOLS: OnceLock<Protocols> = OnceLock::new();
    PROTOCOLS
        .get_or_init(|| Protocols::new(std::fs::read_to_string("/etc/protocols").ok().as_deref()))
}

#[cfg(test)]
mod tests {
    use super::super::rule;
    use super::*;

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
                assert_eq!(rule("deny proto rsvp").matches.protos, Some(vec![number]));
            }
        }
    }
}
