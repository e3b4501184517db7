#!/usr/bin/env bash
# Serving throughput on loopback: Vigil (release build, every prediction durably recorded in
# SQLite before it is answered) against Seldon MLServer 1.7 (mlserver-sklearn) and a FastAPI +
# scikit-learn app, serving the same model, sent the same Open Inference Protocol request body
# by wrk at 1, 8 and 64 connections. Prints requests/s, p50 and p99 latency, the ratio to
# MLServer, and the number of prediction records in Vigil's store afterwards.
# Usage: bench/serve/run.sh [SECONDS_PER_RUN]   (default 10)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/serve"
secs=${1:-10}
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target-bench-serve}

if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
py=$("$root/scripts/pyenv.sh" serve-bench "$here/requirements.txt")
bindir=$(dirname "$py")
cargo build --quiet --release -p vigil --manifest-path "$root/Cargo.toml"
vigil="$CARGO_TARGET_DIR/release/vigil"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_http() { # URL
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# ---- the model: ONNX for Vigil, the same pipeline as joblib for the others ---------------
"$py" "$here/fit.py" "$work/model"

# ---- Vigil ------------------------------------------------------------------------------
ex="$root/examples/deterioration"
v() { "$vigil" --home "$work/vigil" --as bench "$@"; }
v init >/dev/null
snap=$(v --json dataset register "$ex/train.csv" --name train --manifest "$ex/dataset-manifest.toml" | "$py" -c 'import json,sys;print(json.load(sys.stdin)["id"])')
v model create deterioration-risk --intended-use "$ex/intended-use.toml" --risk-tier 3 \
  --clinical-owner "Dr Osei" --technical-owner "ML platform" >/dev/null
printf 'description = "benchmark: no gates"\n[tiers.1]\n[tiers.2]\n[tiers.3]\n[tiers.4]\n' > "$work/no-gates.toml"
v policy apply "$work/no-gates.toml" >/dev/null
rel=$(v --json release register --model deterioration-risk --artifact "$ex/model.onnx" \
  --contract "$ex/contract.toml" --training-data "$snap" --threshold 0.15 --changelog bench \
  | "$py" -c 'import json,sys;print(json.load(sys.stdin)["id"])')
for st in validated approved shadow production; do
  v promote "$rel" --to "$st" --reason benchmark >/dev/null
done
token=$(v --json user add bench --role operator | "$py" -c 'import json,sys;print(json.load(sys.stdin)["token"])')
"$vigil" --home "$work/vigil" serve --addr 127.0.0.1:18080 > "$work/vigil.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:18080/v2/health/ready

# ---- MLServer -----------------------------------------------------------------------------
mkdir -p "$work/mlserver/deterioration-risk"
cp "$work/model/model.joblib" "$work/mlserver/deterioration-risk/"
# parallel_workers 0: with Python 3.11 its worker processes die at start ("no current event
# loop"), so the model is served from the main process.
cat > "$work/mlserver/settings.json" <<JSON
{ "http_port": 18081, "grpc_port": 18091, "metrics_port": 18092, "debug": false,
  "parallel_workers": 0 }
JSON
cat > "$work/mlserver/deterioration-risk/model-settings.json" <<JSON
{ "name": "deterioration-risk", "implementation": "mlserver_sklearn.SKLearnModel",
  "parameters": { "uri": "./model.joblib" } }
JSON
(cd "$work/mlserver" && exec "$bindir/mlserver" start . > "$work/mlserver.log" 2>&1) &
pids+=($!)
wait_http http://127.0.0.1:18081/v2/health/ready

# ---- FastAPI ------------------------------------------------------------------------------
(cd "$here" && MODEL="$work/model/model.joblib" exec "$bindir/uvicorn" fastapi_app:app \
  --host 127.0.0.1 --port 18082 --log-level warning > "$work/fastapi.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 300); do curl -s -o /dev/null http://127.0.0.1:18082/docs && break; sleep 0.1; done

# ---- one request body for all three -----------------------------------------------------------
body='{"inputs":[{"name":"input","shape":[1,10],"datatype":"FP64","data":[[73,0,89,15,36.2,98,116,1.31,68,5.75]]}],"outputs":[{"name":"predict_proba"}]}'
for port in 18080 18081 18082; do
  out=$(curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "$body" "http://127.0.0.1:$port/v2/models/deterioration-risk/infer")
  p=$(echo "$out" | "$py" -c 'import json,sys;o=json.load(sys.stdin)["outputs"];print(next(x for x in o if x["name"]=="predict_proba")["data"][1])')
  echo "port $port answers P(deterioration) = $p"
done
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA

# ---- measure ------------------------------------------------------------------------------
to_ms() { # wrk latency such as 812.00us, 1.20ms, 2.01s -> milliseconds
  "$py" -c 'import sys;v=sys.argv[1];u=1e-3 if v.endswith("us") else (1e3 if v.endswith("s") and not v.endswith("ms") else 1.0);print("%.3f"%(float(v.rstrip("mus"))*u))' "$1"
}
declare -A rps p50 p99 non2xx total
for c in 1 8 64; do
  for name in vigil mlserver fastapi; do
    case $name in vigil) port=18080;; mlserver) port=18081;; fastapi) port=18082;; esac
    threads=$(( c < 2 ? 1 : 2 ))
    out=$(wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s "$work/post.lua" \
      "http://127.0.0.1:$port/v2/models/deterioration-risk/infer")
    rps[$name,$c]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50[$name,$c]=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
    p99[$name,$c]=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
    non2xx[$name,$c]=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    total[$name,$c]=$(echo "$out" | awk '/requests in/ {print $1}')
  done
done

echo
printf '%-5s %-9s %12s %10s %10s %10s %12s\n' conns server 'req/s' 'p50 ms' 'p99 ms' 'non-2xx' 'vs MLServer'
for c in 1 8 64; do
  for name in vigil mlserver fastapi; do
    ratio=$("$py" -c "print('%.1fx' % (${rps[$name,$c]} / ${rps[mlserver,$c]}))")
    printf '%-5s %-9s %12s %10s %10s %10s %12s\n' "$c" "$name" "${rps[$name,$c]}" "${p50[$name,$c]}" \
      "${p99[$name,$c]}" "${non2xx[$name,$c]:-0}" "$ratio"
  done
done
sent=0
for c in 1 8 64; do sent=$(( sent + ${total[vigil,$c]} - ${non2xx[vigil,$c]:-0} )); done
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
stored=$(sqlite3 "$work/vigil/vigil.db" "SELECT count(*) FROM predictions WHERE channel = 'oip' AND mode = 'active'")
echo
echo "Vigil answered $sent requests with 200 under wrk (plus 3 before); prediction records in its store: $stored"
