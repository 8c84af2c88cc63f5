//! `--metrics ADDR:PORT`: the Prometheus text format at `/metrics`, served
//! from a thread of its own, every value read from the maps at scrape time.
//!
//! Names follow the Prometheus naming guide: an `xdp_hello_` prefix, base
//! units (bytes, seconds), `_total` on counters, and labels with bounded
//! values only (verdicts, rule ids; never an address).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use anyhow::{anyhow, Context, Result};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::instance::{Instance, Report};
use crate::logging::say;

/// The listening socket, bound before anything is attached so that a bad
/// address fails the run while nothing is in the kernel yet.
pub struct MetricsServer {
    server: Server,
}

impl MetricsServer {
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer> {
        let server = Server::http(addr).map_err(|err| {
            let advice = match err.downcast_ref::<std::io::Error>().map(|err| err.kind()) {
                Some(std::io::ErrorKind::AddrNotAvailable) => {
                    "the address is not one of this host's: use one it has, 127.0.0.1 or 0.0.0.0"
                }
                Some(std::io::ErrorKind::AddrInUse) => "the port is taken: choose a free one",
                _ => "choose an address of this host and a port you may bind",
            };
            anyhow!("--metrics {addr}: cannot listen there ({err}): {advice}")
        })?;
        Ok(MetricsServer { server })
    }

    /// Answers scrapes of `instance` until the process ends.
    pub fn serve(self, instance: Arc<Instance>) -> Result<()> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(instance)));
        if let Some(addr) = self.server.server_addr().to_ip() {
            say(format_args!("metrics at http://{addr}/metrics"));
        }
        thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in self.server.incoming_requests() {
                    answer(request, &registry);
                }
            })
            .context("starting the metrics thread")?;
        Ok(())
    }
}

/// `GET /metrics` gets the metrics; anything else a 404 or 405.
fn answer(request: Request, registry: &Registry) {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = if path != "/metrics" {
        Response::from_string("not found: the metrics are at /metrics\n").with_status_code(404)
    } else if !matches!(request.method(), Method::Get | Method::Head) {
        Response::from_string("only GET\n").with_status_code(405)
    } else {
        let mut text = String::new();
        match prometheus_text::encode(&mut text, registry) {
            Ok(()) => Response::from_string(text).with_header(
                Header::from_bytes("Content-Type", prometheus_text::CONTENT_TYPE)
                    .expect("a valid header"),
            ),
            Err(_) => Response::from_string("reading the counters failed\n").with_status_code(500),
        }
    };
    // A scraper that went away is its own business.
    let _ = request.respond(response);
}

/// Reads the instance's report at each scrape and writes it as metrics.
#[derive(Debug)]
struct Scrape(Arc<Instance>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let report = self.0.report().map_err(|err| {
            say(format_args!("a scrape failed: {err:#}"));
            std::fmt::Error
        })?;
        encode(&report, &mut encoder)
    }
}

