#!/usr/bin/env bash
# Web pages, in-process (bench/pages/pages_bench.c): server time of GET /, GET /data-products/{id},
# GET /assets/{id}, the Power BI modal GET /output-ports/{id}/power-bi and a publish job's page
# GET /jobs/{id} for the demo's data against the JSON API reads of the same data, the lineage picture
# GET /lineage.svg apart (with Graphviz's share), the part of the product page no template can take
# away measured alone (a fresh sandbox; an empty document; the page's element count of constant
# spans), and the page weight. BENCH_ITERATIONS (default 2000) requests of each. Writes the "pages" section of
# bench/README.md (BENCH_README=0 leaves it alone).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/completion.sh
. bench/completion.sh
make -s build/libpbiport.a
mkdir -p build/bench
gv="$(pkg-config --variable=libdir libgvc)/graphviz"   # Graphviz's dot layout, linked in as by the Makefile
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -I. $(pkg-config --cflags lua5.4) \
  -o build/bench/pages_bench bench/pages/pages_bench.c build/libpbiport.a \
  $(pkg-config --libs lua5.4 sqlite3 jansson libcurl openssl yaml-0.1 libutf8proc libgvc libcgraph libpq) -lfcgi \
  -L"$gv" -Wl,-rpath,"$gv" -lgvplugin_dot_layout -lm -lpthread
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
load=$(cut -d' ' -f1-3 /proc/loadavg)
# pages_bench stops at the first answer other than 200; each of its 11 requests is a row
status=0
rows=$(build/bench/pages_bench "$dir" "${BENCH_ITERATIONS:-2000}" 2>"$dir/err") || status=$?
[ "$status" -eq 0 ] || bench_fail pages "pages_bench exited $status ($(tail -n 1 "$dir/err"))"
n=$(grep -c '^| \(page\|API\|picture\) `GET ' <<<"$rows" || true)
[ "$n" -eq 11 ] || bench_fail pages "pages_bench reported $n of its 11 requests"
grep -q "no template can take away" <<<"$rows" || bench_fail pages "pages_bench did not report the page's fixed part"
section=$(cat <<MD
<!-- pages:begin -->
## pages

Reproduce: \`bench/pages/run.sh\` (BENCH_ITERATIONS=${BENCH_ITERATIONS:-2000} requests of each, after 20 to warm up).
In-process: each request goes through \`pb_handle\` as the FastCGI loop runs it (route, identity, read
transaction, handler, the Lua page template in a fresh sandbox, response text), as the demo's member, on the
demo's data (examples/contracts/*.yaml imported as \`deploy/demo.sh\` imports them). The Power BI modal is
measured for a member who has not connected Power BI yet: its own work (port, product, default name,
settings, the member's connection), since a connected member's modal waits on Microsoft for the workspaces
and connections (the emulator answers those in 40-130 ms through nginx). The job page shows a publish
that went through its five phases. The baseline is the JSON API
read of the same data, measured in the same run. Times are the thread's CPU time (the machine's 2 cores are
shared with other work, which moves wall time more than the work a request does); wall p50 beside it.

Machine: $(nproc) cores, $(uname -sr); commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/README.md' || echo ' with changes not committed'); run on $(date -u '+%Y-%m-%d %H:%M') UTC; load average before the run $load, after $(cut -d' ' -f1-3 /proc/loadavg).

$rows
<!-- pages:end -->
MD
)
echo "$section"
if [ "${BENCH_README:-1}" != 0 ]; then
  printf '%s\n' "$section" | python3 bench/readme_section.py pages
fi
