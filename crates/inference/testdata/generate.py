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
        "input_dtype": str(x.dtype),
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
    write_reference(lr, gbm, xt)
    write_executor_gaps(x, y, yreg, xn, yn, xt, xnt)


N_SMALL = 60  # rows per fixture for the operator-coverage fixtures, to keep testdata small


def write_reference(lr, gbm, xt):
    """Reference-prediction CSVs for the equivalence check, with a contract naming the inputs.

    `*.reference.csv` holds the framework's own predict_proba (double precision); the perturbed
    copy moves one probability by 1e-3 so the check must fail and name that row.
    """
    names = [f"f{i}" for i in range(N_FEATURES)]
    lines = ["schema = \"vigil.contract/v1\"", "[model]", "input = \"input\"",
             "output = \"probabilities\"", ""]
    for n in names:
        lines += ["[[feature]]", f"name = \"{n}\"", "type = \"float\"", "unit = \"1\"", ""]
    with open(os.path.join(HERE, "reference.contract.toml"), "w") as f:
        f.write("\n".join(lines))
    rows = xt[:100]
    for tag, est in (("logreg", lr), ("gbm", gbm)):
        p = est.predict_proba(rows)[:, 1]
        for suffix, probs in (("", p), ("_perturbed", perturb(p))):
            with open(os.path.join(HERE, f"{tag}{suffix}.reference.csv"), "w") as f:
                f.write(",".join(names + ["probability"]) + "\n")
                for r, q in zip(rows, probs):
                    f.write(",".join(repr(float(v)) for v in r) + "," + repr(float(q)) + "\n")
    print("reference CSVs: written")


PERTURBED_ROW = 37  # 1-based data row moved by 1e-3 in the perturbed reference files


def perturb(p):
    q = p.copy()
    i = PERTURBED_ROW - 1
    q[i] = q[i] + 1e-3 if q[i] < 0.5 else q[i] - 1e-3
    return q


def set_attr(node, name, value):
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(helper.make_attribute(name, value))


def find_node(model, op_type):
    return next(n for n in model.graph.node if n.op_type == op_type)


def hand_model(nodes, inputs, outputs, initializers=(), opset=17, ml_opset=3):
    graph = helper.make_graph(list(nodes), "vigil_fixture", inputs, outputs, initializer=list(initializers))
    imports = [helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ml_opset)]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_executor_gaps(x, y, yreg, xn, yn, xt, xnt):
    import copy

    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs = xt[:N_SMALL]
    xns = xnt[:N_SMALL]
    # Three ordered risk classes from the same latent score.
    y3 = np.digitize(yreg, np.quantile(yreg, [1 / 3, 2 / 3])).astype(np.int64)
    names3 = np.array(["low", "medium", "high"])

    # Multi-class classifiers: multinomial (SOFTMAX) and one-vs-rest logistic regression,
    # boosting (one tree per class and round) and a forest (averaged leaf distributions).
    lrm = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y3)
    write("logreg_multi", sk_onnx(lrm, "lrm", zipmap=False), xs, lrm.predict_proba(xs))
    lro = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, multi_class="ovr")).fit(x, y3)
    write("logreg_ovr", sk_onnx(lro, "lro", zipmap=False), xs, lro.predict_proba(xs))
    gbm3 = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x, names3[y3])
    write("gbm_multi_str", sk_onnx(gbm3, "gbm3"), xs, gbm3.predict_proba(xs))
    rf3 = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(x, y3)
    write("rf_multi", sk_onnx(rf3, "rf3", zipmap=False), xs, rf3.predict_proba(xs))

    # SimpleImputer in a pipeline becomes an Imputer node in front of the scaler.
    imp = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000)).fit(xn, yn)
    write("imputer_logreg", sk_onnx(imp, "imp", zipmap=False), xns, imp.predict_proba(xns))

    # Binary LinearClassifier with a single coefficient row, as other exporters write it.
    w = np.linspace(-0.5, 0.5, N_FEATURES).astype(np.float32)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, N_FEATURES])
    for post in ("LOGISTIC", "NONE", "PROBIT"):
        node = helper.make_node(
            "LinearClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml",
            coefficients=(w * (0.05 if post == "PROBIT" else 1.0)).tolist(),
            intercepts=[0.25 if post == "PROBIT" else 0.1], classlabels_ints=[0, 1], post_transform=post,
        )
        model = hand_model(
            [node], [inp],
            [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
             helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None])],
        )
        write(f"linear_one_row_{post.lower()}", model, xs)

    # Tree post transforms and aggregates, by editing exported ensembles: a forest regressor
    # on the binary label has outputs in [0, 1], so PROBIT is defined on it.
    rfr = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(x, y.astype(np.float32))
    base = sk_onnx(rfr, "rfr")
    for agg in ("SUM", "AVERAGE", "MIN", "MAX"):
        m = copy.deepcopy(base)
        node = find_node(m, "TreeEnsembleRegressor")
        if agg != "SUM":
            # skl2onnx pre-divides forest weights by the tree count for SUM; undo it for AVERAGE.
            attrs = {a.name: a for a in node.attribute}
            weights = [v * 8 for v in attrs["target_weights"].floats]
            set_attr(node, "target_weights", weights)
            set_attr(node, "aggregate_function", agg)
        write(f"trees_{agg.lower()}", m, xs)
    m = copy.deepcopy(base)
    set_attr(find_node(m, "TreeEnsembleRegressor"), "post_transform", "PROBIT")
    write("trees_probit", m, xs)
    m = sk_onnx(gbm3, "gbm3", zipmap=False)
    set_attr(find_node(m, "TreeEnsembleClassifier"), "post_transform", "SOFTMAX_ZERO")
    write("trees_softmax_zero", m, xs)

    # Double input: skl2onnx writes double thresholds and weights as *_as_tensor (ml opset 3)
    # and ORT compares double inputs with double thresholds. Rows include values one double ULP
    # either side of thresholds, where a float comparison would decide differently.
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    # skl2onnx 1.17 writes float attributes for ml opset 3; the exact double thresholds are
    # taken from the fitted trees (node ids are scikit-learn's) and written as *_as_tensor.
    for tag, est in (("rfr", rfr), ("rf3", rf3)):
        opts = {id(est): {"zipmap": False}} if tag == "rf3" else None
        for dtype, name in ((DoubleTensorType, "double"), (FloatTensorType, "as_tensor")):
            m = to_onnx(est, initial_types=[("input", dtype([None, N_FEATURES]))],
                        options=opts, target_opset={"": 17, "ai.onnx.ml": 3})
            as_tensor_attributes(m, est, np.float64 if name == "double" else np.float32)
            for o in m.graph.output:  # ORT's opset-3 ensembles always output float scores
                if o.type.tensor_type.elem_type == TensorProto.DOUBLE:
                    o.type.tensor_type.elem_type = TensorProto.FLOAT
            onnx.checker.check_model(m)
            xd = near_thresholds(m, xs.astype(np.float64))
            write(f"{name}_{tag}", m, xd if name == "double" else xd.astype(np.float32))

    write_standard_ops(xs)


