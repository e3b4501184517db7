//! `ai.onnx.ml` operators other than tree ensembles, and the score transforms they share.
//!
//! The transforms reproduce ONNX Runtime's float arithmetic (its logistic, its ErfInv-based
//! probit approximation, its softmax) because conformance is measured against ORT.

use std::borrow::Cow;

use super::standard::OpResult;
use crate::tensor::{Tensor, TensorData, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NONE" => Self::None,
            "LOGISTIC" => Self::Logistic,
            "SOFTMAX" => Self::Softmax,
            "SOFTMAX_ZERO" => Self::SoftmaxZero,
            "PROBIT" => Self::Probit,
            _ => return None,
        })
    }
}

/// ORT's logistic: symmetric form, exact to float rounding.
#[inline]
pub(crate) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 { 1.0 - v } else { v }
}

/// ORT's approximation of the inverse error function (Winitzki, a = 0.147); probit outputs
/// are only comparable with ORT if the same approximation is used.
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

#[inline]
pub(crate) fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

pub(crate) fn softmax_in_place(v: &mut [f32]) {
    let mut max = -f32::MAX;
    for &x in v.iter() {
        if x > max {
            max = x;
        }
    }
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Softmax that leaves (near-)zero scores at zero, as ORT's SOFTMAX_ZERO does.
pub(crate) fn softmax_zero_in_place(v: &mut [f32]) {
    let mut max = -f32::MAX;
    for &x in v.iter() {
        if x > max {
            max = x;
        }
    }
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        if *x > 0.000_000_1 || *x < -0.000_000_1 {
            *x = (*x - max).exp();
            sum += *x;
        } else {
            *x *= exp_neg_max;
        }
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Applies a post transform to a row of two or more scores.
pub(crate) fn transform_row(v: &mut [f32], post: PostTransform) {
    match post {
        PostTransform::None => {}
        PostTransform::Logistic => v.iter_mut().for_each(|x| *x = logistic(*x)),
        PostTransform::Probit => v.iter_mut().for_each(|x| *x = probit(*x)),
        PostTransform::Softmax => softmax_in_place(v),
        PostTransform::SoftmaxZero => softmax_zero_in_place(v),
    }
}

/// Numeric input as f32 rows `[n, c]`; ML operators compute in float whatever they are given.
pub(crate) fn float_rows(t: &Tensor) -> OpResult<(Cow<'_, [f32]>, usize, usize)> {
    let shape = t.shape();
    let (n, c) = match shape.len() {
        1 => (1, shape[0]),
        2 => (shape[0], shape[1]),
        _ => return Err(format!("expected a 1-D or 2-D input, got shape {shape:?}")),
    };
    let data = match t.data() {
        TensorData::F32(v) => Cow::Borrowed(v.as_slice()),
        TensorData::F64(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        TensorData::I64(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        TensorData::String(_) => return Err("expected a numeric input, got strings".into()),
    };
    Ok((data, n, c))
}

fn per_column<'a>(v: &'a [f32], c: usize, what: &str) -> OpResult<impl Fn(usize) -> f32 + 'a> {
    if v.len() != 1 && v.len() != c {
        return Err(format!("{what} has {} values for {c} columns", v.len()));
    }
    Ok(move |j: usize| if v.len() == 1 { v[0] } else { v[j] })
}

#[derive(Debug, Clone)]
pub(crate) struct Scaler {
    pub offset: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Scaler {
    pub(crate) fn apply_row(&self, row: &[f32], out: &mut [f32]) -> OpResult<()> {
        let c = row.len();
        let off = per_column(&self.offset, c, "Scaler offset")?;
        let sc = per_column(&self.scale, c, "Scaler scale")?;
        for (j, (o, &x)) in out.iter_mut().zip(row).enumerate() {
            *o = (x - off(j)) * sc(j);
        }
        Ok(())
    }

    pub(crate) fn eval(&self, t: &Tensor) -> OpResult<Tensor> {
        let (x, n, c) = float_rows(t)?;
        let mut out = vec![0.0f32; n * c];
        if c > 0 {
            for (row, o) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
                self.apply_row(row, o)?;
            }
        }
        Ok(Tensor::f32(t.shape().to_vec(), out))
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Norm {
    Max,
    L1,
    L2,
}

pub(crate) fn normalizer(t: &Tensor, norm: Norm) -> OpResult<Tensor> {
    let (x, n, c) = float_rows(t)?;
    let mut out = x.into_owned();
    if c > 0 {
        for row in out.chunks_exact_mut(c) {
            let d = match norm {
                Norm::Max => row.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                Norm::L1 => row.iter().map(|v| v.abs()).sum(),
                Norm::L2 => row.iter().map(|v| v * v).sum::<f32>().sqrt(),
            };
            // ORT leaves a row whose norm is zero as it is (an all-zero one-vs-rest row stays
            // zeros rather than becoming 0/0 = NaN).
            if d != 0.0 {
                row.iter_mut().for_each(|v| *v /= d);
            }
        }
    }
    Ok(Tensor::f32(vec![n, c], out))
}

#[derive(Debug, Clone)]
pub(crate) enum Imputer {
    Float { values: Vec<f32>, replaced: f32 },
    Int { values: Vec<i64>, replaced: i64 },
}

impl Imputer {
    pub(crate) fn eval(&self, t: &Tensor) -> OpResult<Tensor> {
        let c = *t.shape().last().ok_or("Imputer needs at least 1-D input")?;
        match (self, t.data()) {
            (Imputer::Float { values, replaced }, TensorData::F32(v)) => {
                let val = per_column(values, c, "Imputer values")?;
                let out = v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        let missing = if replaced.is_nan() {
                            x.is_nan()
                        } else {
                            x == *replaced
                        };
                        if missing { val(i % c) } else { x }
                    })
                    .collect();
                Ok(Tensor::f32(t.shape().to_vec(), out))
            }
            (Imputer::Int { values, replaced }, TensorData::I64(v)) => {
                if values.len() != 1 && values.len() != c {
                    return Err("Imputer values do not match the columns".into());
                }
                let out = v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        if x == *replaced {
                            values[if values.len() == 1 { 0 } else { i % c }]
                        } else {
                            x
                        }
                    })
                    .collect();
                Ok(Tensor::with_data(t.shape().to_vec(), TensorData::I64(out)))
            }
            _ => Err("Imputer input type does not match its imputed values".into()),
        }
    }
}

