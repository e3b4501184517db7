//! Models: a named clinical use with its intended use, risk tier and owners.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ModelName, UserName};
use crate::time::{Duration, Timestamp};

/// How much harm a wrong output could do; higher tiers demand more evidence (gate policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct RiskTier(u8);

impl RiskTier {
    pub fn new(n: u8) -> Result<RiskTier> {
        if (1..=4).contains(&n) {
            Ok(RiskTier(n))
        } else {
            Err(Error::invalid(format!(
                "risk tier {n} does not exist: tiers run from 1 (lowest risk) to 4 (highest)"
            )))
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for RiskTier {
    type Error = Error;
    fn try_from(n: u8) -> Result<Self> {
        RiskTier::new(n)
    }
}

impl From<RiskTier> for u8 {
    fn from(t: RiskTier) -> u8 {
        t.0
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tier {}", self.0)
    }
}

/// The CDS Hooks this model can serve.
pub const KNOWN_HOOKS: &[&str] = &[
    "patient-view",
    "order-select",
    "order-sign",
    "encounter-start",
    "encounter-discharge",
    "appointment-book",
    "order-dispatch",
    "medication-prescribe",
];

/// What the model is for and what it is not for: the text clinicians and reviewers rely on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntendedUse {
    pub target_population: String,
    pub inputs: String,
    /// The output and its meaning (e.g. "probability of ICU transfer or death within 24 h").
    pub output: String,
    /// Who acts on the output, and how.
    pub who_acts: String,
    pub limitations: Vec<String>,
    /// What happens when the model is uncertain.
    pub when_uncertain: String,
    /// What happens when the model is unavailable or abstains.
    pub when_unavailable: String,
    /// The CDS hook the model is offered on (`patient-view`, `order-select`, …).
    pub cds_hook: Option<String>,
    /// A short title for cards and discovery.
    pub title: Option<String>,
    /// Reasons a clinician may give for overriding the card.
    #[serde(default)]
    pub override_reasons: Vec<String>,
    /// How the CDS Hooks service presents this model (`[cds]`); defaults apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cds: Option<CdsSettings>,
}

/// What the EHR is shown when no score can be computed, or when alerts are held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CdsNoScore {
    /// An info card saying the risk could not be computed and why.
    #[default]
    InfoCard,
    /// No card at all.
    NoCard,
}

/// A link shown on every card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardLink {
    pub label: String,
    pub url: String,
}

/// Alert-fatigue controls and card presentation for the CDS Hooks service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CdsSettings {
    /// When the model abstains, errors or times out.
    #[serde(default)]
    pub on_fallback: CdsNoScore,
    /// The same patient is not alerted again within this window unless the risk reaches a
    /// higher indicator.
    pub suppression_window: Option<Duration>,
    /// At most this many alert cards per service per day (UTC).
    pub daily_alert_budget: Option<u32>,
    /// What happens to an alert past the daily budget: `no_card` (held back, recorded) or
    /// `info_card` (shown as info without the alert indicator).
    #[serde(default = "no_card")]
    pub over_budget: CdsNoScore,
    /// Links shown on every card (guidelines, the local escalation policy).
    #[serde(default)]
    pub links: Vec<CardLink>,
    /// Actions offered on risk cards (`[[cds.suggestions]]`), e.g. an order for a missing
    /// test or a request for a rapid-response review.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<CardSuggestion>,
}

/// A suggestion offered on risk cards at or above an indicator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSuggestion {
    pub label: String,
    /// The lowest card indicator it is offered at: `warning` (the default) or `critical`.
    #[serde(default)]
    pub at: SuggestAt,
    /// Shown to the clinician as the recommended choice.
    #[serde(default)]
    pub recommended: bool,
    pub actions: Vec<SuggestionAction>,
}

/// The lowest card indicator a suggestion is offered at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SuggestAt {
    #[default]
    Warning,
    Critical,
}

/// One action of a suggestion, as CDS Hooks 2.0 defines it: `create` and `update` carry a
/// FHIR resource, `delete` a relative reference. In the resource's strings,
/// `{{context.patientId}}`, `{{context.encounterId}}` and `{{context.userId}}` are replaced
/// from the hook's context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionAction {
    #[serde(rename = "type")]
    pub kind: ActionKind,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// What a suggestion's action does to the EHR's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Create,
    Update,
    Delete,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Delete => "delete",
        }
    }
}

