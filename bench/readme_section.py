#!/usr/bin/env python3
"""One benchmark's section of bench/README.md: the text between `<!-- NAME:begin -->` and
`<!-- NAME:end -->`, replaced in place (or appended when the file has none yet), so each
benchmark rewrites only its own part.

From Python:  import readme_section; readme_section.write("name", body); readme_section.machine()
From a shell: python3 bench/readme_section.py NAME < body.md
The body is the section's text without the two marker lines."""
import datetime
import os
import platform
import re
import sys

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")


def machine(load_before=None):
    """The "Machine: ..." line every section carries: cores, platform, time, load average."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = load_before or " ".join(open("/proc/loadavg").read().split()[:3])
    return "Machine: %d cores, %s; run on %s; load average before the run %s." % (
        os.cpu_count(), platform.platform(), now, load)


def write(name, body, path=README):
    """Replaces (or appends) the section NAME of path with body; returns the whole section."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError("section name %r: lower-case letters, digits and _ only" % name)
    begin, end = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    section = "%s\n%s\n%s" % (begin, body.strip("\n"), end)
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return section


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: readme_section.py NAME < body.md")
    print(write(sys.argv[1], sys.stdin.read()))
