"""No import cycle anywhere in ``src/hookdiff``: data flows one way through the package.

Every ``import`` counts, at module level or inside a function; imports under
``if TYPE_CHECKING:`` do not (they never run). A package ``__init__`` that only re-exports is
transparent: ``from hookdiff.study import quick_config`` is an edge to the module that defines
``quick_config``, not to the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import that can run (``names`` empty for ``import m``)."""
    out: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _only_reexports(tree: ast.Module) -> bool:
    """A package ``__init__`` with nothing but a docstring, imports and ``__all__``."""
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                continue
        return False
    return True


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the package's modules it imports, with re-exporting ``__init__``s see-through."""
    trees = {
        _module_name(p, root): (p, ast.parse(p.read_text()))
        for p in sorted((root / package).rglob("*.py"))
    }
    packages = {m for m, (p, _) in trees.items() if p.name == "__init__.py"}
    transparent = {m for m in packages if _only_reexports(trees[m][1])}
    origin: dict[tuple[str, str], str] = {}  # (package, name) -> module it re-exports from
    for m in transparent:
        for module, names in _imports(trees[m][1]):
            for name in names:
                origin[(m, name)] = module

    def resolve(module: str, name: str | None) -> str | None:
        for _ in range(20):
            if name is not None and f"{module}.{name}" in trees:
                return f"{module}.{name}"
            if name is not None and (module, name) in origin:
                module = origin[(module, name)]
                continue
            return module if module in trees and module not in transparent else None
        return None

    graph: dict[str, set[str]] = {}
    for m, (_, tree) in trees.items():
        if m in transparent:
            continue
        edges = set()
        for module, names in _imports(tree):
            for name in names or [None]:
                target = resolve(module, name)
                if target is not None and target != m:
                    edges.add(target)
        graph[m] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_hookdiff_has_no_import_cycle():
    cycle = find_cycle(import_graph(SRC, "hookdiff"))
    assert cycle is None, " -> ".join(cycle)


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('from pkg.a import f\n\n__all__ = ["f"]\n')
    (pkg / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text("def g():\n    from pkg import f\n\n    return f\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from pkg.a import f\n"
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == set()
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
