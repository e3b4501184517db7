//! Operator catalogue: turns an ONNX node into a compiled [`Op`] at load time and evaluates it.

pub(crate) mod ml;
pub(crate) mod standard;
pub(crate) mod tree;

use crate::proto::{AttributeProto, NodeProto, data_type};
use crate::tensor::{Tensor, TensorData, Value};
use ml::{Labels, PostTransform};
use standard::{BinaryOp, CastTo, OpResult};
use tree::{Aggregate, Ensemble, Kind, TreeAttrs};

/// Slice's starts, ends and optional axes when given as attributes (opset < 10).
pub(crate) type SliceAttrs = (Vec<i64>, Vec<i64>, Option<Vec<i64>>);

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Identity,
    Cast(CastTo),
    Binary(BinaryOp),
    MatMul,
    Gemm(standard::Gemm),
    Relu,
    Sigmoid,
    Softmax {
        axis: i64,
        opset: i64,
    },
    Concat {
        axis: i64,
    },
    Reshape {
        allow_zero: bool,
    },
    Flatten {
        axis: i64,
    },
    Slice {
        attrs: Option<SliceAttrs>,
    },
    Gather {
        axis: i64,
    },
    ArgMax {
        axis: i64,
        keepdims: bool,
        select_last: bool,
    },
    Scaler(ml::Scaler),
    Normalizer(ml::Norm),
    Imputer(ml::Imputer),
    LinearClassifier(ml::LinearClassifier),
    LinearRegressor(ml::LinearRegressor),
    Trees(Box<Ensemble>),
    ZipMap(Labels),
    ArrayFeatureExtractor,
}

pub(crate) const ML_DOMAIN: &str = "ai.onnx.ml";

/// Attribute access for one node.
struct Attrs<'a>(&'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    fn ints(&self, name: &str) -> Vec<i64> {
        self.get(name).map(|a| a.ints.clone()).unwrap_or_default()
    }
    fn floats(&self, name: &str) -> Vec<f32> {
        self.get(name).map(|a| a.floats.clone()).unwrap_or_default()
    }
    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map_or_else(
            || default.to_string(),
            |a| String::from_utf8_lossy(&a.s).into_owned(),
        )
    }
    fn strings(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// A float list given either as `name` (floats) or `name_as_tensor` (ml opset 3 doubles).
    fn floats_or_tensor(&self, name: &str) -> OpResult<Vec<f64>> {
        if let Some(a) = self.get(&format!("{name}_as_tensor")) {
            let t =
                a.t.as_ref()
                    .ok_or_else(|| format!("{name}_as_tensor has no tensor"))?;
            let t = Tensor::from_proto(t)?;
            return match t.into_data() {
                TensorData::F64(v) => Ok(v),
                TensorData::F32(v) => Ok(v.into_iter().map(f64::from).collect()),
                _ => Err(format!("{name}_as_tensor is not a float tensor")),
            };
        }
        Ok(self.floats(name).into_iter().map(f64::from).collect())
    }
    fn post_transform(&self) -> OpResult<PostTransform> {
        let s = self.string("post_transform", "NONE");
        PostTransform::parse(&s).ok_or_else(|| format!("unknown post_transform `{s}`"))
    }
    fn labels(&self, ints: &str, strings: &str) -> OpResult<Labels> {
        let s = self.strings(strings);
        let i = self.ints(ints);
        match (i.is_empty(), s.is_empty()) {
            (false, true) => Ok(Labels::Int(i)),
            (true, false) => Ok(Labels::String(s)),
            (true, true) => Err(format!("neither {ints} nor {strings} is given")),
            (false, false) => Err(format!("both {ints} and {strings} are given")),
        }
    }
}

