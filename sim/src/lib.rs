//! An API-server-shaped cluster simulator: serves fixture objects over HTTPS with a bearer
//! token, with discovery, selectors, paging and real `Status` errors, so that kube-rs and
//! kubectl can both talk to it. Used by tests, `gather-agent demo` and the benchmarks.
//!
//! It is read-only (every verb but GET gets 405) and static (no watch). It does not depend on
//! the runtime crate (`agent`): tests use it as a dev-dependency, the CLI behind its `sim` feature.
//!
//! # Layout
//! - this file: [`SimConfig`], [`start`] and the HTTPS server; [`Fault`] injection.
//! - `api`: the request router: auth, get/list, selectors, paging, `pods/{name}/log`, Status
//!   errors.
//! - [`cluster`]: the fixture objects, loaded from a directory, indexed by resource, and the
//!   pods' container logs.
//! - [`resources`]: which resource types exist and how they are named.
//! - [`scale`]: growing the cluster (`--scale N`) with synthetic nodes and pods.
//! - [`selector`]: label and field selectors.
//! - `discovery`, `table`, `status`: discovery documents, kubectl's tables, `Status` bodies.
//! - `certs`: a fresh CA and server certificate per start.

mod api;
mod certs;
pub mod cluster;
mod discovery;
pub mod resources;
pub mod scale;
pub mod selector;
mod status;
mod table;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

pub use cluster::Cluster;
use resources::ResourceType;

/// Errors starting or configuring the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The fixture directory could not be loaded.
    #[error("fixtures: {0}")]
    Fixtures(String),
    /// Certificate generation or TLS setup failed.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// A `--fail` option could not be parsed.
    #[error("invalid fault {0:?}: expected PATH_PREFIX=STATUS or PATH_PREFIX=429:RETRY_AFTER_SECONDS")]
    BadFault(String),
    /// Writing the kubeconfig failed.
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Where it was to be written.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// An injected failure: requests whose path starts with `prefix` get `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// URL path prefix, for example `/api/v1/nodes`.
    pub prefix: String,
    /// HTTP status to answer with (a `Status` body is included).
    pub status: u16,
    /// `Retry-After` seconds; defaults to 1 for 429 and 503.
    pub retry_after: Option<u32>,
}

impl FromStr for Fault {
    type Err = SimError;

    /// Parses `PREFIX=STATUS` or `PREFIX=STATUS:RETRY_AFTER`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SimError::BadFault(s.to_owned());
        let (prefix, rest) = s.rsplit_once('=').ok_or_else(bad)?;
        let (code, retry) = match rest.split_once(':') {
            Some((c, r)) => (c, Some(r.parse::<u32>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let status: u16 = code.parse().map_err(|_| bad())?;
        if !prefix.starts_with('/') || !(400..=599).contains(&status) {
            return Err(bad());
        }
        let retry_after = retry.or(matches!(status, 429 | 503).then_some(1));
        Ok(Fault { prefix: prefix.to_owned(), status, retry_after })
    }
}

/// Everything the simulator can be told at start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The fixture objects to serve.
    pub fixtures: Fixtures,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Bearer token clients must send; `None` generates a random one.
    pub token: Option<String>,
    /// Resources answered with 403 (`secrets`, `secrets.` for core, or `plural.group`).
    pub forbid: Vec<String>,
    /// Injected failures by path prefix.
    pub faults: Vec<Fault>,
    /// Added latency for every authenticated request.
    pub delay: Duration,
    /// Synthetic nodes to add (with 10 pods each).
    pub scale: u32,
    /// How long a `continue` token stays valid (kube-apiserver's etcd compaction is 5 min).
    pub continue_ttl: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            fixtures: Fixtures::None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            forbid: Vec::new(),
            faults: Vec::new(),
            delay: Duration::ZERO,
            scale: 0,
            continue_ttl: Duration::from_secs(300),
        }
    }
}

impl SimConfig {
    /// A config serving `dir` on a free loopback port.
    pub fn with_fixtures(dir: impl Into<PathBuf>) -> Self {
        SimConfig { fixtures: Fixtures::Dir(dir.into()), ..Default::default() }
    }

    /// A config serving in-memory fixture files (relative path, bytes), e.g. a set embedded
    /// in the binary, on a free loopback port.
    pub fn with_fixture_files(files: Vec<(String, Cow<'static, [u8]>)>) -> Self {
        SimConfig { fixtures: Fixtures::Files(files), ..Default::default() }
    }
}

/// Where the simulator's fixture objects come from.
#[derive(Debug, Clone, Default)]
pub enum Fixtures {
    /// None: only built-in types, with no objects.
    #[default]
    None,
    /// Every `*.json` file under a directory (see `testdata/README.md`).
    Dir(PathBuf),
    /// In-memory files, (path relative to the fixture root, bytes), with the same rules as
    /// a directory: `*.json` only, names starting with `.` or `_` skipped.
    Files(Vec<(String, Cow<'static, [u8]>)>),
}

impl std::fmt::Display for Fixtures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fixtures::None => f.write_str("no fixtures"),
            Fixtures::Dir(dir) => write!(f, "{}", dir.display()),
            Fixtures::Files(files) => write!(f, "{} in-memory fixture files", files.len()),
        }
    }
}

/// Shared state behind every request.
pub struct SimState {
    cluster: RwLock<Arc<Cluster>>,
    token: String,
    forbid: Vec<String>,
    faults: RwLock<Vec<Fault>>,
    delay_ms: AtomicU64,
    continue_ttl: Duration,
    server_address: String,
    /// Requests served (authenticated or not), for tests and benchmarks.
    pub requests: AtomicU64,
}

