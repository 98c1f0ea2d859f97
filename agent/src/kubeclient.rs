//! The host's kube-rs client and the explicit order its configuration is taken from:
//! `--kubeconfig`, then `$KUBECONFIG`, then the in-cluster service account.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file could not be read or parsed.
    #[error("reading kubeconfig {path}: {}", kubeconfig_reason(error))]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why. Not a `#[source]`: kube's text repeats the path in Debug quotes
        /// (`'"/k.yaml"'`), so the message carries the causes itself.
        error: kube::config::KubeconfigError,
    },
    /// The in-cluster service account could not be used.
    #[error("no --kubeconfig, no KUBECONFIG, and in-cluster config failed: {0}")]
    InCluster(String),
    /// The client could not be created from the config.
    #[error("creating the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// kube's error without its own mention of the path, and with its causes.
fn kubeconfig_reason(e: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError;
    let mut text = match e {
        KubeconfigError::ReadConfig(io, _) => io.to_string(),
        other => other.to_string(),
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// Where the client's configuration came from; logged so operators can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The `--kubeconfig` flag.
    Flag(PathBuf),
    /// The `KUBECONFIG` environment variable.
    Env(PathBuf),
    /// The pod's service account.
    InCluster,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Flag(p) => write!(f, "--kubeconfig {}", p.display()),
            ConfigSource::Env(p) => write!(f, "KUBECONFIG={}", p.display()),
            ConfigSource::InCluster => f.write_str("in-cluster service account"),
        }
    }
}

/// Builds a client from one kubeconfig file (its current context).
pub async fn from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    client_from(kubeconfig_config(path).await?)
}

/// The config of one kubeconfig file's current context.
async fn kubeconfig_config(path: &Path) -> Result<kube::Config, ClientError> {
    crate::tls::install_crypto_provider();
    let err = |error| ClientError::Kubeconfig { path: path.to_owned(), error };
    let kc = Kubeconfig::read_from(path).map_err(err)?;
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.map_err(err)
}

/// Builds the client. kube-rs would retry 429/503/504 itself (up to 15 times, honouring
/// Retry-After); the host turns that off so a gatherer's request never outlives its deadline
/// and the gatherer sees the real status (with its `Retry-After` header) and decides.
pub fn client_from(mut config: kube::Config) -> Result<kube::Client, ClientError> {
    crate::tls::install_crypto_provider();
    config.default_retry = false;
    kube::Client::try_from(config).map_err(ClientError::Client)
}

/// Resolves the config in our documented order (kube's `Config::infer` differs) and connects.
pub async fn connect(flag: Option<&Path>) -> Result<(kube::Client, ConfigSource), ClientError> {
    let c = connection(flag).await?;
    Ok((c.client, c.source))
}

/// A client, where its configuration came from, and the API server it talks to.
pub struct Connection {
    /// The client.
    pub client: kube::Client,
    /// Where its configuration came from.
    pub source: ConfigSource,
    /// The API server's URL, for messages (see [`crate::policy::Bridge::with_server`]).
    pub server: http::Uri,
}

/// [`connect`], also telling which API server the client talks to.
pub async fn connection(flag: Option<&Path>) -> Result<Connection, ClientError> {
    let (config, source) = if let Some(path) = flag {
        (kubeconfig_config(path).await?, ConfigSource::Flag(path.to_owned()))
    } else if let Some(env) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        // Like kubectl, take the first file of a `:`-separated list.
        let first = std::env::split_paths(&env).next().unwrap_or_default();
        (kubeconfig_config(&first).await?, ConfigSource::Env(first))
    } else {
        (in_cluster_config(&service_account_dir())?, ConfigSource::InCluster)
    };
    let server = config.cluster_url.clone();
    Ok(Connection { client: client_from(config)?, source, server })
}

/// Where the pod's service account is mounted. `GATHER_AGENT_SERVICEACCOUNT_DIR` overrides it
/// (tests point it, and `KUBERNETES_SERVICE_HOST`/`_PORT`, at a simulator).
pub fn service_account_dir() -> PathBuf {
    std::env::var_os("GATHER_AGENT_SERVICEACCOUNT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount"))
}

/// The in-cluster config: API server from `KUBERNETES_SERVICE_HOST`/`_PORT`, CA and
/// namespace from the service-account dir, and the token as a *file* so that kube-rs re-reads
/// it as the kubelet rotates it (bound service-account tokens expire within the hour).
pub fn in_cluster_config(sa_dir: &Path) -> Result<kube::Config, ClientError> {
    let err = |m: String| ClientError::InCluster(m);
    let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| err("KUBERNETES_SERVICE_HOST is not set (not running in a pod?)".into()))?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").map_err(|_| err("KUBERNETES_SERVICE_PORT is not set".into()))?;
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
    let url: http::Uri = format!("https://{host}:{port}").parse().map_err(|e| err(format!("bad API server address: {e}")))?;
    let token = sa_dir.join("token");
    match std::fs::read(&token) {
        Err(_) => return Err(err(format!("no service-account token at {}", token.display()))),
        // kube-rs sends the file verbatim; the kubelet never writes trailing whitespace, but a
        // hand-made token file often has a newline, which the API server then rejects.
        Ok(t) if t.last().is_some_and(u8::is_ascii_whitespace) => {
            return Err(err(format!("the token file {} ends with whitespace (a newline?); write it without one", token.display())))
        }
        Ok(_) => {}
    }
    let ca_path = sa_dir.join("ca.crt");
    let ca_pem = std::fs::read(&ca_path).map_err(|e| err(format!("reading {}: {e}", ca_path.display())))?;
    let certs = rustls_pemfile_certs(&ca_pem).map_err(|e| err(format!("{}: {e}", ca_path.display())))?;
    let mut config = kube::Config::new(url);
    config.root_cert = Some(certs);
    config.auth_info.token_file = Some(token.display().to_string());
    if let Ok(ns) = std::fs::read_to_string(sa_dir.join("namespace")) {
        config.default_namespace = ns.trim().to_owned();
    }
    Ok(config)
}

/// DER certificates from a PEM bundle.
fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let certs: Result<Vec<_>, _> = rustls::pki_types::CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certs.is_empty() {
        return Err("no certificates in the CA bundle".into());
    }
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}
