#!/usr/bin/env bash
# Side-by-side benchmark of vigil-stats against scikit-learn / NumPy / SciPy:
# AUROC + AUPRC with 1,000 bootstrap replicates and per-subgroup metrics on 1,000,000 rows,
# and drift of 30 features (1,000,000 current vs 200,000 reference rows).
# Usage: bench/stats/run.sh   (from anywhere; inputs are cached under ~/.cache/vigil)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=$(scripts/pyenv.sh stats crates/stats/testdata/requirements.txt)
out=${VIGIL_CACHE:-$HOME/.cache/vigil}/bench-stats
mkdir -p "$out"
[ -f "$out/current.f64" ] || "$py" bench/stats/bench.py write "$out"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target-stats}
cargo build --quiet --release -p vigil-stats --example bench_eval
echo "== Python (scikit-learn, NumPy, SciPy)"
"$py" bench/stats/bench.py run "$out" | tee "$out/python.txt"
echo "== Rust (vigil-stats, $(nproc) cores)"
"$CARGO_TARGET_DIR/release/examples/bench_eval" "$out/eval.csv" "$out/reference.f64" "$out/current.f64" 30 | tee "$out/rust.txt"
echo "== Ratio (Python time / Rust time)"
for k in point bootstrap subgroups eval_total drift; do
  p=$(awk -v k="$k" '$1=="TIME" && $2==k {print $3}' "$out/python.txt")
  r=$(awk -v k="$k" '$1=="TIME" && $2==k {print $3}' "$out/rust.txt")
  awk -v k="$k" -v p="$p" -v r="$r" 'BEGIN { printf "%-10s python %8.3f s  rust %7.3f s  %6.1fx\n", k, p, r, (r > 0 ? p / r : 0) }'
done
