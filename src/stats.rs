//! The per-CPU counters of the XDP program, a block per interface, summed
//! over CPUs; the summary and its accounting of every packet.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::abi::RuleHits;
use crate::abi::{
    COUNTER_ABORTED, COUNTER_BLOCKS, COUNTER_BYTES, COUNTER_DROP, COUNTER_NOTICES_LOST,
    COUNTER_NOTICES_SENT, COUNTER_NOT_ASKED, COUNTER_OVER_RATE, COUNTER_PASS, COUNTER_SAMPLED_OUT,
    COUNTER_SLOTS,
};
use crate::firewall::ActiveRule;
use crate::output::{local_date_time, realtime_now_ns};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub passed: u64,
    pub dropped: u64,
    pub aborted: u64,
    pub notices_sent: u64,
    pub notices_lost: u64,
    /// Bytes (frame lengths) of the packets passed, dropped and aborted.
    pub passed_bytes: u64,
    pub dropped_bytes: u64,
    pub aborted_bytes: u64,
    /// Packets left without a notice: by `--sample`, by `--max-rate`, and
    /// because neither `--notices` nor a `log` rule asked for one.
    pub sampled_out: u64,
    pub over_rate: u64,
    pub not_asked: u64,
}

impl Counters {
    /// The counters of every interface together.
    pub fn read(counters: &dyn MapCore) -> Result<Counters> {
        (0..COUNTER_BLOCKS).try_fold(Counters::default(), |total, block| {
            Ok(total.plus(&Counters::read_block(counters, block)?))
        })
    }

    /// The counters of interface block `block` (`abi::Config::ifindexes`).
    pub fn read_block(counters: &dyn MapCore, block: u32) -> Result<Counters> {
        let slots = sum_block(counters, block)
            .with_context(|| format!("reading the counters of block {block}"))?;
        let slot = |counter: u32| slots[counter as usize];
        Ok(Counters {
            passed: slot(COUNTER_PASS),
            dropped: slot(COUNTER_DROP),
            aborted: slot(COUNTER_ABORTED),
            notices_sent: slot(COUNTER_NOTICES_SENT),
            notices_lost: slot(COUNTER_NOTICES_LOST),
            passed_bytes: slot(COUNTER_BYTES + COUNTER_PASS),
            dropped_bytes: slot(COUNTER_BYTES + COUNTER_DROP),
            aborted_bytes: slot(COUNTER_BYTES + COUNTER_ABORTED),
            sampled_out: slot(COUNTER_SAMPLED_OUT),
            over_rate: slot(COUNTER_OVER_RATE),
            not_asked: slot(COUNTER_NOT_ASKED),
        })
    }

    fn plus(&self, other: &Counters) -> Counters {
        Counters {
            passed: self.passed + other.passed,
            dropped: self.dropped + other.dropped,
            aborted: self.aborted + other.aborted,
            notices_sent: self.notices_sent + other.notices_sent,
            notices_lost: self.notices_lost + other.notices_lost,
            passed_bytes: self.passed_bytes + other.passed_bytes,
            dropped_bytes: self.dropped_bytes + other.dropped_bytes,
            aborted_bytes: self.aborted_bytes + other.aborted_bytes,
            sampled_out: self.sampled_out + other.sampled_out,
            over_rate: self.over_rate + other.over_rate,
            not_asked: self.not_asked + other.not_asked,
        }
    }

    pub fn packets(&self) -> u64 {
        self.passed + self.dropped + self.aborted
    }

    /// What became of the packets: each got a notice, or is counted by why
    /// it got none. Equal to [`Counters::packets`] when the kernel's
    /// accounting is whole.
    pub fn accounted(&self) -> u64 {
        self.notices_sent + self.sampled_out + self.over_rate + self.notices_lost + self.not_asked
    }
}

/// The accounting of one interface, one line: every packet it saw, by what
/// became of its notice.
pub fn accounting_line(iface: &str, counters: &Counters) -> String {
    let mut line = format!(
        "xdp-hello:   {iface}: {} packets = {} notices + {} sampled out + {} over the rate \
         + {} lost (ring full) + {} not asked for",
        counters.packets(),
        counters.notices_sent,
        counters.sampled_out,
        counters.over_rate,
        counters.notices_lost,
        counters.not_asked
    );
    if counters.accounted() != counters.packets() {
        // Never expected: say so rather than print a sum that does not add up.
        let _ = write!(
            line,
            " (does not add up: {} accounted)",
            counters.accounted()
        );
    }
    line.push('\n');
    line
}

