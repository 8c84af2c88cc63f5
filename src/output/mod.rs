//! Notices as lines: text (a column header, then one line per packet) or
//! JSON Lines (one object per packet, for `jq` and friends).

mod fields;
mod json;
mod names;
mod text;

use rustc_hash::FxHashMap;

use crate::abi::Notice;
use crate::iface;

pub use json::json_line;
pub use names::{protocol, verdict_name};
pub use text::{detail, format_dry_run_line, format_line, DRY_RUN_HEADER, HEADER};

/// How notices are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Text,
    Json,
}

/// Formats notices; remembers interface names and how to turn the kernel's
/// monotonic timestamps into wall-clock time.
pub struct Formatter {
    style: Style,
    /// Verdicts were computed, not enforced (`--dry-run`).
    dry_run: bool,
    monotonic_to_realtime_ns: i128,
    ifaces: FxHashMap<u32, Iface>,
    clock: LocalClock,
}

/// An interface's name as the writers write it: its text column, and as a
/// JSON string.
struct Iface {
    column: Vec<u8>,
    json: Vec<u8>,
}

impl Iface {
    fn named(name: &str) -> Iface {
        Iface {
            column: text::iface_column(name),
            json: json::escaped_name(name),
        }
    }
}

/// Room for a line of either style, reserved before writing one so that
/// the writers never grow the buffer in the middle of it.
const LINE_ROOM: usize = 1024;

impl Formatter {
    pub fn new(style: Style) -> Self {
        Self::with(style, false)
    }

    /// A formatter for a run that is a dry run or not.
    pub fn with(style: Style, dry_run: bool) -> Self {
        Formatter {
            style,
            dry_run,
            monotonic_to_realtime_ns: monotonic_to_realtime_ns(),
            ifaces: FxHashMap::default(),
            clock: LocalClock::default(),
        }
    }

    /// Names interface `ifindex` `name` in every line, from the start.
    pub fn name_interface(&mut self, ifindex: u32, name: &str) {
        self.ifaces.insert(ifindex, Iface::named(name));
    }

    /// The column header, where the style has one.
    pub fn header(&self) -> Option<&'static str> {
        let header = if self.dry_run { DRY_RUN_HEADER } else { HEADER };
        (self.style == Style::Text).then_some(header)
    }

    /// Appends the line for `notice` (without the newline) to `out`: no
    /// allocation once the interface is known.
    pub fn write_line(&mut self, notice: &Notice, out: &mut Vec<u8>) {
        let realtime_ns = notice.timestamp_ns as i128 + self.monotonic_to_realtime_ns;
        let iface = self
            .ifaces
            .entry(notice.ifindex)
            .or_insert_with(|| Iface::named(&iface::name_of(notice.ifindex)));
        out.reserve(LINE_ROOM);
        match self.style {
            Style::Text => {
                text::time_column(out, &self.clock.time_of(realtime_ns));
                out.extend_from_slice(&iface.column);
                text::write_columns(out, notice, self.dry_run);
            }
            Style::Json => json::write_json(out, realtime_ns, &iface.json, notice, self.dry_run),
        }
    }
}

/// What turns the kernel's timestamps (`bpf_ktime_get_ns`, CLOCK_MONOTONIC)
/// into wall-clock nanoseconds since 1970, added to them.
pub fn monotonic_to_realtime_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// What the writers wrote into a buffer, as a String: for the functions
/// that return one (tests, and callers off the hot path).
pub(crate) fn text_of(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).expect("the writers write UTF-8")
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// `HH:MM:SS.micros` in local time, with localtime_r called once a second
/// rather than once a notice.
#[derive(Default)]
struct LocalClock {
    /// The second `hms` is for, if any yet.
    second: Option<libc::time_t>,
    /// `HH:MM:SS.` of that second.
    hms: [u8; 9],
}

