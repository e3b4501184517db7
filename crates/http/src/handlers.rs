//! Handlers: authenticate, parse, call the service, answer JSON. No rules live here.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_domain::governance::Decision;
use vigil_domain::role::Role;
use vigil_domain::{Stage, Timestamp, UserName};
use vigil_service::{Error, ErrorKind};
use vigil_store::{AuditFilter, UserRecord};

use crate::{ApiError, AppState};

type ApiResult = Result<Response, ApiError>;

fn ok<T: serde::Serialize>(v: T) -> ApiResult {
    Ok(Json(v).into_response())
}

fn invalid(code: &'static str, m: impl Into<String>) -> ApiError {
    ApiError(Error::invalid(code, m))
}

/// The authenticated caller. A missing, unknown or revoked token is answered 401 and
/// audited as `request.refused`.
pub struct Caller(pub UserRecord);

impl Caller {
    fn name(&self) -> &UserName {
        &self.0.name
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let result = match bearer(&parts.headers) {
            None => Err(Error::new(
                ErrorKind::Unauthenticated,
                "missing_token",
                "this endpoint needs `Authorization: Bearer <token>` (tokens come from `vigil user add`)",
            )),
            Some(t) => state.vigil.authenticate(t).await,
        };
        match result {
            // A token for asking predictions opens nothing else.
            Ok(u) if u.roles.iter().all(|r| r == Role::PredictClient) => {
                let subject = format!("api:{}", parts.uri.path());
                let extra = json!({ "method": parts.method.as_str(), "path": parts.uri.path() });
                let e = Error::forbidden(
                    "predict_client_only",
                    format!(
                        "user `{}` holds only the predict-client role, which may call the prediction endpoints and nothing else",
                        u.name
                    ),
                );
                Err(ApiError(
                    state
                        .vigil
                        .refused(&u.name, "request", &subject, &e, extra)
                        .await,
                ))
            }
            Ok(u) => Ok(Caller(u)),
            Err(e) if e.kind == ErrorKind::Unauthenticated => {
                let who = UserName::parse("anonymous")
                    .map_err(|x| ApiError(Error::internal(x.to_string())))?;
                let subject = format!("api:{}", parts.uri.path());
                let extra = json!({ "method": parts.method.as_str(), "path": parts.uri.path() });
                Err(ApiError(
                    state
                        .vigil
                        .refused(&who, "request", &subject, &e, extra)
                        .await,
                ))
            }
            Err(e) => Err(ApiError(e)),
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError(Error::not_found(
        "route_not_found",
        "no such endpoint (see /api/v1/openapi.json)",
    ))
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

pub async fn whoami(c: Caller) -> ApiResult {
    ok(c.0)
}

pub async fn list_models(State(s): State<Arc<AppState>>, _c: Caller) -> ApiResult {
    ok(s.vigil.list_models().await?)
}

pub async fn get_model(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    ok(s.vigil.get_model(&name).await?)
}

pub async fn list_model_releases(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    let v: Vec<Value> = s
        .vigil
        .list_release_stages(&name)
        .await?
        .into_iter()
        .map(|(r, st)| json!({ "release": r, "stage": st }))
        .collect();
    ok(v)
}

#[derive(Deserialize)]
pub struct AtQuery {
    at: Option<String>,
}

pub async fn history(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(name): Path<String>,
    q: Result<Query<AtQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| invalid("invalid_query", e.body_text()))?;
    let at =
        q.at.as_deref()
            .map(Timestamp::parse)
            .transpose()
            .map_err(|e| invalid("invalid_time", e.to_string()))?;
    ok(s.vigil.history(&name, at).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    reason: String,
    #[serde(default)]
    drill: bool,
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        .map_err(|e| invalid("invalid_body", e.body_text()))
}

pub async fn rollback(
    State(s): State<Arc<AppState>>,
    c: Caller,
    Path(name): Path<String>,
    b: Result<Json<RollbackRequest>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let out = s
        .vigil
        .rollback(c.name(), &name, &b.reason, b.drill)
        .await?;
    live_changed(&s).await;
    ok(out)
}

/// After a stage change made through this server, the runtime reloads before the answer,
/// so the next prediction here already uses the new release. (A failure leaves the
/// watcher to retry; the change itself is committed either way.)
async fn live_changed(s: &AppState) {
    let _ = s.serving.reload().await;
}

pub async fn list_datasets(State(s): State<Arc<AppState>>, _c: Caller) -> ApiResult {
    ok(s.vigil.list_datasets().await?)
}

pub async fn get_dataset(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.vigil.get_dataset(&id).await?)
}

#[derive(Deserialize)]
pub struct ModelQuery {
    model: Option<String>,
}

pub async fn list_releases(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    q: Result<Query<ModelQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| invalid("invalid_query", e.body_text()))?;
    ok(s.vigil.list_releases(q.model.as_deref()).await?)
}

pub async fn get_release(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let r = s.vigil.get_release(&id).await?;
    let stage = s.vigil.release_stage(&r).await?;
    ok(json!({ "release": r, "stage": stage }))
}

pub async fn list_evaluations(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let r = s.vigil.get_release(&id).await?;
    ok(s.vigil.gather_evidence(&r).await?.evaluations)
}

#[derive(Deserialize)]
pub struct ToQuery {
    to: Option<String>,
}

fn stage(s: &str) -> Result<Stage, ApiError> {
    s.parse::<Stage>()
        .map_err(|e| invalid("invalid_stage", e.to_string()))
}

pub async fn gates(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
    q: Result<Query<ToQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| invalid("invalid_query", e.body_text()))?;
    let to = stage(
        q.to.as_deref()
            .ok_or_else(|| invalid("missing_stage", "give the target stage as `?to=`"))?,
    )?;
    ok(s.vigil.gates(&id, to).await?)
}

