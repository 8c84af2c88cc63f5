//! Capture (`-w`): notices and the bytes captured with them as pcapng, the
//! format xdpdump writes, for tcpdump, tshark and Wireshark.
//!
//! The blocks are made by pcap-file: one section header, one interface
//! description per interface as its first packet comes (its name, Ethernet,
//! one snap length for all, nanosecond timestamps), and one enhanced packet
//! per notice (original and captured length, the time, inbound, and the
//! verdict with its deciding rule as the packet's comment).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{Block, PcapNgWriter};
use pcap_file::{DataLink, Endianness};

use crate::abi::{CaptureHeader, Notice, FLAG_MALFORMED, RULE_NONE};
use crate::firewall::ActiveRule;
use crate::iface;
use crate::output::{monotonic_to_realtime_ns, verdict_name};

/// epb_flags: bits 0-1 are the direction, 01 inbound; XDP sees only that.
const EPB_INBOUND: u32 = 0b01;
/// if_tsresol: 10^-9 s, the kernel's nanoseconds as they are.
const NANOSECONDS: u8 = 9;
/// Bytes of a ring record before the frame's, and the ring's own header.
const RECORD_HEADER_BYTES: u64 = (size_of::<Notice>() + size_of::<CaptureHeader>()) as u64;
const RING_HEADER_BYTES: u64 = 8;

/// Where `-w` writes: `None` for `-` (stdout), else the file, created (or
/// emptied) before anything is loaded, so that a bad path fails first.
pub fn open_output(path: &Path) -> Result<Option<File>> {
    if path == Path::new("-") {
        return Ok(None);
    }
    File::create(path)
        .map(Some)
        .with_context(|| format!("cannot write the capture to {}", path.display()))
}

/// Refuses a snap length whose longest record would not fit in the ring:
/// the kernel would drop every long packet's notice.
pub fn check_ring_room(snaplen: u32, ring_size: u32) -> Result<()> {
    let record = (RECORD_HEADER_BYTES + snaplen as u64 + RING_HEADER_BYTES).next_multiple_of(8);
    if record > ring_size as u64 {
        bail!(
            "--snaplen {snaplen} makes ring records of up to {record} bytes, more than \
             --ring-size {ring_size} holds: raise --ring-size or lower --snaplen"
        );
    }
    Ok(())
}

/// The packet comment: the verdict and what decided it, e.g. `DROP rule 3
/// 'deny tcp dport 22'`, `PASS default`; a dry run's verdict is `would DROP`.
/// `rule` is the rule the notice's counter slot stands for.
pub fn comment(notice: &Notice, rule: Option<&ActiveRule>, dry_run: bool) -> String {
    let mut text = String::with_capacity(64);
    if dry_run {
        text.push_str("would ");
    }
    text.push_str(verdict_name(notice.verdict));
    match rule {
        Some(active) => {
            let _ = write!(text, " rule {} '{}'", active.id, active.rule.rule);
        }
        None if notice.rule_id != RULE_NONE => {
            let _ = write!(text, " rule {}", notice.rule_id);
        }
        // IP the rules judged and none matched: --default decided. Other
        // traffic (ARP, malformed IP) is not the rules' to judge.
        None if notice.ip_version != 0 && notice.flags & FLAG_MALFORMED == 0 => {
            text.push_str(" default")
        }
        None => {}
    }
    text
}

/// Turns notices into pcapng blocks, written by pcap-file straight into
/// the caller's buffer.
pub struct PcapngWriter {
    /// pcap-file's writer: it knows the section and the interfaces
    /// described. Its own Vec holds the section header until
    /// [`PcapngWriter::start`]; after that it holds, for the time of one
    /// packet, the caller's buffer (swapped in and out, nothing copied).
    blocks: PcapNgWriter<Vec<u8>>,
    /// The packet block, kept from packet to packet so that its data
    /// buffer and options are reused, not allocated per packet.
    packet: Block<'static>,
    snaplen: u32,
    /// `(ifindex, interface id)` of each interface described, in the order
    /// of description: a handful, faster scanned than hashed.
    interfaces: Vec<(u32, u32)>,
    /// The packet options (comment and flags) for each [`CommentKey`] seen
    /// since the rules last changed, and where each is: the comment is made
    /// once per verdict and rule, not per packet. The last one used is
    /// tried first, unhashed (a flood is mostly one verdict and rule).
    options: Vec<(CommentKey, Vec<EnhancedPacketOption<'static>>)>,
    options_of: HashMap<CommentKey, usize>,
    last_used: usize,
    monotonic_to_realtime_ns: i128,
}

/// What a packet's comment depends on besides the rules in force: the
/// verdict, the kernel's counter slot of the deciding rule, and whether
/// the rules judged the packet at all (IP and well formed).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CommentKey {
    verdict: u32,
    rule_slot: u32,
    judged: bool,
}

