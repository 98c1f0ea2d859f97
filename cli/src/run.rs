//! `gather-agent run`: the periodic agent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

/// Arguments of `run`. Each setting can come from a flag, an environment variable or the
/// config file's `run` section, in that order of precedence.
#[derive(clap::Args)]
pub struct RunArgs {
    /// kubeconfig (else $KUBECONFIG, else in-cluster).
    #[arg(long, env = "GATHER_AGENT_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// URL of a published index.json to poll for gatherer versions.
    #[arg(long, env = "GATHER_AGENT_INDEX_URL", value_name = "URL")]
    pub index_url: Option<String>,
    /// A local directory of *.wasm modules, watched for changes.
    #[arg(long, env = "GATHER_AGENT_MODULES_DIR", value_name = "DIR")]
    pub modules_dir: Option<PathBuf>,
    /// Where archives are written.
    #[arg(long, env = "GATHER_AGENT_OUT", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// State directory: module cache, last accepted index, status.json, lock.
    #[arg(long, env = "GATHER_AGENT_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Time between periods [default: 2h, as the Insights Operator].
    #[arg(long, env = "GATHER_AGENT_PERIOD", value_name = "DURATION")]
    pub period: Option<String>,
    /// Time between index polls [default: 5m].
    #[arg(long, env = "GATHER_AGENT_POLL_INTERVAL", value_name = "DURATION")]
    pub poll_interval: Option<String>,
    /// Random spread of periods and polls, as a fraction [default: 0.1].
    #[arg(long, env = "GATHER_AGENT_JITTER", value_name = "FRACTION")]
    pub jitter: Option<f64>,
    /// The publisher's public key (base64, or a file holding it). When set, indexes must be signed by it.
    #[arg(long, env = "GATHER_AGENT_PUBLIC_KEY", value_name = "KEY")]
    pub public_key: Option<String>,
    /// Operator endpoints (/healthz, /readyz, /metrics, /status): an address, `:PORT`, or `off` [default: :8080].
    #[arg(long, env = "GATHER_AGENT_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Keep at most N archives in the output directory [default: 200].
    #[arg(long, env = "GATHER_AGENT_KEEP_ARCHIVES", value_name = "N")]
    pub keep_archives: Option<usize>,
    /// Delete archives older than this [default: 12d, as the Insights Operator].
    #[arg(long, env = "GATHER_AGENT_MAX_ARCHIVE_AGE", value_name = "DURATION")]
    pub max_archive_age: Option<String>,
    /// Upload each archive here (multipart `file` part, bearer token, as the Insights Operator).
    #[arg(long, env = "GATHER_AGENT_UPLOAD_URL", value_name = "URL")]
    pub upload_url: Option<String>,
    /// File holding the upload bearer token (re-read for every upload).
    #[arg(long, env = "GATHER_AGENT_UPLOAD_TOKEN_FILE", value_name = "PATH")]
    pub upload_token_file: Option<PathBuf>,
    /// On SIGTERM, how long a running period may take to finish before it is abandoned [default: 20s].
    #[arg(long, env = "GATHER_AGENT_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Config file (JSON): limits, per-module policy/config, and a `run` section with these settings.
    #[arg(long, env = "GATHER_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn duration(what: &str, s: &str) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(s).with_context(|| format!("{what} {s:?} is not a duration (examples: 2h, 5m, 30s, 500ms)"))?;
    anyhow::ensure!(!d.is_zero(), "{what} must be positive");
    Ok(d)
}

