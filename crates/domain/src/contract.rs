//! The feature contract: what a model consumes, in which units and order, how each input is
//! filled from FHIR and what happens when it is missing. Format documented in
//! docs/feature-contract.md; parsed and validated once, used by every capability.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::Duration;
use crate::units::Unit;

/// The `schema` value of the current contract format.
pub const CONTRACT_SCHEMA: &str = "vigil.contract/v1";

/// A validated feature contract.
#[derive(Clone, Debug, Serialize)]
pub struct FeatureContract {
    pub model: ModelIo,
    pub allow_unknown_columns: bool,
    /// Largest tolerated missing rate for a feature that sets none itself.
    pub max_missing_rate: f64,
    pub features: Vec<Feature>,
}

/// How the model artifact is called: its input tensor and the output to read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelIo {
    /// The name of the input tensor (a float matrix, one column per model input).
    pub input: String,
    /// The name of the output holding class probabilities.
    pub output: String,
    /// Which column of that output is the probability of the positive class.
    #[serde(default = "one")]
    pub positive_class_index: usize,
}

fn one() -> usize {
    1
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    Float,
    Int,
    Bool,
    Category,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FeatureRole {
    /// Must be present: without it the model abstains.
    Required,
    /// May be absent: the missing-value policy says what the model is given instead.
    Optional,
    /// Must never reach the model nor appear in its training data (e.g. a protected
    /// attribute, or a value only known after the outcome).
    Prohibited,
}

/// What happens when a feature has no usable value.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum MissingPolicy {
    /// No prediction: the fallback is used and the reason recorded.
    Abstain,
    /// An approved fill value is given to the model, and the fill is recorded.
    Fill { value: f64 },
    /// The model receives NaN (for models trained to handle missing values, e.g. trees).
    PassMissing,
}

/// Where a feature comes from in FHIR R4.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FhirMapping {
    /// `Observation` or `Patient`.
    pub resource: String,
    /// Codings that identify the Observation, as `system|code`.
    #[serde(default)]
    pub codes: Vec<String>,
    /// For panels: the component coding whose value is used (`system|code`).
    pub component: Option<String>,
    /// For `Patient`: `age` (years from birthDate) or `gender`.
    pub field: Option<String>,
    #[serde(default)]
    pub aggregation: Aggregation,
    /// Only values observed within this window before the prediction time count.
    pub window: Option<Duration>,
    /// Molar mass of the analyte in g/mol, to convert between mass and substance units.
    pub molar_mass: Option<f64>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    #[default]
    Latest,
    First,
    Min,
    Max,
    Mean,
    Count,
}

