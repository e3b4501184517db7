//! The CDS Hooks endpoints: `GET /cds-services`, `POST /cds-services/{id}` and
//! `POST /cds-services/{id}/feedback`. Clients authenticate with their signed JWT (not a
//! Vigil user token); a required prefetch that cannot be had is answered 412 with a FHIR
//! OperationOutcome, as the specification says.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use vigil_service::cds::{CdsAnswer, CdsService};

use crate::ApiError;

fn authorization(h: &HeaderMap) -> Option<&str> {
    h.get(axum::http::header::AUTHORIZATION)?.to_str().ok()
}

async fn discovery(
    State(cds): State<Arc<CdsService>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(Json(cds.discovery(authorization(&headers)).await?).into_response())
}

async fn call(
    State(cds): State<Arc<CdsService>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    match cds.call(&id, authorization(&headers), &body).await? {
        CdsAnswer::Cards(v) => Ok(Json(v).into_response()),
        CdsAnswer::PreconditionFailed(outcome) => Ok((
            StatusCode::PRECONDITION_FAILED,
            [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
            outcome.to_string(),
        )
            .into_response()),
    }
}

async fn feedback(
    State(cds): State<Arc<CdsService>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    cds.feedback(&id, authorization(&headers), &body).await?;
    Ok(StatusCode::OK.into_response())
}

/// The CDS Hooks routes over `cds`.
pub fn routes(cds: Arc<CdsService>) -> Router {
    Router::new()
        .route("/cds-services", get(discovery))
        .route("/cds-services/{id}", post(call))
        .route("/cds-services/{id}/feedback", post(feedback))
        .layer(DefaultBodyLimit::max(vigil_cds::request::MAX_REQUEST_BYTES))
        .with_state(cds)
}
