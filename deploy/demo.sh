#!/usr/bin/env bash
# pbiport demo: nginx + a FastCGI pool + SQLite on this machine, with demo users and a sample
# data product, ready for curl or a browser.
#
#   deploy/demo.sh start    build if needed, start everything from an empty folder, print what to try
#   deploy/demo.sh start --postgres
#                           the same on PostgreSQL: a local cluster of its own (tests/tools/pg_cluster.py:
#                           a unix socket in a folder under /tmp, removed by `stop`); demo.env's PBIPORT_DB
#                           is then its connection string, which psql accepts as it is
#   deploy/demo.sh stop     end the processes this script started (pid files in the demo folder)
#   deploy/demo.sh status   say what runs
#
# Settings (environment): PBIPORT_DEMO_PORT (default 8080), PBIPORT_DEMO_DIR (default var/demo),
# PBIPORT_DEMO_FCGI (FastCGI processes, default 2), PBIPORT_DEMO_BUILD=0 (skip `make`). Every
# other PBIPORT_* variable already set is passed to pbiport and written to demo.env. The tokens,
# browser passwords and keys are written only to $PBIPORT_DEMO_DIR/demo.env (mode 0600); nothing
# else in the folder holds a secret.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO_DIR=${PBIPORT_DEMO_DIR:-$ROOT/var/demo}
PORT=${PBIPORT_DEMO_PORT:-8080}
FCGI_PROCS=${PBIPORT_DEMO_FCGI:-2}
BIN=$ROOT/bin/pbiport
MAX_BODY=${PBIPORT_MAX_BODY:-10485760}
STREAM_BODY=268435456
WEB_USER=nobody
WEB_GROUP=nogroup
HEALTH_TIMEOUT_S=20
DEMO_TEAM=analytics
# `stop` waits this long after TERM before KILL: longer than pbiport-pool's own grace
# (PBIPORT_POOL_STOP_GRACE, 10 s), so the pool ends its copies itself first.
DEMO_STOP_WAIT_S=${PBIPORT_DEMO_STOP_WAIT:-15}
# `start --postgres`: the folder of the demo's PostgreSQL cluster (pg_cluster.py start prints it)
PG_DIR_FILE=$DEMO_DIR/run/postgres.dir
[[ $DEMO_STOP_WAIT_S =~ ^[0-9]+$ ]] || { echo "demo: PBIPORT_DEMO_STOP_WAIT must be a number of seconds" >&2; exit 2; }
# Variables the demo defines itself: never carried over from the caller's environment (a sourced
# old demo.env would otherwise hand out stale tokens).
DEMO_OWNED=" PBIPORT_DB PBIPORT_URL PBIPORT_OWNER_TOKEN PBIPORT_MEMBER_TOKEN PBIPORT_OTHER_ORG_TOKEN \
PBIPORT_DEMO_OWNER_PASSWORD PBIPORT_DEMO_MEMBER_PASSWORD PBIPORT_DEMO_DIR PBIPORT_SAMPLE_PORT \
PBIPORT_SAMPLE_WORKSPACE PBIPORT_DEMO_TEAM "

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# ---- processes --------------------------------------------------------------------------------
# A pid file names a process this script started; it only counts while that pid still runs the
# program it was started as (pids are reused).
pid_alive() {  # pid, expected command substring
	local pid=$1 want=$2 cmd
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[ -n "$cmd" ] && [[ $cmd == *"$want"* ]]
}

# Lines: name, pid file, command substring.
components() {
	printf '%s\n' \
		"nginx $DEMO_DIR/nginx/nginx.pid nginx" \
		"fastcgi $DEMO_DIR/run/fcgi.pid pbiport-pool" \
		"worker $DEMO_DIR/run/worker.pid pbiport" \
		"emulator $DEMO_DIR/run/emulator.pid server.py"
}

# Process group of a pid (field 5 of /proc/PID/stat), or nothing.
pgid_of() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
	stat=${stat##*) }
	set -- $stat
	echo "${3:-}"
}

