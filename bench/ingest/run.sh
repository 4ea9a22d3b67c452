#!/usr/bin/env bash
# Import benchmark (see bench/ingest/run.py; the apply step alone: bench/ingest/apply.c): BENCH_WORKSPACES (default 10000),
# BENCH_LATENCY_MS (default 20). Writes the "ingest" section of bench/README.md.
# BENCH_BIN_DIR: use the pbiport binaries there (a build of its own) instead of bin/.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -n "${BENCH_BIN_DIR:-}" ] || make -s bin/pbiport bin/pbiport.fcgi
exec python3 bench/ingest/run.py
