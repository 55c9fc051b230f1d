#!/usr/bin/env python3
"""The import graph of the aezoo package, from the source (every import,
module-level or inside a function), and its cycles.

    python scripts/import_graph.py          # JSON: {"modules": {...: [imports]}, "cycles": [...]}

tests/test_imports.py asserts that there are no cycles.
"""

import ast
import json
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aezoo"


def module_name(path, package=PACKAGE):
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def graph(package=PACKAGE):
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            found = []
            if isinstance(node, ast.Import):  # `import aezoo.x` uses aezoo.x; `import aezoo` uses the package API
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from aezoo.pkg import x`: x (a submodule) or pkg itself; the parent package
                # only runs its __init__ on the way, which is not a use of it
                found = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] == "aezoo":
                    targets.add(target)
        edges[name] = sorted(targets)
    return edges


def cycles(edges):
    """Every elementary cycle found by DFS (each reported once, rotated to start at its least name)."""
    found, state = set(), {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):]
                i = cycle.index(min(cycle))
                found.add(tuple(cycle[i:] + cycle[:i]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return sorted(list(c) for c in found)


if __name__ == "__main__":
    edges = graph()
    json.dump({"modules": edges, "cycles": cycles(edges)}, sys.stdout, indent=2)
    print()
