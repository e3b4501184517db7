//! Cards: what the clinician sees. A risk card carries the score, what it means, the inputs
//! that moved it most with their values and times, and the intended use's limitations; its
//! `source` names Vigil, the model and the release and links to the model's evidence page.
//! A fallback card says the risk could not be computed and why. Every card has a `uuid`.

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use vigil_domain::{FeatureContract, IntendedUse, ReleaseId, SuggestAt};
use vigil_inference::contract::{FeatureOutcome, FeatureStatus, Scored};

/// Summaries must be shorter than this (the specification's limit).
pub const MAX_SUMMARY: usize = 140;
/// How many contributing inputs a card lists.
pub const TOP_INPUTS: usize = 5;

/// The card's urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    Info,
    Warning,
    Critical,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::Info => "info",
            Indicator::Warning => "warning",
            Indicator::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Indicator> {
        match s {
            "info" => Some(Indicator::Info),
            "warning" => Some(Indicator::Warning),
            "critical" => Some(Indicator::Critical),
            _ => None,
        }
    }
}

/// Where a score falls among the release's ascending thresholds: below the first, no alert
/// (`None`); at or above the last of two or more, critical; otherwise warning.
pub fn indicator(score: f64, thresholds: &[f64]) -> Option<Indicator> {
    let above = thresholds.iter().filter(|t| score >= **t).count();
    match (above, thresholds.len()) {
        (0, _) => None,
        (a, n) if n >= 2 && a == n => Some(Indicator::Critical),
        _ => Some(Indicator::Warning),
    }
}

/// What a card is about.
#[derive(Debug, Clone, Copy)]
pub struct CardContext<'a> {
    pub model: &'a str,
    pub release: &'a ReleaseId,
    pub intended_use: &'a IntendedUse,
    pub contract: &'a FeatureContract,
    /// The public base URL of this Vigil (no trailing slash).
    pub base_url: &'a str,
    pub service_id: &'a str,
    /// The hook's `context`, for the placeholders of suggested resources.
    pub hook_context: &'a Map<String, Value>,
}

impl CardContext<'_> {
    fn title(&self) -> String {
        self.intended_use
            .title
            .clone()
            .unwrap_or_else(|| self.model.to_string())
    }

    fn source(&self) -> Value {
        json!({
            "label": format!("Vigil · {} · release {}", self.model, short(self.release)),
            "url": format!("{}/models/{}/evidence?release={}", self.base_url, self.model, self.release),
        })
    }

    fn override_reasons(&self) -> Value {
        Value::Array(
            self.intended_use
                .override_reasons
                .iter()
                .map(|r| {
                    json!({
                        "code": slug(r),
                        "system": format!("{}/cds-services/{}/override-reasons", self.base_url, self.service_id),
                        "display": r,
                    })
                })
                .collect(),
        )
    }

    /// The intended use's suggestions offered at `ind`, each with a uuid derived from the
    /// card's (so that `acceptedSuggestions` in feedback can be traced to the card) and its
    /// resources' `{{context.…}}` placeholders filled from the hook's context.
    fn suggestions(&self, ind: Indicator, card_uuid: &str) -> Option<Value> {
        let all = &self.intended_use.cds.as_ref()?.suggestions;
        let offered: Vec<Value> = all
            .iter()
            .enumerate()
            .filter(|(_, s)| match s.at {
                SuggestAt::Warning => ind >= Indicator::Warning,
                SuggestAt::Critical => ind >= Indicator::Critical,
            })
            .map(|(i, s)| {
                let actions: Vec<Value> = s
                    .actions
                    .iter()
                    .map(|a| {
                        let mut v = json!({"type": a.kind.as_str(), "description": a.description});
                        if let Some(r) = &a.resource {
                            v["resource"] = fill_placeholders(r, self.hook_context);
                        }
                        if let Some(id) = &a.resource_id {
                            v["resourceId"] = json!(fill_text(id, self.hook_context));
                        }
                        v
                    })
                    .collect();
                let mut v = json!({
                    "label": s.label,
                    "uuid": suggestion_uuid(card_uuid, i),
                    "actions": actions,
                });
                if s.recommended {
                    v["isRecommended"] = json!(true);
                }
                v
            })
            .collect();
        (!offered.is_empty()).then_some(Value::Array(offered))
    }

    fn links(&self) -> Option<Value> {
        let links = &self.intended_use.cds.as_ref()?.links;
        if links.is_empty() {
            return None;
        }
        Some(Value::Array(
            links
                .iter()
                .map(|l| json!({"label": l.label, "url": l.url, "type": "absolute"}))
                .collect(),
        ))
    }
}

