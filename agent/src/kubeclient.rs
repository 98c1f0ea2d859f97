//! The host's kube-rs client and the explicit order its configuration is taken from:
//! `--kubeconfig`, then `$KUBECONFIG`, then the in-cluster service account.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file could not be read or parsed.
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster service account could not be used.
    #[error("no --kubeconfig, no KUBECONFIG, and in-cluster config failed: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    /// The client could not be created from the config.
    #[error("creating the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
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
    crate::tls::install_crypto_provider();
    let err = |source| ClientError::Kubeconfig { path: path.to_owned(), source };
    let kc = Kubeconfig::read_from(path).map_err(err)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(err)?;
    kube::Client::try_from(config).map_err(ClientError::Client)
}

/// Resolves the config in our documented order (kube's `Config::infer` differs) and connects.
pub async fn connect(flag: Option<&Path>) -> Result<(kube::Client, ConfigSource), ClientError> {
    if let Some(path) = flag {
        return Ok((from_kubeconfig(path).await?, ConfigSource::Flag(path.to_owned())));
    }
    if let Some(env) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        // Like kubectl, take the first file of a `:`-separated list.
        let first = std::env::split_paths(&env).next().unwrap_or_default();
        return Ok((from_kubeconfig(&first).await?, ConfigSource::Env(first)));
    }
    crate::tls::install_crypto_provider();
    let config = kube::Config::incluster().map_err(ClientError::InCluster)?;
    Ok((kube::Client::try_from(config).map_err(ClientError::Client)?, ConfigSource::InCluster))
}
