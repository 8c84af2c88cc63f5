//! One run: load → install the rules → attach → stream the notices →
//! summary; with its signals, reloads, output failures and the watch of the
//! link.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::abi::{self, Config, Notice};
use crate::attach::{self, Attachment};
use crate::capture::PcapngWriter;
use crate::classifier_swap::ClassifierSwap;
use crate::cli::{self, Cli, NoticeFilter, MIN_RING_SIZE};
use crate::firewall::{Firewall, RuleMaps, RuleSet};
use crate::grace::GracePeriod;
use crate::iface::{self, Interface};
use crate::instance::{Instance, Listeners};
use crate::loader;
use crate::logging::{self, say};
use crate::notices::NoticeReader;
use crate::output::{Formatter, Style};
use crate::policy::{self, Action};
use crate::sink::LineSink;
use crate::skel::XdpHelloSkel;
use crate::stats::{self, Counters, Shown};
use crate::watch::LinkWatch;

/// One run: load, install the rules, attach, stream, summarise. Returns
/// whether it ended as asked (a signal, or a pure observer's reader going
/// away) rather than by a failure the user must hear of in the exit status.
pub fn run(cli: &Cli) -> Result<bool> {
    // Everything that can be wrong with the input fails before anything is
    // attached, the rules first; they parse and compile while the program
    // loads.
    let signals = Signals::install()?;
    // A change to --rules FILE reloads it as SIGHUP does; dropped, it stops.
    let rules_watch =
        crate::rules_watch::PendingWatch::begin(cli.rules_file.as_deref(), signals.reload.clone());
    let rules = policy::Unparsed::read(&cli.rules, cli.rules_file.as_deref());
    let (ifaces, warnings) = match check_interfaces(cli) {
        Ok(checked) => checked,
        Err(err) => {
            rules.parse(&mut Err)?;
            return Err(err);
        }
    };
    // With no rules, the program comes without its classifier (see
    // classifier_swap): a quicker start; the first reload with rules adds it.
    let classifier = rules.has_rules();
    let mut object = MaybeUninit::uninit();
    let (rule_set, loaded) = RuleSet::compile_during(rules, || {
        loader::load(
            &mut object,
            ring_size(cli),
            config(cli, &ifaces, classifier),
        )
    })?;
    let rule_set = rule_set?;
    // The rules are good: what waited for them is said now, whatever the
    // load's outcome.
    let _rules_watch = rules_watch.confirm();
    for warning in warnings {
        say(format_args!("warning: {warning}"));
    }
    let skel = loaded?;
    let capture_file = capture_output(cli)?;
    let listeners = Listeners::bind(cli)?;
    let rule_maps = RuleMaps::of(&skel.maps);
    let mut firewall = Firewall::new();
    // Without the classifier there are no rules, and no room for them.
    if classifier {
        firewall.install(&rule_maps, &rule_set)?;
    }
    let attachments = attach_and_tell(cli, &skel, &ifaces, rule_set.len())?;
    let instance = Instance::new(cli, &ifaces, &skel, &attachments, &firewall)?;
    let watches = attachments
        .into_iter()
        .zip(&ifaces)
        .map(|(attachment, iface)| LinkWatch::new(attachment, &iface.name, iface.index))
        .collect::<Result<_>>()?;

    let mut session = Session {
        cli,
        skel: &skel,
        watches,
        output: NoticeOutput::to_stdout(cli, &ifaces, enforcing(cli, &firewall), capture_file)?,
        ifaces,
        rule_maps,
        firewall,
        classifier: ClassifierSwap::new(classifier),
        signals,
        interval: cli
            .stats
            .map(|secs| stats::Interval::new(Duration::from_secs(secs))),
        link_lost: false,
        instance: listeners.serve(instance)?,
    };
    session.stream()?;
    session.finish()
}

/// The interfaces exist here, each named once, and carry Ethernet; and the
/// warnings to give once the rules are known good: where one is down, or
/// where `--default deny` could cut the user's own login.
fn check_interfaces(cli: &Cli) -> Result<(Vec<Interface>, Vec<String>)> {
    let ifaces = iface::resolve_all(&cli.ifaces, abi::MAX_IFACES as usize)?;
    let mut warnings = Vec::new();
    for Interface { name, .. } in &ifaces {
        iface::require_ethernet(name)?;
        warnings.extend(iface::down_warning(name));
        if cli.default == Action::Deny && iface::in_initial_namespace() {
            warnings.push(format!(
                "--default deny on {name} drops all IP traffic no rule allows, remote logins \
                 included"
            ));
        }
    }
    Ok((ifaces, warnings))
}

