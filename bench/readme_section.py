"""Writes one benchmark's section of bench/README.md, for every bench/<name>/run.* script.

A section is its text from "<!-- NAME:begin -->" to "<!-- NAME:end -->" (the section carries both
markers): the one in the README is replaced, or the section is added at the end.
From Python: readme_section.write("tmdl", section). From a shell script:
    printf '%s\n' "$section" | python3 bench/readme_section.py pages
"""
import os
import re
import sys

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")


def write(name, section, path=README):
    section = section.rstrip("\n") + "\n"
    text = "# Benchmarks\n"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    pattern = re.compile(r"<!-- %s:begin -->.*?<!-- %s:end -->\n?" % (re.escape(name), re.escape(name)), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda m: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/readme_section.py NAME < section")
    write(sys.argv[1], sys.stdin.read())
