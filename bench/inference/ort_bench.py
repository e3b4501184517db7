"""ONNX Runtime side of the inference benchmark: single-thread session, same ONNX files."""

import sys
import time

import numpy as np
import onnxruntime as ort


def main(path, n_features=20):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    rng = np.random.default_rng(0)
    single = rng.normal(size=(1000, n_features)).astype(np.float32)
    rows = [single[i : i + 1] for i in range(1000)]
    for r in rows:
        sess.run(None, {name: r})
    samples = []
    for rep in range(200):
        start = time.perf_counter()
        for r in rows[rep % 10 : rep % 10 + 100]:
            sess.run(None, {name: r})
        samples.append((time.perf_counter() - start) / 100)
    single_us = float(np.median(samples)) * 1e6
    batch = rng.normal(size=(10_000, n_features)).astype(np.float32)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        sess.run(None, {name: batch})
        times.append(time.perf_counter() - start)
    batch_ms = float(np.median(times)) * 1e3
    print(f"single_row_us={single_us:.3f} batch10k_ms={batch_ms:.3f} rows_per_s={10_000 / (batch_ms / 1e3):.0f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20)