/// The program's load-time settings, `ifaces` counted apart, with the
/// classifier or without.
fn config(cli: &Cli, ifaces: &[Interface], classifier: bool) -> Config {
    let mut ifindexes = [0; abi::MAX_IFACES as usize];
    for (slot, iface) in ifindexes.iter_mut().zip(ifaces) {
        *slot = iface.index;
    }
    let config = Config {
        sample_every: cli.sample.unwrap_or(1),
        iface_count: ifaces.len() as u32,
        ifindexes,
        default_verdict: match cli.default {
            Action::Allow => abi::XDP_PASS as u32,
            Action::Deny => abi::XDP_DROP as u32,
        },
        notice_mode: match cli.notices {
            NoticeFilter::All => abi::NOTICES_ALL,
            NoticeFilter::Denied => abi::NOTICES_DENIED,
            NoticeFilter::None => abi::NOTICES_NONE,
        },
        dry_run: cli.dry_run.into(),
        snaplen: cli.capture_snaplen(),
        classifier: classifier.into(),
        ..Config::DEFAULT
    };
    match cli.max_rate {
        Some(rate) => config.with_max_rate(rate),
        None => config,
    }
}

/// `-w`: checks that the snap length fits the ring and opens FILE, before
/// the kernel is touched; `None` for stdout (`-w -`, or no capture).
fn capture_output(cli: &Cli) -> Result<Option<File>> {
    let Some(path) = cli.write.as_deref() else {
        return Ok(None);
    };
    crate::capture::check_ring_room(cli.capture_snaplen(), ring_size(cli))?;
    crate::capture::open_output(path)
}

/// With no notices to stream, the ring only needs to exist.
fn ring_size(cli: &Cli) -> u32 {
    match cli.notices {
        NoticeFilter::None => MIN_RING_SIZE,
        _ => cli.ring_size,
    }
}

/// Attaches to every interface in the mode asked for and says where and
/// how. A refusal on any detaches those before it (their links close) and
/// is named by the one that failed.
fn attach_and_tell(
    cli: &Cli,
    skel: &XdpHelloSkel<'_>,
    ifaces: &[Interface],
    rules: usize,
) -> Result<Vec<Attachment>> {
    let mut attachments: Vec<Attachment> = Vec::with_capacity(ifaces.len());
    for iface in ifaces {
        match attach::attach(skel, iface.index, &iface.name, cli.mode) {
            Ok(attachment) => attachments.push(attachment),
            Err(err) if attachments.is_empty() => return Err(err),
            Err(err) => {
                let done: Vec<&str> = ifaces[..attachments.len()]
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect();
                // Closing their links detaches the program from them.
                drop(attachments);
                anyhow::bail!(
                    "{err:#} (nothing is left attached: detached again from {})",
                    done.join(", ")
                );
            }
        }
    }
    for (iface, attachment) in ifaces.iter().zip(&attachments) {
        if attachment.fell_back {
            say(format_args!(
                "{}'s driver has no native XDP; using skb mode",
                iface.name
            ));
        }
    }
    let names: Vec<&str> = ifaces.iter().map(|i| i.name.as_str()).collect();
    let modes = if attachments.iter().all(|a| a.mode == attachments[0].mode) {
        format!("{} mode", attachments[0].mode)
    } else {
        let each: Vec<String> = names
            .iter()
            .zip(&attachments)
            .map(|(name, attachment)| format!("{} mode on {name}", attachment.mode))
            .collect();
        each.join(", ")
    };
    let mut limits = String::new();
    if let Some(every) = cli.sample.filter(|&every| every > 1) {
        limits.push_str(&format!(", a notice for 1 packet in {every}"));
    }
    if let Some(rate) = cli.max_rate {
        limits.push_str(&format!(", at most {rate} notices/s per CPU"));
    }
    say(format_args!(
        "xdp_hello attached to {} ({modes}, {rules} rule{}, default {}{limits}{}); Ctrl-C to stop",
        names.join(", "),
        plural(rules),
        cli::action_name(cli.default),
        if cli.dry_run {
            ", dry run: nothing is dropped"
        } else {
            ""
        }
    ));
    Ok(attachments)
}

/// Rules in force: then a failed write must not end the filtering. A dry
/// run enforces nothing: it is an observer.
fn enforcing(cli: &Cli, firewall: &Firewall) -> bool {
    !cli.dry_run && (!firewall.rules().is_empty() || cli.default == Action::Deny)
}

