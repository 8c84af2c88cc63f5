//! What a running instance tells others (`/metrics`, `xdp-hello status`):
//! who it is, the rules in force, and its counts read from the maps when
//! asked, the same counts the exit summary gives.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use libbpf_rs::query::LinkInfo;
use libbpf_rs::{libbpf_sys, MapHandle};
use serde::{Deserialize, Serialize};

use crate::attach::Attachment;
use crate::cli::Cli;
use crate::firewall::{Firewall, HitCounters};
use crate::iface::Interface;
use crate::metrics::MetricsServer;
use crate::skel::XdpHelloSkel;
use crate::stats::Counters;
use crate::status::server::StatusSocket;

/// The sockets others ask the instance through: `xdp-hello status`'s, and
/// `--metrics`'s when asked for. Bound before the load, so that an address
/// that cannot be had fails the run with nothing attached.
pub struct Listeners {
    status: StatusSocket,
    metrics: Option<MetricsServer>,
}

impl Listeners {
    pub fn bind(cli: &Cli) -> Result<Listeners> {
        Ok(Listeners {
            metrics: cli.metrics.map(MetricsServer::bind).transpose()?,
            // One socket per instance, named by its first interface.
            status: StatusSocket::bind(&cli.ifaces[0])?,
        })
    }

    /// Answers about `instance` from threads of their own from now on.
    pub fn serve(self, instance: Instance) -> Result<Arc<Instance>> {
        let instance = Arc::new(instance);
        self.status.serve(instance.clone())?;
        if let Some(metrics) = self.metrics {
            metrics.serve(instance.clone())?;
        }
        Ok(instance)
    }
}

/// The instance as the session leaves it for the threads that answer
/// scrapes and status requests: its own handles on the counter maps, and a
/// copy of what only the session knows, updated as it changes.
#[derive(Debug)]
pub struct Instance {
    /// Fixed but for the program, which a run's first rules replace.
    about: Mutex<About>,
    started: Instant,
    counters: MapHandle,
    hits: MapHandle,
    /// How many interfaces have a counter block (`about.interfaces`).
    blocks: u32,
    /// Notices written whole to stdout (the summary's "shown").
    shown: AtomicU64,
    live: Mutex<Live>,
}

/// Who the instance is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct About {
    pub pid: u32,
    pub version: String,
    /// Where the program is attached, in the order of `-i`.
    pub interfaces: Vec<AttachedTo>,
    pub program_id: u32,
    /// The program's tag (bpftool's `tag`), in hex.
    pub program_tag: String,
    pub dry_run: bool,
    /// When it started, in seconds since the Unix epoch.
    pub started_at: f64,
}

/// One interface the program is attached to, by its own bpf_link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttachedTo {
    pub name: String,
    pub ifindex: u32,
    pub mode: String,
    pub link_id: u32,
}

/// What the session changes: the rules in force and the reloads.
#[derive(Debug, Default)]
struct Live {
    /// The generation `rules` were taken from.
    generation: Option<u32>,
    rules: Vec<RuleInForce>,
    /// What the rules' counters said when their slots were last freed.
    counters: HitCounters,
    reloads: Reloads,
}

#[derive(Debug)]
struct RuleInForce {
    id: u32,
    slot: u32,
    text: String,
}

/// Reloads by result, and the last one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reloads {
    pub ok: u64,
    pub failed: u64,
    pub last: Option<LastReload>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LastReload {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub ok: bool,
}

/// Everything at one moment: what `status -j` prints for an instance, and
/// what `/metrics` is made of.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    #[serde(flatten)]
    pub about: About,
    pub uptime_seconds: f64,
    pub counts: Counts,
    /// Each interface's packets, by what became of their notices.
    pub accounting: Vec<Accounting>,
    pub rules: Vec<RuleReport>,
    pub reloads: Reloads,
}

/// The exit summary's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: u64,
    pub dropped: u64,
    pub aborted: u64,
    pub passed_bytes: u64,
    pub dropped_bytes: u64,
    pub aborted_bytes: u64,
    pub notices_shown: u64,
    pub notices_lost: u64,
}

/// One interface's packets (`packets`, for readers of the JSON): each got
/// a notice (`notices_sent`), or is counted by why it got none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    pub interface: String,
    pub packets: u64,
    #[serde(flatten)]
    pub counters: Counters,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleReport {
    pub id: u32,
    pub rule: String,
    pub packets: u64,
    pub bytes: u64,
}