/// One validated feature.
#[derive(Clone, Debug, Serialize)]
pub struct Feature {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FeatureType,
    /// The UCUM code of the unit values are expressed in (numeric features).
    pub unit: Option<String>,
    #[serde(skip)]
    pub parsed_unit: Option<Unit>,
    /// Plausible values, inclusive: outside it a value is invalid (treated as missing).
    pub range: Option<[f64; 2]>,
    pub role: FeatureRole,
    /// Oldest acceptable value at prediction time.
    pub max_age: Option<Duration>,
    pub missing: MissingPolicy,
    /// For categories: the levels, encoded for the model as their index.
    pub levels: Vec<String>,
    pub max_missing_rate: Option<f64>,
    pub description: Option<String>,
    pub fhir: Option<FhirMapping>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractFile {
    schema: Option<String>,
    model: ModelIo,
    #[serde(default)]
    allow_unknown_columns: bool,
    max_missing_rate: Option<f64>,
    #[serde(default, rename = "feature")]
    features: Vec<FeatureFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureFile {
    name: String,
    #[serde(rename = "type")]
    ty: FeatureType,
    unit: Option<String>,
    range: Option<[f64; 2]>,
    #[serde(default = "required")]
    role: FeatureRole,
    max_age: Option<Duration>,
    on_missing: Option<String>,
    fill_value: Option<f64>,
    #[serde(default)]
    levels: Vec<String>,
    max_missing_rate: Option<f64>,
    description: Option<String>,
    fhir: Option<FhirMapping>,
}

fn required() -> FeatureRole {
    FeatureRole::Required
}

fn valid_feature_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

impl FeatureContract {
    /// Parses and validates a contract written in TOML.
    pub fn from_toml(text: &str) -> Result<FeatureContract> {
        let file: ContractFile =
            toml::from_str(text).map_err(|e| Error::invalid(format!("feature contract: {e}")))?;
        if let Some(s) = &file.schema
            && s != CONTRACT_SCHEMA
        {
            return Err(Error::invalid(format!(
                "feature contract: schema `{s}` is not supported (expected `{CONTRACT_SCHEMA}`)"
            )));
        }
        if file.model.input.trim().is_empty() || file.model.output.trim().is_empty() {
            return Err(Error::invalid(
                "feature contract: [model] input and output must name the tensors",
            ));
        }
        let max_missing_rate = file.max_missing_rate.unwrap_or(0.5);
        check_rate("max_missing_rate", max_missing_rate)?;
        if file.features.is_empty() {
            return Err(Error::invalid("feature contract: no [[feature]] entries"));
        }
        let mut seen = HashSet::new();
        let mut features = Vec::with_capacity(file.features.len());
        for f in file.features {
            if !seen.insert(f.name.clone()) {
                return Err(Error::invalid(format!(
                    "feature contract: feature `{}` is declared twice",
                    f.name
                )));
            }
            features.push(validate_feature(f)?);
        }
        if !features.iter().any(|f| f.role != FeatureRole::Prohibited) {
            return Err(Error::invalid(
                "feature contract: every feature is prohibited; the model needs at least one input",
            ));
        }
        Ok(FeatureContract {
            model: file.model,
            allow_unknown_columns: file.allow_unknown_columns,
            max_missing_rate,
            features,
        })
    }

    /// The model's inputs in the order the input tensor expects: every feature that is not
    /// prohibited, in the order the contract lists them.
    pub fn inputs(&self) -> impl Iterator<Item = &Feature> {
        self.features
            .iter()
            .filter(|f| f.role != FeatureRole::Prohibited)
    }

    pub fn n_inputs(&self) -> usize {
        self.inputs().count()
    }

    pub fn find_feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == name)
    }
}

fn check_rate(what: &str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "feature contract: {what} must be between 0 and 1, not {v}"
        )))
    }
}

