//! What xdp-hello says on stderr: its own lines, and libbpf's messages routed
//! into the `log` crate.
//!
//! Every line goes out in one write(2), so lines from two writers never
//! interleave, and a stderr that cannot be written (`2>/dev/full`, a closed
//! pipe) is ignored: eprintln! would panic there, and the firewall must not
//! end because its messages cannot be read.

use std::fmt::{Display, Write as _};
use std::io::{self, Write};

use libbpf_rs::PrintLevel;

/// `-v` shows libbpf's debug output; `RUST_LOG` overrides either way.
pub fn init(verbose: bool) {
    let default = if verbose { "debug" } else { "error" };
    // env_logger formats a record into one buffer, writes it with one
    // write_all and ignores a failure, as `say` does.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp(None)
        .init();
    libbpf_rs::set_print(Some((PrintLevel::Debug, forward)));
}

/// Writes `xdp-hello: MESSAGE` and a newline to stderr in one write.
pub fn say(message: impl Display) {
    let mut line = String::with_capacity(128);
    // Writing into a String cannot fail.
    let _ = writeln!(line, "xdp-hello: {message}");
    write_stderr(&line);
}

/// Writes `text` (whole lines, each already prefixed) to stderr in one
/// write, ignoring failure.
pub fn write_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

fn forward(level: PrintLevel, message: String) {
    // libbpf starts its lines with "libbpf: "; the log target says it already.
    let message = message.trim_end();
    let message = message.strip_prefix("libbpf: ").unwrap_or(message);
    match level {
        PrintLevel::Warn => log::warn!(target: "libbpf", "{message}"),
        PrintLevel::Info => log::info!(target: "libbpf", "{message}"),
        PrintLevel::Debug => log::debug!(target: "libbpf", "{message}"),
    }
}
