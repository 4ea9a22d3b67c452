"""Writes one benchmark's section of bench/README.md: the text between <!-- NAME:begin --> and
<!-- NAME:end -->, replaced where it stands or appended. Python 3 standard library only."""
import os
import re

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")


def write_section(name, section, readme=README):
    """section: the full text, markers included."""
    begin, end = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    text = open(readme).read() if os.path.exists(readme) else "# Benchmarks\n"
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda m: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(readme, "w") as f:
        f.write(text)
