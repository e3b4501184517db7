//! Feature assembly by contract: the caller's named inputs → the model's input row, or a fallback.
//!
//! A prediction is never invented. Every input is checked against its [`Feature`] (type, unit,
//! plausible range, freshness at prediction time); a value that fails a check is treated as
//! missing and the reason recorded. A required feature without a usable value, an optional one
//! whose policy is to abstain, a prohibited feature in the request, or any failure of the model
//! itself gives a [`Fallback`] and no score. The outcome types are serde-serializable because
//! they are written into prediction records and API responses as they are.
//!
//! Outcome `reason`s may quote the value that was supplied (a prediction record holds the
//! feature values anyway); [`Fallback::detail`] never does, so it is safe to log.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vigil_domain::contract::ModelIo;
use vigil_domain::units::{Unit, convert_with_molar_mass};
use vigil_domain::{Feature, FeatureContract, FeatureRole, FeatureType, MissingPolicy, Timestamp};

use crate::error::Error;
use crate::plan::Model;
use crate::tensor::{Dim, ElementType, Tensor, TensorData, Value, ValueType};

/// A value as the caller supplies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// One named input of a scoring request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub value: InputValue,
    /// UCUM code of `value`; absent means the value is already in the contract's unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// When the value was observed; needed for the contract's freshness rule.
    #[serde(default)]
    pub observed_at: Option<Timestamp>,
    /// Where it came from (e.g. a FHIR resource reference), carried into the record.
    #[serde(default)]
    pub source: Option<String>,
}

impl Input {
    /// A plain number in the contract's unit, without time or source.
    pub fn number(v: f64) -> Input {
        Input {
            value: InputValue::Number(v),
            unit: None,
            observed_at: None,
            source: None,
        }
    }

    /// A category level or other text.
    pub fn text(s: impl Into<String>) -> Input {
        Input {
            value: InputValue::Text(s.into()),
            unit: None,
            observed_at: None,
            source: None,
        }
    }

    pub fn boolean(b: bool) -> Input {
        Input {
            value: InputValue::Bool(b),
            unit: None,
            observed_at: None,
            source: None,
        }
    }

    /// The same input expressed in the UCUM unit `unit`.
    pub fn with_unit(mut self, unit: impl Into<String>) -> Input {
        self.unit = Some(unit.into());
        self
    }

    pub fn observed_at(mut self, t: Timestamp) -> Input {
        self.observed_at = Some(t);
        self
    }

    pub fn with_source(mut self, s: impl Into<String>) -> Input {
        self.source = Some(s.into());
        self
    }
}

/// A scoring request's inputs by feature name.
pub type Inputs = BTreeMap<String, Input>;

/// What became of one contract input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStatus {
    /// Supplied in the contract's unit and used as is.
    Present,
    /// Supplied in another unit and converted to the contract's.
    Converted,
    /// Not usable (see `cause`) and replaced by the contract's approved fill value.
    Filled,
    /// Not supplied.
    Missing,
    /// Supplied but unusable: wrong type, unknown level, unconvertible unit, out of range.
    Invalid,
    /// Supplied but older than the contract's `max_age` at prediction time.
    Stale,
}

/// The record of one contract input: what the model was given and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureOutcome {
    pub name: String,
    /// The value given to the model, in the contract's unit (levels as their index, booleans
    /// as 0/1); `None` when the model received no value (NaN) or no score was made.
    pub value: Option<f64>,
    pub status: FeatureStatus,
    /// For `filled`: what made the supplied value unusable (`missing`, `invalid` or `stale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<FeatureStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A complete model input row, in the contract's input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assembled {
    /// One value per contract input; NaN where the missing policy passes a missing value.
    pub row: Vec<f32>,
    pub features: Vec<FeatureOutcome>,
    /// Supplied names the contract does not know; reported, never given to the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_inputs: Vec<String>,
}

/// Why no score was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// A required feature was missing, invalid or stale.
    MissingRequired,
    /// An optional feature whose policy is to abstain was missing, invalid or stale.
    MissingOptional,
    /// The request supplied a feature the contract prohibits.
    ProhibitedInput,
    /// The model failed, panicked, or returned something that is not a probability.
    ModelError,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::MissingRequired => "missing_required",
            FallbackReason::MissingOptional => "missing_optional",
            FallbackReason::ProhibitedInput => "prohibited_input",
            FallbackReason::ModelError => "model_error",
        }
    }
}

/// No score: the approved fallback applies, for the recorded reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    pub reason: FallbackReason,
    /// The features responsible (empty for model errors).
    pub features: Vec<String>,
    /// A human-readable explanation without patient values, safe to log.
    pub detail: String,
    /// Every contract input's outcome, for the prediction record (empty when refused outright).
    pub outcomes: Vec<FeatureOutcome>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_inputs: Vec<String>,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

/// A usable value, or why there is none.
enum Checked {
    Value {
        value: f64,
        converted: Option<String>,
    },
    Unusable {
        status: FeatureStatus,
        reason: String,
    },
}

