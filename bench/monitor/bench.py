"""Drift for 1,000,000 current rows x 30 features against 200,000 reference rows with
Evidently 0.7.23 (PSI, K-S, Jensen-Shannon and normed Wasserstein, one report each), after
writing the same data as column-major float64 files for Vigil.

Usage: bench.py write DIR [REF_ROWS CUR_ROWS FEATURES] | evidently DIR FEATURES
"""
import json
import sys
import time

import numpy as np
import pandas as pd


def data(ref_rows, cur_rows, k):
    rng = np.random.default_rng(20261201)
    ref = np.empty((k, ref_rows))
    cur = np.empty((k, cur_rows))
    for j in range(k):
        kind = j % 3
        if kind == 0:
            ref[j] = rng.normal(0, 1, ref_rows)
            cur[j] = rng.normal(0.05 * (j % 5), 1.0 + 0.02 * (j % 4), cur_rows)
        elif kind == 1:
            ref[j] = rng.lognormal(0, 0.5, ref_rows)
            cur[j] = rng.lognormal(0.03 * (j % 4), 0.5, cur_rows)
        else:
            ref[j] = np.round(rng.gamma(2.0, 10.0, ref_rows), 1)
            cur[j] = np.round(rng.gamma(2.0 + 0.1 * (j % 3), 10.0, cur_rows), 1)
    return ref, cur


def write(d, ref_rows=200_000, cur_rows=1_000_000, k=30):
    ref, cur = data(int(ref_rows), int(cur_rows), int(k))
    ref.astype("<f8").tofile(f"{d}/ref.f64")
    cur.astype("<f8").tofile(f"{d}/cur.f64")


def evidently(d, k):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    k = int(k)
    ref = np.fromfile(f"{d}/ref.f64", dtype="<f8").reshape(k, -1)
    cur = np.fromfile(f"{d}/cur.f64", dtype="<f8").reshape(k, -1)
    cols = [f"f{i}" for i in range(k)]
    rdf = pd.DataFrame(ref.T, columns=cols)
    cdf = pd.DataFrame(cur.T, columns=cols)
    out = {}
    total = 0.0
    for method, key in [("psi", "psi"), ("ks", "ks_pvalue"), ("jensenshannon", "js"), ("wasserstein", "wasserstein_normed")]:
        t = time.perf_counter()
        snap = Report([DataDriftPreset(method=method)]).run(current_data=cdf, reference_data=rdf)
        res = snap.dict()
        total += time.perf_counter() - t
        for m in res["metrics"]:
            cfg = m.get("config", {})
            if not cfg.get("type", "").endswith(":ValueDrift"):
                continue
            out.setdefault(cfg["column"], {})[key] = float(m["value"])
    if len(out) != k:
        sys.exit(f"evidently reported drift for {len(out)} of {k} columns")
    print(json.dumps({"seconds": total, "features": out}))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(*sys.argv[2:])
    else:
        evidently(*sys.argv[2:])
