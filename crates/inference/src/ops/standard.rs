//! Default-domain ONNX operators used by tabular exports (arithmetic, MatMul/Gemm, shape ops).
//!
//! Kernels compute in the input's own precision (f32 stays f32, as ONNX Runtime does), so
//! results match ORT to rounding.

use crate::tensor::{Tensor, TensorData};

pub(crate) type OpResult<T> = Result<T, String>;

#[derive(Debug, Clone, Copy)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Numpy-style broadcast of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> OpResult<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// Strides of `shape` seen through the broadcast `out` shape (0 where the dimension repeats).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let rank = out.len();
    let mut strides = vec![0; rank];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        let o = i + rank - shape.len();
        strides[o] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    strides
}

fn broadcast<T: Copy>(
    a: &[T],
    ashape: &[usize],
    b: &[T],
    bshape: &[usize],
    f: impl Fn(T, T) -> T,
) -> OpResult<(Vec<usize>, Vec<T>)> {
    let out = broadcast_shape(ashape, bshape)?;
    if ashape == bshape {
        return Ok((out, a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()));
    }
    if b.len() == 1 {
        let y = b[0];
        if out == ashape {
            return Ok((out, a.iter().map(|&x| f(x, y)).collect()));
        }
    }
    if a.len() == 1 && out == bshape {
        let x = a[0];
        return Ok((out, b.iter().map(|&y| f(x, y)).collect()));
    }
    let n: usize = out.iter().product();
    let sa = broadcast_strides(ashape, &out);
    let sb = broadcast_strides(bshape, &out);
    let mut idx = vec![0usize; out.len()];
    let (mut oa, mut ob) = (0usize, 0usize);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(f(a[oa], b[ob]));
        // Odometer increment over the output index, updating both offsets incrementally.
        for d in (0..out.len()).rev() {
            idx[d] += 1;
            oa += sa[d];
            ob += sb[d];
            if idx[d] < out[d] {
                break;
            }
            oa -= sa[d] * out[d];
            ob -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
    Ok((out, v))
}

pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> OpResult<Tensor> {
    macro_rules! arith {
        ($x:expr, $y:expr, $variant:ident) => {{
            let (shape, v) = match op {
                BinaryOp::Add => broadcast($x, a.shape(), $y, b.shape(), |p, q| p + q)?,
                BinaryOp::Sub => broadcast($x, a.shape(), $y, b.shape(), |p, q| p - q)?,
                BinaryOp::Mul => broadcast($x, a.shape(), $y, b.shape(), |p, q| p * q)?,
                BinaryOp::Div => broadcast($x, a.shape(), $y, b.shape(), |p, q| p / q)?,
            };
            Tensor::with_data(shape, TensorData::$variant(v))
        }};
    }
    Ok(match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => arith!(x, y, F32),
        (TensorData::F64(x), TensorData::F64(y)) => arith!(x, y, F64),
        (TensorData::I64(x), TensorData::I64(y)) => {
            let (shape, v) = match op {
                BinaryOp::Add => broadcast(x, a.shape(), y, b.shape(), i64::wrapping_add)?,
                BinaryOp::Sub => broadcast(x, a.shape(), y, b.shape(), i64::wrapping_sub)?,
                BinaryOp::Mul => broadcast(x, a.shape(), y, b.shape(), i64::wrapping_mul)?,
                BinaryOp::Div => {
                    if y.contains(&0) {
                        return Err("integer division by zero".into());
                    }
                    broadcast(x, a.shape(), y, b.shape(), i64::wrapping_div)?
                }
            };
            Tensor::with_data(shape, TensorData::I64(v))
        }
        _ => {
            return Err(format!(
                "operands have different or non-numeric element types ({:?}, {:?})",
                a.element_type(),
                b.element_type()
            ));
        }
    })
}

pub(crate) trait Float:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
{
    const ZERO: Self;
    fn exp(self) -> Self;
    fn from_f32(v: f32) -> Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
}

/// `[m, k] x [k, n]`, accumulating in `T` row by row (i-k-j order keeps `b` streaming).
fn matmul_kernel<T: Float>(a: &[T], b: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; m * n];
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let x = a[i * k + p];
            for (o, &w) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *o += x * w;
            }
        }
    }
    out
}

pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> OpResult<Tensor> {
    let (ash, bsh) = (a.shape(), b.shape());
    if bsh.len() != 2 || ash.is_empty() {
        return Err(format!(
            "MatMul supports [.., k] x [k, n]; got {ash:?} x {bsh:?}"
        ));
    }
    let k = ash[ash.len() - 1];
    if k != bsh[0] {
        return Err(format!("MatMul inner dimensions differ: {ash:?} x {bsh:?}"));
    }
    let n = bsh[1];
    let m = a.len().checked_div(k).unwrap_or(0);
    let mut shape = ash[..ash.len() - 1].to_vec();
    shape.push(n);
    Ok(match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            Tensor::with_data(shape, TensorData::F32(matmul_kernel(x, y, m, k, n)))
        }
        (TensorData::F64(x), TensorData::F64(y)) => {
            Tensor::with_data(shape, TensorData::F64(matmul_kernel(x, y, m, k, n)))
        }
        _ => return Err("MatMul needs two float or two double tensors".into()),
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

fn transpose<T: Copy>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for c in 0..cols {
        for r in 0..rows {
            out.push(v[r * cols + c]);
        }
    }
    out
}

impl Gemm {
    pub(crate) fn eval(&self, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> OpResult<Tensor> {
        let (ash, bsh) = (a.shape(), b.shape());
        if ash.len() != 2 || bsh.len() != 2 {
            return Err(format!("Gemm needs 2-D operands; got {ash:?} and {bsh:?}"));
        }
        let (m, k) = if self.trans_a {
            (ash[1], ash[0])
        } else {
            (ash[0], ash[1])
        };
        let (kb, n) = if self.trans_b {
            (bsh[1], bsh[0])
        } else {
            (bsh[0], bsh[1])
        };
        if k != kb {
            return Err(format!("Gemm inner dimensions differ: {ash:?} x {bsh:?}"));
        }
        fn run<T: Float>(
            g: &Gemm,
            a: &[T],
            b: &[T],
            c: Option<(&[T], &[usize])>,
            dims: [usize; 5],
        ) -> OpResult<Vec<T>> {
            let [m, k, n, ar, br] = dims;
            let a = if g.trans_a {
                transpose(a, ar, a.len() / ar.max(1))
            } else {
                a.to_vec()
            };
            let b = if g.trans_b {
                transpose(b, br, b.len() / br.max(1))
            } else {
                b.to_vec()
            };
            let mut y = matmul_kernel(&a, &b, m, k, n);
            let alpha = T::from_f32(g.alpha);
            if g.alpha != 1.0 {
                y.iter_mut().for_each(|v| *v = *v * alpha);
            }
            if let Some((cv, cs)) = c {
                let beta = T::from_f32(g.beta);
                let (_, cb) = broadcast(&y, &[m, n], cv, cs, |p, q| p + beta * q)?;
                if cb.len() != m * n {
                    return Err(format!(
                        "Gemm bias of shape {cs:?} does not broadcast to [{m}, {n}]"
                    ));
                }
                y = cb;
            }
            Ok(y)
        }
        let dims = [m, k, n, ash[0], bsh[0]];
        let out = match (a.data(), b.data(), c.map(|t| t.data())) {
            (TensorData::F32(x), TensorData::F32(y), None) => {
                TensorData::F32(run(self, x, y, None, dims)?)
            }
            (TensorData::F32(x), TensorData::F32(y), Some(TensorData::F32(z))) => {
                TensorData::F32(run(self, x, y, c.map(|t| (z.as_slice(), t.shape())), dims)?)
            }
            (TensorData::F64(x), TensorData::F64(y), None) => {
                TensorData::F64(run(self, x, y, None, dims)?)
            }
            (TensorData::F64(x), TensorData::F64(y), Some(TensorData::F64(z))) => {
                TensorData::F64(run(self, x, y, c.map(|t| (z.as_slice(), t.shape())), dims)?)
            }
            _ => return Err("Gemm needs float or double operands of one type".into()),
        };
        Ok(Tensor::with_data(vec![m, n], out))
    }
}

pub(crate) fn unary_float(
    t: &Tensor,
    f32f: impl Fn(f32) -> f32,
    f64f: impl Fn(f64) -> f64,
) -> OpResult<Tensor> {
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(v.iter().map(|&x| f32f(x)).collect()),
        TensorData::F64(v) => TensorData::F64(v.iter().map(|&x| f64f(x)).collect()),
        _ => return Err("expected a float or double tensor".into()),
    };
    Ok(Tensor::with_data(t.shape().to_vec(), data))
}