impl CardSuggestion {
    fn check(&self) -> Result<()> {
        let what = |m: &str| {
            Error::invalid(format!(
                "intended use: cds suggestion `{}`: {m}",
                self.label
            ))
        };
        if self.label.trim().is_empty() {
            return Err(Error::invalid(
                "intended use: every cds suggestion needs a label",
            ));
        }
        if self.actions.is_empty() {
            return Err(what("needs at least one action"));
        }
        for (i, a) in self.actions.iter().enumerate() {
            let n = i + 1;
            if a.description.trim().is_empty() {
                return Err(what(&format!("action {n} needs a description")));
            }
            match a.kind {
                ActionKind::Create | ActionKind::Update => {
                    let typed = a
                        .resource
                        .as_ref()
                        .and_then(|r| r.get("resourceType"))
                        .and_then(|t| t.as_str())
                        .is_some_and(|t| !t.is_empty());
                    if !typed {
                        return Err(what(&format!(
                            "action {n} ({}) needs a FHIR `resource` with a `resourceType`",
                            a.kind.as_str()
                        )));
                    }
                    if a.resource_id.is_some() {
                        return Err(what(&format!(
                            "action {n} ({}) takes a `resource`, not a `resource_id`",
                            a.kind.as_str()
                        )));
                    }
                }
                ActionKind::Delete => {
                    let ok = a.resource_id.as_deref().is_some_and(|r| {
                        r.split_once('/')
                            .is_some_and(|(t, id)| !t.is_empty() && !id.is_empty())
                    });
                    if !ok || a.resource.is_some() {
                        return Err(what(&format!(
                            "action {n} (delete) needs a `resource_id` like `ServiceRequest/123` and no `resource`"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn no_card() -> CdsNoScore {
    CdsNoScore::NoCard
}

impl IntendedUse {
    pub fn from_toml(text: &str) -> Result<IntendedUse> {
        let u: IntendedUse =
            toml::from_str(text).map_err(|e| Error::invalid(format!("intended use: {e}")))?;
        let fields = [
            ("target_population", &u.target_population),
            ("inputs", &u.inputs),
            ("output", &u.output),
            ("who_acts", &u.who_acts),
            ("when_uncertain", &u.when_uncertain),
            ("when_unavailable", &u.when_unavailable),
        ];
        if let Some((name, _)) = fields.iter().find(|(_, v)| v.trim().is_empty()) {
            return Err(Error::invalid(format!("intended use: `{name}` is empty")));
        }
        if u.limitations.is_empty() || u.limitations.iter().any(|l| l.trim().is_empty()) {
            return Err(Error::invalid(
                "intended use: `limitations` must list at least one non-empty limitation",
            ));
        }
        if let Some(h) = &u.cds_hook
            && !KNOWN_HOOKS.contains(&h.as_str())
        {
            return Err(Error::invalid(format!(
                "intended use: cds_hook `{h}` is not a known hook ({})",
                KNOWN_HOOKS.join(", ")
            )));
        }
        if let Some(c) = &u.cds {
            if c.suppression_window.is_some_and(|w| w.as_micros() <= 0) {
                return Err(Error::invalid(
                    "intended use: cds.suppression_window must be positive",
                ));
            }
            if let Some(l) = c.links.iter().find(|l| {
                l.label.trim().is_empty()
                    || !(l.url.starts_with("https://") || l.url.starts_with("http://"))
            }) {
                return Err(Error::invalid(format!(
                    "intended use: cds link `{}` needs a label and an http(s) URL",
                    l.label
                )));
            }
            for sg in &c.suggestions {
                sg.check()?;
            }
        }
        Ok(u)
    }
}

/// A model as registered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: ModelName,
    pub intended_use: IntendedUse,
    pub risk_tier: RiskTier,
    pub clinical_owner: String,
    pub technical_owner: String,
    pub created_at: Timestamp,
    pub created_by: UserName,
}

#[cfg(test)]
mod tests {
    use super::*;

    const USE: &str = r#"
target_population = "Adults on general wards"
inputs = "Vital signs and labs"
output = "Probability of deterioration within 24 hours"
who_acts = "Rapid response nurse"
limitations = ["Not validated in paediatrics"]
when_uncertain = "Clinical judgement prevails"
when_unavailable = "Usual care; no card is shown"
cds_hook = "patient-view"
"#;

    #[test]
    fn parses_and_validates() {
        assert!(IntendedUse::from_toml(USE).is_ok());
        let e = IntendedUse::from_toml(&USE.replace("patient-view", "bed-side")).unwrap_err();
        assert!(e.to_string().contains("bed-side"));
        let e = IntendedUse::from_toml(&USE.replace("Rapid response nurse", " ")).unwrap_err();
        assert!(e.to_string().contains("who_acts"));
        assert!(IntendedUse::from_toml(&USE.replace("limitations", "limits")).is_err());
    }

    #[test]
    fn card_suggestions_are_checked_when_the_intended_use_is_read() {
        let with = |s: &str| IntendedUse::from_toml(&format!("{USE}\n[cds]\n{s}"));
        let ok = with(
            r#"
[[cds.suggestions]]
label = "Request a rapid response review"
at = "critical"
recommended = true
[[cds.suggestions.actions]]
type = "create"
description = "Rapid response review"
resource = { resourceType = "ServiceRequest", status = "draft", intent = "order", subject = { reference = "Patient/{{context.patientId}}" } }
"#,
        )
        .unwrap();
        let sg = &ok.cds.unwrap().suggestions[0];
        assert_eq!((sg.at, sg.recommended), (SuggestAt::Critical, true));
        assert_eq!(sg.actions[0].kind, ActionKind::Create);
        assert_eq!(
            sg.actions[0].resource.as_ref().unwrap()["resourceType"],
            "ServiceRequest"
        );
        let bad = [
            (
                "[[cds.suggestions]]\nlabel = \"x\"\nactions = []\n",
                "at least one action",
            ),
            (
                "[[cds.suggestions]]\nlabel = \"x\"\n[[cds.suggestions.actions]]\ntype = \"create\"\ndescription = \"d\"\nresource = { status = \"draft\" }\n",
                "resourceType",
            ),
            (
                "[[cds.suggestions]]\nlabel = \"x\"\n[[cds.suggestions.actions]]\ntype = \"delete\"\ndescription = \"d\"\nresource_id = \"ServiceRequest\"\n",
                "ServiceRequest/123",
            ),
            (
                "[[cds.suggestions]]\nlabel = \"x\"\n[[cds.suggestions.actions]]\ntype = \"cancel\"\ndescription = \"d\"\n",
                "cancel",
            ),
        ];
        for (toml, needle) in bad {
            let e = with(toml).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn tiers() {
        assert!(RiskTier::new(0).is_err());
        assert!(RiskTier::new(5).is_err());
        assert_eq!(RiskTier::new(4).unwrap().get(), 4);
    }
}
