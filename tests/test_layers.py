"""The code's shape: no import circles inside an app, and no import hidden in a function to dodge one.

The layers between apps are import-linter's contract (pyproject.toml, `lint-imports` in .ci/run);
this file checks what a layers contract cannot: circles among one app's own modules, and imports
tucked into functions. Both read the import graph grimp builds from the source, so they need no
database.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("canonical", "connectors", "hub", "reconciliation")
FIRST_PARTY = (*PACKAGES, "celery_app")

# Function-level imports of our own code must be there for a reason other than a circle, stated
# beside the entry. AppConfig.ready() is allowed everywhere: Django wants registrations made there,
# once every app's models are loaded.
ALLOWED_IN_FUNCTIONS: set[tuple[str, str]] = set()  # (file, top-level package): add one only with its reason


def _app(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] in ("hub", "connectors") and len(parts) > 1 else parts[0]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False, exclude_type_checking_imports=True)


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_inside_an_app(graph):
    edges = {
        module: {
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if imported != module and _app(imported) == _app(module)
        }
        for module in graph.modules
    }
    assert _circles(edges) == []


def _function_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, enclosing function, module) of every first-party import inside a function."""
    found = []
    for func in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] in (*FIRST_PARTY, "celery"):
                    found.append((node.lineno, func.name, name))
    return found


def test_no_first_party_import_hides_in_a_function():
    hidden = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            for line, func, module in _function_imports(path):
                if func == "ready" and path.name == "apps.py":
                    continue
                if (relative, module.split(".")[0]) in ALLOWED_IN_FUNCTIONS:
                    continue
                hidden.append(f"{relative}:{line} {func}() imports {module}")
    assert hidden == [], "import at module level (or move the code to the layer it belongs in)"
