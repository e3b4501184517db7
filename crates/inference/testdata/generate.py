"""Builds the ONNX conformance fixtures for vigil-inference.

Trains small models on a seeded synthetic tabular data set, exports them to ONNX and records
ONNX Runtime's outputs (single-threaded) on 200 rows next to each model, so the Rust tests can
check the native executor row by row. Run with the pinned environment:

    python=$(scripts/pyenv.sh inference crates/inference/testdata/requirements.txt)
    $python crates/inference/testdata/generate.py
"""

import json
import math
import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
N_FEATURES = 20
N_ROWS = 200
SEED = 20240611


def dataset(n, nan_fraction=0.0, seed=SEED):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    x[:, 3] = rng.integers(0, 5, size=n)  # a small-integer feature, like a count
    x[:, 7] = np.exp(x[:, 7])  # a skewed feature, like a lab value
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 4] + 0.3 * x[:, 3] - 0.4 * np.log(x[:, 7])
    y = (logit + rng.normal(scale=0.8, size=n) > 0).astype(np.int64)
    yreg = logit + rng.normal(scale=0.3, size=n)
    if nan_fraction > 0:
        mask = rng.random(size=x.shape) < nan_fraction
        mask[:, 0] = False
        x[mask] = np.nan
    return x.astype(np.float32), y, yreg.astype(np.float32)


def clean(v):
    """JSON has no NaN: missing values are written as null."""
    if isinstance(v, (list, tuple)):
        return [clean(e) for e in v]
    if isinstance(v, dict):
        return {str(k): clean(e) for k, e in v.items()}
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if math.isnan(f) else f
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return clean(v.tolist())
    return v


def ort_session(model_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def write(name, model, x, framework_proba=None, extra=None):
    data = model.SerializeToString()
    with open(os.path.join(HERE, f"{name}.onnx"), "wb") as f:
        f.write(data)
    sess = ort_session(data)
    input_name = sess.get_inputs()[0].name
    outs = sess.run(None, {input_name: x})
    outputs = {}
    for meta, value in zip(sess.get_outputs(), outs):
        if isinstance(value, list):  # ZipMap: a sequence of maps
            outputs[meta.name] = {"kind": "maps", "value": clean(value)}
        else:
            outputs[meta.name] = {
                "kind": "tensor",
                "dtype": str(value.dtype),
                "shape": list(value.shape),
                "value": clean(value.reshape(-1).tolist()),
            }
    doc = {
        "name": name,
        "input": input_name,
        "n_features": int(x.shape[1]),
        "rows": clean(x),
        "outputs": outputs,
        "onnxruntime": ort.__version__,
    }
    if framework_proba is not None:
        doc["framework_proba"] = clean(framework_proba)
    if extra:
        doc.update(clean(extra))
    with open(os.path.join(HERE, f"{name}.expected.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{name}: {len(data)} bytes, ops {ops}")


def sk_onnx(est, name, zipmap=True):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = None if zipmap else {id(est): {"zipmap": False}}
    return to_onnx(
        est,
        initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
        options=options,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )


def main():
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, yreg = dataset(3000)
    xt, _, _ = dataset(N_ROWS, seed=SEED + 1)
    xn, yn, _ = dataset(3000, nan_fraction=0.1)
    xnt, _, _ = dataset(N_ROWS, nan_fraction=0.1, seed=SEED + 1)

    lr = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(x, y)
    write("logreg", sk_onnx(lr, "logreg"), xt, lr.predict_proba(xt))
    write("logreg_nozipmap", sk_onnx(lr, "logreg", zipmap=False), xt, lr.predict_proba(xt))

    gbm = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(x, y)
    write("gbm", sk_onnx(gbm, "gbm"), xt, gbm.predict_proba(xt))
    write("gbm_nozipmap", sk_onnx(gbm, "gbm", zipmap=False), xt, gbm.predict_proba(xt))

    rf = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(x, y)
    write("rf_nozipmap", sk_onnx(rf, "rf", zipmap=False), xt, rf.predict_proba(xt))

    hgb = HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15, random_state=0).fit(xn, yn)
    write("hgb_nan_nozipmap", sk_onnx(hgb, "hgb", zipmap=False), xnt, hgb.predict_proba(xnt))

    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(
        StandardScaler().fit_transform(x), y
    )
    mlp_pipe = make_pipeline(StandardScaler().fit(x), mlp)
    write("mlp_nozipmap", sk_onnx(mlp_pipe, "mlp", zipmap=False), xt, mlp_pipe.predict_proba(xt))

    gbr = GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=0).fit(x, yreg)
    write("gbr", sk_onnx(gbr, "gbr"), xt, gbr.predict(xt))
    linreg = LinearRegression().fit(x, yreg)
    write("linreg", sk_onnx(linreg, "linreg"), xt, linreg.predict(xt))

    # XGBoost and LightGBM go through onnxmltools; both learn a direction for missing values.
    import lightgbm
    import xgboost
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat

    xgb = xgboost.XGBClassifier(n_estimators=100, max_depth=4, learning_rate=0.1, random_state=0)
    xgb.fit(xn, yn)
    xgb_onnx = convert_xgboost(
        xgb, initial_types=[("input", MlFloat([None, N_FEATURES]))], target_opset=15
    )
    contribs = xgb.get_booster().predict(xgboost.DMatrix(xnt), pred_contribs=True)
    margin = xgb.get_booster().predict(xgboost.DMatrix(xnt), output_margin=True)
    add_xgb_cover(xgb, xgb_onnx)
    write(
        "xgb_nan",
        xgb_onnx,
        xnt,
        xgb.predict_proba(xnt),
        extra={"treeshap": {"contribs": contribs[:, :N_FEATURES], "bias": contribs[:, N_FEATURES], "margin": margin}},
    )

    lgbm = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=15, random_state=0, verbose=-1)
    lgbm.fit(xn, yn)
    lgbm_onnx = convert_lightgbm(
        lgbm, initial_types=[("input", MlFloat([None, N_FEATURES]))], target_opset=15, zipmap=False
    )
    write("lgbm_nan_nozipmap", lgbm_onnx, xnt, lgbm.predict_proba(xnt))

    write_unsupported(xt)


