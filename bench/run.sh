#!/usr/bin/env bash
# Runs every benchmark (bench/<name>/run.sh), or the ones named: bench/run.sh tmdl http
# Each writes its own section of bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for d in bench/*/; do [ -x "$d/run.sh" ] || [ -f "$d/run.sh" ] && names+=("$(basename "$d")"); done
fi
status=0
for n in "${names[@]}"; do
  echo "== bench $n"
  bash "bench/$n/run.sh" || { echo "bench $n failed"; status=1; }
done
exit $status
