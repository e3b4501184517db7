//! Per-feature explanations: exact for linear models, path-dependent TreeSHAP for trees.

use crate::Error;
use crate::ops::Op;
use crate::ops::tree::Ensemble;
use crate::plan::{Model, apply_prefix};

/// Contributions of each input feature to one prediction, on the model's raw scale.
///
/// `baseline + contributions.iter().sum() == score` (to float rounding), where `score` is the
/// logit of the positive class (linear classifiers), the raw margin before the post transform
/// (tree ensembles) or the prediction (regressors).
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub contributions: Vec<f64>,
    pub baseline: f64,
    pub score: f64,
    /// False for trees explained with the even-split cover fallback.
    pub cover_from_model: bool,
}

impl Model {
    /// Explains one row.
    ///
    /// Linear models: contribution `w_j · z_j`, where `z` is the scorer's input after the
    /// model's own `Scaler`s; for a standard-scaled logistic regression `z_j` is the z-score, so
    /// the baseline is the training mean and `baseline` is the intercept (on the logit scale).
    ///
    /// Tree ensembles: TreeSHAP (Lundberg et al., path-dependent) on the raw margin, using
    /// `nodes_hitrates` as node cover. Exporters that write no real cover (skl2onnx writes 1.0
    /// everywhere) get an even split at every branch instead, which makes the baseline the mean
    /// over leaves weighted by 2^-depth rather than the training mean.
    pub fn explain(&self, row: &[f32]) -> Result<Explanation, Error> {
        let (core, op) = self.core().ok_or_else(|| {
            Error::NotApplicable(
                "explanations need preprocessing followed by one linear or tree scorer".into(),
            )
        })?;
        let n = row.len();
        let mut a = vec![0.0f32; n];
        let mut b = vec![0.0f32; n];
        let x = apply_prefix(&core.prefix, row, &mut a, &mut b).map_err(Error::InvalidInput)?;
        match op {
            Op::LinearClassifier(l) if l.n_targets() > 2 => Err(Error::NotApplicable(
                "multi-class linear models are not explained".into(),
            )),
            Op::LinearClassifier(l) => {
                let c = l.n_features();
                if c != n {
                    return Err(Error::InvalidInput(format!(
                        "expected {c} features, got {n}"
                    )));
                }
                let t = l.n_targets() - 1;
                let w = &l.coef[t * c..(t + 1) * c];
                Ok(linear(w, f64::from(l.intercepts[t]), x))
            }
            Op::LinearRegressor(l) => {
                let c = l.n_features();
                if c != n || l.targets != 1 {
                    return Err(Error::NotApplicable(
                        "only single-target regressors with matching features".into(),
                    ));
                }
                Ok(linear(
                    &l.coef[..c],
                    f64::from(l.intercepts.first().copied().unwrap_or(0.0)),
                    x,
                ))
            }
            Op::Trees(e) => tree_shap(e, x),
            _ => Err(Error::NotApplicable("unsupported scorer".into())),
        }
    }
}

fn linear(w: &[f32], intercept: f64, x: &[f32]) -> Explanation {
    let contributions: Vec<f64> = w
        .iter()
        .zip(x)
        .map(|(&w, &x)| f64::from(w) * f64::from(x))
        .collect();
    let score = intercept + contributions.iter().sum::<f64>();
    Explanation {
        contributions,
        baseline: intercept,
        score,
        cover_from_model: true,
    }
}

#[derive(Clone, Copy, Debug)]
struct PathElement {
    feature: i64,
    zero: f64,
    one: f64,
    weight: f64,
}

fn extend(path: &mut Vec<PathElement>, zero: f64, one: f64, feature: i64) {
    let l = path.len();
    path.push(PathElement {
        feature,
        zero,
        one,
        weight: if l == 0 { 1.0 } else { 0.0 },
    });
    for i in (0..l).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / (l + 1) as f64;
        path[i].weight = zero * path[i].weight * (l - i) as f64 / (l + 1) as f64;
    }
}

fn unwind(path: &mut Vec<PathElement>, i: usize) {
    let l = path.len() - 1;
    let (one, zero) = (path[i].one, path[i].zero);
    let mut next = path[l].weight;
    for j in (0..l).rev() {
        if one != 0.0 {
            let t = path[j].weight;
            path[j].weight = next * (l + 1) as f64 / ((j + 1) as f64 * one);
            next = t - path[j].weight * zero * (l - j) as f64 / (l + 1) as f64;
        } else {
            path[j].weight = path[j].weight * (l + 1) as f64 / (zero * (l - j) as f64);
        }
    }
    for j in i..l {
        path[j].feature = path[j + 1].feature;
        path[j].zero = path[j + 1].zero;
        path[j].one = path[j + 1].one;
    }
    path.pop();
}

