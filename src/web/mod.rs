//! The web UI and its HTTP API (Locust's, on port 8089): start, watch, edit, stop and reset a
//! test, and download its results, from a browser or with curl (docs/web-api.md).
//!
//! [`app`] builds the router apart from serving, so tests drive it on a port-0 listener;
//! [`serve`] takes the listener and a shutdown token. [`guard`] keeps other web sites out. The page is three embedded asset files plus
//! the charts shared with the HTML report (`assets/charts.js`): no CDN, no build step.

pub mod api;
mod args;
pub mod auth;
pub mod downloads;
mod form;
pub mod guard;
pub mod metrics;
mod rates;
pub mod server_metrics;
pub mod state;

pub use crate::driver::{Runner, Running};
pub use args::WebArgs;
pub use auth::Login;
pub use rates::Rates;
pub use state::{Controller, FormDefaults, StartRequest, UiState};

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use downloads::Download;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

impl From<crate::driver::DriverError> for state::WebError {
    fn from(e: crate::driver::DriverError) -> Self {
        match e {
            crate::driver::DriverError::Engine(e) => state::WebError::Engine(e),
            crate::driver::DriverError::Master(e) => state::WebError::Master(e),
            crate::driver::DriverError::RequestsLog(e) => state::WebError::Invalid {
                field: "--requests-log",
                reason: e.to_string(),
            },
        }
    }
}

/// What the router serves: the controller, and the login every request must carry, if any.
#[derive(Clone)]
pub struct WebState {
    /// The test controller.
    pub controller: Controller,
    /// HTTP Basic credentials required on every request (`--web-login`).
    pub login: Option<Login>,
}

const PAGE_HTML: &str = include_str!("../../assets/web.html");
const PAGE_CSS: &str = include_str!("../../assets/web.css");
const PAGE_JS: &str = include_str!("../../assets/web.js");
const CHARTS_JS: &str = include_str!("../../assets/charts.js");
const SERVER_METRICS_JS: &str = include_str!("../../assets/server_metrics.js");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The binary embeds its assets: a new build must not be shadowed by a cached copy.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

fn download_route(which: Download) -> axum::routing::MethodRouter<Controller> {
    get(move |axum::extract::State(c): axum::extract::State<Controller>| api::download(c, which))
}

/// The router of a UI listening on `bound`: page, assets and API, behind HTTP Basic when a
/// login is set, with the actions refused to other web sites and, on loopback, every request
/// refused to names other than loopback ones ([`guard`]).
pub fn app(state: WebState, bound: SocketAddr) -> Router {
    // Every route that starts, changes, stops or resets a test: only from the UI's own page or
    // from scripts. /stop and /stats/reset are GETs (Locust's), which an <img> can trigger.
    let actions = Router::new()
        .route("/swarm", post(api::swarm))
        .route("/users", post(api::users))
        .route("/stop", get(api::stop).post(api::stop))
        .route("/stats/reset", get(api::reset).post(api::reset))
        .route_layer(axum::middleware::from_fn(guard::same_site_only));
    let mut router = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE_HTML) }),
        )
        .route(
            "/assets/web.css",
            get(|| async { asset("text/css; charset=utf-8", PAGE_CSS) }),
        )
        .route(
            "/assets/web.js",
            get(|| async { asset("text/javascript; charset=utf-8", PAGE_JS) }),
        )
        .route(
            "/assets/charts.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHARTS_JS) }),
        )
        .route(
            "/assets/server_metrics.js",
            get(|| async { asset("text/javascript; charset=utf-8", SERVER_METRICS_JS) }),
        )
        .route("/config", get(api::config))
        .route("/stats/requests", get(api::stats_requests))
        .route("/stats/llm", get(api::stats_llm))
        .route("/stats/history", get(api::stats_history))
        .route("/stats/server-metrics", get(api::stats_server_metrics))
        // Prometheus text of the current or last test (read-only: no same-site check).
        .route("/metrics", get(metrics::route))
        .merge(actions);
    for which in Download::ALL {
        router = router.route(which.path(), download_route(which));
    }
    let router = router
        .with_state(state.controller)
        .layer(DefaultBodyLimit::max(guard::MAX_BODY_BYTES));
    let router = match &state.login {
        Some(login) => router.layer(axum::middleware::from_fn_with_state(
            auth::Guard::new(login),
            auth::require_login,
        )),
        None => router,
    };
    // Outermost: a rebinding page gets nothing, not even the login prompt.
    router
        .layer(axum::middleware::from_fn_with_state(
            guard::HostPolicy::for_listener(bound),
            guard::check_host,
        ))
        .layer(axum::middleware::from_fn(guard::no_framing))
}

/// Serves the UI on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: WebState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    axum::serve(listener, app(state, bound))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