impl Instance {
    /// The run of `cli`: the loaded `skel`, attached by `attachments` to
    /// `ifaces` (one each, in order), with `firewall`'s rules in force.
    pub fn new(
        cli: &Cli,
        ifaces: &[Interface],
        skel: &XdpHelloSkel<'_>,
        attachments: &[Attachment],
        firewall: &Firewall,
    ) -> Result<Instance> {
        let mut interfaces = Vec::with_capacity(ifaces.len());
        for (iface, attachment) in ifaces.iter().zip(attachments) {
            let link =
                LinkInfo::from_fd(attachment.link()).context("reading the bpf_link's info")?;
            interfaces.push(AttachedTo {
                name: iface.name.clone(),
                ifindex: iface.index,
                mode: attachment.mode.to_string(),
                link_id: link.id,
            });
        }
        let about = About {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            interfaces,
            program_id: 0,
            program_tag: String::new(),
            dry_run: cli.dry_run,
            started_at: unix_now(),
        };
        let handle = |map| MapHandle::try_from(map).context("duplicating a map handle");
        let instance = Instance {
            about: Mutex::new(about),
            started: Instant::now(),
            counters: handle(&skel.maps.counters)?,
            hits: handle(&skel.maps.rule_hits)?,
            blocks: ifaces.len() as u32,
            shown: AtomicU64::new(0),
            live: Mutex::new(Live::default()),
        };
        instance.program_replaced(skel.progs.xdp_hello.as_fd())?;
        instance.track(firewall, 0);
        Ok(instance)
    }

    /// The links now run `program`.
    pub fn program_replaced(&self, program: BorrowedFd<'_>) -> Result<()> {
        let id = libbpf_rs::Program::id_from_fd(program).context("reading the program's id")?;
        let tag = program_tag(program)?;
        let mut about = self
            .about
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        about.program_id = id;
        about.program_tag = tag;
        Ok(())
    }

    /// Called by the session after each batch: takes the rules in force
    /// again when a reload changed them, and the notices shown so far.
    pub fn track(&self, firewall: &Firewall, shown: u64) {
        self.shown.store(shown, Ordering::Relaxed);
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if live.generation == Some(firewall.generation()) {
            return;
        }
        live.generation = Some(firewall.generation());
        live.counters = firewall.hit_counters().clone();
        live.rules = firewall
            .rules()
            .iter()
            .filter_map(|active| {
                Some(RuleInForce {
                    id: active.id,
                    slot: firewall.slot_of(active.id)?,
                    text: active.rule.rule.to_string(),
                })
            })
            .collect();
    }

    /// Counts a reload that worked (`ok`) or was refused.
    pub fn reloaded(&self, ok: bool) {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let reloads = &mut live.reloads;
        if ok {
            reloads.ok += 1;
        } else {
            reloads.failed += 1;
        }
        reloads.last = Some(LastReload { at: unix_now(), ok });
    }

    /// Everything now, the counters read from the maps (summed over CPUs).
    pub fn report(&self) -> Result<Report> {
        let about = self
            .about
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let counters = Counters::read(&self.counters)?;
        let accounting = (0..self.blocks)
            .zip(&about.interfaces)
            .map(|(block, iface)| {
                let counters = Counters::read_block(&self.counters, block)?;
                Ok(Accounting {
                    interface: iface.name.clone(),
                    packets: counters.packets(),
                    counters,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slots: Vec<u32> = live.rules.iter().map(|rule| rule.slot).collect();
        let hits = live.counters.read(&self.hits, &slots)?;
        let rules = live
            .rules
            .iter()
            .zip(hits)
            .map(|(rule, hits)| RuleReport {
                id: rule.id,
                rule: rule.text.clone(),
                packets: hits.packets,
                bytes: hits.bytes,
            })
            .collect();
        Ok(Report {
            about,
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            counts: Counts {
                passed: counters.passed,
                dropped: counters.dropped,
                aborted: counters.aborted,
                passed_bytes: counters.passed_bytes,
                dropped_bytes: counters.dropped_bytes,
                aborted_bytes: counters.aborted_bytes,
                notices_shown: self.shown.load(Ordering::Relaxed),
                notices_lost: counters.notices_lost,
            },
            accounting,
            rules,
            reloads: live.reloads.clone(),
        })
    }
}

/// The loaded program's tag, as bpftool prints it.
fn program_tag(program: BorrowedFd<'_>) -> Result<String> {
    // Zeroed, padding included: the kernel wants unknown bytes zero.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
    let fd = program.as_raw_fd();
    // SAFETY: `info` is a bpf_prog_info of `len` bytes.
    let err = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    if err != 0 {
        anyhow::bail!(
            "reading the program's info failed: {}",
            std::io::Error::from_raw_os_error(-err)
        );
    }
    Ok(info.tag.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}