fn numeric(feature: &Feature, input: &Input, molar_mass: Option<f64>) -> Checked {
    let invalid = |reason: String| Checked::Unusable {
        status: FeatureStatus::Invalid,
        reason,
    };
    let v = match &input.value {
        InputValue::Number(v) => *v,
        InputValue::Text(_) => return invalid("expected a number, got text".into()),
        InputValue::Bool(_) => return invalid("expected a number, got a boolean".into()),
    };
    if !v.is_finite() {
        return invalid("not a finite number".into());
    }
    let mut converted = None;
    let value = match (&input.unit, &feature.parsed_unit) {
        (Some(code), Some(target)) if code != target.code() => {
            let from = match Unit::parse(code) {
                Ok(u) => u,
                Err(e) => return invalid(e.to_string()),
            };
            let r = match molar_mass {
                Some(mm) => convert_with_molar_mass(v, &from, target, mm),
                None => from.convert(v, target),
            };
            match r {
                Ok(x) => {
                    converted = Some(format!("converted from {v} {code}"));
                    x
                }
                Err(e) => return invalid(e.to_string()),
            }
        }
        _ => v,
    };
    // A whole-number feature given in its own unit must be whole; after a unit conversion the
    // result legitimately has a fraction (months → years).
    if feature.ty == FeatureType::Int && converted.is_none() && value.fract() != 0.0 {
        return invalid(format!("{v} is not a whole number"));
    }
    if let Some([lo, hi]) = feature.range
        && !(lo..=hi).contains(&value)
    {
        let unit = feature.unit.as_deref().unwrap_or("");
        return invalid(format!(
            "{value} {unit} is outside the plausible range [{lo}, {hi}]"
        ));
    }
    Checked::Value { value, converted }
}

fn check(feature: &Feature, input: &Input, now: Timestamp) -> Checked {
    if let Some(t) = input.observed_at {
        if t > now {
            return Checked::Unusable {
                status: FeatureStatus::Invalid,
                reason: format!("observed at {t}, after the prediction time {now}"),
            };
        }
        if let Some(max) = feature.max_age
            && now.since(t) > max
        {
            return Checked::Unusable {
                status: FeatureStatus::Stale,
                reason: format!("observed at {t}, older than the maximum age {max}"),
            };
        }
    }
    let invalid = |reason: String| Checked::Unusable {
        status: FeatureStatus::Invalid,
        reason,
    };
    if input.unit.is_some() && !matches!(feature.ty, FeatureType::Float | FeatureType::Int) {
        return invalid("only numeric features carry a unit".into());
    }
    match feature.ty {
        FeatureType::Float | FeatureType::Int => numeric(
            feature,
            input,
            feature.fhir.as_ref().and_then(|m| m.molar_mass),
        ),
        FeatureType::Bool => match input.value {
            InputValue::Bool(b) => Checked::Value {
                value: f64::from(u8::from(b)),
                converted: None,
            },
            _ => invalid("expected a boolean".into()),
        },
        FeatureType::Category => match &input.value {
            InputValue::Text(s) => match feature.levels.iter().position(|l| l == s) {
                Some(i) => Checked::Value {
                    value: i as f64,
                    converted: None,
                },
                None => invalid(format!(
                    "`{s}` is not one of the levels {:?}",
                    feature.levels
                )),
            },
            _ => invalid("expected one of the category's levels as text".into()),
        },
    }
}

