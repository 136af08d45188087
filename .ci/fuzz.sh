#!/usr/bin/env bash
# Builds and runs each cargo-fuzz target for $FUZZ_SECONDS (default 60) s.
# Needs a nightly toolchain and cargo-fuzz (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
for t in ops schedule component; do
    echo "== fuzz target $t (${secs}s)"
    cargo +nightly fuzz build "$t"
    cargo +nightly fuzz run "$t" -- -max_total_time="$secs"
done
