//! `gather-agent sim`: serve a fixture cluster as a read-only Kubernetes API server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use gather_sim::{self as sim, Fault, Fixtures, SimConfig};

/// The sample cluster embedded in the binary (crate `gather-defaults`).
fn embedded_sample() -> Fixtures {
    Fixtures::Files(gather_defaults::sample_cluster().iter().map(|f| (f.name.to_owned(), f.bytes.into())).collect())
}

#[derive(clap::Args)]
pub struct SimArgs {
    /// Directory of fixture objects (`kubectl get -o json` output; see testdata/README.md).
    /// Defaults to the sample cluster embedded in this binary.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Bearer token clients must present. Random when not given.
    #[arg(long, env = "GATHER_AGENT_SIM_TOKEN")]
    pub token: Option<String>,
    /// Write a kubeconfig (CA + token) for this server to PATH.
    #[arg(long, value_name = "PATH")]
    pub write_kubeconfig: Option<PathBuf>,
    /// Answer 403 Forbidden for a resource (`secrets`, `pods`, `clusteroperators.config.openshift.io`). Repeatable.
    #[arg(long, value_name = "RESOURCE")]
    pub forbid: Vec<String>,
    /// Inject a failure: PATH_PREFIX=STATUS, or PATH_PREFIX=429:RETRY_AFTER_SECONDS. Repeatable.
    #[arg(long, value_name = "PREFIX=STATUS")]
    pub fail: Vec<Fault>,
    /// Delay every authenticated response by N milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub delay_ms: u64,
    /// Add N synthetic nodes and 10*N pods with realistic sizes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub scale: u32,
    /// Seconds a `continue` token stays valid before it is answered with 410 Gone.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub continue_ttl: u64,
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        fixtures: match &args.fixtures {
            Some(dir) => Fixtures::Dir(dir.clone()),
            None => embedded_sample(),
        },
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
    match &args.fixtures {
        Some(dir) => println!("serving {total} objects from {}", dir.display()),
        None => println!("serving {total} objects from the embedded sample cluster"),
    }
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
    crate::shutdown_signal().await;
    handle.shutdown().await;
    println!("stopped");
    Ok(())
}

