#!/usr/bin/env bash
# Runs pbiport's tests and prints one closing line "N passed, N failed".
#   tests/run.sh [unit|cli|emulator|integration|browser]...   (default: all of them)
# BUILD (default build) and PBIPORT_BIN_DIR (default bin) select the build under test,
# so `make check-asan` runs the same suite against the sanitizer build.
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
[ ${#suites[@]} -gt 0 ] || suites=(unit cli emulator integration browser)

passed=0; failed=0; failed_names=()
log_dir="$BUILD/test-logs"; mkdir -p "$log_dir"

run_one() {  # name, command...
  local name=$1; shift
  local log="$log_dir/${name//\//_}.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "FAIL $name (log: $log)"
    tail -n 30 "$log" | sed 's/^/     | /'
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
      run_files integration python3 tests/integration/test_*.py ;;
    browser)
      # the web pages in a real Chromium (tests/browser/browser.py); screenshots in
      # $BUILD/test-artifacts/browser/
      export BROWSER_ARTIFACTS=${BROWSER_ARTIFACTS:-$PWD/$BUILD/test-artifacts/browser}
      run_files browser python3 tests/browser/test_*.py ;;
    *) echo "tests/run.sh: unknown suite '$suite'" >&2; exit 2 ;;
  esac
done

echo
[ $failed -eq 0 ] || printf 'failed: %s\n' "${failed_names[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
