"""Generates the golden test files in this folder from the reference implementations.

Run with the pinned environment:
    PY=$(scripts/pyenv.sh stats crates/stats/testdata/requirements.txt)
    $PY crates/stats/testdata/generate.py

Each JSON file holds a list of cases: {"name", "function", "input", "expected", "tolerance"}.
An expected value of null means "not estimable". Tolerances are relative-or-absolute:
|got - want| <= tol * max(1, |want|).
"""

import json
import math
import os
import warnings

import numpy as np
import pandas as pd
import scipy
import sklearn
import statsmodels
import statsmodels.api as sm
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import dcurves

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
CLOSED = 1e-9
FITTED = 1e-6


def fl(xs):
    return [float(x) for x in xs]


def write(name, cases):
    doc = {
        "generator": "generate.py",
        "versions": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "statsmodels": statsmodels.__version__,
            "pandas": pd.__version__,
            "dcurves": "1.1.7",
        },
        "cases": cases,
    }
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


# ---------------------------------------------------------------- data
X, y = load_breast_cancer(return_X_y=True)
model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000))
model.fit(X, y)
p_full = model.predict_proba(X)[:, 1]
model_b = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000))
model_b.fit(X[:, :4], y)
p_small = model_b.predict_proba(X[:, :4])[:, 1]

rng = np.random.default_rng(20240601)
n_syn = 300
y_syn = rng.integers(0, 2, n_syn)
p_syn = np.clip(1 / (1 + np.exp(-(rng.normal(0, 1.5, n_syn) + 1.2 * (y_syn - 0.5)))), 1e-6, 1 - 1e-6)
p_ties = np.round(p_syn, 1)

score_sets = {
    "breast_cancer": (p_full, y),
    "breast_cancer_small_model": (p_small, y),
    "synthetic": (p_syn, y_syn),
    "heavy_ties": (p_ties, y_syn),
    "all_equal": (np.full(40, 0.3), np.array([0, 1] * 20)),
    "n2": (np.array([0.2, 0.7]), np.array([0, 1])),
    "n4_reversed_tie": (np.array([0.9, 0.5, 0.5, 0.1]), np.array([0, 1, 0, 1])),
    "one_class": (np.array([0.1, 0.4, 0.8]), np.array([1, 1, 1])),
}


# ---------------------------------------------------------------- DeLong
def delong_placements(s, lab):
    """Direct O(m n) DeLong placements (ties one half), independent of the fast algorithm."""
    pos, neg = s[lab == 1], s[lab == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def delong_var(s, lab):
    v10, v01 = delong_placements(s, lab)
    return np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01)


Z = stats.norm.ppf(0.975)
disc = []
for name, (s, lab) in score_sets.items():
    m, n = int(lab.sum()), int((1 - lab).sum())
    exp = {"auroc": None, "delong_variance": None, "ci_low": None, "ci_high": None, "average_precision": None}
    if m > 0 and n > 0:
        exp["auroc"] = float(roc_auc_score(lab, s))
    if m >= 2 and n >= 2:
        v = float(delong_var(s, lab))
        a = exp["auroc"]
        exp.update(delong_variance=v, ci_low=max(0.0, a - Z * math.sqrt(v)), ci_high=min(1.0, a + Z * math.sqrt(v)))
    if m > 0:
        exp["average_precision"] = float(average_precision_score(lab, s))
    disc.append({"name": name, "function": "discrimination", "input": {"scores": fl(s), "labels": fl(lab)},
                 "expected": exp, "tolerance": CLOSED})


def paired(a, b, lab):
    a10, a01 = delong_placements(a, lab)
    b10, b01 = delong_placements(b, lab)
    m, n = len(a10), len(a01)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    S = s10 / m + s01 / n
    var = S[0, 0] + S[1, 1] - 2 * S[0, 1]
    d = a10.mean() - b10.mean()
    z = d / math.sqrt(var)
    return {"difference": float(d), "variance": float(var), "z": float(z),
            "p_value": float(2 * stats.norm.sf(abs(z))),
            "ci_low": float(d - Z * math.sqrt(var)), "ci_high": float(d + Z * math.sqrt(var))}


