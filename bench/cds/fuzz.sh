#!/usr/bin/env bash
# Fuzzes CDS Hooks request, feedback, token and FHIR parsing and mapping
# (crates/cds/fuzz, target request_and_fhir) for a bounded time, seeded with the
# specification's examples and the FHIR R4 and Synthea files.
# Usage: bench/cds/fuzz.sh [SECONDS]   (default 60; from anywhere inside the repository)
# Installs cargo-fuzz if missing. libFuzzer needs a nightly compiler: the nightly toolchain is
# used when rustup has one, else the stable one with RUSTC_BOOTSTRAP=1.
set -euo pipefail
secs=${1:-60}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
data=${VIGIL_SHARED_DATA:-$root/../shared/data}
cd "$root/crates/cds/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target-fuzz}
corpus=${VIGIL_FUZZ_CORPUS:-$HOME/.cache/vigil/fuzz-corpus/request_and_fhir}
mkdir -p "$corpus"
cp -n "$data"/cds-hooks/*.json "$data"/cds-hooks/*.txt "$data"/fhir/spec-r4-examples/*.json "$corpus"/ 2>/dev/null || true
# One job on a shared machine; -timeout turns a hang into a failure.
cargo "${toolchain[@]}" fuzz run request_and_fhir "$corpus" -- \
  -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