/// Builds the model input row for `inputs` at prediction time `now`, or the fallback.
///
/// Inputs without an observation time are taken as current: freshness cannot be checked for
/// them, and the outcome says so. Unknown input names are reported in `unknown_inputs` and
/// otherwise ignored; prohibited ones refuse the whole request.
pub fn assemble(
    contract: &FeatureContract,
    inputs: &Inputs,
    now: Timestamp,
) -> Result<Assembled, Fallback> {
    let unknown_inputs: Vec<String> = inputs
        .keys()
        .filter(|k| contract.find_feature(k).is_none())
        .cloned()
        .collect();
    let prohibited: Vec<String> = contract
        .features
        .iter()
        .filter(|f| f.role == FeatureRole::Prohibited && inputs.contains_key(&f.name))
        .map(|f| f.name.clone())
        .collect();
    if !prohibited.is_empty() {
        return Err(Fallback {
            reason: FallbackReason::ProhibitedInput,
            detail: format!(
                "the request supplies features the contract prohibits: {}",
                prohibited.join(", ")
            ),
            features: prohibited,
            outcomes: Vec::new(),
            unknown_inputs,
        });
    }

    let mut row = Vec::with_capacity(contract.n_inputs());
    let mut features = Vec::with_capacity(contract.n_inputs());
    let mut required_failed = Vec::new();
    let mut optional_failed = Vec::new();
    for f in contract.inputs() {
        let input = inputs.get(&f.name);
        let mut outcome = FeatureOutcome {
            name: f.name.clone(),
            value: None,
            status: FeatureStatus::Missing,
            cause: None,
            reason: None,
            observed_at: input.and_then(|i| i.observed_at),
            source: input.and_then(|i| i.source.clone()),
        };
        let checked = match input {
            Some(i) => check(f, i, now),
            None => Checked::Unusable {
                status: FeatureStatus::Missing,
                reason: "not supplied".into(),
            },
        };
        match checked {
            Checked::Value { value, converted } => {
                outcome.value = Some(value);
                outcome.status = if converted.is_some() {
                    FeatureStatus::Converted
                } else {
                    FeatureStatus::Present
                };
                outcome.reason = converted;
                if f.max_age.is_some() && input.is_some_and(|i| i.observed_at.is_none()) {
                    let note = "no observation time given; freshness not checked";
                    outcome.reason = Some(match outcome.reason.take() {
                        Some(r) => format!("{r}; {note}"),
                        None => note.to_string(),
                    });
                }
                row.push(value as f32);
            }
            Checked::Unusable { status, reason } => {
                outcome.status = status;
                outcome.reason = Some(reason);
                match (f.role, f.missing) {
                    (FeatureRole::Optional, MissingPolicy::Fill { value }) => {
                        outcome.cause = Some(status);
                        outcome.status = FeatureStatus::Filled;
                        outcome.value = Some(value);
                        row.push(value as f32);
                    }
                    (FeatureRole::Optional, MissingPolicy::PassMissing) => row.push(f32::NAN),
                    (FeatureRole::Optional, MissingPolicy::Abstain) => {
                        optional_failed.push(f.name.clone());
                        row.push(f32::NAN);
                    }
                    _ => {
                        required_failed.push(f.name.clone());
                        row.push(f32::NAN);
                    }
                }
            }
        }
        features.push(outcome);
    }
    if required_failed.is_empty() && optional_failed.is_empty() {
        return Ok(Assembled {
            row,
            features,
            unknown_inputs,
        });
    }
    let (reason, detail) = if required_failed.is_empty() {
        (
            FallbackReason::MissingOptional,
            format!(
                "optional features whose policy is to abstain have no usable value: {}",
                optional_failed.join(", ")
            ),
        )
    } else {
        (
            FallbackReason::MissingRequired,
            format!(
                "required features have no usable value: {}",
                required_failed.join(", ")
            ),
        )
    };
    required_failed.extend(optional_failed);
    // No score is made, so no value reached the model.
    for o in &mut features {
        o.value = None;
    }
    Err(Fallback {
        reason,
        features: required_failed,
        detail,
        outcomes: features,
        unknown_inputs,
    })
}

/// One feature's share of the score (on the model's raw scale, see [`crate::Explanation`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    /// The value the model received (`None` for a passed-through missing value).
    pub value: Option<f64>,
    pub contribution: f64,
}

/// A successful scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Probability of the contract's positive class.
    pub score: f64,
    pub assembled: Assembled,
    /// Per-feature contributions, empty for models the executor cannot explain.
    pub explanation: Vec<Contribution>,
}

/// A feature contract and a model checked against each other once, then used for every request.
#[derive(Debug, Clone)]
pub struct Scorer {
    contract: Arc<FeatureContract>,
    model: Arc<Model>,
    element: ElementType,
}

impl Scorer {
    /// Checks that `model` can be fed and read as `contract` says: the named input is the
    /// model's only input, a float matrix as wide as the contract's inputs; the named output
    /// exists and yields, for a probe row, a probability at the positive class index.
    pub fn new(contract: Arc<FeatureContract>, model: Arc<Model>) -> Result<Scorer, Error> {
        let io = &contract.model;
        let mismatch = |s: String| Error::ContractMismatch(s);
        let n = contract.n_inputs();
        let [input] = model.inputs() else {
            return Err(mismatch(format!(
                "the model has {} inputs; a contract feeds exactly one",
                model.inputs().len()
            )));
        };
        if input.name != io.input {
            return Err(mismatch(format!(
                "the contract's input `{}` is not in the model (its input is `{}`)",
                io.input, input.name
            )));
        }
        let element = match &input.value_type {
            ValueType::Tensor {
                element: e @ (ElementType::F32 | ElementType::F64),
                shape,
            } => {
                if let Some(s) = shape {
                    if s.len() != 2 {
                        return Err(mismatch(format!(
                            "input `{}` has rank {}, expected a matrix",
                            io.input,
                            s.len()
                        )));
                    }
                    if let Dim::Fixed(w) = s[1]
                        && w != n
                    {
                        return Err(mismatch(format!(
                            "the model takes {w} features, the contract has {n} inputs"
                        )));
                    }
                }
                *e
            }
            _ => {
                return Err(mismatch(format!(
                    "input `{}` is not a float or double tensor",
                    io.input
                )));
            }
        };
        if let Some(w) = model.n_features()
            && w != n
        {
            return Err(mismatch(format!(
                "the model reads {w} features, the contract has {n} inputs"
            )));
        }
        if !model.outputs().iter().any(|o| o.name == io.output) {
            let names: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
            return Err(mismatch(format!(
                "the contract's output `{}` is not in the model (outputs: {})",
                io.output,
                names.join(", ")
            )));
        }
        let probe = guarded(|| positive_probabilities(&model, io, element, &vec![0.0; n], n))
            .map_err(|e| mismatch(format!("probing the model: {e}")))?;
        if !probe.iter().all(|p| (0.0..=1.0).contains(p)) {
            return Err(mismatch(format!(
                "output `{}` column {} is not a probability",
                io.output, io.positive_class_index
            )));
        }
        // A feature that passes missing values on must meet a model that copes with NaN
        // (trees with a learned missing direction do; a linear model gives NaN). Finding out
        // here turns a silent per-request model error into a refusal at deployment.
        for (j, f) in contract.inputs().enumerate() {
            if f.role == FeatureRole::Optional && f.missing == MissingPolicy::PassMissing {
                let mut row = vec![0.0; n];
                row[j] = f64::NAN;
                let p = guarded(|| positive_probabilities(&model, io, element, &row, n))
                    .map_err(|e| mismatch(format!("probing feature `{}` missing: {e}", f.name)))?;
                if !p.iter().all(|p| (0.0..=1.0).contains(p)) {
                    return Err(mismatch(format!(
                        "feature `{}` passes missing values to the model, which gives no probability for them",
                        f.name
                    )));
                }
            }
        }
        Ok(Scorer {
            contract,
            model,
            element,
        })
    }