impl SimState {
    fn cluster(&self) -> Arc<Cluster> {
        self.cluster.read().expect("cluster lock").clone()
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn fault_for(&self, path: &str) -> Option<Fault> {
        self.faults.read().expect("faults lock").iter().find(|f| path.starts_with(&f.prefix)).cloned()
    }

    /// Whether a forbidden entry names this resource exactly (`pods/log`).
    fn is_forbidden_name(&self, resource: &str) -> bool {
        self.forbid.iter().any(|f| f.trim() == resource)
    }

    fn is_forbidden(&self, rt: &ResourceType) -> bool {
        self.forbid.iter().any(|f| {
            let f = f.trim();
            f == rt.plural
                || f == format!("{}.{}", rt.plural, rt.group).trim_end_matches('.')
                || f.eq_ignore_ascii_case(&rt.kind)
        })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The bearer token clients must send.
    pub token: String,
    /// The CA that signed the server certificate, PEM.
    pub ca_pem: String,
    state: Arc<SimState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// A kubeconfig (YAML) that trusts the simulator's CA and carries its token.
    pub fn kubeconfig_yaml(&self) -> String {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gather-agent-sim\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: gather-agent-sim\n  context:\n    cluster: gather-agent-sim\n    user: gather-agent-sim\n    namespace: default\ncurrent-context: gather-agent-sim\nusers:\n- name: gather-agent-sim\n  user:\n    token: {token}\npreferences: {{}}\n",
            url = self.url,
            token = self.token,
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path` (mode 0600: it holds a token).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        let err = |source| SimError::Kubeconfig { path: path.to_owned(), source };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(err)?;
        std::io::Write::write_all(&mut f, self.kubeconfig_yaml().as_bytes()).map_err(err)
    }

    /// Replaces the served objects; `continue` tokens from before become 410 Gone.
    pub fn replace_cluster(&self, mut cluster: Cluster) {
        let mut guard = self.state.cluster.write().expect("cluster lock");
        cluster.resource_version = cluster.resource_version.max(guard.resource_version + 1);
        *guard = Arc::new(cluster);
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        *self.state.faults.write().expect("faults lock") = faults;
    }

    /// Changes the added per-request latency.
    pub fn set_delay(&self, delay: Duration) {
        self.state.delay_ms.store(delay.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests served so far.
    pub fn request_count(&self) -> u64 {
        self.state.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A snapshot of the served cluster.
    pub fn cluster(&self) -> Arc<Cluster> {
        self.state.cluster()
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn random_token() -> String {
    let mut buf = [0u8; 24];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads the cluster a config describes (fixtures plus synthetic scale).
pub fn load_cluster(config: &SimConfig) -> Result<Cluster, SimError> {
    let mut cluster = match &config.fixtures {
        Fixtures::Dir(dir) => Cluster::load_dir(dir)?,
        Fixtures::Files(files) => Cluster::load_files(files.iter().map(|(p, b)| (p.as_str(), b.as_ref())))?,
        Fixtures::None => Cluster::empty(),
    };
    scale::add_synthetic(&mut cluster, config.scale);
    for w in &cluster.warnings {
        tracing::warn!("{w}");
    }
    Ok(cluster)
}

/// Loads the fixtures, binds the listener and serves in a background task.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let cluster = load_cluster(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind { addr: config.listen, source })?;
    let certs = certs::generate(addr.ip())?;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let url = format!("https://{host}:{}", addr.port());
    let token = config.token.clone().unwrap_or_else(random_token);
    let state = Arc::new(SimState {
        cluster: RwLock::new(Arc::new(cluster)),
        token: token.clone(),
        forbid: config.forbid.clone(),
        faults: RwLock::new(config.faults.clone()),
        delay_ms: AtomicU64::new(config.delay.as_millis() as u64),
        continue_ttl: config.continue_ttl,
        server_address: format!("{host}:{}", addr.port()),
        requests: AtomicU64::new(0),
    });
    let (tx, rx) = oneshot::channel();
    let router = router(state.clone());
    let task = tokio::spawn(run(listener, certs.server_config.clone(), router, async {
        let _ = rx.await;
    }));
    Ok(SimHandle {
        url,
        addr,
        token,
        ca_pem: certs.ca_pem,
        state,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// The HTTP routes: everything goes through one handler, as API paths are data-driven.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new().fallback(api::handle).with_state(state)
}

/// Accepts TLS connections on `listener` and serves `router` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(10);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => { backoff = Duration::from_millis(10); a }
                    Err(e) => {
                        // Usually EMFILE: back off rather than spin, as mini-redis does.
                        tracing::warn!(error = %e, "accept failed; backing off {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let svc = TowerToHyperService::new(router.clone());
                conns.spawn(async move {
                    let tls = match acceptor.accept(stream).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    if let Err(e) = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await
                    {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_faults() {
        let f: Fault = "/api/v1/nodes=500".parse().unwrap();
        assert_eq!((f.prefix.as_str(), f.status, f.retry_after), ("/api/v1/nodes", 500, None));
        let f: Fault = "/apis=429:7".parse().unwrap();
        assert_eq!((f.status, f.retry_after), (429, Some(7)));
        let f: Fault = "/apis=503".parse().unwrap();
        assert_eq!(f.retry_after, Some(1));
        assert!("nodes=500".parse::<Fault>().is_err());
        assert!("/x=200".parse::<Fault>().is_err());
        assert!("/x".parse::<Fault>().is_err());
    }
}