pub(crate) fn sigmoid32(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub(crate) fn sigmoid64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub(crate) fn normalize_axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a > r.max(1) - if rank == 0 { 0 } else { 1 } {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// Softmax over `axis`. Before opset 13 the input is flattened to 2-D at `axis`; from 13 on it
/// is a single axis. Both reduce to softmax over contiguous blocks of `inner` elements when the
/// axis is the last one, which is what exports use; other axes are handled with strides.
pub(crate) fn softmax(t: &Tensor, axis: i64, opset: i64) -> OpResult<Tensor> {
    let shape = t.shape();
    let a = normalize_axis(axis, shape.len())?;
    let (outer, len, inner) = if opset < 13 {
        (
            shape[..a].iter().product::<usize>(),
            shape[a..].iter().product::<usize>(),
            1,
        )
    } else {
        (
            shape[..a].iter().product::<usize>(),
            shape.get(a).copied().unwrap_or(1),
            shape[a + 1..].iter().product::<usize>(),
        )
    };
    fn run<T: Float>(v: &[T], outer: usize, len: usize, inner: usize) -> Vec<T> {
        let mut out = v.to_vec();
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| o * len * inner + j * inner + i;
                let mut max = v[at(0)];
                for j in 1..len {
                    if v[at(j)] > max {
                        max = v[at(j)];
                    }
                }
                let mut sum = T::ZERO;
                for j in 0..len {
                    let e = (v[at(j)] - max).exp();
                    out[at(j)] = e;
                    sum += e;
                }
                for j in 0..len {
                    out[at(j)] = out[at(j)] / sum;
                }
            }
        }
        out
    }
    if len == 0 {
        return Ok(t.clone());
    }
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(run(v, outer, len, inner)),
        TensorData::F64(v) => TensorData::F64(run(v, outer, len, inner)),
        _ => return Err("Softmax needs a float or double tensor".into()),
    };
    Ok(Tensor::with_data(shape.to_vec(), data))
}

/// Copies blocks along `axis` of each input, in order.
pub(crate) fn concat(inputs: &[&Tensor], axis: i64) -> OpResult<Tensor> {
    let first = inputs.first().ok_or("Concat needs at least one input")?;
    let rank = first.shape().len();
    let a = normalize_axis(axis, rank)?;
    let mut shape = first.shape().to_vec();
    shape[a] = 0;
    for t in inputs {
        let s = t.shape();
        if s.len() != rank
            || s.iter()
                .enumerate()
                .any(|(i, &d)| i != a && d != first.shape()[i])
        {
            return Err(format!(
                "Concat inputs {:?} and {s:?} differ off axis {a}",
                first.shape()
            ));
        }
        shape[a] += s[a];
    }
    let outer: usize = shape[..a].iter().product();
    macro_rules! cat {
        ($variant:ident) => {{
            let mut out = Vec::with_capacity(shape.iter().product());
            for o in 0..outer {
                for t in inputs {
                    let TensorData::$variant(v) = t.data() else {
                        return Err("Concat inputs have different element types".into());
                    };
                    let block: usize = t.shape()[a..].iter().product();
                    out.extend_from_slice(&v[o * block..(o + 1) * block]);
                }
            }
            TensorData::$variant(out)
        }};
    }
    let data = match first.data() {
        TensorData::F32(_) => cat!(F32),
        TensorData::F64(_) => cat!(F64),
        TensorData::I64(_) => cat!(I64),
        TensorData::String(_) => cat!(String),
    };
    Ok(Tensor::with_data(shape, data))
}

pub(crate) fn reshape(t: &Tensor, spec: &[i64], allow_zero: bool) -> OpResult<Tensor> {
    let mut shape = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            0 if !allow_zero => shape.push(
                *t.shape()
                    .get(i)
                    .ok_or("Reshape copies a missing dimension")?,
            ),
            d if d >= 0 => shape.push(d as usize),
            _ => return Err(format!("invalid Reshape target {spec:?}")),
        }
    }
    if let Some(i) = infer {
        let known: usize = shape.iter().product();
        if known == 0 || t.len() % known != 0 {
            return Err(format!("cannot reshape {:?} to {spec:?}", t.shape()));
        }
        shape[i] = t.len() / known;
    }
    Tensor::new(shape, t.data().clone())
}

