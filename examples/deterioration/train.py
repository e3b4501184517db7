"""Trains the ward deterioration-risk model and exports it to ONNX.

Reads train.csv and validation.csv (written by generate.py) and writes, beside this script:

- model.onnx                  the fitted pipeline (StandardScaler, LogisticRegression)
- reference-predictions.csv   inputs and scikit-learn probabilities for 500 validation rows
- hyperparameters.json        what was fitted, and how
- requirements.lock           the exact Python environment (pip freeze)

It also checks that ONNX Runtime reproduces the scikit-learn probabilities on the whole
validation set and prints validation discrimination and calibration.

    python train.py
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent

# The model inputs, in the order of the input tensor (and of contract.toml).
FEATURES = [
    "age",
    "sex",
    "heart_rate",
    "resp_rate",
    "temperature",
    "spo2",
    "sbp",
    "lactate",
    "creatinine",
    "wbc",
]
SEX_LEVELS = ["female", "male"]  # encoded as the level's index
LACTATE_FILL = 1.0  # the contract's approved fill value (mmol/L)
N_REFERENCE = 500
ONNX_TOLERANCE = 1e-5
INPUT_NAME = "float_input"
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
HYPERPARAMETERS = {"C": 1.0, "max_iter": 1000}


def model_inputs(df: pd.DataFrame) -> pd.DataFrame:
    x = pd.DataFrame(index=df.index)
    for name in FEATURES:
        if name == "sex":
            codes = df["sex"].map({level: float(i) for i, level in enumerate(SEX_LEVELS)})
            if codes.isna().any():
                raise ValueError("sex has values outside " + ", ".join(SEX_LEVELS))
            x[name] = codes
        elif name == "lactate":
            x[name] = df["lactate"].astype(float).fillna(LACTATE_FILL)
        else:
            x[name] = df[name].astype(float)
    if x.isna().any().any():
        raise ValueError("a required model input is missing")
    return x


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10):
    order = np.argsort(p, kind="stable")
    rows = []
    for chunk in np.array_split(order, bins):
        rows.append((p[chunk].mean(), y[chunk].mean(), len(chunk)))
    return rows


def main():
    train = pd.read_csv(HERE / "train.csv", dtype={"patient_id": str, "encounter_id": str})
    valid = pd.read_csv(HERE / "validation.csv", dtype={"patient_id": str, "encounter_id": str})
    overlap = set(train["patient_id"]) & set(valid["patient_id"])
    if overlap:
        raise SystemExit(f"{len(overlap)} patients appear in both train and validation")

    x_train, y_train = model_inputs(train), train["outcome"].to_numpy()
    x_valid, y_valid = model_inputs(valid), valid["outcome"].to_numpy()

    clf = LogisticRegression(**HYPERPARAMETERS)
    pipe = Pipeline([("scaler", StandardScaler()), ("classifier", clf)])
    pipe.fit(x_train.to_numpy(), y_train)

    p_train = pipe.predict_proba(x_train.to_numpy())[:, 1]
    p_valid = pipe.predict_proba(x_valid.to_numpy())[:, 1]

    # ONNX export.
    onx = convert_sklearn(
        pipe,
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(FEATURES)]))],
        options={id(clf): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.doc_string = "Ward deterioration risk: probability of ICU transfer or death within 24 h."
    onx.graph.name = "deterioration_risk"  # the converter would pick a random name
    onnx.checker.check_model(onx)
    model_path = HERE / "model.onnx"
    model_path.write_bytes(onx.SerializeToString())

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    if inputs != [INPUT_NAME] or "probabilities" not in outputs:
        raise SystemExit(f"unexpected ONNX signature: inputs {inputs}, outputs {outputs}")
    onnx_p = sess.run(["probabilities"], {INPUT_NAME: x_valid.to_numpy().astype(np.float32)})[0][:, 1]
    max_diff = float(np.max(np.abs(onnx_p.astype(np.float64) - p_valid)))
    if max_diff > ONNX_TOLERANCE:
        raise SystemExit(f"ONNX and scikit-learn disagree by {max_diff:.3g} (> {ONNX_TOLERANCE})")

    # Reference predictions for the first validation rows, at full precision.
    ref = x_valid.iloc[:N_REFERENCE]
    with (HERE / "reference-predictions.csv").open("w", newline="") as f:
        f.write(",".join(FEATURES + ["probability"]) + "\n")
        for values, p in zip(ref.to_numpy(), p_valid[:N_REFERENCE]):
            f.write(",".join([repr(float(v)) for v in values] + [repr(float(p))]) + "\n")

    scaler = pipe.named_steps["scaler"]
    hyper = {
        "model": "sklearn.pipeline.Pipeline(StandardScaler, LogisticRegression)",
        "features": FEATURES,
        "sex_encoding": {level: i for i, level in enumerate(SEX_LEVELS)},
        "lactate_fill_value": LACTATE_FILL,
        "logistic_regression": {
            "C": clf.C,
            "penalty": clf.penalty,
            "solver": clf.solver,
            "max_iter": clf.max_iter,
            "tol": clf.tol,
            "class_weight": clf.class_weight,
            "fit_intercept": clf.fit_intercept,
        },
        "standard_scaler": {"with_mean": scaler.with_mean, "with_std": scaler.with_std},
        "onnx": {
            "converter": "skl2onnx",
            "input": INPUT_NAME,
            "output": "probabilities",
            "zipmap": False,
            "target_opset": TARGET_OPSET,
        },
        "training_data": "train.csv",
        "training_rows": int(len(train)),
        "scikit_learn_version": sklearn.__version__,
    }
    (HERE / "hyperparameters.json").write_text(json.dumps(hyper, indent=2) + "\n")

    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (HERE / "requirements.lock").write_text(freeze)

    print(f"train:      {len(train)} rows, prevalence {y_train.mean():.3%}, AUROC {roc_auc_score(y_train, p_train):.4f}")
    print(
        f"validation: {len(valid)} rows, prevalence {y_valid.mean():.3%}, "
        f"AUROC {roc_auc_score(y_valid, p_valid):.4f}, Brier {brier_score_loss(y_valid, p_valid):.4f}, "
        f"mean predicted {p_valid.mean():.3%}"
    )
    print(f"ONNX: input {inputs}, outputs {outputs}, max |onnx - sklearn| = {max_diff:.2e}")
    print("validation calibration by decile (mean predicted, observed, n):")
    for mp, obs, n in calibration_table(y_valid, p_valid):
        print(f"  {mp:.3f}  {obs:.3f}  {n}")
    coefs = dict(zip(FEATURES, clf.coef_[0]))
    print("standardised coefficients: " + ", ".join(f"{k} {v:+.2f}" for k, v in coefs.items()))


if __name__ == "__main__":
    main()
