#!/usr/bin/env bash
# Publish benchmark (see bench/publish/run.py): BENCH_JOBS (default 200), BENCH_WORKERS
# (default 2), BENCH_LATENCIES (default "0 50", ms added by the emulator to every call).
# Writes the "publish" section of bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s bin/pbiport bin/pbiport.fcgi
exec python3 bench/publish/run.py