pub(crate) fn flatten(t: &Tensor, axis: i64) -> OpResult<Tensor> {
    let rank = t.shape().len() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    if a < 0 || a > rank {
        return Err(format!("Flatten axis {axis} out of range"));
    }
    let a = a as usize;
    let outer: usize = t.shape()[..a].iter().product();
    let inner: usize = t.shape()[a..].iter().product();
    Tensor::new(vec![outer, inner], t.data().clone())
}

fn gather_blocks<T: Clone>(
    v: &[T],
    outer: usize,
    axis_len: usize,
    inner: usize,
    idx: &[usize],
) -> Vec<T> {
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let start = (o * axis_len + i) * inner;
            out.extend_from_slice(&v[start..start + inner]);
        }
    }
    out
}

pub(crate) fn gather(t: &Tensor, indices: &Tensor, axis: i64) -> OpResult<Tensor> {
    let a = normalize_axis(axis, t.shape().len())?;
    let axis_len = t.shape()[a] as i64;
    let raw = indices.as_i64().ok_or("Gather indices must be integers")?;
    let idx = raw
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + axis_len } else { i };
            if (0..axis_len).contains(&j) {
                Ok(j as usize)
            } else {
                Err(format!("Gather index {i} out of range"))
            }
        })
        .collect::<OpResult<Vec<_>>>()?;
    let outer: usize = t.shape()[..a].iter().product();
    let inner: usize = t.shape()[a + 1..].iter().product();
    let mut shape = t.shape()[..a].to_vec();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&t.shape()[a + 1..]);
    let al = axis_len as usize;
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(gather_blocks(v, outer, al, inner, &idx)),
        TensorData::F64(v) => TensorData::F64(gather_blocks(v, outer, al, inner, &idx)),
        TensorData::I64(v) => TensorData::I64(gather_blocks(v, outer, al, inner, &idx)),
        TensorData::String(v) => TensorData::String(gather_blocks(v, outer, al, inner, &idx)),
    };
    Tensor::new(shape, data)
}

/// Slice with per-axis start/end/step, clamped as the ONNX specification describes.
pub(crate) fn slice(
    t: &Tensor,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> OpResult<Tensor> {
    let shape = t.shape();
    let rank = shape.len();
    if starts.len() != ends.len() {
        return Err("Slice starts and ends differ in length".into());
    }
    let mut ranges: Vec<(i64, i64, i64)> = shape.iter().map(|&d| (0, d as i64, 1)).collect();
    for (i, (&s, &e)) in starts.iter().zip(ends).enumerate() {
        let axis = match axes {
            Some(ax) => normalize_axis(*ax.get(i).ok_or("Slice axes too short")?, rank)?,
            None => i,
        };
        if axis >= rank {
            return Err("Slice has more starts than the input has axes".into());
        }
        let step = steps.and_then(|st| st.get(i).copied()).unwrap_or(1);
        if step == 0 {
            return Err("Slice step is zero".into());
        }
        let d = shape[axis] as i64;
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (s, e) = (fix(s), fix(e));
        let (s, e) = if step > 0 {
            (s.clamp(0, d), e.clamp(0, d))
        } else {
            (s.clamp(0, d - 1), e.clamp(-1, d - 1))
        };
        ranges[axis] = (s, e, step);
    }
    let counts: Vec<usize> = ranges
        .iter()
        .map(|&(s, e, st)| if st > 0 { ((e - s).max(0) + st - 1) / st } else { ((s - e).max(0) + (-st) - 1) / (-st) } as usize)
        .collect();
    let total: usize = counts.iter().product();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let mut offsets = Vec::with_capacity(total);
    let mut idx = vec![0usize; rank];
    for _ in 0..total {
        let off: i64 = (0..rank)
            .map(|d| (ranges[d].0 + idx[d] as i64 * ranges[d].2) * strides[d] as i64)
            .sum();
        offsets.push(off as usize);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < counts[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    fn pick<T: Clone>(v: &[T], o: &[usize]) -> Vec<T> {
        o.iter().map(|&i| v[i].clone()).collect()
    }
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(pick(v, &offsets)),
        TensorData::F64(v) => TensorData::F64(pick(v, &offsets)),
        TensorData::I64(v) => TensorData::I64(pick(v, &offsets)),
        TensorData::String(v) => TensorData::String(pick(v, &offsets)),
    };
    Tensor::new(counts, data)
}

pub(crate) fn argmax(t: &Tensor, axis: i64, keepdims: bool, select_last: bool) -> OpResult<Tensor> {
    let shape = t.shape();
    let a = normalize_axis(axis, shape.len())?;
    let outer: usize = shape[..a].iter().product();
    let len = shape[a];
    let inner: usize = shape[a + 1..].iter().product();
    if len == 0 {
        return Err("ArgMax over an empty axis".into());
    }
    fn run<T: PartialOrd + Copy>(
        v: &[T],
        outer: usize,
        len: usize,
        inner: usize,
        last: bool,
    ) -> Vec<i64> {
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let mut best = 0;
                for j in 1..len {
                    let (x, y) = (
                        v[(o * len + j) * inner + i],
                        v[(o * len + best) * inner + i],
                    );
                    if x > y || (last && x == y) {
                        best = j;
                    }
                }
                out.push(best as i64);
            }
        }
        out
    }
    let v = match t.data() {
        TensorData::F32(v) => run(v, outer, len, inner, select_last),
        TensorData::F64(v) => run(v, outer, len, inner, select_last),
        TensorData::I64(v) => run(v, outer, len, inner, select_last),
        TensorData::String(_) => return Err("ArgMax over strings".into()),
    };
    let mut out_shape = shape.to_vec();
    if keepdims {
        out_shape[a] = 1;
    } else {
        out_shape.remove(a);
    }
    Tensor::new(out_shape, TensorData::I64(v))
}

