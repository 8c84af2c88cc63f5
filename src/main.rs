//! xdp-hello's command line and dispatch; the work is done in the library.

use std::process::ExitCode;

use clap::Parser;

use xdp_hello::cli::{Cli, Command};
use xdp_hello::logging::{self, say};
use xdp_hello::policy::RuleError;
use xdp_hello::{check, selftest, session, status};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose());
    let outcome = match cli.command {
        Some(Command::Selftest { .. }) => selftest::run(),
        Some(Command::Check {
            ref rules,
            ref rules_file,
        }) => check::run(rules, rules_file.as_deref()),
        Some(Command::Status { json }) => status::run(json),
        None => session::run(&cli),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            say(format_args!("{err:#}"));
            // Bad rules share clap's status for bad usage.
            if err.downcast_ref::<RuleError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
