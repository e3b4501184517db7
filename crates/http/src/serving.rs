//! The serving endpoints: `POST /api/v1/models/{name}/predict`, the Open Inference Protocol
//! v2 under `/v2` (health, model metadata and readiness, infer) and `/metrics`. Parsing and
//! answering only; scoring and recording happen in `vigil_service::serving`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use vigil_domain::role::Role;
use vigil_domain::{FeatureType, UserName};
use vigil_inference::{Input, Inputs};
use vigil_service::serving::{FieldError, PredictRequest, Prediction, parse_body};
use vigil_service::{Error, ErrorKind};
use vigil_store::UserRecord;

use crate::handlers::bearer;
use crate::{ApiError, AppState, REQUEST_ID, status_for};

fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".into())
}

/// The roles that may ask for predictions.
pub(crate) const PREDICT_ROLES: &[Role] = &[Role::PredictClient, Role::Operator];

/// A caller allowed to ask for predictions: a valid bearer token whose user holds
/// `predict-client` or `operator`. Tokens are checked through the serving runtime's cache.
pub struct Predictor(#[allow(dead_code)] pub UserRecord);

impl FromRequestParts<Arc<AppState>> for Predictor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Predictor, ApiError> {
        let subject = format!("api:{}", parts.uri.path());
        let extra = json!({ "method": parts.method.as_str(), "path": parts.uri.path() });
        let result = match bearer(&parts.headers) {
            None => Err(Error::new(
                ErrorKind::Unauthenticated,
                "missing_token",
                "prediction endpoints need `Authorization: Bearer <token>` of a user with the predict-client or operator role",
            )),
            Some(t) => state.serving.authenticate(t).await,
        };
        let user = match result {
            Ok(u) => u,
            Err(e) if e.kind == ErrorKind::Unauthenticated => {
                let who = UserName::parse("anonymous")
                    .map_err(|x| ApiError(Error::internal(x.to_string())))?;
                return Err(ApiError(
                    state
                        .vigil
                        .refused(&who, "request", &subject, &e, extra)
                        .await,
                ));
            }
            Err(e) => return Err(ApiError(e)),
        };
        if !PREDICT_ROLES.iter().any(|r| user.roles.contains(*r)) {
            let e = Error::forbidden(
                "role_required",
                format!(
                    "user `{}` needs the predict-client or operator role to ask for predictions",
                    user.name
                ),
            );
            return Err(ApiError(
                state
                    .vigil
                    .refused(&user.name, "request", &subject, &e, extra)
                    .await,
            ));
        }
        Ok(Predictor(user))
    }
}

/// A body that cannot be read: 400 with a stable code and the offending field.
fn bad_request(code: &'static str, e: &FieldError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "code": code,
            "message": e.to_string(),
            "field": e.field,
            "request_id": request_id(),
        })),
    )
        .into_response()
}

fn read_json(body: &[u8]) -> Result<Value, FieldError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's message gives the position (line and column), never the content.
        FieldError::new("$", format!("the body is not valid JSON: {e}"))
    })
}

fn prediction_json(p: &Prediction) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    let code = if p.disabled {
        Some("deployment_disabled")
    } else if p.model_failed {
        Some("model_unavailable")
    } else {
        None
    };
    if let Some(code) = code
        && let Value::Object(m) = &mut v
    {
        m.insert("code".into(), json!(code));
    }
    v
}

/// `POST /api/v1/models/{name}/predict`.
pub async fn predict(
    State(s): State<Arc<AppState>>,
    _p: Predictor,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let t0 = Instant::now();
    let resp = predict_inner(&s, &name, &body).await;
    s.serving.metrics().request(
        "predict",
        resp.status().as_u16(),
        t0.elapsed().as_secs_f64(),
    );
    resp
}