fn validate_feature(f: FeatureFile) -> Result<Feature> {
    let name = f.name;
    let bad = |msg: String| Error::invalid(format!("feature contract: feature `{name}`: {msg}"));
    if !valid_feature_name(&name) {
        return Err(bad(
            "names use letters, digits, `_` and `.`, and start with a letter or `_`".into(),
        ));
    }
    let numeric = matches!(f.ty, FeatureType::Float | FeatureType::Int);
    let parsed_unit = match (&f.unit, numeric) {
        (Some(code), true) => Some(Unit::parse(code).map_err(|e| bad(e.to_string()))?),
        (None, true) => {
            return Err(bad(
                "a numeric feature needs a UCUM `unit` (use \"1\" for a plain number)".into(),
            ));
        }
        (Some(_), false) => return Err(bad("only numeric features carry a unit".into())),
        (None, false) => None,
    };
    if let Some([lo, hi]) = f.range {
        if !numeric {
            return Err(bad("only numeric features have a range".into()));
        }
        if !lo.is_finite() || !hi.is_finite() {
            return Err(bad("range bounds must be finite numbers".into()));
        }
        if lo > hi {
            return Err(bad(format!(
                "range minimum {lo} is greater than its maximum {hi}"
            )));
        }
    }
    match f.ty {
        FeatureType::Category => {
            if f.levels.is_empty() {
                return Err(bad("a category needs its `levels`".into()));
            }
            let mut set = HashSet::new();
            if let Some(dup) = f.levels.iter().find(|l| !set.insert(l.as_str())) {
                return Err(bad(format!("level `{dup}` is listed twice")));
            }
        }
        _ if !f.levels.is_empty() => return Err(bad("only categories have `levels`".into())),
        _ => {}
    }
    if let Some(r) = f.max_missing_rate {
        check_rate(&format!("feature `{name}` max_missing_rate"), r)?;
    }
    if let Some(age) = f.max_age
        && age.as_micros() <= 0
    {
        return Err(bad("max_age must be positive".into()));
    }
    let missing = match (f.role, f.on_missing.as_deref(), f.fill_value) {
        (FeatureRole::Required, None | Some("abstain"), None) => MissingPolicy::Abstain,
        (FeatureRole::Required, _, _) => {
            return Err(bad(
                "a required feature cannot be filled: without it the model abstains; make it optional to approve a fill value".into(),
            ));
        }
        (FeatureRole::Optional, Some("fill"), Some(v)) => {
            if !v.is_finite() {
                return Err(bad("fill_value must be a finite number".into()));
            }
            if let Some([lo, hi]) = f.range
                && !(lo..=hi).contains(&v)
            {
                return Err(bad(format!(
                    "fill_value {v} is outside the range [{lo}, {hi}]"
                )));
            }
            if f.ty == FeatureType::Category
                && (v < 0.0 || v.fract() != 0.0 || v as usize >= f.levels.len())
            {
                return Err(bad(format!("fill_value {v} is not the index of a level")));
            }
            MissingPolicy::Fill { value: v }
        }
        (FeatureRole::Optional, Some("fill"), None) => {
            return Err(bad("on_missing = \"fill\" needs a fill_value".into()));
        }
        (FeatureRole::Optional, Some("abstain"), None) => MissingPolicy::Abstain,
        (FeatureRole::Optional, Some("pass_missing"), None) => MissingPolicy::PassMissing,
        (FeatureRole::Optional, None, _) => {
            return Err(bad(
                "an optional feature must say what happens when it is missing: on_missing = \"fill\" (with fill_value), \"pass_missing\" or \"abstain\"".into(),
            ));
        }
        (FeatureRole::Optional, Some(other), _) => {
            if ["fill", "abstain", "pass_missing"].contains(&other) {
                return Err(bad("fill_value only goes with on_missing = \"fill\"".into()));
            }
            return Err(bad(format!(
                "on_missing `{other}` is not one of \"fill\", \"pass_missing\", \"abstain\""
            )));
        }
        (FeatureRole::Prohibited, None, None) => MissingPolicy::Abstain,
        (FeatureRole::Prohibited, _, _) => {
            return Err(bad(
                "a prohibited feature never reaches the model: no on_missing".into(),
            ));
        }
    };
    if let Some(m) = &f.fhir {
        validate_fhir(m, f.ty).map_err(bad)?;
    }
    Ok(Feature {
        name,
        ty: f.ty,
        unit: f.unit,
        parsed_unit,
        range: f.range,
        role: f.role,
        max_age: f.max_age,
        missing,
        levels: f.levels,
        max_missing_rate: f.max_missing_rate,
        description: f.description,
        fhir: f.fhir,
    })
}

