//! Equivalence check: does the exported model reproduce the training framework's probabilities?
//!
//! A data scientist registers, beside the ONNX artifact, a CSV of rows with the probability the
//! training framework (e.g. scikit-learn's `predict_proba`) gave each. Running the artifact here
//! on the same rows and comparing catches a wrong export (a dropped preprocessing step, a
//! swapped class order, a float/double mismatch) before any patient is scored.

use std::io::Read;

use serde::{Deserialize, Serialize};
use vigil_domain::FeatureContract;

use crate::contract::positive_probabilities;
use crate::error::Error;
use crate::plan::Model;
use crate::tensor::{ElementType, ValueType};

/// Largest accepted absolute difference between the framework's and Vigil's probability.
///
/// The framework computes in double and the artifact usually in float: 1e-5 is above float
/// rounding through a few hundred trees and well below any clinically meaningful change.
pub const REFERENCE_TOLERANCE: f64 = 1e-5;

/// The name of the CSV column holding the framework's positive-class probability.
pub const PROBABILITY_COLUMN: &str = "probability";

/// Rows are scored in batches of this many to bound memory on large reference files.
const BATCH: usize = 1024;

/// The result of comparing an artifact's probabilities with the framework's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquivalenceReport {
    pub rows: usize,
    pub max_abs_diff: f64,
    /// 1-based data row (the header is not counted) with the largest difference.
    pub worst_row: usize,
    pub worst_expected: f64,
    pub worst_actual: f64,
    pub tolerance: f64,
    pub passed: bool,
}

/// Scores every row of `csv` with `model` and compares with its `probability` column.
///
/// The CSV has a header with one column per contract input (by feature name, values already
/// numerically encoded as the model takes them; other columns are ignored) and a `probability`
/// column. An empty cell or `NaN` in an input column is a missing value (NaN), as pandas writes
/// it. A missing column, a non-numeric cell or a row of the wrong length is an error naming
/// the row and column, never the cell's value (the inputs are patient data). A NaN from the model counts as an infinite difference.
pub fn check_reference_predictions<R: Read>(
    model: &Model,
    csv: R,
    contract: &FeatureContract,
) -> Result<EquivalenceReport, Error> {
    let bad = |location: String, reason: String| Error::InvalidReference { location, reason };
    let element = model
        .inputs()
        .iter()
        .find(|i| i.name == contract.model.input)
        .map(|i| match i.value_type {
            ValueType::Tensor {
                element: ElementType::F64,
                ..
            } => ElementType::F64,
            _ => ElementType::F32,
        })
        .ok_or_else(|| {
            Error::ContractMismatch(format!(
                "the contract's input `{}` is not in the model",
                contract.model.input
            ))
        })?;
    if !model
        .outputs()
        .iter()
        .any(|o| o.name == contract.model.output)
    {
        return Err(Error::ContractMismatch(format!(
            "the contract's output `{}` is not in the model",
            contract.model.output
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(csv);
    let header = reader
        .headers()
        .map_err(|e| bad("header".into(), e.to_string()))?
        .clone();
    let find = |name: &str| -> Result<usize, Error> {
        let mut at = header.iter().enumerate().filter(|(_, h)| h.trim() == name);
        let (i, _) = at
            .next()
            .ok_or_else(|| bad("header".into(), format!("no column `{name}`")))?;
        if at.next().is_some() {
            return Err(bad(
                "header".into(),
                format!("column `{name}` appears twice"),
            ));
        }
        Ok(i)
    };
    let names: Vec<&str> = contract.inputs().map(|f| f.name.as_str()).collect();
    let columns = names
        .iter()
        .map(|n| find(n))
        .collect::<Result<Vec<_>, _>>()?;
    let proba_col = find(PROBABILITY_COLUMN)?;
    let width = header.len();
    let n = names.len();

    let mut report = EquivalenceReport {
        rows: 0,
        max_abs_diff: 0.0,
        worst_row: 0,
        worst_expected: f64::NAN,
        worst_actual: f64::NAN,
        tolerance: REFERENCE_TOLERANCE,
        passed: false,
    };
    let mut x: Vec<f64> = Vec::with_capacity(BATCH * n);
    let mut expected: Vec<f64> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| bad(format!("row {}", row + 1), e.to_string()))?;
        if more {
            row += 1;
            if record.len() != width {
                return Err(bad(
                    format!("row {row}"),
                    format!("{} cells, the header has {width}", record.len()),
                ));
            }
            for (name, &c) in names.iter().zip(&columns) {
                let cell = record.get(c).unwrap_or("").trim();
                let v = if cell.is_empty() {
                    f64::NAN
                } else {
                    cell.parse::<f64>().map_err(|_| {
                        bad(
                            format!("row {row}, column `{name}`"),
                            "the value is not a number".to_string(),
                        )
                    })?
                };
                x.push(v);
            }
            let cell = record.get(proba_col).unwrap_or("").trim();
            let p = cell
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| {
                    bad(
                        format!("row {row}, column `{PROBABILITY_COLUMN}`"),
                        "the value is not a probability (a number in [0, 1])".to_string(),
                    )
                })?;
            expected.push(p);
        }
        if expected.len() == BATCH || (!more && !expected.is_empty()) {
            // Data rows read before this batch.
            let first = row - expected.len();
            let actual = positive_probabilities(model, &contract.model, element, &x, n)?;
            for (i, (&e, &a)) in expected.iter().zip(&actual).enumerate() {
                let d = if a.is_nan() {
                    f64::INFINITY
                } else {
                    (a - e).abs()
                };
                if report.worst_row == 0 || d > report.max_abs_diff {
                    report.max_abs_diff = d;
                    report.worst_row = first + 1 + i;
                    report.worst_expected = e;
                    report.worst_actual = a;
                }
            }
            report.rows += expected.len();
            x.clear();
            expected.clear();
        }
        if !more {
            break;
        }
    }
    if report.rows == 0 {
        return Err(bad("data".into(), "the file has no data rows".into()));
    }
    report.passed = report.max_abs_diff <= REFERENCE_TOLERANCE;
    Ok(report)
}
