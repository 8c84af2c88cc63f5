//! libbpf's messages, routed into the `log` crate.

use libbpf_rs::PrintLevel;

/// `-v` shows libbpf's debug output; `RUST_LOG` overrides either way.
pub fn init(verbose: bool) {
    let default = if verbose { "debug" } else { "error" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp(None)
        .init();
    libbpf_rs::set_print(Some((PrintLevel::Debug, forward)));
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