fn validate_fhir(m: &FhirMapping, ty: FeatureType) -> std::result::Result<(), String> {
    let coding_ok = |c: &str| {
        c.split_once('|')
            .is_some_and(|(s, c)| !s.is_empty() && !c.is_empty())
    };
    match m.resource.as_str() {
        "Observation" => {
            if m.codes.is_empty() {
                return Err("an Observation mapping needs `codes` (as \"system|code\")".into());
            }
            if let Some(bad) = m.codes.iter().find(|c| !coding_ok(c)) {
                return Err(format!(
                    "FHIR code `{bad}` is not written as \"system|code\""
                ));
            }
            if let Some(c) = &m.component
                && !coding_ok(c)
            {
                return Err(format!(
                    "FHIR component `{c}` is not written as \"system|code\""
                ));
            }
            if m.field.is_some() {
                return Err("`field` is for Patient mappings".into());
            }
        }
        "Patient" => match m.field.as_deref() {
            Some("age") if matches!(ty, FeatureType::Float | FeatureType::Int) => {}
            Some("gender") if ty == FeatureType::Category => {}
            Some(f) => return Err(format!("Patient field `{f}` does not fit a {ty:?} feature")),
            None => return Err("a Patient mapping needs `field` (age or gender)".into()),
        },
        other => {
            return Err(format!(
                "FHIR resource `{other}` is not supported (Observation, Patient)"
            ));
        }
    }
    if let Some(mm) = m.molar_mass
        && !(mm > 0.0 && mm.is_finite())
    {
        return Err("molar_mass must be a positive number of g/mol".into());
    }
    if let Some(w) = m.window
        && w.as_micros() <= 0
    {
        return Err("window must be positive".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
schema = "vigil.contract/v1"
[model]
input = "float_input"
output = "probabilities"

[[feature]]
name = "heart_rate"
type = "float"
unit = "/min"
range = [20, 250]
max_age = "6h"
[feature.fhir]
resource = "Observation"
codes = ["http://loinc.org|8867-4"]

[[feature]]
name = "lactate"
type = "float"
unit = "mmol/L"
range = [0.1, 30]
role = "optional"
on_missing = "fill"
fill_value = 1.0

[[feature]]
name = "sex"
type = "category"
levels = ["female", "male"]
[feature.fhir]
resource = "Patient"
field = "gender"

[[feature]]
name = "ethnicity"
type = "category"
levels = ["a", "b"]
role = "prohibited"
"#;

    #[test]
    fn parses_a_good_contract() {
        let c = FeatureContract::from_toml(GOOD).unwrap();
        assert_eq!(c.features.len(), 4);
        let names: Vec<_> = c.inputs().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["heart_rate", "lactate", "sex"]);
        assert_eq!(c.features[1].missing, MissingPolicy::Fill { value: 1.0 });
        assert_eq!(c.model.positive_class_index, 1);
    }

    fn err_of(text: &str) -> String {
        FeatureContract::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn names_what_is_wrong() {
        let cases = [
            (
                GOOD.replace("unit = \"/min\"", "unit = \"beats per minute\""),
                "heart_rate",
            ),
            (
                GOOD.replace(
                    "type = \"float\"\nunit = \"/min\"",
                    "type = \"decimal\"\nunit = \"/min\"",
                ),
                "decimal",
            ),
            (
                GOOD.replace("range = [20, 250]", "range = [250, 20]"),
                "greater than its maximum",
            ),
            (
                GOOD.replace("name = \"lactate\"", "name = \"heart_rate\""),
                "declared twice",
            ),
            (
                GOOD.replace("fill_value = 1.0", "fill_value = 99.0"),
                "outside the range",
            ),
            (
                GOOD.replace("on_missing = \"fill\"\n", ""),
                "must say what happens",
            ),
            (
                GOOD.replace(
                    "codes = [\"http://loinc.org|8867-4\"]",
                    "codes = [\"8867-4\"]",
                ),
                "system|code",
            ),
            (
                GOOD.replace("levels = [\"female\", \"male\"]", "levels = [\"f\", \"f\"]"),
                "listed twice",
            ),
            (
                GOOD.replace("input = \"float_input\"", "input = \"x\"\nbogus = 1"),
                "bogus",
            ),
        ];
        for (text, needle) in cases {
            let e = err_of(&text);
            assert!(e.contains(needle), "expected `{needle}` in: {e}");
        }
    }
}