/// One family: its descriptor, then a sample per label set.
fn family<L, M>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet,
    M: EncodeMetric,
{
    let mut metric = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Labels of an info metric: the sample is always 1.
struct Info;

impl EncodeMetric for Info {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        encoder.encode_gauge(&1i64)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

fn encode(report: &Report, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let about = &report.about;
    let counts = &report.counts;
    // Per interface, from its counter block.
    let by_verdict = |iface: &str, passed, dropped, aborted| {
        [("pass", passed), ("drop", dropped), ("aborted", aborted)].map(|(verdict, value)| {
            (
                [
                    ("interface", iface.to_string()),
                    ("verdict", verdict.to_string()),
                ],
                ConstCounter::new(value),
            )
        })
    };
    family(
        encoder,
        "xdp_hello_packets",
        "Packets the XDP program saw, by interface and verdict (in a dry run, drop is what would have been dropped)",
        None,
        MetricType::Counter,
        report
            .accounting
            .iter()
            .flat_map(|a| {
                let c = &a.counters;
                by_verdict(&a.interface, c.passed, c.dropped, c.aborted)
            }),
    )?;
    family(
        encoder,
        "xdp_hello_bytes",
        "Bytes (frame lengths) of the packets the XDP program saw, by interface and verdict",
        None,
        MetricType::Counter,
        report.accounting.iter().flat_map(|a| {
            let c = &a.counters;
            by_verdict(
                &a.interface,
                c.passed_bytes,
                c.dropped_bytes,
                c.aborted_bytes,
            )
        }),
    )?;
    family(
        encoder,
        "xdp_hello_packets_without_notice",
        "Packets the XDP program sent no notice for, by interface and why: sampled out (--sample), over the rate (--max-rate), not asked for (--notices)",
        None,
        MetricType::Counter,
        report.accounting.iter().flat_map(|a| {
            [
                ("sampled_out", a.counters.sampled_out),
                ("over_rate", a.counters.over_rate),
                ("not_asked", a.counters.not_asked),
            ]
            .map(|(reason, value)| {
                (
                    [("interface", a.interface.clone()), ("reason", reason.to_string())],
                    ConstCounter::new(value),
                )
            })
        }),
    )?;
    family(
        encoder,
        "xdp_hello_notices",
        "Notices written whole to stdout (shown) or lost because the ring was full",
        None,
        MetricType::Counter,
        [
            (
                [("outcome", "shown")],
                ConstCounter::new(counts.notices_shown),
            ),
            (
                [("outcome", "lost")],
                ConstCounter::new(counts.notices_lost),
            ),
        ],
    )?;
    let rule_id = |id: u32| [("rule_id", id.to_string())];
    family(
        encoder,
        "xdp_hello_rule_packets",
        "Packets each rule in force decided",
        None,
        MetricType::Counter,
        report
            .rules
            .iter()
            .map(|rule| (rule_id(rule.id), ConstCounter::new(rule.packets))),
    )?;
    family(
        encoder,
        "xdp_hello_rule_bytes",
        "Bytes of the packets each rule in force decided",
        None,
        MetricType::Counter,
        report
            .rules
            .iter()
            .map(|rule| (rule_id(rule.id), ConstCounter::new(rule.bytes))),
    )?;
    family(
        encoder,
        "xdp_hello_rule_info",
        "Each rule in force: its id and its text",
        None,
        MetricType::Gauge,
        report.rules.iter().map(|rule| {
            (
                [
                    ("rule_id", rule.id.to_string()),
                    ("rule", rule.rule.clone()),
                ],
                Info,
            )
        }),
    )?;
    family(
        encoder,
        "xdp_hello_reloads",
        "Reloads of the rules file (SIGHUP or a change to it) by result",
        None,
        MetricType::Counter,
        [
            ([("result", "ok")], ConstCounter::new(report.reloads.ok)),
            (
                [("result", "failed")],
                ConstCounter::new(report.reloads.failed),
            ),
        ],
    )?;
    family(
        encoder,
        "xdp_hello_program_info",
        "The program xdp-hello attached, one series per interface: its version, interface, mode, program id and tag",
        None,
        MetricType::Gauge,
        about.interfaces.iter().map(|iface| {
            (
                [
                    ("version", about.version.clone()),
                    ("interface", iface.name.clone()),
                    ("mode", iface.mode.clone()),
                    ("program_id", about.program_id.to_string()),
                    ("tag", about.program_tag.clone()),
                    ("link_id", iface.link_id.to_string()),
                    ("dry_run", about.dry_run.to_string()),
                ],
                Info,
            )
        }),
    )?;
    let started: ConstGauge<f64> = ConstGauge::new(about.started_at);
    let metric = encoder.encode_descriptor(
        "xdp_hello_start_time",
        "When xdp-hello started, in seconds since the Unix epoch",
        Some(&Unit::Seconds),
        started.metric_type(),
    )?;
    started.encode(metric)
}
