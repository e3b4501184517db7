#!/usr/bin/env bash
# Audit chain throughput: durable batched appends, then `verify` over the whole chain, on
# SQLite (a fresh home) and on PostgreSQL (a fresh database) when one is reachable.
# Usage: bench/audit/run.sh [EVENTS] [BATCH]     (default 1000000 events, batches of 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
events=${1:-1000000}
batch=${2:-1000}
cargo build --release -q -p vigil-service --example bench_audit
cargo build --release -q -p vigil
bin=${CARGO_TARGET_DIR:-target}/release
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT

echo "== SQLite ($events events, batches of $batch)"
"$bin/examples/bench_audit" "$home/sqlite" "$events" "$batch"
echo "== the same chain through the CLI: vigil audit verify"
/usr/bin/time -f "   wall %e s, peak memory %M KiB" "$bin/vigil" --home "$home/sqlite" audit verify

pg=${VIGIL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if psql "$pg" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  db=vigil_bench_audit_$$
  psql "$pg" -qc "CREATE DATABASE $db"
  url="${pg%/*}/$db"
  echo "== PostgreSQL ($events events, batches of $batch)"
  "$bin/examples/bench_audit" "$url" "$events" "$batch" || true
  psql "$pg" -qc "DROP DATABASE $db WITH (FORCE)"
fi
