#!/usr/bin/env bash
# HTTP benchmark through nginx: see bench/http/bench.py. Results go to the "http" section of
# bench/README.md. BENCH_SECONDS (default 20) per wrk run; needs wrk, nginx, spawn-fcgi, a build.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/pbiport ] || make -s
exec python3 bench/http/bench.py "$@"