/// Cast targets the executor supports: the types it stores.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CastTo {
    F32,
    F64,
    I64,
    String,
}

pub(crate) fn cast(t: &Tensor, to: CastTo) -> OpResult<Tensor> {
    let shape = t.shape().to_vec();
    // Float to integer truncates toward zero like a C cast; NaN and out-of-range values
    // saturate instead of being undefined.
    let data = match (t.data(), to) {
        (TensorData::F32(v), CastTo::F32) => TensorData::F32(v.clone()),
        (TensorData::F32(v), CastTo::F64) => {
            TensorData::F64(v.iter().map(|&x| f64::from(x)).collect())
        }
        (TensorData::F32(v), CastTo::I64) => TensorData::I64(v.iter().map(|&x| x as i64).collect()),
        (TensorData::F64(v), CastTo::F32) => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
        (TensorData::F64(v), CastTo::F64) => TensorData::F64(v.clone()),
        (TensorData::F64(v), CastTo::I64) => TensorData::I64(v.iter().map(|&x| x as i64).collect()),
        (TensorData::I64(v), CastTo::F32) => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
        (TensorData::I64(v), CastTo::F64) => TensorData::F64(v.iter().map(|&x| x as f64).collect()),
        (TensorData::I64(v), CastTo::I64) => TensorData::I64(v.clone()),
        (TensorData::I64(v), CastTo::String) => {
            TensorData::String(v.iter().map(|x| x.to_string()).collect())
        }
        (TensorData::String(v), CastTo::String) => TensorData::String(v.clone()),
        (TensorData::String(v), CastTo::I64) => TensorData::I64(
            v.iter()
                .map(|s| {
                    s.trim()
                        .parse::<i64>()
                        .map_err(|_| format!("cannot cast `{s}` to int64"))
                })
                .collect::<OpResult<_>>()?,
        ),
        (TensorData::String(v), CastTo::F32) => TensorData::F32(
            v.iter()
                .map(|s| {
                    s.trim()
                        .parse::<f32>()
                        .map_err(|_| format!("cannot cast `{s}` to float"))
                })
                .collect::<OpResult<_>>()?,
        ),
        (d, to) => {
            return Err(format!(
                "Cast from {:?} to {to:?} is not supported",
                d.element_type()
            ));
        }
    };
    Ok(Tensor::with_data(shape, data))
}
