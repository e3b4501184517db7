#!/usr/bin/env bash
# End-to-end benchmark of `vigil evaluate scores` (the release binary, reading the CSV) on
# 1,000,000 rows with 5 subgroups and 1,000 bootstrap replicates, against the Python
# equivalent (pandas + scikit-learn + a NumPy bootstrap). Target: >= 20x and < 10 s.
# Usage: bench/evaluate/run.sh   (the input is bench/stats's generator output, cached under ~/.cache/vigil)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=$(scripts/pyenv.sh stats crates/stats/testdata/requirements.txt)
data=${VIGIL_CACHE:-$HOME/.cache/vigil}/bench-stats
out=${VIGIL_CACHE:-$HOME/.cache/vigil}/bench-evaluate
mkdir -p "$data" "$out"
[ -f "$data/eval.csv" ] || "$py" bench/stats/bench.py write "$data"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target-evaluation}
cargo build --quiet --release -p vigil
vigil="$CARGO_TARGET_DIR/release/vigil"

echo "== Python (pandas, scikit-learn, NumPy)"
"$py" bench/evaluate/bench.py "$data/eval.csv" | tee "$out/python.txt"

echo "== vigil evaluate scores ($(nproc) cores)"
start=$(date +%s.%N)
"$vigil" --home "$out/home" evaluate scores "$data/eval.csv" --score-col score --label-col label \
  --group-col group --bootstrap 1000 --seed 1 --out "$out/report.json" --html "$out/report.html" | tee "$out/vigil.txt"
end=$(date +%s.%N)
rust=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')

python=$(awk '$1=="TIME" && $2=="total" {print $3}' "$out/python.txt")
echo "== Result"
awk -v p="$python" -v r="$rust" 'BEGIN {
  printf "python %8.3f s   vigil %7.3f s   %6.1fx faster\n", p, r, p / r
  printf "target: >= 20x (%s) and < 10 s (%s)\n", (p / r >= 20 ? "met" : "NOT met"), (r < 10 ? "met" : "NOT met")
}'
