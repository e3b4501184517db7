//! Loading: protobuf → validated execution plan; and running the plan.

use std::collections::HashMap;

use prost::Message;

use crate::error::Error;
use crate::ops::{self, ML_DOMAIN, Op, standard::CastTo, tree::Kind};
use crate::proto::{ModelProto, ValueInfoProto};
use crate::tensor::{Dim, ElementType, Tensor, TensorData, Value, ValueInfo, ValueType};

const MAX_DEFAULT_OPSET: i64 = 21;
const MAX_ML_OPSET: i64 = 4;

#[derive(Debug)]
struct Step {
    op: Op,
    op_type: String,
    name: String,
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
}

/// The path `predict_proba` and `explain` take when the graph is preprocessing followed by
/// one scoring operator: element-wise steps applied per row, then the scorer.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    /// Row-wise preprocessing (only `Scaler`; `Identity` and float `Cast` are dropped).
    pub prefix: Vec<ops::ml::Scaler>,
    /// Index of the scoring step in the plan.
    pub step: usize,
    /// Whether the positive-class probability reaches a graph output unchanged, so
    /// `predict_proba` may read it from the scorer directly.
    pub proba_direct: bool,
}

/// A loaded, validated ONNX model ready to run.
#[derive(Debug)]
pub struct Model {
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    input_slots: Vec<usize>,
    output_slots: Vec<usize>,
    constants: Vec<Option<Value>>,
    steps: Vec<Step>,
    core: Option<Core>,
    n_features: Option<usize>,
}

fn value_info(v: &ValueInfoProto) -> Option<ValueInfo> {
    let t = v.r#type.as_ref()?.tensor_type.as_ref()?;
    let element = ElementType::from_onnx(t.elem_type)?;
    let shape = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match (d.dim_value, &d.dim_param) {
                (Some(v), _) if v > 0 => Dim::Fixed(v as usize),
                (_, Some(p)) if !p.is_empty() => Dim::Dynamic(Some(p.clone())),
                _ => Dim::Dynamic(None),
            })
            .collect()
    });
    Some(ValueInfo {
        name: v.name.clone(),
        value_type: ValueType::Tensor { element, shape },
    })
}

impl Model {
    /// Decodes and compiles an ONNX model. Refuses unsupported operators, domains and opsets.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, Error> {
        let proto = ModelProto::decode(bytes).map_err(|e| Error::Malformed(e.to_string()))?;
        let graph = proto
            .graph
            .ok_or_else(|| Error::Malformed("the model has no graph".into()))?;
        let mut opsets: HashMap<String, i64> = HashMap::new();
        for o in &proto.opset_import {
            let domain = if o.domain == "ai.onnx" {
                String::new()
            } else {
                o.domain.clone()
            };
            let max = match domain.as_str() {
                "" => MAX_DEFAULT_OPSET,
                ML_DOMAIN => MAX_ML_OPSET,
                _ => 0,
            };
            if o.version < 1 || o.version > max {
                return Err(Error::UnsupportedOpset {
                    domain: o.domain.clone(),
                    version: o.version,
                });
            }
            opsets.insert(domain, o.version);
        }
        if proto.opset_import.is_empty() {
            opsets.insert(String::new(), 1);
        }

        let mut slots: HashMap<String, usize> = HashMap::new();
        let mut constants: Vec<Option<Value>> = Vec::new();
        let new_slot =
            |name: &str, slots: &mut HashMap<String, usize>, constants: &mut Vec<Option<Value>>| {
                let id = constants.len();
                constants.push(None);
                slots.insert(name.to_string(), id);
                id
            };
        for init in &graph.initializer {
            let t = Tensor::from_proto(init)
                .map_err(|e| Error::Malformed(format!("initializer `{}`: {e}", init.name)))?;
            let id = new_slot(&init.name, &mut slots, &mut constants);
            constants[id] = Some(Value::Tensor(t));
        }
        let mut inputs = Vec::new();
        let mut input_slots = Vec::new();
        for i in &graph.input {
            if slots.contains_key(&i.name) {
                continue; // an initializer listed as an input (IR < 4): a constant with a default
            }
            let info = value_info(i).ok_or_else(|| {
                Error::Malformed(format!("input `{}` is not a supported tensor", i.name))
            })?;
            input_slots.push(new_slot(&i.name, &mut slots, &mut constants));
            inputs.push(info);
        }

