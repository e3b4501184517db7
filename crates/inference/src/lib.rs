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
//! `Slice`, `Gather`, `ArgMax`, `Constant`). Results match ONNX Runtime to float rounding.

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

/// Loads `bytes` and discards the result: an entry point for fuzzing the loader and planner.
pub fn fuzz_load(bytes: &[u8]) {
    if let Ok(model) = Model::from_bytes(bytes) {
        let _ = model.inputs();
    }
}
