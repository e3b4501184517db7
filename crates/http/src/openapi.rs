//! The OpenAPI 3.1 document, generated from [`crate::routes::ROUTES`] so that it cannot
//! list an endpoint the router does not serve (a test checks each one).

use serde_json::{Map, Value, json};

use crate::routes::ROUTES;

fn schemas() -> Value {
    let s = |props: Value, required: &[&str]| json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false });
    json!({
        "Error": s(json!({
            "code": { "type": "string", "description": "stable error code" },
            "message": { "type": "string" },
            "request_id": { "type": "string" }
        }), &["code", "message", "request_id"]),
        "RollbackRequest": s(json!({ "reason": { "type": "string" }, "drill": { "type": "boolean", "default": false } }), &["reason"]),
        "SignOffRequest": s(json!({
            "role": { "type": "string", "enum": ["data-scientist", "clinical-reviewer", "governance", "operator", "auditor"] },
            "decision": { "type": "string", "enum": ["approved", "rejected"] },
            "comment": { "type": "string" }
        }), &["role", "decision"]),
        "ExceptionRequest": s(json!({
            "gate": { "type": "string" },
            "rationale": { "type": "string" },
            "expires_at": { "type": "string", "format": "date-time" }
        }), &["gate", "rationale", "expires_at"]),
        "PromotionRequest": s(json!({
            "to": { "type": "string", "enum": ["validated", "approved", "shadow", "production", "retired"] },
            "reason": { "type": "string" }
        }), &["to", "reason"]),
        "PredictRequest": {
            "description": "One row `{features, patient?, encounter?}`, or a batch `{rows: [row, …]}` answered as `{results: [...]}`. A feature value is a number, text (a category level), a boolean, or `{value, unit?, observed_at?, source?}` (unit in UCUM; observed_at RFC 3339).",
            "type": "object",
            "properties": {
                "features": { "type": "object", "additionalProperties": true },
                "patient": { "type": "string", "description": "pseudonymised before it is stored; never logged" },
                "encounter": { "type": "string", "description": "pseudonymised before it is stored; never logged" },
                "rows": { "type": "array", "items": { "type": "object" } }
            }
        },
        "InferRequest": {
            "description": "Open Inference Protocol v2 inference request",
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "inputs": { "type": "array", "items": { "type": "object", "properties": {
                    "name": { "type": "string" }, "shape": { "type": "array", "items": { "type": "integer" } },
                    "datatype": { "type": "string" }, "data": { "type": "array" } } } },
                "outputs": { "type": "array", "items": { "type": "object" } }
            },
            "required": ["inputs"]
        },
        "ReasonRequest": s(json!({ "reason": { "type": "string" } }), &["reason"]),
        "OutcomesRequest": s(json!({
            "key_kind": { "type": "string", "enum": ["encounter", "request"] },
            "outcomes": { "type": "array", "items": s(json!({
                "key": { "type": "string" },
                "label": { "type": "integer", "enum": [0, 1] },
                "observed_at": { "type": "string", "format": "date-time" }
            }), &["key", "label"]) }
        }), &["key_kind", "outcomes"]),
        "ReviewRequest": s(json!({
            "case": { "type": "integer", "minimum": 0 },
            "verdict": { "type": "string", "enum": ["plausible", "implausible", "unsafe"] },
            "comment": { "type": "string" }
        }), &["case", "verdict"]),
    })
}

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = Vec::new();
        for seg in r.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
            }
        }
        for q in r.query {
            params.push(json!({ "name": q, "in": "query", "required": false, "schema": { "type": "string" } }));
        }
        let err = json!({ "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
        let mut responses = Map::new();
        responses.insert(
            if r.method == "post" { "2XX" } else { "200" }.into(),
            json!({ "description": "success", "content": { "application/json": { "schema": {} } } }),
        );
        responses.insert("default".into(), err);
        let mut op = json!({
            "operationId": r.operation,
            "summary": r.summary,
            "parameters": params,
            "responses": responses,
        });
        if r.auth {
            op["security"] = json!([{ "bearer": [] }]);
        }
        if !r.roles.is_empty() {
            op["x-vigil-roles"] = json!(r.roles);
        }
        if let Some(b) = r.body {
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{b}") } } }
            });
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vigil API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Registry, evidence, gates, sign-offs, exceptions, promotions, the audit log and predictions of a Vigil instance; the Open Inference Protocol v2 under /v2; Prometheus metrics at /metrics."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "a token from `vigil user add`" } }
        }
    })
}
