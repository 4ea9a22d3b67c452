#!/usr/bin/env python3
"""Checks the layer rules of the architecture (ARCHITECTURE.md, docs/CONTRIBUTING.md) by the
#include lines of every C file, and that no SQL statement is written outside its layers:

  handlers/    includes only handlers/, core/ and runtime/     (thin: parse, authorize, call core)
  core/        never includes handlers/ or cli/
  core/store/  never includes core/flow/                       (a store asks no flow)
  core/lang/   never includes core/store/ or core/flow/        (the languages know no tables)
  msapi/       includes only msapi/ and runtime/               (Microsoft, and nothing of pbiport)
  runtime/     includes only runtime/                          (the platform knows no Power BI)
  cli/         includes only cli/, core/, runtime/ and handlers/handlers.h (the route table it serves)
  handlers/, msapi/: no SQL text (SELECT ... / INSERT INTO / UPDATE ... SET / DELETE FROM)
  a database engine's library (sqlite3_*, <sqlite3.h>; PQ*, <libpq-fe.h>) is named only by its
  driver, runtime/db_sqlite.c or runtime/db_pg.c: everything else goes through runtime/db.h
  (also checked in tests/unit/ and bench/)

Usage: layers_check.py [ROOT]  (default: the repository holding this file). Prints each violation
as file:line and what it breaks; exit 1 when there is any."""
import re
import sys
from pathlib import Path

from check_report import report

# (folder, allowed include prefixes or None, forbidden include prefixes)
RULES = [
    ("handlers/", ("handlers/", "core/", "runtime/"), ()),
    ("core/store/", None, ("core/flow/",)),
    ("core/lang/", None, ("core/store/", "core/flow/")),
    ("core/", None, ("handlers/", "cli/")),
    ("msapi/", ("msapi/", "runtime/"), ()),
    ("runtime/", ("runtime/",), ()),
    ("cli/", ("cli/", "core/", "runtime/", "handlers/handlers.h"), ()),
]
SQL_FREE = ("handlers/", "msapi/")
# (what names an engine's library, the one file that may)
ENGINES = [
    (re.compile(r'<sqlite3\.h>|\bsqlite3(_\w+)?\b|\bSQLITE_[A-Z_]+\b'), "runtime/db_sqlite.c"),
    (re.compile(r'<libpq-fe\.h>|\bPQ[a-z]\w*\s*\(|\bPG(conn|result)\b'), "runtime/db_pg.c"),
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# A C string literal (no newline inside); SQL statements begin like this in one.
STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
SQL = re.compile(r'^\s*(SELECT\s+\S|INSERT\s+INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b|'
                 r'REPLACE\s+INTO\b|CREATE\s+(TABLE|INDEX)\b|DROP\s+TABLE\b)')


def strip_comments(text):
    """The text with /* */ and // comments blanked (line numbers kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text[i] == '"':
            m = STRING.match(text, i)
            j = m.end() if m else i + 1
            out.append(text[i:j])
            i = j
        elif text[i] == "'":
            m = re.match(r"'(?:[^'\\\n]|\\.)*'", text[i:])
            j = i + (m.end() if m else 1)
            out.append(text[i:j])
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def engine_problems(rel, lineno, line):
    """The engine library names line uses outside that engine's driver (string literals aside)."""
    code = STRING.sub('""', line)
    return ["%s:%d: names \"%s\": only %s talks to that engine; use runtime/db.h" % (rel, lineno, m.group(0), driver)
            for pattern, driver in ENGINES if rel != driver for m in pattern.finditer(code)]


def rule_for(rel):
    """The first rule whose folder holds rel (the most specific ones come first)."""
    return [r for r in RULES if rel.startswith(r[0])]


def check_file(root, path):
    rel = path.relative_to(root).as_posix()
    text = strip_comments(path.read_text(errors="replace"))
    problems = []
    rules = rule_for(rel)
    for lineno, line in enumerate(text.split("\n"), 1):
        m = INCLUDE.match(line)
        if m:
            target = m.group(1)
            for folder, allowed, forbidden in rules:
                if allowed is not None and not any(target.startswith(a) for a in allowed):
                    problems.append("%s:%d: includes \"%s\": %s may include only %s" %
                                    (rel, lineno, target, folder, ", ".join(allowed)))
                elif any(target.startswith(f) for f in forbidden):
                    problems.append("%s:%d: includes \"%s\": %s must not include %s" %
                                    (rel, lineno, target, folder, ", ".join(forbidden)))
        problems += engine_problems(rel, lineno, line)
        if rel.startswith(SQL_FREE):
            for s in STRING.finditer(line):
                if SQL.match(s.group(1)):
                    problems.append("%s:%d: SQL statement \"%.40s\": no SQL in %s (only the store that owns "
                                    "the table)" % (rel, lineno, s.group(1).strip(), rel.split("/")[0] + "/"))
    return problems


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    files = sorted(p for top in ("handlers", "core", "msapi", "runtime", "cli", "tests/unit", "bench")
                   for p in (root / top).rglob("*") if p.suffix in (".c", ".h"))
    problems = [p for f in files for p in check_file(root, f)]
    return report(problems, "%d files checked, %d layer violations" % (len(files), len(problems)))


if __name__ == "__main__":
    sys.exit(main())