async fn predict_inner(s: &AppState, name: &str, body: &[u8]) -> Response {
    let v = match read_json(body) {
        Ok(v) => v,
        Err(e) => return bad_request("malformed_json", &e),
    };
    let (rows, batch) = match parse_body(&v) {
        Ok(r) => r,
        Err(e) => return bad_request("invalid_request", &e),
    };
    let rid = request_id();
    match s
        .serving
        .predict(name, rows, "predict", &rid, json!({}))
        .await
    {
        Ok(preds) if batch => {
            let results: Vec<Value> = preds.iter().map(prediction_json).collect();
            axum::Json(json!({ "results": results })).into_response()
        }
        Ok(preds) => {
            let Some(p) = preds.first() else {
                return ApiError(Error::internal("no prediction for a single row")).into_response();
            };
            let status = if p.model_failed || p.disabled {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            (status, axum::Json(prediction_json(p))).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.serving.metrics().render(),
    )
        .into_response()
}

// ---- Open Inference Protocol v2 ----------------------------------------------------------

/// An OIP error: `{"error": …}` as the protocol has it, with Vigil's code (and field).
fn oip_error(status: StatusCode, code: &str, message: String, field: Option<&str>) -> Response {
    let mut body = json!({ "error": message, "code": code, "request_id": request_id() });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    (status, axum::Json(body)).into_response()
}

fn oip_service_error(e: &Error) -> Response {
    let message = if e.kind == ErrorKind::Internal {
        eprintln!(
            "request {}: internal error ({}): {}",
            request_id(),
            e.code,
            e.message
        );
        format!("internal error (request {})", request_id())
    } else {
        e.message.clone()
    };
    oip_error(status_for(e.kind), e.code, message, None)
}

pub async fn oip_server(State(_s): State<Arc<AppState>>) -> Response {
    axum::Json(json!({
        "name": "vigil",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": []
    }))
    .into_response()
}

pub async fn oip_live() -> Response {
    axum::Json(json!({ "live": true })).into_response()
}

pub async fn oip_ready(State(s): State<Arc<AppState>>) -> Response {
    let ready = s.serving.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({ "ready": ready }))).into_response()
}

pub async fn oip_model_ready(State(s): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let d = s.serving.deployments();
    let ready = d.get(&name).is_some_and(|d| d.active.is_some());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({ "name": name, "ready": ready }))).into_response()
}

fn oip_datatype(ty: FeatureType) -> &'static str {
    match ty {
        FeatureType::Float | FeatureType::Int => "FP64",
        FeatureType::Bool => "BOOL",
        FeatureType::Category => "BYTES",
    }
}

/// `GET /v2/models/{name}`: the production release's inputs (one tensor per feature, in the
/// contract's order) and outputs.
pub async fn oip_model(
    State(s): State<Arc<AppState>>,
    _p: Predictor,
    Path(name): Path<String>,
) -> Response {
    let d = match s.serving.deployment(&name).await {
        Ok(d) => d,
        Err(e) => return oip_service_error(&e),
    };
    let Some(active) = &d.active else {
        return oip_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_production_release",
            format!("model `{name}` has no release in production"),
            None,
        );
    };
    let contract = active.scorer.contract();
    let inputs: Vec<Value> = contract
        .inputs()
        .map(|f| json!({ "name": f.name, "datatype": oip_datatype(f.ty), "shape": [-1, 1] }))
        .collect();
    axum::Json(json!({
        "name": name,
        "versions": [active.id().to_string()],
        "platform": "vigil-onnx",
        "inputs": inputs,
        "outputs": [
            { "name": "probability", "datatype": "FP64", "shape": [-1, 1] },
            { "name": "decision", "datatype": "BYTES", "shape": [-1, 1] },
            { "name": "fallback", "datatype": "BYTES", "shape": [-1, 1] }
        ],
        "parameters": {
            "release": active.id().to_string(),
            "input_order": active.inputs,
            "matrix_input": format!("or one {} tensor [N, {}] in input_order", "FP32/FP64", active.inputs.len()),
        }
    }))
    .into_response()
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        x => out.push(x),
    }
}

/// One tensor of an infer request, flattened.
struct TensorIn<'a> {
    name: String,
    shape: Vec<usize>,
    datatype: String,
    data: Vec<&'a Value>,
}

fn read_tensor<'a>(t: &'a Value, i: usize) -> Result<TensorIn<'a>, FieldError> {
    let at = |k: &str| format!("inputs[{i}].{k}");
    let Value::Object(o) = t else {
        return Err(FieldError::new(
            format!("inputs[{i}]"),
            "expected a tensor object",
        ));
    };
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(at("name"), "missing or not text"))?
        .to_string();
    let shape = o
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new(at("shape"), "missing or not an array"))?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| FieldError::new(at("shape"), "dimensions must be non-negative integers"))?;
    let datatype = o
        .get("datatype")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(at("datatype"), "missing or not text"))?
        .to_string();
    let mut data = Vec::new();
    flatten(
        o.get("data")
            .ok_or_else(|| FieldError::new(at("data"), "missing"))?,
        &mut data,
    );
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(FieldError::new(
            at("data"),
            format!("holds {} values, the shape {shape:?} needs {n}", data.len()),
        ));
    }
    Ok(TensorIn {
        name,
        shape,
        datatype,
        data,
    })
}

const NUMERIC: &[&str] = &[
    "FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
    "UINT64",
];

