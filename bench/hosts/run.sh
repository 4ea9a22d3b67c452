#!/usr/bin/env bash
# One host vs two hosts on one PostgreSQL, in turns: see bench/hosts/bench.py. Results go to the
# "hosts" section of bench/README.md. Needs nginx, spawn-fcgi and PostgreSQL's server binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all
exec python3 bench/hosts/bench.py "$@"
