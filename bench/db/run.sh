#!/usr/bin/env bash
# The same host on SQLite and on PostgreSQL, side by side. `bench/db/run.sh` runs both parts;
# `bench/db/run.sh get` the GET throughput (bench/db/bench.py, the "db" section of bench/README.md),
# `bench/db/run.sh jobs` the jobs per second (bench/db/jobs.py, its "db-jobs" section). Needs wrk,
# nginx, spawn-fcgi and PostgreSQL's server binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all
part=${1:-all}
[ $# -gt 0 ] && shift
case $part in
  get) exec python3 bench/db/bench.py "$@" ;;
  jobs) exec python3 bench/db/jobs.py "$@" ;;
  all) python3 bench/db/bench.py "$@" && exec python3 bench/db/jobs.py "$@" ;;
  *) echo "usage: bench/db/run.sh [get|jobs|all]" >&2; exit 2 ;;
esac
