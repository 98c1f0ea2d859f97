//! The `gather-agent` command line.

use clap::{Parser, Subcommand};

mod demo;
mod gather;
mod sim;

/// gather-agent: an Insights-Operator-style data gatherer whose gatherers are sandboxed,
/// hot-swappable WebAssembly modules.
#[derive(Parser)]
#[command(name = "gather-agent", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), for example `info` or `agent=debug`.
    #[arg(long, global = true, env = "GATHER_AGENT_LOG", default_value = "info")]
    log: String,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, global = true, env = "GATHER_AGENT_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a fixture cluster over HTTPS as a read-only Kubernetes API server.
    ///
    /// kubectl and kube-rs clients work against it: discovery, get/list, label and field
    /// selectors, limit/continue paging and Status errors are all real. Example:
    ///
    ///
    ///   gather-agent sim --fixtures testdata/cluster/sample --write-kubeconfig k.yaml
    ///   kubectl --kubeconfig k.yaml get co
    ///
    /// Fault injection for tests: --forbid secrets, --fail /api/v1/nodes=500,
    /// --fail /apis=429:5 (Retry-After 5), --delay-ms 200. Grow the cluster with --scale N.
    #[command(verbatim_doc_comment)]
    Sim(sim::SimArgs),
    /// Run every gatherer module (*.wasm) in a directory once and write one archive.
    ///
    /// Prints the archive's path on stdout. Gatherer failures (traps, deadlines, policy
    /// denials...) are recorded in the archive's insights-operator/gathers.json and
    /// summarised on stderr; the exit status is non-zero only if no archive was written.
    ///
    /// The Kubernetes client config comes from --kubeconfig, then $KUBECONFIG, then the
    /// in-cluster service account, in that order.
    #[command(verbatim_doc_comment)]
    Gather(gather::GatherArgs),
    /// A tour on the embedded sample cluster, with no cluster and no network: start the
    /// simulator, talk to it with the kube-rs client, run the wasm gatherers once.
    Demo(demo::DemoArgs),
}

fn init_logging(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, &cli.log_format);
    agent::tls::install_crypto_provider();
    let result = match cli.command {
        Command::Sim(args) => sim::run(args).await,
        Command::Gather(args) => gather::run(args).await,
        Command::Demo(args) => demo::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
