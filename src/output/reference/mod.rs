//! The writers as they were before they wrote into the output buffer
//! (core::fmt and Strings): kept only to check the new ones byte for byte.
#![allow(dead_code)]

mod fields;
mod json;
mod names;
mod text;

pub use json::json_line;
pub use text::{format_dry_run_line, format_line};

/// `HH:MM:SS.micros` in local time.
pub fn local_time(realtime_ns: i128) -> String {
    let secs = (realtime_ns / 1_000_000_000) as libc::time_t;
    let micros = (realtime_ns % 1_000_000_000) / 1000;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        tm.tm_hour, tm.tm_min, tm.tm_sec, micros
    )
}