/// Merges flags/env with the config file into a `RunConfig`.
pub fn resolve(args: RunArgs) -> anyhow::Result<(agent::run::RunConfig, Option<PathBuf>)> {
    let file = match &args.config {
        Some(p) => agent::config::AgentConfig::load(p)?,
        None => agent::config::AgentConfig::default(),
    };
    let f = file.run.clone();
    let out = args.out.or(f.out_dir).context("no output directory: pass --out DIR (or GATHER_AGENT_OUT, or run.outDir in the config)")?;
    let state = args
        .state_dir
        .or(f.state_dir)
        .context("no state directory: pass --state-dir DIR (or GATHER_AGENT_STATE_DIR, or run.stateDir in the config)")?;
    let mut cfg = agent::run::RunConfig::new(out, state);
    if let Some(u) = args.index_url.or(f.index_url) {
        cfg.index_url = Some(reqwest::Url::parse(&u).with_context(|| format!("index URL {}", agent::redact::url_str(&u)))?);
    }
    cfg.modules_dir = args.modules_dir.or(f.modules_dir);
    if let Some(p) = args.period.or(f.period) {
        cfg.period = duration("period", &p)?;
    }
    if let Some(p) = args.poll_interval.or(f.poll_interval) {
        cfg.poll_interval = duration("poll interval", &p)?;
    }
    if let Some(j) = args.jitter.or(f.jitter) {
        anyhow::ensure!((0.0..1.0).contains(&j), "jitter must be in [0, 1), got {j}");
        cfg.jitter = j;
    }
    if let Some(k) = args.public_key.or(f.public_key) {
        cfg.public_key = Some(agent::index::parse_public_key(&k).context("--public-key")?);
    }
    let listen = args.listen.or(f.listen).unwrap_or_else(|| ":8080".into());
    cfg.listen = match listen.as_str() {
        "off" | "none" | "" => None,
        l => {
            let full = if l.starts_with(':') { format!("0.0.0.0{l}") } else { l.to_owned() };
            Some(full.parse().with_context(|| format!("--listen {l:?} is not an address (examples: :8080, 127.0.0.1:9000, off)"))?)
        }
    };
    if let Some(n) = args.keep_archives.or(f.keep_archives) {
        anyhow::ensure!(n > 0, "--keep-archives must be at least 1");
        cfg.retention.max_archives = Some(n);
    }
    if let Some(a) = args.max_archive_age.or(f.max_archive_age) {
        cfg.retention.max_age = Some(duration("max archive age", &a)?);
    }
    if let Some(u) = args.upload_url.or(f.upload_url) {
        let mut up = agent::upload::UploadConfig::new(reqwest::Url::parse(&u).with_context(|| format!("upload URL {}", agent::redact::url_str(&u)))?);
        up.token_file = args.upload_token_file.or(f.upload_token_file);
        cfg.upload = Some(up);
    }
    if let Some(g) = args.shutdown_grace.or(f.shutdown_grace) {
        // Zero is meaningful here: abandon a running period at once.
        cfg.shutdown_grace = humantime::parse_duration(&g).with_context(|| format!("shutdown grace {g:?} is not a duration (examples: 20s, 0s)"))?;
    }
    let kubeconfig = args.kubeconfig.or(f.kubeconfig);
    // The fallback set, replaced as a whole by the first verified set an index or the
    // modules dir provides (docs/CONFIG.md).
    cfg.default_modules = crate::embedded_modules();
    cfg.agent = file;
    Ok((cfg, kubeconfig))
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    // A bad flag, environment variable or config value: exit 2, as clap's own usage errors.
    let (cfg, kubeconfig) = resolve(args).map_err(crate::usage)?;
    let conn = agent::kubeclient::connection(kubeconfig.as_deref()).await?;
    tracing::info!("Kubernetes client from {}, API server {}", conn.source, conn.server);
    let agent = agent::run::Agent::new(cfg.clone())?;
    if let Some(addr) = agent.endpoints_addr() {
        tracing::info!("endpoints: http://{addr}/healthz /readyz /metrics /status");
    }
    tracing::info!(
        index = %cfg.index_url.as_ref().map(agent::redact::url).unwrap_or_else(|| "-".into()),
        modules_dir = %cfg.modules_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "-".into()),
        out = %cfg.out_dir.display(),
        period = %humantime::format_duration(cfg.period),
        signed = cfg.public_key.is_some(),
        "gather-agent running"
    );
    let api = Arc::new(agent::policy::Bridge::new(conn.client, tokio::runtime::Handle::current()).with_server(&conn.server));
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = tx.send(true);
    });
    agent.run(api, rx).await;
    Ok(())
}