impl CommentKey {
    fn of(notice: &Notice, rule_slot: u32) -> Self {
        CommentKey {
            verdict: notice.verdict as u32,
            rule_slot,
            judged: notice.ip_version != 0 && notice.flags & FLAG_MALFORMED == 0,
        }
    }
}

impl PcapngWriter {
    /// A writer whose section header is what [`PcapngWriter::start`] hands out.
    pub fn new(snaplen: u32) -> Self {
        let section = SectionHeaderBlock {
            endianness: Endianness::native(),
            options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                concat!("xdp-hello ", env!("CARGO_PKG_VERSION")),
            ))],
            ..SectionHeaderBlock::default()
        };
        let blocks = PcapNgWriter::with_section_header(Vec::with_capacity(4096), section)
            .expect("writing into a Vec cannot fail");
        PcapngWriter {
            blocks,
            packet: Block::EnhancedPacket(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::ZERO,
                original_len: 0,
                data: Cow::Owned(Vec::with_capacity(snaplen.min(4096) as usize)),
                options: Vec::new(),
            }),
            snaplen,
            interfaces: Vec::new(),
            options: Vec::new(),
            options_of: HashMap::new(),
            last_used: 0,
            monotonic_to_realtime_ns: monotonic_to_realtime_ns(),
        }
    }

    /// The section header, to be written first.
    pub fn start(&mut self) -> &[u8] {
        self.blocks.get_ref()
    }

    /// The rules changed: comments are made anew.
    pub fn forget_comments(&mut self) {
        self.options.clear();
        self.options_of.clear();
        self.last_used = 0;
    }

    /// Appends to `out` the blocks for `notice` and the `frame` bytes
    /// captured with it: its interface's description first if it is the
    /// first from there, then its packet. `rule_slot` is the kernel's
    /// counter slot of the deciding rule; `comment` makes the packet's
    /// comment (see [`comment`]) when none is kept for the verdict and rule.
    pub fn packet(
        &mut self,
        notice: &Notice,
        rule_slot: u32,
        frame: &[u8],
        comment: impl FnOnce() -> String,
        out: &mut Vec<u8>,
    ) {
        self.packet_on(notice, rule_slot, frame, comment, iface::name_of, out)
    }

    /// As [`PcapngWriter::packet`], naming interfaces with `name_of`.
    fn packet_on(
        &mut self,
        notice: &Notice,
        rule_slot: u32,
        frame: &[u8],
        comment: impl FnOnce() -> String,
        name_of: impl FnOnce(u32) -> String,
        out: &mut Vec<u8>,
    ) {
        std::mem::swap(self.blocks.get_mut(), out);
        let interface_id = match self.interfaces.iter().find(|(i, _)| *i == notice.ifindex) {
            Some(&(_, id)) => id,
            None => self.describe(notice.ifindex, &name_of(notice.ifindex)),
        };
        let key = CommentKey::of(notice, rule_slot);
        if self
            .options
            .get(self.last_used)
            .is_none_or(|(last, _)| *last != key)
        {
            let made = self.options.len();
            self.last_used = *self.options_of.entry(key).or_insert(made);
            if self.last_used == made {
                let options = vec![
                    EnhancedPacketOption::Comment(Cow::Owned(comment())),
                    EnhancedPacketOption::Flags(EPB_INBOUND),
                ];
                self.options.push((key, options));
            }
        }
        let options = &mut self.options[self.last_used].1;
        let Block::EnhancedPacket(packet) = &mut self.packet else {
            unreachable!("the packet block is made enhanced")
        };
        let realtime_ns = notice.timestamp_ns as i128 + self.monotonic_to_realtime_ns;
        packet.interface_id = interface_id;
        packet.timestamp = Duration::from_nanos(realtime_ns.max(0) as u64);
        packet.original_len = notice.packet_len;
        let data = packet.data.to_mut();
        data.clear();
        data.extend_from_slice(frame);
        // Lent to the block for this write, then given back.
        std::mem::swap(&mut packet.options, options);
        let written = self.blocks.write_block(&self.packet);
        let Block::EnhancedPacket(packet) = &mut self.packet else {
            unreachable!()
        };
        std::mem::swap(&mut packet.options, options);
        written.expect("writing into a Vec cannot fail, and the interface is described");
        std::mem::swap(self.blocks.get_mut(), out);
    }

    /// Writes the description of interface `ifindex`; returns its id.
    fn describe(&mut self, ifindex: u32, name: &str) -> u32 {
        let id = self.interfaces.len() as u32;
        let description = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            // One snap length for all interfaces: libpcap refuses a file
            // whose interfaces differ in it.
            snaplen: self.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed(name)),
                InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
            ],
        };
        self.blocks
            .write_pcapng_block(description)
            .expect("writing into a Vec cannot fail");
        self.interfaces.push((ifindex, id));
        id
    }
}

