//! The `gather-agent` command line: one command wiring the crates together.
//!
//! # Layout
//! - `gather`, `run`, `publish`, `serve`: the runtime's subcommands (crate `agent`).
//! - `inspect`: reading archives back (crate `gather-inspect`, also its own `gather-inspect`).
//! - `sim` (feature `sim`): the API-server simulator (crate `gather-sim`).
//! - `bench`, `demo` (feature `devtools`): crate `gather-devtools`.
//! - `version`, `completions`: this binary's build and shell completion scripts.
//!
//! The operator image builds `--no-default-features`: the runtime and `inspect` only.

use clap::{Parser, Subcommand};

#[cfg(feature = "devtools")]
use gather_devtools::cmd::{bench, demo};
use gather_inspect::cli as inspect;

mod completions;
mod gather;
mod publish;
mod run;
mod serve;
#[cfg(feature = "sim")]
mod sim;
mod version;

pub(crate) use gather_inspect::cli::usage;

/// gather-agent: an Insights-Operator-style data gatherer whose gatherers are sandboxed,
/// hot-swappable WebAssembly modules.
#[derive(Parser)]
#[command(name = "gather-agent", version, about, long_about = None, after_help = gather_inspect::cli::EXIT_STATUS_HELP)]
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
    ///   gather-agent sim --write-kubeconfig k.yaml      # the embedded sample; or --fixtures DIR
    ///   kubectl --kubeconfig k.yaml get co
    ///
    /// Fault injection for tests: --forbid secrets, --fail /api/v1/nodes=500,
    /// --fail /apis=429:5 (Retry-After 5), --delay-ms 200. Grow the cluster with --scale N.
    #[command(verbatim_doc_comment)]
    #[cfg(feature = "sim")]
    Sim(sim::SimArgs),
    /// Run every gatherer module (*.wasm) in a directory once and write one archive.
    ///
    /// Prints a summary and, as the last line, the archive's path on stdout. Gatherer
    /// failures (traps, deadlines, policy denials...) are recorded in the archive's
    /// insights-operator/gathers.json, summarised on stdout and logged on stderr; the exit
    /// status is non-zero only if no archive was written.
    ///
    /// The Kubernetes client config comes from --kubeconfig, then $KUBECONFIG, then the
    /// in-cluster service account, in that order.
    #[command(verbatim_doc_comment)]
    Gather(gather::GatherArgs),
    /// Run periodically: poll an index URL and/or watch a modules directory for gatherer
    /// versions, verify them, hot-swap at the start of the next period, gather, archive.
    ///
    ///   gather-agent run --kubeconfig k.yaml --index-url http://127.0.0.1:8000/index.json \
    ///       --public-key KEY --out archives/ --state-dir state/ --period 2h --poll-interval 5m
    ///
    /// Every setting can also come from an environment variable (GATHER_AGENT_*) or the
    /// `run` section of --config FILE; flags win, then the environment, then the file.
    #[command(verbatim_doc_comment)]
    Run(run::RunArgs),
    /// Publish a directory of gatherer modules as a static site (index.json + <sha256>.wasm).
    ///
    ///   gather-agent keygen --out publisher.key
    ///   gather-agent publish --modules target/gatherers --out site/ --key publisher.key
    ///   gather-agent serve site/
    ///
    /// The serial increases with every publish; agents refuse a lower one. Unchanged modules
    /// add no new file. With --key, index.json.sig is a detached ed25519 signature over the
    /// exact bytes of index.json.
    #[command(verbatim_doc_comment)]
    Publish(publish::PublishArgs),
    /// Make an ed25519 keypair for signing indexes (KEYFILE and KEYFILE.pub).
    Keygen(publish::KeygenArgs),
    /// Serve a published site over HTTP with strong ETags (If-None-Match answered with 304).
    Serve(serve::ServeArgs),
    /// The one-command tour, with no cluster and no network: the simulator on the sample
    /// cluster, a signed publish, the periodic agent, a live hot swap, and `inspect`.
    #[cfg(feature = "devtools")]
    Demo(demo::DemoArgs),
    /// Read archives back: a summary, records, one record, metadata, a diff between two
    /// periods, or a directory of archives over time (with an HTML report).
    ///
    /// For support engineers, on a laptop: no cluster needed. --json works everywhere, and
    /// archives written by the Insights Operator itself work too. The commands and examples
    /// follow below.
    #[command(verbatim_doc_comment)]
    Inspect(inspect::InspectArgs),
    /// Measure the performance table of docs/PERFORMANCE.md in one run: module load, a period
    /// of the default gatherers wasm vs native (wall, CPU, peak RSS), a kubectl script peer,
    /// the unchanged-index poll, archive throughput and host-call overhead, on the simulator
    /// at the sample size, --scale 1000 and --scale 5000 (about 2 minutes; most of it is
    /// kubectl at 5000). The gatherers and the sample cluster are the embedded ones unless
    /// --modules/--fixtures say otherwise; the host-call probes are read from --probe and
    /// --go-probe (default: target/bench/ in the working directory, from `cargo xtask gatherers`).
    #[cfg(feature = "devtools")]
    Bench(bench::BenchArgs),
    /// This binary's version, gatherer ABI version, git commit and embedded default gatherers
    /// (name, version, sha256).
    Version(version::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(completions::CompletionsArgs),
    /// A subcommand this build leaves out (hidden): say so instead of "unrecognized".
    #[cfg(not(all(feature = "sim", feature = "devtools")))]
    #[command(external_subcommand)]
    Absent(Vec<String>),
}