/// `Ok(None)` means the operator is not supported; `Err` that its attributes are invalid.
pub(crate) fn compile(node: &NodeProto, opset: i64) -> OpResult<Option<Op>> {
    let a = Attrs(&node.attribute);
    let ml = node.domain == ML_DOMAIN;
    let op = match (ml, node.op_type.as_str()) {
        (false, "Identity") => Op::Identity,
        (false, "Cast") => Op::Cast(match a.int("to", 0) as i32 {
            data_type::FLOAT => CastTo::F32,
            data_type::DOUBLE => CastTo::F64,
            data_type::INT64 => CastTo::I64,
            data_type::STRING => CastTo::String,
            other => return Err(format!("Cast to element type {other} is not supported")),
        }),
        (false, "Add") => Op::Binary(BinaryOp::Add),
        (false, "Sub") => Op::Binary(BinaryOp::Sub),
        (false, "Mul") => Op::Binary(BinaryOp::Mul),
        (false, "Div") => Op::Binary(BinaryOp::Div),
        (false, "MatMul") => Op::MatMul,
        (false, "Gemm") => Op::Gemm(standard::Gemm {
            alpha: a.float("alpha", 1.0),
            beta: a.float("beta", 1.0),
            trans_a: a.int("transA", 0) != 0,
            trans_b: a.int("transB", 0) != 0,
        }),
        (false, "Relu") => Op::Relu,
        (false, "Sigmoid") => Op::Sigmoid,
        (false, "Softmax") => Op::Softmax {
            axis: a.int("axis", if opset < 13 { 1 } else { -1 }),
            opset,
        },
        (false, "Concat") => Op::Concat {
            axis: a.int("axis", 0),
        },
        (false, "Reshape") => Op::Reshape {
            allow_zero: a.int("allowzero", 0) != 0,
        },
        (false, "Flatten") => Op::Flatten {
            axis: a.int("axis", 1),
        },
        (false, "Slice") => Op::Slice {
            attrs: (opset < 10).then(|| {
                (
                    a.ints("starts"),
                    a.ints("ends"),
                    a.get("axes").map(|x| x.ints.clone()),
                )
            }),
        },
        (false, "Gather") => Op::Gather {
            axis: a.int("axis", 0),
        },
        (false, "ArgMax") => Op::ArgMax {
            axis: a.int("axis", 0),
            keepdims: a.int("keepdims", 1) != 0,
            select_last: a.int("select_last_index", 0) != 0,
        },
        (true, "Scaler") => Op::Scaler(ml::Scaler {
            offset: a.floats("offset"),
            scale: a.floats("scale"),
        }),
        (true, "Normalizer") => Op::Normalizer(match a.string("norm", "MAX").as_str() {
            "MAX" => ml::Norm::Max,
            "L1" => ml::Norm::L1,
            "L2" => ml::Norm::L2,
            other => return Err(format!("unknown norm `{other}`")),
        }),
        (true, "Imputer") => {
            let f = a.floats("imputed_value_floats");
            if !f.is_empty() {
                Op::Imputer(ml::Imputer::Float {
                    values: f,
                    replaced: a.float("replaced_value_float", 0.0),
                })
            } else {
                let i = a.ints("imputed_value_int64s");
                if i.is_empty() {
                    return Err("Imputer has no imputed values".into());
                }
                Op::Imputer(ml::Imputer::Int {
                    values: i,
                    replaced: a.int("replaced_value_int64", 0),
                })
            }
        }
        (true, "LinearClassifier") => {
            let coef = a.floats("coefficients");
            let mut intercepts = a.floats("intercepts");
            let labels = a.labels("classlabels_ints", "classlabels_strings")?;
            let k = if intercepts.is_empty() {
                labels.len().max(1)
            } else {
                intercepts.len()
            };
            if k == 2 && labels.len() == 2 && coef.len() % 2 != 0 {
                return Err("coefficients do not split into class rows".into());
            }
            if intercepts.is_empty() {
                intercepts = vec![0.0; k];
            }
            let post = a.post_transform()?;
            if k == 1 && labels.len() == 2 && post == PostTransform::Probit {
                // ONNX Runtime writes probit scores for half of the [N, 2] output and leaves
                // the rest unset: there is no defined result to reproduce.
                return Err(
                    "PROBIT with one coefficient row for two classes has no defined output".into(),
                );
            }
            if coef.is_empty() || coef.len() % k != 0 {
                return Err(format!(
                    "{} coefficients do not split into {k} rows",
                    coef.len()
                ));
            }
            if k > 1 && labels.len() != k {
                return Err(format!("{} labels for {k} coefficient rows", labels.len()));
            }
            Op::LinearClassifier(ml::LinearClassifier {
                coef,
                intercepts,
                labels,
                post,
            })
        }
        (true, "LinearRegressor") => {
            let coef = a.floats("coefficients");
            let targets = a.int("targets", 1);
            if targets < 1 || coef.is_empty() || coef.len() % targets as usize != 0 {
                return Err(format!(
                    "{} coefficients do not split into {targets} targets",
                    coef.len()
                ));
            }
            Op::LinearRegressor(ml::LinearRegressor {
                coef,
                intercepts: a.floats("intercepts"),
                targets: targets as usize,
                post: a.post_transform()?,
            })
        }
        (true, "TreeEnsembleClassifier") | (true, "TreeEnsembleRegressor") => Op::Trees(Box::new(
            compile_trees(&a, node.op_type == "TreeEnsembleClassifier")?,
        )),
        (true, "ZipMap") => Op::ZipMap(a.labels("classlabels_int64s", "classlabels_strings")?),
        (true, "ArrayFeatureExtractor") => Op::ArrayFeatureExtractor,
        _ => return Ok(None),
    };
    Ok(Some(op))
}