#[cfg(test)]
mod tests {
    use pcap_file::pcapng::{Block, PcapNgReader};

    use super::*;
    use crate::abi::{XDP_DROP, XDP_PASS};
    use crate::policy::{Origin, SourcedRule};

    fn notice(ifindex: u32, packet_len: u32, timestamp_ns: u64) -> Notice {
        let mut n = Notice::ZERO;
        n.ifindex = ifindex;
        n.packet_len = packet_len;
        n.timestamp_ns = timestamp_ns;
        n.ip_version = 4;
        n
    }

    /// Every block written, read back by pcap-file's reader.
    fn blocks_of(bytes: &[u8]) -> Vec<Block<'static>> {
        let mut reader = PcapNgReader::new(bytes).expect("a section header first");
        let mut blocks = Vec::new();
        while let Some(block) = reader.next_block() {
            blocks.push(block.expect("a valid block").into_owned());
        }
        blocks
    }

    #[test]
    fn packets_read_back_with_their_interfaces_lengths_and_comments() {
        let mut writer = PcapngWriter::new(128);
        writer.monotonic_to_realtime_ns = 1_000_000_000_000;
        let mut file = writer.start().to_vec();
        let name = |ifindex: u32| format!("veth{ifindex}");
        let mut add = |n: Notice, slot: u32, frame: &[u8], comment: &str| {
            let comment = || comment.to_string();
            writer.packet_on(&n, slot, frame, comment, name, &mut file);
        };
        add(notice(7, 60, 5), RULE_NONE, &[1; 60], "PASS default");
        add(notice(9, 2000, 6), 1, &[2; 128], "DROP rule 1");
        add(notice(7, 42, 7), 2, &[3; 42], "PASS");

        let blocks = blocks_of(&file);
        // Section header, then each interface described once, before its first packet.
        let kinds: Vec<&str> = blocks
            .iter()
            .map(|block| match block {
                Block::InterfaceDescription(_) => "if",
                Block::EnhancedPacket(_) => "packet",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["if", "packet", "if", "packet", "packet"]);
        let Block::InterfaceDescription(first) = &blocks[0] else {
            unreachable!()
        };
        assert_eq!((first.linktype, first.snaplen), (DataLink::ETHERNET, 128));
        assert!(first
            .options
            .contains(&InterfaceDescriptionOption::IfName("veth7".into())));
        assert!(first
            .options
            .contains(&InterfaceDescriptionOption::IfTsResol(9)));

        let packets: Vec<&EnhancedPacketBlock> = blocks
            .iter()
            .filter_map(|block| match block {
                Block::EnhancedPacket(packet) => Some(packet),
                _ => None,
            })
            .collect();
        let summary: Vec<(u32, u32, usize, u128)> = packets
            .iter()
            .map(|p| {
                (
                    p.interface_id,
                    p.original_len,
                    p.data.len(),
                    p.timestamp.as_nanos(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, 60, 60, 1_000_000_000_005),
                (1, 2000, 128, 1_000_000_000_006),
                (0, 42, 42, 1_000_000_000_007)
            ]
        );
        assert_eq!(&packets[1].data[..], &[2; 128][..]);
        assert_eq!(
            packets[1].options,
            [
                EnhancedPacketOption::Comment("DROP rule 1".into()),
                EnhancedPacketOption::Flags(EPB_INBOUND)
            ]
        );
    }

    /// The comments of the packets `writer` writes for `notices` (each
    /// with its rule slot), and how many times one was made.
    fn comments_made(writer: &mut PcapngWriter, notices: &[(Notice, u32)]) -> (Vec<String>, usize) {
        let mut file = writer.start().to_vec();
        writer.interfaces.clear(); // each file describes its interface
        let mut made = 0;
        for (n, slot) in notices {
            let comment = || {
                made += 1;
                format!("made {made}")
            };
            writer.packet_on(n, *slot, &[0; 20], comment, |_| "x".into(), &mut file);
        }
        let comments = blocks_of(&file)
            .into_iter()
            .filter_map(|block| match block {
                Block::EnhancedPacket(packet) => match &packet.options[0] {
                    EnhancedPacketOption::Comment(text) => Some(text.to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        (comments, made)
    }

    #[test]
    fn a_comment_is_made_once_per_verdict_and_rule_until_the_rules_change() {
        let mut writer = PcapngWriter::new(64);
        let mut dropped = notice(1, 60, 0);
        dropped.verdict = XDP_DROP;
        let mut arp = notice(1, 60, 0);
        arp.ip_version = 0;
        let notices = [
            (notice(1, 60, 0), RULE_NONE),
            (dropped, 4),
            (notice(1, 60, 0), RULE_NONE),
            (dropped, 4),
            (arp, RULE_NONE),
            (dropped, 5),
        ];
        let (comments, made) = comments_made(&mut writer, &notices);
        assert_eq!(
            comments,
            ["made 1", "made 2", "made 1", "made 2", "made 3", "made 4"]
        );
        assert_eq!(made, 4);
        writer.forget_comments();
        let (comments, made) = comments_made(&mut writer, &notices[..2]);
        assert_eq!(
            (comments, made),
            (vec!["made 1".into(), "made 2".into()], 2)
        );
    }

    #[test]
    fn comments_name_the_verdict_and_what_decided_it() {
        let rule = ActiveRule {
            id: 3,
            rule: std::sync::Arc::new(SourcedRule {
                rule: "deny tcp dport 22".parse().unwrap(),
                origin: Origin::Flag(1),
            }),
        };
        let mut dropped = notice(1, 60, 0);
        dropped.verdict = XDP_DROP;
        dropped.rule_id = 0; // the rule's counter slot
        assert_eq!(
            comment(&dropped, Some(&rule), false),
            "DROP rule 3 'deny tcp dport 22'"
        );
        assert_eq!(
            comment(&dropped, Some(&rule), true),
            "would DROP rule 3 'deny tcp dport 22'"
        );
        let mut passed = notice(1, 60, 0);
        passed.verdict = XDP_PASS;
        assert_eq!(comment(&passed, None, false), "PASS default");
        passed.ip_version = 0; // ARP: no rule judges it
        assert_eq!(comment(&passed, None, false), "PASS");
    }

    #[test]
    fn a_snaplen_must_fit_the_ring() {
        assert!(check_ring_room(crate::abi::MAX_SNAPLEN, 4 << 20).is_ok());
        assert!(check_ring_room(4096 - 104, 4096).is_ok());
        let err = check_ring_room(4096 - 103, 4096).unwrap_err().to_string();
        assert!(
            err.contains("raise --ring-size or lower --snaplen"),
            "{err}"
        );
    }
}
