//! `xdp-hello status [-j]`: every instance running in this network
//! namespace, asked over its abstract unix socket, in text or JSON.
//!
//! Each instance listens on `@xdp-hello/IFACE/PID`, IFACE its first `-i`
//! (see [`server`]);
//! instances are found by that name in `/proc/net/unix`, which lists the
//! sockets of the reader's network namespace.

pub mod server;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::instance::{unix_now, Report};
use crate::logging::say;

/// What an instance's socket name starts with, after the abstract
/// namespace's leading NUL.
const NAME_PREFIX: &str = "xdp-hello/";

/// An instance that has not answered within this is reported as stuck.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The abstract name of the status socket of process `pid` on `iface`.
/// The interface is in it because pids repeat across PID namespaces
/// (containers) that share one network namespace.
pub fn socket_name(iface: &str, pid: u32) -> String {
    format!("{NAME_PREFIX}{iface}/{pid}")
}

/// Prints every instance; returns whether there was at least one and each
/// answered.
pub fn run(json: bool) -> Result<bool> {
    let names = instance_names()?;
    let mut reports = Vec::new();
    let mut all_answered = true;
    for name in &names {
        match ask(name) {
            Ok(report) => reports.push(report),
            Err(err) => {
                say(format_args!("@{name}: {err:#}"));
                all_answered = false;
            }
        }
    }
    if json {
        #[derive(Serialize)]
        struct Instances<'a> {
            instances: &'a [Report],
        }
        println!(
            "{}",
            serde_json::to_string(&Instances {
                instances: &reports
            })?
        );
    } else if names.is_empty() {
        say("no xdp-hello instance is running in this network namespace");
    } else {
        let now = unix_now();
        for report in &reports {
            print!("{}", describe(report, now));
        }
    }
    Ok(!names.is_empty() && all_answered)
}

/// The names of the status sockets listening in this network namespace,
/// from `/proc/net/unix` (abstract names shown with a leading `@`).
fn instance_names() -> Result<BTreeSet<String>> {
    let table = std::fs::read_to_string("/proc/net/unix").context("reading /proc/net/unix")?;
    Ok(table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(7))
        .filter_map(|path| path.strip_prefix('@'))
        .filter(|name| name.starts_with(NAME_PREFIX))
        .map(str::to_string)
        .collect())
}

/// One instance's report over its socket.
fn ask(name: &str) -> Result<Report> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let mut stream = UnixStream::connect_addr(&addr).context("connecting")?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .context("reading its status")?;
    if text.is_empty() {
        bail!("no answer: an instance answers root and the user it runs as only");
    }
    let value: serde_json::Value = serde_json::from_str(&text).context("reading its status")?;
    if let Some(err) = value.get("error").and_then(|err| err.as_str()) {
        bail!("{err}");
    }
    serde_json::from_value(value).context("reading its status (another version of xdp-hello?)")
}

/// A few lines about one instance.
fn describe(report: &Report, now: f64) -> String {
    let about = &report.about;
    let counts = &report.counts;
    let mut text = match &about.interfaces[..] {
        [one] => format!(
            "xdp-hello {} (pid {}) on {}: {} mode, program {} tag {}, link {}, up {}\n",
            about.version,
            about.pid,
            one.name,
            one.mode,
            about.program_id,
            about.program_tag,
            one.link_id,
            duration(report.uptime_seconds),
        ),
        several => {
            let each: Vec<String> = several
                .iter()
                .map(|i| format!("{} ({} mode, link {})", i.name, i.mode, i.link_id))
                .collect();
            format!(
                "xdp-hello {} (pid {}) on {}: program {} tag {}, up {}\n",
                about.version,
                about.pid,
                each.join(", "),
                about.program_id,
                about.program_tag,
                duration(report.uptime_seconds),
            )
        }
    };
    let dropped = if about.dry_run {
        "would have been dropped (dry run)"
    } else {
        "dropped"
    };
    let _ = writeln!(
        text,
        "  packets: {} passed ({} bytes), {} {dropped} ({} bytes), {} aborted ({} bytes)",
        counts.passed,
        counts.passed_bytes,
        counts.dropped,
        counts.dropped_bytes,
        counts.aborted,
        counts.aborted_bytes
    );
    let _ = writeln!(
        text,
        "  notices: {} shown, {} lost (ring full)",
        counts.notices_shown, counts.notices_lost
    );
    for a in &report.accounting {
        let _ = writeln!(
            text,
            "  {}: {} packets = {} notices + {} sampled out + {} over the rate + {} lost \
             (ring full) + {} not asked for",
            a.interface,
            a.packets,
            a.counters.notices_sent,
            a.counters.sampled_out,
            a.counters.over_rate,
            a.counters.notices_lost,
            a.counters.not_asked
        );
    }
    let reloads = &report.reloads;
    let _ = write!(
        text,
        "  reloads: {} ok, {} failed",
        reloads.ok, reloads.failed
    );
    if let Some(last) = &reloads.last {
        let _ = write!(
            text,
            "; the last {} ago, {}",
            duration(now - last.at),
            if last.ok { "ok" } else { "failed" }
        );
    }
    let _ = writeln!(text, "\n  rules: {} in force", report.rules.len());
    for rule in &report.rules {
        let _ = writeln!(
            text,
            "  rule {:>3} {:>10} hits {:>12} bytes  {}",
            rule.id, rule.packets, rule.bytes, rule.rule
        );
    }
    text
}

/// `45s`, `3m12s`, `2h05m`, `3d04h`.
fn duration(seconds: f64) -> String {
    let secs = seconds.max(0.0) as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(45.9), "45s");
        assert_eq!(duration(192.0), "3m12s");
        assert_eq!(duration(7500.0), "2h05m");
        assert_eq!(duration(273600.0), "3d04h");
        assert_eq!(duration(-1.0), "0s");
    }
}
