//! Tensors and values passed into and out of a model, and conversion from ONNX constants.

use crate::proto::{TensorProto, data_type};

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    F32,
    F64,
    I64,
    String,
}

impl ElementType {
    pub(crate) fn from_onnx(code: i32) -> Option<Self> {
        match code {
            data_type::FLOAT => Some(Self::F32),
            data_type::DOUBLE => Some(Self::F64),
            data_type::INT64 => Some(Self::I64),
            data_type::STRING => Some(Self::String),
            _ => None,
        }
    }
}

/// Typed, row-major tensor storage.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    String(Vec<String>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::String(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn element_type(&self) -> ElementType {
        match self {
            Self::F32(_) => ElementType::F32,
            Self::F64(_) => ElementType::F64,
            Self::I64(_) => ElementType::I64,
            Self::String(_) => ElementType::String,
        }
    }
}

/// A dense tensor. Its shape always matches its element count.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// Builds a tensor, checking that `shape` holds exactly `data.len()` elements.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self, String> {
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("shape {shape:?} overflows"))?;
        if count != data.len() {
            return Err(format!(
                "shape {shape:?} holds {count} elements but {} were given",
                data.len()
            ));
        }
        Ok(Self { shape, data })
    }

    /// A `[rows, n_features]` float tensor, the usual input of tabular models.
    pub fn from_rows(rows: Vec<f32>, n_features: usize) -> Result<Self, String> {
        if n_features == 0 || rows.len() % n_features != 0 {
            return Err(format!(
                "{} values do not split into rows of {n_features} features",
                rows.len()
            ));
        }
        let n = rows.len() / n_features;
        Self::new(vec![n, n_features], TensorData::F32(rows))
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    pub fn into_data(self) -> TensorData {
        self.data
    }

    pub fn element_type(&self) -> ElementType {
        self.data.element_type()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            TensorData::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_strings(&self) -> Option<&[String]> {
        match &self.data {
            TensorData::String(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn f32(shape: Vec<usize>, v: Vec<f32>) -> Self {
        Self {
            shape,
            data: TensorData::F32(v),
        }
    }

    pub(crate) fn with_data(shape: Vec<usize>, data: TensorData) -> Self {
        Self { shape, data }
    }

    /// Decodes an initializer or constant attribute.
    pub(crate) fn from_proto(t: &TensorProto) -> Result<Self, String> {
        if t.data_location != 0 {
            return Err(format!("tensor `{}` uses external data", t.name));
        }
        let shape = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
            .collect::<Result<Vec<_>, _>>()?;
        let raw = &t.raw_data;
        let data = match t.data_type {
            data_type::FLOAT => TensorData::F32(if raw.is_empty() {
                t.float_data.clone()
            } else {
                fixed::<4, _>(raw, f32::from_le_bytes)?
            }),
            data_type::DOUBLE => TensorData::F64(if raw.is_empty() {
                t.double_data.clone()
            } else {
                fixed::<8, _>(raw, f64::from_le_bytes)?
            }),
            data_type::INT64 => TensorData::I64(if raw.is_empty() {
                t.int64_data.clone()
            } else {
                fixed::<8, _>(raw, i64::from_le_bytes)?
            }),
            // Narrow integer and boolean constants are widened: the executor computes
            // indices and shapes in i64.
            data_type::INT32 => TensorData::I64(if raw.is_empty() {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            } else {
                fixed::<4, _>(raw, |b| i64::from(i32::from_le_bytes(b)))?
            }),
            data_type::BOOL => TensorData::I64(if raw.is_empty() {
                t.int32_data.iter().map(|&v| i64::from(v != 0)).collect()
            } else {
                raw.iter().map(|&b| i64::from(b != 0)).collect()
            }),
            data_type::STRING => TensorData::String(
                t.string_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            other => return Err(format!("tensor element type {other} is not supported")),
        };
        Tensor::new(shape, data)
    }
}

fn fixed<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Result<Vec<T>, String> {
    if raw.len() % N != 0 {
        return Err(format!(
            "raw tensor data of {} bytes is not a multiple of {N}",
            raw.len()
        ));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect())
}

/// One value flowing through a graph: a tensor, or ZipMap's sequence of per-row maps.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Tensor(Tensor),
    /// One map per row from int64 class label to probability, in class order.
    MapsI64(Vec<Vec<(i64, f32)>>),
    /// One map per row from string class label to probability, in class order.
    MapsString(Vec<Vec<(String, f32)>>),
}

impl Value {
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// A named or unnamed dimension fixed only at run time (usually the batch).
    Dynamic(Option<String>),
}

/// The declared type of a model input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueType {
    Tensor {
        element: ElementType,
        shape: Option<Vec<Dim>>,
    },
    /// ZipMap's output: a sequence of maps from class label to probability.
    SequenceOfMaps { key: ElementType },
}

/// Name and declared type of a model input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    pub name: String,
    pub value_type: ValueType,
}
