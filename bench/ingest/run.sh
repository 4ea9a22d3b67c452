#!/usr/bin/env bash
# Import benchmark (see bench/ingest/run.py; the apply step alone: bench/ingest/apply.c): BENCH_WORKSPACES (default 10000),
# BENCH_LATENCY_MS (default 20). Writes the "ingest" section of bench/README.md.
# BENCH_BIN_DIR: use the pbiport binaries there (a build of its own) instead of bin/. PBIPORT_SCAN_* settings
# (PBIPORT_SCAN_POLL_MS, PBIPORT_SCAN_POLL_MAX_MS) reach the worker and the reference scan.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build/libpbiport.a   # the reference scan (bench/msapi/bench_msapi.c) links it
[ -n "${BENCH_BIN_DIR:-}" ] || make -s bin/pbiport bin/pbiport.fcgi
exec python3 bench/ingest/run.py
