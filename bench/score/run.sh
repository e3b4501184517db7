#!/usr/bin/env bash
# Batch scoring of the example model over 1,000,000 rows (examples/deterioration/validation.csv
# repeated 125 times): `vigil score` (release binary, CSV in, CSV out, every row through the
# feature contract, output stored and audited) against pandas + ONNX Runtime on the same file.
# Usage: bench/score/run.sh   (the input and homes are cached under ~/.cache/vigil/bench-score)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=$(scripts/pyenv.sh score bench/score/requirements.txt)
work=${VIGIL_CACHE:-$HOME/.cache/vigil}/bench-score
mkdir -p "$work"
input="$work/cohort-1m.csv"
if [ ! -f "$input" ]; then
  { head -1 examples/deterioration/validation.csv
    for _ in $(seq 125); do tail -n +2 examples/deterioration/validation.csv; done; } > "$input.tmp"
  mv "$input.tmp" "$input"
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target-score}
cargo build --quiet --release -p vigil
vigil="$CARGO_TARGET_DIR/release/vigil"
ex=examples/deterioration
home="$work/home"
rm -rf "$home"
v() { "$vigil" --home "$home" --as bench "$@"; }
v init >/dev/null
train=$(v --json dataset register "$ex/train.csv" --name train | sed -n 's/^  "id": "\([0-9a-f]*\)".*/\1/p' | head -1)
v model create deterioration-risk --intended-use "$ex/intended-use.toml" --risk-tier 3 \
  --clinical-owner "bench" --technical-owner "bench" >/dev/null
release=$(v --json release register --model deterioration-risk --artifact "$ex/model.onnx" \
  --contract "$ex/contract.toml" --training-data "$train" --threshold 0.15 \
  --reference-predictions "$ex/reference-predictions.csv" | sed -n 's/^  "id": "\([0-9a-f]*\)".*/\1/p' | head -1)
rows=$(($(wc -l < "$input") - 1))
echo "input: $rows rows, $(du -h "$input" | cut -f1), $(nproc) cores"

echo "== Python (pandas read_csv + ONNX Runtime + to_csv)"
"$py" bench/score/score.py "$ex/model.onnx" "$input" "$work/python-out.csv" | tee "$work/python.txt"

echo "== vigil score"
start=$(date +%s.%N)
v score --model deterioration-risk --release "$release" --input "$input" --out "$work/vigil-out.csv"
end=$(date +%s.%N)
rust=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
python=$(awk '$1=="TIME" && $2=="total" {print $3}' "$work/python.txt")

echo "== Agreement"
"$py" - "$work/python-out.csv" "$work/vigil-out.csv" <<'PY'
import sys
import numpy as np
import pandas as pd
a = pd.read_csv(sys.argv[1], usecols=["score"])["score"].to_numpy()
b = pd.read_csv(sys.argv[2], usecols=["score"])["score"].to_numpy()
both = ~np.isnan(a) & ~np.isnan(b)
print(f"same rows scored: {bool((np.isnan(a) == np.isnan(b)).all())}; "
      f"max |difference| {np.max(np.abs(a[both] - b[both])):.2e} over {both.sum()} rows")
PY
echo "== Result"
awk -v p="$python" -v r="$rust" 'BEGIN {
  printf "python %8.3f s   vigil %7.3f s   %6.2fx\n", p, r, p / r
}'
