//! `gather-agent demo`: a tour of the pieces on the sample cluster, with no cluster and no network.

use std::path::PathBuf;

use anyhow::Context as _;

use agent::sim::{self, SimConfig};


#[derive(clap::Args)]
pub struct DemoArgs {
    /// Fixture cluster to serve. Defaults to the sample cluster shipped in testdata/.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// Gatherer modules to run. Defaults to target/gatherers (built by `cargo xtask gatherers`).
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// Where to write the demo's archive. Defaults to a fresh directory under the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Keep the simulator running after the demo (Ctrl-C to stop), to try kubectl against it.
    #[arg(long)]
    pub keep_running: bool,
}

/// The built gatherers: `target/gatherers` under the working directory or the source tree.
pub fn default_modules() -> PathBuf {
    let local = PathBuf::from("target/gatherers");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/gatherers"))
}

/// The sample cluster: `testdata/cluster/sample` under the working directory, or in the
/// source tree this binary was built from.
pub fn default_fixtures() -> PathBuf {
    let local = PathBuf::from("testdata/cluster/sample");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/cluster/sample"))
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
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
        crate::shutdown_signal().await;
    } else {
        println!("   to explore it yourself: gather-agent sim --fixtures {} --write-kubeconfig k.yaml", fixtures.display());
        println!("   then: kubectl --kubeconfig k.yaml get co");
    }
    handle.shutdown().await;
    println!("done");
    Ok(())
}