/// Class labels of a classifier: ints or strings, one per class.
#[derive(Debug, Clone)]
pub(crate) enum Labels {
    Int(Vec<i64>),
    String(Vec<String>),
}

impl Labels {
    pub(crate) fn len(&self) -> usize {
        match self {
            Labels::Int(v) => v.len(),
            Labels::String(v) => v.len(),
        }
    }

    /// Builds the label output from per-row class indices.
    pub(crate) fn tensor(&self, idx: &[usize], n: usize) -> Tensor {
        let data = match self {
            Labels::Int(v) => TensorData::I64(
                idx.iter()
                    .map(|&i| v.get(i).copied().unwrap_or(i as i64))
                    .collect(),
            ),
            Labels::String(v) => TensorData::String(
                idx.iter()
                    .map(|&i| v.get(i).cloned().unwrap_or_default())
                    .collect(),
            ),
        };
        Tensor::with_data(vec![n], data)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LinearClassifier {
    /// `[n_targets, n_features]`, row-major.
    pub coef: Vec<f32>,
    pub intercepts: Vec<f32>,
    pub labels: Labels,
    pub post: PostTransform,
}

impl LinearClassifier {
    pub(crate) fn n_targets(&self) -> usize {
        self.intercepts.len()
    }

    /// With one coefficient row and two labels ORT writes two score columns.
    pub(crate) fn adds_second_class(&self) -> bool {
        self.n_targets() == 1 && self.labels.len() == 2
    }

    pub(crate) fn n_features(&self) -> usize {
        self.coef.len() / self.n_targets().max(1)
    }

    /// Raw scores of one row (before the post transform), in float as ORT's Gemm.
    pub(crate) fn raw_scores(&self, row: &[f32], out: &mut [f32]) {
        let c = row.len();
        for (t, o) in out.iter_mut().enumerate() {
            let w = &self.coef[t * c..(t + 1) * c];
            let mut s = 0.0f32;
            for (a, b) in w.iter().zip(row) {
                s += a * b;
            }
            *o = s + self.intercepts[t];
        }
    }

    /// Scores one row into `probs` (width `out_width()`); returns the class index.
    pub(crate) fn score_row(&self, row: &[f32], probs: &mut [f32]) -> usize {
        let k = self.n_targets();
        self.raw_scores(row, &mut probs[..k]);
        let label = if k == 1 {
            usize::from(probs[0] > 0.0)
        } else {
            let mut best = 0;
            for j in 1..k {
                if probs[j] > probs[best] {
                    best = j;
                }
            }
            best
        };
        if k == 1 {
            let s = probs[0];
            match self.post {
                PostTransform::Probit => probs[0] = probit(s),
                // ONNX Runtime (1.19) writes `[1 - s, s]` from the raw score here, with no
                // logistic even when LOGISTIC is asked for; the equivalence check against the
                // framework's probabilities is what catches such an export.
                _ if self.adds_second_class() => {
                    probs[0] = 1.0 - s;
                    probs[1] = s;
                }
                PostTransform::Logistic => probs[0] = logistic(s),
                _ => {}
            }
        } else {
            transform_row(&mut probs[..k], self.post);
        }
        label
    }

    pub(crate) fn out_width(&self) -> usize {
        if self.adds_second_class() {
            2
        } else {
            self.n_targets()
        }
    }

    pub(crate) fn eval(&self, t: &Tensor) -> OpResult<Vec<Value>> {
        let (x, n, c) = float_rows(t)?;
        if c != self.n_features() {
            return Err(format!("expected {} features, got {c}", self.n_features()));
        }
        let w = self.out_width();
        let mut probs = vec![0.0f32; n * w];
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            labels.push(self.score_row(&x[i * c..(i + 1) * c], &mut probs[i * w..(i + 1) * w]));
        }
        Ok(vec![
            Value::Tensor(self.labels.tensor(&labels, n)),
            Value::Tensor(Tensor::f32(vec![n, w], probs)),
        ])
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LinearRegressor {
    pub coef: Vec<f32>,
    pub intercepts: Vec<f32>,
    pub targets: usize,
    pub post: PostTransform,
}

impl LinearRegressor {
    pub(crate) fn n_features(&self) -> usize {
        self.coef.len() / self.targets.max(1)
    }

    pub(crate) fn eval(&self, t: &Tensor) -> OpResult<Tensor> {
        let (x, n, c) = float_rows(t)?;
        if c != self.n_features() {
            return Err(format!("expected {} features, got {c}", self.n_features()));
        }
        let k = self.targets;
        let mut out = vec![0.0f32; n * k];
        for i in 0..n {
            let row = &x[i * c..(i + 1) * c];
            let o = &mut out[i * k..(i + 1) * k];
            for (t, v) in o.iter_mut().enumerate() {
                let mut s = 0.0f32;
                for (a, b) in self.coef[t * c..(t + 1) * c].iter().zip(row) {
                    s += a * b;
                }
                *v = s + self.intercepts.get(t).copied().unwrap_or(0.0);
            }
            if k == 1 {
                if self.post == PostTransform::Probit {
                    o[0] = probit(o[0]);
                }
            } else {
                transform_row(o, self.post);
            }
        }
        Ok(Tensor::f32(vec![n, k], out))
    }
}

pub(crate) fn zipmap(t: &Tensor, labels: &Labels) -> OpResult<Value> {
    let (x, n, c) = float_rows(t)?;
    if c != labels.len() {
        return Err(format!(
            "ZipMap has {} labels for {c} columns",
            labels.len()
        ));
    }
    Ok(match labels {
        Labels::Int(l) => Value::MapsI64(
            (0..n)
                .map(|i| {
                    l.iter()
                        .copied()
                        .zip(x[i * c..(i + 1) * c].iter().copied())
                        .collect()
                })
                .collect(),
        ),
        Labels::String(l) => Value::MapsString(
            (0..n)
                .map(|i| {
                    l.iter()
                        .cloned()
                        .zip(x[i * c..(i + 1) * c].iter().copied())
                        .collect()
                })
                .collect(),
        ),
    })
}

/// Selects elements along the last axis, as `ai.onnx.ml.ArrayFeatureExtractor` does
/// (a 1-D input gives a `[1, k]` output).
pub(crate) fn array_feature_extractor(x: &Tensor, idx: &Tensor) -> OpResult<Tensor> {
    let ix = idx
        .as_i64()
        .ok_or("ArrayFeatureExtractor indices must be int64")?;
    let shape = x.shape();
    let last = *shape
        .last()
        .ok_or("ArrayFeatureExtractor needs at least 1-D input")?;
    let ix = ix
        .iter()
        .map(|&i| {
            if (0..last as i64).contains(&i) {
                Ok(i as usize)
            } else {
                Err(format!("index {i} out of range"))
            }
        })
        .collect::<OpResult<Vec<_>>>()?;
    let outer = x.len().checked_div(last).unwrap_or(0);
    let mut out_shape = if shape.len() == 1 {
        vec![1]
    } else {
        shape[..shape.len() - 1].to_vec()
    };
    out_shape.push(ix.len());
    fn pick<T: Clone>(v: &[T], outer: usize, last: usize, ix: &[usize]) -> Vec<T> {
        (0..outer)
            .flat_map(|o| ix.iter().map(move |&i| v[o * last + i].clone()))
            .collect()
    }
    let data = match x.data() {
        TensorData::F32(v) => TensorData::F32(pick(v, outer, last, &ix)),
        TensorData::F64(v) => TensorData::F64(pick(v, outer, last, &ix)),
        TensorData::I64(v) => TensorData::I64(pick(v, outer, last, &ix)),
        TensorData::String(v) => TensorData::String(pick(v, outer, last, &ix)),
    };
    Tensor::new(out_shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizer_leaves_a_zero_norm_row_as_ort_does() {
        // ORT 1.19.2 scores the logreg_ovr fixture as [0, 0, 0] where every one-vs-rest
        // logistic underflows to zero; dividing by the zero L1 norm would give NaN.
        let t = Tensor::f32(vec![2, 3], vec![0.0, 0.0, 0.0, 1.0, 3.0, 0.0]);
        for norm in [Norm::L1, Norm::L2, Norm::Max] {
            let out = normalizer(&t, norm).expect("normalizes");
            let v = out.as_f32().expect("floats");
            assert_eq!(&v[..3], &[0.0, 0.0, 0.0], "{norm:?}");
            assert!(v[3..].iter().all(|x| x.is_finite()));
        }
    }
}
