//! `gather-agent gather`: run every gatherer (of a directory, one file, or the embedded
//! defaults) once and write one archive.

use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of `gather`: the same environment variables as `run` for the settings they share.
#[derive(clap::Args)]
pub struct GatherArgs {
    /// kubeconfig to use (else $KUBECONFIG, else in-cluster).
    #[arg(long, env = "GATHER_AGENT_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Gatherer modules: a directory of *.wasm, or one .wasm file [default: the embedded
    /// default gatherers].
    #[arg(long, env = "GATHER_AGENT_MODULES_DIR", value_name = "DIR|FILE")]
    pub modules: Option<PathBuf>,
    /// Directory to write the archive into (created if missing).
    #[arg(long, env = "GATHER_AGENT_OUT", value_name = "DIR")]
    pub out: PathBuf,
    /// Agent config (JSON): limits, per-module policy and config. See docs/CONFIG.md.
    #[arg(long, env = "GATHER_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub async fn run(args: GatherArgs) -> anyhow::Result<()> {
    use std::sync::Arc;

    let config = match &args.config {
        Some(p) => agent::config::AgentConfig::load(p).map_err(crate::usage)?,
        None => agent::config::AgentConfig::default(),
    };
    let conn = agent::kubeclient::connection(args.kubeconfig.as_deref()).await?;
    tracing::info!("Kubernetes client from {}, API server {}", conn.source, conn.server);
    let sources = match &args.modules {
        Some(path) => agent::loader::read_path(path)?,
        None => crate::embedded_modules(),
    };
    let sandbox = Arc::new(agent::sandbox::Sandbox::new());
    let loaded = agent::loader::Loader::new(&sandbox, &config).load_set(&sources);
    for name in &loaded.disabled {
        tracing::info!(gatherer = %name, "disabled by the configuration");
        println!("  {name:<20} disabled by the configuration");
    }
    let (specs, failures) = loaded.into_period();
    anyhow::ensure!(!specs.is_empty() || !failures.is_empty(), "every gatherer is disabled by the configuration; nothing to run");
    let api = Arc::new(agent::policy::Bridge::new(conn.client, tokio::runtime::Handle::current()).with_server(&conn.server));
    let mut opts = agent::gather::PeriodOptions::new(&args.out);
    opts.concurrency = config.concurrency;
    opts.archive_max_bytes = config.archive_max_bytes;
    opts.obfuscate_networking = config.obfuscates_networking();
    let result = agent::gather::run_period(sandbox, api, specs, failures, &opts)
        .await
        .context("writing the archive")?;
    let reports = &result.metadata.status_reports;
    let failed: Vec<_> = reports.iter().filter(|r| r.errors.is_some() || r.panic.is_some()).collect();
    let records = reports.iter().map(|r| r.records_count).sum::<u64>();
    // The summary is for people, on stdout; the log (stderr, text or JSON lines) gets the
    // same facts as events. The archive's path stays the last line of stdout.
    tracing::info!(archive = %result.archive.display(), gatherers = reports.len(), records, failed = failed.len(), "archive written");
    println!("{} gatherers, {records} records, {} failed or with errors", reports.len(), failed.len());
    for r in failed {
        let kind = r.error_kind.as_deref().unwrap_or("error");
        let first = r.errors.as_ref().and_then(|e| e.first()).cloned().or_else(|| r.panic.clone()).unwrap_or_default();
        tracing::warn!(gatherer = %r.name, kind, "{first}");
        println!("  {:<20} {kind:<10} {first}", r.name);
    }
    println!("{}", result.archive.display());
    Ok(())
}

