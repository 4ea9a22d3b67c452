#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_*.c as a libFuzzer harness (clang, ASan+UBSan) linked
# against the library, then runs each for FUZZ_SECONDS (default 60) on its seed
# folder tests/fuzz/corpus/<name>/ (plus the shared corpus when present).
# Prints the exec count of each run; a crash fails the run and leaves the input in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-60}
FB=build-fuzz
make -s BUILD=$FB BIN=$FB/bin CC=clang OPT="-O1 -g -fsanitize=fuzzer-no-link" \
     SANITIZE=address,undefined $FB/libpbiport.a
CFLAGS_PKG=$(pkg-config --cflags lua5.4 sqlite3 jansson libcurl openssl yaml-0.1)
LIBS_PKG="$(pkg-config --libs lua5.4 sqlite3 jansson libcurl openssl yaml-0.1) -lfcgi -lm -lpthread"
status=0
root=$PWD
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin=$FB/$name
  clang -std=c11 -D_GNU_SOURCE -O1 -g -I. $CFLAGS_PKG -fsanitize=fuzzer,address,undefined \
        -DPBIPORT_DATADIR="\"$PWD\"" -o "$bin" "$src" $FB/libpbiport.a $LIBS_PKG
  work=$FB/corpus-$name; mkdir -p "$work"
  seeds=("$work")
  [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
  echo "== $name: ${SECS}s"
  if ! (cd $FB && ASAN_OPTIONS=detect_leaks=1 "./$name" -max_total_time="$SECS" -rss_limit_mb=2048 \
          -print_final_stats=1 "${seeds[@]/#/$root/}" 2>&1 | tee "$name.log" | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' ); then
    :
  fi
  if grep -q 'ERROR: \(AddressSanitizer\|libFuzzer\|UndefinedBehaviorSanitizer\)\|runtime error' $FB/$name.log; then
    echo "$name: CRASH (see $FB/$name.log)"; status=1
  fi
done
exit $status