impl LocalClock {
    /// `HH:MM:SS.micros`, the local time of `realtime_ns` (nanoseconds
    /// since the epoch, not before it).
    fn time_of(&mut self, realtime_ns: i128) -> [u8; 15] {
        // In 64 bits: 128-bit division is a call of its own.
        let realtime_ns = u64::try_from(realtime_ns).unwrap_or(0);
        let secs = (realtime_ns / 1_000_000_000) as libc::time_t;
        let micros = (realtime_ns % 1_000_000_000 / 1000) as u32;
        if self.second != Some(secs) {
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            unsafe { libc::localtime_r(&secs, &mut tm) };
            for (at, value) in [(0, tm.tm_hour), (3, tm.tm_min), (6, tm.tm_sec)] {
                self.hms[at] = b'0' + (value / 10) as u8;
                self.hms[at + 1] = b'0' + (value % 10) as u8;
                self.hms[at + 2] = if at == 6 { b'.' } else { b':' };
            }
            self.second = Some(secs);
        }
        let mut time = [0u8; 15];
        time[..9].copy_from_slice(&self.hms);
        let mut rest = micros;
        for digit in time[9..].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        time
    }
}

/// The local date and time to the second, ISO 8601 with the offset from
/// UTC: `2026-12-01T20:11:42+01:00`.
pub fn local_date_time(realtime_ns: i128) -> String {
    let tm = local_tm(realtime_ns);
    let offset_minutes = tm.tm_gmtoff / 60;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        if offset_minutes < 0 { '-' } else { '+' },
        offset_minutes.abs() / 60,
        offset_minutes.abs() % 60
    )
}

/// The current wall-clock time, as [`local_date_time`] takes it.
pub fn realtime_now_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME)
}

fn local_tm(realtime_ns: i128) -> libc::tm {
    let secs = (realtime_ns / 1_000_000_000) as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    tm
}

/// Notices and readings for the tests of every writer.
#[cfg(test)]
mod fixtures {
    use super::json_line;
    use crate::abi::*;

    /// A TCP notice from 10.0.0.2 to 10.0.0.1, for the tests of every writer.
    pub(super) fn notice() -> Notice {
        let mut n = Notice::ZERO;
        n.packet_len = 74;
        n.ether_type = ETH_P_IP;
        n.ip_version = 4;
        n.depth = DEPTH_L4;
        n.src_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
        n.dst_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        n
    }

    /// An Ethernet/IPv4 ARP notice with operation `op`, from 10.0.0.2 to
    /// 10.0.0.1.
    pub(super) fn arp_notice(op: u8) -> Notice {
        let mut n = Notice::ZERO;
        n.packet_len = 42;
        n.ether_type = ETH_P_ARP;
        n.depth = DEPTH_L3;
        n.arp_op = op;
        n.src_addr[..10].copy_from_slice(&[10, 0, 0, 2, 0x02, 0, 0, 0, 0, 0x02]);
        n.dst_addr[..10].copy_from_slice(&[10, 0, 0, 1, 0x02, 0, 0, 0, 0, 0x01]);
        n
    }

