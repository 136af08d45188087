#!/bin/sh
# Prints the path of the Wasmtime 48 CLI the side-by-side scripts use: $WASMTIME
# when set, else target-wasmtime/root/bin/wasmtime at the repo's root, built
# there by `cargo install` from crates.io (10-30 minutes) when missing, with
# the features `wast` and `serve` need. target-wasmtime/ is git-ignored.
set -e
cd "$(dirname "$0")/../.."
if [ -n "$WASMTIME" ]; then echo "$WASMTIME"; exit; fi
W=$(pwd)/target-wasmtime
if [ ! -x "$W/root/bin/wasmtime" ]; then
  echo "building Wasmtime 48's CLI into target-wasmtime/ ..." >&2
  CARGO_TARGET_DIR=$W/build nice cargo install -q wasmtime-cli --version '^48' --locked \
    --root "$W/root" --no-default-features \
    --features run,serve,wast,wat,compile,cranelift,component-model,component-model-async,wasi-http,parallel-compilation,pooling-allocator,threads,gc,gc-drc,gc-null,logging >&2
fi
echo "$W/root/bin/wasmtime"
