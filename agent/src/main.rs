//! The `gather-agent` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use agent::sim::{self, Fault, SimConfig};

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
    Sim(SimArgs),
    /// Run every gatherer module (*.wasm) in a directory once and write one archive.
    ///
    /// Prints the archive's path on stdout. Gatherer failures (traps, deadlines, policy
    /// denials...) are recorded in the archive's insights-operator/gathers.json and
    /// summarised on stderr; the exit status is non-zero only if no archive was written.
    ///
    /// The Kubernetes client config comes from --kubeconfig, then $KUBECONFIG, then the
    /// in-cluster service account, in that order.
    #[command(verbatim_doc_comment)]
    Gather(GatherArgs),
    /// Start the simulator on the sample cluster, talk to it with the kube-rs client,
    /// and print what it serves. The quickest way to see the pieces working.
    Demo(DemoArgs),
}

#[derive(clap::Args)]
struct SimArgs {
    /// Directory of fixture objects (`kubectl get -o json` output; see testdata/README.md).
    #[arg(long, value_name = "DIR")]
    fixtures: PathBuf,
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Bearer token clients must present. Random when not given.
    #[arg(long, env = "GATHER_AGENT_SIM_TOKEN")]
    token: Option<String>,
    /// Write a kubeconfig (CA + token) for this server to PATH.
    #[arg(long, value_name = "PATH")]
    write_kubeconfig: Option<PathBuf>,
    /// Answer 403 Forbidden for a resource (`secrets`, `pods`, `clusteroperators.config.openshift.io`). Repeatable.
    #[arg(long, value_name = "RESOURCE")]
    forbid: Vec<String>,
    /// Inject a failure: PATH_PREFIX=STATUS, or PATH_PREFIX=429:RETRY_AFTER_SECONDS. Repeatable.
    #[arg(long, value_name = "PREFIX=STATUS")]
    fail: Vec<Fault>,
    /// Delay every authenticated response by N milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    delay_ms: u64,
    /// Add N synthetic nodes and 10*N pods with realistic sizes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    scale: u32,
    /// Seconds a `continue` token stays valid before it is answered with 410 Gone.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    continue_ttl: u64,
}

