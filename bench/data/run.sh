#!/usr/bin/env bash
# Data checks on a 5,000,000-row x 40-column CSV: Vigil (release build) against the same checks
# in pandas, with wall time and peak memory from /usr/bin/time -v.
# Usage: bench/data/run.sh [ROWS]   (the generated file is kept under $VIGIL_CACHE and reused)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rows=${1:-5000000}
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
work="$cache/bench-data"
mkdir -p "$work"
py=$("$root/scripts/pyenv.sh" data "$root/bench/data/requirements.txt")
csv="$work/cohort-$rows.csv"
contract="$work/contract.toml"
if [ ! -s "$csv" ] || [ ! -s "$contract" ]; then
  echo "generating $rows rows..." >&2
  "$py" "$root/bench/data/generate.py" "$rows" "$csv.tmp" "$contract"
  mv "$csv.tmp" "$csv"
fi
echo "dataset: $csv ($(du -h "$csv" | cut -f1))"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target-data}
cargo build --quiet --release -p vigil-data --example bench_checks --manifest-path "$root/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/examples/bench_checks"

measure() {
  local name=$1; shift
  /usr/bin/time -v "$@" 2> "$work/$name.time"
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$work/$name.time" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$work/$name.time" | awk '{print $NF}')
  printf '%-6s wall %s  peak RSS %.0f MiB\n' "$name" "$wall" "$(echo "$rss / 1024" | bc -l)" | tee -a "$work/summary.txt"
}

: > "$work/summary.txt"
measure vigil "$bin" "$csv" "$contract" --label label --time prediction_time --site site --patient patient_id
measure pandas "$py" "$root/bench/data/pandas_checks.py" "$csv"
echo
cat "$work/summary.txt"
