//! `xdp-hello check`: a rule set parsed and compiled as a run would, without
//! loading anything; says how many rules there are and which can never match.

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::classify::Compiled;
use crate::firewall::with_origin;
use crate::iface;
use crate::logging::say;
use crate::policy::{self, quote, Rule, RuleError, SourcedRule};

/// Checks the rules of the flags and the file; returns whether the set is
/// fine to load. Errors (exit 2) name FILE:LINE; rules that can never match
/// are warnings on stdout.
pub fn run(flags: &[String], file: Option<&Path>) -> Result<bool> {
    // Every bad line at once, then the one error that makes the exit 2.
    let mut bad = 0;
    let rules = policy::load_reading_on(flags, file, &mut |err| {
        bad += 1;
        say(&err);
        Ok(())
    })?;
    if bad > 0 {
        return Err(RuleError(format!(
            "{bad} bad rule{}: nothing else was checked",
            if bad == 1 { "" } else { "s" }
        ))
        .into());
    }
    let plain: Vec<Rule> = rules.iter().map(|sourced| sourced.rule.clone()).collect();
    // Interfaces of another machine compile as interfaces of their own.
    let absent = RefCell::new(Vec::<String>::new());
    let iface_of = |name: &str| {
        iface::index_of(name).ok().or_else(|| {
            let mut absent = absent.borrow_mut();
            let index = match absent.iter().position(|known| known == name) {
                Some(index) => index,
                None => {
                    absent.push(name.to_string());
                    absent.len() - 1
                }
            };
            Some(u32::MAX - index as u32)
        })
    };
    let compiled = Compiled::new(&plain, &iface_of).map_err(|err| with_origin(err, &rules))?;
    let mut report = String::new();
    for name in absent.borrow().iter() {
        report += &format!(
            "note: no interface {} here; checked as if there were\n",
            quote(name)
        );
    }
    for line in findings(&rules, &compiled) {
        report += &line;
        report.push('\n');
    }
    report += &summary(&rules, &compiled);
    report.push('\n');
    // A reader that has seen enough (`| head`) is no error.
    match std::io::stdout().lock().write_all(report.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(err).context("writing the report");
        }
        _ => {}
    }
    Ok(true)
}

/// One line per rule that can never match, in rule order.
fn findings(rules: &[SourcedRule], compiled: &Compiled) -> Vec<String> {
    let mut lines: Vec<(usize, String)> = compiled
        .shadowed
        .iter()
        .map(|(rule, by)| {
            let this = &rules[*rule];
            (
                *rule,
                format!(
                    "{}: warning: {} can never match: {}",
                    this.origin,
                    quote(&this.rule.to_string()),
                    deciders(rules, by),
                ),
            )
        })
        .chain(compiled.never_matches.iter().map(|&rule| {
            let this = &rules[rule];
            (
                rule,
                format!(
                    "{}: warning: {} can never match: no packet has all it asks for",
                    this.origin,
                    quote(&this.rule.to_string()),
                ),
            )
        }))
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, line)| line).collect()
}

/// Names the earlier rules that decide a shadowed one: "FILE:1 'R' decides
/// all of it first", or, for several, the first three of them and how many
/// more "decide all of it between them".
fn deciders(rules: &[SourcedRule], by: &[usize]) -> String {
    const NAMED: usize = 3;
    let name = |&rule: &usize| {
        format!(
            "{} {}",
            rules[rule].origin,
            quote(&rules[rule].rule.to_string())
        )
    };
    let names: Vec<String> = by.iter().take(NAMED).map(name).collect();
    match (names.as_slice(), by.len().saturating_sub(NAMED)) {
        ([one], _) => format!("{one} decides all of it first"),
        ([first @ .., last], 0) => {
            format!(
                "{} and {last} decide all of it between them",
                first.join(", ")
            )
        }
        (_, more) => format!(
            "{} and {more} more decide all of it between them",
            names.join(", ")
        ),
    }
}

/// "12 rules, 1 can never match; 40 table entries in 3 shapes".
fn summary(rules: &[SourcedRule], compiled: &Compiled) -> String {
    let dead = compiled.shadowed.len() + compiled.never_matches.len();
    format!(
        "{} rule{}, {dead} can never match; {} table entr{} in {} shape{}",
        rules.len(),
        if rules.len() == 1 { "" } else { "s" },
        compiled.entries.len(),
        if compiled.entries.len() == 1 {
            "y"
        } else {
            "ies"
        },
        compiled.plan.shapes.count_ones(),
        if compiled.plan.shapes.count_ones() == 1 {
            ""
        } else {
            "s"
        },
    )
}
