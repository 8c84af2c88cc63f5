//! What one run found: a markdown table, then one `ratio …: X` line per
//! ratio, and the same as JSON under bench-results/ with the date and the
//! machine (absolute figures drift between runs; the ratios are what count).

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
    median: f64,
    min: f64,
    unit: &'static str,
    note: String,
    /// Every round's figure, in the order measured (empty for derived rows).
    samples: Vec<f64>,
}

pub struct Report {
    shapes: &'static str,
    rows: Vec<Row>,
    ratios: Vec<(String, f64)>,
}

impl Report {
    pub fn new(shapes: &'static str) -> Report {
        Report {
            shapes,
            rows: Vec::new(),
            ratios: Vec::new(),
        }
    }

    /// A row: `what` was measured on `on` (a frame, a mode), `samples` in `unit`.
    pub fn row(&mut self, what: &str, on: &str, samples: &Samples, unit: &'static str, note: &str) {
        self.rows.push(Row {
            what: what.into(),
            on: on.into(),
            median: samples.median(),
            min: samples.min(),
            unit,
            note: note.into(),
            samples: samples.0.clone(),
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
            median,
            min,
            unit,
            note: note.into(),
            samples: Vec::new(),
        });
    }

    /// `ratio NAME: VALUE`, NAME as the issue spells it.
    pub fn ratio(&mut self, name: &str, value: f64) {
        self.ratios.push((name.into(), value));
    }

    pub fn print(&self) {
        println!("\n| measurement | frame / setup | median | min | unit | note |");
        println!("|---|---|---:|---:|---|---|");
        for row in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                row.what,
                row.on,
                figure(row.median),
                figure(row.min),
                row.unit,
                row.note
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
                json!({"measurement": row.what, "on": row.on, "median": row.median,
                       "min": row.min, "unit": row.unit, "note": row.note,
                       "samples": row.samples})
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
            "kernel": fs::read_to_string("/proc/sys/kernel/osrelease")?.trim(),
            "rule_shapes": self.shapes,
            "rows": rows,
            "ratios": ratios,
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

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

fn command_line(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
