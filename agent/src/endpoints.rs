//! The operator's HTTP endpoints: `/healthz`, `/readyz` (a module set is active),
//! `/metrics` (Prometheus text) and `/status` (the status board as JSON).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::status::StatusBoard;

#[derive(Clone)]
struct Ctx {
    status: StatusBoard,
    metrics: Arc<Metrics>,
}

/// The routes.
pub fn router(status: StatusBoard, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status_json))
        .with_state(Ctx { status, metrics })
}

async fn readyz(State(ctx): State<Ctx>) -> Response {
    if ctx.status.get().ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no module set is active yet\n").into_response()
    }
}

async fn metrics_text(State(ctx): State<Ctx>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        ctx.metrics.encode(),
    )
        .into_response()
}

async fn status_json(State(ctx): State<Ctx>) -> Response {
    axum::Json(ctx.status.get()).into_response()
}

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    status: StatusBoard,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(status, metrics)).with_graceful_shutdown(shutdown).await
}
