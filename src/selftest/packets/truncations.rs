//! Truncated cases: frames that end inside a header, cut short or with the
//! datagram made short, and what the notice keeps of them.

use etherparse::ip_number;

use super::ip::*;
use super::*;

/// A whole frame, to be cut short at several places.
struct Whole {
    name: &'static str,
    frame: Vec<u8>,
    /// The IP version right after its Ethernet header, or 0.
    ip_version: u8,
}

impl Whole {
    fn new(name: &'static str, frame: Vec<u8>, ip_version: u8) -> Whole {
        Whole {
            name,
            frame,
            ip_version,
        }
    }

    /// The datagram made to end after `len` bytes of the frame: its IP
    /// length field says so, and the frame is padded as a sender pads it.
    fn ended(&self, len: usize, place: &str, expect: Notice) -> Case {
        let ip_len = (len - ETH_HLEN) as u16;
        let frame = match self.ip_version {
            4 => with_ipv4_total_length(self.frame[..len].to_vec(), ip_len),
            6 => with_ipv6_payload_length(self.frame[..len].to_vec(), ip_len - IPV6_HLEN as u16),
            _ => unreachable!("only IP datagrams have a length to end"),
        };
        Case::new(
            format!("{}-ends-{len}-{place}", self.name),
            padded(frame),
            expect,
        )
    }

    /// The frame cut to its first `len` bytes, with what the program knows
    /// by then; `place` says where the cut falls, for the name.
    fn cut(&self, len: usize, place: &str, expect: Notice) -> Case {
        Case::new(
            format!("{}-cut-{len}-{place}", self.name),
            self.frame[..len].to_vec(),
            expect,
        )
    }
}

/// Frames that end inside a header: the notice keeps what was read before
/// the cut and says FLAG_TRUNCATED. Where the cut falls after the fixed IP
/// header, two cases: the frame cut short (its IP length field now claims
/// more than there is: FLAG_MALFORMED) and the datagram made short (the
/// length field says where it ends; the frame padded to 60 bytes as every
/// Ethernet sender pads it: FLAG_TRUNCATED, the tiny-fragment case).
pub(super) fn truncations() -> Vec<Case> {
    let truncated = |notice: Notice| flagged(notice, FLAG_TRUNCATED);
    let malformed = |notice: Notice| flagged(notice, FLAG_MALFORMED);
    let nothing = truncated(PASSED); // DEPTH_NONE
    let mut cases = Vec::new();

    let tcp = Whole::new("ipv4-tcp-syn", ipv4_tcp_syn(), 4);
    let l4 = ETH_HLEN + IPV4_HLEN;
    let tcp4 = ipv4(ip_number::TCP);
    cases.extend([
        tcp.cut(0, "empty", nothing),
        tcp.cut(6, "in-ethernet", nothing),
        tcp.cut(ETH_HLEN - 1, "in-ethernet", nothing),
        tcp.cut(ETH_HLEN, "after-ethernet", truncated(l2(EtherType::IPV4))),
        tcp.cut(ETH_HLEN + 10, "in-ipv4", truncated(l2(EtherType::IPV4))),
        tcp.cut(l4, "after-ipv4", malformed(tcp4)),
        tcp.cut(l4 + 13, "in-tcp", malformed(tcp4)),
        tcp.ended(l4, "after-ipv4", truncated(tcp4)),
        // Eight bytes of TCP: ports, no flags.
        tcp.ended(l4 + 8, "in-tcp", truncated(tcp4)),
        tcp.ended(l4 + 19, "in-tcp", truncated(tcp4)),
    ]);

    let udp = Whole::new("ipv4-udp", ipv4_udp(), 4);
    cases.push(udp.ended(l4 + 4, "in-udp", truncated(ipv4(ip_number::UDP))));

    let icmp = Whole::new("ipv4-icmp-echo-request", ipv4_icmp_echo(), 4);
    cases.push(icmp.ended(l4 + 4, "in-icmp", truncated(ipv4(ip_number::ICMP))));

    // A datagram that ends inside its own options is shorter than its header.
    let options = Whole::new("ipv4-options-udp", ipv4_options_udp(), 4);
    cases.extend([
        options.cut(l4 + 4, "in-options", malformed(ipv4(ip_number::UDP))),
        options.ended(l4 + 4, "in-options", malformed(ipv4(ip_number::UDP))),
    ]);

    // The tag is read whole or not at all: cut inside it, the walk has no
    // VLAN id and no EtherType past the tag.
    let vlan = Whole::new("vlan-ipv4-udp", vlan_ipv4_udp(), 0);
    let tagged_len = ETH_HLEN + VLAN_HLEN;
    cases.extend([
        // Cut inside a tag, the frame still says it was tagged: its TPID.
        vlan.cut(
            ETH_HLEN + 2,
            "in-vlan-tag",
            truncated(l2(EtherType::VLAN_TAGGED_FRAME)),
        ),
        vlan.cut(
            tagged_len,
            "after-vlan-tag",
            truncated(tagged(l2(EtherType::IPV4), &[100])),
        ),
    ]);
    let qinq = Whole::new("qinq-ipv6-tcp-syn", qinq_ipv6_tcp(), 0);
    cases.push(qinq.cut(
        tagged_len + 2,
        "in-inner-tag",
        truncated(tagged(l2(EtherType::VLAN_TAGGED_FRAME), &[200])),
    ));

    let l4 = ETH_HLEN + IPV6_HLEN;
    let udp6 = Whole::new("ipv6-udp", ipv6_udp(), 6);
    cases.extend([
        udp6.cut(ETH_HLEN + 20, "in-ipv6", truncated(l2(EtherType::IPV6))),
        udp6.cut(l4, "after-ipv6", malformed(ipv6(ip_number::UDP))),
        udp6.ended(l4, "after-ipv6", truncated(ipv6(ip_number::UDP))),
        udp6.ended(l4 + 4, "in-udp", truncated(ipv6(ip_number::UDP))),
    ]);
    let tcp6 = Whole::new("ipv6-tcp-fin-psh-ack", ipv6_tcp_fin_psh_ack(), 6);
    cases.push(tcp6.ended(l4 + 10, "in-tcp", truncated(ipv6(ip_number::TCP))));
    let icmp6 = Whole::new("ipv6-icmpv6-echo-request", ipv6_icmpv6_echo(), 6);
    cases.push(icmp6.ended(l4 + 4, "in-icmpv6", truncated(ipv6(ip_number::IPV6_ICMP))));

    let ext = Whole::new("ipv6-ext-fragment-first-udp", ipv6_ext_udp(0, true), 6);
    let hop_by_hop = truncated(ipv6(ip_number::IPV6_HOP_BY_HOP));
    cases.extend([
        ext.ended(l4 + 1, "in-hop-by-hop", hop_by_hop),
        ext.ended(l4 + 10, "in-hop-by-hop", hop_by_hop),
        ext.ended(
            FRAGMENT_AT + 4,
            "in-fragment-header",
            truncated(ipv6(ip_number::IPV6_FRAG)),
        ),
    ]);
    let ah = Whole::new("ipv6-ah-tcp-syn", ipv6_ah_tcp_syn(), 6);
    cases.push(ah.ended(l4 + 16, "in-ah", truncated(ipv6(ip_number::AUTH))));
    cases
}
