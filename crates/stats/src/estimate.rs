//! The `Estimate` type: a value, or the reason it cannot be estimated.
//!
//! Statistics never return a silent NaN. Degenerate input (one class, empty group, zero
//! variance, too few rows) yields `NotEstimable` with a human-readable reason, and the JSON
//! report writes `null` for the value with a `<key>_reason` string beside it.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Why a quantity could not be estimated from the data given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEstimable {
    pub reason: String,
}

impl NotEstimable {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for NotEstimable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for NotEstimable {}

/// A value, or why it could not be estimated.
pub type Estimate<T> = Result<T, NotEstimable>;

/// Shorthand for a `NotEstimable` error.
pub(crate) fn not_estimable<T>(reason: impl Into<String>) -> Estimate<T> {
    Err(NotEstimable::new(reason))
}

/// A finite `f64`, or `NotEstimable` with the given reason: the guard against silent NaN.
pub(crate) fn finite(value: f64, reason: &str) -> Estimate<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        not_estimable(reason)
    }
}

/// Writes `key: value`, or `key: null` and `key_reason: "..."`, into a serde map.
pub(crate) fn put<M: SerializeMap, T: Serialize>(
    map: &mut M,
    key: &str,
    value: &Estimate<T>,
) -> Result<(), M::Error> {
    match value {
        Ok(v) => map.serialize_entry(key, v),
        Err(e) => {
            map.serialize_entry(key, &Option::<()>::None)?;
            map.serialize_entry(&format!("{key}_reason"), &e.reason)
        }
    }
}

/// Serializes a struct-like value whose fields may be `Estimate`s, as a JSON object.
pub(crate) trait EstimateFields {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

/// Serializes any `EstimateFields` value as a map.
pub(crate) fn serialize_fields<S: Serializer, T: EstimateFields>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    value.write_fields(&mut map)?;
    map.end()
}

/// Implements `Serialize` through `EstimateFields`.
macro_rules! serialize_via_fields {
    ($($t:ty),* $(,)?) => {
        $(impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::estimate::serialize_fields(self, serializer)
            }
        })*
    };
}
pub(crate) use serialize_via_fields;

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        a: Estimate<f64>,
        b: Estimate<f64>,
    }
    impl EstimateFields for Pair {
        fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
            put(map, "a", &self.a)?;
            put(map, "b", &self.b)
        }
    }
    serialize_via_fields!(Pair);

    #[test]
    fn not_estimable_serializes_as_null_with_reason() {
        let p = Pair {
            a: Ok(0.5),
            b: not_estimable("only one class"),
        };
        let json = serde_json::to_string(&p).expect("serializes");
        assert_eq!(json, r#"{"a":0.5,"b":null,"b_reason":"only one class"}"#);
    }

    #[test]
    fn finite_rejects_nan_and_infinity() {
        assert!(finite(f64::NAN, "nan").is_err());
        assert!(finite(f64::INFINITY, "inf").is_err());
        assert_eq!(finite(1.5, "x"), Ok(1.5));
    }
}
