#!/usr/bin/env python3
"""Checks README.md against the responder's --help, so that the two cannot
drift apart: --help is printed from the option table in fcgi/config.c, the
README is written by hand.

    tests/check_options.py [README [BINARY]]
        (defaults: README.md and fcgi/mjpeg-fcgi beside tests/)

Compared, option by option (README section "The responder", its table):
  - the same options on both sides, and each [server] key is the option's
    name with '_' for '-' (only the options --help names as command-line
    only have none);
  - the default;
  - the range ("1 to 100000"), or the list of values (log levels).
And: every source kind of the README's Sources table, every key of its
[stream NAME] table and every endpoint of its Endpoints table is in --help.

Exit status 0 when they agree, 1 with one line per difference on stderr.
"""
import os
import re
import subprocess
import sys

RANGE = re.compile(r"(-?\d+) to (-?\d+)")


def section(text, title):
    """The lines of a README section, from its heading to the next heading
    of the same or a higher level."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(#+) (.*)", line)
        if m and m.group(2).strip() == title:
            level = len(m.group(1))
            body = []
            for rest in lines[i + 1:]:
                n = re.match(r"(#+) ", rest)
                if n and len(n.group(1)) <= level:
                    break
                body.append(rest)
            return body
    raise SystemExit("check_options: README has no section '%s'" % title)


def first_table(lines, after=None):
    """Rows (lists of cells) of the first table in lines, or of the first
    one after the line that contains `after`."""
    rows, started = [], after is None
    for line in lines:
        if not started:
            started = after in line
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header


def readme_options(text):
    """{option name: (key or None, default, meaning)}"""
    options = {}
    for cells in first_table(section(text, "The responder")):
        names = re.findall(r"`--([a-z][a-z-]*)[^`]*`", cells[0])
        keys = re.findall(r"/ `([^`]+)`", cells[0])
        default = cells[1].replace("`", "").strip()
        for name in names:
            options[name] = (keys[0] if keys else None, default, cells[2])
    return options


def help_options(help_text):
    """{option name: (default or "", values or None)} from --help's option
    lines: the range or values and the default are the last parenthesis
    of each option's text."""
    options, name, block = {}, None, []

    def close():
        if name is None:
            return
        text = " ".join(block)
        default, values = "", None
        m = re.search(r"\(([^()]*)\)$", text)
        if m and ("default " in m.group(1) or " to " in m.group(1) or " or " in m.group(1)):
            parts = m.group(1).split("; ")
            if parts[-1].startswith("default "):
                default = parts.pop()[len("default "):]
            values = parts[0] if parts else None
        options[name] = (default, values)

    for line in help_text.splitlines():
        m = re.match(r"  --([a-z][a-z-]*)(?: \S+)?(?:\s+(.*))?$", line)
        if m:
            close()
            name, block = m.group(1), [m.group(2) or ""]
        elif name is not None and line.startswith(" " * 10):
            block.append(line.strip())
        else:
            close()
            name, block = None, []
    close()
    return options


def compare(readme, help_text):
    problems = []
    ours, theirs = readme_options(readme), help_options(help_text)
    m = re.search(r"Every option but (.*?) is also a key", " ".join(help_text.split()))
    command_only = set(re.findall(r"--([a-z-]+)", m.group(1))) if m else set()
    if not m:
        problems.append("--help no longer says which options are not [server] keys")
    for name in sorted(set(ours) - set(theirs)):
        problems.append("--%s is in README.md but not in --help" % name)
    for name in sorted(set(theirs) - set(ours)):
        problems.append("--%s is in --help but not in README.md's option table" % name)
    for name in sorted(set(ours) & set(theirs)):
        key, default, meaning = ours[name]
        help_default, values = theirs[name]
        want_key = None if name in command_only else name.replace("-", "_")
        if key != want_key:
            problems.append("--%s: README.md gives the key %s, --help implies %s"
                            % (name, key, want_key))
        if default.lower() != help_default.lower():
            problems.append("--%s: default '%s' in README.md, '%s' in --help"
                            % (name, default, help_default))
        if values and RANGE.fullmatch(values):
            found = RANGE.search(meaning)
            if not found or found.group(0) != values:
                problems.append("--%s: range '%s' in --help, '%s' in README.md"
                                % (name, values, found.group(0) if found else "none"))
        elif values:
            names = re.split(r", | or ", values)
            quoted = re.findall(r"`([^`]+)`", meaning)
            if names != quoted[:len(names)]:
                problems.append("--%s: values %s in --help, %s in README.md"
                                % (name, names, quoted))
        elif RANGE.search(meaning):
            problems.append("--%s: README.md gives a range, --help none" % name)
    flat = " ".join(help_text.split())
    for cells in first_table(section(readme, "Sources")):
        for source in re.findall(r"`([^`]+)`", cells[0]):
            if source not in flat:
                problems.append("source %s is in README.md but not in --help" % source)
    for cells in first_table(section(readme, "Config file"), after="A `[stream NAME]` section"):
        for key in re.findall(r"`([a-z_]+)`", cells[0]):
            if not re.search(r"^  %s = " % re.escape(key), help_text, re.M):
                problems.append("stream key %s is in README.md but not in --help" % key)
    for cells in first_table(section(readme, "Endpoints")):
        m = re.match(r"`([A-Z]+) /([^`?]*)(?:\?([^`]*))?`", cells[0])
        if not m or not m.group(2):
            continue  # GET /: the page, served by the web server
        method, path, query = m.groups()
        if not re.search(r"\b%s %s\b" % (method, re.escape(path)), flat):
            problems.append("endpoint %s %s is in README.md but not in --help" % (method, path))
        if query and query not in flat:
            problems.append("?%s of %s is in README.md but not in --help" % (query, path))
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    readme = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "README.md")
    binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "fcgi",
                                                                "mjpeg-fcgi")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    help_text = subprocess.run([binary, "--help"], check=True, capture_output=True,
                               text=True, timeout=30).stdout
    problems = compare(text, help_text)
    for problem in problems:
        print("check_options: %s" % problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
