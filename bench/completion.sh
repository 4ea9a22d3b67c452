# Sourced by the shell benchmark scripts: a figure is recorded only for work that completed (the
# Python scripts use bench/completion.py).

# bench_fail BENCH WHAT: stops the benchmark loudly (exit 1) before anything is recorded.
bench_fail() {
  echo "bench $1: FAILED: $2; the run did not do all its work, nothing was recorded" >&2
  exit 1
}

# require_render BENCH STATUS OUT_DIR TABLES [STDERR_FILE]: a `pbiport tmdl ... --out OUT_DIR`
# that exited STATUS completed only if STATUS is 0 and OUT_DIR holds one definition/tables/
# file per table of the contract (a render stopped at its time limit exits 2 and writes none).
require_render() {
  local bench=$1 status=$2 out=$3 tables=$4 errf=${5:-} n
  if [ "$status" -ne 0 ]; then
    bench_fail "$bench" "pbiport tmdl exited $status${errf:+ ($(tail -n 1 "$errf" 2>/dev/null))}"
  fi
  n=$(find "$out/definition/tables" -name '*.tmdl' 2>/dev/null | wc -l)
  [ "$n" -eq "$tables" ] || bench_fail "$bench" "the render wrote $n table files, the contract has $tables tables"
}
