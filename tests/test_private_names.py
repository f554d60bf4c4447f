"""The job and its watcher meet through public names only: no module reads another's privates.

Read with ``ast``: a class's private names are those its body defines (methods, class
attributes, ``__slots__``) and those its methods assign on ``self``. A module of the
job/watcher layer touches only the underscore attributes a class of its own module defines
(on another object than ``self``, only those no other layer module defines too), and imports
no underscore name from another module; no other module touches an underscore attribute
that only the layer's classes define.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ttapi_async

ROOT = Path(ttapi_async.__file__).parent

#: The job/watcher layer: the job handle, its watch entry, the watcher and its helpers.
LAYER = frozenset(
    f"ttapi_async.{name}"
    for name in (
        "_dispatch",
        "_dueheap",
        "_job",
        "_joberrors",
        "_jobhost",
        "_kinds",
        "_nextpoll",
        "_ratecap",
        "_watchentry",
        "_watcher",
    )
)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def class_privates(tree: ast.AST) -> set[str]:
    """Return the private attribute names the classes of one module define."""
    found: set[str] = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for stmt in cls.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.add(stmt.name)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                found.add(stmt.target.id)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if not isinstance(target, ast.Name):
                        continue
                    if target.id == "__slots__" and isinstance(stmt.value, ast.Tuple | ast.List):
                        found.update(
                            e.value
                            for e in stmt.value.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        )
                    found.add(target.id)
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and _is_self(node.value)
            ):
                found.add(node.attr)
    return {name for name in found if _private(name)}


def _parse_package() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in ROOT.rglob("*.py")}


def violations(trees: dict[str, ast.Module], layer: frozenset[str]) -> list[str]:
    """Return each access to another module's private name that the rules forbid."""
    owners: dict[str, set[str]] = defaultdict(set)
    for module, tree in trees.items():
        for name in class_privates(tree):
            owners[name].add(module)
    found = []
    for module, tree in sorted(trees.items()):
        in_layer = module in layer
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and in_layer and node.module:
                for alias in node.names:
                    if _private(alias.name) and not _is_submodule(node, alias.name):
                        found.append(f"{module}:{node.lineno} imports {alias.name}")
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            others = owners.get(node.attr, set()) - {module}
            own = module in owners.get(node.attr, set())
            if in_layer:
                # A name the module defines too is still another layer module's when the
                # receiver is not self (the watcher's ``job._kind`` beside its own ``_kind``).
                bad = bool(others) and (
                    not own or (not _is_self(node.value) and bool(others & layer))
                )
            else:
                bad = not own and bool(others) and others <= layer
            if bad:
                found.append(f"{module}:{node.lineno} .{node.attr} of {sorted(others)}")
    return found


def _is_submodule(node: ast.ImportFrom, name: str) -> bool:
    # "from . import _errors" names a module of the package, not a private name in one.
    if node.level > 0 and node.module is None:
        return True
    return any(ROOT.rglob(f"{name}.py"))


def test_the_checker_catches_a_reach_into_another_modules_privates() -> None:
    """An access to a private slot of another module's class is reported, one to self's is not."""
    trees = {
        "pkg.owner": ast.parse(
            "class Job:\n    __slots__ = ('_due',)\n"
            "    def later(self):\n        self._due = 1.0\n        return self._due\n"
        ),
        "pkg.user": ast.parse("def poll(job):\n    return job._due\n"),
        "pkg.outside": ast.parse("def peek(job):\n    return job._due\n"),
    }
    found = violations(trees, frozenset({"pkg.owner", "pkg.user"}))
    assert found == [
        "pkg.outside:2 ._due of ['pkg.owner']",
        "pkg.user:2 ._due of ['pkg.owner']",
    ]


def test_the_checker_catches_a_private_import() -> None:
    """Importing an underscore name from another module of the layer is reported."""
    trees = {"pkg.user": ast.parse("from .owner import _Failure\nfrom . import _errors\n")}
    assert violations(trees, frozenset({"pkg.user"})) == ["pkg.user:1 imports _Failure"]


def test_job_and_watcher_touch_no_private_names_of_other_modules() -> None:
    """No module of the job/watcher layer reaches into another module, nor any module into it."""
    assert violations(_parse_package(), LAYER) == []