# True while a process of the group runs (zombies do not count).
group_alive() {  # pgid
	local g=$1 stat f
	kill -0 -- "-$g" 2>/dev/null || return 1
	for f in /proc/[0-9]*/stat; do
		read -r stat 2>/dev/null <"$f" || continue
		stat=${stat##*) }
		set -- $stat
		[ "${3:-}" = "$g" ] && [ "$1" != Z ] && return 0
	done
	return 1
}

# TERM to the processes a pid file names, KILL after DEMO_STOP_WAIT_S. Each was started with
# setsid and leads its own process group: whatever it started (the pool's pbiport.fcgi copies)
# is in that group and ends with it, even when the leader is gone and left a busy child behind.
stop_pid_file() {  # pid file, command substring
	local file=$1 want=$2 pid g groups=() left=()
	[ -f "$file" ] || return 0
	while read -r pid; do
		pid_alive "$pid" "$want" || continue
		[ "$(pgid_of "$pid")" = "$pid" ] && groups+=("$pid")
		kill -TERM "$pid" 2>/dev/null || true
		left+=("$pid")
	done <"$file"
	for _ in $(seq 1 $((DEMO_STOP_WAIT_S * 10))); do
		local still=()
		for pid in "${left[@]+"${left[@]}"}"; do
			pid_alive "$pid" "$want" && still+=("$pid")
		done
		for g in "${groups[@]+"${groups[@]}"}"; do
			group_alive "$g" && still+=("-$g")
		done
		[ ${#still[@]} -eq 0 ] && break
		sleep 0.1
	done
	for pid in "${left[@]+"${left[@]}"}"; do
		pid_alive "$pid" "$want" && kill -KILL "$pid" 2>/dev/null || true
	done
	for g in "${groups[@]+"${groups[@]}"}"; do
		if group_alive "$g"; then
			kill -KILL -- "-$g" 2>/dev/null || true
			say "killed what was left of process group $g after ${DEMO_STOP_WAIT_S}s"
		fi
	done
	rm -f "$file"
}

cmd_stop() {
	local name file want
	while read -r name file want; do
		if [ -f "$file" ]; then
			stop_pid_file "$file" "$want"
			say "stopped $name"
		fi
	done < <(components)
	# the PostgreSQL cluster of `start --postgres`, once nothing uses it
	if [ -f "$PG_DIR_FILE" ]; then
		python3 "$ROOT/tests/tools/pg_cluster.py" stop "$(cat "$PG_DIR_FILE")" || true
		rm -f "$PG_DIR_FILE"
		say "stopped postgresql"
	fi
	# the folder under /tmp that make_web_dirs made when the demo folder was out of the workers' reach
	local web
	if [ -L "$DEMO_DIR/nginx" ]; then
		web=$(readlink "$DEMO_DIR/nginx")
		[[ $web == /tmp/pbiport-demo-web.* ]] && rm -rf "$web"
		rm -f "$DEMO_DIR/nginx"
	fi
}

cmd_status() {
	local name file want pid any=1 running
	while read -r name file want; do
		running=()
		if [ -f "$file" ]; then
			while read -r pid; do
				pid_alive "$pid" "$want" && running+=("$pid")
			done <"$file"
		fi
		if [ ${#running[@]} -gt 0 ]; then
			say "$name running (pid ${running[*]})"
			any=0
		else
			say "$name not running"
		fi
	done < <(components)
	if [ -f "$PG_DIR_FILE" ]; then
		pid=$(head -n 1 "$(cat "$PG_DIR_FILE")/data/postmaster.pid" 2>/dev/null || true)
		if pid_alive "$pid" postgres; then say "postgresql running (pid $pid)"; any=0; else say "postgresql not running"; fi
	fi
	if [ $any -eq 0 ] && [ -f "$DEMO_DIR/demo.env" ]; then
		local url
		url=$(sed -n "s/^export PBIPORT_URL='\(.*\)'\$/\1/p" "$DEMO_DIR/demo.env")
		if curl -fsS -m 5 "$url/healthz" >/dev/null 2>&1; then say "$url/healthz answers"; else say "$url/healthz does not answer"; fi
	fi
	return $any
}

# ---- templates --------------------------------------------------------------------------------
# Same rule as tests/integration/harness.py render(): replace @KEY@ outside comment lines, and
# refuse a placeholder left without a value.
render() {  # template, output, KEY=VALUE...
	local tpl=$1 out=$2 kv key val script=""
	shift 2
	for kv in "$@"; do
		key=${kv%%=*}
		val=$(printf '%s' "${kv#*=}" | sed -e 's/[\\|&]/\\&/g')
		script+="/^[[:space:]]*#/!s|@${key}@|${val}|g;"
	done
	sed -e "$script" "$tpl" >"$out"
	if grep -v '^[[:space:]]*#' "$out" | grep -q '@[A-Z][A-Z0-9_]*@'; then
		die "$tpl: placeholder without value: $(grep -v '^[[:space:]]*#' "$out" | grep -o '@[A-Z][A-Z0-9_]*@' | head -1)"
	fi
}

# ---- start ------------------------------------------------------------------------------------
start_emulator() {
	# Hook: the Power BI emulator (tests/emulator/server.py) when it is present and starts.
	local server=$ROOT/tests/emulator/server.py fixture=$ROOT/tests/fixtures/tenants/demo.json url=""
	if [ -n "${PBIPORT_ENTRA_URL:-}" ] && [ -n "${PBIPORT_FABRIC_URL:-}" ] && [ -n "${PBIPORT_POWERBI_URL:-}" ] &&
		[ -n "${PBIPORT_GRAPH_URL:-}" ]; then
		say "PBIPORT_*_URL are set: using that tenant, no emulator"
		return 0
	fi
	[ -f "$server" ] || { say "emulator not present, skipped"; return 0; }
	local args=(--state-dir "$DEMO_DIR/emulator" --port 0)
	[ -f "$fixture" ] && args+=(--fixture "$fixture")
	mkdir -p "$DEMO_DIR/emulator"
	setsid python3 "$server" "${args[@]}" >"$DEMO_DIR/logs/emulator.out" 2>"$DEMO_DIR/logs/emulator.log" </dev/null &
	echo $! >"$DEMO_DIR/run/emulator.pid"
	for _ in $(seq 1 200); do
		[ -s "$DEMO_DIR/emulator/url" ] && { url=$(cat "$DEMO_DIR/emulator/url"); break; }
		kill -0 "$(cat "$DEMO_DIR/run/emulator.pid")" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$url" ]; then
		stop_pid_file "$DEMO_DIR/run/emulator.pid" server.py
		say "emulator did not start (see $DEMO_DIR/logs/emulator.log), skipped"
		return 0
	fi
	EMULATOR_URL=$url
	export PBIPORT_ENTRA_URL=$url/entra PBIPORT_FABRIC_URL=$url/fabric
	export PBIPORT_POWERBI_URL=$url/powerbi PBIPORT_GRAPH_URL=$url/graph
	export PBIPORT_CA_BUNDLE=$DEMO_DIR/emulator/ca.pem
	say "emulator at $url"
	# Power BI sign-in with no set-up: the demo tenant's web app becomes the deployment's
	# sign-in app (the demo org is put in "sso" mode below), and the emulator treats its
	# consented user as signed in, so /powerbi/connect goes straight through.
	local sso=""
	[ -f "$fixture" ] && sso=$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["tenants"][0]
a = t["apps"][0]
print(t["id"], a["client_id"], a["client_secret"], t["users"][0]["upn"])' "$fixture" 2>/dev/null) || sso=""
	if [ -n "$sso" ] && [ -z "${PBIPORT_SSO_CLIENT_ID:-}" ]; then
		local upn
		read -r PBIPORT_SSO_TENANT_ID PBIPORT_SSO_CLIENT_ID PBIPORT_SSO_CLIENT_SECRET upn <<<"$sso"
		export PBIPORT_SSO_TENANT_ID PBIPORT_SSO_CLIENT_ID PBIPORT_SSO_CLIENT_SECRET
		curl -fsS -m 10 --cacert "$DEMO_DIR/emulator/ca.pem" -H 'Content-Type: application/json' \
			-d "{\"signed_in_user\": \"$upn\"}" "$url/_emulator/config" >/dev/null ||
			say "emulator: could not set the signed-in user"
	fi
}

configure_powerbi() {
	# Hook: the demo organization uses the deployment's sign-in app (PBIPORT_SSO_*) for Power BI.
	local url=$1 token=$2 code
	[ -n "${PBIPORT_SSO_CLIENT_ID:-}" ] || return 0
	code=$(curl -sS -o "$DEMO_DIR/logs/powerbi-settings.json" -w '%{http_code}' -m 30 -X PUT \
		-H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		--data '{"mode": "sso"}' "$url/api/settings/powerbi") || code=000
	case $code in
		200) say "Power BI settings: sso mode (try $url/powerbi/connect)" ;;
		*) say "Power BI settings answered $code (see $DEMO_DIR/logs/powerbi-settings.json)" ;;
	esac
}

connect_powerbi() {
	# Hook: the demo owner's Power BI connection, made through the consent flow a browser
	# follows (the emulator signs its demo user in), so a publish works at once.
	local url=$1 token=$2 loc cb code
	[ -n "$EMULATOR_URL" ] && [ -n "${PBIPORT_SSO_CLIENT_ID:-}" ] || return 0
	loc=$(curl -sS -o /dev/null -w '%{redirect_url}' -m 30 -H "Authorization: Bearer $token" \
		"$url/powerbi/connect?return_to=/") || loc=""
	cb=""
	if [ -n "$loc" ]; then
		cb=$(curl -sS -o /dev/null -w '%{redirect_url}' -m 30 --cacert "$DEMO_DIR/emulator/ca.pem" "$loc") || cb=""
	fi
	code=000
	if [ -n "$cb" ]; then
		code=$(curl -sS -o /dev/null -w '%{http_code}' -m 30 -H "Authorization: Bearer $token" "$cb") || code=000
	fi
	case $code in
		302) say "Power BI connected for the owner" ;;
		*) say "connecting Power BI for the owner answered $code (try $url/powerbi/connect)" ;;
	esac
}

start_worker() {
	# Hook: the job worker, once the binary has the `worker` command.
	local commands
	commands=$("$BIN" --help 2>/dev/null || true)
	if [[ $commands != *"pbiport worker"* ]]; then
		say "worker command not in this build, skipped"
		return 0
	fi
	setsid env -i "${APP_ENV[@]}" "$BIN" worker >>"$DEMO_DIR/logs/worker.log" 2>&1 </dev/null &
	echo $! >"$DEMO_DIR/run/worker.pid"
	say "worker started"
}

start_pool() {
	local owner=()
	# As root the nginx workers run as $WEB_USER: they, and only they, may connect to the socket.
	[ "$(id -u)" -eq 0 ] && owner=(-U "$WEB_USER" -G "$WEB_GROUP")
	# spawn-fcgi makes the socket and stays in the foreground (-n) as pbiport-pool, which runs the
	# copies of pbiport.fcgi and keeps their stderr (the request log) in logs/pbiport.log.
	setsid env -i "${APP_ENV[@]}" PBIPORT_FCGI_PROCS="$FCGI_PROCS" \
		spawn-fcgi -n -s "$SOCKET" -M 0600 "${owner[@]}" \
		-- "$ROOT/deploy/systemd/pbiport-pool" "$ROOT/bin/pbiport.fcgi" \
		>>"$DEMO_DIR/logs/pbiport.log" 2>&1 </dev/null &
	echo $! >"$DEMO_DIR/run/fcgi.pid"
	for _ in $(seq 1 100); do
		[ -S "$SOCKET" ] && return 0
		# Just after the fork the child may not have exec'ed yet: only ask whether it exists.
		kill -0 "$(cat "$DEMO_DIR/run/fcgi.pid")" 2>/dev/null || break
		sleep 0.1
	done
	die "the FastCGI pool did not start (see $DEMO_DIR/logs/pbiport.log)"
}

start_nginx() {
	local web=$WEB_DIR user_line=""
	[ "$(id -u)" -eq 0 ] && user_line="user $WEB_USER $WEB_GROUP;"
	render "$ROOT/deploy/nginx/pbiport.conf" "$web/pbiport.conf" \
		"LISTEN=127.0.0.1:$PORT" "SOCKET=$SOCKET" "HTPASSWD=$web/htpasswd" \
		"MAX_BODY=$MAX_BODY" "STREAM_BODY=$STREAM_BODY"
	render "$ROOT/deploy/nginx/nginx.conf" "$web/nginx.conf" \
		"PREFIX=$web" "USER_LINE=$user_line" "DAEMON=on" "WORKERS=auto" "SERVER_CONF=$web/pbiport.conf"
	nginx -p "$web/" -c "$web/nginx.conf" -e "$web/logs/error.log" \
		|| die "nginx did not start (see $web/logs/error.log)"
}

# ---- folders ----------------------------------------------------------------------------------
# The web server's workers (nobody when the demo starts as root) must reach the FastCGI socket, the
# folder nginx keeps request bodies over 1 MiB in, and the password file; everything else in the
# demo folder (database, logs, demo.env) stays private whatever the caller's umask.
reachable_by_web_user() {  # folder
	[ "$(id -u)" -eq 0 ] || return 0
	runuser -u "$WEB_USER" -- test -x "$1" 2>/dev/null
}

mkdir_passable() {  # folder: make it and every missing parent with mode 0711 (searchable, not listable)
	local dir=$1 missing=()
	while [ ! -d "$dir" ]; do
		missing=("$dir" "${missing[@]+"${missing[@]}"}")
		dir=$(dirname "$dir")
	done
	for dir in "${missing[@]+"${missing[@]}"}"; do
		mkdir -m 0711 "$dir"
	done
}

make_web_dirs() {
	mkdir_passable "$DEMO_DIR"
	chmod 0711 "$DEMO_DIR"
	mkdir -p "$DEMO_DIR/db" "$DEMO_DIR/logs"
	mkdir -m 0711 "$DEMO_DIR/run"
	SOCKET=$DEMO_DIR/run/pbiport.sock
	local web=$DEMO_DIR/nginx
	if ! reachable_by_web_user "$DEMO_DIR/run"; then
		# A parent the workers cannot pass (a clone in /root, mode 0700): the parts they need live
		# in a folder of their own under /tmp, which `stop` removes; nginx/ links to it.
		web=$(mktemp -d /tmp/pbiport-demo-web.XXXXXX)
		chmod 0711 "$web"
		ln -s "$web" "$DEMO_DIR/nginx"
		SOCKET=$web/pbiport.sock
		say "$DEMO_DIR is out of reach of the web server's user $WEB_USER: socket and nginx files in $web"
	else
		mkdir -m 0711 "$web"
	fi
	mkdir -m 0700 "$web/logs"
	# nginx makes the folders below tmp/ itself and hands them to its workers' user.
	mkdir -m 0711 "$web/tmp"
	# the real path: the workers must not pass through the demo folder to reach it
	WEB_DIR=$web
}

pbi() { env -i "${APP_ENV[@]}" "$BIN" "$@"; }

new_password() { openssl rand -hex 12; }

# Starts the demo's PostgreSQL cluster and sets PG_URL to its connection string.
start_postgres() {
	local out
	out=$(python3 "$ROOT/tests/tools/pg_cluster.py" start --url) \
		|| die "PostgreSQL could not be started (its server comes from Debian's postgresql package: make deps)"
	printf '%s\n' "$out" | head -n 1 >"$PG_DIR_FILE"
	PG_URL=$(printf '%s\n' "$out" | tail -n 1)
	say "postgresql started in $(cat "$PG_DIR_FILE")"
}

cmd_start() {
	local postgres=0
	case ${1:-} in
		--postgres) postgres=1 ;;
		"") ;;
		*) die "usage: deploy/demo.sh start [--postgres]" ;;
	esac
	command -v nginx >/dev/null && command -v spawn-fcgi >/dev/null && command -v curl >/dev/null \
		|| die "nginx, spawn-fcgi and curl are needed: run make deps"
	[[ $PORT =~ ^[0-9]+$ ]] || die "PBIPORT_DEMO_PORT must be a port number, not '$PORT'"
	if [ -d "$DEMO_DIR" ]; then
		cmd_stop >/dev/null
		rm -rf "$DEMO_DIR"
	fi
	if [ "${PBIPORT_DEMO_BUILD:-1}" != 0 ]; then
		say "building"
		make -s -C "$ROOT" >/dev/null || die "build failed: run make in $ROOT"
	fi
	[ -x "$BIN" ] || die "$BIN missing after make"

	# A start that fails half-way stops what it had started.
	trap 'cmd_stop >/dev/null 2>&1' EXIT
	umask 077
	make_web_dirs

	local db_target=$DEMO_DIR/db/pbiport.db
	if [ $postgres -eq 1 ]; then
		start_postgres
		db_target=$PG_URL
	fi
	local enc_keys=${APPLICATION_ENCRYPTION_KEYS:-$("$BIN" keygen)}
	local remember=${APPLICATION_SECURITY_REMEMBERME_KEY:-$("$BIN" keygen)}
	local url="http://127.0.0.1:$PORT"
	EMULATOR_URL=""
	start_emulator
	local keep=() name
	for name in $(compgen -v PBIPORT_ || true); do
		[[ $DEMO_OWNED == *" $name "* ]] && continue
		keep+=("$name=${!name}")
	done
	[[ " ${keep[*]} " == *" PBIPORT_PUBLIC_URL="* ]] || keep+=("PBIPORT_PUBLIC_URL=$url")
	# webhooks may reach a receiver on this machine (docs/webhooks.md: public addresses only otherwise)
	[[ " ${keep[*]} " == *" PBIPORT_WEBHOOK_ALLOW_HOSTS="* ]] || keep+=("PBIPORT_WEBHOOK_ALLOW_HOSTS=localhost")
	APP_ENV=(
		"PATH=$PATH"
		"PBIPORT_DB=$db_target"
		"APPLICATION_POWERBI_WEB_ENABLED=true"
		"APPLICATION_INGESTIONS_ENABLED=true"
		"APPLICATION_ENCRYPTION_KEYS=$enc_keys"
		"APPLICATION_SECURITY_REMEMBERME_KEY=$remember"
		"${keep[@]}"
	)

	pbi migrate >/dev/null
	pbi org create demo >/dev/null
	pbi org create other >/dev/null
	# one team for both demo users: push connections are shared within a team
	pbi user add owner --org demo --role owner --team "$DEMO_TEAM" >/dev/null
	pbi user add member --org demo --role member --team "$DEMO_TEAM" >/dev/null
	pbi user add outsider --org other --role owner >/dev/null
	local owner_token member_token other_token owner_pw member_pw
	owner_token=$(pbi token create owner)
	member_token=$(pbi token create member)
	other_token=$(pbi token create outsider)
	owner_pw=$(new_password)
	member_pw=$(new_password)
	{
		printf 'owner:%s\n' "$(printf '%s' "$owner_pw" | openssl passwd -apr1 -stdin)"
		printf 'member:%s\n' "$(printf '%s' "$member_pw" | openssl passwd -apr1 -stdin)"
	} >"$WEB_DIR/htpasswd"
	# nginx's workers read it on every request; nobody else needs to.
	[ "$(id -u)" -eq 0 ] && chown "$WEB_USER:$WEB_GROUP" "$WEB_DIR/htpasswd"
	chmod 400 "$WEB_DIR/htpasswd"

	start_pool
	start_worker
	start_nginx
	local ok=1
	for _ in $(seq 1 $((HEALTH_TIMEOUT_S * 10))); do
		curl -fsS -m 2 "$url/healthz" >/dev/null 2>&1 && { ok=0; break; }
		sleep 0.1
	done
	[ $ok -eq 0 ] || die "no answer on $url/healthz (see $DEMO_DIR/logs and $DEMO_DIR/nginx/logs)"

	local sample=$ROOT/examples/contracts/orders.odcs.yaml
	[ -f "$sample" ] || sample=$ROOT/tests/integration/fixtures/orders.odcs.yaml
	local code
	code=$(curl -sS -o "$DEMO_DIR/logs/import.json" -w '%{http_code}' -m 30 \
		-H "Authorization: Bearer $owner_token" -H 'Content-Type: application/yaml' \
		--data-binary "@$sample" "$url/api/data-products") || code=000
	case $code in
		200|201) say "imported ${sample#"$ROOT"/}" ;;
		*) say "importing ${sample#"$ROOT"/} answered $code (see $DEMO_DIR/logs/import.json)" ;;
	esac

	configure_powerbi "$url" "$owner_token"
	connect_powerbi "$url" "$owner_token"
	# What docs/publish.md's two curl calls need: the sample's production port and a workspace
	# where the demo user may publish.
	local sample_port="" sample_ws=""
	sample_port=$(python3 -c 'import json, sys
print([p["id"] for p in json.load(open(sys.argv[1]))["output_ports"] if p["name"] == "production"][0])' \
		"$DEMO_DIR/logs/import.json" 2>/dev/null) || sample_port=""
	[ -z "$EMULATOR_URL" ] || sample_ws=$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["tenants"][0]
u = t["users"][0]["upn"]
print([w["id"] for w in t["workspaces"] if any(r["principal"] == u and r["role"] in ("Admin", "Member", "Contributor")
      for r in w.get("roles", []))][0])' "$ROOT/tests/fixtures/tenants/demo.json" 2>/dev/null) || sample_ws=""

	{
		echo "# pbiport demo: source this file (. $DEMO_DIR/demo.env). It holds the demo's secrets."
		echo "PBIPORT_URL=$url"
		echo "PBIPORT_OWNER_TOKEN=$owner_token"
		echo "PBIPORT_MEMBER_TOKEN=$member_token"
		echo "PBIPORT_OTHER_ORG_TOKEN=$other_token"
		echo "PBIPORT_DEMO_OWNER_PASSWORD=$owner_pw"
		echo "PBIPORT_DEMO_MEMBER_PASSWORD=$member_pw"
		echo "PBIPORT_DEMO_DIR=$DEMO_DIR"
		echo "PBIPORT_DEMO_TEAM=$DEMO_TEAM"
		[ -n "$EMULATOR_URL" ] && echo "EMULATOR_URL=$EMULATOR_URL"
		[ -n "$sample_port" ] && echo "PBIPORT_SAMPLE_PORT=$sample_port"
		[ -n "$sample_ws" ] && echo "PBIPORT_SAMPLE_WORKSPACE=$sample_ws"
		# the emulator's demo tenant: a service principal for imports (admin APIs allowed, Member
		# of every workspace with models) and an Entra user who is only a Viewer somewhere
		[ -z "$EMULATOR_URL" ] || python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["tenants"][0]
sp = t["apps"][1]
print("DEMO_TENANT_ID=" + t["id"])
print("DEMO_SP_CLIENT_ID=" + sp["client_id"])
print("DEMO_SP_CLIENT_SECRET=" + sp["client_secret"])
print("DEMO_USER=" + t["users"][0]["upn"])' "$ROOT/tests/fixtures/tenants/demo.json"
		printf '%s\n' "${APP_ENV[@]:1}"
	} | sed -e "s/'/'\\\\''/g" -e "s/^\([A-Z_][A-Z0-9_]*\)=\(.*\)$/export \1='\2'/" >"$DEMO_DIR/demo.env"
	chmod 600 "$DEMO_DIR/demo.env"
	trap - EXIT

	cat <<EOF

pbiport demo is running at $url  (users: owner, member in org "demo", team "$DEMO_TEAM"; outsider in org "other")

Open $url/ in a browser and sign in as
  owner   password $owner_pw   (organization owner: Settings ▸ Power BI, Settings ▸ Integrations)
  member  password $member_pw   (publishes: Open in ▸ Power BI Web on a data product's port)
The demo's passwords are new on every start. Tokens and keys: $DEMO_DIR/demo.env

Try:
  . $DEMO_DIR/demo.env
  curl -s -H "Authorization: Bearer \$PBIPORT_OWNER_TOKEN" \$PBIPORT_URL/api/data-products
  curl -s -u member:\$PBIPORT_DEMO_MEMBER_PASSWORD \$PBIPORT_URL/api/data-products
  curl -s -H "Authorization: Bearer \$PBIPORT_OTHER_ORG_TOKEN" \$PBIPORT_URL/api/data-products   # other org: empty

Publish the sample port to Power BI (the emulator) and watch the phases: docs/publish.md

Stop it with: deploy/demo.sh stop
EOF
}

case ${1:-} in
	start) shift; cmd_start "$@" ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	*) echo "usage: deploy/demo.sh start [--postgres]|stop|status" >&2; exit 2 ;;
esac
