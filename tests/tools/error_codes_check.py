#!/usr/bin/env python3
"""Checks the error codes against their one table (core/flow/error_codes.c):
1. every code the C source answers or ends a job with is a row of the table;
2. docs/errors.md holds exactly what `pbiport error-codes` prints.
Usage: error_codes_check.py PBIPORT_BIN   (run from the repository root; exit 1 naming each problem)"""
import re
import subprocess
import sys
from pathlib import Path

from check_report import report

# Places where a user-facing code is written as a literal.
PATTERNS = [
    r'\breq_fail\(\s*\w+\s*,\s*[\w-]+\s*,\s*"([a-z0-9_]+)"',
    r'\bpb_fail(?:_as)?\(\s*[^,]+,\s*[\w-]+\s*,\s*"([a-z0-9_]+)"',
    r'\bms_fail_as\(\s*[^,]+,\s*[^,]+,\s*"([a-z0-9_]+)"',
    r'\bjob_fail\(\s*\w+\s*,\s*"([a-z0-9_]+)"',
    r'\bjob_(?:wait|retry_later)\(\s*\w+\s*,\s*[^,]+,\s*"([a-z0-9_]+)"',
    r'\breq_reply_error\(\s*\w+\s*,\s*[^,]+,\s*"([a-z0-9_]+)"',
    r'\bjobs_(?:finish|retry|defer)[a-z_]*\([^;]*?"([a-z0-9_]+)"\s*,\s*(?:msg|"|ctx|message)',
]


def table_codes():
    text = Path("core/flow/error_codes.c").read_text()
    return set(re.findall(r'^\t\{ "([a-z0-9_]+)",', text, re.M))


def used_codes():
    found = {}
    for path in sorted(Path(".").glob("*/**/*.c")):
        if path.parts[0] in ("tests", "bench", "build", "build-asan", "build-fuzz"):
            continue
        text = path.read_text(errors="replace")
        for pat in PATTERNS:
            for m in re.finditer(pat, text, re.S):
                line = text.count("\n", 0, m.start()) + 1
                found.setdefault(m.group(1), []).append("%s:%d" % (path, line))
    return found


def main():
    problems = []
    table = table_codes()
    for code, places in sorted(used_codes().items()):
        if code not in table:
            problems.append("code %r is used but not in core/flow/error_codes.c (%s)" % (code, ", ".join(places[:3])))
    printed = subprocess.run([sys.argv[1], "error-codes"], capture_output=True, text=True, check=True).stdout
    page = Path("docs/errors.md").read_text()
    m = re.search(r"<!-- generated: pbiport error-codes -->\n(.*)<!-- end generated -->", page, re.S)
    if not m:
        problems.append("docs/errors.md has no generated block")
    elif m.group(1) != printed:
        problems.append("docs/errors.md is not what `pbiport error-codes` prints: regenerate it")
    return report(problems, "%d codes in the table, %d problems" % (len(table), len(problems)))


if __name__ == "__main__":
    sys.exit(main())