fn compile_trees(a: &Attrs, classifier: bool) -> OpResult<Ensemble> {
    let prefix = if classifier { "class" } else { "target" };
    let attrs = TreeAttrs {
        tree_ids: a.ints("nodes_treeids"),
        node_ids: a.ints("nodes_nodeids"),
        feature_ids: a.ints("nodes_featureids"),
        modes: a.strings("nodes_modes"),
        values: a.floats_or_tensor("nodes_values")?,
        true_ids: a.ints("nodes_truenodeids"),
        false_ids: a.ints("nodes_falsenodeids"),
        missing_true: a.ints("nodes_missing_value_tracks_true"),
        hitrates: a.floats_or_tensor("nodes_hitrates")?,
        w_tree: a.ints(&format!("{prefix}_treeids")),
        w_node: a.ints(&format!("{prefix}_nodeids")),
        w_target: a.ints(&format!("{prefix}_ids")),
        w_value: a.floats_or_tensor(&format!("{prefix}_weights"))?,
    };
    let base: Vec<f32> = a
        .floats_or_tensor("base_values")?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let post = a.post_transform()?;
    if classifier {
        let labels = a.labels("classlabels_int64s", "classlabels_strings")?;
        let k = labels.len();
        if k < 2 {
            return Err("a tree classifier needs at least two classes".into());
        }
        let mut distinct = attrs.w_target.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let binary_case = k == 2 && distinct.len() == 1;
        let all_positive = attrs.w_value.iter().all(|&w| w >= 0.0);
        Ensemble::compile(
            attrs,
            k,
            Aggregate::Sum,
            post,
            base,
            Kind::Classifier {
                labels,
                binary_case,
                all_positive,
            },
        )
    } else {
        let k = a.int("n_targets", 1);
        if k < 1 {
            return Err("n_targets must be positive".into());
        }
        let aggregate = match a.string("aggregate_function", "SUM").as_str() {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(format!("unknown aggregate_function `{other}`")),
        };
        Ensemble::compile(attrs, k as usize, aggregate, post, base, Kind::Regressor)
    }
}

fn tensor<'a>(ins: &[Option<&'a Value>], i: usize) -> OpResult<&'a Tensor> {
    match ins.get(i).copied().flatten() {
        Some(Value::Tensor(t)) => Ok(t),
        Some(_) => Err(format!("input {i} is not a tensor")),
        None => Err(format!("input {i} is missing")),
    }
}

fn ints_of(t: &Tensor) -> OpResult<&[i64]> {
    t.as_i64()
        .ok_or_else(|| "expected an int64 tensor".to_string())
}

impl Op {
    /// Number of outputs this operator produces.
    pub(crate) fn n_outputs(&self) -> usize {
        match self {
            Op::LinearClassifier(_) => 2,
            Op::Trees(e) => match e.kind {
                Kind::Classifier { .. } => 2,
                Kind::Regressor => 1,
            },
            _ => 1,
        }
    }