    pub fn contract(&self) -> &FeatureContract {
        &self.contract
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Assembles the inputs by the contract (see [`assemble`]).
    pub fn assemble(&self, inputs: &Inputs, now: Timestamp) -> Result<Assembled, Fallback> {
        assemble(&self.contract, inputs, now)
    }

    /// Scores one request: a probability with its explanation, or the fallback and its reason.
    pub fn score(&self, inputs: &Inputs, now: Timestamp) -> Result<Scored, Fallback> {
        let assembled = self.assemble(inputs, now)?;
        let n = assembled.row.len();
        let x: Vec<f64> = match self.element {
            // The double path gets the unrounded values; the float path exactly `row`.
            ElementType::F64 => assembled
                .features
                .iter()
                .map(|f| f.value.unwrap_or(f64::NAN))
                .collect(),
            _ => assembled.row.iter().map(|&v| f64::from(v)).collect(),
        };
        let model_error = |detail: String, assembled: Assembled| Fallback {
            reason: FallbackReason::ModelError,
            features: Vec::new(),
            detail,
            outcomes: assembled.features,
            unknown_inputs: assembled.unknown_inputs,
        };
        let io = &self.contract.model;
        let score = match guarded(|| positive_probabilities(&self.model, io, self.element, &x, n)) {
            Ok(p) => match p.as_slice() {
                [p] if (0.0..=1.0).contains(p) => *p,
                [p] => {
                    return Err(model_error(
                        format!("the model returned {p}, which is not a probability"),
                        assembled,
                    ));
                }
                _ => return Err(model_error("the model returned no score".into(), assembled)),
            },
            Err(e) => return Err(model_error(e.to_string(), assembled)),
        };
        // An explanation is a courtesy: a model that cannot be explained still scores.
        let explanation = match guarded(|| self.model.explain(&assembled.row)) {
            Ok(e) if e.contributions.len() == n => assembled
                .features
                .iter()
                .zip(&assembled.row)
                .zip(&e.contributions)
                .map(|((f, x), &c)| Contribution {
                    feature: f.name.clone(),
                    value: f.value.filter(|_| !x.is_nan()),
                    contribution: c,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Scored {
            score,
            assembled,
            explanation,
        })
    }
}

/// Runs `f`, turning a panic into an error: a bug in the executor must become a fallback,
/// never take down the request (or the server).
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::Execution {
                op_type: "executor".into(),
                node: "-".into(),
                reason: format!("panicked: {what}"),
            })
        }
    }
}

/// The positive-class probability per row, read from the output and column the contract names.
pub(crate) fn positive_probabilities(
    model: &Model,
    io: &ModelIo,
    element: ElementType,
    rows: &[f64],
    n_features: usize,
) -> Result<Vec<f64>, Error> {
    if n_features == 0 || rows.len() % n_features != 0 {
        return Err(Error::InvalidInput(format!(
            "{} values do not split into rows of {n_features}",
            rows.len()
        )));
    }
    let n = rows.len() / n_features;
    let data = match element {
        ElementType::F64 => TensorData::F64(rows.to_vec()),
        _ => TensorData::F32(rows.iter().map(|&v| v as f32).collect()),
    };
    let t = Tensor::new(vec![n, n_features], data).map_err(Error::InvalidInput)?;
    let outputs = model.run(&[(io.input.as_str(), t)])?;
    let (_, value) = outputs
        .iter()
        .find(|(name, _)| *name == io.output)
        .ok_or_else(|| Error::NotApplicable(format!("output `{}` was not produced", io.output)))?;
    let k = io.positive_class_index;
    let missing_column = || {
        Error::NotApplicable(format!(
            "output `{}` has no column {k} (the positive class)",
            io.output
        ))
    };
    let pick = |len: usize| -> Result<(), Error> {
        if len <= k {
            return Err(missing_column());
        }
        Ok(())
    };
    let out: Vec<f64> = match value {
        Value::Tensor(t) => {
            let shape = t.shape();
            if shape.len() != 2 || shape[0] != n {
                return Err(Error::NotApplicable(format!(
                    "output `{}` has shape {shape:?}, expected [{n}, classes]",
                    io.output
                )));
            }
            let w = shape[1];
            pick(w)?;
            match t.data() {
                TensorData::F32(v) => v.chunks_exact(w).map(|r| f64::from(r[k])).collect(),
                TensorData::F64(v) => v.chunks_exact(w).map(|r| r[k]).collect(),
                _ => {
                    return Err(Error::NotApplicable(format!(
                        "output `{}` is not a float tensor",
                        io.output
                    )));
                }
            }
        }
        Value::MapsI64(m) => m
            .iter()
            .map(|r| r.get(k).map(|p| f64::from(p.1)).ok_or_else(missing_column))
            .collect::<Result<_, _>>()?,
        Value::MapsString(m) => m
            .iter()
            .map(|r| r.get(k).map(|p| f64::from(p.1)).ok_or_else(missing_column))
            .collect::<Result<_, _>>()?,
    };
    if out.len() != n {
        return Err(Error::NotApplicable(format!(
            "output `{}` has {} rows for {n} inputs",
            io.output,
            out.len()
        )));
    }
    Ok(out)
}