/// A run from the moment the program is attached.
struct Session<'a> {
    cli: &'a Cli,
    skel: &'a XdpHelloSkel<'a>,
    rule_maps: RuleMaps<'a>,
    /// Reloads change it between batches; notices read it to name rules.
    firewall: Firewall,
    /// The program's classifier, which rules need on the links first.
    classifier: ClassifierSwap,
    /// The interfaces, in the order of their counter blocks, and the
    /// watch of each one's link.
    ifaces: Vec<Interface>,
    watches: Vec<LinkWatch>,
    output: NoticeOutput,
    signals: Signals,
    interval: Option<stats::Interval>,
    link_lost: bool,
    /// What `status` and `/metrics` read; kept up to date after each batch.
    instance: Arc<Instance>,
}

impl Session<'_> {
    /// Writes notices until a signal, a lost link or a failed observer ends
    /// the run; then detaches and writes the last ones.
    fn stream(&mut self) -> Result<()> {
        // Detached, and every run of the program over, before the last read
        // and the counts, so both are final.
        let grace = GracePeriod::new()?;
        let mut reader = NoticeReader::new(&self.skel.maps.events)?;
        while !self.signals.stop.load(Ordering::Relaxed) {
            let (output, firewall, signals) = (&mut self.output, &self.firewall, &self.signals);
            reader.poll_batch(
                |notice, frame| output.write(notice, frame, firewall, &signals.stop),
                || signals.pending(),
            )?;
            self.after_batch()?;
        }
        self.watches.iter_mut().for_each(LinkWatch::detach);
        // A reload asked for now would find no link to judge on: the run
        // is over.
        self.signals.reload.store(false, Ordering::Relaxed);
        grace.wait()?;
        let (output, firewall, stop) = (&mut self.output, &self.firewall, &self.signals.stop);
        reader.drain_after_detach(|notice, frame| output.write(notice, frame, firewall, stop))?;
        self.after_batch()
    }

    /// Between batches: flush, reload on SIGHUP, check the link, show rates.
    fn after_batch(&mut self) -> Result<()> {
        self.output.flush(&self.signals.stop);
        if self.signals.reload.swap(false, Ordering::Relaxed) {
            if let Some(ok) = self.reload() {
                self.instance.reloaded(ok);
            }
            self.output.enforcing = enforcing(self.cli, &self.firewall);
            self.output.rules_changed();
        }
        self.instance
            .track(&self.firewall, self.output.shown().written);
        for watch in &mut self.watches {
            if let Some(what) = watch.lost() {
                say(what);
                self.link_lost = true;
                self.signals.stop.store(true, Ordering::Relaxed);
            }
        }
        self.show_rates()
    }

    /// `--stats`: a line of rates and the busiest rules when one is due.
    fn show_rates(&mut self) -> Result<()> {
        let Some(interval) = self.interval.as_mut() else {
            return Ok(());
        };
        if interval.due(Instant::now()) {
            let counters = Counters::read(&self.skel.maps.counters)?;
            let hits = self.firewall.hits(&self.rule_maps)?;
            say(interval.line(&counters, &hits));
        }
        Ok(())
    }

    /// SIGHUP, or a change to --rules FILE: re-read it and swap it in; on
    /// any error keep the rules in force and say why. Reloads are counted
    /// from 1, so each line names one. Returns whether it worked; `None`
    /// when there is nothing to reload.
    fn reload(&mut self) -> Option<bool> {
        let Some(path) = self.cli.rules_file.as_deref() else {
            say("SIGHUP ignored: no --rules FILE to reload");
            return None;
        };
        static RELOADS: AtomicU32 = AtomicU32::new(0);
        let number = RELOADS.fetch_add(1, Ordering::Relaxed) + 1;
        // What the file is now, so that the watch does not reload it again.
        crate::rules_watch::reading(path);
        let outcome = RuleSet::load(&self.cli.rules, Some(path))
            .map_err(anyhow::Error::from)
            .and_then(|set| self.install(&set).map(|()| set.len()));
        match &outcome {
            Ok(count) => say(format_args!(
                "reload {number} of {}: {}",
                path.display(),
                in_force(*count)
            )),
            Err(err) => say(format_args!(
                "reload {number} of {} failed, keeping the {}: {err:#}",
                path.display(),
                in_force(self.firewall.rules().len())
            )),
        }
        Some(outcome.is_ok())
    }

    /// Makes `set` the rules in force: a set with rules first has the links
    /// run the classifier; an empty one while they do not is in force
    /// already.
    fn install(&mut self, set: &RuleSet) -> Result<()> {
        if !set.is_empty() {
            self.classifier.ensure(
                self.skel,
                &mut self.watches,
                &self.instance,
                &mut self.rule_maps,
            )?;
        }
        if !self.classifier.in_place() {
            return Ok(());
        }
        self.firewall.install(&self.rule_maps, set)
    }

    /// Prints the summary; returns whether the run ended as asked.
    fn finish(self) -> Result<bool> {
        let counters = Counters::read(&self.skel.maps.counters)?;
        let hits = self.firewall.hits(&self.rule_maps)?;
        let per_iface = (0u32..)
            .zip(&self.ifaces)
            .map(|(block, iface)| {
                Counters::read_block(&self.skel.maps.counters, block)
                    .map(|counters| (iface.name.clone(), counters))
            })
            .collect::<Result<Vec<_>>>()?;
        let summary = stats::summary(
            &per_iface,
            &counters,
            self.output.shown(),
            &hits,
            self.cli.dry_run,
        );
        logging::write_stderr(&summary);
        Ok(self.output.ended_well() && !self.link_lost)
    }
}

