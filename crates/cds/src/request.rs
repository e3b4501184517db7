//! A CDS Hooks 2.0 service request: parsed and checked before anything is done with it.
//!
//! The rules are the specification's: `hook`, `hookInstance` and `context` are required;
//! `fhirAuthorization` (when given) needs `fhirServer` and its own required fields
//! (`access_token`, `token_type` Bearer, `expires_in`, `scope`, `subject`); each hook's
//! required context fields must be there with the right JSON type. Errors name the field,
//! never a value from the request.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::pruned::{Pruned, PrunedByKey};

/// Largest request body accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// A request that cannot be served as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub code: &'static str,
    /// The offending field, as a JSON path (`context.patientId`).
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.field)
    }
}

impl std::error::Error for RequestError {}

fn err(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> RequestError {
    RequestError {
        code,
        field: field.into(),
        message: message.into(),
    }
}

/// The access token the EHR grants for its FHIR server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FhirAuthorization {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub scope: String,
    pub subject: String,
    #[serde(default)]
    pub patient: Option<String>,
}

/// A validated service request.
#[derive(Debug, Clone, PartialEq)]
pub struct CdsRequest {
    pub hook: String,
    pub hook_instance: String,
    pub fhir_server: Option<String>,
    pub fhir_authorization: Option<FhirAuthorization>,
    pub context: Map<String, Value>,
    /// Prefetch keys as sent, each resource with the members the FHIR mapping reads
    /// ([`crate::pruned::READ_MEMBERS`]); `null` values mean the EHR could not fetch them.
    pub prefetch: BTreeMap<String, Pruned>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    hook: Option<Value>,
    hook_instance: Option<Value>,
    fhir_server: Option<Value>,
    fhir_authorization: Option<Value>,
    context: Option<Value>,
    /// Parsed with only what the FHIR mapping reads (see [`Pruned`]).
    prefetch: Option<PrunedByKey>,
}

/// The JSON type a context field must have.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Array,
    Object,
}

/// Required context fields of the hooks Vigil offers.
fn required_context(hook: &str) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match hook {
        "patient-view" => &[("userId", Str), ("patientId", Str)],
        "order-select" => &[
            ("userId", Str),
            ("patientId", Str),
            ("selections", Array),
            ("draftOrders", Object),
        ],
        "order-sign" => &[("userId", Str), ("patientId", Str), ("draftOrders", Object)],
        "encounter-start" | "encounter-discharge" => {
            &[("userId", Str), ("patientId", Str), ("encounterId", Str)]
        }
        "appointment-book" => &[
            ("userId", Str),
            ("patientId", Str),
            ("appointments", Object),
        ],
        "order-dispatch" => &[
            ("patientId", Str),
            ("dispatchedOrders", Array),
            ("performer", Str),
        ],
        "medication-prescribe" => &[("userId", Str), ("patientId", Str), ("medications", Object)],
        _ => &[],
    }
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() > "http://".len() + 1
        && !s
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