    pub(crate) fn eval(&self, ins: &[Option<&Value>]) -> OpResult<Vec<Value>> {
        let one = |t: Tensor| Ok(vec![Value::Tensor(t)]);
        match self {
            Op::Identity => Ok(vec![
                ins.first()
                    .copied()
                    .flatten()
                    .ok_or("input 0 is missing")?
                    .clone(),
            ]),
            Op::Cast(to) => one(standard::cast(tensor(ins, 0)?, *to)?),
            Op::Binary(op) => one(standard::binary(*op, tensor(ins, 0)?, tensor(ins, 1)?)?),
            Op::MatMul => one(standard::matmul(tensor(ins, 0)?, tensor(ins, 1)?)?),
            Op::Gemm(g) => one(g.eval(
                tensor(ins, 0)?,
                tensor(ins, 1)?,
                ins.get(2).copied().flatten().and_then(Value::as_tensor),
            )?),
            Op::Relu => one(standard::unary_float(
                tensor(ins, 0)?,
                |x| x.max(0.0),
                |x| x.max(0.0),
            )?),
            Op::Sigmoid => one(standard::unary_float(
                tensor(ins, 0)?,
                standard::sigmoid32,
                standard::sigmoid64,
            )?),
            Op::Softmax { axis, opset } => one(standard::softmax(tensor(ins, 0)?, *axis, *opset)?),
            Op::Concat { axis } => {
                let ts = (0..ins.len())
                    .map(|i| tensor(ins, i))
                    .collect::<OpResult<Vec<_>>>()?;
                one(standard::concat(&ts, *axis)?)
            }
            Op::Reshape { allow_zero } => one(standard::reshape(
                tensor(ins, 0)?,
                ints_of(tensor(ins, 1)?)?,
                *allow_zero,
            )?),
            Op::Flatten { axis } => one(standard::flatten(tensor(ins, 0)?, *axis)?),
            Op::Slice {
                attrs: Some((s, e, ax)),
            } => one(standard::slice(tensor(ins, 0)?, s, e, ax.as_deref(), None)?),
            Op::Slice { attrs: None } => {
                let opt = |i: usize| -> OpResult<Option<&[i64]>> {
                    match ins.get(i).copied().flatten() {
                        Some(_) => Ok(Some(ints_of(tensor(ins, i)?)?)),
                        None => Ok(None),
                    }
                };
                let (s, e) = (ints_of(tensor(ins, 1)?)?, ints_of(tensor(ins, 2)?)?);
                one(standard::slice(tensor(ins, 0)?, s, e, opt(3)?, opt(4)?)?)
            }
            Op::Gather { axis } => one(standard::gather(tensor(ins, 0)?, tensor(ins, 1)?, *axis)?),
            Op::ArgMax {
                axis,
                keepdims,
                select_last,
            } => one(standard::argmax(
                tensor(ins, 0)?,
                *axis,
                *keepdims,
                *select_last,
            )?),
            Op::Scaler(s) => one(s.eval(tensor(ins, 0)?)?),
            Op::Normalizer(n) => one(ml::normalizer(tensor(ins, 0)?, *n)?),
            Op::Imputer(i) => one(i.eval(tensor(ins, 0)?)?),
            Op::LinearClassifier(l) => l.eval(tensor(ins, 0)?),
            Op::LinearRegressor(l) => one(l.eval(tensor(ins, 0)?)?),
            Op::Trees(e) => {
                let t = tensor(ins, 0)?;
                if let (Some(x), [n, c]) = (t.as_f64(), t.shape()) {
                    return e.eval64(x, *n, *c);
                }
                let (x, n, c) = ml::float_rows(t)?;
                e.eval(&x, n, c)
            }
            Op::ZipMap(labels) => Ok(vec![ml::zipmap(tensor(ins, 0)?, labels)?]),
            Op::ArrayFeatureExtractor => one(ml::array_feature_extractor(
                tensor(ins, 0)?,
                tensor(ins, 1)?,
            )?),
        }
    }
}
