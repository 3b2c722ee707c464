"""The package's shape: data flows one way along the pipeline, and nothing dodges a cycle.

The import graph is read from the source with ``ast`` (nothing is imported to build it).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "symbp"

LAYERS = [
    ("symbp.version", "symbp.errors"),
    ("symbp.provenance", "symbp.files", "symbp.limits", "symbp.resources", "symbp.loader"),
    ("symbp.ir",),
    ("symbp.front",),
    ("symbp.lower",),
    ("symbp.ad",),
    ("symbp.derivation",),
    ("symbp.analysis",),
    ("symbp.emit",),
    ("symbp.notebook", "symbp.train", "symbp.dask"),
    ("symbp.cli", "symbp.__main__", "symbp"),
]
"""The pipeline from the bottom: a module may import from its own layer and those below."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """symbp modules imported at module level, and (line, module) of those imported in a
    function or class body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    nested: list[tuple[int, str]] = []
    type_checking = {
        id(n)
        for node in tree.body
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    module_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("symbp"):
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("symbp")]
        found = {n for n in names if n in MODULES}
        found = {max((n for n in found if n.startswith(f)), key=len) for f in found} & found
        if not found or id(node) in type_checking:
            continue
        if id(node) in module_level:
            top |= found
        else:
            nested += [(node.lineno, n) for n in sorted(found)]
    return top, nested


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def layer(name: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members if m != "symbp"):
            return index
    assert name == "symbp", name
    return len(LAYERS) - 1


def test_every_module_has_a_layer():
    for name in MODULES:
        layer(name)


def test_no_import_cycles():
    edges = {name: top for name, (top, _) in GRAPH.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)


def test_data_flows_one_way():
    upward = [
        f"{name} imports {target}"
        for name, (top, _) in GRAPH.items()
        for target in top
        if layer(target) > layer(name)
    ]
    assert not upward, upward


def test_no_imports_inside_functions():
    """Every dependency is stated at the top of its module (none hides to dodge a cycle)."""
    nested = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name, (_, inner) in GRAPH.items()
        for line, target in inner
    ]
    assert not nested, nested


def test_the_checker_sees_a_cycle(tmp_path):
    """The graph reader finds imports at both levels (a test that could fail)."""
    source = tmp_path / "m.py"
    source.write_text(
        "from symbp.ir.ops import OPS\n\ndef f():\n    from symbp.ir.program import Program\n"
    )
    top, nested = imports(source)
    assert top == {"symbp.ir.ops"}
    assert nested == [(4, "symbp.ir.program")]