/// ONNX graphs built in memory for unit tests of the contract and equivalence layers.
#[cfg(test)]
pub(crate) mod test_models {
    use prost::Message;

    use crate::proto::*;

    fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: 6,
            floats: v.to_vec(),
            ..Default::default()
        }
    }

    fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: 7,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn attr_string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: 3,
            s: v.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn info(name: &str, elem: i32, dims: &[Option<i64>]) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: elem,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|d| Dimension {
                                dim_value: *d,
                                dim_param: if d.is_none() { Some("N".into()) } else { None },
                            })
                            .collect(),
                    }),
                }),
            }),
        }
    }

    /// A binary logistic regression `p = σ(w·x + b)` on input `x` [N, len(w)], with outputs
    /// `label` and `probabilities` [N, 2], as skl2onnx writes it (one row per class).
    pub(crate) fn logistic(w: &[f32], b: f32) -> Vec<u8> {
        let neg: Vec<f32> = w.iter().map(|v| -v).collect();
        let coef: Vec<f32> = neg.iter().chain(w).copied().collect();
        let node = NodeProto {
            input: vec!["x".into()],
            output: vec!["label".into(), "probabilities".into()],
            name: "lr".into(),
            op_type: "LinearClassifier".into(),
            domain: "ai.onnx.ml".into(),
            attribute: vec![
                attr_floats("coefficients", &coef),
                attr_floats("intercepts", &[-b, b]),
                attr_ints("classlabels_ints", &[0, 1]),
                attr_string("post_transform", "LOGISTIC"),
            ],
        };
        let n = w.len() as i64;
        let model = ModelProto {
            ir_version: 8,
            opset_import: vec![
                OperatorSetIdProto {
                    domain: "".into(),
                    version: 17,
                },
                OperatorSetIdProto {
                    domain: "ai.onnx.ml".into(),
                    version: 3,
                },
            ],
            producer_name: "vigil-test".into(),
            producer_version: "0".into(),
            graph: Some(GraphProto {
                node: vec![node],
                name: "g".into(),
                initializer: vec![],
                input: vec![info("x", data_type::FLOAT, &[None, Some(n)])],
                output: vec![
                    info("label", data_type::INT64, &[None]),
                    info("probabilities", data_type::FLOAT, &[None, Some(2)]),
                ],
            }),
        };
        model.encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_domain::Duration;

    const CONTRACT: &str = r#"
[model]
input = "x"
output = "probabilities"

[[feature]]
name = "temperature"
type = "float"
unit = "Cel"
range = [25, 45]
max_age = "6h"

[[feature]]
name = "creatinine"
type = "float"
unit = "umol/L"
range = [10, 2000]
role = "optional"
on_missing = "fill"
fill_value = 80
[feature.fhir]
resource = "Observation"
codes = ["http://loinc.org|2160-0"]
molar_mass = 113.12

[[feature]]
name = "lactate"
type = "float"
unit = "mmol/L"
range = [0.1, 30]
role = "optional"
on_missing = "pass_missing"

[[feature]]
name = "sex"
type = "category"
levels = ["female", "male"]

[[feature]]
name = "ventilated"
type = "bool"
role = "optional"
on_missing = "abstain"

[[feature]]
name = "ethnicity"
type = "category"
levels = ["a", "b"]
role = "prohibited"

[[feature]]
name = "age"
type = "int"
unit = "a"
range = [18, 120]
"#;

    const WEIGHTS: [f32; 6] = [0.5, 0.01, 0.3, -0.2, 0.8, 0.02];

    fn contract() -> FeatureContract {
        FeatureContract::from_toml(CONTRACT).expect("contract")
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-03-01T12:00:00Z").expect("time")
    }

    fn hours_ago(h: i64) -> Timestamp {
        now().minus(Duration::from_secs(h * 3600))
    }

    fn complete() -> Inputs {
        let mut m = Inputs::new();
        m.insert(
            "temperature".into(),
            Input::number(38.5)
                .observed_at(hours_ago(1))
                .with_source("Observation/t1"),
        );
        m.insert("creatinine".into(), Input::number(95.0));
        m.insert("lactate".into(), Input::number(2.1));
        m.insert("sex".into(), Input::text("male"));
        m.insert("ventilated".into(), Input::boolean(false));
        m.insert("age".into(), Input::number(67.0));
        m
    }

    fn outcome<'a>(a: &'a [FeatureOutcome], name: &str) -> &'a FeatureOutcome {
        a.iter().find(|o| o.name == name).expect("outcome")
    }

    /// The contract with lactate filled rather than passed missing: a linear model needs it.
    fn linear_contract() -> FeatureContract {
        FeatureContract::from_toml(&CONTRACT.replace(
            "on_missing = \"pass_missing\"",
            "on_missing = \"fill\"\nfill_value = 1.0",
        ))
        .expect("contract")
    }

    fn scorer() -> Scorer {
        let model = Model::from_bytes(&test_models::logistic(&WEIGHTS, -1.0)).expect("model");
        Scorer::new(Arc::new(linear_contract()), Arc::new(model)).expect("scorer")
    }

    #[test]
    fn complete_inputs_assemble_in_contract_order_with_encodings() {
        let a = assemble(&contract(), &complete(), now()).expect("assembled");
        assert_eq!(a.row, vec![38.5, 95.0, 2.1, 1.0, 0.0, 67.0]);
        let names: Vec<_> = a.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "temperature",
                "creatinine",
                "lactate",
                "sex",
                "ventilated",
                "age"
            ]
        );
        assert!(
            a.features
                .iter()
                .all(|f| f.status == FeatureStatus::Present)
        );
        let t = outcome(&a.features, "temperature");
        assert_eq!(t.source.as_deref(), Some("Observation/t1"));
        assert_eq!(t.observed_at, Some(hours_ago(1)));
        assert!(a.unknown_inputs.is_empty());
    }

    #[test]
    fn fahrenheit_is_converted_to_celsius() {
        let mut i = complete();
        i.insert(
            "temperature".into(),
            Input::number(101.3)
                .with_unit("[degF]")
                .observed_at(hours_ago(2)),
        );
        let a = assemble(&contract(), &i, now()).expect("assembled");
        let t = outcome(&a.features, "temperature");
        assert_eq!(t.status, FeatureStatus::Converted);
        let v = t.value.expect("value");
        assert!((v - 38.5).abs() < 1e-9, "{v}");
        assert!(t.reason.as_deref().is_some_and(|r| r.contains("[degF]")));
    }

    #[test]
    fn creatinine_mg_per_dl_converts_to_umol_per_l_by_molar_mass() {
        let mut i = complete();
        i.insert("creatinine".into(), Input::number(1.2).with_unit("mg/dL"));
        let a = assemble(&contract(), &i, now()).expect("assembled");
        let c = outcome(&a.features, "creatinine");
        assert_eq!(c.status, FeatureStatus::Converted);
        // 1.2 mg/dL = 12 mg/L = 12000 ug/L; / 113.12 g/mol = 106.08 umol/L.
        let want = 1.2 * 10_000.0 / 113.12;
        assert!((c.value.expect("value") - want).abs() < 1e-9);
        assert!((f64::from(a.row[1]) - want).abs() < 1e-4);
    }

    #[test]
    fn incommensurable_or_unknown_units_are_invalid() {
        for unit in ["mmHg", "mm[Hg]"] {
            let mut i = complete();
            i.insert("temperature".into(), Input::number(37.0).with_unit(unit));
            let f = assemble(&contract(), &i, now()).expect_err("fallback");
            assert_eq!(f.reason, FallbackReason::MissingRequired);
            assert_eq!(f.features, ["temperature"]);
            assert_eq!(
                outcome(&f.outcomes, "temperature").status,
                FeatureStatus::Invalid
            );
        }
    }

    #[test]
    fn stale_by_max_age_is_treated_as_missing() {
        let mut i = complete();
        i.insert(
            "temperature".into(),
            Input::number(38.0).observed_at(hours_ago(7)),
        );
        let f = assemble(&contract(), &i, now()).expect_err("fallback");
        assert_eq!(f.reason, FallbackReason::MissingRequired);
        assert_eq!(f.features, ["temperature"]);
        let t = outcome(&f.outcomes, "temperature");
        assert_eq!(t.status, FeatureStatus::Stale);
        assert!(t.reason.as_deref().is_some_and(|r| r.contains("6h")));
        // Exactly at the limit is still fresh.
        i.insert(
            "temperature".into(),
            Input::number(38.0).observed_at(hours_ago(6)),
        );
        assert!(assemble(&contract(), &i, now()).is_ok());
    }

    #[test]
    fn a_value_observed_after_the_prediction_time_is_invalid() {
        let mut i = complete();
        i.insert(
            "temperature".into(),
            Input::number(38.0).observed_at(hours_ago(-1)),
        );
        let f = assemble(&contract(), &i, now()).expect_err("fallback");
        assert_eq!(
            outcome(&f.outcomes, "temperature").status,
            FeatureStatus::Invalid
        );
    }

    #[test]
    fn missing_observation_time_is_accepted_and_noted() {
        let mut i = complete();
        i.insert("temperature".into(), Input::number(38.0));
        let a = assemble(&contract(), &i, now()).expect("assembled");
        let t = outcome(&a.features, "temperature");
        assert_eq!(t.status, FeatureStatus::Present);
        assert!(
            t.reason
                .as_deref()
                .is_some_and(|r| r.contains("freshness not checked"))
        );
    }

    #[test]
    fn out_of_range_required_is_a_fallback_naming_the_feature() {
        let mut i = complete();
        i.insert("temperature".into(), Input::number(52.0));
        let f = assemble(&contract(), &i, now()).expect_err("fallback");
        assert_eq!(f.reason, FallbackReason::MissingRequired);
        assert_eq!(f.reason.as_str(), "missing_required");
        assert_eq!(f.features, ["temperature"]);
        let t = outcome(&f.outcomes, "temperature");
        assert_eq!(t.status, FeatureStatus::Invalid);
        assert!(t.reason.as_deref().is_some_and(|r| r.contains("[25, 45]")));
        assert!(
            f.outcomes.iter().all(|o| o.value.is_none()),
            "no value reached a model"
        );
        // The loggable detail carries no patient value.
        assert!(!f.detail.contains("52"), "{}", f.detail);
    }

    #[test]
    fn out_of_range_after_conversion_is_checked_in_the_contract_unit() {
        let mut i = complete();
        // 30 mg/dL of creatinine is 2652 umol/L, above the range: filled.
        i.insert("creatinine".into(), Input::number(30.0).with_unit("mg/dL"));
        let a = assemble(&contract(), &i, now()).expect("assembled");
        let c = outcome(&a.features, "creatinine");
        assert_eq!(c.status, FeatureStatus::Filled);
        assert_eq!(c.cause, Some(FeatureStatus::Invalid));
        assert_eq!(c.value, Some(80.0));
    }

    #[test]
    fn unknown_category_level_is_invalid() {
        let mut i = complete();
        i.insert("sex".into(), Input::text("M"));
        let f = assemble(&contract(), &i, now()).expect_err("fallback");
        assert_eq!(f.features, ["sex"]);
        let s = outcome(&f.outcomes, "sex");
        assert_eq!(s.status, FeatureStatus::Invalid);
        assert!(s.reason.as_deref().is_some_and(|r| r.contains("`M`")));
    }

    #[test]
    fn type_mismatches_are_invalid() {
        let cases = [
            ("temperature", Input::text("38")),
            ("temperature", Input::boolean(true)),
            ("temperature", Input::number(f64::NAN)),
            ("sex", Input::number(1.0)),
            ("age", Input::number(67.5)),
            ("sex", Input::text("male").with_unit("1")),
        ];
        for (name, input) in cases {
            let mut i = complete();
            i.insert(name.into(), input.clone());
            let f = assemble(&contract(), &i, now()).expect_err("fallback");
            assert_eq!(f.features, [name], "{input:?}");
            assert_eq!(outcome(&f.outcomes, name).status, FeatureStatus::Invalid);
        }
        let mut i = complete();
        i.insert("ventilated".into(), Input::number(1.0));
        let f = assemble(&contract(), &i, now()).expect_err("fallback");
        assert_eq!(f.reason, FallbackReason::MissingOptional);
    }

    #[test]
    fn booleans_encode_as_zero_and_one() {
        let mut i = complete();
        i.insert("ventilated".into(), Input::boolean(true));
        let a = assemble(&contract(), &i, now()).expect("assembled");
        assert_eq!(a.row[4], 1.0);
    }

    #[test]
    fn missing_optional_features_follow_their_policy() {
        let mut i = complete();
        i.remove("creatinine");
        i.remove("lactate");
        let a = assemble(&contract(), &i, now()).expect("assembled");
        let c = outcome(&a.features, "creatinine");
        assert_eq!(
            (c.status, c.cause, c.value),
            (
                FeatureStatus::Filled,
                Some(FeatureStatus::Missing),
                Some(80.0)
            )
        );
        assert_eq!(a.row[1], 80.0);
        let l = outcome(&a.features, "lactate");
        assert_eq!((l.status, l.value), (FeatureStatus::Missing, None));
        assert!(a.row[2].is_nan());

        i.remove("ventilated");
        let f = assemble(&contract(), &i, now()).expect_err("abstains");
        assert_eq!(f.reason, FallbackReason::MissingOptional);
        assert_eq!(f.features, ["ventilated"]);
    }

    #[test]
    fn missing_required_is_a_fallback_listing_every_failing_feature() {
        let mut i = complete();
        i.remove("temperature");
        i.remove("age");
        i.remove("ventilated");
        let f = assemble(&contract(), &i, now()).expect_err("fallback");
        assert_eq!(f.reason, FallbackReason::MissingRequired);
        assert_eq!(f.features, ["temperature", "age", "ventilated"]);
        assert_eq!(outcome(&f.outcomes, "age").status, FeatureStatus::Missing);
    }

    #[test]
    fn prohibited_features_refuse_the_request() {
        let mut i = complete();
        i.insert("ethnicity".into(), Input::text("a"));
        let f = assemble(&contract(), &i, now()).expect_err("refused");
        assert_eq!(f.reason, FallbackReason::ProhibitedInput);
        assert_eq!(f.features, ["ethnicity"]);
        assert!(f.outcomes.is_empty());
    }

    #[test]
    fn unknown_inputs_are_reported_not_used() {
        let mut i = complete();
        i.insert("heart_rate".into(), Input::number(80.0));
        let a = assemble(&contract(), &i, now()).expect("assembled");
        assert_eq!(a.unknown_inputs, ["heart_rate"]);
        assert_eq!(a.row.len(), 6);
    }

    #[test]
    fn outcomes_serialize_with_snake_case_statuses() {
        let mut i = complete();
        i.remove("creatinine");
        let a = assemble(&contract(), &i, now()).expect("assembled");
        let json = serde_json::to_string(&a.features[1]).expect("json");
        assert_eq!(
            json,
            r#"{"name":"creatinine","value":80.0,"status":"filled","cause":"missing","reason":"not supplied"}"#
        );
        i.remove("temperature");
        let f = assemble(&contract(), &i, now()).expect_err("fallback");
        let json = serde_json::to_string(&f).expect("json");
        assert!(
            json.starts_with(r#"{"reason":"missing_required","features":["temperature"]"#),
            "{json}"
        );
        let back: Fallback = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, f);
    }

    #[test]
    fn inputs_deserialize_from_plain_json() {
        let i: Inputs = serde_json::from_str(
            r#"{"temperature":{"value":101.3,"unit":"[degF]","observed_at":"2026-03-01T11:00:00Z"},
                "sex":{"value":"male"},"ventilated":{"value":true}}"#,
        )
        .expect("inputs");
        assert_eq!(i["temperature"].value, InputValue::Number(101.3));
        assert_eq!(i["sex"].value, InputValue::Text("male".into()));
        assert_eq!(i["ventilated"].value, InputValue::Bool(true));
        assert_eq!(i["temperature"].observed_at, Some(hours_ago(1)));
    }

    #[test]
    fn scorer_scores_with_an_explanation_that_sums_to_the_logit() {
        let s = scorer();
        let r = s.score(&complete(), now()).expect("scored");
        let x = [38.5f32, 95.0, 2.1, 1.0, 0.0, 67.0];
        let logit: f32 = x.iter().zip(WEIGHTS).map(|(a, b)| a * b).sum::<f32>() - 1.0;
        let want = 1.0 / (1.0 + f64::from(-logit).exp());
        assert!((r.score - want).abs() < 1e-6, "{} vs {want}", r.score);
        assert_eq!(r.explanation.len(), 6);
        assert_eq!(r.explanation[0].feature, "temperature");
        assert_eq!(r.explanation[0].value, Some(38.5));
        let sum: f64 = r.explanation.iter().map(|c| c.contribution).sum::<f64>() - 1.0;
        assert!((sum - f64::from(logit)).abs() < 1e-4);
    }

    #[test]
    fn scorer_refuses_pass_missing_for_a_model_that_cannot_take_nan() {
        let model = Model::from_bytes(&test_models::logistic(&WEIGHTS, -1.0)).expect("model");
        let e = Scorer::new(Arc::new(contract()), Arc::new(model)).expect_err("refused");
        assert!(
            e.to_string().contains("`lactate` passes missing values"),
            "{e}"
        );
    }

    #[test]
    fn scorer_fills_where_the_contract_says() {
        let s = scorer();
        let mut i = complete();
        i.remove("lactate");
        let r = s.score(&i, now()).expect("scored");
        assert_eq!(r.assembled.row[2], 1.0);
        assert!((0.0..=1.0).contains(&r.score));
    }

    #[test]
    fn scorer_passes_on_assembly_fallbacks() {
        let s = scorer();
        let mut i = complete();
        i.remove("temperature");
        let f = s.score(&i, now()).expect_err("fallback");
        assert_eq!(f.reason, FallbackReason::MissingRequired);
    }

    #[test]
    fn scorer_refuses_a_model_of_the_wrong_width() {
        let model = Model::from_bytes(&test_models::logistic(&[1.0; 5], 0.0)).expect("model");
        let e = Scorer::new(Arc::new(contract()), Arc::new(model)).expect_err("mismatch");
        assert!(matches!(e, Error::ContractMismatch(_)), "{e}");
        assert!(e.to_string().contains("5 features"), "{e}");
    }

    #[test]
    fn scorer_refuses_unknown_input_or_output_names() {
        for (input, output, needle) in [
            (
                "float_input",
                "probabilities",
                "`float_input` is not in the model",
            ),
            (
                "x",
                "output_probability",
                "`output_probability` is not in the model",
            ),
        ] {
            let mut c = linear_contract();
            c.model.input = input.into();
            c.model.output = output.into();
            let model = Model::from_bytes(&test_models::logistic(&WEIGHTS, 0.0)).expect("model");
            let e = Scorer::new(Arc::new(c), Arc::new(model)).expect_err("mismatch");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn scorer_refuses_an_output_without_probabilities() {
        let mut c = linear_contract();
        c.model.output = "label".into();
        let model =
            Arc::new(Model::from_bytes(&test_models::logistic(&WEIGHTS, 0.0)).expect("model"));
        assert!(Scorer::new(Arc::new(c), model.clone()).is_err());
        let mut c = linear_contract();
        c.model.positive_class_index = 2;
        let e = Scorer::new(Arc::new(c), model).expect_err("no column 2");
        assert!(e.to_string().contains("column 2"), "{e}");
    }

    #[test]
    fn a_panic_in_the_executor_becomes_an_error() {
        let r: Result<(), Error> = guarded(|| panic!("boom"));
        let e = r.expect_err("caught");
        assert!(e.to_string().contains("panicked: boom"), "{e}");
    }
}
