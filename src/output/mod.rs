//! Notices as lines: text (a column header, then one line per packet) or
//! JSON Lines (one object per packet, for `jq` and friends).

mod fields;
mod json;
mod names;
mod text;

use std::collections::HashMap;

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
    iface_names: HashMap<u32, String>,
}

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
            iface_names: HashMap::new(),
        }
    }

    /// Names interface `ifindex` `name` in every line, from the start.
    pub fn name_interface(&mut self, ifindex: u32, name: &str) {
        self.iface_names.insert(ifindex, name.to_string());
    }

    /// The column header, where the style has one.
    pub fn header(&self) -> Option<&'static str> {
        let header = if self.dry_run { DRY_RUN_HEADER } else { HEADER };
        (self.style == Style::Text).then_some(header)
    }

    /// One line (without the newline) for `notice`.
    pub fn line(&mut self, notice: &Notice) -> String {
        let realtime_ns = notice.timestamp_ns as i128 + self.monotonic_to_realtime_ns;
        let iface = self
            .iface_names
            .entry(notice.ifindex)
            .or_insert_with(|| iface::name_of(notice.ifindex));
        match self.style {
            Style::Text if self.dry_run => {
                format_dry_run_line(&local_time(realtime_ns), iface, notice)
            }
            Style::Text => format_line(&local_time(realtime_ns), iface, notice),
            Style::Json => json_line(realtime_ns, iface, notice, self.dry_run),
        }
    }
}

/// What turns the kernel's timestamps (`bpf_ktime_get_ns`, CLOCK_MONOTONIC)
/// into wall-clock nanoseconds since 1970, added to them.
pub fn monotonic_to_realtime_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// `HH:MM:SS.micros` in local time.
fn local_time(realtime_ns: i128) -> String {
    let micros = (realtime_ns % 1_000_000_000) / 1000;
    let tm = local_tm(realtime_ns);
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        tm.tm_hour, tm.tm_min, tm.tm_sec, micros
    )
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
            detail(&n).ends_with("(8 tags) vlan-limit"),
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
