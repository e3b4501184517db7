//! Vigil's REST API under `/api/v1`: thin handlers over the service, bearer-token
//! authentication, one table from error kind to status, request ids, a panic guard, and an
//! OpenAPI document built from the route table in [`routes::ROUTES`].
//!
//! Only this crate knows HTTP: status codes, headers and the JSON shapes of the public API.

pub mod cds;
mod error;
mod handlers;
pub mod openapi;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;
use vigil_service::Vigil;
use vigil_service::cds::CdsService;

pub use error::{ApiError, status_for};

/// What every handler shares.
pub struct AppState {
    pub vigil: Vigil,
    /// A per-process prefix and a counter make request ids unique without a random source
    /// on every request.
    id_prefix: String,
    next_id: AtomicU64,
}

impl AppState {
    pub fn new(vigil: Vigil) -> AppState {
        let mut b = [0u8; 4];
        // Uniqueness across restarts matters only for reading logs; fall back to the time.
        let prefix = match getrandom_prefix(&mut b) {
            Some(p) => p,
            None => format!("{:08x}", vigil.clock().now().as_micros() as u32),
        };
        AppState {
            vigil,
            id_prefix: prefix,
            next_id: AtomicU64::new(1),
        }
    }

    fn request_id(&self) -> String {
        format!(
            "{}-{:06}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

fn getrandom_prefix(b: &mut [u8; 4]) -> Option<String> {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let n = (t.as_nanos() as u32) ^ std::process::id().rotate_left(16);
    *b = n.to_le_bytes();
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
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

/// The API as a router, ready for `axum::serve` or in-process tests.
pub fn router(vigil: Vigil) -> Router {
    router_with(vigil, None)
}

/// The API and, when given, the CDS Hooks service beside it.
pub fn router_with(vigil: Vigil, cds: Option<Arc<CdsService>>) -> Router {
    let state = Arc::new(AppState::new(vigil));
    let api = routes::api().with_state(state.clone());
    let app = match cds {
        Some(c) => api.merge(cds::routes(c)),
        None => api,
    };
    app.fallback(handlers::not_found)
        .layer(panic_layer())
        .layer(middleware::from_fn_with_state(state, with_request_id))
}

/// Serves the API on `addr` until SIGTERM or Ctrl-C, finishing requests in flight.
/// `on_bound` is told the address actually bound (port 0 picks a free one).
pub async fn serve(
    vigil: Vigil,
    addr: SocketAddr,
    on_bound: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    serve_with(vigil, None, addr, on_bound).await
}

/// [`serve`] with the CDS Hooks service mounted at `/cds-services`. The service's catalog
/// of models is reloaded every few seconds, so promotions and rollbacks take effect
/// without a restart.
pub async fn serve_with(
    vigil: Vigil,
    cds: Option<Arc<CdsService>>,
    addr: SocketAddr,
    on_bound: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    on_bound(listener.local_addr()?);
    if let Some(c) = cds.clone() {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Err(e) = c.reload().await {
                    eprintln!("cds: reloading the models failed: {e}");
                }
            }
        });
    }
    axum::serve(listener, router_with(vigil, cds))
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