        let mut steps: Vec<Step> = Vec::new();
        for (index, node) in graph.node.iter().enumerate() {
            let name = if node.name.is_empty() {
                format!("#{index}")
            } else {
                node.name.clone()
            };
            let domain = if node.domain == "ai.onnx" {
                ""
            } else {
                node.domain.as_str()
            };
            let unsupported = || Error::UnsupportedOperator {
                op_type: node.op_type.clone(),
                domain: node.domain.clone(),
                node: name.clone(),
            };
            let opset = *opsets.get(domain).ok_or_else(unsupported)?;
            let invalid = |reason: String| Error::InvalidModel {
                op_type: node.op_type.clone(),
                node: name.clone(),
                reason,
            };
            if domain.is_empty() && node.op_type == "Constant" {
                let a = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .ok_or_else(|| invalid("Constant needs a `value` tensor".into()))?;
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| invalid("Constant `value` is not a tensor".into()))?;
                let t = Tensor::from_proto(t).map_err(invalid)?;
                let out = node
                    .output
                    .first()
                    .ok_or_else(|| invalid("Constant has no output".into()))?;
                let id = new_slot(out, &mut slots, &mut constants);
                constants[id] = Some(Value::Tensor(t));
                continue;
            }
            let op = ops::compile(node, opset)
                .map_err(invalid)?
                .ok_or_else(unsupported)?;
            let mut step_inputs = Vec::with_capacity(node.input.len());
            for i in &node.input {
                if i.is_empty() {
                    step_inputs.push(None);
                } else {
                    let s = *slots.get(i).ok_or_else(|| {
                        invalid(format!("input `{i}` is not produced before this node"))
                    })?;
                    step_inputs.push(Some(s));
                }
            }
            if node.output.len() > op.n_outputs() || node.output.is_empty() {
                return Err(invalid(format!(
                    "{} outputs declared, the operator has {}",
                    node.output.len(),
                    op.n_outputs()
                )));
            }
            let outputs = node
                .output
                .iter()
                .map(|o| new_slot(o, &mut slots, &mut constants))
                .collect();
            steps.push(Step {
                op,
                op_type: node.op_type.clone(),
                name,
                inputs: step_inputs,
                outputs,
            });
        }

        let mut outputs = Vec::new();
        let mut output_slots = Vec::new();
        for o in &graph.output {
            let slot = *slots.get(&o.name).ok_or_else(|| {
                Error::Malformed(format!("output `{}` is never produced", o.name))
            })?;
            let producer = steps.iter().find(|s| s.outputs.contains(&slot));
            let value_type = match producer.map(|s| &s.op) {
                Some(Op::ZipMap(l)) => ValueType::SequenceOfMaps {
                    key: match l {
                        ops::ml::Labels::Int(_) => ElementType::I64,
                        ops::ml::Labels::String(_) => ElementType::String,
                    },
                },
                _ => value_info(o).map(|v| v.value_type).ok_or_else(|| {
                    Error::Malformed(format!("output `{}` has no supported type", o.name))
                })?,
            };
            outputs.push(ValueInfo {
                name: o.name.clone(),
                value_type,
            });
            output_slots.push(slot);
        }
        let mut model = Model {
            inputs,
            outputs,
            input_slots,
            output_slots,
            constants,
            steps,
            core: None,
            n_features: None,
        };
        model.core = model.find_core();
        model.n_features = model.declared_features();
        Ok(model)
    }

    /// Declared inputs (name, element type, shape).
    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    /// Declared outputs; ZipMap outputs are reported as sequences of maps.
    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    fn declared_features(&self) -> Option<usize> {
        match &self.inputs.first()?.value_type {
            ValueType::Tensor { shape: Some(s), .. } if s.len() == 2 => match s[1] {
                Dim::Fixed(n) => Some(n),
                Dim::Dynamic(_) => None,
            },
            _ => None,
        }
    }

    /// Runs the graph. Every declared input must be given once, by name.
    pub fn run(&self, inputs: &[(&str, Tensor)]) -> Result<Vec<(String, Value)>, Error> {
        let mut values: Vec<Option<Value>> = vec![None; self.constants.len()];
        for (info, &slot) in self.inputs.iter().zip(&self.input_slots) {
            let mut given = inputs.iter().filter(|(n, _)| *n == info.name);
            let (_, t) = given
                .next()
                .ok_or_else(|| Error::InvalidInput(format!("input `{}` is missing", info.name)))?;
            if given.next().is_some() {
                return Err(Error::InvalidInput(format!(
                    "input `{}` is given twice",
                    info.name
                )));
            }
            check_input(info, t)?;
            values[slot] = Some(Value::Tensor(t.clone()));
        }
        if let Some((n, _)) = inputs
            .iter()
            .find(|(n, _)| !self.inputs.iter().any(|i| i.name == *n))
        {
            return Err(Error::InvalidInput(format!("the model has no input `{n}`")));
        }
        for step in &self.steps {
            let ins: Vec<Option<&Value>> = step
                .inputs
                .iter()
                .map(|s| s.and_then(|s| values[s].as_ref().or(self.constants[s].as_ref())))
                .collect();
            let outs = step.op.eval(&ins).map_err(|reason| Error::Execution {
                op_type: step.op_type.clone(),
                node: step.name.clone(),
                reason,
            })?;
            for (slot, v) in step.outputs.iter().zip(outs) {
                values[*slot] = Some(v);
            }
        }
        self.output_slots
            .iter()
            .zip(&self.outputs)
            .map(|(&s, info)| {
                let v = values[s].take().or_else(|| self.constants[s].clone());
                v.map(|v| (info.name.clone(), v)).ok_or_else(|| {
                    Error::Malformed(format!("output `{}` was not computed", info.name))
                })
            })
            .collect()
    }

    /// Recognises "row-wise preprocessing, then one scorer" graphs.
    fn find_core(&self) -> Option<Core> {
        let &input = self.input_slots.first()?;
        if self.input_slots.len() != 1 {
            return None;
        }
        if !matches!(
            self.inputs[0].value_type,
            ValueType::Tensor {
                element: ElementType::F32,
                ..
            }
        ) {
            return None;
        }
        let mut current = input;
        let mut prefix = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            if step.inputs.first().copied().flatten() != Some(current) {
                continue;
            }
            match &step.op {
                Op::Identity | Op::Cast(CastTo::F32) if step.inputs.len() == 1 => {
                    current = step.outputs[0]
                }
                Op::Scaler(s) => {
                    prefix.push(s.clone());
                    current = step.outputs[0];
                }
                Op::Trees(_) | Op::LinearClassifier(_) | Op::LinearRegressor(_) => {
                    let proba_direct = self.proba_passes_through(i);
                    return Some(Core {
                        prefix,
                        step: i,
                        proba_direct,
                    });
                }
                _ => return None,
            }
        }
        None
    }

    /// True when the scorer's probability output reaches a graph output through value-
    /// preserving steps only (ZipMap, Identity, float Cast, multiplication by constant 1).
    fn proba_passes_through(&self, core: usize) -> bool {
        let step = &self.steps[core];
        let two_class = match &step.op {
            Op::Trees(e) => matches!(e.kind, Kind::Classifier { .. }) && e.out_width() == 2,
            Op::LinearClassifier(l) => l.out_width() == 2,
            _ => false,
        };
        let Some(&proba) = step.outputs.get(1) else {
            return false;
        };
        if !two_class {
            return false;
        }
        let mut current = proba;
        for s in &self.steps[core + 1..] {
            if self.output_slots.contains(&current) {
                return true;
            }
            if !s.inputs.contains(&Some(current)) {
                continue;
            }
            let ok = match &s.op {
                Op::ZipMap(_) | Op::Identity | Op::Cast(CastTo::F32) => true,
                Op::Binary(ops::standard::BinaryOp::Mul) => s.inputs.iter().flatten().any(|&i| {
                    i != current
                        && matches!(&self.constants[i], Some(Value::Tensor(t)) if t.as_f32().is_some_and(|v| v.len() == 1 && v[0] == 1.0))
                }),
                _ => false,
            };
            if !ok {
                return false;
            }
            current = s.outputs[0];
        }
        self.output_slots.contains(&current)
    }

    pub(crate) fn core(&self) -> Option<(&Core, &Op)> {
        let c = self.core.as_ref()?;
        Some((c, &self.steps[c.step].op))
    }

    /// Number of features per row, from the declared input shape or the scorer.
    pub fn n_features(&self) -> Option<usize> {
        self.n_features.or_else(|| {
            let (_, op) = self.core()?;
            match op {
                Op::Trees(e) => Some(e.n_features),
                Op::LinearClassifier(l) => Some(l.n_features()),
                Op::LinearRegressor(l) => Some(l.n_features()),
                _ => None,
            }
        })
    }

    /// Positive-class probability per row for a two-class classifier.
    ///
    /// `rows` holds `rows.len() / n_features` rows of `n_features` f32 values. The probability
    /// is column 1 (the second class label) of the classifier's probability output. For graphs
    /// that are row-wise preprocessing plus one classifier this is computed directly from the
    /// scorer without intermediate tensors (one allocation: the result); otherwise the graph is
    /// run and the first output that is a `[n, 2]` float tensor or a ZipMap sequence is used.
    pub fn predict_proba(&self, rows: &[f32], n_features: usize) -> Result<Vec<f32>, Error> {
        if n_features == 0 || rows.len() % n_features != 0 {
            return Err(Error::InvalidInput(format!(
                "{} values do not split into rows of {n_features}",
                rows.len()
            )));
        }
        if let Some(expected) = self.n_features() {
            if expected != n_features {
                return Err(Error::InvalidInput(format!(
                    "the model expects {expected} features, got {n_features}"
                )));
            }
        }
        let n = rows.len() / n_features;
        if let Some((core, op)) = self.core().filter(|(c, _)| c.proba_direct) {
            let mut out = Vec::with_capacity(n);
            match op {
                Op::Trees(e) if core.prefix.is_empty() => {
                    if n_features < e.n_features {
                        return Err(Error::InvalidInput(format!(
                            "the trees read {} features",
                            e.n_features
                        )));
                    }
                    out.extend(rows.chunks_exact(n_features).map(|r| e.positive_proba(r)));
                }
                _ => {
                    let mut a = vec![0.0f32; n_features];
                    let mut b = vec![0.0f32; n_features];
                    let mut probs = [0.0f32; 2];
                    for r in rows.chunks_exact(n_features) {
                        let x = apply_prefix(&core.prefix, r, &mut a, &mut b)
                            .map_err(Error::InvalidInput)?;
                        match op {
                            Op::Trees(e) => out.push(e.positive_proba(x)),
                            Op::LinearClassifier(l) => {
                                if l.n_features() != n_features {
                                    return Err(Error::InvalidInput(format!(
                                        "the model expects {} features",
                                        l.n_features()
                                    )));
                                }
                                l.score_row(x, &mut probs);
                                out.push(probs[1]);
                            }
                            _ => {
                                return Err(Error::NotApplicable(
                                    "the model is not a classifier".into(),
                                ));
                            }
                        }
                    }
                }
            }
            return Ok(out);
        }
        let name = self
            .inputs
            .first()
            .map(|i| i.name.clone())
            .ok_or_else(|| Error::NotApplicable("the model has no input".into()))?;
        let t = Tensor::from_rows(rows.to_vec(), n_features).map_err(Error::InvalidInput)?;
        let outputs = self.run(&[(name.as_str(), t)])?;
        for (_, v) in &outputs {
            match v {
                Value::MapsI64(m) => {
                    return Ok(m
                        .iter()
                        .map(|r| r.get(1).map_or(f32::NAN, |p| p.1))
                        .collect());
                }
                Value::MapsString(m) => {
                    return Ok(m
                        .iter()
                        .map(|r| r.get(1).map_or(f32::NAN, |p| p.1))
                        .collect());
                }
                Value::Tensor(t) if t.shape() == [n, 2] => {
                    if let TensorData::F32(v) = t.data() {
                        return Ok(v.chunks_exact(2).map(|p| p[1]).collect());
                    }
                }
                _ => {}
            }
        }
        Err(Error::NotApplicable(
            "the model has no two-class probability output".into(),
        ))
    }
}

