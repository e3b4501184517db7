//! Property: for every classifier fixture, scoring random rows never panics and every
//! probability is in [0, 1] — for rows of plausible magnitude always, and for rows with
//! missing values (NaN) whenever the model handles them (trees with a learned direction,
//! imputers). Rows with values near f32::MAX overflow linear scores to ±inf, and inf - inf is
//! NaN here as in ONNX Runtime; for them the property is "in [0, 1] or NaN", never a wrong
//! number, because the scorer turns NaN into a model_error fallback.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use proptest::prelude::*;
use vigil_inference::{Model, Tensor, TensorData, Value};

const N_FEATURES: usize = 20;

/// Two-class fixtures scored with `predict_proba`, and whether they take NaN.
const BINARY: &[(&str, bool)] = &[
    ("logreg", false),
    ("logreg_nozipmap", false),
    ("mlp_nozipmap", false),
    ("gbm", true),
    ("gbm_nozipmap", true),
    ("rf_nozipmap", true),
    ("hgb_nan_nozipmap", true),
    ("xgb_nan", true),
    ("lgbm_nan_nozipmap", true),
    ("imputer_logreg", true),
];

/// Multi-class fixtures, run as graphs; every probability output is checked.
const MULTICLASS: &[(&str, bool)] = &[
    ("logreg_multi", false),
    ("logreg_ovr", false),
    ("gbm_multi_str", true),
    ("rf_multi", true),
    ("trees_softmax_zero", true),
    ("as_tensor_rf3", true),
    ("double_rf3", true),
];

fn load(name: &str) -> Model {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(format!("{name}.onnx"));
    Model::from_bytes(&std::fs::read(path).expect("fixture")).expect("loads")
}

/// Values of a magnitude a lab, vital sign or count can have (in any unit), and some tiny ones.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -10.0f32..10.0,
        2 => -1e6f32..1e6,
        1 => Just(0.0f32),
        1 => -1e-30f32..1e-30,
    ]
}

/// Any finite float, including values whose products overflow.
fn extreme() -> impl Strategy<Value = f32> {
    prop_oneof![
        2 => value(),
        1 => prop::num::f32::NORMAL | prop::num::f32::SUBNORMAL | prop::num::f32::ZERO,
        1 => Just(f32::MAX),
        1 => Just(-f32::MAX),
    ]
}

/// Rows of plausible values, with NaN in some cells when `nan` is set.
fn rows(nan: bool) -> impl Strategy<Value = Vec<f32>> {
    let cell = if nan {
        prop_oneof![4 => value(), 1 => Just(f32::NAN)].boxed()
    } else {
        value().boxed()
    };
    (1usize..5).prop_flat_map(move |n| prop::collection::vec(cell.clone(), n * N_FEATURES))
}

fn in_unit(p: f32) -> bool {
    (0.0..=1.0).contains(&p)
}

fn check_binary(model: &Model, x: &[f32], nan_allowed: bool) -> Result<(), TestCaseError> {
    let p = model
        .predict_proba(x, N_FEATURES)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(p.len(), x.len() / N_FEATURES);
    for &v in &p {
        prop_assert!(
            in_unit(v) || (nan_allowed && v.is_nan()),
            "probability {} for row {:?}",
            v,
            x
        );
    }
    Ok(())
}

fn check_multiclass(model: &Model, x: &[f32], nan_allowed: bool) -> Result<(), TestCaseError> {
    let input = &model.inputs()[0];
    let n = x.len() / N_FEATURES;
    let data = match &input.value_type {
        vigil_inference::ValueType::Tensor {
            element: vigil_inference::ElementType::F64,
            ..
        } => TensorData::F64(x.iter().map(|&v| f64::from(v)).collect()),
        _ => TensorData::F32(x.to_vec()),
    };
    let t = Tensor::new(vec![n, N_FEATURES], data).map_err(TestCaseError::fail)?;
    let outputs = model
        .run(&[(input.name.as_str(), t)])
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut seen = false;
    for (_, v) in &outputs {
        let probs: Vec<f32> = match v {
            Value::Tensor(t) => match t.data() {
                TensorData::F32(p) => p.clone(),
                _ => continue,
            },
            Value::MapsI64(m) => m.iter().flatten().map(|p| p.1).collect(),
            Value::MapsString(m) => m.iter().flatten().map(|p| p.1).collect(),
        };
        seen = true;
        for p in probs {
            prop_assert!(
                in_unit(p) || (nan_allowed && p.is_nan()),
                "probability {} for rows {:?}",
                p,
                x
            );
        }
    }
    prop_assert!(seen, "no probability output");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn binary_probabilities_stay_in_the_unit_interval(x in rows(false)) {
        for (name, _) in BINARY {
            check_binary(&load(name), &x, false)?;
        }
    }

    #[test]
    fn binary_probabilities_with_missing_values(x in rows(true)) {
        for (name, _) in BINARY.iter().filter(|(_, nan)| *nan) {
            check_binary(&load(name), &x, false)?;
        }
        // Models that cannot take NaN must still not panic.
        for (name, _) in BINARY.iter().filter(|(_, nan)| !*nan) {
            let _ = load(name).predict_proba(&x, N_FEATURES);
        }
    }

    #[test]
    fn extreme_values_give_a_probability_or_nan(
        x in (1usize..4).prop_flat_map(|n| prop::collection::vec(extreme(), n * N_FEATURES))
    ) {
        for (name, _) in BINARY {
            check_binary(&load(name), &x, true)?;
        }
        for (name, _) in MULTICLASS {
            check_multiclass(&load(name), &x, true)?;
        }
    }

    #[test]
    fn multiclass_probabilities_stay_in_the_unit_interval(x in rows(false)) {
        for (name, _) in MULTICLASS {
            check_multiclass(&load(name), &x, false)?;
        }
    }

    #[test]
    fn multiclass_probabilities_with_missing_values(x in rows(true)) {
        for (name, _) in MULTICLASS.iter().filter(|(_, nan)| *nan) {
            check_multiclass(&load(name), &x, false)?;
        }
    }
}
