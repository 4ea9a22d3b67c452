#!/usr/bin/env bash
# Update benchmark (see bench/update/run.py): BENCH_JOBS (default 10) models of BENCH_TABLES
# (default 200) tables published, then updated in place; pbiport CPU per update vs per publish.
# Writes the "update" section of bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s bin/pbiport bin/pbiport.fcgi
exec python3 bench/update/run.py