/// Applies the row-wise preprocessing, ping-ponging between two scratch rows.
pub(crate) fn apply_prefix<'a>(
    prefix: &[ops::ml::Scaler],
    row: &'a [f32],
    a: &'a mut [f32],
    b: &'a mut [f32],
) -> Result<&'a [f32], String> {
    if prefix.is_empty() {
        return Ok(row);
    }
    a.copy_from_slice(row);
    for s in prefix {
        s.apply_row(a, b)?;
        a.copy_from_slice(b);
    }
    Ok(a)
}

fn check_input(info: &ValueInfo, t: &Tensor) -> Result<(), Error> {
    if let ValueType::Tensor { element, shape } = &info.value_type {
        if *element != t.element_type() {
            return Err(Error::InvalidInput(format!(
                "input `{}` must be {element:?}, got {:?}",
                info.name,
                t.element_type()
            )));
        }
        if let Some(shape) = shape {
            let ok = shape.len() == t.shape().len()
                && shape.iter().zip(t.shape()).all(|(d, &g)| match d {
                    Dim::Fixed(n) => *n == g,
                    Dim::Dynamic(_) => true,
                });
            if !ok {
                return Err(Error::InvalidInput(format!(
                    "input `{}` has shape {:?}, expected {shape:?}",
                    info.name,
                    t.shape()
                )));
            }
        }
    }
    Ok(())
}
