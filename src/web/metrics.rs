//! `GET /metrics` over HTTP: the web UI's route (behind its login and Host check like every
//! page), and the standalone `--metrics-port` server for headless, master and worker runs —
//! read-only, one route, the same Host check against DNS rebinding while it listens on loopback.
//! What the text says is [`crate::exporter`]'s.

use super::guard;
use super::Controller;
use crate::exporter::{self, Live, Source};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The answer to a scrape of `live`.
fn exposition(live: Option<Live>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, exporter::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        exporter::render(live),
    )
}

/// The web UI's `GET /metrics`: the current or last test started from the UI.
pub async fn route(State(c): State<Controller>) -> impl IntoResponse {
    exposition(c.live())
}

/// The controller as a scrape source (for a `--metrics-port` beside the web UI).
pub fn controller_source(c: Controller) -> Source {
    std::sync::Arc::new(move || c.live())
}

/// The router of a standalone metrics port listening on `bound`.
pub fn app(source: Source, bound: SocketAddr) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(source): State<Source>| async move { exposition(source()) }),
        )
        .with_state(source)
        .layer(axum::middleware::from_fn_with_state(
            guard::HostPolicy::for_listener(bound),
            guard::check_host,
        ))
}

/// Serves `GET /metrics` from `source` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    source: Source,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    axum::serve(listener, app(source, bound))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
