//! `gather-agent demo`: the whole product in one command, with no cluster and no network.
//! It starts the API simulator on the sample cluster, publishes the default gatherers to a
//! local signed site, runs the agent with a short period, publishes a new version of one
//! gatherer while it runs, shows it verified, staged and swapped in at the next period, and
//! ends with an `inspect` summary and diff of the archives.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use gather_sim::{self as sim, Fixtures, SimConfig};

/// Arguments of `demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Fixture cluster to serve. Defaults to the sample cluster embedded in the binary.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// Gatherer modules to publish. Defaults to the gatherers embedded in the binary.
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// Working directory for the site, archives and state. Defaults to a fresh temp directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Time between periods, a duration like every other one (`3s`, `500ms`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = period)]
    pub period: Duration,
    /// Keep the simulator running at the end (Ctrl-C to stop), to explore it with kubectl.
    #[arg(long)]
    pub keep_running: bool,
}

/// A positive humantime duration: `--period` reads as `run --period` does.
fn period(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("the period must be positive".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (examples: 3s, 500ms, 1m)")),
    }
}

/// The fixtures the demo serves: `--fixtures DIR`, else the sample cluster embedded in the
/// binary (no source tree needed).
fn fixtures(dir: Option<&PathBuf>) -> Fixtures {
    match dir {
        Some(dir) => Fixtures::Dir(dir.clone()),
        None => Fixtures::Files(gather_defaults::sample_cluster().iter().map(|f| (f.name.to_owned(), f.bytes.into())).collect()),
    }
}

/// The bytes of default gatherer `name`: from `--modules DIR`, else embedded in the binary.
fn module_bytes(dir: Option<&PathBuf>, name: &str) -> anyhow::Result<Vec<u8>> {
    let file = format!("{name}.wasm");
    match dir {
        Some(dir) => {
            let from = dir.join(&file);
            std::fs::read(&from).with_context(|| format!("{} is missing: build the gatherers first with `cargo xtask gatherers` (or run `cargo xtask demo`)", from.display()))
        }
        None => gather_defaults::modules()
            .iter()
            .find(|m| m.name == file)
            .map(|m| m.bytes.to_vec())
            .with_context(|| format!("{file} is not embedded in this binary (it was built without the gatherers); pass --modules DIR")),
    }
}

/// The gatherer written in WAT from ABI.md alone; the demo publishes a new version of it.
const INGRESS_WAT: &str = include_str!("../../../testdata/gatherers/ingresscontroller.wat");

