//! API errors: `{code, message, request_id}` bodies and the one table from error kind to
//! status. Internal errors are logged with the request id; the caller sees only the id.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vigil_service::{Error, ErrorKind};

use crate::REQUEST_ID;

/// The status each kind of error is answered with. Codes in the body are API; so is this.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::PreconditionFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A service error on its way out as a response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError(e)
    }
}

fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".into())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = request_id();
        let e = self.0;
        let message = if e.kind == ErrorKind::Internal {
            eprintln!("request {id}: internal error ({}): {}", e.code, e.message);
            format!("internal error (request {id})")
        } else {
            e.message
        };
        let body = json!({ "code": e.code, "message": message, "request_id": id });
        (status_for(e.kind), Json(body)).into_response()
    }
}

/// What a caught panic answers: a bug, reported like any internal error.
pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError(Error::internal("a request handler panicked")).into_response()
}
