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
    fn tiers() {
        assert!(RiskTier::new(0).is_err());
        assert!(RiskTier::new(5).is_err());
        assert_eq!(RiskTier::new(4).unwrap().get(), 4);
    }
}
