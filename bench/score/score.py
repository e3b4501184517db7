"""The Python way to batch-score a file with the example model: pandas reads the CSV, the
contract's encoding is applied by hand (sex as 0/1, lactate filled with 1.0), ONNX Runtime
scores the rows, pandas writes every input column plus score, decision and fallback_reason.

Usage: score.py MODEL.onnx INPUT.csv OUTPUT.csv   (prints "TIME total <seconds>")
"""

import sys
import time

import numpy as np
import onnxruntime as ort
import pandas as pd

FEATURES = ["age", "sex", "heart_rate", "resp_rate", "temperature", "spo2", "sbp",
            "lactate", "creatinine", "wbc"]
RANGES = {"age": (18, 120), "heart_rate": (20, 250), "resp_rate": (4, 70),
          "temperature": (30, 45), "spo2": (50, 100), "sbp": (40, 300),
          "creatinine": (10, 2500), "wbc": (0.1, 200)}


def main() -> None:
    model, src, dst = sys.argv[1:4]
    start = time.perf_counter()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    df = pd.read_csv(src)
    x = pd.DataFrame({
        "age": df["age"], "sex": df["sex"].map({"female": 0.0, "male": 1.0}),
        **{f: df[f] for f in FEATURES if f not in ("age", "sex")},
    })[FEATURES]
    lactate_ok = x["lactate"].between(0.1, 30)
    x["lactate"] = x["lactate"].where(lactate_ok, 1.0)
    ok = x["sex"].notna()
    for f, (lo, hi) in RANGES.items():
        ok &= x[f].between(lo, hi)
    score = np.full(len(df), np.nan)
    rows = x[ok].to_numpy(dtype=np.float32)
    if len(rows):
        p = sess.run(["probabilities"], {"float_input": rows})[0][:, 1]
        score[ok.to_numpy()] = p
    df["score"] = score
    df["decision"] = np.where(np.isnan(score), "",
                              np.where(score >= 0.15, "at_or_above:0.15", "below:0.15"))
    df["fallback_reason"] = np.where(ok, "", "missing_required")
    df.to_csv(dst, index=False)
    print(f"rows {len(df)} scored {int(ok.sum())}")
    print(f"TIME total {time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main()