/// A numeric cell for a feature of type `ty` (category levels by index, booleans as 0/1).
/// `field` names the cell, built only when the cell is refused.
fn numeric_input(
    v: &Value,
    ty: FeatureType,
    levels: &[String],
    field: impl Fn() -> String,
) -> Result<Input, FieldError> {
    let Some(x) = v.as_f64() else {
        return Err(FieldError::new(
            field(),
            "expected numbers in a numeric tensor",
        ));
    };
    match ty {
        FeatureType::Float | FeatureType::Int => Ok(Input::number(x)),
        FeatureType::Bool if x == 0.0 || x == 1.0 => Ok(Input::boolean(x == 1.0)),
        FeatureType::Bool => Err(FieldError::new(field(), "a boolean feature takes 0 or 1")),
        FeatureType::Category => {
            if x.fract() == 0.0 && x >= 0.0 && (x as usize) < levels.len() {
                Ok(Input::text(levels[x as usize].clone()))
            } else {
                Err(FieldError::new(
                    field(),
                    format!(
                        "a category feature takes the index of its level (0 to {})",
                        levels.len().saturating_sub(1)
                    ),
                ))
            }
        }
    }
}

/// The rows of an infer request: one tensor per feature (by name, shape [N] or [N, 1]), or a
/// single [N, n_inputs] tensor in the contract's input order.
fn infer_rows(
    body: &Value,
    contract: &vigil_domain::FeatureContract,
    order: &[String],
) -> Result<Vec<PredictRequest>, FieldError> {
    let Value::Object(o) = body else {
        return Err(FieldError::new("$", "expected an inference request object"));
    };
    let inputs = o
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new("inputs", "missing or not an array"))?;
    if inputs.is_empty() {
        return Err(FieldError::new("inputs", "must hold at least one tensor"));
    }
    let tensors = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| read_tensor(t, i))
        .collect::<Result<Vec<_>, _>>()?;
    let width = order.len();
    if let [t] = tensors.as_slice()
        && t.shape.len() == 2
        && t.shape[1] == width
        && contract.find_feature(&t.name).is_none()
    {
        if !NUMERIC.contains(&t.datatype.as_str()) {
            return Err(FieldError::new(
                "inputs[0].datatype",
                "a matrix input must be numeric (FP32 or FP64)",
            ));
        }
        let features = order
            .iter()
            .enumerate()
            .map(|(j, name)| {
                contract.find_feature(name).ok_or_else(|| {
                    FieldError::new(format!("inputs[0].data[0][{j}]"), "no such contract input")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::with_capacity(t.shape[0]);
        for (r, chunk) in t.data.chunks(width.max(1)).enumerate() {
            let mut inputs = Inputs::new();
            for (j, v) in chunk.iter().enumerate() {
                let f = features[j];
                let field = || format!("inputs[0].data[{r}][{j}]");
                inputs.insert(order[j].clone(), numeric_input(v, f.ty, &f.levels, field)?);
            }
            rows.push(PredictRequest {
                inputs,
                ..Default::default()
            });
        }
        return Ok(rows);
    }
    let n = tensors[0].shape.first().copied().unwrap_or(0);
    let mut rows: Vec<PredictRequest> = (0..n).map(|_| PredictRequest::default()).collect();
    for (i, t) in tensors.iter().enumerate() {
        let shape_ok = matches!(t.shape.as_slice(), [m] if *m == n)
            || matches!(t.shape.as_slice(), [m, 1] if *m == n);
        if !shape_ok {
            return Err(FieldError::new(
                format!("inputs[{i}].shape"),
                format!(
                    "a feature tensor has shape [{n}] or [{n}, 1] (or send one [N, {width}] tensor in input order)"
                ),
            ));
        }
        let Some(f) = contract.find_feature(&t.name) else {
            return Err(FieldError::new(
                format!("inputs[{i}].name"),
                format!("`{}` is not a feature of the model's contract", t.name),
            ));
        };
        for (r, v) in t.data.iter().enumerate() {
            let field = || format!("inputs[{i}].data[{r}]");
            let input = match t.datatype.as_str() {
                "BYTES" => match v {
                    Value::String(s) => Input::text(s.clone()),
                    _ => {
                        return Err(FieldError::new(field(), "expected text in a BYTES tensor"));
                    }
                },
                "BOOL" => match v {
                    Value::Bool(b) => Input::boolean(*b),
                    _ => {
                        return Err(FieldError::new(
                            field(),
                            "expected booleans in a BOOL tensor",
                        ));
                    }
                },
                d if NUMERIC.contains(&d) => numeric_input(v, f.ty, &f.levels, field)?,
                _ => {
                    return Err(FieldError::new(
                        format!("inputs[{i}].datatype"),
                        "unsupported datatype (FP32, FP64, integers, BOOL or BYTES)",
                    ));
                }
            };
            rows[r].inputs.insert(t.name.clone(), input);
        }
    }
    Ok(rows)
}

/// `POST /v2/models/{name}/infer`.
pub async fn oip_infer(
    State(s): State<Arc<AppState>>,
    _p: Predictor,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let t0 = Instant::now();
    let resp = oip_infer_inner(&s, &name, &body).await;
    s.serving.metrics().request(
        "oip_infer",
        resp.status().as_u16(),
        t0.elapsed().as_secs_f64(),
    );
    resp
}

async fn oip_infer_inner(s: &AppState, name: &str, body: &[u8]) -> Response {
    let bad = |code: &str, e: FieldError| {
        oip_error(StatusCode::BAD_REQUEST, code, e.to_string(), Some(&e.field))
    };
    let v = match read_json(body) {
        Ok(v) => v,
        Err(e) => return bad("malformed_json", e),
    };
    let d = match s.serving.deployment(name).await {
        Ok(d) => d,
        Err(e) => return oip_service_error(&e),
    };
    let Some(active) = d.active.clone() else {
        return oip_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_production_release",
            format!("model `{name}` has no release in production"),
            None,
        );
    };
    let rows = match infer_rows(&v, active.scorer.contract(), &active.inputs) {
        Ok(r) if r.is_empty() => {
            return bad(
                "invalid_request",
                FieldError::new("inputs", "holds no rows"),
            );
        }
        Ok(r) => r,
        Err(e) => return bad("invalid_request", e),
    };
    let wanted: Option<Vec<String>> = match v.get("outputs") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => {
            let mut names = Vec::new();
            for (i, o) in a.iter().enumerate() {
                match o.get("name").and_then(Value::as_str) {
                    Some(n @ ("probability" | "decision" | "fallback" | "predict_proba")) => {
                        names.push(n.to_string())
                    }
                    _ => {
                        return bad(
                            "invalid_request",
                            FieldError::new(
                                format!("outputs[{i}].name"),
                                "unknown output (probability, decision, fallback, predict_proba)",
                            ),
                        );
                    }
                }
            }
            Some(names)
        }
        Some(_) => {
            return bad(
                "invalid_request",
                FieldError::new("outputs", "expected an array"),
            );
        }
    };
    let oip_id = v.get("id").and_then(Value::as_str).map(str::to_string);
    let rid = request_id();
    let context = match &oip_id {
        Some(id) => json!({ "oip_id": id }),
        None => json!({}),
    };
    let preds = match s.serving.predict(name, rows, "oip", &rid, context).await {
        Ok(p) => p,
        Err(e) => return oip_service_error(&e),
    };
    let n = preds.len();
    let release = preds
        .first()
        .map_or_else(|| active.id().to_string(), |p| p.release.to_string());
    let mut outputs = Vec::new();
    let mut add = |name: &str, datatype: &str, data: Vec<Value>| {
        if wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == name)) {
            outputs
                .push(json!({ "name": name, "datatype": datatype, "shape": [n, 1], "data": data }));
        }
    };
    add(
        "probability",
        "FP64",
        preds.iter().map(|p| json!(p.score)).collect(),
    );
    add(
        "decision",
        "BYTES",
        preds
            .iter()
            .map(|p| json!(p.decision.clone().unwrap_or_default()))
            .collect(),
    );
    add(
        "fallback",
        "BYTES",
        preds
            .iter()
            .map(|p| {
                json!(
                    p.fallback
                        .as_ref()
                        .map(|f| f.reason.clone())
                        .unwrap_or_default()
                )
            })
            .collect(),
    );
    // As scikit-learn runtimes (MLServer) answer it, when asked for by name: one column per
    // class, negative then positive.
    if wanted
        .as_ref()
        .is_some_and(|w| w.iter().any(|x| x == "predict_proba"))
    {
        let data: Vec<Value> = preds
            .iter()
            .flat_map(|p| [json!(p.score.map(|s| 1.0 - s)), json!(p.score)])
            .collect();
        outputs.push(
            json!({ "name": "predict_proba", "datatype": "FP64", "shape": [n, 2], "data": data }),
        );
    }
    let mut params = Map::new();
    params.insert("release".into(), json!(release));
    params.insert(
        "request_ids".into(),
        json!(
            preds
                .iter()
                .map(|p| p.request_id.clone())
                .collect::<Vec<_>>()
        ),
    );
    axum::Json(json!({
        "model_name": name,
        "model_version": release,
        "id": oip_id.unwrap_or(rid),
        "parameters": params,
        "outputs": outputs,
    }))
    .into_response()
}