fn unwound_sum(path: &[PathElement], i: usize) -> f64 {
    let l = path.len() - 1;
    let (one, zero) = (path[i].one, path[i].zero);
    let mut next = path[l].weight;
    let mut total = 0.0;
    for j in (0..l).rev() {
        if one != 0.0 {
            let t = next * (l + 1) as f64 / ((j + 1) as f64 * one);
            total += t;
            next = path[j].weight - t * zero * (l - j) as f64 / (l + 1) as f64;
        } else if zero != 0.0 {
            total += path[j].weight / zero / ((l - j) as f64 / (l + 1) as f64);
        }
    }
    total
}

struct Walk<'a> {
    e: &'a Ensemble,
    leaves: &'a [f32],
    x: &'a [f32],
    phi: Vec<f64>,
}

impl Walk<'_> {
    fn recurse(
        &mut self,
        node: usize,
        mut path: Vec<PathElement>,
        zero: f64,
        one: f64,
        feature: i64,
    ) {
        extend(&mut path, zero, one, feature);
        let n = self.e.nodes[node];
        if n.is_leaf() {
            let v = f64::from(self.leaves[n.next as usize]);
            for i in 1..path.len() {
                let w = unwound_sum(&path, i);
                let p = path[i];
                self.phi[p.feature as usize] += w * (p.one - p.zero) * v;
            }
            return;
        }
        let f = n.feature();
        let (t, fl) = (node + 1, n.next as usize);
        let (hot, cold) = if n.goes_true(self.x[f]) {
            (t, fl)
        } else {
            (fl, t)
        };
        let cover = self.e.cover[node];
        let (hz, cz) = if cover > 0.0 {
            (self.e.cover[hot] / cover, self.e.cover[cold] / cover)
        } else {
            (0.5, 0.5)
        };
        let (mut iz, mut io) = (1.0, 1.0);
        if let Some(k) = (1..path.len()).find(|&k| path[k].feature == f as i64) {
            iz = path[k].zero;
            io = path[k].one;
            unwind(&mut path, k);
        }
        self.recurse(hot, path.clone(), iz * hz, io, f as i64);
        self.recurse(cold, path, iz * cz, 0.0, f as i64);
    }
}

fn tree_shap(e: &Ensemble, x: &[f32]) -> Result<Explanation, Error> {
    let leaves = e
        .single
        .as_deref()
        .ok_or_else(|| Error::NotApplicable("TreeSHAP needs a single-output ensemble".into()))?;
    if !matches!(
        e.aggregate,
        crate::ops::tree::Aggregate::Sum | crate::ops::tree::Aggregate::Average
    ) {
        return Err(Error::NotApplicable(
            "TreeSHAP needs SUM or AVERAGE aggregation".into(),
        ));
    }
    if x.len() < e.n_features {
        return Err(Error::InvalidInput(format!(
            "the trees read {} features",
            e.n_features
        )));
    }
    let scale = if e.aggregate == crate::ops::tree::Aggregate::Average {
        1.0 / e.n_trees().max(1) as f64
    } else {
        1.0
    };
    let mut walk = Walk {
        e,
        leaves,
        x,
        phi: vec![0.0; x.len()],
    };
    let mut expected = 0.0;
    for t in 0..e.n_trees() {
        let root = e.roots[t] as usize;
        walk.recurse(root, Vec::with_capacity(16), 1.0, 1.0, -1);
        // Expected value: cover-weighted mean of the tree's leaves.
        let end = e.roots.get(t + 1).map_or(e.nodes.len(), |&r| r as usize);
        let rc = e.cover[root];
        for i in root..end {
            if e.nodes[i].is_leaf() && rc > 0.0 {
                expected += e.cover[i] / rc * f64::from(leaves[e.nodes[i].next as usize]);
            }
        }
    }
    let base = f64::from(e.base_values.first().copied().unwrap_or(0.0));
    let contributions: Vec<f64> = walk.phi.iter().map(|p| p * scale).collect();
    let score = f64::from(e.margin(x).unwrap_or(f32::NAN));
    Ok(Explanation {
        contributions,
        baseline: expected * scale + base,
        score,
        cover_from_model: e.cover_from_model,
    })
}
