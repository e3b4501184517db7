"""Fits the example's scikit-learn pipeline (as examples/deterioration/train.py does) and saves
it with joblib for MLServer and the FastAPI app, after checking that it reproduces the
reference probabilities that Vigil's ONNX export of the same model is checked against.

Usage: fit.py OUT_DIR
"""
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deterioration"
FEATURES = ["age", "sex", "heart_rate", "resp_rate", "temperature", "spo2", "sbp", "lactate",
            "creatinine", "wbc"]


def inputs(df: pd.DataFrame) -> np.ndarray:
    x = df[FEATURES].copy()
    x["sex"] = x["sex"].map({"female": 0.0, "male": 1.0})
    x["lactate"] = x["lactate"].astype(float).fillna(1.0)
    return x.astype(float).to_numpy()


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(EXAMPLE / "train.csv")
    hyper = json.loads((EXAMPLE / "hyperparameters.json").read_text())
    lr = hyper["logistic_regression"]
    model = Pipeline([("scaler", StandardScaler()),
                      ("clf", LogisticRegression(C=lr["C"], max_iter=lr["max_iter"], tol=lr["tol"]))])
    model.fit(inputs(train), train["outcome"].to_numpy())
    ref = pd.read_csv(EXAMPLE / "reference-predictions.csv")
    p = model.predict_proba(ref[FEATURES].to_numpy(dtype=float))[:, 1]
    worst = float(np.max(np.abs(p - ref["probability"].to_numpy())))
    if worst > 1e-6:
        sys.exit(f"the refitted model differs from the reference predictions by {worst}")
    joblib.dump(model, out / "model.joblib")
    print(f"model.joblib written; max difference to the reference predictions {worst:.2e}")


if __name__ == "__main__":
    main()
