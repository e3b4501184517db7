#!/usr/bin/env bash
# Input drift for 1,000,000 predictions x 30 features against a 200,000-row reference:
# Vigil (the monitor's drift function, release build) side by side with Evidently 0.7.23
# (pandas 2.x) on the same data with the same statistics — PSI (Sturges bins over both
# samples, empty shares as Evidently fills them), the two-sample K-S p-value, Jensen-Shannon distance and the
# Wasserstein distance normed by the reference's standard deviation. Prints both times, the
# ratio, and the largest difference between the two tools' numbers.
# Usage: bench/monitor/run.sh [REF_ROWS CUR_ROWS FEATURES]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ref_rows=${1:-200000}
cur_rows=${2:-1000000}
k=${3:-30}
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
work="$cache/bench-monitor-$ref_rows-$cur_rows-$k"
mkdir -p "$work"
py=$("$root/scripts/pyenv.sh" monitor "$root/bench/monitor/requirements.txt")
if [ ! -s "$work/cur.f64" ]; then
  echo "generating the data..." >&2
  "$py" "$root/bench/monitor/bench.py" write "$work" "$ref_rows" "$cur_rows" "$k"
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target-monitor}
cargo build --quiet --release -p vigil-stats --example bench_monitor_drift --manifest-path "$root/Cargo.toml"
"$CARGO_TARGET_DIR/release/examples/bench_monitor_drift" "$work/ref.f64" "$work/cur.f64" "$k" > "$work/vigil.json"
"$py" "$root/bench/monitor/bench.py" evidently "$work" "$k" > "$work/evidently.json"
"$py" - "$work" <<'PY'
import json, sys
d = sys.argv[1]
v = json.load(open(f"{d}/vigil.json"))
e = json.load(open(f"{d}/evidently.json"))
print(f"vigil     drift {v['drift_seconds']:.2f} s (reading the files: {v['load_seconds']:.2f} s)")
print(f"evidently drift {e['seconds']:.2f} s (4 reports: PSI, K-S, Jensen-Shannon, Wasserstein)")
print(f"ratio     {e['seconds'] / v['drift_seconds']:.1f}x")
worst = {}
for f, ev in e["features"].items():
    for key, x in ev.items():
        y = v["features"][f][key]
        diff = abs(x - y) if y is not None else float("inf")
        if diff > worst.get(key, (0, None))[0] or key not in worst:
            worst[key] = (diff, f)
for key, (diff, f) in sorted(worst.items()):
    print(f"largest |vigil - evidently| for {key}: {diff:.3g} ({f})")
for f in ["f0", "f1", "f2"]:
    print(f, "vigil", {k: round(x, 6) for k, x in v["features"][f].items() if x is not None and k != "ks_statistic"},
          "evidently", {k: round(x, 6) for k, x in e["features"][f].items()})
PY
