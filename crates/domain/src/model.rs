//! Models: a named clinical use with its intended use, risk tier and owners.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ModelName, UserName};
use crate::time::Timestamp;

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
