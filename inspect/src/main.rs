//! `gather-inspect`: the support engineer's tool on its own, for a laptop. It is exactly
//! `gather-agent inspect`, without the runtime's dependencies (no Kubernetes client, no wasm
//! engine, no async runtime).

use clap::Parser;

/// Read gather-agent (and Insights Operator) archives back: a summary, records, one record,
/// metadata, a diff between two periods, or a directory of archives over time.
#[derive(Parser)]
#[command(name = "gather-inspect", version, about, long_about = None, after_help = gather_inspect::cli::EXIT_STATUS_HELP)]
struct Cli {
    #[command(flatten)]
    args: gather_inspect::cli::InspectArgs,
}

fn main() -> std::process::ExitCode {
    match gather_inspect::cli::run(Cli::parse().args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", gather_inspect::cli::one_line(&e));
            std::process::ExitCode::from(gather_inspect::cli::exit_status(&e))
        }
    }
}
