"""Python equivalent of `vigil evaluate scores FILE --score-col score --label-col label
--group-col group --bootstrap 1000`, end to end: read the CSV, AUROC and AUPRC overall and per
subgroup, Brier, and a 1,000-replicate percentile bootstrap of AUROC and AUPRC.

    python bench.py eval.csv         # prints TIME lines (seconds)

1,000 scikit-learn replicates on 1M rows take many minutes, so PY_REPLICATES are run and the
bootstrap time is scaled to 1,000 (every replicate costs the same).
"""

import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

REPLICATES = 1000
PY_REPLICATES = 20


def main(path):
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    s = df.score.to_numpy()
    y = df.label.to_numpy()
    g = df.group.to_numpy()
    read = time.perf_counter() - t0

    t = time.perf_counter()
    auc = roc_auc_score(y, s)
    ap = average_precision_score(y, s)
    brier_score_loss(y, s)
    for v in np.unique(g):
        m = g == v
        roc_auc_score(y[m], s[m])
        average_precision_score(y[m], s[m])
        brier_score_loss(y[m], s[m])
    point = time.perf_counter() - t

    t = time.perf_counter()
    rng = np.random.default_rng(1)
    aucs, aps = [], []
    for _ in range(PY_REPLICATES):
        idx = rng.integers(0, len(y), len(y))
        aucs.append(roc_auc_score(y[idx], s[idx]))
        aps.append(average_precision_score(y[idx], s[idx]))
    np.percentile(aucs, [2.5, 97.5])
    np.percentile(aps, [2.5, 97.5])
    boot = (time.perf_counter() - t) * REPLICATES / PY_REPLICATES

    print(f"auroc {auc:.6f} auprc {ap:.6f}")
    print(f"TIME read {read:.3f}")
    print(f"TIME point_and_subgroups {point:.3f}")
    print(f"TIME bootstrap {boot:.3f}  (measured {PY_REPLICATES} replicates, scaled to {REPLICATES})")
    print(f"TIME total {read + point + boot:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