/// The uuid of the `index`-th suggestion of the card `card_uuid`: SHA-256 of both, shaped
/// as an RFC 9562 version 8 UUID. The same card always offers the same ids.
pub fn suggestion_uuid(card_uuid: &str, index: usize) -> String {
    let d = Sha256::new()
        .chain_update(card_uuid.as_bytes())
        .chain_update(b"/suggestion/")
        .chain_update(index.to_string().as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `{{context.patientId}}`, `{{context.encounterId}}`, `{{context.userId}}` (any string key of
/// the hook's context) replaced in a string; a key the context lacks is left as written.
fn fill_text(s: &str, context: &Map<String, Value>) -> String {
    let mut out = s.to_string();
    if out.contains("{{context.") {
        for (key, v) in context {
            if let Some(v) = v.as_str() {
                out = out.replace(&format!("{{{{context.{key}}}}}"), v);
            }
        }
    }
    out
}

fn fill_placeholders(v: &Value, context: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => Value::String(fill_text(s, context)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_placeholders(x, context)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_placeholders(x, context)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn short(r: &ReleaseId) -> String {
    r.to_string().chars().take(12).collect()
}

/// A stable code for an override reason: its words, lowercased and joined by `-`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for w in s.split(|c: char| !c.is_ascii_alphanumeric()) {
        if w.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&w.to_ascii_lowercase());
        if out.len() >= 48 {
            break;
        }
    }
    out
}

fn clip_summary(s: String) -> String {
    if s.chars().count() < MAX_SUMMARY {
        return s;
    }
    let mut out: String = s.chars().take(MAX_SUMMARY - 2).collect();
    out.push('…');
    out
}

fn pct(p: f64) -> String {
    format!("{:.0}%", p * 100.0)
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn describe(o: &FeatureOutcome, contract: &FeatureContract) -> String {
    let f = contract.find_feature(&o.name);
    let unit = f.and_then(|f| f.unit.as_deref()).filter(|u| *u != "1");
    match (o.value, f) {
        (Some(v), Some(f)) if !f.levels.is_empty() => f
            .levels
            .get(v as usize)
            .cloned()
            .unwrap_or_else(|| fmt_value(v)),
        (Some(v), _) => match unit {
            Some(u) => format!("{} {u}", fmt_value(v)),
            None => fmt_value(v),
        },
        (None, _) => "not available".into(),
    }
}

fn when(o: &FeatureOutcome) -> String {
    match o.observed_at {
        // `YYYY-MM-DDTHH:MM` in UTC is what a clinician needs.
        Some(t) => {
            let s = t.to_string();
            format!("{} {} UTC", &s[..10], &s[11..16])
        }
        None => "—".into(),
    }
}

/// A risk card for a score that reached an alert indicator (or any score, when `indicator`
/// is given by the caller, e.g. info past the daily budget).
pub fn risk_card(
    ctx: &CardContext<'_>,
    scored: &Scored,
    thresholds: &[f64],
    ind: Indicator,
    uuid: &str,
) -> Value {
    let title = ctx.title();
    let level = match ind {
        Indicator::Critical => "very high risk",
        Indicator::Warning => "raised risk",
        Indicator::Info => "risk",
    };
    let summary = clip_summary(format!("{title}: {level} ({})", pct(scored.score)));
    let mut d = String::new();
    d.push_str(&format!("**Estimated risk: {}**", pct(scored.score)));
    if let Some(t) = thresholds.first() {
        d.push_str(&format!(" (alert threshold {})", pct(*t)));
    }
    d.push_str("\n\n");
    d.push_str(ctx.intended_use.output.trim());
    d.push_str("\n\n");
    // Top contributing inputs, by the size of their share of the score.
    let mut contrib: Vec<_> = scored.explanation.iter().collect();
    contrib.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    let outcomes = &scored.assembled.features;
    if !contrib.is_empty() {
        d.push_str("**Inputs that raised or lowered the risk most**\n\n| Input | Value | Observed | Effect |\n|---|---|---|---|\n");
        for c in contrib.iter().take(TOP_INPUTS) {
            let Some(o) = outcomes.iter().find(|o| o.name == c.feature) else {
                continue;
            };
            d.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                md_escape(&o.name),
                md_escape(&describe(o, ctx.contract)),
                when(o),
                if c.contribution >= 0.0 {
                    "raises"
                } else {
                    "lowers"
                }
            ));
        }
        d.push('\n');
    } else {
        d.push_str("**Inputs**\n\n| Input | Value | Observed |\n|---|---|---|\n");
        for o in outcomes.iter().take(TOP_INPUTS) {
            d.push_str(&format!(
                "| {} | {} | {} |\n",
                md_escape(&o.name),
                md_escape(&describe(o, ctx.contract)),
                when(o)
            ));
        }
        d.push('\n');
    }
    let filled: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == FeatureStatus::Filled)
        .map(|o| {
            format!(
                "{} (not available; the approved value {} was used)",
                o.name,
                describe(o, ctx.contract)
            )
        })
        .collect();
    if !filled.is_empty() {
        d.push_str(&format!("**Filled inputs:** {}\n\n", filled.join("; ")));
    }
    d.push_str("**Limitations**\n\n");
    for l in &ctx.intended_use.limitations {
        d.push_str(&format!("- {}\n", l.trim()));
    }
    d.push_str(&format!("\n_{}_\n", ctx.intended_use.when_uncertain.trim()));
    let mut card = json!({
        "uuid": uuid,
        "summary": summary,
        "indicator": ind.as_str(),
        "detail": d,
        "source": ctx.source(),
    });
    let reasons = ctx.override_reasons();
    if reasons.as_array().is_some_and(|a| !a.is_empty()) {
        card["overrideReasons"] = reasons;
    }
    if let Some(sg) = ctx.suggestions(ind, uuid) {
        card["suggestions"] = sg;
        card["selectionBehavior"] = json!("any");
    }
    if let Some(l) = ctx.links() {
        card["links"] = l;
    }
    card
}

