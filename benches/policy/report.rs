//! What one run found: a markdown table (the published anchors in rows of
//! their own), then one `ratio …: X` line per ratio, and the same as JSON
//! under bench-results/ with the date, the machine and each part's time
//! (absolute figures drift between runs; the ratios are what count).

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::json;

/// Figures of interleaved rounds: the minimum says what the code can do on
/// this machine, the median what to expect on it.
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

struct Row {
    what: String,
    on: String,
    figures: Figures,
    unit: &'static str,
    note: String,
}

enum Figures {
    /// Measured in this run; `samples` is every round's figure, in the order
    /// measured (empty for derived rows).
    Measured {
        median: f64,
        min: f64,
        samples: Vec<f64>,
    },
    /// Not measured: why, in the note.
    Pending,
    /// Published elsewhere, as published (an anchor).
    Quoted(&'static str),
}

/// Figures published with the work they come from, to set ours beside:
/// what, figure, unit, source.
const ANCHORS: [(&str, &str, &str, &str); 3] = [
    (
        "anchor: XDP_DROP, one core (24 Mpps/core)",
        "41.6",
        "ns/packet",
        "CoNEXT'18 XDP paper (Høiland-Jørgensen et al.), ConnectX-5",
    ),
    (
        "anchor: BPF ring buffer, back-to-back, libbpf's consumer",
        "12–21 M",
        "records/s",
        "ring buffer benchmark posted with the kernel patches (Andrii Nakryiko, \"bpf: implement BPF ring buffer\", 2020)",
    ),
    (
        "anchor: BPF perf buffer, the same benchmark",
        "1–1.6 M",
        "records/s",
        "the same benchmark and posting",
    ),
];

pub struct Report {
    shapes: &'static str,
    rows: Vec<Row>,
    ratios: Vec<(String, f64)>,
    /// Seconds each part took, in the order run.
    parts: Vec<(String, f64)>,
}

impl Report {
    pub fn new(shapes: &'static str) -> Report {
        let rows = ANCHORS
            .iter()
            .map(|&(what, figure, unit, source)| Row {
                what: what.into(),
                on: "published".into(),
                figures: Figures::Quoted(figure),
                unit,
                note: source.into(),
            })
            .collect();
        Report {
            shapes,
            rows,
            ratios: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// A row: `what` was measured on `on` (a frame, a mode), `samples` in `unit`.
    pub fn row(&mut self, what: &str, on: &str, samples: &Samples, unit: &'static str, note: &str) {
        self.rows.push(Row {
            what: what.into(),
            on: on.into(),
            figures: Figures::Measured {
                median: samples.median(),
                min: samples.min(),
                samples: samples.0.clone(),
            },
            unit,
            note: note.into(),
        });
    }

    /// A row of figures derived from others (a difference of medians, …).
    pub fn row_of(
        &mut self,
        what: &str,
        on: &str,
        (median, min): (f64, f64),
        unit: &'static str,
        note: &str,
    ) {
        self.rows.push(Row {
            what: what.into(),
            on: on.into(),
            figures: Figures::Measured {
                median,
                min,
                samples: Vec::new(),
            },
            unit,
            note: note.into(),
        });
    }

    /// A row that cannot be measured yet, and `why` (no figure is made up).
    pub fn pending(&mut self, what: &str, on: &str, unit: &'static str, why: &str) {
        self.rows.push(Row {
            what: what.into(),
            on: on.into(),
            figures: Figures::Pending,
            unit,
            note: why.into(),
        });
    }

    /// How long part `name` took.
    pub fn part_time(&mut self, name: &str, seconds: f64) {
        self.parts.push((name.into(), seconds));
    }

    /// `ratio NAME: VALUE`, NAME as the issue spells it.
    pub fn ratio(&mut self, name: &str, value: f64) {
        self.ratios.push((name.into(), value));
    }

    pub fn print(&self) {
        println!("\n| measurement | frame / setup | median | min | unit | note |");
        println!("|---|---|---:|---:|---|---|");
        // Measured rows first, the anchors after them.
        let quoted = |row: &&Row| matches!(row.figures, Figures::Quoted(_));
        let (anchors, measured): (Vec<&Row>, Vec<&Row>) = self.rows.iter().partition(quoted);
        for row in measured.into_iter().chain(anchors) {
            let (median, min) = match &row.figures {
                Figures::Measured { median, min, .. } => (figure(*median), figure(*min)),
                Figures::Pending => ("—".into(), "—".into()),
                Figures::Quoted(text) => (text.to_string(), String::new()),
            };
            println!(
                "| {} | {} | {median} | {min} | {} | {} |",
                row.what, row.on, row.unit, row.note
            );
        }
        println!(
            "\nrules of {} shape; ratios of medians over interleaved rounds, per-packet ones \
             on the frame that fares worst\n",
            self.shapes
        );
        for (name, value) in &self.ratios {
            println!("ratio {name}: {value:.2}");
        }
    }

    /// Writes bench-results/policy-DATE.json; returns its path.
    pub fn save(&self) -> Result<PathBuf> {
        let date = command_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])?;
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|row| {
                let mut entry = json!({"measurement": row.what, "on": row.on,
                                       "unit": row.unit, "note": row.note});
                let figures = match &row.figures {
                    Figures::Measured {
                        median,
                        min,
                        samples,
                    } => json!({"median": median, "min": min, "samples": samples}),
                    Figures::Pending => json!({"median": null, "min": null}),
                    Figures::Quoted(text) => json!({"quoted": text}),
                };
                entry
                    .as_object_mut()
                    .expect("an object")
                    .extend(figures.as_object().expect("an object").clone());
                entry
            })
            .collect();
        let ratios: serde_json::Map<_, _> = self
            .ratios
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        let document = json!({
            "bench": "policy",
            "date": date,
            "cpu": cpu_model(),
            "cpus": std::thread::available_parallelism().map_or(0, usize::from),
            // How busy the shared machine was: absolute figures depend on it.
            "loadavg": fs::read_to_string("/proc/loadavg")?.trim(),
            "kernel": fs::read_to_string("/proc/sys/kernel/osrelease")?.trim(),
            "rule_shapes": self.shapes,
            "rows": rows,
            "ratios": ratios,
            "part_seconds": self.parts.iter().map(|(name, s)| json!({"part": name, "seconds": s})).collect::<Vec<_>>(),
        });
        let dir = PathBuf::from("bench-results");
        fs::create_dir_all(&dir).context("creating bench-results/")?;
        let path = dir.join(format!("policy-{}.json", date.replace(':', "")));
        fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// "1 rule", "10,000 rules".
pub fn rules(count: usize) -> String {
    let digits = count.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{grouped} rule{}", if count == 1 { "" } else { "s" })
}

/// Three significant figures or so: ns, ms and packets/s alike.
fn figure(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The model name, with the family, model and stepping numbers: virtual
/// machines often show only "AMD EPYC", and the numbers still tell one
/// generation of cores from another, whose figures differ.
fn cpu_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let Some(name) = field("model name") else {
        return "unknown".into();
    };
    match (field("cpu family"), field("model"), field("stepping")) {
        (Some(family), Some(model), Some(stepping)) => {
            format!("{name} (family {family}, model {model}, stepping {stepping})")
        }
        _ => name,
    }
}

fn command_line(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