impl CdsRequest {
    /// Parses a request body and checks it for the service's `hook`.
    pub fn parse(body: &[u8], service_hook: &str) -> Result<CdsRequest, RequestError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(err(
                "request_too_large",
                "",
                "the request is larger than 8 MiB",
            ));
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            err(
                "request_malformed",
                "",
                format!(
                    "the request is not a CDS Hooks request object (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let hook = match raw.hook {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(_) => return Err(err("field_invalid", "hook", "hook must be a string")),
            None => return Err(err("field_missing", "hook", "hook is required")),
        };
        if hook != service_hook {
            return Err(err(
                "hook_mismatch",
                "hook",
                format!("this service answers the {service_hook} hook"),
            ));
        }
        let hook_instance = match raw.hook_instance {
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => s,
            Some(_) => {
                return Err(err(
                    "field_invalid",
                    "hookInstance",
                    "hookInstance must be a non-empty string of at most 128 characters",
                ));
            }
            None => {
                return Err(err(
                    "field_missing",
                    "hookInstance",
                    "hookInstance is required",
                ));
            }
        };
        let fhir_server = match raw.fhir_server {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if is_http_url(&s) => Some(s.trim_end_matches('/').to_string()),
            Some(_) => {
                return Err(err(
                    "field_invalid",
                    "fhirServer",
                    "fhirServer must be the base URL of a FHIR server (http or https)",
                ));
            }
        };
        let fhir_authorization = match raw.fhir_authorization {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => {
                let a: FhirAuthorization = serde_json::from_value(v).map_err(|e| {
                    err(
                        "field_invalid",
                        "fhirAuthorization",
                        format!(
                            "fhirAuthorization needs access_token, token_type, expires_in, scope and subject: {}",
                            strip_value(&e.to_string())
                        ),
                    )
                })?;
                if !a.token_type.eq_ignore_ascii_case("bearer") {
                    return Err(err(
                        "field_invalid",
                        "fhirAuthorization.token_type",
                        "token_type must be Bearer",
                    ));
                }
                if a.access_token.is_empty() {
                    return Err(err(
                        "field_invalid",
                        "fhirAuthorization.access_token",
                        "access_token is empty",
                    ));
                }
                Some(a)
            }
            Some(_) => {
                return Err(err(
                    "field_invalid",
                    "fhirAuthorization",
                    "fhirAuthorization must be an object",
                ));
            }
        };
        if fhir_authorization.is_some() && fhir_server.is_none() {
            return Err(err(
                "field_missing",
                "fhirServer",
                "fhirServer is required when fhirAuthorization is given",
            ));
        }
        let context = match raw.context {
            Some(Value::Object(m)) => m,
            Some(_) => return Err(err("field_invalid", "context", "context must be an object")),
            None => return Err(err("field_missing", "context", "context is required")),
        };
        for (name, kind) in required_context(&hook) {
            let field = format!("context.{name}");
            let ok = match (context.get(*name), kind) {
                (None | Some(Value::Null), _) => {
                    return Err(err(
                        "field_missing",
                        field,
                        format!("the {hook} hook requires context.{name}"),
                    ));
                }
                (Some(Value::String(s)), Kind::Str) => !s.is_empty(),
                (Some(Value::Array(_)), Kind::Array) => true,
                (Some(Value::Object(_)), Kind::Object) => true,
                _ => false,
            };
            if !ok {
                let what = match kind {
                    Kind::Str => "a non-empty string",
                    Kind::Array => "an array",
                    Kind::Object => "an object (a FHIR Bundle)",
                };
                return Err(err(
                    "field_invalid",
                    field,
                    format!("context.{name} must be {what}"),
                ));
            }
        }
        let prefetch = match raw.prefetch {
            None | Some(PrunedByKey::Null) => BTreeMap::new(),
            Some(PrunedByKey::Object(m)) => m,
            Some(PrunedByKey::Other) => {
                return Err(err(
                    "field_invalid",
                    "prefetch",
                    "prefetch must be an object of FHIR resources by key",
                ));
            }
        };
        for (k, v) in &prefetch {
            let resource = v.get("resourceType").is_some_and(Pruned::is_string);
            if !v.is_null() && !resource {
                return Err(err(
                    "field_invalid",
                    format!("prefetch.{k}"),
                    "each prefetch value is a FHIR resource (with resourceType) or null",
                ));
            }
        }
        Ok(CdsRequest {
            hook,
            hook_instance,
            fhir_server,
            fhir_authorization,
            context,
            prefetch,
        })
    }

    /// A context field as a string.
    pub fn context_str(&self, name: &str) -> Option<&str> {
        self.context.get(name).and_then(Value::as_str)
    }

    /// `context.patientId`.
    pub fn patient_id(&self) -> Option<&str> {
        self.context_str("patientId")
    }

    /// `context.encounterId`.
    pub fn encounter_id(&self) -> Option<&str> {
        self.context_str("encounterId")
    }
}

/// serde messages may quote the offending value; keep only what names the field.
fn strip_value(msg: &str) -> String {
    match msg.find(": ") {
        Some(_) if msg.starts_with("invalid type") => "a field has the wrong type".into(),
        _ => match msg.split(" at line").next() {
            Some(s) if s.starts_with("missing field") => s.to_string(),
            _ => "a field is malformed".into(),
        },
    }
}

/// A feedback request (`POST /cds-services/{id}/feedback`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackItem {
    pub card: String,
    pub outcome: FeedbackOutcome,
    pub accepted_suggestions: Vec<String>,
    /// `system|code` of the override reason, if any.
    pub override_code: Option<String>,
    pub override_display: Option<String>,
    pub user_comment: Option<String>,
    pub outcome_timestamp: vigil_domain::Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackOutcome {
    Accepted,
    Overridden,
}