/// An info card saying why no risk could be computed. `reason` must not quote patient values.
pub fn fallback_card(
    ctx: &CardContext<'_>,
    reason: &str,
    features: &[String],
    uuid: &str,
) -> Value {
    let title = ctx.title();
    let summary = clip_summary(format!("{title}: risk not computed"));
    let mut d = format!("**No risk estimate is shown.** {}\n\n", reason.trim());
    if !features.is_empty() {
        d.push_str(&format!("Inputs concerned: {}.\n\n", features.join(", ")));
    }
    d.push_str(ctx.intended_use.when_unavailable.trim());
    d.push('\n');
    let mut card = json!({
        "uuid": uuid,
        "summary": summary,
        "indicator": "info",
        "detail": d,
        "source": ctx.source(),
    });
    if let Some(l) = ctx.links() {
        card["links"] = l;
    }
    card
}

/// A FHIR OperationOutcome for a 412 (or another error) answer.
pub fn operation_outcome(
    code: &str,
    text: &str,
    diagnostics: &str,
    expression: &[String],
) -> Value {
    let mut issue = json!({
        "severity": "error",
        "code": code,
        "details": {"text": text},
        "diagnostics": diagnostics,
    });
    if !expression.is_empty() {
        issue["expression"] = json!(expression);
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue]})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use vigil_inference::contract::{Assembled, Contribution};

    #[test]
    fn indicators_follow_the_thresholds() {
        assert_eq!(indicator(0.1, &[0.2]), None);
        assert_eq!(indicator(0.2, &[0.2]), Some(Indicator::Warning));
        assert_eq!(indicator(0.3, &[0.2, 0.5]), Some(Indicator::Warning));
        assert_eq!(indicator(0.5, &[0.2, 0.5]), Some(Indicator::Critical));
        assert_eq!(indicator(0.9, &[]), None);
        assert!(Indicator::Critical > Indicator::Warning);
    }

    #[test]
    fn a_risk_card_has_everything_the_clinician_needs() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deterioration");
        let iu = IntendedUse::from_toml(
            &std::fs::read_to_string(root.join("intended-use.toml")).unwrap(),
        )
        .unwrap();
        let contract = FeatureContract::from_toml(
            &std::fs::read_to_string(root.join("contract.toml")).unwrap(),
        )
        .unwrap();
        let release = ReleaseId::from_digest(vigil_domain::Digest::of(b"r"));
        let ctx = CardContext {
            model: "deterioration",
            release: &release,
            intended_use: &iu,
            contract: &contract,
            base_url: "https://vigil.example.org",
            service_id: "deterioration",
            hook_context: &Map::new(),
        };
        let o = |name: &str, v: f64, status| FeatureOutcome {
            name: name.into(),
            value: Some(v),
            status,
            cause: None,
            reason: None,
            observed_at: Some(vigil_domain::Timestamp::parse("2026-01-01T08:30:00Z").unwrap()),
            source: None,
        };
        let scored = Scored {
            score: 0.42,
            assembled: Assembled {
                row: vec![],
                features: vec![
                    o("heart_rate", 131.1, FeatureStatus::Present),
                    o("sex", 1.0, FeatureStatus::Present),
                    o("lactate", 1.0, FeatureStatus::Filled),
                ],
                unknown_inputs: vec![],
            },
            explanation: vec![
                Contribution {
                    feature: "sex".into(),
                    value: Some(1.0),
                    contribution: 0.1,
                },
                Contribution {
                    feature: "heart_rate".into(),
                    value: Some(131.1),
                    contribution: 0.9,
                },
            ],
        };
        let c = risk_card(&ctx, &scored, &[0.2, 0.5], Indicator::Warning, "u-1");
        assert_eq!(c["uuid"], "u-1");
        assert_eq!(c["indicator"], "warning");
        let summary = c["summary"].as_str().unwrap();
        assert!(
            summary.chars().count() < MAX_SUMMARY && summary.contains("42%"),
            "{summary}"
        );
        let d = c["detail"].as_str().unwrap();
        assert!(
            d.contains("| heart_rate | 131.1 /min | 2026-01-01 08:30 UTC | raises |"),
            "{d}"
        );
        assert!(d.find("heart_rate").unwrap() < d.find("| sex").unwrap());
        assert!(d.contains("| sex | male |"));
        assert!(d.contains("Filled inputs"));
        assert!(d.contains("Not validated in pregnancy"));
        assert!(
            c["source"]["label"]
                .as_str()
                .unwrap()
                .contains("deterioration")
        );
        assert!(
            c["source"]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://vigil.example.org/models/deterioration/evidence")
        );
        assert!(c.get("suggestions").is_none(), "the example defines none");
        assert_eq!(c["overrideReasons"].as_array().unwrap().len(), 6);
        assert_eq!(
            c["overrideReasons"][0]["code"],
            "already-under-review-by-the-rapid-response-team"
        );
        let f = fallback_card(
            &ctx,
            "A required input is missing.",
            &["heart_rate".into()],
            "u-2",
        );
        assert_eq!(f["indicator"], "info");
        assert!(f["detail"].as_str().unwrap().contains("heart_rate"));
        let long = clip_summary("x".repeat(300));
        assert!(long.chars().count() < MAX_SUMMARY);
    }

    #[test]
    fn suggestions_are_offered_at_their_indicator_with_the_context_filled_in() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deterioration");
        let text = std::fs::read_to_string(root.join("intended-use.toml")).unwrap()
            + r#"
