//! The one error type of the crate: load-time refusals and run-time input problems.

/// Everything that can go wrong loading or running a model.
///
/// Load-time variants (`Malformed`, `Unsupported*`, `InvalidModel`) are raised by
/// [`crate::Model::from_bytes`] only; a model that loads never fails for those reasons later.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a decodable ONNX protobuf, or the graph is structurally broken.
    #[error("malformed model: {0}")]
    Malformed(String),
    /// A node uses an operator this executor does not implement.
    #[error("node `{node}`: operator `{op_type}` (domain `{domain}`) is not supported")]
    UnsupportedOperator {
        op_type: String,
        domain: String,
        node: String,
    },
    /// The model imports an operator-set version this executor does not implement.
    #[error("operator set `{domain}` version {version} is not supported")]
    UnsupportedOpset { domain: String, version: i64 },
    /// A supported operator with attributes or constants that cannot be honoured.
    #[error("node `{node}` ({op_type}): {reason}")]
    InvalidModel {
        op_type: String,
        node: String,
        reason: String,
    },
    /// The caller's inputs do not fit the model (names, element types, shapes).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A node could not evaluate the values it was given (for example incompatible shapes).
    #[error("node `{node}` ({op_type}) failed: {reason}")]
    Execution {
        op_type: String,
        node: String,
        reason: String,
    },
    /// A feature contract and a model that do not fit each other (names, widths, outputs).
    #[error("the contract does not fit the model: {0}")]
    ContractMismatch(String),
    /// A reference-prediction file that cannot be read as the contract describes.
    #[error("reference predictions, {location}: {reason}")]
    InvalidReference { location: String, reason: String },
    /// The requested operation does not apply to this model (e.g. `predict_proba` on a regressor).
    #[error("not applicable to this model: {0}")]
    NotApplicable(String),
}
