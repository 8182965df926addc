"""The layout rules of docs/architecture.md §1, read from the source: no import circles (module- or
function-level), no imports of another module's underscore names, the foundations import nothing from
the flow, and ``io`` imports nothing above the foundations."""

from __future__ import annotations

import ast
from pathlib import Path

import sciSR

ROOT = Path(sciSR.__file__).parent
FOUNDATIONS = {"sciSR.image", "sciSR.geometry", "sciSR.blocks", "sciSR.errors", "sciSR.intensity", "sciSR.padding",
               "sciSR.flux", "sciSR.paging", "sciSR.tempfiles", "sciSR.progress", "sciSR.version"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _owner(name: str) -> str:
    """The module a dotted import name lives in (``sciSR.io.read`` → ``sciSR.io``)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> list[tuple[str, str]]:
    """``(imported module, imported name)`` for every sciSR import in ``module``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sciSR":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((full if full in MODULES else _owner(node.module), alias.name))
        elif isinstance(node, ast.Import):
            found += [(_owner(a.name), "") for a in node.names if a.name.split(".")[0] == "sciSR"]
    return found


def _graph() -> dict[str, set[str]]:
    # A package importing its own submodules (re-exports) is how packages work, not a circle.
    return {m: {t for t, _ in _imports(m) if t != m and not t.startswith(m + ".")} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_at_any_level():
    assert _cycles(_graph()) == []


def test_no_imports_of_private_names_across_modules():
    private = [f"{m}: {t}.{name}" for m in MODULES for t, name in _imports(m)
               if name.startswith("_") and not name.startswith("__") and _owner(t) != m]
    assert private == []


def test_foundations_and_io_import_nothing_above_them():
    graph = _graph()
    for module in FOUNDATIONS:
        assert graph[module] <= FOUNDATIONS, module
    for module in [m for m in MODULES if m == "sciSR.io" or m.startswith("sciSR.io.")]:
        above = {t for t in graph[module] if t not in FOUNDATIONS and not t.startswith("sciSR.io")}
        assert above == set(), module


def test_the_checks_see_a_circle_and_a_private_import():
    # The detector itself: a made-up graph with a function-level circle is found.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert ("sciSR.pipeline", "UpscaleRequest") in _imports("sciSR.api")
