//! Tree ensembles (`TreeEnsembleClassifier`, `TreeEnsembleRegressor`) compiled to a flat layout.
//!
//! Each tree is laid out depth-first with the true child immediately after its parent, so a
//! branch stores only its false child. A node is 12 bytes (threshold, packed feature/mode/flags,
//! false child or leaf index): five nodes share a cache line and a root-to-leaf walk touches few
//! lines. Children always come after parents, so every walk terminates whatever the input.
//!
//! Thresholds are f32 and compared with the f32 input, and leaf weights are summed in f32 in
//! tree order, as ONNX Runtime does for float input. The score finalisation replicates ORT's
//! aggregator, including its binary-classifier conventions.

use std::collections::HashMap;

use super::ml::{Labels, PostTransform, logistic, probit, transform_row};
use super::standard::OpResult;
use crate::tensor::{Tensor, Value};

const LEAF: u32 = 1 << 31;
const MISSING_TRUE: u32 = 1 << 30;
const MODE_SHIFT: u32 = 27;
const FEATURE_MASK: u32 = (1 << MODE_SHIFT) - 1;
/// Marker for "modes differ between nodes": the walk reads each node's own mode.
const ANY_MODE: u32 = 7;

const LEQ: u32 = 0;
const LT: u32 = 1;
const GTE: u32 = 2;
const GT: u32 = 3;
const EQ: u32 = 4;
const NEQ: u32 = 5;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub threshold: f32,
    /// Bits 0..27 feature, 27..30 comparison mode, 30 missing-goes-true, 31 leaf.
    pub meta: u32,
    /// False child (branch) or leaf index (leaf).
    pub next: u32,
}

impl Node {
    pub(crate) fn is_leaf(&self) -> bool {
        self.meta & LEAF != 0
    }

    pub(crate) fn feature(&self) -> usize {
        (self.meta & FEATURE_MASK) as usize
    }

    /// Whether `x` follows the true branch, with ORT's NaN rule: a NaN that the comparison
    /// does not already send true goes true only when missing values track true.
    #[inline(always)]
    pub(crate) fn goes_true(&self, x: f32) -> bool {
        compare((self.meta >> MODE_SHIFT) & 7, x, self.threshold)
            || (self.meta & MISSING_TRUE != 0 && x.is_nan())
    }
}

#[inline(always)]
fn compare(mode: u32, x: f32, t: f32) -> bool {
    match mode {
        LEQ => x <= t,
        LT => x < t,
        GTE => x >= t,
        GT => x > t,
        EQ => x == t,
        _ => x != t,
    }
}

#[inline(always)]
fn find_leaf<const M: u32>(nodes: &[Node], root: usize, row: &[f32]) -> usize {
    let mut i = root;
    loop {
        let n = nodes[i];
        if n.meta & LEAF != 0 {
            return n.next as usize;
        }
        let x = row[(n.meta & FEATURE_MASK) as usize];
        let mode = if M == ANY_MODE {
            (n.meta >> MODE_SHIFT) & 7
        } else {
            M
        };
        let go = compare(mode, x, n.threshold) || (n.meta & MISSING_TRUE != 0 && x.is_nan());
        i = if go { i + 1 } else { n.next as usize };
    }
}

