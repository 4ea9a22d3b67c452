#!/usr/bin/env bash
# The layer rules of the architecture, by #include lines and SQL text (tests/tools/layers_check.py):
# the source tree keeps them, and a tree that breaks each rule is refused naming file:line
# (TAP output).
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib/tap.sh
CHECK=tests/tools/layers_check.py

python3 "$CHECK" >"$tmp/out" 2>&1; rc=$?
check "the source tree keeps every layer rule" '[ $rc -eq 0 ] && grep -q " 0 layer violations" "$tmp/out"'
check "handlers include no msapi (issue 13 item 4)" '! grep -n "#include \"msapi" handlers/*.c handlers/*.h'

# a tree with one violation of each rule
t="$tmp/tree"
mkdir -p "$t/handlers" "$t/core/store" "$t/core/lang" "$t/core/flow" "$t/msapi" "$t/runtime" "$t/cli"
cat >"$t/handlers/bad.c" <<'C'
#include <stdio.h>
#include "core/flow/publish.h"
/* #include "msapi/commented.h" is only a comment */
#include "msapi/fabric.h"
static const char *q = "SELECT id FROM users WHERE name = ?";
static const char *word = "select a workspace";   /* a message, not SQL */
C
cat >"$t/msapi/bad.c" <<'C'
#include "runtime/util.h"
#include "core/store/catalog.h"
static const char *q =
	"UPDATE jobs SET state = 'failed'";
C
printf '#include "core/flow/worker.h"\n' >"$t/core/store/bad.h"
printf '#include "runtime/db.h"\n#include "core/store/catalog.h"\n' >"$t/core/lang/bad.c"
printf '#include "handlers/handlers.h"\n' >"$t/core/flow/bad.c"
printf '#include "runtime/util.h"\n#include "msapi/msapi.h"\n' >"$t/runtime/bad.c"
printf '#include "handlers/handlers.h"\n#include "msapi/entra.h"\n' >"$t/cli/bad.c"
python3 "$CHECK" "$t" >"$tmp/out" 2>&1; rc=$?
check "a broken tree fails" '[ $rc -eq 1 ] && grep -q " 9 layer violations" "$tmp/out"'
check "handlers -> msapi named with file:line" 'grep -q "^FAIL handlers/bad.c:4: includes \"msapi/fabric.h\"" "$tmp/out"'
check "SQL in a handler named, a message that only looks like it is not" 'grep -q "^FAIL handlers/bad.c:5: SQL statement" "$tmp/out" && ! grep -q "handlers/bad.c:6" "$tmp/out"'
check "a commented include is not one" '! grep -q "handlers/bad.c:3" "$tmp/out"'
check "SQL in msapi named" 'grep -q "^FAIL msapi/bad.c:4: SQL statement \"UPDATE jobs" "$tmp/out"'
check "msapi -> core named" 'grep -q "^FAIL msapi/bad.c:2: includes \"core/store/catalog.h\"" "$tmp/out"'
check "store -> flow named" 'grep -q "^FAIL core/store/bad.h:1: includes \"core/flow/worker.h\"" "$tmp/out"'
check "lang -> store named" 'grep -q "^FAIL core/lang/bad.c:2: includes \"core/store/catalog.h\"" "$tmp/out"'
check "core -> handlers named" 'grep -q "^FAIL core/flow/bad.c:1: includes \"handlers/handlers.h\"" "$tmp/out"'
check "runtime -> msapi named" 'grep -q "^FAIL runtime/bad.c:2: includes \"msapi/msapi.h\"" "$tmp/out"'
check "cli -> msapi named; cli -> the route table allowed" 'grep -q "^FAIL cli/bad.c:2: includes \"msapi/entra.h\"" "$tmp/out" && ! grep -q "cli/bad.c:1" "$tmp/out"'

# a database engine's library named outside its driver (issue 17: every store goes through runtime/db.h)
e="$tmp/engines"
mkdir -p "$e/core/store" "$e/runtime" "$e/tests/unit"
cat >"$e/core/store/bad.c" <<'C'
#include <sqlite3.h>
static int n(sqlite3_stmt *st) { return sqlite3_column_int(st, 0) == SQLITE_OK; }
static const char *why = "sqlite3 in a message is fine";
static void *r(void *c) { return PQexec(c, "SELECT 1"); }
C
printf '#include <sqlite3.h>\nint f(sqlite3 *h) { return sqlite3_changes(h); }\n' >"$e/runtime/db_sqlite.c"
printf '#include <libpq-fe.h>\n' >"$e/runtime/db_pg.c"
printf '#include <libpq-fe.h>\n' >"$e/tests/unit/test_bad.c"
python3 "$CHECK" "$e" >"$tmp/out" 2>&1; rc=$?
check "sqlite3_* outside runtime/db_sqlite.c named" '[ $rc -eq 1 ] && grep -q "^FAIL core/store/bad.c:1: names \"<sqlite3.h>\"" "$tmp/out" && grep -q "^FAIL core/store/bad.c:2: names \"sqlite3_column_int\"" "$tmp/out"'
check "PQ* outside runtime/db_pg.c named, in unit tests too" 'grep -q "^FAIL core/store/bad.c:4: names \"PQexec(\"" "$tmp/out" && grep -q "^FAIL tests/unit/test_bad.c:1" "$tmp/out"'
check "the drivers and a message may name their engine" '! grep -q "^FAIL runtime/" "$tmp/out" && ! grep -q "core/store/bad.c:3" "$tmp/out"'

tap_done
