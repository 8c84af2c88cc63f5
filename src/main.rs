//! The command line and the wiring; the work is done in the library modules.

use std::io::{self, BufWriter, Write};
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use xdp_hello::loader::{self, Mode};
use xdp_hello::output::{TextFormat, HEADER};
use xdp_hello::stats::Counters;
use xdp_hello::{iface, logging, notices};

/// Reports every packet arriving on a network interface, one line per
/// packet, from an XDP program written in Rust and loaded through libbpf.
///
/// Needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON. Ctrl-C (or SIGTERM)
/// detaches the program and prints a summary.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Interface to attach to.
    #[arg(short, long, default_value = "eth0")]
    iface: String,

    /// XDP mode: `auto` uses native mode where the driver supports it and
    /// falls back to skb (generic) mode where it does not.
    #[arg(short, long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,

    /// Size of the notice ring buffer: a power of two, at least 4K (e.g. 256K, 4M).
    #[arg(long, default_value = "4M", value_parser = parse_ring_size)]
    ring_size: u32,

    /// Show libbpf's messages (and the verifier's log when loading fails).
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xdp-hello: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let ifindex = iface::index_of(&cli.iface)?;
    let stop = stop_on_signals()?;

    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, cli.ring_size)?;
    let attachment = loader::attach(&skel, ifindex, &cli.iface, cli.mode)?;
    if attachment.fell_back {
        eprintln!(
            "xdp-hello: {}'s driver has no native XDP; using skb mode",
            cli.iface
        );
    }
    eprintln!(
        "xdp-hello: xdp_hello attached to {} ({} mode); Ctrl-C to stop",
        cli.iface, attachment.mode
    );

    let mut out = BufWriter::new(io::stdout().lock());
    writeln!(out, "{HEADER}")?;
    out.flush()?;
    let mut format = TextFormat::new();
    let mut write_failed = None;
    let out = std::cell::RefCell::new(out);
    let shown = notices::stream(
        &skel.maps.events,
        &stop,
        &mut || out.borrow_mut().flush(),
        |notice| match writeln!(out.borrow_mut(), "{}", format.line(notice)) {
            Ok(()) => true,
            Err(err) => {
                write_failed = Some(err);
                false
            }
        },
    )?;
    drop(attachment); // detach before counting, so the counts are final
    if let Some(err) = write_failed.filter(|e| e.kind() != io::ErrorKind::BrokenPipe) {
        return Err(err).context("writing notices");
    }

    let counters = Counters::read(&skel.maps.counters)?;
    eprintln!(
        "xdp-hello: detached from {}. packets: {} passed, {} dropped, {} aborted; \
         notices: {} shown, {} lost (ring full)",
        cli.iface,
        counters.passed,
        counters.dropped,
        counters.aborted,
        shown,
        counters.notices_lost
    );
    Ok(())
}

/// A flag set by Ctrl-C, SIGTERM or SIGHUP.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// `4096`, `256K`, `4M`: a power of two of at least one page.
fn parse_ring_size(text: &str) -> Result<u32, String> {
    let (digits, unit) = match text.trim().to_ascii_uppercase() {
        t if t.ends_with('K') => (t[..t.len() - 1].to_string(), 1u64 << 10),
        t if t.ends_with('M') => (t[..t.len() - 1].to_string(), 1u64 << 20),
        t => (t, 1),
    };
    let bytes = digits
        .parse::<u64>()
        .map_err(|_| format!("'{text}' is not a size (e.g. 256K, 4M)"))?
        * unit;
    if !bytes.is_power_of_two() || !(4096..=1 << 30).contains(&bytes) {
        return Err(format!("'{text}': must be a power of two from 4K to 1024M"));
    }
    Ok(bytes as u32)
}