/// Where the notices go: stdout, one line each, in the format asked for;
/// or with -w, pcapng to FILE (`capture_file`) or stdout, and no lines.
struct NoticeOutput {
    sink: LineSink<File>,
    format: Formatter,
    /// -w: pcapng blocks instead of lines.
    capture: Option<PcapngWriter>,
    /// Lines written before the first notice (the column header, or the
    /// pcapng section header).
    header_lines: u64,
    /// Under `--notices none`, the column header waits for a line of a
    /// `log` rule, if one ever comes.
    header_due: Option<&'static str>,
    /// Whether rules are in force (see [`enforcing`]).
    enforcing: bool,
    /// -c: notices still to write before the run stops.
    left: Option<u64>,
    dry_run: bool,
    /// What a failure message calls where the notices go.
    destination: String,
}

impl NoticeOutput {
    fn to_stdout(
        cli: &Cli,
        ifaces: &[Interface],
        enforcing: bool,
        capture_file: Option<File>,
    ) -> Result<NoticeOutput> {
        // Straight to the descriptor: std's stdout would split and re-buffer
        // lines, and the sink must know which lines went out whole.
        let out = match capture_file {
            Some(file) => file,
            None => File::from(
                io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("opening stdout")?,
            ),
        };
        let mut sink = LineSink::new(out);
        let style = if cli.json { Style::Json } else { Style::Text };
        let mut format = Formatter::with(style, cli.dry_run);
        // Each notice by its own interface's name, as the user gave it.
        for iface in ifaces {
            format.name_interface(iface.index, &iface.name);
        }
        let mut capture = cli
            .write
            .as_ref()
            .map(|_| PcapngWriter::new(cli.capture_snaplen()));
        let (header_lines, header_due) = match (format.header(), cli.notices, &mut capture) {
            (_, _, Some(capture)) => {
                sink.push_record(capture.start());
                (1, None)
            }
            (None, _, _) => (0, None),
            (Some(header), NoticeFilter::None, _) => (0, Some(header)),
            (Some(header), _, _) => {
                sink.push(header);
                (1, None)
            }
        };
        Ok(NoticeOutput {
            sink,
            format,
            capture,
            header_lines,
            header_due,
            enforcing,
            left: cli.count,
            dry_run: cli.dry_run,
            destination: match cli.write.as_deref() {
                Some(path) if path != std::path::Path::new("-") => path.display().to_string(),
                _ => "stdout".to_string(),
            },
        })
    }

