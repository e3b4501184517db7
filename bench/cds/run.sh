#!/usr/bin/env bash
# CDS Hooks service calls on loopback: patient-view with a 30-Observation prefetch, posted at a
# fixed rate by a load generator (open loop; latency from each call's scheduled time), against
# `vigil serve` on the embedded SQLite store. Every answered call must be a durable prediction
# record: the script counts them afterwards.
# Client tokens are pre-minted, one per call with its own jti, signed RS384 (RSA-2048) by
# default or ES384 (P-384) with VIGIL_BENCH_ALG=es384; the load generator also prints what
# verifying one token costs, and how slow the disk's syncs were during the run (every answered
# call waits for a commit's sync). At the end: what parsing one call's body costs.
# The measured calls follow a warm-up of VIGIL_BENCH_WARMUP seconds (default 1) at the same
# rate, without a pause: the warm-up (the first connections, the server's new log and caches)
# is reported on its own line, and its calls are recorded and counted like the others.
# VIGIL_BENCH_LATENCIES=FILE writes each call's latency (ms), in schedule order. Afterwards:
# what the server wrote to disk per call, and how many calls shared a commit.
# Usage: bench/cds/run.sh [RATE] [SECONDS]   (default 1000 calls/s for 10 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
rate=${1:-1000}
secs=${2:-10}
data=${VIGIL_SHARED_DATA:-$(pwd)/../shared/data}
cargo build --release -q -p vigil-http --example bench_cds
cargo build --release -q -p vigil-cds --example parse_cost
cargo build --release -q -p vigil
bin=${CARGO_TARGET_DIR:-target}/release
home=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$home"' EXIT
"$bin/examples/bench_cds" setup "$home" "$data"
# Below the ephemeral range (32768 and up), where the load generator's own connections are.
port=$((20000 + RANDOM % 12000))
"$bin/vigil" --home "$home" --public-url "http://127.0.0.1:$port" serve --addr "127.0.0.1:$port" >/dev/null &
server=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/api/v1/openapi.json" >/dev/null && break; sleep 0.1; done
written() { awk '/^write_bytes/ {print $2}' "/proc/$server/io"; }
before=$(written)
"$bin/examples/bench_cds" load "http://127.0.0.1:$port" "$data" "$rate" "$secs" "${VIGIL_BENCH_ALG:-rs384}" "$home"
after=$(written)
batches=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "vigil_prediction_record_batches_total" {print $2}')
kill "$server"; wait "$server" 2>/dev/null || true
calls=$((rate * (secs + ${VIGIL_BENCH_WARMUP:-1})))
echo "server wrote $(( (after - before) / calls / 1024 )) KiB per call to disk (log and checkpoints); $calls calls in ${batches:-?} commits"
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
echo "prediction records on channel cds: $(sqlite3 "$home/vigil.db" "SELECT count(*) FROM predictions WHERE channel = 'cds'")"
# What parsing one of the calls costs, against parsing it into a serde_json::Value.
"$bin/examples/parse_cost" "$home/request.json"
