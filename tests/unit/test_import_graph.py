"""The import graph of common, papers and reproduce: no circles, and the layers point one way.

Every module is parsed with ``ast`` (nothing is imported). An import anywhere in a module counts, inside a function
too: a deferred import hides a circle from Python's loader but not from the reader, who still has two files that
each need the other. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
Layers: ``common`` imports neither ``papers`` nor ``reproduce``; ``papers`` does not import ``reproduce``; a paper
(``papers.<name>``) imports no other paper.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "papers", "reproduce")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The first-party modules ``name`` imports, at any depth of its code."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in candidates:
            while target and target not in known:  # ``import a.b.c`` of a non-module attribute: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer_violation(source: str, target: str) -> str | None:
    """Why ``source`` may not import ``target``, or None."""
    top_s, top_t = source.split(".")[0], target.split(".")[0]
    if top_s == "common" and top_t in ("papers", "reproduce"):
        return "common imports a higher layer"
    if top_s == "papers" and top_t == "reproduce":
        return "papers imports reproduce"
    if top_s == top_t == "papers":
        paper_s, paper_t = source.split(".")[1:2], target.split(".")[1:2]
        if paper_s and paper_t and paper_s != paper_t:
            return "a paper imports another paper"
    return None


def test_the_scan_sees_the_packages_and_their_imports() -> None:
    """Guard against a scan that finds nothing (a wrong root or a resolver that drops every edge)."""
    graph = _graph()
    assert len(graph) > 100
    assert "common.optim.validation" in graph["papers.soap.optim"]
    assert "common.kernels.dispatch" in graph["common.optim.base"]


def test_there_are_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def test_the_layers_point_one_way() -> None:
    graph = _graph()
    bad = sorted(f"{s} -> {t}: {why}" for s, targets in graph.items() for t in targets
                 if (why := _layer_violation(s, t)) is not None)
    assert bad == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected


@pytest.mark.parametrize(("source", "target", "bad"), [
    ("common.optim.base", "papers.soap.optim", True),
    ("common.kernels.spam", "reproduce.run", True),
    ("papers.soap.optim", "reproduce.registry", True),
    ("papers.soap.optim", "papers.sophia.optim", True),
    ("papers.soap.shampoo", "papers.soap.optim", False),
    ("papers", "papers.soap", False),
    ("reproduce.run", "papers.soap", False),
    ("papers.soap.optim", "common.optim.base", False),
])
def test_the_layer_rule(source: str, target: str, bad: bool) -> None:
    assert (_layer_violation(source, target) is not None) == bad
