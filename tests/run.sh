#!/usr/bin/env bash
# Runs pbiport's tests and prints one closing line "N passed, N failed".
#   tests/run.sh [unit|cli|emulator|integration|integration-db|browser|postgresql]...
#   (default: unit cli emulator integration browser postgresql)
# BUILD (default build) and PBIPORT_BIN_DIR (default bin) select the build under test,
# so `make check-asan` runs the same suite against the sanitizer build.
# postgresql: the tests that touch the database again with PBIPORT_TEST_DB=postgresql (the unit
# tests and integration-db), in one throwaway cluster (tests/tools/pg_cluster.py run); it runs in
# the background while the other suites run, its results are printed after theirs ("pg/..." names).
# integration-db: the integration tests but NOT_ON_PG, with PG_ONLY.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export PBIPORT_BIN_DIR=${PBIPORT_BIN_DIR:-bin}
export PBIPORT_BIN="$PWD/$PBIPORT_BIN_DIR/pbiport"
export PBIPORT_SRC="$PWD"
# The shared corpus sits beside the project in the development setup; tests that
# read it skip with a message when it is absent.
export PBIPORT_CORPUS=${PBIPORT_CORPUS:-$PWD/../shared/corpus}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit cli emulator integration browser postgresql)
# Integration tests left out of the PostgreSQL run: the demo tests run deploy/demo.sh, which makes
# a database of its own; PBIPORT_TEST_DB changes nothing there.
NOT_ON_PG=(test_demo.py test_demo_fresh_clone.py)
# Integration tests only in the PostgreSQL run: two hosts on one PostgreSQL (a cluster of its own).
PG_ONLY=(test_two_hosts.py)
# On PostgreSQL (PBIPORT_TEST_DB=postgresql) every name says so.
prefix=""
[ "${PBIPORT_TEST_DB:-sqlite}" = postgresql ] && prefix="pg/"

passed=0; failed=0; failed_names=()
log_dir="$BUILD/test-logs"; mkdir -p "$log_dir"

run_one() {  # name, command...
  local name=$prefix$1; shift
  local log="$log_dir/${name//\//_}.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "FAIL $name (log: $log)"
    tail -n 30 "$log" | sed 's/^/     | /'
  fi
  # a test that stopped the shared PostgreSQL server and failed before starting it again
  # fails alone, not every test after it
  if [ -n "${PBIPORT_TEST_PG_DIR:-}" ]; then
    python3 tests/tools/pg_cluster.py ensure-up "$PBIPORT_TEST_PG_DIR" 2>&1 | sed "s|^|     after $name: |"
  fi
  grep -h '^SKIP' "$log" 2>/dev/null | sed 's/^/     /' || true
}

run_files() {  # suite, interpreter, files...: every file of a suite run with the interpreter
  local suite=$1 interpreter=$2 t; shift 2
  for t in "$@"; do
    [ -f "$t" ] || continue   # an unmatched glob stays as its pattern
    run_one "$suite/$(basename "$t")" "$interpreter" "$t"
  done
}

integration_tests() {  # the integration test files but those named in the arguments
  local t n skip
  for t in tests/integration/test_*.py; do
    skip=0
    for n in "$@"; do [ "$(basename "$t")" = "$n" ] && skip=1; done
    [ $skip -eq 1 ] || echo "$t"
  done
}

# The PostgreSQL run starts first, in the background: its tests mostly wait on processes they
# started, so it shares the cores with the rest of the suite without doubling the time.
pg_pid=""
pg_log="$log_dir/postgresql.log"
for suite in "${suites[@]}"; do
  if [ "$suite" = postgresql ]; then
    PBIPORT_TEST_DB=postgresql python3 tests/tools/pg_cluster.py run -- \
      bash tests/run.sh unit integration-db >"$pg_log" 2>&1 &
    pg_pid=$!
  fi
done

for suite in "${suites[@]}"; do
  case $suite in
    unit)
      for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        case $t in *.d) continue;; esac
        run_one "unit/$(basename "$t")" "$t"
      done ;;
    cli)
      run_files cli bash tests/cli/t*.sh ;;
    emulator)
      run_files emulator python3 tests/emulator/test_*.py ;;
    integration)
      mapfile -t tests < <(integration_tests "${PG_ONLY[@]}")
      run_files integration python3 "${tests[@]}" ;;
    integration-db)
      mapfile -t tests < <(integration_tests "${NOT_ON_PG[@]}")
      run_files integration python3 "${tests[@]}" ;;
    postgresql) ;;   # started above
    browser)
      # the web pages in a real Chromium (tests/browser/browser.py); screenshots in
      # $BUILD/test-artifacts/browser/
      export BROWSER_ARTIFACTS=${BROWSER_ARTIFACTS:-$PWD/$BUILD/test-artifacts/browser}
      run_files browser python3 tests/browser/test_*.py ;;
    *) echo "tests/run.sh: unknown suite '$suite'" >&2; exit 2 ;;
  esac
done

if [ -n "$pg_pid" ]; then
  wait "$pg_pid"; pg_status=$?
  echo; echo "PostgreSQL (log: $pg_log):"
  grep -v '^[0-9]* passed, [0-9]* failed$' "$pg_log" | grep -v '^failed: '
  summary=$(tail -n 1 "$pg_log")
  if [ $pg_status -eq 77 ]; then
    echo "     the PostgreSQL tests were skipped: no PostgreSQL server binaries (make deps)"
  elif [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
    failed_names+=($(grep '^failed: ' "$pg_log" | sed 's/^failed: //'))
  else
    failed=$((failed + 1)); failed_names+=("postgresql"); echo "FAIL postgresql (exit $pg_status)"
  fi
fi

echo
[ $failed -eq 0 ] || printf 'failed: %s\n' "${failed_names[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
