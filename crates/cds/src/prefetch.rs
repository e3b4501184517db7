//! Prefetch templates generated from a feature contract's FHIR mappings, and their
//! resolution against a request's context into FHIR search URLs.
//!
//! One template `patient` (`Patient/{{context.patientId}}`) when any feature reads the Patient;
//! one `Observation?patient={{context.patientId}}&code=…` per distinct set of codes (features
//! reading components of one panel share it), keyed by the first feature's name. A template
//! is *required* when a feature it feeds would make the model abstain without it.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_domain::{FeatureContract, FeatureRole, MissingPolicy};

/// One prefetch template and the features it feeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    pub key: String,
    /// The FHIR query with prefetch tokens, as discovery publishes it.
    pub query: String,
    pub features: Vec<String>,
    /// Without this data some feature would make the model abstain.
    pub required: bool,
}

/// The templates for `contract`, in contract order.
pub fn templates(contract: &FeatureContract) -> Vec<Template> {
    let mut out: Vec<Template> = Vec::new();
    let mut by_query: BTreeMap<String, usize> = BTreeMap::new();
    for f in contract.inputs() {
        let Some(m) = &f.fhir else { continue };
        let required = f.role == FeatureRole::Required || f.missing == MissingPolicy::Abstain;
        let (key, query) = match m.resource.as_str() {
            "Patient" => (
                "patient".to_string(),
                "Patient/{{context.patientId}}".to_string(),
            ),
            _ => (
                f.name.replace('.', "_"),
                format!(
                    "Observation?patient={{{{context.patientId}}}}&code={}",
                    m.codes.join(",")
                ),
            ),
        };
        match by_query.get(&query) {
            Some(&i) => {
                out[i].features.push(f.name.clone());
                out[i].required |= required;
            }
            None => {
                by_query.insert(query.clone(), out.len());
                out.push(Template {
                    key,
                    query,
                    features: vec![f.name.clone()],
                    required,
                });
            }
        }
    }
    out
}

/// The `prefetch` object of a discovery entry.
pub fn discovery_prefetch(templates: &[Template]) -> serde_json::Map<String, serde_json::Value> {
    templates
        .iter()
        .map(|t| (t.key.clone(), serde_json::Value::String(t.query.clone())))
        .collect()
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Resolves a template for a context: `{{context.X}}` replaced by the context's (URL-encoded)
/// value, and the query's values encoded. `None` when a token has no value in the context.
pub fn resolve(
    query: &str,
    context: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let mut out = String::with_capacity(query.len() + 32);
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let token = after[..end].trim();
        let name = token.strip_prefix("context.")?;
        let v = context.get(name)?.as_str()?;
        out.push_str(&encode_component(v));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    // `|` in code tokens is not allowed unencoded in a URL query.
    Some(out.replace('|', "%7C"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn templates_follow_the_contract() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/deterioration/contract.toml");
        let c = FeatureContract::from_toml(&std::fs::read_to_string(p).unwrap()).unwrap();
        let t = templates(&c);
        let keys: Vec<&str> = t.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "patient",
                "heart_rate",
                "resp_rate",
                "temperature",
                "spo2",
                "sbp",
                "lactate",
                "creatinine",
                "wbc"
            ]
        );
        assert_eq!(t[0].features, ["age", "sex"]);
        assert_eq!(
            t[4].query,
            "Observation?patient={{context.patientId}}&code=http://loinc.org|2708-6,http://loinc.org|59408-5"
        );
        // Lactate is optional with a fill value: its data is not required.
        assert!(!t[6].required);
        assert!(t[1].required);
        let ctx = serde_json::json!({"patientId": "a b/1"});
        assert_eq!(
            resolve(&t[4].query, ctx.as_object().unwrap()).unwrap(),
            "Observation?patient=a%20b/1&code=http://loinc.org%7C2708-6,http://loinc.org%7C59408-5"
        );
        assert_eq!(
            resolve("Patient/{{context.userId}}", ctx.as_object().unwrap()),
            None
        );
    }
}
