#!/usr/bin/env bash
# Stopping ends every process, even a busy one (TAP output):
#  - deploy/systemd/pbiport-pool on TERM ends its copies: a polite copy at once, a copy that
#    ignores TERM (busy in a library call) with KILL after PBIPORT_POOL_STOP_GRACE;
#  - a copy that exits with the template watchdog's status (70) is restarted without counting
#    as a start-up failure;
#  - deploy/demo.sh stop ends the pool's whole process group, even children its leader left
#    behind.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
tmp=$(mktemp -d)
n=0; failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; sed 's/^/#   /' "$tmp/err" 2>/dev/null | head -5; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

# A process runs (a zombie does not count).
running() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}
none_running() {  # pid file
	local pid
	while read -r pid; do running "$pid" && return 1; done <"$1"
	return 0
}
wait_for_lines() {  # file, count, seconds
	for _ in $(seq 1 $(($3 * 10))); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
# Tenths of a second until pid has ended, at most limit seconds.
wait_gone() {  # pid, limit
	local t
	for ((t = 0; t < $2 * 10; t++)); do
		running "$1" || { echo "$t"; return 0; }
		sleep 0.1
	done
	echo "$t"
	return 1
}
secs() { echo "$(($1 / 10)).$(($1 % 10)) s"; }
groups=()
cleanup() {
	local g
	for g in "${groups[@]+"${groups[@]}"}"; do kill -KILL -- "-$g" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# Stand-ins for pbiport.fcgi: each writes its pid, then spins ignoring TERM, or waits and
# ends on TERM, or exits at once with the watchdog's status.
cat >"$tmp/busy" <<'EOF'
#!/bin/bash
trap '' TERM
echo $$ >>"$PIDS"
while :; do :; done
EOF
cat >"$tmp/polite" <<'EOF'
#!/bin/bash
echo $$ >>"$PIDS"
trap 'exit 0' TERM
while :; do sleep 0.1; done
EOF
cat >"$tmp/watchdog" <<'EOF'
#!/bin/bash
echo $$ >>"$PIDS"
exit 70
EOF
chmod +x "$tmp/busy" "$tmp/polite" "$tmp/watchdog"

start_pool() {  # program, grace, pid file -> pool pid in $pool
	PIDS=$3 PBIPORT_FCGI_PROCS=2 PBIPORT_POOL_STOP_GRACE=$2 setsid "$ROOT/deploy/systemd/pbiport-pool" "$1" \
		</dev/null >>"$tmp/err" 2>&1 &
	pool=$!
	disown "$pool"
	groups+=("$pool")
}

: >"$tmp/err"
start_pool "$tmp/busy" 1 "$tmp/busy.pids"
check "busy copies started" 'wait_for_lines "$tmp/busy.pids" 2 10'
kill -TERM "$pool"
took=$(wait_gone "$pool" 10); rc=$?
check "the pool ends within its grace after TERM though its copies ignore TERM ($(secs "$took"))" '[ $rc -eq 0 ]'
check "no busy copy is left running" 'none_running "$tmp/busy.pids"'
check "the pool says it sent KILL" 'grep -q "still running 1s after TERM; sending KILL" "$tmp/err"'

: >"$tmp/err"
start_pool "$tmp/polite" 30 "$tmp/polite.pids"
check "polite copies started" 'wait_for_lines "$tmp/polite.pids" 2 10'
kill -TERM "$pool"
took=$(wait_gone "$pool" 5); rc=$?
check "copies that end on TERM end the pool at once, not after the grace ($(secs "$took"))" '[ $rc -eq 0 ] && [ "$took" -lt 30 ]'
check "no polite copy is left running" 'none_running "$tmp/polite.pids"'
check "no KILL was needed" '! grep -q "sending KILL" "$tmp/err"'

: >"$tmp/err"
start_pool "$tmp/watchdog" 1 "$tmp/watchdog.pids"
# five quick exits in a row stop a pool; watchdog exits must not
check "copies ended by the watchdog are started again" 'wait_for_lines "$tmp/watchdog.pids" 14 15'
check "the pool did not give up" 'running "$pool" && ! grep -q "giving up" "$tmp/err"'
kill -TERM "$pool"
wait_gone "$pool" 5 >/dev/null
check "that pool ends on TERM" '! running "$pool"'

# demo.sh stop: a pool whose grace is longer than the demo's wait, so the demo must end the
# process group itself (a pool killed with KILL used to leave its busy copy running).
demo=$tmp/demo
mkdir -p "$demo/run"
: >"$tmp/err"
start_pool "$tmp/busy" 600 "$tmp/demo-busy.pids"
echo "$pool" >"$demo/run/fcgi.pid"
check "busy copies of the demo pool started" 'wait_for_lines "$tmp/demo-busy.pids" 2 10'
PBIPORT_DEMO_DIR=$demo PBIPORT_DEMO_STOP_WAIT=1 bash deploy/demo.sh stop >"$tmp/out" 2>>"$tmp/err"; rc=$?
check "demo.sh stop succeeds" '[ $rc -eq 0 ] && grep -q "stopped fastcgi" "$tmp/out"'
check "it says it killed what was left of the group" 'grep -q "killed what was left of process group $pool" "$tmp/out"'
sleep 0.5
check "no process of the demo pool is left running" '! running "$pool" && none_running "$tmp/demo-busy.pids"'
check "the pid file is gone" '[ ! -e "$demo/run/fcgi.pid" ]'

echo "1..$n"
[ $failed -eq 0 ]
