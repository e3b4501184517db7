"""Python side of the vigil-stats benchmark: writes the inputs, then times the equivalent
scikit-learn / NumPy / SciPy computations.

    python bench.py write OUT_DIR          # eval.csv, reference.f64, current.f64
    python bench.py run OUT_DIR            # prints TIME lines
"""

import sys
import time

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import average_precision_score, roc_auc_score

N = 1_000_000
REPLICATES = 1000
# Replicates actually run in Python; the time is scaled to REPLICATES (each replicate costs
# the same), because 1,000 scikit-learn replicates on 1M rows take many minutes.
PY_REPLICATES = 20
FEATURES = 30
N_REF = 200_000


def write(out):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, N)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, N) + y)))
    g = rng.choice(list("ABCDE"), N)
    pd.DataFrame({"score": np.round(s, 8), "label": y, "group": g}).to_csv(f"{out}/eval.csv", index=False)
    ref = rng.normal(0, 1, (N_REF, FEATURES))
    shift = np.linspace(0, 0.2, FEATURES)
    cur = rng.normal(0, 1, (N, FEATURES)) + shift
    ref.astype("<f8").tofile(f"{out}/reference.f64")
    cur.astype("<f8").tofile(f"{out}/current.f64")


def psi_js(r, c):
    edges = np.histogram_bin_edges(np.concatenate([r, c]), bins="sturges")
    rh = np.histogram(r, edges)[0]
    ch = np.histogram(c, edges)[0]
    rp = np.where(rh == 0, 1e-4, rh / len(r))
    cp = np.where(ch == 0, 1e-4, ch / len(c))
    return np.sum((rp - cp) * np.log(rp / cp)), jensenshannon(rh, ch)


def run(out):
    df = pd.read_csv(f"{out}/eval.csv")
    s = df.score.to_numpy()
    y = df.label.to_numpy()
    g = df.group.to_numpy()

    t = time.perf_counter()
    roc_auc_score(y, s)
    average_precision_score(y, s)
    point = time.perf_counter() - t

    t = time.perf_counter()
    rng = np.random.default_rng(1)
    aucs, aps = [], []
    for _ in range(PY_REPLICATES):
        idx = rng.integers(0, N, N)
        aucs.append(roc_auc_score(y[idx], s[idx]))
        aps.append(average_precision_score(y[idx], s[idx]))
    np.percentile(aucs, [2.5, 97.5])
    np.percentile(aps, [2.5, 97.5])
    boot = (time.perf_counter() - t) * REPLICATES / PY_REPLICATES

    t = time.perf_counter()
    for v in np.unique(g):
        m = g == v
        roc_auc_score(y[m], s[m])
        average_precision_score(y[m], s[m])
    sub = time.perf_counter() - t
    print(f"TIME point {point:.3f}")
    print(f"TIME bootstrap {boot:.3f}  (measured {PY_REPLICATES} replicates, scaled to {REPLICATES})")
    print(f"TIME subgroups {sub:.3f}")
    print(f"TIME eval_total {point + boot + sub:.3f}")

    ref = np.fromfile(f"{out}/reference.f64", dtype="<f8").reshape(N_REF, FEATURES)
    cur = np.fromfile(f"{out}/current.f64", dtype="<f8").reshape(N, FEATURES)
    t = time.perf_counter()
    for j in range(FEATURES):
        r, c = ref[:, j], cur[:, j]
        psi_js(r, c)
        stats.ks_2samp(r, c)
        w = stats.wasserstein_distance(r, c)
        _ = w / np.std(r)
    print(f"TIME drift {time.perf_counter() - t:.3f}")


if __name__ == "__main__":
    {"write": write, "run": run}[sys.argv[1]](sys.argv[2])
