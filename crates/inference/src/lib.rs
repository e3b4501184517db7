//! Native executor for the ONNX graphs that tabular clinical models export to.
//!
//! [`Model::from_bytes`] decodes the protobuf, checks every operator and opset, and compiles
//! an execution plan (tree ensembles into a flat node layout). Anything unsupported is refused
//! there, with the operator and node named, so a loaded model fails at run time only for bad
//! inputs. A `Model` is immutable, `Send + Sync`, and meant to be shared as `Arc<Model>`.
//!
//! Supported: `ai.onnx.ml` opsets 1–4 (`Scaler`, `Normalizer`, `Imputer`, `LinearClassifier`,
//! `LinearRegressor`, `TreeEnsembleClassifier`, `TreeEnsembleRegressor`, `ZipMap`,
//! `ArrayFeatureExtractor`) and default-domain opsets 1–21 (`Cast`, `Identity`, `Add`, `Sub`,
//! `Mul`, `Div`, `MatMul`, `Gemm`, `Relu`, `Sigmoid`, `Softmax`, `Concat`, `Reshape`, `Flatten`,
//! `Slice`, `Gather`, `ArgMax`, `Constant`). Results match ONNX Runtime to float rounding;
//! double input to tree ensembles is compared with double thresholds, as ORT does.
//!
//! On top of the executor: [`contract`] assembles a model input row from named clinical inputs
//! by a feature contract (units, ranges, freshness, missing policies) and [`Scorer`] scores it
//! or returns the fallback with its reason; [`equivalence`] checks an artifact against the
//! training framework's reference probabilities.

pub mod contract;
pub mod equivalence;
mod error;
mod explain;
mod ops;
mod plan;
mod proto;
mod tensor;

pub use contract::{
    Assembled, Contribution, Fallback, FallbackReason, FeatureOutcome, FeatureStatus, Input,
    InputValue, Inputs, Scored, Scorer, assemble,
};
pub use equivalence::{EquivalenceReport, check_reference_predictions};
pub use error::Error;
pub use explain::Explanation;
pub use plan::Model;
pub use tensor::{Dim, ElementType, Tensor, TensorData, Value, ValueInfo, ValueType};

/// Loads `bytes` and, if that succeeds, runs the model on a few rows: an entry point for
/// fuzzing the loader, the planner and the executor. Never panics on any input; any panic it
/// raises is a bug.
pub fn fuzz_load(bytes: &[u8]) {
    let Ok(model) = Model::from_bytes(bytes) else {
        return;
    };
    // Row values from the bytes themselves, including NaN and infinities, so the walk and the
    // transforms see awkward numbers; the width is bounded to keep each run cheap.
    let Some(width) = model.n_features().filter(|&w| (1..=4096).contains(&w)) else {
        return;
    };
    let specials = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
    ];
    let rows: Vec<f32> = (0..2 * width)
        .map(|i| {
            let b = bytes.get(i % bytes.len().max(1)).copied().unwrap_or(0);
            if b & 0x80 != 0 {
                specials[usize::from(b) % specials.len()]
            } else {
                f32::from(b) / 16.0 - 4.0
            }
        })
        .collect();
    let _ = model.predict_proba(&rows, width);
    let _ = model.explain(&rows[..width]);
    if let [input] = model.inputs() {
        let t = match &input.value_type {
            ValueType::Tensor {
                element: ElementType::F64,
                ..
            } => Tensor::new(
                vec![2, width],
                TensorData::F64(rows.iter().map(|&v| f64::from(v)).collect()),
            ),
            _ => Tensor::new(vec![2, width], TensorData::F32(rows)),
        };
        if let Ok(t) = t {
            let _ = model.run(&[(input.name.as_str(), t)]);
        }
    }
}
