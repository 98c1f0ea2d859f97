//! `gather-agent run`: the periodic agent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

/// Arguments of `run`. Each setting can come from a flag, an environment variable or the
/// config file's `run` section, in that order of precedence.
#[derive(clap::Args, Clone)]
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
    /// Serve the endpoints over HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "GATHER_AGENT_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "GATHER_AGENT_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Serve the endpoints over HTTPS with DIR/tls.crt and DIR/tls.key (an OpenShift
    /// service-ca serving-cert secret, mounted), when they are there; plain HTTP when DIR
    /// holds neither (the secret, mounted optional, does not exist).
    #[arg(long, env = "GATHER_AGENT_TLS_DIR", value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Config file (JSON): limits, per-module policy/config, and a `run` section with these settings.
    /// Reloaded on SIGHUP and when it changes; the new settings apply from the next period.
    #[arg(long, env = "GATHER_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Where a setting's value came from, so an error names it as the operator wrote it: the
/// flag, the environment variable, or the config file's path and key.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the config file's `run` section.
    File {
        /// The config file.
        path: PathBuf,
        /// The key, such as `run.publicKey`.
        key: &'static str,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::Env(var) => write!(f, "${var}"),
            Origin::File { path, key } => write!(f, "{key} in config file {}", path.display()),
        }
    }
}

/// The flag wins, then the environment (clap has already merged the two into `arg`: it came
/// from the command line when the flag is there), then the file.
fn pick<T>(arg: Option<T>, file: Option<T>, flag: &'static str, env: &'static str, key: &'static str, path: Option<&std::path::Path>) -> Option<(T, Origin)> {
    match (arg, file) {
        (Some(v), _) => {
            let on_line = std::env::args_os().any(|a| a.to_str().is_some_and(|a| a == flag || a.starts_with(&format!("{flag}="))));
            Some((v, if on_line { Origin::Flag(flag) } else { Origin::Env(env) }))
        }
        (None, Some(v)) => Some((v, Origin::File { path: path.map(PathBuf::from).unwrap_or_default(), key })),
        (None, None) => None,
    }
}

fn duration(origin: &Origin, s: &str) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(s).with_context(|| format!("{origin}: {s:?} is not a duration (examples: 2h, 5m, 30s, 500ms)"))?;
    anyhow::ensure!(!d.is_zero(), "{origin}: must be positive");
    Ok(d)
}

