#!/usr/bin/env bash
# The same host on SQLite and on PostgreSQL, side by side: see bench/db/bench.py. Results go to the
# "db" section of bench/README.md. Needs wrk, nginx, spawn-fcgi and PostgreSQL's server binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all
exec python3 bench/db/bench.py "$@"