disc.append({"name": "paired_breast_cancer", "function": "delong_paired",
             "input": {"scores_a": fl(p_full), "scores_b": fl(p_small), "labels": fl(y)},
             "expected": paired(p_full, p_small, y), "tolerance": CLOSED})
disc.append({"name": "paired_synthetic_ties", "function": "delong_paired",
             "input": {"scores_a": fl(p_syn), "scores_b": fl(p_ties), "labels": fl(y_syn)},
             "expected": paired(p_syn, p_ties, y_syn), "tolerance": CLOSED})
write("discrimination.json", disc)


# ---------------------------------------------------------------- calibration
def logit(p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


def glm_fit(s, lab):
    lp = logit(s)
    ones = np.ones((len(s), 1))
    r_int = sm.GLM(lab, ones, family=sm.families.Binomial(), offset=lp).fit(tol=1e-12, maxiter=200)
    r_slope = sm.GLM(lab, np.column_stack([np.ones(len(s)), lp]), family=sm.families.Binomial()).fit(tol=1e-12, maxiter=200)
    # Perfectly separated scores have no finite maximum-likelihood slope: not estimable
    # (statsmodels stops at an arbitrary large value).
    separated = lp[lab == 1].min() > lp[lab == 0].max() or lp[lab == 1].max() < lp[lab == 0].min()
    return float(r_int.params[0]), (None if separated else float(r_slope.params[1]))


def ece(s, lab):
    # Uniform 10-bin calibration_curve, weighted by bin size.
    edges = np.linspace(0.0, 1.0, 11)
    ids = np.searchsorted(edges[1:-1], s)
    tot = np.bincount(ids, minlength=11)
    prob_true, prob_pred = calibration_curve(lab, s, n_bins=10, strategy="uniform")
    return float(np.sum(tot[tot > 0] / len(s) * np.abs(prob_true - prob_pred)))


def hosmer_lemeshow(s, lab, g=10):
    """The common pandas implementation: deciles of risk by pd.qcut(duplicates='drop')."""
    df = pd.DataFrame({"p": s, "y": lab})
    df["group"] = pd.qcut(df["p"], g, duplicates="drop")
    agg = df.groupby("group", observed=True).agg(obs=("y", "sum"), exp=("p", "sum"), n=("y", "size"))
    stat = float((((agg.obs - agg.exp) ** 2) / (agg.exp * (1 - agg.exp / agg.n))).sum())
    dof = len(agg) - 2
    return {"statistic": stat, "df": dof, "p_value": float(stats.chi2.sf(stat, dof)), "groups": len(agg)}


cal = []
for name in ["breast_cancer", "breast_cancer_small_model", "synthetic", "heavy_ties", "all_equal", "n2", "one_class"]:
    s, lab = score_sets[name]
    two = 0 < lab.sum() < len(lab)
    exp = {"brier": float(brier_score_loss(lab, s))}
    exp["intercept"], exp["slope"] = (glm_fit(s, lab) if two and len(np.unique(s)) > 1 else (None, None))
    if two and len(np.unique(s)) == 1:
        exp["intercept"] = glm_fit(s, lab)[0] if False else float(
            sm.GLM(lab, np.ones((len(s), 1)), family=sm.families.Binomial(), offset=logit(s)).fit(tol=1e-12).params[0])
    exp["ece"] = ece(s, lab)
    for strategy in ["uniform", "quantile"]:
        for nb in [5, 10]:
            pt, pp = calibration_curve(lab, s, n_bins=nb, strategy=strategy)
            edges = np.linspace(0, 1, nb + 1) if strategy == "uniform" else np.percentile(s, np.linspace(0, 1, nb + 1) * 100)
            ids = np.searchsorted(edges[1:-1], s)
            tot = np.bincount(ids, minlength=len(edges))
            exp[f"curve_{strategy}_{nb}"] = {"observed_rate": fl(pt), "mean_predicted": fl(pp), "n": [int(t) for t in tot[tot > 0]]}
    if two and len(np.unique(s)) >= 3 and name not in ("all_equal",):
        try:
            hl = hosmer_lemeshow(s, lab)
            # A group whose expected count is 0 or n makes the statistic infinite: not estimable.
            exp["hosmer_lemeshow"] = hl if hl["groups"] >= 3 and math.isfinite(hl["statistic"]) else None
        except ValueError:
            exp["hosmer_lemeshow"] = None
    else:
        exp["hosmer_lemeshow"] = None
    cal.append({"name": name, "function": "calibration", "input": {"scores": fl(s), "labels": fl(lab)},
                "expected": exp, "tolerance": FITTED, "tolerance_closed": CLOSED})
write("calibration.json", cal)


# ---------------------------------------------------------------- thresholds and decision curves
thr_cases = []
grid = [k / 100 for k in range(1, 100)]
for name in ["breast_cancer", "synthetic", "heavy_ties", "n4_reversed_tie"]:
    s, lab = score_sets[name]
    rows = []
    for t in [0.1, 0.3, 0.5, 0.7, 0.9]:
        pred = s >= t
        tp = int(np.sum(pred & (lab == 1))); fp = int(np.sum(pred & (lab == 0)))
        tn = int(np.sum(~pred & (lab == 0))); fn = int(np.sum(~pred & (lab == 1)))
        div = lambda a, b: (a / b) if b else None
        ppv = div(tp, tp + fp)
        rows.append({"threshold": t, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                     "sensitivity": div(tp, tp + fn), "specificity": div(tn, tn + fp), "ppv": ppv,
                     "npv": div(tn, tn + fn), "f1": div(2 * tp, 2 * tp + fp + fn),
                     "alert_rate": (tp + fp) / len(s), "nne": (1 / ppv) if ppv else None})
    df = pd.DataFrame({"y": lab.astype(int), "model": s})
    dca = dcurves.dca(data=df, outcome="y", modelnames=["model"], thresholds=grid)
    mod = dca[dca.model == "model"].sort_values("threshold")
    allm = dca[dca.model == "all"].sort_values("threshold")
    none = dca[dca.model == "none"].sort_values("threshold")
    thr_cases.append({"name": name, "function": "thresholds", "input": {"scores": fl(s), "labels": fl(lab)},
                      "expected": {"rows": rows,
                                   "dca_threshold": fl(mod.threshold), "net_benefit": fl(mod.net_benefit),
                                   "net_benefit_treat_all": fl(allm.net_benefit),
                                   "net_benefit_treat_none": fl(none.net_benefit)},
                      "tolerance": CLOSED})
write("thresholds.json", thr_cases)


# ---------------------------------------------------------------- drift
def feel_zeroes(p):
    """Evidently 0.7.23 get_binned_data(feel_zeroes=True): empty shares become 1e-4, or the
    smallest non-empty share / 10**6 when that share is at most 1e-4."""
    p = p.astype(float).copy()
    smallest = p[p != 0].min()
    np.place(p, p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return p


def evidently_psi(ref, cur, edges):
    r = feel_zeroes(np.histogram(ref, edges)[0] / len(ref))
    c = feel_zeroes(np.histogram(cur, edges)[0] / len(cur))
    return float(np.sum((r - c) * np.log(r / c)))


def numeric_expected(ref, cur):
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    ks = stats.ks_2samp(ref, cur, method="auto")
    wd = stats.wasserstein_distance(ref, cur)
    sd = np.std(ref)
    return {"psi": evidently_psi(ref, cur, edges),
            "js_distance": float(jensenshannon(np.histogram(ref, edges)[0], np.histogram(cur, edges)[0])),
            "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "wasserstein": float(wd), "wasserstein_normed": (float(wd / sd) if sd > 0 else None),
            "n_bins": len(edges) - 1}


drift_cases = []
r6 = lambda a: np.round(a, 6)
numeric_samples = {
    "small_unequal": (r6(rng.normal(0, 1, 30)), r6(rng.normal(0.4, 1, 45))),
    "small_equal": (r6(rng.normal(0, 1, 40)), r6(rng.normal(0.3, 1.2, 40))),
    "small_ties": (np.round(rng.normal(0, 1, 80), 1), np.round(rng.normal(0.2, 1, 70), 1)),
    "tiny": (np.array([1.0, 2.0, 3.0]), np.array([2.5, 4.0])),
    "breast_cancer_mean_radius": (X[:300, 0], X[300:, 0]),
    "asymp_small_current": (r6(rng.normal(0, 1, 12000)), r6(rng.normal(0.1, 1, 90))),
    "asymp_medium": (r6(rng.normal(0, 1, 12000)), r6(rng.normal(0.02, 1, 3000))),
}
# Rare tails: reference bins with shares below 1e-4 and empty current bins, so the empty
# shares take Evidently's smallest-share / 10**6 branch (own generator: the draws above stay).
tails = np.random.default_rng(7)
numeric_samples["rare_tail_bins"] = (r6(tails.standard_t(3, 20000)), r6(tails.normal(0.1, 1, 2000)))
for name, (ref, cur) in numeric_samples.items():
    drift_cases.append({"name": name, "function": "numeric_drift", "input": {"reference": fl(ref), "current": fl(cur)},
                        "expected": numeric_expected(ref, cur), "tolerance": CLOSED})

# Large KS cases from formulas both sides can evaluate exactly (IEEE + and * and /).
for n1, n2, scale in [(20000, 15000, 1.002), (20000, 15000, 1.03), (250000, 240000, 1.002),
                      (250000, 240000, 1.01), (30000, 100, 1.2), (30000, 120, 1.05), (15000, 11000, 1.0)]:
    a = (np.arange(n1) + 0.5) / n1
    b = (np.arange(n2) + 0.5) / n2 * scale
    ks = stats.ks_2samp(a, b, method="auto")
    drift_cases.append({"name": f"ks_generated_{n1}_{n2}_{scale}", "function": "ks_generated",
                        "input": {"n1": n1, "n2": n2, "scale": scale},
                        "expected": {"ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
                                     "wasserstein": float(stats.wasserstein_distance(a, b))},
                        "tolerance": CLOSED})


def categorical_expected(ref, cur):
    keys = sorted(set(ref) | set(cur))
    rc = np.array([ref.count(k) for k in keys], dtype=float)
    cc = np.array([cur.count(k) for k in keys], dtype=float)
    r = feel_zeroes(rc / rc.sum()); c = feel_zeroes(cc / cc.sum())
    chi = stats.chi2_contingency(np.vstack([rc, cc]))
    return {"psi": float(np.sum((r - c) * np.log(r / c))), "js_distance": float(jensenshannon(rc, cc)),
            "chi2": float(chi.statistic), "chi2_pvalue": float(chi.pvalue)}


cats = ["a", "b", "c", "d"]
cat_samples = {
    "four_levels": (list(rng.choice(cats, 500, p=[0.4, 0.3, 0.2, 0.1])), list(rng.choice(cats, 400, p=[0.3, 0.3, 0.2, 0.2]))),
    "two_levels_yates": (list(rng.choice(["x", "y"], 80)), list(rng.choice(["x", "y"], 60, p=[0.7, 0.3]))),
    "new_level_in_current": (["a"] * 30 + ["b"] * 20, ["a"] * 25 + ["b"] * 15 + ["c"] * 5),
    "rare_level_missing_in_current": (["a"] * 12000 + ["b"] * 9000 + ["r"], ["a"] * 700 + ["b"] * 300),
}
for name, (ref, cur) in cat_samples.items():
    drift_cases.append({"name": name, "function": "categorical_drift",
                        "input": {"reference": [str(v) for v in ref], "current": [str(v) for v in cur]},
                        "expected": categorical_expected(ref, cur), "tolerance": CLOSED})
write("drift.json", drift_cases)
print("wrote", len(disc), len(cal), len(thr_cases), len(drift_cases), "cases")
