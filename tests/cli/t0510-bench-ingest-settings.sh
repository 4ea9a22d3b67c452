#!/usr/bin/env bash
# bench/ingest builds pbiport's environment from scratch, but the scan settings asked for must
# reach the worker and the reference scan (before, PBIPORT_SCAN_POLL_MS never did, and a run
# "with a 100 ms poll" polled every 2 s); nothing else of the caller's environment does (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh
env_of() {
  python3 -B -c 'import json, sys; sys.path.insert(0, "bench/ingest"); sys.path.insert(0, "bench"); import run
print(json.dumps(run.worker_env("/w", "https://emu")))'
}
PBIPORT_SCAN_POLL_MS=100 PBIPORT_SCAN_POLL_MAX_MS=400 PBIPORT_TEMPLATE_PATH=/elsewhere env_of >"$tmp/env" 2>"$tmp/err"
check "PBIPORT_SCAN_POLL_MS and PBIPORT_SCAN_POLL_MAX_MS reach the worker's environment" \
  'grep -q "\"PBIPORT_SCAN_POLL_MS\": \"100\"" "$tmp/env" && grep -q "\"PBIPORT_SCAN_POLL_MAX_MS\": \"400\"" "$tmp/env"'
check "... and other settings of the caller do not" '! grep -q PBIPORT_TEMPLATE_PATH "$tmp/env" && grep -q "\"PBIPORT_DB\": \"/w/pbiport.db\"" "$tmp/env"'
env -u PBIPORT_SCAN_POLL_MS -u PBIPORT_SCAN_POLL_MAX_MS bash -c "$(declare -f env_of); env_of" >"$tmp/env" 2>"$tmp/err"
check "without them the worker keeps its defaults" '! grep -q PBIPORT_SCAN_ "$tmp/env"'
tap_done
