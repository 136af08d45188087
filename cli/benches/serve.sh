#!/bin/sh
# Benchmarks `canon-async serve` with the keepalive component under wrk:
# GET /hello at 1 and 16 connections, and the cost of keep-alive
# (/stream?n=1&ms=0 with instance reuse on and off).
#   sh cli/benches/serve.sh [DURATION_SECONDS]
# Installs wrk from Debian's packages when it is missing; builds the CLI
# in release mode; the server listens on an ephemeral port of 127.0.0.1
# and is stopped at the end.
set -e
cd "$(dirname "$0")/../.."
D=${1:-10}
COMPONENT=../shared/components/keepalive/keepalive.wasm
if ! command -v wrk >/dev/null 2>&1; then
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
cargo build --release -q -p canon-async-cli
BIN=target/release/canon-async
OUT=$(mktemp)
PID=
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; }
trap stop EXIT
start() {
  : >"$OUT"
  "$BIN" serve --addr 127.0.0.1:0 "$@" "$COMPONENT" >"$OUT" 2>/dev/null &
  PID=$!
  i=0
  until grep -q serving "$OUT"; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "the server did not start" >&2; exit 1; }
    sleep 0.1
  done
  URL=$(sed 's/serving on //' "$OUT")
  # Warm up: instances made, code paths hot.
  wrk -t1 -c16 -d1s "$URL/hello" >/dev/null
}
run() { # NAME CONNECTIONS PATH
  T=1; [ "$2" -gt 1 ] && T=2
  R=$(wrk -t$T -c"$2" -d"${D}s" --latency "$URL$3")
  rps=$(echo "$R" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$R" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$R" | awk '$1 == "99%" {print $2}')
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$rps" "$p50" "$p99"
}
echo "$(uname -m), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u +%Y-%m-%d)"
echo
echo '| what | connections | requests/s | p50 | p99 |'
echo '| --- | --- | --- | --- | --- |'
start
run "GET /hello" 1 /hello
run "GET /hello" 16 /hello
run "GET /stream?n=1&ms=0, instances reused (128)" 16 "/stream?n=1&ms=0"
stop
start --max-instance-reuse 1
run "GET /stream?n=1&ms=0, a new instance per request" 16 "/stream?n=1&ms=0"
stop
