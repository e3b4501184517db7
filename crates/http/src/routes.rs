//! The route table: every endpoint once, with what the OpenAPI document says about it, and
//! the router built beside it (a test checks that the two agree).

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;
use crate::handlers as h;
use crate::serving as sv;

/// One endpoint as documented.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: &'static str,
    pub summary: &'static str,
    /// Roles that may call it; empty: any authenticated user.
    pub roles: &'static [&'static str],
    /// The request body's schema name, if it takes one.
    pub body: Option<&'static str>,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// Whether it needs a bearer token.
    pub auth: bool,
}

const fn r(
    method: &'static str,
    path: &'static str,
    operation: &'static str,
    summary: &'static str,
    roles: &'static [&'static str],
    body: Option<&'static str>,
    query: &'static [&'static str],
) -> Route {
    Route {
        method,
        path,
        operation,
        summary,
        roles,
        body,
        query,
        auth: true,
    }
}

pub const ROUTES: &[Route] = &[
    Route {
        auth: false,
        ..r(
            "get",
            "/api/v1/openapi.json",
            "openapi",
            "This document",
            &[],
            None,
            &[],
        )
    },
    r(
        "get",
        "/api/v1/me",
        "whoami",
        "The authenticated user and roles",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/models",
        "listModels",
        "List models",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/models/{name}",
        "getModel",
        "One model",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/models/{name}/releases",
        "listModelReleases",
        "A model's releases with their stage",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/models/{name}/history",
        "getHistory",
        "Every promotion; with `at`, what was live then",
        &[],
        None,
        &["at"],
    ),
    r(
        "post",
        "/api/v1/models/{name}/rollback",
        "rollback",
        "Put the previous production release back (or rehearse it with drill)",
        &["operator"],
        Some("RollbackRequest"),
        &[],
    ),
    r(
        "get",
        "/api/v1/datasets",
        "listDatasets",
        "List dataset snapshots",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/datasets/{id}",
        "getDataset",
        "One dataset snapshot",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/releases",
        "listReleases",
        "List releases",
        &[],
        None,
        &["model"],
    ),
    r(
        "get",
        "/api/v1/releases/{id}",
        "getRelease",
        "One release with its stage",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/releases/{id}/evaluations",
        "listEvaluations",
        "Evaluations on record for a release",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/releases/{id}/gates",
        "getGates",
        "Every gate for moving a release to a stage, with the evidence behind it",
        &[],
        None,
        &["to"],
    ),
    r(
        "get",
        "/api/v1/releases/{id}/sign-offs",
        "listSignOffs",
        "Sign-offs of a release",
        &[],
        None,
        &[],
    ),
    r(
        "post",
        "/api/v1/releases/{id}/sign-offs",
        "signOff",
        "Approve or reject a release in a role, bound to the evidence digest",
        &["clinical-reviewer", "governance"],
        Some("SignOffRequest"),
        &[],
    ),
    r(
        "get",
        "/api/v1/releases/{id}/exceptions",
        "listExceptions",
        "Exceptions granted for a release",
        &[],
        None,
        &[],
    ),
    r(
        "post",
        "/api/v1/releases/{id}/exceptions",
        "grantException",
        "Waive one gate until an expiry",
        &["governance"],
        Some("ExceptionRequest"),
        &[],
    ),
    r(
        "get",
        "/api/v1/releases/{id}/reviews",
        "reviewSummary",
        "Verdicts recorded on the release's sampled cases",
        &[],
        None,
        &[],
    ),
    r(
        "post",
        "/api/v1/releases/{id}/reviews",
        "recordReview",
        "Record a verdict on a sampled case (plausible, implausible, unsafe)",
        &["clinical-reviewer"],
        Some("ReviewRequest"),
        &[],
    ),
    r(
        "post",
        "/api/v1/releases/{id}/promotions",
        "promote",
        "Move a release to a stage through its gates",
        &["data-scientist", "governance", "operator"],
        Some("PromotionRequest"),
        &[],
    ),
    r(
        "post",
        "/api/v1/releases/{id}/retire",
        "retire",
        "Retire a release",
        &["operator", "governance"],
        Some("ReasonRequest"),
        &[],
    ),
    Route {
        roles: &["predict-client", "operator"],
        body: Some("PredictRequest"),
        ..r(
            "post",
            "/api/v1/models/{name}/predict",
            "predict",
            "Score one row (or `rows`) with the production release; the answer is sent once its record is durable",
            &[],
            None,
            &[],
        )
    },
    r(
        "get",
        "/api/v1/policy",
        "getPolicy",
        "The gate policy in force",
        &[],
        None,
        &[],
    ),
    r(
        "post",
        "/api/v1/outcomes",
        "importOutcomes",
        "Import outcomes joined to prediction records by encounter or request id",
        &["data-scientist", "operator"],
        Some("OutcomesRequest"),
        &[],
    ),
    r(
        "get",
        "/api/v1/models/{name}/controls",
        "deploymentControls",
        "The suppress and disable controls in force on a model",
        &[],
        None,
        &[],
    ),
    r(
        "get",
        "/api/v1/incidents",
        "listIncidents",
        "Incidents, open ones unless all=true",
        &[],
        None,
        &["all"],
    ),
    r(
        "get",
        "/api/v1/audit",
        "listAudit",
        "Audit events in sequence order",
        &[],
        None,
        &["subject", "action", "after", "limit"],
    ),
    Route {
        auth: false,
        ..r(
            "get",
            "/v2",
            "oipServer",
            "Open Inference Protocol: server metadata",
            &[],
            None,
            &[],
        )
    },
    Route {
        auth: false,
        ..r(
            "get",
            "/v2/health/live",
            "oipLive",
            "Open Inference Protocol: the server is live",
            &[],
            None,
            &[],
        )
    },
    Route {
        auth: false,
        ..r(
            "get",
            "/v2/health/ready",
            "oipReady",
            "Open Inference Protocol: every deployed release is loaded (503 otherwise)",
            &[],
            None,
            &[],
        )
    },
    Route {
        roles: &["predict-client", "operator"],
        ..r(
            "get",
            "/v2/models/{name}",
            "oipModel",
            "Open Inference Protocol: the production release's inputs and outputs",
            &[],
            None,
            &[],
        )
    },
    Route {
        auth: false,
        ..r(
            "get",
            "/v2/models/{name}/ready",
            "oipModelReady",
            "Open Inference Protocol: the model has a loaded production release (503 otherwise)",
            &[],
            None,
            &[],
        )
    },
    Route {
        roles: &["predict-client", "operator"],
        body: Some("InferRequest"),
        ..r(
            "post",
            "/v2/models/{name}/infer",
            "oipInfer",
            "Open Inference Protocol: score FP32/FP64 tensors (one per feature, or one [N, inputs] matrix in contract order)",
            &[],
            None,
            &[],
        )
    },
    Route {
        auth: false,
        ..r(
            "get",
            "/metrics",
            "metrics",
            "Prometheus metrics: requests, latency, fallbacks, model errors, record writes",
            &[],
            None,
            &[],
        )
    },
];

