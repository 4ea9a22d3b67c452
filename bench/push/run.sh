#!/usr/bin/env bash
# Push benchmark: 1,000,000 CSV rows of 8 columns through pbiport into the emulator; writes the
# "push" section of bench/README.md. BENCH_ROWS and BENCH_RATE_SCALE change the size and limits.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s -j2 bin/pbiport >/dev/null
exec python3 bench/push/bench.py "$@"