/// Why a known subcommand is absent from this build, if it is one.
#[cfg_attr(all(feature = "sim", feature = "devtools"), allow(dead_code))]
fn absent_reason(name: &str) -> Option<&'static str> {
    match name {
        "sim" if !cfg!(feature = "sim") => Some("feature `sim`"),
        "demo" | "bench" if !cfg!(feature = "devtools") => Some("feature `devtools`"),
        _ => None,
    }
}

/// Colour only for a person at a terminal: never into a file or pipe, and never when
/// `NO_COLOR` is set to anything (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn init_logging(filter: &str, format: &str) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.with_ansi(use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"))).init();
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
    // The demo narrates on stdout; keep the agent's own log to warnings unless asked.
    #[cfg(feature = "devtools")]
    let demo = matches!(cli.command, Command::Demo(_));
    #[cfg(not(feature = "devtools"))]
    let demo = false;
    let quiet_demo = demo && cli.log == "info" && std::env::var_os("GATHER_AGENT_LOG").is_none();
    init_logging(if quiet_demo { "warn" } else { &cli.log }, &cli.log_format);
    let json_logs = cli.log_format == "json";
    agent::tls::install_crypto_provider();
    // A file-size limit (RLIMIT_FSIZE) would otherwise kill us with SIGXFSZ mid-write; with a
    // handler installed the write fails with EFBIG instead, which we report like a full disk.
    #[cfg(target_os = "linux")]
    let _sigxfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25));
    let result = match cli.command {
        #[cfg(feature = "sim")]
        Command::Sim(args) => sim::run(args).await,
        Command::Gather(args) => gather::run(args).await,
        #[cfg(feature = "devtools")]
        Command::Demo(args) => demo::run(args, shutdown_signal()).await,
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args).await,
        Command::Publish(args) => publish::publish(args),
        Command::Keygen(args) => publish::keygen(args),
        Command::Serve(args) => serve::run(args).await,
        #[cfg(feature = "devtools")]
        Command::Bench(args) => bench::run(args).await,
        Command::Version(args) => version::run(args),
        Command::Completions(args) => completions::run(args, <Cli as clap::CommandFactory>::command()),
        #[cfg(not(all(feature = "sim", feature = "devtools")))]
        Command::Absent(args) => {
            let name = args.first().map_or("", String::as_str);
            Err(usage(match absent_reason(name) {
                Some(feature) => anyhow::anyhow!(
                    "`{name}` is not built into this binary (built without the {feature}: the operator image ships the runtime and `inspect` only); use a build with default features, e.g. `cargo install --path cli`"
                ),
                None => anyhow::anyhow!("unrecognized subcommand `{name}`; see `gather-agent --help`"),
            }))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg = gather_inspect::cli::one_line(&e);
            if json_logs {
                // A log pipeline reads stderr as JSON lines: the fatal error is one of them.
                tracing::error!(error = %msg, "fatal");
            } else {
                eprintln!("error: {msg}");
            }
            std::process::ExitCode::from(gather_inspect::cli::exit_status(&e))
        }
    }
}

/// The binary's embedded default gatherers, as module sources for the runtime's loader.
pub(crate) fn embedded_modules() -> Vec<agent::loader::ModuleSource> {
    gather_defaults::modules()
        .iter()
        .map(|f| agent::loader::ModuleSource::new(format!("embedded {}", f.name), f.bytes))
        .collect()
}

/// The build script's git lookup, compiled here too so that its fallback is tested.
#[cfg(test)]
mod git_commit {
    include!("git_commit.rs");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outside a git work tree (a source tarball), the commit is unknown rather than a build
    /// failure; inside one, it is HEAD's 40 hex digits and the build watches HEAD.
    #[test]
    fn git_commit_has_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_commit::git_commit(dir.path()), None);
        assert!(git_commit::git_watch(dir.path()).is_empty());
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        if let Some(commit) = git_commit::git_commit(here) {
            assert_eq!(commit.len(), 40);
            assert!(git_commit::git_watch(here).iter().any(|f| f.ends_with("HEAD")));
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }

    /// The operator image's build (`--no-default-features`) names what is left out and why.
    #[test]
    fn left_out_subcommands_are_named_with_their_feature() {
        assert_eq!(absent_reason("demo").is_some(), !cfg!(feature = "devtools"));
        assert_eq!(absent_reason("bench").is_some(), !cfg!(feature = "devtools"));
        assert_eq!(absent_reason("sim").is_some(), !cfg!(feature = "sim"));
        assert_eq!(absent_reason("gather"), None);
        #[cfg(not(feature = "devtools"))]
        {
            let cli = Cli::try_parse_from(["gather-agent", "demo", "--period", "1"]).unwrap();
            assert!(matches!(cli.command, Command::Absent(ref a) if a[0] == "demo"));
        }
    }
}