#[derive(clap::Args)]
struct GatherArgs {
    /// kubeconfig to use (else $KUBECONFIG, else in-cluster).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Directory of gatherer modules (*.wasm).
    #[arg(long, value_name = "DIR")]
    modules: PathBuf,
    /// Directory to write the archive into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Agent config (JSON): limits, per-module policy and config. See docs/CONFIG.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Fixture cluster to serve. Defaults to the sample cluster shipped in testdata/.
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Gatherer modules to run. Defaults to target/gatherers (built by `cargo xtask gatherers`).
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// Where to write the demo's archive. Defaults to a fresh directory under the system temp dir.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Keep the simulator running after the demo (Ctrl-C to stop), to try kubectl against it.
    #[arg(long)]
    keep_running: bool,
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
async fn shutdown_signal() {
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

/// The built gatherers: `target/gatherers` under the working directory or the source tree.
fn default_modules() -> PathBuf {
    let local = PathBuf::from("target/gatherers");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/gatherers"))
}

/// The sample cluster: `testdata/cluster/sample` under the working directory, or in the
/// source tree this binary was built from.
fn default_fixtures() -> PathBuf {
    let local = PathBuf::from("testdata/cluster/sample");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/cluster/sample"))
}

async fn cmd_sim(args: SimArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        fixtures: Some(args.fixtures.clone()),
        listen: args.listen,
        token: args.token,
        forbid: args.forbid,
        faults: args.fail,
        delay: Duration::from_millis(args.delay_ms),
        scale: args.scale,
        continue_ttl: Duration::from_secs(args.continue_ttl),
    };
    let handle = sim::start(config).await.context("starting the simulator")?;
    let counts = handle.cluster().counts();
    let total: usize = counts.values().sum();
    println!("serving {total} objects from {}", args.fixtures.display());
    for (resource, n) in &counts {
        println!("  {n:>6}  {resource}");
    }
    println!("listening on {}", handle.url);
    match &args.write_kubeconfig {
        Some(path) => {
            handle.write_kubeconfig(path)?;
            println!("kubeconfig written to {}", path.display());
            println!("try: kubectl --kubeconfig {} get clusteroperators", path.display());
        }
        None => {
            println!("token: {}", handle.token);
            println!("(pass --write-kubeconfig PATH to get a kubeconfig for kubectl)");
        }
    }
    println!("press Ctrl-C to stop");
    shutdown_signal().await;
    handle.shutdown().await;
    println!("stopped");
    Ok(())
}

async fn cmd_gather(args: GatherArgs) -> anyhow::Result<()> {
    use std::sync::Arc;

    let config = match &args.config {
        Some(p) => agent::config::AgentConfig::load(p)?,
        None => agent::config::AgentConfig::default(),
    };
    let (client, source) = agent::kubeclient::connect(args.kubeconfig.as_deref()).await?;
    tracing::info!("Kubernetes client from {source}");
    let sandbox = Arc::new(agent::sandbox::Sandbox::new());
    let (specs, failures) = agent::gather::load_modules_dir(&sandbox, &args.modules, &config)
        .with_context(|| format!("reading modules from {}", args.modules.display()))?;
    if specs.is_empty() && failures.is_empty() {
        anyhow::bail!("no *.wasm gatherer modules in {}", args.modules.display());
    }
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let mut opts = agent::gather::PeriodOptions::new(&args.out);
    opts.concurrency = config.concurrency;
    opts.archive_max_bytes = config.archive_max_bytes;
    let result = agent::gather::run_period(sandbox, api, specs, failures, &opts)
        .await
        .context("writing the archive")?;
    let reports = &result.metadata.status_reports;
    let failed: Vec<_> = reports.iter().filter(|r| r.errors.is_some() || r.panic.is_some()).collect();
    eprintln!(
        "{} gatherers, {} records, {} failed or with errors",
        reports.len(),
        reports.iter().map(|r| r.records_count).sum::<u64>(),
        failed.len()
    );
    for r in failed {
        let kind = r.error_kind.as_deref().unwrap_or("error");
        let first = r.errors.as_ref().and_then(|e| e.first()).cloned().or_else(|| r.panic.clone()).unwrap_or_default();
        eprintln!("  {:<20} {kind:<10} {first}", r.name);
    }
    println!("{}", result.archive.display());
    Ok(())
}

async fn cmd_demo(args: DemoArgs) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, ListParams};
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};

    let fixtures = args.fixtures.unwrap_or_else(default_fixtures);
    println!("== gather-agent demo");
    println!("1. starting the cluster simulator on {}", fixtures.display());
    let handle = sim::start(SimConfig::with_fixtures(&fixtures))
        .await
        .context("starting the simulator")?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig)?;
    println!("   listening on {} (HTTPS, bearer token, CA generated at start)", handle.url);

    println!("2. connecting with the kube-rs client, exactly as the agent will");
    let client = agent::kubeclient::from_kubeconfig(&kubeconfig).await?;
    let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "ClusterOperator");
    let co: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    let cos = co.list(&ListParams::default()).await?;
    println!("   {} ClusterOperators:", cos.items.len());
    let names: Vec<String> = cos.items.iter().filter_map(|o| o.metadata.name.clone()).collect();
    for chunk in names.chunks(6) {
        println!("     {}", chunk.join(", "));
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for n in nodes.list(&ListParams::default()).await? {
        let version = n.status.and_then(|s| s.node_info).map(|i| i.kubelet_version).unwrap_or_default();
        println!("   node {} ({version})", n.metadata.name.unwrap_or_default());
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let (mut pages, mut total, mut token) = (0, 0, None::<String>);
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = pods.list(&lp).await?;
        pages += 1;
        total += page.items.len();
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    println!("   {total} pods across all namespaces, read in {pages} pages of 10 (limit/continue)");

    println!("3. running the gatherers once: sandboxed wasm modules, REST calls proxied by the host");
    let modules_dir = args.modules.unwrap_or_else(default_modules);
    let config = agent::config::AgentConfig::default();
    let sandbox = std::sync::Arc::new(agent::sandbox::Sandbox::new());
    let (specs, failures) = agent::gather::load_modules_dir(&sandbox, &modules_dir, &config)
        .with_context(|| format!("reading gatherer modules from {} (build them with `cargo xtask gatherers`)", modules_dir.display()))?;
    if specs.is_empty() {
        anyhow::bail!("no gatherer modules in {}: build them with `cargo xtask gatherers`", modules_dir.display());
    }
    for s in &specs {
        let perms: Vec<String> = s.module.manifest.permissions.iter().map(ToString::to_string).collect();
        println!(
            "   loaded {:<20} v{:<6} {:>4} KB in {:>5.2} ms  sha256 {}  may: {}",
            s.module.manifest.name,
            s.module.manifest.version,
            s.module.size / 1024,
            s.module.compile_time.as_secs_f64() * 1e3,
            &s.module.sha256[..12],
            perms.join(", ")
        );
    }
    let out_dir = match args.out {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("gather-agent-demo-{}", std::process::id())),
    };
    let api = std::sync::Arc::new(agent::policy::Bridge::new(client.clone(), tokio::runtime::Handle::current()));
    let result = agent::gather::run_period(sandbox, api, specs, failures, &agent::gather::PeriodOptions::new(&out_dir)).await?;
    println!("   {:<20} {:>8} {:>8} {:>12} {:>9}  errors", "gatherer", "records", "ms", "fuel", "requests");
    for r in &result.metadata.status_reports {
        let errors = r.errors.as_ref().map_or("-".to_owned(), |e| e.join("; "));
        println!("   {:<20} {:>8} {:>8} {:>12} {:>9}  {errors}", r.name, r.records_count, r.duration_in_ms, r.fuel_used, r.requests);
    }
    println!("   archive: {}", result.archive.display());
    println!("   (open it with: tar -tzf {})", result.archive.display());
    println!("4. the simulator answered {} requests", handle.request_count());
    if args.keep_running {
        let path = PathBuf::from("demo.kubeconfig");
        handle.write_kubeconfig(&path)?;
        println!("   kubeconfig: {}; try: kubectl --kubeconfig {} get co", path.display(), path.display());
        println!("   press Ctrl-C to stop");
        shutdown_signal().await;
    } else {
        println!("   to explore it yourself: gather-agent sim --fixtures {} --write-kubeconfig k.yaml", fixtures.display());
        println!("   then: kubectl --kubeconfig k.yaml get co");
    }
    handle.shutdown().await;
    println!("done");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, &cli.log_format);
    agent::tls::install_crypto_provider();
    let result = match cli.command {
        Command::Sim(args) => cmd_sim(args).await,
        Command::Gather(args) => cmd_gather(args).await,
        Command::Demo(args) => cmd_demo(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
