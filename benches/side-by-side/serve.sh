#!/bin/sh
# wasi:http@0.3 side by side: the keepalive component (componentize-py) served
# by `canon-async serve` and by Wasmtime 48's `wasmtime serve`, each loaded
# with the same `hey` runs of 1,000 requests, the two servers' runs
# interleaved, medians (by requests/s) of ROUNDS runs.
#   sh benches/side-by-side/serve.sh [ROUNDS]       (default 5)
# Environment: WASMTIME (see wasmtime.sh), WASMTIME_FLAGS (default below).
# Installs hey from Debian's packages when it is missing. Both servers listen
# on ephemeral ports of 127.0.0.1, with the same instance reuse (128 requests,
# 16 at once: the defaults of both for a WASIp3 component), and are stopped
# at the end.
set -e
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
N=1000
COMPONENT=../shared/components/keepalive/keepalive.wasm
# -Scli: the component also imports the WASI 0.2 interfaces CPython's libc
# reaches through the preview1 adapter, beyond the wasi:http proxy world.
WASMTIME_FLAGS=${WASMTIME_FLAGS:--S cli=y}
if ! command -v hey >/dev/null 2>&1; then
  apt-get install -y hey >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y hey >/dev/null; }
fi
WASMTIME=$(sh benches/side-by-side/wasmtime.sh)
cargo build --release -q -p canon-async-cli
CA=target/release/canon-async

T=$(mktemp -d)
PIDS=
stop() {
  # A stopped server's status (143) must not become the script's under set -e.
  for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  PIDS=
  rm -rf "$T"
}
trap stop EXIT
wait_for() { # LOG PATTERN: the server's URL, from the line it logs when listening
  i=0
  until grep -q "$2" "$1"; do
    i=$((i + 1))
    [ $i -gt 3000 ] && { echo "a server did not start:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.1
  done
  grep -m1 -o 'http://[0-9.:]*' "$1"
}
"$CA" serve --addr 127.0.0.1:0 "$COMPONENT" >"$T/ca.log" 2>&1 &
PIDS="$PIDS $!"
CA_URL=$(wait_for "$T/ca.log" serving)
# shellcheck disable=SC2086
"$WASMTIME" serve $WASMTIME_FLAGS --addr 127.0.0.1:0 "$COMPONENT" >"$T/wt.log" 2>&1 &
PIDS="$PIDS $!"
WT_URL=$(wait_for "$T/wt.log" 'Serving HTTP')

# The same responses from both, then a warm-up (instances made, code hot).
for u in "$CA_URL" "$WT_URL"; do
  curl -sf "$u/hello" >"$T/body" && [ "$(cat "$T/body")" = hello ] || {
    echo "$u/hello: not the expected body" >&2; exit 1;
  }
  curl -sf "$u/stream?n=3&ms=5" >"$T/body" && [ "$(cat "$T/body")" = "$(printf 'line 0\nline 1\nline 2')" ] || {
    echo "$u/stream: not the expected body" >&2; exit 1;
  }
  hey -n 500 -c 16 "$u/hello" >/dev/null
done

one() { # OUT URL CONNECTIONS: one hey run; appends "rps p50_ms p99_ms errors"
  # hey sends N rounded down to a multiple of the connections (992 of 1,000
  # at 16), so the failures are counted from what it reports: responses
  # other than 200 ("[code] count responses") and errors ("[count] error").
  hey -n $N -c "$3" "$2" >"$T/hey"
  awk '/Requests\/sec/ {r = $2}
       $1 == "50%" {p50 = $3 * 1000} $1 == "99%" {p99 = $3 * 1000}
       $1 ~ /^\[[0-9]+\]$/ && $3 == "responses" && $1 != "[200]" {bad += $2}
       $1 ~ /^\[[0-9]+\]$/ && $3 != "responses" {gsub(/[][]/, "", $1); bad += $1}
       END {printf "%s %.2f %.2f %d\n", r, p50, p99, bad}' "$T/hey" >>"$1"
}
med() { # the median run by requests/s
  sort -n "$1" | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}'
}
CASES="1:/hello 16:/hello 16:/stream?n=1&ms=0"
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  k=0
  for c in $CASES; do
    k=$((k + 1))
    one "$T/ca.$k" "$CA_URL${c#*:}" "${c%%:*}"
    one "$T/wt.$k" "$WT_URL${c#*:}" "${c%%:*}"
  done
done

echo "$(uname -m), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$("$WASMTIME" --version), wasmtime serve $WASMTIME_FLAGS; canon-async serve (defaults); hey -n $N, median of $ROUNDS"
echo
echo '| request | connections | canon-async req/s | Wasmtime req/s | canon-async / Wasmtime | canon-async p50 / p99 | Wasmtime p50 / p99 | non-200 (canon-async, Wasmtime) |'
echo '| --- | --- | --- | --- | --- | --- | --- | --- |'
k=0
for c in $CASES; do
  k=$((k + 1))
  set -- $(med "$T/ca.$k") $(med "$T/wt.$k")
  ratio=$(awk -v a="$1" -v b="$5" 'BEGIN {printf "%.2f×", a / b}')
  echo "| GET ${c#*:} | ${c%%:*} | $1 | $5 | $ratio | $2 / $3 ms | $6 / $7 ms | $4, $8 |"
done