/// Block `key` of the per-CPU `counters` (`abi::CounterBlock`), each slot
/// added up over every CPU: the one place a per-CPU counter is summed.
pub fn sum_block(map: &dyn MapCore, key: u32) -> libbpf_rs::Result<[u64; COUNTER_SLOTS as usize]> {
    let per_cpu = map
        .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)?
        .unwrap_or_default();
    let mut sums = [0u64; COUNTER_SLOTS as usize];
    for cpu in &per_cpu {
        for (sum, bytes) in sums.iter_mut().zip(cpu.chunks_exact(8)) {
            *sum += u64::from_ne_bytes(bytes.try_into().unwrap());
        }
    }
    Ok(sums)
}

/// What became of the notices that reached user space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    /// Lines written whole to stdout.
    pub written: u64,
    /// Notices read but not written, because writing had failed.
    pub unwritten: u64,
}

/// The closing summary: packets per verdict (in a dry run, what would have
/// been dropped), notices shown (written whole), lost and, after an output
/// failure, not written; then every rule with its packets and bytes. One
/// line each, every line prefixed.
pub fn summary(
    ifaces: &[(String, Counters)],
    counters: &Counters,
    shown: Shown,
    hits: &[(ActiveRule, RuleHits)],
    dry_run: bool,
) -> String {
    let names: Vec<&str> = ifaces.iter().map(|(name, _)| name.as_str()).collect();
    let iface = names.join(", ");
    let dropped = if dry_run {
        format!("{} would have been dropped (dry run)", counters.dropped)
    } else {
        format!("{} dropped", counters.dropped)
    };
    let mut text = format!(
        "xdp-hello: detached from {iface}. packets: {} passed, {dropped}, {} aborted; \
         notices: {} shown, {} lost (ring full)",
        counters.passed, counters.aborted, shown.written, counters.notices_lost
    );
    if shown.unwritten > 0 {
        let _ = write!(text, ", {} not written (output failed)", shown.unwritten);
    }
    text.push('\n');
    for (name, counters) in ifaces {
        text.push_str(&accounting_line(name, counters));
    }
    for (active, hits) in hits {
        let _ = writeln!(
            text,
            "xdp-hello:   rule {:>3} {:>10} hits {:>12} bytes  {}",
            active.id, hits.packets, hits.bytes, active.rule.rule
        );
    }
    text
}

/// Rates since the last `--stats` line.
pub struct Interval {
    every: Duration,
    last_at: Instant,
    last: Counters,
    last_hits: HashMap<u32, u64>,
}

impl Interval {
    pub fn new(every: Duration) -> Self {
        Interval {
            every,
            last_at: Instant::now(),
            last: Counters::default(),
            last_hits: HashMap::new(),
        }
    }