/// Merges flags/env with the config file into a `RunConfig`.
pub fn resolve(args: RunArgs) -> anyhow::Result<(agent::run::RunConfig, Option<PathBuf>)> {
    let file = match &args.config {
        Some(p) => agent::config::AgentConfig::load(p)?,
        None => agent::config::AgentConfig::default(),
    };
    let f = file.run.clone();
    let path = args.config.as_deref();
    macro_rules! pick {
        ($field:ident, $ffield:ident, $flag:literal, $env:literal, $key:literal) => {
            pick(args.$field.clone(), f.$ffield.clone(), $flag, $env, $key, path)
        };
    }
    let out = args.out.clone().or(f.out_dir.clone()).context("no output directory: pass --out DIR (or GATHER_AGENT_OUT, or run.outDir in the config)")?;
    let state = args
        .state_dir
        .clone()
        .or(f.state_dir.clone())
        .context("no state directory: pass --state-dir DIR (or GATHER_AGENT_STATE_DIR, or run.stateDir in the config)")?;
    let mut cfg = agent::run::RunConfig::new(out, state);
    if let Some((u, o)) = pick!(index_url, index_url, "--index-url", "GATHER_AGENT_INDEX_URL", "run.indexUrl") {
        cfg.index_url = Some(reqwest::Url::parse(&u).with_context(|| format!("{o}: index URL {}", agent::redact::url_str(&u)))?);
    }
    cfg.modules_dir = args.modules_dir.clone().or(f.modules_dir.clone());
    if let Some((p, o)) = pick!(period, period, "--period", "GATHER_AGENT_PERIOD", "run.period") {
        cfg.period = duration(&o, &p)?;
    }
    if let Some((p, o)) = pick!(poll_interval, poll_interval, "--poll-interval", "GATHER_AGENT_POLL_INTERVAL", "run.pollInterval") {
        cfg.poll_interval = duration(&o, &p)?;
    }
    if let Some((j, o)) = pick!(jitter, jitter, "--jitter", "GATHER_AGENT_JITTER", "run.jitter") {
        anyhow::ensure!((0.0..1.0).contains(&j), "{o}: jitter must be in [0, 1), got {j}");
        cfg.jitter = j;
    }
    if let Some((k, o)) = pick!(public_key, public_key, "--public-key", "GATHER_AGENT_PUBLIC_KEY", "run.publicKey") {
        cfg.public_key = Some(agent::index::parse_public_key(&k).with_context(|| o.to_string())?);
    }
    let (listen, lo) = pick!(listen, listen, "--listen", "GATHER_AGENT_LISTEN", "run.listen").unwrap_or_else(|| (":8080".into(), Origin::Flag("--listen")));
    cfg.listen = match listen.as_str() {
        "off" | "none" | "" => None,
        l => {
            let full = if l.starts_with(':') { format!("0.0.0.0{l}") } else { l.to_owned() };
            Some(full.parse().with_context(|| format!("{lo}: {l:?} is not an address (examples: :8080, 127.0.0.1:9000, off)"))?)
        }
    };
    if let Some((n, o)) = pick!(keep_archives, keep_archives, "--keep-archives", "GATHER_AGENT_KEEP_ARCHIVES", "run.keepArchives") {
        anyhow::ensure!(n > 0, "{o}: must be at least 1");
        cfg.retention.max_archives = Some(n);
    }
    if let Some((a, o)) = pick!(max_archive_age, max_archive_age, "--max-archive-age", "GATHER_AGENT_MAX_ARCHIVE_AGE", "run.maxArchiveAge") {
        cfg.retention.max_age = Some(duration(&o, &a)?);
    }
    if let Some((u, o)) = pick!(upload_url, upload_url, "--upload-url", "GATHER_AGENT_UPLOAD_URL", "run.uploadUrl") {
        let mut up = agent::upload::UploadConfig::new(reqwest::Url::parse(&u).with_context(|| format!("{o}: upload URL {}", agent::redact::url_str(&u)))?);
        up.token_file = args.upload_token_file.clone().or(f.upload_token_file.clone());
        cfg.upload = Some(up);
    }
    if let Some((g, o)) = pick!(shutdown_grace, shutdown_grace, "--shutdown-grace", "GATHER_AGENT_SHUTDOWN_GRACE", "run.shutdownGrace") {
        // Zero is meaningful here: abandon a running period at once.
        cfg.shutdown_grace = humantime::parse_duration(&g).with_context(|| format!("{o}: {g:?} is not a duration (examples: 20s, 0s)"))?;
    }
    let cert = pick!(tls_cert, tls_cert, "--tls-cert", "GATHER_AGENT_TLS_CERT", "run.tlsCert");
    let key = pick!(tls_key, tls_key, "--tls-key", "GATHER_AGENT_TLS_KEY", "run.tlsKey");
    let dir = pick!(tls_dir, tls_dir, "--tls-dir", "GATHER_AGENT_TLS_DIR", "run.tlsDir");
    cfg.tls = match (cert, key, dir) {
        (Some((cert, _)), Some((key, _)), None) => Some(agent::endpoints::TlsFiles { cert, key }),
        // A serving-cert Secret mounted `optional: true` is an empty directory where no
        // service-ca exists: plain HTTP then. One file without the other is an error.
        (None, None, Some((dir, o))) => {
            let files = agent::endpoints::TlsFiles::in_dir(&dir);
            if files.cert.exists() || files.key.exists() {
                Some(files)
            } else {
                tracing::info!("{o}: no tls.crt or tls.key in {}; serving the endpoints over plain HTTP", dir.display());
                None
            }
        }
        (None, None, None) => None,
        (Some((_, o)), None, None) | (None, Some((_, o)), None) => anyhow::bail!("{o}: give both --tls-cert and --tls-key (or --tls-dir)"),
        (_, _, Some((_, o))) => anyhow::bail!("{o}: give either --tls-dir or the --tls-cert/--tls-key pair, not both"),
    };
    // Tests (and unusual mounts) point this at a fake cgroup tree.
    cfg.cgroup_root = std::env::var_os("GATHER_AGENT_CGROUP_ROOT").map(PathBuf::from);
    let kubeconfig = args.kubeconfig.clone().or(f.kubeconfig.clone());
    // The fallback set, replaced as a whole by the first verified set an index or the
    // modules dir provides (docs/CONFIG.md).
    cfg.default_modules = crate::embedded_modules();
    cfg.agent = file;
    Ok((cfg, kubeconfig))
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    // A bad flag, environment variable or config value: exit 2, as clap's own usage errors.
    let (cfg, kubeconfig) = resolve(args.clone()).map_err(crate::usage)?;
    // Every setting is checked before anything connects, so a bad one is the only error shown.
    cfg.check().map_err(crate::usage)?;
    let conn = agent::kubeclient::connection(kubeconfig.as_deref()).await?;
    tracing::info!("Kubernetes client from {}, API server {}", conn.source, conn.server);
    let reloader = agent::reload::Reloader {
        file: args.config.clone(),
        build: Arc::new(move || resolve(args.clone()).map(|(c, _)| c).map_err(|e| gather_inspect::cli::one_line(&e))),
    };
    let agent = agent::run::Agent::new(cfg.clone())?.with_reloader(reloader);
    if let Some(addr) = agent.endpoints_addr() {
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        tracing::info!("endpoints: {scheme}://{addr}/healthz /readyz /metrics /status");
    }
    tracing::info!(
        index = %cfg.index_url.as_ref().map(agent::redact::url).unwrap_or_else(|| "-".into()),
        modules_dir = %cfg.modules_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "-".into()),
        out = %cfg.out_dir.display(),
        period = %humantime::format_duration(cfg.period),
        signed = cfg.public_key.is_some(),
        "gather-agent running"
    );
    let api = Arc::new(agent::policy::Bridge::new(conn.client, tokio::runtime::Handle::current()).with_server(&conn.server).cancelled_by(agent.cancel_signal()));
    #[cfg(unix)]
    {
        // SIGHUP reloads the configuration (without a handler it would end the process).
        let trigger = agent.reload_trigger();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("installing a SIGHUP handler")?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                trigger.reload();
            }
        });
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = tx.send(true);
    });
    agent.run(api, rx).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: RunArgs,
    }

    fn resolved(extra: &[&str], work: &std::path::Path) -> anyhow::Result<agent::run::RunConfig> {
        let (out, state) = (work.join("out"), work.join("state"));
        let mut argv = vec!["run", "--out", out.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
        argv.extend_from_slice(extra);
        resolve(Wrap::parse_from(argv).args).map(|(c, _)| c)
    }

    /// An optional serving-cert Secret that does not exist mounts as an empty directory: plain
    /// HTTP. With the files there: HTTPS. With one file only: an error naming the flag.
    #[test]
    fn tls_dir_is_used_when_the_certificate_is_there() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("serving-cert");
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        assert_eq!(resolved(&["--tls-dir", d], work.path()).unwrap().tls, None);
        std::fs::write(dir.join("tls.crt"), "x").unwrap();
        std::fs::write(dir.join("tls.key"), "x").unwrap();
        assert_eq!(resolved(&["--tls-dir", d], work.path()).unwrap().tls, Some(agent::endpoints::TlsFiles::in_dir(&dir)));
        let c = dir.join("tls.crt");
        let e = resolved(&["--tls-cert", c.to_str().unwrap()], work.path()).unwrap_err().to_string();
        assert!(e.contains("--tls-cert") && e.contains("--tls-key"), "{e}");
    }
}
