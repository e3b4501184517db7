#!/usr/bin/env bash
# Side-by-side benchmark of vigil-inference against ONNX Runtime (Python, one thread) on the
# conformance fixtures: single-row latency (median) and 10,000-row batch time.
# Usage: bench/inference/run.sh   (from anywhere inside the repository)
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target-inference}
python=$(scripts/pyenv.sh inference crates/inference/testdata/requirements.txt)
cargo build --release -q -p vigil-inference --example bench_exec
bench="$CARGO_TARGET_DIR/release/examples/bench_exec"
data=crates/inference/testdata
printf '%-22s %12s %12s %8s %12s %12s %8s\n' model ort_1row_us vigil_1row_us speedup ort_10k_ms vigil_10k_ms speedup
for name in gbm_nozipmap gbm xgb_nan logreg_nozipmap logreg; do
  ort=$("$python" bench/inference/ort_bench.py "$data/$name.onnx" 20)
  vig=$("$bench" "$data/$name.onnx" 20)
  get() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
  o1=$(get single_row_us "$ort"); v1=$(get single_row_us "$vig")
  ob=$(get batch10k_ms "$ort"); vb=$(get batch10k_ms "$vig")
  printf '%-22s %12s %12s %7.1fx %12s %12s %7.1fx\n' "$name" "$o1" "$v1" \
    "$(echo "$o1 / $v1" | bc -l)" "$ob" "$vb" "$(echo "$ob / $vb" | bc -l)"
done
