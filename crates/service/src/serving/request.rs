//! Reading a prediction request's JSON: named feature values (numbers, category text,
//! booleans, or `{value, unit, observed_at, source}` objects) and the patient and encounter
//! identifiers. Every refusal names the offending field by its path and never quotes a value.

use serde_json::{Map, Value};
use vigil_domain::Timestamp;
use vigil_inference::{Input, InputValue, Inputs};

/// One row to score.
#[derive(Debug, Clone, Default)]
pub struct PredictRequest {
    pub inputs: Inputs,
    /// Raw identifiers; pseudonymised before anything is stored, never logged.
    pub patient: Option<String>,
    pub encounter: Option<String>,
}

/// A request that cannot be read: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// JSON path of the offending field (`features.temperature.unit`, `rows[2].patient`, `$`).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn optional_text(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(FieldError::new(
            format!("{path}.{key}"),
            format!("expected text, got {}", kind(v)),
        )),
    }
}

fn scalar(v: &Value, path: &str) -> Result<InputValue, FieldError> {
    match v {
        Value::Number(n) => n.as_f64().map(InputValue::Number).ok_or_else(|| {
            FieldError::new(path, "the number is not representable as a 64-bit float")
        }),
        Value::String(s) => Ok(InputValue::Text(s.clone())),
        Value::Bool(b) => Ok(InputValue::Bool(*b)),
        other => Err(FieldError::new(
            path,
            format!("expected a number, text or a boolean, got {}", kind(other)),
        )),
    }
}

/// One feature's value: a scalar, or an object with `value` and optional `unit`,
/// `observed_at` (RFC 3339 time) and `source`. `null` means not supplied.
pub fn parse_input(v: &Value, path: &str) -> Result<Option<Input>, FieldError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => {
            for k in o.keys() {
                if !matches!(k.as_str(), "value" | "unit" | "observed_at" | "source") {
                    return Err(FieldError::new(
                        format!("{path}.{k}"),
                        "unknown field (expected value, unit, observed_at, source)",
                    ));
                }
            }
            let value = match o.get("value") {
                None | Some(Value::Null) => return Ok(None),
                Some(v) => scalar(v, &format!("{path}.value"))?,
            };
            let observed_at = match optional_text(o, "observed_at", path)? {
                None => None,
                Some(s) => Some(Timestamp::parse(&s).map_err(|_| {
                    FieldError::new(
                        format!("{path}.observed_at"),
                        "not a time: expected YYYY-MM-DD or RFC 3339 such as 2026-01-31T08:00:00Z",
                    )
                })?),
            };
            Ok(Some(Input {
                value,
                unit: optional_text(o, "unit", path)?,
                observed_at,
                source: optional_text(o, "source", path)?,
            }))
        }
        other => Ok(Some(Input {
            value: scalar(other, path)?,
            unit: None,
            observed_at: None,
            source: None,
        })),
    }
}

/// One row: `{"features": {...}, "patient": "…", "encounter": "…"}`; `prefix` is the path
/// of the row in the body (empty for a single row).
pub fn parse_row(v: &Value, prefix: &str) -> Result<PredictRequest, FieldError> {
    let at = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    let Value::Object(o) = v else {
        return Err(FieldError::new(
            if prefix.is_empty() { "$" } else { prefix },
            format!("expected an object, got {}", kind(v)),
        ));
    };
    for k in o.keys() {
        if !matches!(k.as_str(), "features" | "patient" | "encounter") {
            return Err(FieldError::new(
                at(k),
                "unknown field (expected features, patient, encounter)",
            ));
        }
    }
    let features = match o.get("features") {
        Some(Value::Object(f)) => f,
        Some(other) => {
            return Err(FieldError::new(
                at("features"),
                format!("expected an object of feature values, got {}", kind(other)),
            ));
        }
        None => return Err(FieldError::new(at("features"), "missing")),
    };
    let mut inputs = Inputs::new();
    for (name, value) in features {
        let path = format!("{}.{name}", at("features"));
        if let Some(input) = parse_input(value, &path)? {
            inputs.insert(name.clone(), input);
        }
    }
    let id = |k: &str| -> Result<Option<String>, FieldError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => {
                Err(FieldError::new(at(k), "must not be empty"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(FieldError::new(
                at(k),
                format!("expected text, got {}", kind(other)),
            )),
        }
    };
    Ok(PredictRequest {
        inputs,
        patient: id("patient")?,
        encounter: id("encounter")?,
    })
}

/// A predict body: one row, or `{"rows": [ … ]}` (then `batch` is true).
pub fn parse_body(v: &Value) -> Result<(Vec<PredictRequest>, bool), FieldError> {
    if let Value::Object(o) = v
        && let Some(rows) = o.get("rows")
    {
        if o.len() > 1 {
            let other = o.keys().find(|k| *k != "rows").cloned().unwrap_or_default();
            return Err(FieldError::new(other, "a batch body holds only `rows`"));
        }
        let Value::Array(rows) = rows else {
            return Err(FieldError::new(
                "rows",
                format!("expected an array of rows, got {}", kind(rows)),
            ));
        };
        if rows.is_empty() {
            return Err(FieldError::new("rows", "must hold at least one row"));
        }
        let parsed = rows
            .iter()
            .enumerate()
            .map(|(i, r)| parse_row(r, &format!("rows[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((parsed, true));
    }
    Ok((vec![parse_row(v, "")?], false))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_scalars_objects_and_ids() {
        let (rows, batch) = parse_body(&json!({
            "features": {"age": 70, "sex": "male", "flag": true, "lactate": null,
                "temperature": {"value": 101.3, "unit": "[degF]", "observed_at": "2026-01-01T00:00:00Z"}},
            "patient": "p1"
        }))
        .unwrap();
        assert!(!batch);
        let r = &rows[0];
        assert_eq!(r.inputs.len(), 4, "null is not supplied");
        assert_eq!(r.inputs["temperature"].unit.as_deref(), Some("[degF]"));
        assert!(r.inputs["temperature"].observed_at.is_some());
        assert_eq!(r.patient.as_deref(), Some("p1"));
        assert_eq!(r.encounter, None);
    }

    #[test]
    fn names_the_offending_field() {
        let e = parse_body(&json!({"features": {"t": {"value": 1, "unit": 3}}})).unwrap_err();
        assert_eq!(e.field, "features.t.unit");
        let e =
            parse_body(&json!({"rows": [{"features": {}}, {"features": {"a": [1]}}]})).unwrap_err();
        assert_eq!(e.field, "rows[1].features.a");
        let e = parse_body(&json!({"feature": {}})).unwrap_err();
        assert_eq!(e.field, "feature");
        let e = parse_body(&json!([1])).unwrap_err();
        assert_eq!(e.field, "$");
        let e = parse_body(&json!({"features": {"t": {"value": 1, "observed_at": "yesterday"}}}))
            .unwrap_err();
        assert_eq!(e.field, "features.t.observed_at");
        assert!(!e.message.contains("yesterday"), "{}", e.message);
    }
}