fn ingress_module(version: &str) -> anyhow::Result<Vec<u8>> {
    let src = INGRESS_WAT.replace(r#"\"version\":\"1.0.0\""#, &format!(r#"\"version\":\"{version}\""#));
    Ok(wat::parse_str(src)?)
}

/// The default gatherers: the set embedded in this binary (by name: benchmark and test
/// modules may share a `--modules` directory, and are not published).
fn default_gatherers() -> Vec<String> {
    gather_defaults::modules().iter().filter_map(|m| m.name.strip_suffix(".wasm")).map(str::to_owned).collect()
}

fn step(n: u32, title: &str) {
    println!("\n[{n}/6] {title}");
}

/// Runs the demo; with `--keep-running`, the simulator serves until `shutdown` resolves.
pub async fn run(args: DemoArgs, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let fixtures = fixtures(args.fixtures.as_ref());
    let tmp = tempfile::Builder::new().prefix("gather-agent-demo-").tempdir()?;
    let dir = match args.dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => tmp.path().to_owned(),
    };
    println!("== gather-agent demo: Insights-Operator-style gathering with sandboxed, hot-swappable wasm gatherers");
    println!("   working directory: {}", dir.display());

    step(1, "a cluster: the API-server simulator on the sample OpenShift cluster");
    let what = match &args.fixtures {
        Some(dir) => dir.display().to_string(),
        None => "the embedded sample cluster".to_owned(),
    };
    let sim = sim::start(SimConfig { fixtures, ..SimConfig::default() }).await.with_context(|| format!("starting the simulator on {what}"))?;
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    let counts = sim.cluster().counts();
    println!(
        "   {} on {} (HTTPS, bearer token): {} objects, {} nodes, {} pods, {} cluster operators",
        what,
        sim.url,
        counts.values().sum::<usize>(),
        counts.get("nodes").unwrap_or(&0),
        counts.get("pods").unwrap_or(&0),
        counts.get("clusteroperators.config.openshift.io").unwrap_or(&0)
    );
    println!("   kubectl works against it too: kubectl --kubeconfig {} get co", kubeconfig.display());

    step(2, "a gatherer author publishes the gatherers to a signed static site");
    let staging = dir.join("to-publish");
    std::fs::create_dir_all(&staging)?;
    for name in default_gatherers() {
        std::fs::write(staging.join(format!("{name}.wasm")), module_bytes(args.modules.as_ref(), &name)?)?;
    }
    std::fs::write(staging.join("ingresscontroller.wasm"), ingress_module("1.0.0")?)?;
    let (secret, public_key) = agent::index::generate_key();
    let key = dir.join("publisher.key");
    std::fs::write(&key, secret)?;
    let site = dir.join("site");
    let publish = |staging: &PathBuf| {
        agent::publish::publish(&agent::publish::PublishOptions {
            modules_dir: staging.clone(),
            site: site.clone(),
            key: Some(key.clone()),
            settings: None,
            expires_in: Some(Duration::from_secs(7 * 86400)),
        })
    };
    let v1 = publish(&staging)?;
    for g in &v1.index.gatherers {
        let perms: Vec<String> = g.permissions.iter().map(ToString::to_string).collect();
        let perms = if perms.len() > 2 { format!("{} (+{} more)", perms[..2].join(", "), perms.len() - 2) } else { perms.join(", ") };
        println!("   {:<20} {:<6} {:>4} KB  sha256 {}  may: {perms}", g.name, g.version, g.size / 1024, &g.sha256[..12]);
    }
    let server = agent::serve::start(&site, "127.0.0.1:0".parse()?).await?;
    let url = format!("{}/index.json", server.url);
    println!("   index serial {} signed with ed25519, served at {url} (ETag/304)", v1.index.serial);

    step(3, "the agent polls the index, verifies everything, and gathers every few seconds");
    let out = dir.join("archives");
    let mut cfg = agent::run::RunConfig::new(&out, dir.join("state"));
    cfg.index_url = Some(url.parse()?);
    cfg.public_key = Some(agent::index::parse_public_key(&public_key)?);
    cfg.period = args.period;
    cfg.poll_interval = Duration::from_millis(500);
    cfg.jitter = 0.0;
    cfg.listen = Some("127.0.0.1:0".parse()?);
    let agent = agent::run::Agent::new(cfg)?;
    let status = agent.status();
    if let Some(addr) = agent.endpoints_addr() {
        println!("   endpoints: http://{addr}/metrics  /status  /readyz  /healthz");
    }
    println!("   period {}, public key pinned, limits: 64 MiB memory, fuel budget, 60 s deadline per gatherer", humantime::format_duration(args.period));
    let client = agent::kubeclient::from_kubeconfig(&kubeconfig).await?;
    let api = Arc::new(agent::policy::Bridge::new(client, tokio::runtime::Handle::current()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(api, rx));

    // Narrate the agent's progress from its status board.
    let mut shown_periods = 0;
    let mut shown_generation = 0;
    let mut published_v2 = false;
    let mut swapped_at: Option<u64> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let s = status.get();
        // (period, order, line): an activation belongs to the period it started, which may
        // already be finished by the time we look; print in period order.
        let mut events: Vec<(u64, u8, String)> = Vec::new();
        if let Some(active) = &s.active {
            if active.generation != shown_generation {
                shown_generation = active.generation;
                let started_period = match (&active.activated_at, &s.last_archive) {
                    (Some(at), Some(a)) if at.as_str() <= a.at.as_str() => s.periods,
                    _ => s.periods + 1,
                };
                let mods: Vec<String> = active.modules.iter().map(|m| format!("{}@{}", m.name, m.version)).collect();
                events.push((started_period, 0, format!("   ▶ period {started_period} starts with module set generation {} (index serial {}): {}", active.generation, active.serial.unwrap_or(0), mods.join(", "))));
                if published_v2 {
                    swapped_at = Some(started_period);
                }
            }
        }
        if s.periods > shown_periods {
            shown_periods = s.periods;
            if let Some(a) = &s.last_archive {
                let name = std::path::Path::new(&a.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                events.push((s.periods, 1, format!("   ✓ period {}: {} records from {} gatherers, {} failed → {}", s.periods, a.records, s.active.as_ref().map_or(0, |x| x.modules.len()), a.failed_gatherers, name)));
            }
        }
        events.sort();
        for (_, _, line) in events {
            println!("{line}");
        }
        if shown_periods >= 1 && !published_v2 {
            step(4, "while it runs, the author publishes ingresscontroller 1.1.0");
            std::fs::write(staging.join("ingresscontroller.wasm"), ingress_module("1.1.0")?)?;
            let v2 = publish(&staging)?;
            let g = v2.index.gatherers.iter().find(|g| g.name == "ingresscontroller").expect("published");
            println!("   index serial {} (only 1 new file: {}.wasm; the other modules are unchanged)", v2.index.serial, &g.sha256[..12]);
            println!("   the agent will verify: signature, serial {} > {}, sha256 and size, ABI, permissions", v2.index.serial, v1.index.serial);
            published_v2 = true;
        }
        if let (Some(p), true) = (swapped_at, published_v2) {
            if shown_periods >= p && shown_periods >= 3 {
                break;
            }
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the demo did not complete in time; status: {}", serde_json::to_string_pretty(&status.get())?);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = status.get();
    println!("   swapped at the start of period {} (a running period never changes modules); polls since: {}", swapped_at.unwrap_or(0), s.last_poll.as_ref().map_or("-".into(), |p| p.result.clone()));
    let (index_requests, index_200) = server.requests("/index.json");
    println!("   the index was requested {index_requests} times: {index_200} full downloads, {} answered 304 Not Modified", index_requests - index_200);

    step(5, "a support engineer inspects the archives");
    let _ = tx.send(true);
    task.await?;
    let mut archives: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(&out)? {
        let p = e?.path();
        if let Ok(m) = gather_inspect::meta(&p) {
            archives.push((m["started"].as_str().unwrap_or_default().to_owned(), p));
        }
    }
    archives.sort();
    for (_, p) in &archives {
        println!("   {}  ({} bytes)", p.display(), std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    }
    let style = gather_inspect::render::Style::plain();
    if let Some((_, last)) = archives.last() {
        println!("\n$ gather-agent inspect {}", last.display());
        let summary = gather_inspect::summary(last)?;
        for line in gather_inspect::render::summary_text(&summary, &style).lines() {
            println!("   {line}");
        }
    }
    if let (Some((_, first)), Some((_, last))) = (archives.first(), archives.last()) {
        println!("\n$ gather-agent inspect diff {} {}", first.file_name().unwrap_or_default().to_string_lossy(), last.file_name().unwrap_or_default().to_string_lossy());
        let diff = gather_inspect::diff::diff_archives(first, last, false)?;
        for line in gather_inspect::render::diff_text(&diff, &style).lines().take(20) {
            println!("   {line}");
        }
    }

    step(6, "done");
    println!("   try: tar -tzf {}", archives.last().map(|(_, p)| p.display().to_string()).unwrap_or_default());
    println!("        gather-agent inspect {}", out.display());
    if args.keep_running {
        println!("   the simulator keeps running at {}; kubeconfig: {} (Ctrl-C to stop)", sim.url, kubeconfig.display());
        shutdown.await;
    } else if tmp.path() == dir {
        // Keep the temp directory so the archives can be inspected after the demo.
        let kept = tmp.keep();
        println!("   (files kept in {})", kept.display());
    }
    server.shutdown().await;
    sim.shutdown().await;
    Ok(())
}
