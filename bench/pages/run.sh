#!/usr/bin/env bash
# Web pages, in-process (bench/pages/pages_bench.c): server time of GET /, GET /data-products/{id},
# GET /assets/{id}, the Power BI modal GET /output-ports/{id}/power-bi and a publish job's page
# GET /jobs/{id} for the demo's data against the JSON API reads of the same data, the lineage picture
# GET /lineage.svg apart (with Graphviz's share), the part of the product page no template can take
# away measured alone (a fresh sandbox; an empty document; the page's element count of constant
# spans), and the page weight. BENCH_ITERATIONS (default 2000) requests of each. Writes the "pages" section of
# bench/README.md (BENCH_README=0 leaves it alone).
# BENCH_BASE_DIR: a checkout of an earlier commit, built (its build/libpbiport.a): this
# pages_bench.c linked against it runs in turns with this tree's (A B A B, BENCH_ROUNDS, default
# 2); the product page's figures and fixed part of each turn go into the section (before and
# after in one run; the tables are this tree's first run).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/completion.sh
. bench/completion.sh
make -s build/libpbiport.a
mkdir -p build/bench
gv="$(pkg-config --variable=libdir libgvc)/graphviz"   # Graphviz's dot layout, linked in as by the Makefile
# build_bench OUT LIBRARY: pages_bench.c linked against LIBRARY
build_bench() {
  # shellcheck disable=SC2046
  cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -I. $(pkg-config --cflags lua5.4) \
    -o "$1" bench/pages/pages_bench.c "$2" \
    $(pkg-config --libs lua5.4 sqlite3 jansson libcurl openssl yaml-0.1 libutf8proc libgvc libcgraph libpq) -lfcgi \
    -L"$gv" -Wl,-rpath,"$gv" -lgvplugin_dot_layout -lm -lpthread
}
build_bench build/bench/pages_bench build/libpbiport.a
here=$PWD
[ -z "${BENCH_BASE_DIR:-}" ] || build_bench build/bench/pages_bench_base "$BENCH_BASE_DIR/build/libpbiport.a"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
load=$(cut -d' ' -f1-3 /proc/loadavg)
# run_bench BINARY REPO: one run from REPO (the templates, contracts and migrations it reads); checks
# it completed: pages_bench stops at the first answer other than 200; each of its 12 requests is a row
run_bench() {
  local out status=0 n
  rm -rf "$dir/run" && mkdir "$dir/run"
  out=$(cd "$2" && "$here/$1" "$dir/run" "${BENCH_ITERATIONS:-2000}" 2>"$dir/err") || status=$?
  [ "$status" -eq 0 ] || bench_fail pages "pages_bench ($2) exited $status ($(tail -n 1 "$dir/err"))"
  n=$(grep -c '^| \(page\|API\|picture\) `GET ' <<<"$out" || true)
  [ "$n" -eq 12 ] || bench_fail pages "pages_bench ($2) reported $n of its 12 requests"
  grep -q "no template can take away" <<<"$out" || bench_fail pages "pages_bench ($2) did not report the page's fixed part"
  printf '%s\n' "$out"
}
# fixed_part LABEL: the figure after LABEL in the fixed-part line on stdin
fixed_part() { grep -o "$1[0-9.]*" | head -n 1 | sed "s/^$1//"; }
rows=$(run_bench build/bench/pages_bench "$here")
turns=""
if [ -n "${BENCH_BASE_DIR:-}" ]; then
  base_commit=$(git -C "$BENCH_BASE_DIR" rev-parse --short HEAD)
  for round in $(seq "${BENCH_ROUNDS:-2}"); do
    for side in base this; do
      if [ $side = base ]; then out=$(run_bench build/bench/pages_bench_base "$BENCH_BASE_DIR")
      else out=$(run_bench build/bench/pages_bench "$here"); fi
      label="after ($(git rev-parse --short HEAD))"
      [ $side = this ] || label="before ($base_commit)"
      # shellcheck disable=SC2016 # the backquotes are the row's Markdown
      page=$(grep '^| page `GET /data-products/{id}` (' <<<"$out" | cut -d'|' -f3-4 | sed 's/ *| */ \/ /; s/^ *//; s/ *$//')
      rendered=$(grep '^| page `GET /data-products/{id}` rendered' <<<"$out" | cut -d'|' -f3 | sed 's/^ *//; s/ *$//')
      turns+="- round $round, $label: product page $page ms CPU p50 / p99, rendered $rendered ms p50; a fresh sandbox"
      turns+=" $(fixed_part 'created and freed, ' <<<"$out") us, an empty document"
      turns+=" $(fixed_part 'empty document in it ' <<<"$out") us, the page's element count of constant spans"
      turns+=" $(fixed_part 'constant text each) ' <<<"$out") us"$'\n'
    done
  done
fi
section=$(cat <<MD
<!-- pages:begin -->
## pages

Reproduce: \`bench/pages/run.sh\` (BENCH_ITERATIONS=${BENCH_ITERATIONS:-2000} requests of each, after 20 to warm up).
In-process: each request goes through \`pb_handle\` as the FastCGI loop runs it (route, identity, read
transaction, handler, the Lua page template in a fresh sandbox or the page the process kept, response text), as the demo's member, on the
demo's data (examples/contracts/*.yaml imported as \`deploy/demo.sh\` imports them). The Power BI modal is
measured for a member who has not connected Power BI yet: its own work (port, product, default name,
settings, the member's connection), since a connected member's modal waits on Microsoft for the workspaces
and connections (the emulator answers those in 40-130 ms through nginx). The job page shows a publish
that went through its five phases. The baseline is the JSON API
read of the same data, measured in the same run. Times are the thread's CPU time (the machine's 2 cores are
shared with other work, which moves wall time more than the work a request does); wall p50 beside it.

Machine: $(nproc) cores, $(uname -sr); commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/README.md' || echo ' with changes not committed'); run on $(date -u '+%Y-%m-%d %H:%M') UTC; load average before the run $load, after $(cut -d' ' -f1-3 /proc/loadavg).

$rows
${turns:+
Before and after in turns in this run (BENCH_BASE_DIR, the same pages_bench.c linked against each build), load average after the turns $(cut -d' ' -f1-3 /proc/loadavg):

$turns}
<!-- pages:end -->
MD
)
echo "$section"
if [ "${BENCH_README:-1}" != 0 ]; then
  printf '%s\n' "$section" | python3 bench/readme_section.py pages
fi
