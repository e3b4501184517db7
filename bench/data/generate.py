"""Writes the benchmark dataset: N rows x 40 columns (patient, site, prediction time, label and
36 numeric features with ~5% missing values, a few out-of-range values and duplicated rows),
plus the feature contract the checks run against."""
import sys

import numpy as np
import pandas as pd

rows = int(sys.argv[1])
out_csv, out_contract = sys.argv[2], sys.argv[3]
rng = np.random.default_rng(7)
n_features = 36

cols = {}
cols["patient_id"] = np.char.add("P", (rng.integers(0, rows // 3, rows)).astype(str))
cols["site"] = rng.choice(np.array(["north", "south", "east", "west", "central"]), rows)
start = np.datetime64("2024-01-01T00:00:00")
offsets = rng.integers(0, 730 * 86400, rows).astype("timedelta64[s]")
cols["prediction_time"] = np.char.add(np.datetime_as_string(start + offsets, unit="s"), "Z")
cols["label"] = (rng.random(rows) < 0.12).astype(np.int8)
for k in range(n_features):
    v = rng.normal(50 + k, 10, rows)
    v[rng.random(rows) < 0.05] = np.nan
    v[rng.random(rows) < 0.001] = 1000.0
    cols[f"f{k:02d}"] = np.round(v, 2)
df = pd.DataFrame(cols)
# About 0.1% exact duplicate rows.
dup = rng.integers(0, rows, rows // 1000)
df = pd.concat([df.iloc[: rows - len(dup)], df.iloc[dup]], ignore_index=True)
df.to_csv(out_csv, index=False, float_format="%.2f")

with open(out_contract, "w") as f:
    f.write('schema = "vigil.contract/v1"\n[model]\ninput = "x"\noutput = "p"\n\n')
    for k in range(n_features):
        f.write(
            f'[[feature]]\nname = "f{k:02d}"\ntype = "float"\nunit = "1"\nrange = [0, 200]\n'
            'role = "optional"\non_missing = "pass_missing"\n\n'
        )
