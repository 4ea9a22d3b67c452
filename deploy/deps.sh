#!/usr/bin/env bash
# Installs every Debian package pbiport builds, tests and demos with. Idempotent.
set -euo pipefail
PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  libfcgi-dev liblua5.4-dev libsqlite3-dev libjansson-dev libcurl4-openssl-dev libssl-dev
  libyaml-dev libutf8proc-dev libcmocka-dev libgraphviz-dev libpq-dev
  nginx-light lighttpd apache2 spawn-fcgi
  python3 openssl curl sqlite3 wrk procps jq
  postgresql
  chromium chromium-driver python3-selenium fonts-noto-color-emoji
)
# axe-core (the accessibility checker the browser tests run in each page) comes from npm into a
# folder the tests read (ignored by git); without the registry the browser tests say SKIP for it.
AXE_DIR=tests/browser/node_modules_dir
install_axe() {
  cd "$(dirname "$0")/.."
  [ -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ] && return 0
  if command -v npm >/dev/null 2>&1; then
    npm install --silent --no-audit --no-fund --prefix "$AXE_DIR" axe-core@4 >/dev/null 2>&1 \
      && echo "deps: axe-core installed in $AXE_DIR" \
      || echo "deps: axe-core could not be installed from npm (browser tests skip the accessibility check)"
  fi
}
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all packages present"
  install_axe
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged web servers and PostgreSQL start system services on install; pbiport starts its
# own (tests and the demo run throwaway clusters: tests/tools/pg_cluster.py).
for svc in nginx lighttpd apache2 postgresql; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "deps: installed ${missing[*]}"
install_axe