impl FeedbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackOutcome::Accepted => "accepted",
            FeedbackOutcome::Overridden => "overridden",
        }
    }
}

/// Parses a feedback body: `{"feedback": [{card, outcome, acceptedSuggestions?, overrideReason?, outcomeTimestamp}]}`.
pub fn parse_feedback(body: &[u8]) -> Result<Vec<FeedbackItem>, RequestError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        err(
            "request_malformed",
            "",
            format!(
                "the feedback is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Some(items) = v.get("feedback").and_then(Value::as_array) else {
        return Err(err(
            "field_missing",
            "feedback",
            "feedback must be an array",
        ));
    };
    if items.is_empty() || items.len() > 100 {
        return Err(err(
            "field_invalid",
            "feedback",
            "feedback holds 1 to 100 entries",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let f = |name: &str| format!("feedback[{i}].{name}");
        let card = it
            .get("card")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or_else(|| {
                err(
                    "field_missing",
                    f("card"),
                    "card (the card's uuid) is required",
                )
            })?;
        let outcome = match it.get("outcome").and_then(Value::as_str) {
            Some("accepted") => FeedbackOutcome::Accepted,
            Some("overridden") => FeedbackOutcome::Overridden,
            Some(_) => {
                return Err(err(
                    "field_invalid",
                    f("outcome"),
                    "outcome is accepted or overridden",
                ));
            }
            None => return Err(err("field_missing", f("outcome"), "outcome is required")),
        };
        let ts = it
            .get("outcomeTimestamp")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                err(
                    "field_missing",
                    f("outcomeTimestamp"),
                    "outcomeTimestamp is required",
                )
            })?;
        let outcome_timestamp = vigil_domain::Timestamp::parse(ts).map_err(|_| {
            err(
                "field_invalid",
                f("outcomeTimestamp"),
                "outcomeTimestamp is not an ISO 8601 instant",
            )
        })?;
        let accepted_suggestions = match it.get("acceptedSuggestions") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|s| {
                    s.get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            err(
                                "field_invalid",
                                f("acceptedSuggestions"),
                                "each accepted suggestion has an id",
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(err(
                    "field_invalid",
                    f("acceptedSuggestions"),
                    "acceptedSuggestions must be an array",
                ));
            }
        };
        let (mut override_code, mut override_display, mut user_comment) = (None, None, None);
        if let Some(r) = it.get("overrideReason").filter(|r| !r.is_null()) {
            if outcome != FeedbackOutcome::Overridden {
                return Err(err(
                    "field_invalid",
                    f("overrideReason"),
                    "overrideReason goes only with outcome overridden",
                ));
            }
            if let Some(c) = r.get("reason").filter(|c| !c.is_null()) {
                let code = c.get("code").and_then(Value::as_str);
                let system = c.get("system").and_then(Value::as_str);
                match (system, code) {
                    (Some(s), Some(c)) => override_code = Some(format!("{s}|{c}")),
                    _ => {
                        return Err(err(
                            "field_invalid",
                            f("overrideReason.reason"),
                            "the override reason is a Coding with system and code",
                        ));
                    }
                }
                override_display = c.get("display").and_then(Value::as_str).map(str::to_string);
            }
            user_comment = r
                .get("userComment")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(2000).collect());
        }
        out.push(FeedbackItem {
            card: card.to_string(),
            outcome,
            accepted_suggestions,
            override_code,
            override_display,
            user_comment,
            outcome_timestamp,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn data(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/cds-hooks")
            .join(name);
        std::fs::read(p).unwrap()
    }

    #[test]
    fn the_specification_patient_view_requests_are_accepted() {
        for f in ["v1__02_example.json", "v3ballot__02_example.json"] {
            let r = CdsRequest::parse(&data(f), "patient-view").unwrap();
            assert_eq!(r.patient_id(), Some("1288992"));
            assert!(r.fhir_authorization.is_some());
            assert_eq!(
                r.prefetch["patientToGreet"]
                    .get("resourceType")
                    .and_then(Pruned::as_str),
                Some("Patient")
            );
            let e = CdsRequest::parse(&data(f), "order-sign").unwrap_err();
            assert_eq!(e.code, "hook_mismatch");
        }
    }

    #[test]
    fn order_select_and_order_sign_contexts_are_accepted() {
        for (file, hook) in [
            ("hook-order-select__01_example-r4.json", "order-select"),
            ("hook-order-sign__01_example-r4.json", "order-sign"),
        ] {
            let ctx: Value = serde_json::from_slice(&data(file)).unwrap();
            let body = serde_json::json!({
                "hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                "context": ctx["context"],
            });
            let r = CdsRequest::parse(body.to_string().as_bytes(), hook).unwrap();
            assert_eq!(r.patient_id(), Some("1288992"));
            // Without draftOrders, the hook's required context is incomplete.
            let mut ctx2 = ctx["context"].clone();
            ctx2.as_object_mut().unwrap().remove("draftOrders");
            let body = serde_json::json!({"hook": hook, "hookInstance": "x", "context": ctx2});
            let e = CdsRequest::parse(body.to_string().as_bytes(), hook).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_str()),
                ("field_missing", "context.draftOrders")
            );
        }
    }

    #[test]
    fn the_specification_rules_are_enforced() {
        let base: Value = serde_json::from_slice(&data("v3ballot__02_example.json")).unwrap();
        type Edit = fn(&mut Value);
        let cases: [(Edit, &str, &str); 7] = [
            (
                |v| {
                    v.as_object_mut().unwrap().remove("hookInstance");
                },
                "field_missing",
                "hookInstance",
            ),
            (
                |v| {
                    v.as_object_mut().unwrap().remove("fhirServer");
                },
                "field_missing",
                "fhirServer",
            ),
            (
                |v| {
                    v["fhirAuthorization"]["token_type"] = "MAC".into();
                },
                "field_invalid",
                "fhirAuthorization.token_type",
            ),
            (
                |v| {
                    v["fhirAuthorization"]
                        .as_object_mut()
                        .unwrap()
                        .remove("subject");
                },
                "field_invalid",
                "fhirAuthorization",
            ),
            (
                |v| {
                    v["context"].as_object_mut().unwrap().remove("patientId");
                },
                "field_missing",
                "context.patientId",
            ),
            (
                |v| {
                    v["context"]["userId"] = 7.into();
                },
                "field_invalid",
                "context.userId",
            ),
            (
                |v| {
                    v["prefetch"]["x"] = "Patient/1".into();
                },
                "field_invalid",
                "prefetch.x",
            ),
        ];
        for (edit, code, field) in cases {
            let mut v = base.clone();
            edit(&mut v);
            let e = CdsRequest::parse(v.to_string().as_bytes(), "patient-view").unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (code, field));
            assert!(!e.message.contains("some-opaque"), "{e}");
        }
        assert_eq!(
            CdsRequest::parse(b"[1,2", "patient-view").unwrap_err().code,
            "request_malformed"
        );
    }

    #[test]
    fn the_specification_feedback_examples_are_accepted() {
        let a = parse_feedback(&data("v3ballot__25_example-suggestion-accepted.json")).unwrap();
        assert_eq!(a[0].outcome, FeedbackOutcome::Accepted);
        assert_eq!(
            a[0].accepted_suggestions,
            ["e56e1945-20b3-4393-8503-a1a20fd73152"]
        );
        let b = parse_feedback(&data(
            "v3ballot__26_example-overridden-guidance-without-overridereason.json",
        ))
        .unwrap();
        assert_eq!(b[0].outcome, FeedbackOutcome::Overridden);
        assert_eq!(b[0].override_code, None);
        let c = parse_feedback(&data(
            "v3ballot__27_example-overridden-guidance-with-overridereason.json",
        ))
        .unwrap();
        assert_eq!(
            c[0].override_code.as_deref(),
            Some("https://example.com/cds-hooks/override-reason-system|d7ecf885")
        );
        assert_eq!(
            c[0].user_comment.as_deref(),
            Some("A comment entered by the clinician.")
        );
        assert!(parse_feedback(b"{\"feedback\": [{\"card\": \"x\", \"outcome\": \"maybe\", \"outcomeTimestamp\": \"2020-01-01\"}]}").is_err());
    }
}
