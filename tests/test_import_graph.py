"""The package's imports run one way: no module imports another that imports it back.

The graph is read with ``ast``: an import inside a function counts (a lazy import only hides a
cycle); only the body of ``if TYPE_CHECKING:`` is exempt, since it never runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ttapi_async

ROOT = Path(ttapi_async.__file__).parent
PACKAGE = "ttapi_async"


def module_name(path: Path) -> str:
    """Return the dotted name of a module file inside the package."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Yield every import that can run, skipping ``if TYPE_CHECKING:`` bodies."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _known(name: str, modules: set[str]) -> str | None:
    """Return the package module that ``name`` refers to (itself or its nearest parent)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """Map each module of the package to the package modules it imports at run time."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(module, is_package, node)
                # "from . import x" may name a submodule or a name in the package.
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                if not target.startswith(PACKAGE):
                    continue
                found = _known(target, modules)
                if found is not None and found != module:
                    graph[module].add(found)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Return the components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _is_package_init(module: str) -> bool:
    return (ROOT.parent / module.replace(".", "/") / "__init__.py").exists()


def cycles() -> list[set[str]]:
    """Return the import cycles, ignoring a package's ``__init__`` re-exporting its children.

    ``ttapi_async/batch/__init__.py`` importing ``batch._runner`` while ``_runner`` imports
    ``batch._journal`` is a cycle only through the package object: Python imports the
    package first, and the children never need its names. An edge from a child to its own
    package ``__init__`` is a real cycle and still counts.
    """
    graph = import_graph()
    pruned = {
        m: {t for t in targets if not (_is_package_init(m) and t.startswith(m + "."))}
        for m, targets in graph.items()
    }
    return _strongly_connected(pruned)


def test_the_graph_sees_lazy_imports(tmp_path: Path) -> None:
    """An import inside a function counts, and one under ``if TYPE_CHECKING:`` does not."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ttapi_async import _a\n"
        "def f():\n    from ttapi_async import _b\n"
    )
    names = [n.names[0].name for n in _runtime_imports(tree) if isinstance(n, ast.ImportFrom)]
    assert names == ["TYPE_CHECKING", "_b"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    """Tarjan's search reports a two-module cycle and nothing for a chain."""
    assert _strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [{"a", "b"}]
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles() -> None:
    """No module of the package takes part in an import cycle."""
    assert cycles() == []
