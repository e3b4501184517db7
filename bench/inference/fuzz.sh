#!/usr/bin/env bash
# Fuzzes the ONNX loader, planner and executor (crates/inference/fuzz, target load_and_run)
# for a bounded time, seeded with the conformance fixtures.
# Usage: bench/inference/fuzz.sh [SECONDS]   (default 60; from anywhere inside the repository)
# Installs cargo-fuzz if missing. libFuzzer needs a nightly compiler: the nightly toolchain is
# used when rustup has one, else the stable one with RUSTC_BOOTSTRAP=1.
set -euo pipefail
secs=${1:-60}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root/crates/inference/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target-fuzz}
corpus=${VIGIL_FUZZ_CORPUS:-$HOME/.cache/vigil/fuzz-corpus/load_and_run}
mkdir -p "$corpus"
cp -n "$root"/crates/inference/testdata/*.onnx "$corpus"/ 2>/dev/null || true
# One job on a shared machine; inputs up to 256 KiB so whole fixtures mutate.
cargo "${toolchain[@]}" fuzz run load_and_run "$corpus" -- \
  -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
