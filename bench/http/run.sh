#!/usr/bin/env bash
# HTTP benchmark through nginx: see bench/http/bench.py (pbiport and its floor, bench/http/floor.c,
# in turns; bench/http/inproc.c in one process). Results go to the "http" section of
# bench/README.md. BENCH_SECONDS (default 20) per wrk run, BENCH_ROUNDS (default 2) turns,
# BENCH_BASE_BIN_DIR an earlier build measured in the same turns; needs wrk, nginx, spawn-fcgi.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all build/libpbiport.a   # the binaries measured, and the library inproc.c links
exec python3 bench/http/bench.py "$@"