/// The router for [`ROUTES`].
pub fn api() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/openapi.json", get(h::openapi))
        .route("/api/v1/me", get(h::whoami))
        .route("/api/v1/models", get(h::list_models))
        .route("/api/v1/models/{name}", get(h::get_model))
        .route(
            "/api/v1/models/{name}/releases",
            get(h::list_model_releases),
        )
        .route("/api/v1/models/{name}/history", get(h::history))
        .route("/api/v1/models/{name}/rollback", post(h::rollback))
        .route("/api/v1/datasets", get(h::list_datasets))
        .route("/api/v1/datasets/{id}", get(h::get_dataset))
        .route("/api/v1/releases", get(h::list_releases))
        .route("/api/v1/releases/{id}", get(h::get_release))
        .route(
            "/api/v1/releases/{id}/evaluations",
            get(h::list_evaluations),
        )
        .route("/api/v1/releases/{id}/gates", get(h::gates))
        .route(
            "/api/v1/releases/{id}/sign-offs",
            get(h::list_sign_offs).post(h::sign_off),
        )
        .route(
            "/api/v1/releases/{id}/exceptions",
            get(h::list_exceptions).post(h::grant_exception),
        )
        .route(
            "/api/v1/releases/{id}/reviews",
            get(h::review_summary).post(h::record_review),
        )
        .route("/api/v1/releases/{id}/promotions", post(h::promote))
        .route("/api/v1/releases/{id}/retire", post(h::retire))
        .route("/api/v1/models/{name}/predict", post(sv::predict))
        .route("/api/v1/policy", get(h::policy))
        .route("/api/v1/audit", get(h::audit))
        .route("/v2", get(sv::oip_server))
        .route("/v2/health/live", get(sv::oip_live))
        .route("/v2/health/ready", get(sv::oip_ready))
        .route("/v2/models/{name}", get(sv::oip_model))
        .route("/v2/models/{name}/ready", get(sv::oip_model_ready))
        .route("/v2/models/{name}/infer", post(sv::oip_infer))
        .route("/metrics", get(sv::metrics))
        .route("/api/v1/outcomes", post(h::import_outcomes))
        .route(
            "/api/v1/models/{name}/controls",
            get(h::deployment_controls),
        )
        .route("/api/v1/incidents", get(h::list_incidents))
}