    /// The JSON line of `notice`, parsed back.
    pub(super) fn json_of(notice: &Notice) -> serde_json::Value {
        serde_json::from_str(&json_line(0, "veth0", notice, false)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{arp_notice, json_of, notice};
    use super::*;
    use crate::abi::*;

    /// Issue 7 item 25: a priority tag (VLAN id 0) shows, in text and JSON,
    /// and so do stacks deeper than the two ids a notice carries.
    #[test]
    fn priority_tags_show() {
        let mut n = notice();
        n.l4_proto = IPPROTO_ICMP;
        n.icmp_type = 8;
        n.vlan_count = 1;
        assert_eq!(detail(&n), "echo-request vlan 0");
        assert_eq!(json_of(&n)["vlan"], serde_json::json!([0]));
        assert_eq!(json_of(&n)["vlan_tags"], 1);

        n.vlan_count = 3;
        n.vlan_inner = 5;
        assert_eq!(detail(&n), "echo-request vlan 0.5 (3 tags)");
        assert_eq!(json_of(&n)["vlan"], serde_json::json!([0, 5]));
        assert_eq!(json_of(&n)["vlan_tags"], 3);

        n.vlan_count = 0;
        assert_eq!(detail(&n), "echo-request");
        assert_eq!(json_of(&n)["vlan"], serde_json::json!([]));
    }

    #[test]
    fn vlan_limit_is_a_flag_in_text_and_json() {
        let mut n = Notice::ZERO;
        n.depth = DEPTH_L2;
        n.ether_type = ETH_P_8021Q;
        n.vlan_count = MAX_VLAN_TAGS as u8;
        n.flags = FLAG_VLAN_LIMIT;
        n.verdict = XDP_DROP;
        assert!(
            detail(&n).ends_with("(more than 8 tags) vlan-limit"),
            "{}",
            detail(&n)
        );
        assert_eq!(json_of(&n)["flags"], serde_json::json!(["vlan-limit"]));
    }

    /// Issue 7 item 25: IP protocols other than TCP, UDP and ICMP are named,
    /// or given by number, instead of a bare `IPv4`.
    #[test]
    fn other_ip_protocols_are_named_or_numbered() {
        let mut n = notice();
        n.depth = DEPTH_L3;
        for (version, proto, name) in [
            (4, 132, "SCTP"),
            (6, 132, "SCTP"),
            (4, 47, "GRE"),
            (4, IPPROTO_ESP, "ESP"),
            (6, IPPROTO_ESP, "ESP"),
            (6, IPPROTO_AH, "AH"),
            (4, 253, "253"),
            (6, 59, "59"),
            (6, IPPROTO_ICMP, "1"),
            // Stopped inside the IPv6 extension headers: no transport known.
            (6, IPPROTO_DSTOPTS, "IPv6"),
        ] {
            n.ip_version = version;
            n.l4_proto = proto;
            assert_eq!(protocol(&n), name, "IPv{version} protocol {proto}");
            assert_eq!(json_of(&n)["proto"], name);
            assert_eq!(json_of(&n)["ip_proto"], proto);
        }
        let line = format_line("t", "lo", &n);
        assert!(line.contains(" IPv6 "), "{line}");
    }

    /// Issue 7 item 25: ARP lines say who-has / is-at with their addresses,
    /// as tcpdump does; the JSON has the sender's and target's addresses.
    #[test]
    fn arp_lines_say_who_has_and_is_at() {
        let request = format_line("t", "veth0", &arp_notice(1));
        assert!(
            request.contains(" ARP     PASS    10.0.0.2 → 10.0.0.1  "),
            "{request}"
        );
        assert!(
            request.ends_with("10.0.0.1  who-has 10.0.0.1 tell 10.0.0.2"),
            "{request}"
        );
        let mut reply = arp_notice(2);
        std::mem::swap(&mut reply.src_addr, &mut reply.dst_addr);
        let reply = format_line("t", "veth0", &reply);
        assert!(
            reply.ends_with(" 10.0.0.1 is-at 02:00:00:00:00:01"),
            "{reply}"
        );
        assert_eq!(detail(&arp_notice(3)), "op 3");

        let value = json_of(&arp_notice(1));
        assert_eq!(value["proto"], "ARP");
        assert_eq!(value["arp_op"], 1);
        assert_eq!(value["src"], "10.0.0.2");
        assert_eq!(value["dst"], "10.0.0.1");
        assert_eq!(value["arp_sender_mac"], "02:00:00:00:00:02");
        assert_eq!(value["arp_target_mac"], "02:00:00:00:00:01");
        assert_eq!(value["ip_proto"], serde_json::Value::Null);

        // ARP of another kind (not Ethernet/IPv4): no body to show.
        let mut other = arp_notice(0);
        other.depth = DEPTH_L2;
        assert_eq!(detail(&other), "");
        assert_eq!(json_of(&other)["src"], serde_json::Value::Null);
        assert_eq!(json_of(&other)["arp_op"], serde_json::Value::Null);
    }
}

/// The writers write what the core::fmt ones they replaced wrote, on many
/// random notices: text, dry-run text and JSON, byte for byte.
#[cfg(test)]
mod same_bytes {
    use super::*;
    use crate::abi::*;

    /// A notice with every field drawn from values the writers tell apart.
    fn random_notice(rng: &mut fastrand::Rng) -> Notice {
        let mut n = Notice::ZERO;
        let pick = |rng: &mut fastrand::Rng, choices: &[u8]| choices[rng.usize(..choices.len())];
        n.timestamp_ns = rng.u64(..1 << 62);
        rng.fill(&mut n.src_addr);
        rng.fill(&mut n.dst_addr);
        for addr in [&mut n.src_addr, &mut n.dst_addr] {
            // Runs of zero groups, and IPv4-mapped addresses, now and then.
            for byte in addr.iter_mut() {
                if rng.u8(..3) == 0 {
                    *byte = 0;
                }
            }
            if rng.u8(..8) == 0 {
                addr[..10].fill(0);
                addr[10..12].fill(0xff);
            }
        }
        n.ifindex = rng.u32(..4);
        n.rx_queue = rng.u32(..);
        n.packet_len = rng.u32(..70_000);
        n.rule_id = if rng.bool() { RULE_NONE } else { rng.u32(..) };
        n.ether_type =
            [ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_8021Q, 0x88cc, 0x0042][rng.usize(..6)];
        n.vlan_outer = rng.u16(..4096);
        n.vlan_inner = rng.u16(..4096);
        n.src_port = rng.u16(..);
        n.dst_port = rng.u16(..);
        n.ip_version = pick(rng, &[0, 4, 6, 5]);
        n.l4_proto = if rng.bool() {
            pick(
                rng,
                &[0, 1, 2, 6, 17, 41, 43, 44, 47, 50, 51, 58, 59, 60, 132],
            )
        } else {
            rng.u8(..)
        };
        n.icmp_type = pick(
            rng,
            &[0, 1, 3, 8, 11, 128, 129, 133, 134, 135, 136, 143, 200],
        );
        n.icmp_code = rng.u8(..16);
        n.tcp_flags = rng.u8(..);
        n.verdict = rng.u8(..4);
        n.depth = rng.u8(..5);
        n.flags = rng.u8(..32) & if rng.bool() { 0 } else { 0xff };
        n.vlan_count = rng.u8(..10);
        n.arp_op = rng.u8(..4);
        rng.fill(&mut n.eth_src);
        rng.fill(&mut n.eth_dst);
        n
    }

    /// `HH:MM:SS.micros` by localtime_r for every notice, as it was done.
    fn local_time(realtime_ns: i128) -> String {
        let secs = (realtime_ns / 1_000_000_000) as libc::time_t;
        let micros = (realtime_ns % 1_000_000_000) / 1000;
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe { libc::localtime_r(&secs, &mut tm) };
        format!(
            "{:02}:{:02}:{:02}.{:06}",
            tm.tm_hour, tm.tm_min, tm.tm_sec, micros
        )
    }

    /// The clock's cached second: times within one second and across many.
    #[test]
    fn the_cached_clock_tells_the_time_localtime_tells() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut clock = LocalClock::default();
        let mut ns: i128 = 1_780_000_000_000_000_000;
        for _ in 0..100_000 {
            ns += i128::from(rng.u64(..2_000_000_000));
            assert_eq!(clock.time_of(ns), local_time(ns).as_bytes());
        }
    }

    /// FNV-1a, 64 bits: a digest that no crate update can change.
    fn fnv1a(digest: u64, bytes: &[u8]) -> u64 {
        bytes.iter().fold(digest, |digest, &byte| {
            (digest ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The digest of the text, dry-run text, JSON and dry-run JSON lines of
    /// 20,000 random notices (seed 12), at a fixed time of day.
    fn digest_of_random_lines() -> u64 {
        let mut rng = fastrand::Rng::with_seed(12);
        let iface_json = json::escaped_name("veth\"0");
        let mut digest = 0xcbf2_9ce4_8422_2325;
        let mut out = Vec::new();
        for _ in 0..20_000 {
            let n = random_notice(&mut rng);
            out.clear();
            for dry_run in [false, true] {
                text::write_line(&mut out, "12:34:56.789012", "veth\"0", &n, dry_run);
                out.push(b'\n');
                json::write_json(&mut out, n.timestamp_ns.into(), &iface_json, &n, dry_run);
                out.push(b'\n');
            }
            digest = fnv1a(digest, &out);
        }
        digest
    }

    /// What the core::fmt writers (before the writers wrote into the
    /// buffer) wrote for those lines, recorded while a test compared both
    /// on 200,000 random notices: a change of any byte shows. A change
    /// meant: check it, then put the new digest here. (Changed since: a
    /// frame past the VLAN limit shows "(more than 8 tags)".)
    const DIGEST_OF_RANDOM_LINES: u64 = 0x96da_c7f7_56f9_2f25;

    #[test]
    fn the_lines_of_random_notices_are_unchanged() {
        assert_eq!(
            digest_of_random_lines(),
            DIGEST_OF_RANDOM_LINES,
            "the bytes of some line changed: {:#018x}",
            digest_of_random_lines()
        );
    }
}
