#!/usr/bin/env bash
# The benchmarks record a figure only for work that completed (bench/completion.sh and
# bench/completion.py): a render stopped at its time limit (exit 2, no file written, as under
# callgrind before the deadline could be raised) fails the check loudly; a completed one, and
# the same render with the deadline raised (--time-limit-ms, PBIPORT_RENDER_TIME_LIMIT_MS),
# passes (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh
unset PBIPORT_TEMPLATE_PATH PBIPORT_RENDER_TIME_LIMIT_MS
python3 bench/tmdl/gen.py 20 40 >"$tmp/c20.json"
# the render cut at 1 ms must run well past it: CPU-time timers expire on the scheduler's tick
# (up to 10 ms), and a 20-table render can finish within one
python3 bench/tmdl/gen.py 200 40 >"$tmp/c200.json"

# check STATUS OUT_DIR TABLES in a subshell (bench_fail exits), its stderr in $tmp/check
render_check() {
  (. bench/completion.sh; require_render tmdl "$1" "$2" "$3" "$tmp/err") 2>"$tmp/check"
}

"$BIN" tmdl "$tmp/c200.json" --out "$tmp/cut" --time-limit-ms 1 2>"$tmp/err"; rc=$?
check "a render cut at its time limit exits 2 and writes nothing" \
  '[ $rc -eq 2 ] && grep -q "time limit of 1 ms exceeded" "$tmp/err" && [ ! -e "$tmp/cut" ]'
render_check "$rc" "$tmp/cut" 200; crc=$?
check "... and the benchmark's check fails loudly, naming it" \
  '[ $crc -eq 1 ] && grep -q "^bench tmdl: FAILED: pbiport tmdl exited 2 (.*time limit of 1 ms exceeded).*nothing was recorded" "$tmp/check"'

"$BIN" tmdl "$tmp/c20.json" --out "$tmp/full" 2>"$tmp/err"; rc=$?
render_check "$rc" "$tmp/full" 20; crc=$?
check "a completed render passes the check" '[ $rc -eq 0 ] && [ $crc -eq 0 ] && [ ! -s "$tmp/check" ]'
render_check 0 "$tmp/full" 21; crc=$?
check "fewer table files than tables fail it" '[ $crc -eq 1 ] && grep -q "wrote 20 table files, the contract has 21 tables" "$tmp/check"'

PBIPORT_RENDER_TIME_LIMIT_MS=600000 "$BIN" tmdl "$tmp/c20.json" --out "$tmp/raised" 2>"$tmp/err"; rc=$?
render_check "$rc" "$tmp/raised" 20; crc=$?
check "PBIPORT_RENDER_TIME_LIMIT_MS raises the deadline: the render completes" '[ $rc -eq 0 ] && [ $crc -eq 0 ]'
PBIPORT_RENDER_TIME_LIMIT_MS=1 "$BIN" tmdl "$tmp/c20.json" --out "$tmp/flag" --time-limit-ms 600000 2>"$tmp/err"; rc=$?
check "--time-limit-ms wins over PBIPORT_RENDER_TIME_LIMIT_MS" '[ $rc -eq 0 ] && [ -d "$tmp/flag/definition/tables" ]'
"$BIN" tmdl "$tmp/c20.json" --time-limit-ms soon >/dev/null 2>"$tmp/err"; rc=$?
check "a malformed --time-limit-ms is refused in one line" \
  '[ $rc -eq 2 ] && [ "$(cat "$tmp/err")" = "pbiport tmdl: --time-limit-ms: expected a whole number from 1 to 3600000, got '"'"'soon'"'"'" ]'

# the Python scripts' check
python3 -B -c 'import sys; sys.path.insert(0, "bench"); import completion; completion.require_equal(3, 4, "publish", "jobs that succeeded")' \
  2>"$tmp/check"; crc=$?
check "bench/completion.py stops the benchmark, naming what did not complete" \
  '[ $crc -eq 1 ] && grep -qx "bench publish: FAILED: jobs that succeeded: 3, expected 4; the run did not do all its work, nothing was recorded" "$tmp/check"'
python3 -B -c 'import sys; sys.path.insert(0, "bench"); import completion; completion.require(True, "x", "y")'; crc=$?
check "... and lets a completed one go on" '[ $crc -eq 0 ]'
tap_done
