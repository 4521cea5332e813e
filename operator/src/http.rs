//! The operator's HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the process answers) and
//! `/readyz` (health.rs: it started, and every watch of its controllers can list).

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::StatusCode, http::header, routing::get};
use tokio_util::sync::CancellationToken;

use crate::{health::Readiness, metrics::Metrics};

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

async fn metrics(State(s): State<Shared>) -> impl axum::response::IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn ready(State(s): State<Shared>) -> (StatusCode, String) {
    match s.readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{why}\n"),
        ),
    }
}

/// Binds `addr` (port 0: any free port) and serves until `shutdown`; returns the bound address
/// and the server task.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let app = Router::new()
        .route("/metrics", get(self::metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Shared { metrics, readiness });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    Ok((bound, task))
}
