//! Validation of evaluation input: typed errors naming the first offending row.
//!
//! Row indices are 0-based positions in the arrays given; the caller adds file and column
//! names.

use std::fmt;

/// Why evaluation input was rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    /// No rows at all.
    Empty,
    /// Two columns differ in length.
    LengthMismatch {
        column: String,
        expected: usize,
        actual: usize,
    },
    /// A label that is not 0 or 1.
    LabelNotBinary { row: usize, value: f64 },
    /// A NaN or infinite score.
    ScoreNotFinite { row: usize },
    /// A score outside `[0, 1]` where probabilities are required (calibration).
    ScoreOutsideUnitInterval { row: usize, value: f64 },
    /// A NaN in a numeric drift feature.
    FeatureNotFinite { feature: String, row: usize },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no rows"),
            Self::LengthMismatch {
                column,
                expected,
                actual,
            } => write!(f, "column {column} has {actual} rows, expected {expected}"),
            Self::LabelNotBinary { row, value } => {
                write!(f, "row {row}: label {value} is not 0 or 1")
            }
            Self::ScoreNotFinite { row } => write!(f, "row {row}: score is NaN or infinite"),
            Self::ScoreOutsideUnitInterval { row, value } => {
                write!(f, "row {row}: score {value} is outside [0, 1]")
            }
            Self::FeatureNotFinite { feature, row } => {
                write!(f, "feature {feature}, row {row}: value is NaN or infinite")
            }
        }
    }
}

impl std::error::Error for InputError {}

/// Labels as booleans; each must be exactly 0 or 1.
pub fn validate_labels(labels: &[f64]) -> Result<Vec<bool>, InputError> {
    labels
        .iter()
        .enumerate()
        .map(|(row, &v)| {
            if v == 0.0 {
                Ok(false)
            } else if v == 1.0 {
                Ok(true)
            } else {
                Err(InputError::LabelNotBinary { row, value: v })
            }
        })
        .collect()
}

/// Every score finite; and within `[0, 1]` when `probabilities` is set.
pub fn validate_scores(scores: &[f64], probabilities: bool) -> Result<(), InputError> {
    for (row, &s) in scores.iter().enumerate() {
        if !s.is_finite() {
            return Err(InputError::ScoreNotFinite { row });
        }
        if probabilities && !(0.0..=1.0).contains(&s) {
            return Err(InputError::ScoreOutsideUnitInterval { row, value: s });
        }
    }
    Ok(())
}

/// The first row whose score lies outside `[0, 1]`, if any.
pub fn find_score_outside_unit_interval(scores: &[f64]) -> Option<usize> {
    scores.iter().position(|s| !(0.0..=1.0).contains(s))
}

/// Every value of a numeric feature finite.
pub fn validate_feature(name: &str, values: &[f64]) -> Result<(), InputError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(InputError::FeatureNotFinite {
            feature: name.to_string(),
            row,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_first_offending_row() {
        assert_eq!(
            validate_labels(&[0.0, 1.0, 2.0, 3.0]),
            Err(InputError::LabelNotBinary { row: 2, value: 2.0 })
        );
        assert_eq!(
            validate_scores(&[0.1, f64::NAN], true),
            Err(InputError::ScoreNotFinite { row: 1 })
        );
        assert_eq!(
            validate_scores(&[0.1, 1.5], true),
            Err(InputError::ScoreOutsideUnitInterval { row: 1, value: 1.5 })
        );
        assert!(validate_scores(&[0.1, 1.5], false).is_ok());
        assert!(validate_labels(&[f64::NAN]).is_err());
    }
}
