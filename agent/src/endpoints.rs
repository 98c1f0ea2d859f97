//! The operator's HTTP endpoints: `/healthz` (the period loop makes progress, [`Liveness`]),
//! `/readyz` (a module set is active), `/metrics` (Prometheus text 0.0.4, or OpenMetrics when
//! the scraper asks for it) and `/status` (the status board as JSON).
//!
//! With a serving certificate ([`TlsFiles`]: a `--tls-cert`/`--tls-key` pair, or a directory
//! holding `tls.crt` and `tls.key` as OpenShift's service-ca mounts it) they are served over
//! HTTPS only; the files are read again when they change, so a rotated certificate is used
//! from the next connection on without a restart.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::liveness::Liveness;
use crate::metrics::Metrics;
use crate::status::StatusBoard;

/// The OpenMetrics content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format 0.0.4 content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the endpoints read.
#[derive(Clone)]
pub struct Endpoints {
    /// The status board (`/status`, `/readyz`).
    pub status: StatusBoard,
    /// The metrics (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// The period loop's liveness (`/healthz`).
    pub liveness: Liveness,
}

/// The routes, with a liveness that is never stuck.
pub fn router(status: StatusBoard, metrics: Arc<Metrics>) -> Router {
    routes(Endpoints { status, metrics, liveness: Liveness::default() })
}

/// The routes.
pub fn routes(e: Endpoints) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status_json))
        .with_state(e)
}

async fn healthz(State(ctx): State<Endpoints>) -> Response {
    match ctx.liveness.check() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {reason}\n")).into_response(),
    }
}

async fn readyz(State(ctx): State<Endpoints>) -> Response {
    if ctx.status.get().ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no module set is active yet\n").into_response()
    }
}

/// Whether the `Accept` header asks for OpenMetrics (Prometheus itself sends
/// `application/openmetrics-text;version=1.0.0,...;q=0.5,text/plain;version=0.0.4;q=0.4,...`):
/// OpenMetrics when it is listed with a quality above every `text/plain`, else 0.0.4.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let (mut om, mut text) = (None::<f32>, None::<f32>);
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            "application/openmetrics-text" => &mut om,
            "text/plain" | "text/*" | "*/*" => &mut text,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |x| x.max(q)));
    }
    match (om, text) {
        (Some(o), Some(t)) => o > 0.0 && o >= t,
        (Some(o), None) => o > 0.0,
        _ => false,
    }
}

async fn metrics_text(State(ctx): State<Endpoints>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, OPENMETRICS)], ctx.metrics.encode()).into_response()
    } else {
        ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], ctx.metrics.encode_prometheus()).into_response()
    }
}

async fn status_json(State(ctx): State<Endpoints>) -> Response {
    axum::Json(ctx.status.get()).into_response()
}

/// Serves the endpoints on `listener` (over HTTPS with `tls`) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = routes(endpoints);
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
        Some(files) => {
            let resolver = Arc::new(ReloadingCert::load(files).map_err(std::io::Error::other)?);
            axum::serve(TlsListener::new(listener, resolver), app).with_graceful_shutdown(shutdown).await
        }
    }
}

/// Serves the endpoints over plain HTTP on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    status: StatusBoard,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, Endpoints { status, metrics, liveness: Liveness::default() }, None, shutdown).await
}

/// A serving certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// `dir/tls.crt` and `dir/tls.key`: what OpenShift's service-ca operator mounts for a
    /// Service annotated `service.beta.openshift.io/serving-cert-secret-name`.
    pub fn in_dir(dir: &Path) -> Self {
        TlsFiles { cert: dir.join("tls.crt"), key: dir.join("tls.key") }
    }
}

/// Why a serving certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or holds no usable PEM.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn load_certified_key(files: &TlsFiles) -> Result<rustls::sign::CertifiedKey, TlsError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |path: &Path, message: String| TlsError::File { path: path.to_owned(), message };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(&files.cert, "no certificate (PEM `CERTIFICATE` block) found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, format!("no usable private key: {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| bad(&files.key, e.to_string()))?;
    let ck = rustls::sign::CertifiedKey::new(certs, signer);
    ck.keys_match().map_err(|e| bad(&files.key, format!("does not match the certificate {}: {e}", files.cert.display())))?;
    Ok(ck)
}

fn mtimes(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&files.cert), m(&files.key))
}

/// Serves the current certificate, re-reading the files when their mtimes change (checked at
/// most once a second). A rotation caught half-written keeps the previous pair until the next
/// check finds both files consistent.
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    current: Mutex<Current>,
}

#[derive(Debug)]
struct Current {
    key: Arc<rustls::sign::CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: std::time::Instant,
}

impl ReloadingCert {
    fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let stamps = mtimes(&files);
        let key = Arc::new(load_certified_key(&files)?);
        Ok(ReloadingCert { files, current: Mutex::new(Current { key, stamps, checked: std::time::Instant::now() }) })
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let mut cur = self.current.lock().expect("cert lock");
        if cur.checked.elapsed() >= Duration::from_secs(1) {
            cur.checked = std::time::Instant::now();
            let stamps = mtimes(&self.files);
            if stamps != cur.stamps {
                match load_certified_key(&self.files) {
                    Ok(k) => {
                        tracing::info!(cert = %self.files.cert.display(), "serving certificate reloaded");
                        cur.key = Arc::new(k);
                        cur.stamps = stamps;
                    }
                    Err(e) => tracing::warn!("serving certificate changed but cannot be used yet (keeping the previous one): {e}"),
                }
            }
        }
        Some(cur.key.clone())
    }
}

/// Reads the serving certificate once, to refuse a bad one at start rather than at the first
/// scrape.
pub fn check_tls(files: &TlsFiles) -> Result<(), TlsError> {
    load_certified_key(files).map(|_| ())
}

/// TCP accept plus TLS handshakes, each in its own task (bounded by a timeout), so a client
/// that stalls its handshake never holds up the others.
struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::net::SocketAddr)>,
    addr: std::io::Result<std::net::SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(listener: TcpListener, resolver: Arc<ReloadingCert>) -> Self {
        crate::tls::install_crypto_provider();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let addr = listener.local_addr();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("endpoints: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(peer = %peer, "endpoints: TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(peer = %peer, "endpoints: TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { rx, addr, task }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended (only when aborted): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.addr.as_ref().map(|a| *a).map_err(|e| std::io::Error::new(e.kind(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0.2,text/plain;version=0.0.4;q=0.5")));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }
}