    fn write(&mut self, notice: &Notice, frame: &[u8], firewall: &Firewall, stop: &AtomicBool) {
        // -c: the run stops; what the ring still holds is not shown.
        if self.left == Some(0) {
            return;
        }
        // Once writing has failed, nothing is formatted: reading the ring
        // stays cheap.
        if self.sink.failure().is_some() {
            self.sink.push("");
            return;
        }
        // The kernel names a rule by its counter slot; users by its id.
        let rule_id = match notice.rule_id {
            abi::RULE_NONE => abi::RULE_NONE, // no lookup for most notices
            slot => firewall.shown_rule_id(slot),
        };
        let kernel_rule = notice.rule_id;
        let notice = Notice { rule_id, ..*notice };
        let failed = match &mut self.capture {
            Some(capture) => {
                let dry_run = self.dry_run;
                let comment = || {
                    let rule = firewall.rule_of_slot(kernel_rule);
                    crate::capture::comment(&notice, rule, dry_run)
                };
                self.sink.push_record_with(|out| {
                    capture.packet(&notice, kernel_rule, frame, comment, out)
                })
            }
            None => {
                if let Some(header) = self.header_due.take() {
                    self.sink.push(header);
                    self.header_lines += 1;
                }
                let format = &mut self.format;
                self.sink.push_with(|out| format.write_line(&notice, out))
            }
        };
        if let Some(err) = failed {
            output_failed(err, &self.destination, self.enforcing, stop);
        }
        if let Some(left) = self.left.as_mut() {
            *left -= 1;
            if *left == 0 {
                stop.store(true, Ordering::Relaxed);
            }
        }
    }

    /// After a reload: what names rules is made anew.
    fn rules_changed(&mut self) {
        if let Some(capture) = self.capture.as_mut() {
            capture.forget_comments();
        }
    }

    fn flush(&mut self, stop: &AtomicBool) {
        if let Some(err) = self.sink.flush() {
            output_failed(err, &self.destination, self.enforcing, stop);
        }
    }

    /// Notices written and not, for the summary.
    fn shown(&self) -> Shown {
        Shown {
            written: self.sink.written().saturating_sub(self.header_lines),
            unwritten: self.sink.unwritten(),
        }
    }

    /// A reader that went away is a normal end; a full disk is not.
    fn ended_well(&self) -> bool {
        self.sink
            .failure()
            .is_none_or(|err| err.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Says once why no more notices are written and what happens now: with
/// rules in force the run goes on until a signal; a pure observer ends, as
/// tcpdump does.
fn output_failed(err: &io::Error, destination: &str, enforcing: bool, stop: &AtomicBool) {
    let why = if err.kind() == io::ErrorKind::BrokenPipe {
        format!("{destination} was closed (its reader went away)")
    } else {
        format!("writing notices to {destination} failed ({err})")
    };
    if enforcing {
        say(format_args!(
            "{why}: no more notices are written; the rules stay in force until Ctrl-C or SIGTERM"
        ));
    } else {
        say(format_args!("{why}: stopping, as no rules are in force"));
        stop.store(true, Ordering::Relaxed);
    }
}

/// "1 rule in force", "2 rules in force".
fn in_force(count: usize) -> String {
    format!("{count} rule{} in force", plural(count))
}

/// "s" unless there is one.
fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// Flags the signal handlers set: stop on SIGINT or SIGTERM, reload on SIGHUP.
/// A second SIGINT or SIGTERM exits at once (130 or 143), for when the
/// first cannot be acted on — stdout blocked by a reader that does not read;
/// the kernel detaches the program as the process ends. "Second" means more
/// than [`REPEAT_WINDOW`] after the first: `timeout(1)`, and a kill of the
/// process group, deliver one stop twice within microseconds.
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

/// Stop signals this close to the first are the same request.
const REPEAT_WINDOW: Duration = Duration::from_millis(500);

impl Signals {
    fn install() -> Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let signals = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
        };
        // Monotonic nanoseconds of the first stop signal; 0 while none came.
        let first_stop = Arc::new(AtomicU64::new(0));
        for signal in [SIGINT, SIGTERM] {
            let (stop, first_stop) = (signals.stop.clone(), first_stop.clone());
            let on_stop = move || {
                let now = monotonic_nanos();
                match first_stop.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => stop.store(true, Ordering::SeqCst),
                    Err(first) if now.saturating_sub(first) > REPEAT_WINDOW.as_nanos() as u64 => {
                        signal_hook::low_level::exit(128 + signal)
                    }
                    Err(_) => {}
                }
            };
            // SAFETY: the handler only reads the clock, touches atomics and
            // calls _exit, all async-signal-safe.
            unsafe { signal_hook::low_level::register(signal, on_stop) }
                .context("installing signal handlers")?;
        }
        signal_hook::flag::register(SIGHUP, signals.reload.clone())
            .context("installing signal handlers")?;
        Ok(signals)
    }

    /// A stop or a reload waits: the batch ends early to see to it.
    fn pending(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.reload.load(Ordering::Relaxed)
    }
}

/// CLOCK_MONOTONIC in nanoseconds, never 0: clock_gettime is
/// async-signal-safe by POSIX, so a signal handler may call it.
fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64).max(1)
}