/// The double-precision walk, for double input: ORT compares double input with double
/// thresholds, so a value one double ULP from a threshold must go the way ORT sends it.
fn find_leaf64(nodes: &[Node], thresholds: &[f64], root: usize, row: &[f64]) -> usize {
    let mut i = root;
    loop {
        let n = nodes[i];
        if n.meta & LEAF != 0 {
            return n.next as usize;
        }
        let x = row[(n.meta & FEATURE_MASK) as usize];
        let t = thresholds[i];
        let go = match (n.meta >> MODE_SHIFT) & 7 {
            LEQ => x <= t,
            LT => x < t,
            GTE => x >= t,
            GT => x > t,
            EQ => x == t,
            _ => x != t,
        } || (n.meta & MISSING_TRUE != 0 && x.is_nan());
        i = if go { i + 1 } else { n.next as usize };
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Classifier {
        labels: Labels,
        /// Two classes and every leaf weight on one class column (ORT's `binary_case_`).
        binary_case: bool,
        all_positive: bool,
    },
    Regressor,
}

/// The attributes of a tree-ensemble node, already widened to f64 where ONNX allows doubles.
#[derive(Debug, Default)]
pub(crate) struct TreeAttrs {
    pub tree_ids: Vec<i64>,
    pub node_ids: Vec<i64>,
    pub feature_ids: Vec<i64>,
    pub modes: Vec<String>,
    pub values: Vec<f64>,
    pub true_ids: Vec<i64>,
    pub false_ids: Vec<i64>,
    pub missing_true: Vec<i64>,
    pub hitrates: Vec<f64>,
    pub w_tree: Vec<i64>,
    pub w_node: Vec<i64>,
    pub w_target: Vec<i64>,
    pub w_value: Vec<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Ensemble {
    pub nodes: Vec<Node>,
    pub roots: Vec<u32>,
    mode: u32,
    pub n_features: usize,
    leaf_start: Vec<u32>,
    leaf_target: Vec<u32>,
    leaf_weight: Vec<f32>,
    /// Thresholds and leaf weights as the model gives them (double for `*_as_tensor`), used
    /// when the input is double.
    thresholds64: Vec<f64>,
    leaf_weight64: Vec<f64>,
    /// Per-leaf value when every leaf carries exactly one weight for output 0.
    pub single: Option<Vec<f32>>,
    /// Per-node cover for TreeSHAP (hit rates, or an even split when the model has none).
    pub cover: Vec<f64>,
    /// Whether `cover` came from `nodes_hitrates` rather than the even-split fallback.
    pub cover_from_model: bool,
    pub n_outputs: usize,
    pub aggregate: Aggregate,
    pub post: PostTransform,
    pub base_values: Vec<f32>,
    pub kind: Kind,
}

fn parse_mode(s: &str) -> Option<u32> {
    Some(match s {
        "BRANCH_LEQ" => LEQ,
        "BRANCH_LT" => LT,
        "BRANCH_GTE" => GTE,
        "BRANCH_GT" => GT,
        "BRANCH_EQ" => EQ,
        "BRANCH_NEQ" => NEQ,
        "LEAF" => LEAF,
        _ => return None,
    })
}

impl Ensemble {
    pub(crate) fn compile(
        a: TreeAttrs,
        n_outputs: usize,
        aggregate: Aggregate,
        post: PostTransform,
        base_values: Vec<f32>,
        kind: Kind,
    ) -> OpResult<Self> {
        let n = a.node_ids.len();
        for (name, len) in [
            ("nodes_treeids", a.tree_ids.len()),
            ("nodes_featureids", a.feature_ids.len()),
            ("nodes_modes", a.modes.len()),
            ("nodes_values", a.values.len()),
            ("nodes_truenodeids", a.true_ids.len()),
            ("nodes_falsenodeids", a.false_ids.len()),
        ] {
            if len != n {
                return Err(format!("{name} has {len} entries for {n} nodes"));
            }
        }
        if !a.missing_true.is_empty() && a.missing_true.len() != n {
            return Err("nodes_missing_value_tracks_true does not match the nodes".into());
        }
        let use_hitrates =
            a.hitrates.len() == n && n > 0 && a.hitrates.iter().any(|&h| h != a.hitrates[0]);
        let wn = a.w_node.len();
        if a.w_tree.len() != wn || a.w_target.len() != wn || a.w_value.len() != wn {
            return Err("leaf weight attributes differ in length".into());
        }
        if n_outputs == 0 {
            return Err("the ensemble has no outputs".into());
        }
        let mut index = HashMap::with_capacity(n);
        let mut tree_order = Vec::new();
        for i in 0..n {
            if index.insert((a.tree_ids[i], a.node_ids[i]), i).is_some() {
                return Err(format!(
                    "node {} of tree {} is defined twice",
                    a.node_ids[i], a.tree_ids[i]
                ));
            }
            if !tree_order.contains(&a.tree_ids[i]) {
                tree_order.push(a.tree_ids[i]);
            }
        }
        let mut modes = Vec::with_capacity(n);
        for m in &a.modes {
            modes.push(parse_mode(m).ok_or_else(|| format!("unknown node mode `{m}`"))?);
        }
        let mut is_child = vec![false; n];
        for (i, &mode) in modes.iter().enumerate() {
            if mode != LEAF {
                for c in [a.true_ids[i], a.false_ids[i]] {
                    let j = *index.get(&(a.tree_ids[i], c)).ok_or_else(|| {
                        format!(
                            "node {} of tree {} points to missing node {c}",
                            a.node_ids[i], a.tree_ids[i]
                        )
                    })?;
                    is_child[j] = true;
                }
            }
        }
        let mut weights: HashMap<(i64, i64), Vec<(u32, f64)>> = HashMap::new();
        for k in 0..wn {
            let t = a.w_target[k];
            if t < 0 || t as usize >= n_outputs {
                return Err(format!(
                    "leaf weight for output {t}, but there are {n_outputs} outputs"
                ));
            }
            weights
                .entry((a.w_tree[k], a.w_node[k]))
                .or_default()
                .push((t as u32, a.w_value[k]));
        }

        let mut e = Ensemble {
            nodes: Vec::with_capacity(n),
            roots: Vec::with_capacity(tree_order.len()),
            mode: ANY_MODE,
            n_features: 0,
            leaf_start: vec![0],
            leaf_target: Vec::new(),
            leaf_weight: Vec::new(),
            thresholds64: Vec::with_capacity(n),
            leaf_weight64: Vec::new(),
            single: None,
            cover: Vec::with_capacity(n),
            cover_from_model: use_hitrates,
            n_outputs,
            aggregate,
            post,
            base_values,
            kind,
        };
        // Shared subtrees would be copied; this bound turns a cyclic graph into an error.
        let budget = n.saturating_mul(4).saturating_add(16);
        for &tree in &tree_order {
            let root = (0..n)
                .find(|&i| a.tree_ids[i] == tree && !is_child[i])
                .ok_or_else(|| format!("tree {tree} has no root (its nodes form a cycle)"))?;
            e.roots.push(e.nodes.len() as u32);
            // (attribute index, branch node whose false child this is, cover)
            let mut stack: Vec<(usize, Option<usize>, f64)> = vec![(root, None, 1.0)];
            while let Some((i, patch, cover)) = stack.pop() {
                if e.nodes.len() >= budget {
                    return Err(format!("tree {tree} is cyclic or too large"));
                }
                let here = e.nodes.len();
                if let Some(p) = patch {
                    e.nodes[p].next = here as u32;
                }
                let cover = if use_hitrates { a.hitrates[i] } else { cover };
                e.cover.push(cover);
                if modes[i] == LEAF {
                    let leaf = (e.leaf_start.len() - 1) as u32;
                    for &(t, w) in weights
                        .get(&(tree, a.node_ids[i]))
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        e.leaf_target.push(t);
                        e.leaf_weight.push(w as f32);
                        e.leaf_weight64.push(w);
                    }
                    e.leaf_start.push(e.leaf_weight.len() as u32);
                    e.nodes.push(Node {
                        threshold: 0.0,
                        meta: LEAF,
                        next: leaf,
                    });
                    e.thresholds64.push(0.0);
                    continue;
                }
                let f = a.feature_ids[i];
                if !(0..i64::from(FEATURE_MASK)).contains(&f) {
                    return Err(format!("feature index {f} is out of range"));
                }
                e.n_features = e.n_features.max(f as usize + 1);
                let missing = a.missing_true.get(i).copied().unwrap_or(0) != 0;
                let meta =
                    f as u32 | (modes[i] << MODE_SHIFT) | if missing { MISSING_TRUE } else { 0 };
                e.nodes.push(Node {
                    threshold: a.values[i] as f32,
                    meta,
                    next: 0,
                });
                e.thresholds64.push(a.values[i]);
                let t = index[&(tree, a.true_ids[i])];
                let fl = index[&(tree, a.false_ids[i])];
                stack.push((fl, Some(here), cover * 0.5));
                stack.push((t, None, cover * 0.5));
            }
        }
        let n_leaves = e.leaf_start.len() - 1;
        if (0..n_leaves).all(|l| {
            e.leaf_start[l + 1] - e.leaf_start[l] == 1
                && e.leaf_target[e.leaf_start[l] as usize] == 0
        }) {
            e.single = Some(e.leaf_weight.clone());
        }
        let mut branch_modes = e
            .nodes
            .iter()
            .filter(|n| !n.is_leaf())
            .map(|n| (n.meta >> MODE_SHIFT) & 7);
        if let Some(first) = branch_modes.next() {
            if branch_modes.all(|m| m == first) {
                e.mode = first;
            }
        } else {
            e.mode = LEQ;
        }
        Ok(e)
    }

    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }

    #[inline(always)]
    fn sum_single<const M: u32>(&self, single: &[f32], row: &[f32]) -> f32 {
        let mut s = 0.0f32;
        for &r in &self.roots {
            s += single[find_leaf::<M>(&self.nodes, r as usize, row)];
        }
        s
    }

    /// Sum of leaf values over all trees, for single-output ensembles.
    #[inline]
    fn single_sum(&self, single: &[f32], row: &[f32]) -> f32 {
        match self.mode {
            LEQ => self.sum_single::<LEQ>(single, row),
            LT => self.sum_single::<LT>(single, row),
            _ => self.sum_single::<ANY_MODE>(single, row),
        }
    }

    /// Aggregated raw scores of one row, per output, with ORT's `has_score` flags.
    fn accumulate(&self, row: &[f32], scores: &mut [f32], has: &mut [bool]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        has.iter_mut().for_each(|h| *h = false);
        if let (Some(single), Aggregate::Sum | Aggregate::Average) = (&self.single, self.aggregate)
        {
            scores[0] = self.single_sum(single, row);
            has[0] = !self.roots.is_empty();
            return;
        }
        for &r in &self.roots {
            let leaf = find_leaf::<ANY_MODE>(&self.nodes, r as usize, row);
            let (lo, hi) = (
                self.leaf_start[leaf] as usize,
                self.leaf_start[leaf + 1] as usize,
            );
            for k in lo..hi {
                let (t, w) = (self.leaf_target[k] as usize, self.leaf_weight[k]);
                let s = &mut scores[t];
                match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => *s += w,
                    Aggregate::Min => *s = if !has[t] || w < *s { w } else { *s },
                    Aggregate::Max => *s = if !has[t] || w > *s { w } else { *s },
                }
                has[t] = true;
            }
        }
    }

    /// Raw margin of a single-output ensemble: the aggregated leaf values plus the base value,
    /// before any post transform. This is the scale TreeSHAP explains.
    pub(crate) fn margin(&self, row: &[f32]) -> Option<f32> {
        let single = self.single.as_ref()?;
        let mut s = self.single_sum(single, row);
        if self.aggregate == Aggregate::Average {
            s /= self.n_trees().max(1) as f32;
        }
        Some(s + self.base_values.first().copied().unwrap_or(0.0))
    }

    /// Width of the score output.
    pub(crate) fn out_width(&self) -> usize {
        self.n_outputs
    }

    /// Scores one row: writes `out_width()` values to `out` and returns the class index
    /// (meaningless for regressors). `scores`/`has` are scratch of length `n_outputs`.
    pub(crate) fn score_row(
        &self,
        row: &[f32],
        scores: &mut [f32],
        has: &mut [bool],
        out: &mut [f32],
    ) -> usize {
        self.accumulate(row, scores, has);
        self.finalize(scores, has, out)
    }

    /// Aggregated raw scores of one double row, walking with double thresholds and summing
    /// in double; the sums are then rounded to float, where ORT's outputs live.
    fn accumulate64(&self, row: &[f64], acc: &mut [f64], scores: &mut [f32], has: &mut [bool]) {
        acc.iter_mut().for_each(|s| *s = 0.0);
        has.iter_mut().for_each(|h| *h = false);
        for &r in &self.roots {
            let leaf = find_leaf64(&self.nodes, &self.thresholds64, r as usize, row);
            let (lo, hi) = (
                self.leaf_start[leaf] as usize,
                self.leaf_start[leaf + 1] as usize,
            );
            for k in lo..hi {
                let (t, w) = (self.leaf_target[k] as usize, self.leaf_weight64[k]);
                let s = &mut acc[t];
                match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => *s += w,
                    Aggregate::Min => *s = if !has[t] || w < *s { w } else { *s },
                    Aggregate::Max => *s = if !has[t] || w > *s { w } else { *s },
                }
                has[t] = true;
            }
        }
        for (s, a) in scores.iter_mut().zip(acc.iter()) {
            *s = *a as f32;
        }
    }

    fn finalize(&self, scores: &mut [f32], has: &mut [bool], out: &mut [f32]) -> usize {
        match &self.kind {
            Kind::Regressor => {
                self.finalize_regressor(scores, has, out);
                0
            }
            Kind::Classifier {
                binary_case,
                all_positive,
                ..
            } => self.finalize_classifier(scores, has, out, *binary_case, *all_positive),
        }
    }

    fn finalize_regressor(&self, scores: &mut [f32], has: &[bool], out: &mut [f32]) {
        let k = self.n_outputs;
        let n_trees = self.n_trees() as f32;
        if k == 1 {
            let origin = if self.base_values.len() == 1 {
                self.base_values[0]
            } else {
                0.0
            };
            let s = match self.aggregate {
                Aggregate::Sum => scores[0] + origin,
                Aggregate::Average => scores[0] / n_trees + origin,
                Aggregate::Min | Aggregate::Max => {
                    if has[0] {
                        scores[0] + origin
                    } else {
                        origin
                    }
                }
            };
            // ORT applies only PROBIT to a single regression target.
            out[0] = if self.post == PostTransform::Probit {
                probit(s)
            } else {
                s
            };
            return;
        }
        let use_base = self.base_values.len() == k;
        for j in 0..k {
            let b = if use_base { self.base_values[j] } else { 0.0 };
            out[j] = match self.aggregate {
                Aggregate::Sum => scores[j] + b,
                Aggregate::Average => scores[j] / n_trees + b,
                Aggregate::Min | Aggregate::Max => b + if has[j] { scores[j] } else { 0.0 },
            };
        }
        transform_row(&mut out[..k], self.post);
    }

    fn finalize_classifier(
        &self,
        s: &mut [f32],
        has: &mut [bool],
        out: &mut [f32],
        binary_case: bool,
        all_positive: bool,
    ) -> usize {
        let k = self.n_outputs;
        let base = &self.base_values;
        if k > 2 {
            for (j, &b) in base.iter().enumerate().take(k) {
                if has[j] {
                    s[j] += b;
                } else {
                    has[j] = true;
                    s[j] = b;
                }
            }
            let mut best: Option<usize> = None;
            for j in 0..k {
                if has[j] && best.is_none_or(|b| s[j] > s[b]) {
                    best = Some(j);
                }
            }
            out[..k].copy_from_slice(&s[..k]);
            transform_row(&mut out[..k], self.post);
            return best.unwrap_or(0);
        }
        // Two classes: ORT's conventions for one or two score columns and base values.
        let mut len = 2;
        let mut extra = -1;
        match base.len() {
            2 => {
                if has[1] {
                    s[1] = base[1] + s[0];
                    s[0] = -s[1];
                } else {
                    s[1] += base[1];
                    s[0] += base[0];
                }
                has[1] = true;
            }
            1 => {
                s[0] += base[0];
                if !has[1] {
                    len = 1;
                }
            }
            _ => {
                extra = 3;
                if !has[1] {
                    len = 1;
                }
            }
        }
        let pos = if len == 2 && has[1] {
            s[1]
        } else if has[0] {
            s[0]
        } else {
            0.0
        };
        let class = if binary_case {
            if all_positive {
                if pos > 0.5 {
                    extra = 0;
                    1
                } else {
                    extra = 1;
                    0
                }
            } else if pos > 0.0 {
                extra = 2;
                1
            } else {
                extra = 3;
                0
            }
        } else {
            usize::from(pos > 0.0)
        };
        if len == 2 {
            out[..2].copy_from_slice(&s[..2]);
            transform_row(&mut out[..2], self.post);
            return class;
        }
        let v = s[0];
        if self.post == PostTransform::Probit {
            out[0] = probit(v);
            out[1] = 0.0;
            return class;
        }
        match extra {
            0 | 1 => {
                out[0] = 1.0 - v;
                out[1] = v;
            }
            2 | 3 => {
                if self.post == PostTransform::Logistic {
                    out[0] = logistic(-v);
                    out[1] = logistic(v);
                } else {
                    out[0] = -v;
                    out[1] = v;
                }
            }
            _ => {
                out[0] = v;
                out[1] = 0.0;
            }
        }
        class
    }

    /// Positive-class probability of one row of a two-class classifier, without allocating.
    #[inline]
    pub(crate) fn positive_proba(&self, row: &[f32]) -> f32 {
        let mut scores = [0.0f32; 2];
        let mut has = [false; 2];
        let mut out = [0.0f32; 2];
        self.score_row(row, &mut scores, &mut has, &mut out);
        out[1]
    }

    /// Scores double rows (see [`Self::accumulate64`]).
    pub(crate) fn eval64(&self, x: &[f64], n: usize, c: usize) -> OpResult<Vec<Value>> {
        if c < self.n_features {
            return Err(format!(
                "the trees read feature {} but rows have {c} values",
                self.n_features - 1
            ));
        }
        let k = self.out_width();
        let mut out = vec![0.0f32; n * k];
        let mut acc = vec![0.0f64; self.n_outputs];
        let mut scores = vec![0.0f32; self.n_outputs];
        let mut has = vec![false; self.n_outputs];
        let mut classes = Vec::with_capacity(n);
        for i in 0..n {
            self.accumulate64(&x[i * c..(i + 1) * c], &mut acc, &mut scores, &mut has);
            classes.push(self.finalize(&mut scores, &mut has, &mut out[i * k..(i + 1) * k]));
        }
        self.outputs(out, n, k, &classes)
    }

    fn outputs(
        &self,
        out: Vec<f32>,
        n: usize,
        k: usize,
        classes: &[usize],
    ) -> OpResult<Vec<Value>> {
        let scores = Value::Tensor(Tensor::f32(vec![n, k], out));
        Ok(match &self.kind {
            Kind::Regressor => vec![scores],
            Kind::Classifier { labels, .. } => {
                vec![Value::Tensor(labels.tensor(classes, n)), scores]
            }
        })
    }

    pub(crate) fn eval(&self, x: &[f32], n: usize, c: usize) -> OpResult<Vec<Value>> {
        if c < self.n_features {
            return Err(format!(
                "the trees read feature {} but rows have {c} values",
                self.n_features - 1
            ));
        }
        let k = self.out_width();
        let mut out = vec![0.0f32; n * k];
        let mut scores = vec![0.0f32; self.n_outputs];
        let mut has = vec![false; self.n_outputs];
        let mut classes = Vec::with_capacity(n);
        for i in 0..n {
            let row = &x[i * c..(i + 1) * c];
            classes.push(self.score_row(row, &mut scores, &mut has, &mut out[i * k..(i + 1) * k]));
        }
        self.outputs(out, n, k, &classes)
    }
}
