//! `gather-agent serve`: a small static file server for publish sites, with strong ETags and
//! `If-None-Match` → 304, so agents' unchanged polls cost a few hundred bytes.
//!
//! Only regular files inside the site directory are served: a path is resolved (symlinks
//! included) and must still lie under the site's own resolved directory, so a symlink in the
//! site cannot publish `/etc/passwd` or anything else outside it.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;

struct ServeState {
    /// The site directory, canonicalized once at start.
    root: PathBuf,
    requests: Mutex<BTreeMap<String, (u64, u64)>>,
}

/// A running server; dropping it stops the server.
pub struct ServeHandle {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    state: Arc<ServeState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ServeHandle {
    /// Requests for `path` so far (`(all, answered 200)`), for tests and benchmarks.
    pub fn requests(&self, path: &str) -> (u64, u64) {
        self.state.requests.lock().expect("lock").get(path).copied().unwrap_or((0, 0))
    }

    /// Stops the server.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Serves `root` on `listen` in a background task.
pub async fn start(root: &Path, listen: SocketAddr) -> std::io::Result<ServeHandle> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(ServeState { root: tokio::fs::canonicalize(root).await?, requests: Mutex::new(BTreeMap::new()) });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        let _ = run(listener, app, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(ServeHandle { url: format!("http://{addr}"), addr, state, shutdown: Some(tx), task: Some(task) })
}

fn router(state: Arc<ServeState>) -> Router {
    Router::new().fallback(file).with_state(state)
}

/// Serves `root` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, root: &Path, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let state = Arc::new(ServeState { root: tokio::fs::canonicalize(root).await?, requests: Mutex::new(BTreeMap::new()) });
    run(listener, router(state), shutdown).await
}

async fn run(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("sig") | Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn file(State(state): State<Arc<ServeState>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let resp = respond(&state, &method, &path, req.headers().get(header::IF_NONE_MATCH)).await;
    let ok = resp.status() == StatusCode::OK;
    let mut counts = state.requests.lock().expect("lock");
    let c = counts.entry(path.clone()).or_default();
    c.0 += 1;
    c.1 += u64::from(ok);
    drop(counts);
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "serve");
    resp
}

/// `root/rel` resolved, when it is a regular file under `root` (itself canonical).
async fn contained(root: &Path, rel: &str) -> Option<PathBuf> {
    let path = tokio::fs::canonicalize(root.join(rel)).await.ok()?;
    let is_file = tokio::fs::metadata(&path).await.ok()?.is_file();
    (is_file && path.starts_with(root) && path != root).then_some(path)
}

async fn respond(state: &ServeState, method: &Method, path: &str, if_none_match: Option<&HeaderValue>) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "read-only\n").into_response();
    }
    let rel = path.trim_start_matches('/');
    let safe = !rel.is_empty() && rel.split('/').all(|s| !s.is_empty() && s != "." && s != ".." && !s.starts_with('.') && !s.contains('\\'));
    if !safe {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    let Some(path) = contained(&state.root, rel).await else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    // Strong ETag: the content hash, so identical bytes always match, whatever the mtime.
    let etag = format!("\"{}\"", crate::util::sha256_hex(&bytes));
    let matches = if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let headers = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::CONTENT_TYPE, content_type(rel).to_owned()),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if method == Method::HEAD {
        return (StatusCode::OK, headers).into_response();
    }
    (StatusCode::OK, headers, bytes).into_response()
}