pub async fn list_sign_offs(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.vigil.list_sign_offs(&id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOffRequest {
    role: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

pub async fn sign_off(
    State(s): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<String>,
    b: Result<Json<SignOffRequest>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let role = Role::parse(&b.role).map_err(|e| invalid("invalid_role", e.to_string()))?;
    let decision =
        Decision::parse(&b.decision).map_err(|e| invalid("invalid_decision", e.to_string()))?;
    let so = s
        .vigil
        .sign_off(c.name(), &id, role, decision, &b.comment)
        .await?;
    Ok((StatusCode::CREATED, Json(so)).into_response())
}

pub async fn list_exceptions(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.vigil.list_exceptions(&id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRequest {
    gate: String,
    rationale: String,
    expires_at: String,
}

pub async fn grant_exception(
    State(s): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<String>,
    b: Result<Json<ExceptionRequest>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let exp =
        Timestamp::parse(&b.expires_at).map_err(|e| invalid("invalid_time", e.to_string()))?;
    let x = s
        .vigil
        .grant_exception(c.name(), &id, &b.gate, &b.rationale, exp)
        .await?;
    Ok((StatusCode::CREATED, Json(x)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    to: String,
    reason: String,
}

pub async fn promote(
    State(s): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<String>,
    b: Result<Json<PromotionRequest>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let out = s
        .vigil
        .promote(c.name(), &id, stage(&b.to)?, &b.reason)
        .await?;
    live_changed(&s).await;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    reason: String,
}

pub async fn retire(
    State(s): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<String>,
    b: Result<Json<ReasonRequest>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let out = s.vigil.retire(c.name(), &id, &b.reason).await?;
    live_changed(&s).await;
    ok(out)
}

pub async fn policy(State(s): State<Arc<AppState>>, _c: Caller) -> ApiResult {
    ok(s.vigil.current_policy().await?)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    subject: Option<String>,
    action: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

pub async fn audit(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| invalid("invalid_query", e.body_text()))?;
    let f = AuditFilter {
        subject: q.subject,
        action: q.action,
        after_seq: q.after.unwrap_or(0),
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    ok(s.vigil.list_audit(&f).await?)
}

pub async fn review_summary(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.vigil.review_summary(&id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    case: u64,
    verdict: String,
    #[serde(default)]
    comment: String,
}

pub async fn record_review(
    State(s): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<String>,
    b: Result<Json<ReviewRequest>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let verdict = vigil_domain::governance::Verdict::parse(&b.verdict)
        .map_err(|e| invalid("invalid_verdict", e.to_string()))?;
    let r = s
        .vigil
        .record_review(c.name(), &id, b.case, verdict, &b.comment)
        .await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeItem {
    key: String,
    label: u8,
    #[serde(default)]
    observed_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomesRequest {
    key_kind: String,
    outcomes: Vec<OutcomeItem>,
}

pub async fn import_outcomes(
    State(s): State<Arc<AppState>>,
    c: Caller,
    b: Result<Json<OutcomesRequest>, JsonRejection>,
) -> ApiResult {
    use vigil_service::monitor::{ImportOutcomes, KeyKind, OutcomeRow};
    let b = body(b)?;
    let key_kind = KeyKind::parse(&b.key_kind)?;
    let mut rows = Vec::with_capacity(b.outcomes.len());
    for (i, o) in b.outcomes.iter().enumerate() {
        let label = match o.label {
            0 => false,
            1 => true,
            _ => {
                return Err(invalid(
                    "label_not_binary",
                    format!("outcomes[{i}].label must be 0 or 1"),
                ));
            }
        };
        let observed_at = o
            .observed_at
            .as_deref()
            .map(vigil_domain::Timestamp::parse)
            .transpose()
            .map_err(|e| invalid("invalid_time", format!("outcomes[{i}].observed_at: {e}")))?;
        rows.push(OutcomeRow {
            key: o.key.clone(),
            label,
            observed_at,
        });
    }
    let digest = vigil_domain::Digest::of(
        serde_json::to_string(
            &b.outcomes
                .iter()
                .map(|o| (&o.key, o.label, &o.observed_at))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default()
        .as_bytes(),
    );
    let r = s
        .vigil
        .import_outcomes(
            c.name(),
            ImportOutcomes {
                source: "api".into(),
                key_kind,
                rows,
                digest,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

pub async fn deployment_controls(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    s.vigil.get_model(&name).await?;
    ok(s.vigil.deployment_controls(&name).await?)
}

#[derive(Deserialize)]
pub struct IncidentQuery {
    all: Option<bool>,
}

pub async fn list_incidents(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| invalid("invalid_query", e.body_text()))?;
    ok(s.vigil.list_incidents(!q.all.unwrap_or(false)).await?)
}