[cds]
[[cds.suggestions]]
label = "Measure lactate now"
[[cds.suggestions.actions]]
type = "create"
description = "Venous lactate, urgent"
resource = { resourceType = "ServiceRequest", status = "draft", intent = "proposal", code = { coding = [{ system = "http://loinc.org", code = "2524-7" }] }, subject = { reference = "Patient/{{context.patientId}}" }, encounter = { reference = "Encounter/{{context.encounterId}}" }, note = [{ text = "for {{context.missingKey}}" }] }

[[cds.suggestions]]
label = "Call the rapid response team"
at = "critical"
recommended = true
[[cds.suggestions.actions]]
type = "delete"
description = "Withdraw the routine review request"
resource_id = "ServiceRequest/routine-{{context.patientId}}"
"#;
        let iu = IntendedUse::from_toml(&text).unwrap();
        let contract = FeatureContract::from_toml(
            &std::fs::read_to_string(root.join("contract.toml")).unwrap(),
        )
        .unwrap();
        let release = ReleaseId::from_digest(vigil_domain::Digest::of(b"r"));
        let hook_context: Map<String, Value> = serde_json::from_value(json!({
            "patientId": "1288992", "encounterId": "89284", "userId": "Practitioner/example"
        }))
        .unwrap();
        let ctx = CardContext {
            model: "deterioration",
            release: &release,
            intended_use: &iu,
            contract: &contract,
            base_url: "https://vigil.example.org",
            service_id: "deterioration",
            hook_context: &hook_context,
        };
        let scored = Scored {
            score: 0.7,
            assembled: Assembled {
                row: vec![],
                features: vec![],
                unknown_inputs: vec![],
            },
            explanation: vec![],
        };
        let warning = risk_card(&ctx, &scored, &[0.2, 0.5], Indicator::Warning, "card-w");
        let sg = warning["suggestions"].as_array().unwrap();
        assert_eq!(
            sg.len(),
            1,
            "the critical-only suggestion is not offered: {warning}"
        );
        assert_eq!(warning["selectionBehavior"], "any");
        let a = &sg[0]["actions"][0];
        assert_eq!(a["type"], "create");
        assert_eq!(a["resource"]["subject"]["reference"], "Patient/1288992");
        assert_eq!(a["resource"]["encounter"]["reference"], "Encounter/89284");
        assert_eq!(
            a["resource"]["note"][0]["text"], "for {{context.missingKey}}",
            "a key the context lacks stays as written"
        );
        assert_eq!(a["resource"]["code"]["coding"][0]["code"], "2524-7");
        assert!(sg[0].get("isRecommended").is_none());

        let critical = risk_card(&ctx, &scored, &[0.2, 0.5], Indicator::Critical, "card-c");
        let sg = critical["suggestions"].as_array().unwrap();
        assert_eq!(sg.len(), 2);
        assert_eq!(sg[1]["isRecommended"], true);
        assert_eq!(
            sg[1]["actions"][0]["resourceId"],
            "ServiceRequest/routine-1288992"
        );
        // Ids: UUID-shaped, distinct per suggestion and per card, and reproducible.
        let id = sg[0]["uuid"].as_str().unwrap();
        assert_eq!(id, suggestion_uuid("card-c", 0));
        assert_ne!(id, suggestion_uuid("card-w", 0));
        assert_ne!(id, sg[1]["uuid"].as_str().unwrap());
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "8", "version 8");

        let info = risk_card(&ctx, &scored, &[0.2, 0.5], Indicator::Info, "card-i");
        assert!(
            info.get("suggestions").is_none(),
            "no suggestion on an info card"
        );
        let fallback = fallback_card(&ctx, "missing", &[], "card-f");
        assert!(fallback.get("suggestions").is_none());
    }
}