    /// Whether a line is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now.duration_since(self.last_at) >= self.every
    }

    /// The local date and time, then packets per second per verdict and the
    /// three busiest rules since the last line; remembers this point for the
    /// next one.
    pub fn line(&mut self, counters: &Counters, hits: &[(ActiveRule, RuleHits)]) -> String {
        let now = Instant::now();
        let secs = now.duration_since(self.last_at).as_secs_f64().max(1e-9);
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        let mut line = format!(
            "{} {:.0} pkt/s passed, {:.0} pkt/s dropped",
            local_date_time(realtime_now_ns()),
            rate(counters.passed, self.last.passed),
            rate(counters.dropped, self.last.dropped),
        );
        let mut busiest: Vec<(f64, &ActiveRule)> = hits
            .iter()
            .map(|(rule, hits)| {
                (
                    rate(hits.packets, *self.last_hits.get(&rule.id).unwrap_or(&0)),
                    rule,
                )
            })
            .filter(|(rate, _)| *rate > 0.0)
            .collect();
        busiest.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (rate, rule) in busiest.iter().take(3) {
            let _ = write!(line, "; rule {} '{}' {rate:.0}/s", rule.id, rule.rule.rule);
        }
        self.last_at = now;
        self.last = *counters;
        self.last_hits = hits
            .iter()
            .map(|(rule, hits)| (rule.id, hits.packets))
            .collect();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Origin, SourcedRule};

    fn rule(id: u32, text: &str) -> ActiveRule {
        ActiveRule {
            id,
            rule: std::sync::Arc::new(SourcedRule {
                rule: text.parse().unwrap(),
                origin: Origin::Flag(id as usize + 1),
            }),
        }
    }

    fn hits(packets: u64, bytes: u64) -> RuleHits {
        RuleHits { packets, bytes }
    }

    #[test]
    fn summary_lists_counts_then_every_rule() {
        let counters = Counters {
            passed: 23,
            dropped: 5,
            aborted: 0,
            notices_sent: 28,
            notices_lost: 0,
            ..Counters::default()
        };
        let hits = [
            (rule(0, "deny tcp dport 8080"), hits(5, 320)),
            (rule(1, "allow src 10.1.2.3"), hits(0, 0)),
        ];
        let shown = Shown {
            written: 28,
            unwritten: 0,
        };
        assert_eq!(
            summary(
                &[("veth0".into(), counters)],
                &counters,
                shown,
                &hits,
                false
            ),
            "xdp-hello: detached from veth0. packets: 23 passed, 5 dropped, 0 aborted; \
             notices: 28 shown, 0 lost (ring full)\n\
             xdp-hello:   veth0: 28 packets = 28 notices + 0 sampled out + 0 over the rate \
             + 0 lost (ring full) + 0 not asked for\n\
             xdp-hello:   rule   0          5 hits          320 bytes  deny tcp dport 8080\n\
             xdp-hello:   rule   1          0 hits            0 bytes  allow src 10.1.2.3\n"
        );
        assert!(
            summary(&[("veth0".into(), counters)], &counters, shown, &hits, true)
                .contains("23 passed, 5 would have been dropped (dry run), 0 aborted")
        );
    }

    #[test]
    fn summary_counts_unwritten_notices_apart() {
        let counters = Counters {
            passed: 10,
            notices_sent: 10,
            ..Counters::default()
        };
        let shown = Shown {
            written: 4,
            unwritten: 6,
        };
        assert_eq!(
            summary(&[("veth0".into(), counters)], &counters, shown, &[], false),
            "xdp-hello: detached from veth0. packets: 10 passed, 0 dropped, 0 aborted; \
             notices: 4 shown, 0 lost (ring full), 6 not written (output failed)\n\
             xdp-hello:   veth0: 10 packets = 10 notices + 0 sampled out + 0 over the rate \
             + 0 lost (ring full) + 0 not asked for\n"
        );
    }

    #[test]
    fn summary_names_every_interface_with_its_accounting() {
        let a = Counters {
            passed: 1000,
            notices_sent: 90,
            sampled_out: 900,
            over_rate: 6,
            notices_lost: 4,
            ..Counters::default()
        };
        let b = Counters {
            dropped: 7,
            not_asked: 7,
            ..Counters::default()
        };
        let total = a.plus(&b);
        let text = summary(
            &[("va".into(), a), ("vb".into(), b)],
            &total,
            Shown::default(),
            &[],
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0]
                .starts_with("xdp-hello: detached from va, vb. packets: 1000 passed, 7 dropped"),
            "{text}"
        );
        assert_eq!(
            lines[1],
            "xdp-hello:   va: 1000 packets = 90 notices + 900 sampled out + 6 over the rate \
             + 4 lost (ring full) + 0 not asked for"
        );
        assert_eq!(
            lines[2],
            "xdp-hello:   vb: 7 packets = 0 notices + 0 sampled out + 0 over the rate \
             + 0 lost (ring full) + 7 not asked for"
        );
    }

    #[test]
    fn accounting_that_does_not_add_up_says_so() {
        let counters = Counters {
            passed: 5,
            notices_sent: 3,
            ..Counters::default()
        };
        let line = accounting_line("va", &counters);
        assert!(line.ends_with("(does not add up: 3 accounted)\n"), "{line}");
    }

    #[test]
    fn interval_lines_give_rates_and_the_busiest_rules() {
        let mut interval = Interval::new(Duration::from_secs(1));
        interval.last_at = Instant::now() - Duration::from_secs(2);
        let counters = Counters {
            passed: 200,
            dropped: 100,
            ..Counters::default()
        };
        let hits = [
            (rule(0, "deny icmp"), hits(100, 6400)),
            (rule(1, "allow src 10.1.2.3"), hits(0, 0)),
        ];
        let line = interval.line(&counters, &hits);
        // It starts with the date and time, e.g. 2026-12-01T20:11:42+00:00.
        let (date, rates) = line.split_once(' ').unwrap();
        assert!(is_local_date_time(date), "{line}");
        // Two seconds went by: about 100 and 50 a second.
        assert!(
            rates.starts_with("100 pkt/s passed, 50 pkt/s dropped; rule 0 'deny icmp' 50/s"),
            "{line}"
        );
        assert!(
            !line.contains("rule 1"),
            "idle rules are not listed: {line}"
        );
        assert!(!interval.due(Instant::now()));
    }

    /// `YYYY-MM-DDTHH:MM:SS+HH:MM` (or `-HH:MM`), as ISO 8601 writes it.
    fn is_local_date_time(text: &str) -> bool {
        let shape = text
            .chars()
            .map(|c| if c.is_ascii_digit() { 'd' } else { c })
            .collect::<String>()
            .replace('-', "+");
        shape == "dddd+dd+ddTdd:dd:dd+dd:dd"
    }

    #[test]
    fn dates_are_iso_8601_local_time() {
        // 2026-12-01 20:11:42 UTC; the zone is the machine's, the shape fixed.
        let date = local_date_time(1_796_155_902_000_000_000);
        assert!(is_local_date_time(&date), "{date}");
        assert!(!is_local_date_time("20:11:42"));
    }
}
