#!/bin/sh
# The component-model reference `.wast` suite, timed in canon-async's runner
# (`canon-async-spec`, wasmi) and in Wasmtime 48's `wasmtime wast` (Cranelift),
# on the same files, with the runs of the two interleaved.
#   sh benches/side-by-side/wast.sh [ROUNDS]        (default 7)
# Environment:
#   WASMTIME  a Wasmtime 48 CLI; when unset, the one wasmtime.sh finds or builds
#   SUITE     the suite's test/ folder (default ../shared/spec-testsuite/component-model/test)
# It prints which files each side passes, then one table of medians: each
# set of files (the whole suite, each folder, the files both pass) in one
# process, and as the sum of one process per file.
set -e
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ROUNDS=${1:-7}
SUITE=${SUITE:-../shared/spec-testsuite/component-model/test}
SUITE=$(cd "$SUITE" && pwd)

WASMTIME=$(sh benches/side-by-side/wasmtime.sh)
cargo build --release -q -p canon-async-spec
SPEC=$ROOT/target/release/canon-async-spec

# Every component-model proposal Wasmtime 48 has a flag for, and the core
# proposals the suite's core modules use. canon-async's runner accepts any
# rejection for assert_invalid / assert_malformed (it checks the reason only
# when wasmi rejects a core module), so Wasmtime gets --ignore-error-messages;
# the files that pass only with it are listed.
WFLAGS="--ignore-error-messages -W component-model-async=y,component-model-more-async-builtins=y,component-model-async-stackful=y,component-model-threading=y,component-model-error-context=y,component-model-fixed-length-lists=y,exceptions=y"
wt() { "$WASMTIME" wast $WFLAGS "$@"; }
ca() { "$SPEC" "$@"; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$SUITE"
find . -name '*.wast' | sort >"$T/all"
FOLDERS=$(sed 's|^\./||; s|/.*||' "$T/all" | sort -u)

# Which files pass where: each file alone, in its own process.
: >"$T/both"
echo "files that fail (each file run alone):"
while read -r f; do
  wok=1 cok=1
  wt "$f" >"$T/out" 2>&1 || { wok=0; echo "  wasmtime wast: $f: $(grep -m1 -i 'error\|fail\|panic' "$T/out" | cut -c1-150)"; }
  if [ $wok = 1 ] && ! "$WASMTIME" wast ${WFLAGS#--ignore-error-messages } "$f" >/dev/null 2>&1; then
    echo "  wasmtime wast: $f passes only with --ignore-error-messages"
  fi
  ca "$f" >"$T/out" 2>&1 || { cok=0; echo "  canon-async-spec: $f: $(grep -m1 '^FAIL' "$T/out" | cut -c1-150)"; }
  echo "$f $wok $cok" >>"$T/pass"
  if [ $wok = 1 ] && [ $cok = 1 ]; then echo "$f" >>"$T/both"; fi
done <"$T/all"
echo "canon-async-spec --nyi nyi.txt --nyi spec-tests/known-failures.txt on the suite: $(ca --nyi nyi.txt --nyi "$ROOT/spec-tests/known-failures.txt" . | tail -1)"
echo

# Sets: name, then its file list in $T/set.NAME.
cp "$T/all" "$T/set.whole"
for d in $FOLDERS; do grep "^\./$d/" "$T/all" >"$T/set.$d"; done
cp "$T/both" "$T/set.both"
SETS="whole $FOLDERS both"

# Wasmtime stops at a set's first failing file, so it runs a set in one
# process only when it passes every file of it, and the files together.
for s in $SETS; do
  # shellcheck disable=SC2046
  if [ -s "$T/set.$s" ] && wt $(cat "$T/set.$s") >/dev/null 2>&1; then touch "$T/wone.$s"; fi
done

now() { date +%s%N; }
tm() { # OUTFILE COMMAND...: appends the command's wall time in µs
  o=$1; shift
  t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now)
  echo $(((t1 - t0) / 1000)) >>"$o"
}
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  for s in $SETS; do
    [ -s "$T/set.$s" ] || continue
    # shellcheck disable=SC2046
    tm "$T/c1.$s" ca $(cat "$T/set.$s")
    # shellcheck disable=SC2046
    if [ -e "$T/wone.$s" ]; then tm "$T/w1.$s" wt $(cat "$T/set.$s"); fi
  done
  n=0
  while read -r f; do
    n=$((n + 1))
    tm "$T/cf.$n" ca "$f"
    tm "$T/wf.$n" wt "$f"
  done <"$T/all"
done

med() { sort -n "$1" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# Per-file medians, then each set's sum of them.
n=0
while read -r f; do
  n=$((n + 1))
  echo "$f $(med "$T/cf.$n") $(med "$T/wf.$n")" >>"$T/perfile"
done <"$T/all"
ms() { awk -v u="$1" 'BEGIN {printf "%.3f s", u / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a / b}'; }

echo "$(uname -m), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS rounds"
echo "$("$WASMTIME" --version); flags: wast $WFLAGS"
echo
echo '| files | count | canon-async passes | Wasmtime passes | canon-async, one process | Wasmtime, one process | ratio | canon-async, a process per file (sum) | Wasmtime, a process per file (sum) | ratio |'
echo '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
for s in $SETS; do
  [ -s "$T/set.$s" ] || continue
  cnt=$(wc -l <"$T/set.$s")
  cp_=$(awk 'NR == FNR {s[$1]; next} ($1 in s) && $3' "$T/set.$s" "$T/pass" | wc -l)
  wp=$(awk 'NR == FNR {s[$1]; next} ($1 in s) && $2' "$T/set.$s" "$T/pass" | wc -l)
  c1=$(med "$T/c1.$s")
  sums=$(awk 'NR == FNR {s[$1]; next} ($1 in s) {c += $2; w += $3} END {print c, w}' "$T/set.$s" "$T/perfile")
  cf=${sums% *} wf=${sums#* }
  if [ -e "$T/wone.$s" ]; then
    w1=$(med "$T/w1.$s"); w1s=$(ms "$w1"); r1=$(ratio "$c1" "$w1")
  else
    w1s="— (fails a file)"; r1="—"
  fi
  case $s in whole) name="whole suite" ;; both) name="passed by both" ;; *) name="$s/" ;; esac
  echo "| $name | $cnt | $cp_ | $wp | $(ms "$c1") | $w1s | $r1 | $(ms "$cf") | $(ms "$wf") | $(ratio "$cf" "$wf") |"
done
echo
echo "canon-async's passes count a file as passing when it runs clean alone (the"
echo "5 files of nyi.txt and spec-tests/known-failures.txt fail by design);"
echo "ratio = canon-async / Wasmtime, below 1 means canon-async is faster."
