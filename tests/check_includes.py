#!/usr/bin/env python3
"""Checks the include structure of fcgi/: no cycle between modules, and the
small library at the bottom depends on nothing above it.

A module is a .c/.h pair named alike (bus.c and bus.h are the module bus).
Module A depends on module B when A's .c or .h includes "B.h". A header
with no .c of its own (bus_layout.h, server_state.h) is a private part of
the modules that include it, not a module: what it includes counts as
included by each of them. A cycle (config -> http -> config) means neither
can be read, tested or linked without the other; the check fails naming
every cycle it finds.

    tests/check_includes.py [DIR]      (DIR defaults to fcgi/ beside tests/)

Exit status 0 when clean, 1 with one line per problem on stderr.
"""
import os
import re
import sys

# The library at the bottom: these modules may include only each other
# (and system headers), never a module above them.
LIBRARY = {"clock", "log", "record", "multipart", "parse", "mjpeg_splitter",
           "mjpeg_reader"}

# Cycles that exist today and are being taken apart elsewhere, each as the
# sorted set of its modules.  A listed cycle that no longer exists is an
# error too, so that this list only ever shrinks.  None is left.
KNOWN_CYCLES = []

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)


def read_graph(directory):
    """{module: {module it includes}} over every .c and .h in directory,
    with each header-only file's includes folded into its includers."""
    files, modules = {}, set()
    for name in sorted(os.listdir(directory)):
        base, ext = os.path.splitext(name)
        if ext not in (".c", ".h"):
            continue
        if ext == ".c":
            modules.add(base)
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            files.setdefault(base, set()).update(INCLUDE.findall(f.read()))

    def reached(base, seen):
        """The modules BASE includes, through header-only files."""
        deps = set()
        for included in files.get(base, ()):
            if included in modules or included not in files:
                deps.add(included)
            elif included not in seen:
                seen.add(included)
                deps |= reached(included, seen)
        return deps

    graph = {}
    for base in files:
        if base in modules:
            graph[base] = reached(base, {base}) - {base}
    for deps in list(graph.values()):
        for dep in deps:
            graph.setdefault(dep, set())
    return graph


def strongly_connected(graph):
    """Tarjan's algorithm: the components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(component)

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_path(graph, component):
    start = min(component)
    # breadth-first from start back to start: the shortest cycle through it
    parents, queue = {start: None}, [start]
    while queue:
        node = queue.pop(0)
        for dep in sorted(graph[node] & component):
            if dep == start:
                path = [node]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return list(reversed(path)) + [start]
            if dep not in parents:
                parents[dep] = node
                queue.append(dep)
    return sorted(component)


def check(directory):
    graph = read_graph(directory)
    problems = []
    components = strongly_connected(graph)
    for component in components:
        if component in KNOWN_CYCLES:
            continue
        problems.append("include cycle between modules: %s (all of: %s)"
                        % (" -> ".join(cycle_path(graph, component)),
                           ", ".join(sorted(component))))
    for known in KNOWN_CYCLES:
        if not any(known <= component for component in components):
            problems.append("the known cycle %s is gone: remove it from KNOWN_CYCLES in %s"
                            % (", ".join(sorted(known)), os.path.relpath(__file__)))
    for module in sorted(LIBRARY & set(graph)):
        for dep in sorted(graph[module] - LIBRARY):
            problems.append("library module %s includes %s.h, a module above the library"
                            % (module, dep))
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fcgi")
    problems = check(directory)
    for problem in problems:
        print("check_includes: %s" % problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