def as_tensor_attributes(model, est, dtype):
    """Moves thresholds and leaf weights into the *_as_tensor attributes of ml opset 3.

    ORT requires their element type to be the input's: double for double input, float else.
    """
    from onnx import numpy_helper

    node = next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))
    attrs = {a.name: a for a in node.attribute}
    trees = list(attrs["nodes_treeids"].ints)
    nodes = list(attrs["nodes_nodeids"].ints)
    floats = list(attrs["nodes_values"].floats)
    exact = []
    for t, n, f in zip(trees, nodes, floats):
        v = float(est.estimators_[t].tree_.threshold[n])
        exact.append(v if np.float32(v) == np.float32(f) else float(f))
    weights = "target_weights" if "target_weights" in attrs else "class_weights"
    w = np.array(attrs[weights].floats, dtype=dtype)
    kept = [a for a in node.attribute if a.name not in ("nodes_values", weights, "nodes_hitrates")]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(helper.make_attribute(
        "nodes_values_as_tensor", numpy_helper.from_array(np.array(exact, dtype=dtype))))
    node.attribute.append(helper.make_attribute(
        f"{weights}_as_tensor", numpy_helper.from_array(w)))
    for o in model.opset_import:
        if o.domain == "ai.onnx.ml":
            o.version = 3


def near_thresholds(model, xd):
    """Replaces some cells with values just above or below a split threshold of that feature."""
    node = next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))
    attrs = {a.name: a for a in node.attribute}
    if "nodes_values_as_tensor" in attrs:
        values = onnx.numpy_helper.to_array(attrs["nodes_values_as_tensor"].t)
    else:
        values = np.array(attrs["nodes_values"].floats, dtype=np.float64)
    feats = list(attrs["nodes_featureids"].ints)
    modes = list(attrs["nodes_modes"].strings)
    splits = [(f, v) for f, v, m in zip(feats, values, modes) if m != b"LEAF"]
    out = xd.copy()
    rng = np.random.default_rng(SEED)
    for i in range(out.shape[0]):
        for _ in range(4):
            f, v = splits[rng.integers(len(splits))]
            out[i, f] = np.nextafter(v, np.inf if rng.random() < 0.5 else -np.inf)
    return out


def write_standard_ops(xs):
    """Default-domain operators in hand-built graphs: Slice, Gather, Gemm, Flatten, Softmax,
    Normalizer (MAX, L1, L2), at a current opset and at opset 9 (Slice by attributes,
    Softmax over the flattened trailing axes)."""
    from onnx import numpy_helper

    rng = np.random.default_rng(SEED + 7)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, N_FEATURES])
    W = numpy_helper.from_array(rng.normal(size=(4, 10)).astype(np.float32), "W")
    B = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "B")
    idx = numpy_helper.from_array(np.array([1, 3, 5, 19], dtype=np.int64), "idx")
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, None])
            for n in ("softmax", "gathered", "flat", "norm_max", "norm_l1", "norm_l2")]
    norm = lambda kind: helper.make_node("Normalizer", ["input"], [f"norm_{kind.lower()}"],
                                         domain="ai.onnx.ml", norm=kind)
    common = [
        helper.make_node("Gemm", ["sliced", "W", "B"], ["logits"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Softmax", ["logits"], ["softmax"], axis=1),
        helper.make_node("Gather", ["input", "idx"], ["gathered"], axis=1),
        helper.make_node("Reshape", ["gathered", "shape3"], ["cube"]),
        helper.make_node("Flatten", ["cube"], ["flat"], axis=1),
        norm("MAX"), norm("L1"), norm("L2"),
    ]
    shape3 = numpy_helper.from_array(np.array([-1, 2, 2], dtype=np.int64), "shape3")
    starts = numpy_helper.from_array(np.array([2], dtype=np.int64), "starts")
    ends = numpy_helper.from_array(np.array([12], dtype=np.int64), "ends")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    m = hand_model([helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["sliced"])] + common,
                   [inp], outs, [W, B, idx, shape3, starts, ends, axes], opset=17, ml_opset=3)
    write("standard_ops", m, xs)
    m = hand_model([helper.make_node("Slice", ["input"], ["sliced"], starts=[2], ends=[12], axes=[1])] + common,
                   [inp], outs, [W, B, idx, shape3], opset=9, ml_opset=1)
    write("standard_ops_opset9", m, xs)


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