def add_xgb_cover(xgb, model):
    """Copies XGBoost's per-node cover into nodes_hitrates so TreeSHAP uses the training cover.

    The converter renumbers nodes, so ONNX and XGBoost trees are walked side by side from the
    root, matching ONNX's true branch with XGBoost's `yes` child.
    """
    dumps = [json.loads(d) for d in xgb.get_booster().get_dump(dump_format="json", with_stats=True)]
    for node in model.graph.node:
        if node.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            continue
        attrs = {a.name: a for a in node.attribute}
        tree_ids = list(attrs["nodes_treeids"].ints)
        node_ids = list(attrs["nodes_nodeids"].ints)
        true_ids = list(attrs["nodes_truenodeids"].ints)
        false_ids = list(attrs["nodes_falsenodeids"].ints)
        modes = list(attrs["nodes_modes"].strings)
        index = {(t, n): i for i, (t, n) in enumerate(zip(tree_ids, node_ids))}
        rates = [0.0] * len(node_ids)

        def walk(tree, onnx_id, xnode):
            i = index[(tree, onnx_id)]
            rates[i] = float(xnode["cover"])
            if modes[i] == b"LEAF":
                return
            kids = {int(c["nodeid"]): c for c in xnode["children"]}
            walk(tree, true_ids[i], kids[int(xnode["yes"])])
            walk(tree, false_ids[i], kids[int(xnode["no"])])

        for tree, dump in enumerate(dumps):
            root = next(n for (t, n) in index if t == tree and all(
                not (tree_ids[j] == t and modes[j] != b"LEAF" and n in (true_ids[j], false_ids[j]))
                for j in range(len(node_ids))
            ))
            walk(tree, root, dump)
        kept = [a for a in node.attribute if a.name != "nodes_hitrates"]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.append(helper.make_attribute("nodes_hitrates", rates))


def write_unsupported(xt):
    """A graph with a TopK node: the executor must refuse it at load time, naming the operator."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, N_FEATURES])
    k = helper.make_tensor("k", TensorProto.INT64, [1], [3])
    vals = helper.make_tensor_value_info("values", TensorProto.FLOAT, [None, 3])
    idx = helper.make_tensor_value_info("indices", TensorProto.INT64, [None, 3])
    node = helper.make_node("TopK", ["input", "k"], ["values", "indices"], name="top_three")
    graph = helper.make_graph([node], "unsupported", [inp], [vals, idx], initializer=[k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    with open(os.path.join(HERE, "unsupported_topk.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    print("unsupported_topk: written")


if __name__ == "__main__":
    main()
