#!/bin/sh
# Instructions per iteration of the core's benchmark paths, by callgrind:
# the bench binary's CANON_CALLGRIND mode (benches/core/core.rs) runs one path's
# loop N1 and N2 times; (Ir(N2) - Ir(N1)) / (N2 - N1) cancels the setup out.
#
#   benches/callgrind.sh [path ...]      (default: 1 2 3 4 4p 4s)
#   N1=1000 N2=11000 benches/callgrind.sh 3
#   TOP=1 benches/callgrind.sh 3         (also the top functions of the N2 run)
#
# Path 4, 4p and 4s iterations are two switches each (halve for "per switch").
# `benches/callgrind.sh mem` prints path 7's heap bytes per pending task
# (1,000,000 tasks; no valgrind).
set -e
cd "$(dirname "$0")/.."
cargo bench -p canon-async-bench --bench core --no-run 2>/dev/null
bin=$(ls -t target/release/deps/core-* | grep -v '\.d$' | head -n 1)
N1=${N1:-1000}
N2=${N2:-11000}
out=${TMPDIR:-/tmp}/canon-callgrind.$$
mkdir -p "$out"
ir() {
    CANON_CALLGRIND="$1:$2" valgrind --tool=callgrind --callgrind-out-file="$out/$1.$2" \
        "$bin" >/dev/null 2>"$out/log"
    callgrind_annotate "$out/$1.$2" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
[ $# -eq 0 ] && set -- 1 2 3 4 4p 4s
for p in "$@"; do
    if [ "$p" = mem ]; then
        CANON_CALLGRIND="7:${MANY:-1000000}" "$bin"
        continue
    fi
    a=$(ir "$p" "$N1")
    b=$(ir "$p" "$N2")
    echo "path $p: $(( (b - a) / (N2 - N1) )) instructions per iteration"
    if [ -n "$TOP" ]; then
        callgrind_annotate --inclusive=no "$out/$p.$N2" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 30
    fi
done
rm -rf "$out"
