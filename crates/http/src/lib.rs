//! Vigil's REST API under `/api/v1`, the Open Inference Protocol under `/v2`, `/metrics` and
//! the dashboard at `/` (`dashboard.rs`, pages drawn by `page.rs`):
//! thin handlers over the service, bearer-token authentication, one table from error kind to
//! status, request ids, a panic guard, and an OpenAPI document built from the route table in
//! [`routes::ROUTES`].
//!
//! Only this crate knows HTTP: status codes, headers and the JSON shapes of the public API.

pub mod cds;
mod dashboard;
mod error;
mod handlers;
pub mod openapi;
mod page;
pub mod routes;
mod serving;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;
use tower_http::catch_panic::CatchPanicLayer;
use vigil_service::Vigil;
use vigil_service::cds::CdsService;
use vigil_service::serving::{Serving, ServingOptions};

pub use error::{ApiError, status_for};

/// What every handler shares.
pub struct AppState {
    pub vigil: Vigil,
    /// The loaded runtime, the prediction recorder and the metrics.
    pub serving: Arc<Serving>,
}

impl AppState {
    fn request_id(&self) -> String {
        self.serving.request_id()
    }
}

tokio::task_local! {
    /// The id of the request being handled, for error bodies and logs.
    pub(crate) static REQUEST_ID: String;
}

async fn with_request_id(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let id = state.request_id();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The layer that turns a panicking handler into a 500 answer.
pub type PanicLayer = CatchPanicLayer<fn(Box<dyn std::any::Any + Send + 'static>) -> Response>;

pub fn panic_layer() -> PanicLayer {
    CatchPanicLayer::custom(
        error::panic_response as fn(Box<dyn std::any::Any + Send + 'static>) -> Response,
    )
}

/// The API as a router, ready for `axum::serve` or in-process tests. Starts the serving
/// runtime's recorder and stage watcher on the current tokio runtime.
pub fn router(vigil: Vigil) -> Router {
    router_with_cds(vigil, None)
}

/// The API and, when given, the CDS Hooks service beside it, over a serving runtime
/// started with the default options.
pub fn router_with_cds(vigil: Vigil, cds: Option<Arc<CdsService>>) -> Router {
    let serving = Serving::start(vigil.clone(), ServingOptions::default());
    if let Some(c) = &cds {
        c.attach(serving.clone());
    }
    router_with(AppState { vigil, serving }, cds)
}

/// The router over an already started serving runtime, with the CDS Hooks service mounted
/// at `/cds-services` when given.
pub fn router_with(state: AppState, cds: Option<Arc<CdsService>>) -> Router {
    let state = Arc::new(state);
    let api = routes::api()
        .with_state(state.clone())
        .merge(dashboard::routes(state.clone()));
    let app = match cds {
        Some(c) => api.merge(cds::routes(c)),
        None => api,
    };
    app.fallback(handlers::not_found)
        .layer(panic_layer())
        .layer(middleware::from_fn_with_state(state, with_request_id))
}

/// Serves the API on `addr` until SIGTERM or Ctrl-C, finishing requests in flight. The
/// releases in production and shadow are loaded before the port is bound.
/// `on_bound` is told the address actually bound (port 0 picks a free one).
pub async fn serve(
    vigil: Vigil,
    opts: ServingOptions,
    cds: Option<Arc<CdsService>>,
    addr: SocketAddr,
    on_bound: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let serving = Serving::start(vigil.clone(), opts);
    serving
        .reload()
        .await
        .map_err(|e| std::io::Error::other(format!("loading the deployed releases: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    on_bound(listener.local_addr()?);
    // Answers leave at once rather than behind Nagle's wait for the peer's acknowledgement
    // of what was sent before (up to a delayed-ACK timer, 40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Some(c) = &cds {
        // CDS calls are recorded by the same group commit, and the CDS catalog follows the
        // runtime's view of the store (promotions, rollbacks, monitor controls).
        c.attach(serving.clone());
    }
    axum::serve(listener, router_with(AppState { vigil, serving }, cds))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
