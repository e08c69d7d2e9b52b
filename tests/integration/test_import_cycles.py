"""No import cycles between the package's modules, counting imports inside functions.

An AST walk over ``src/napari_structn2v``: every ``import`` / ``from ... import`` of the package's own
modules, at module level or in a function, is an edge; only imports under ``if TYPE_CHECKING:`` are
left out (they never run). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
else to ``pkg``. A submodule does not import its package merely by being in it (Python runs the
parent's ``__init__`` first, whatever the child imports), so an ``__init__`` may import its children;
a child's ``from . import name`` of a name defined in that ``__init__`` is an edge, though.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "napari_structn2v"
SRC = Path(__file__).resolve().parents[2] / "src" / PACKAGE


def module_names(root: Path = SRC) -> dict[str, Path]:
    """``{dotted module name: file}`` of every ``.py`` file under ``root`` (``__init__`` is its package)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, anywhere, except those in the body of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that module ``name`` (file ``path``) imports."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
            continue
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target != PACKAGE and not target.startswith(PACKAGE + "."):
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            found.add(sub if sub in modules else target)
    found.discard(name)
    return found


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """``{module: the package's modules it imports}``."""
    names = module_names(root)
    return {name: imported_modules(name, path, set(names)) for name, path in names.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle (``[a, b, ..., a]``) through each strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan; the package has ~100 modules, far from the recursion limit
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for group in groups:
        start = min(group)
        # breadth-first from start back to start within the group
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & group):
                    if w == start:
                        cycle = [*paths[v], start]
                        break
                    if w not in paths:
                        paths[w] = [*paths[v], w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        found.append(cycle)
    return found


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 30  # the walk found the package
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # a function-level import closes a circle as much as a top-level one
        ({"a.py": "from . import b\n", "b.py": "def f():\n    from .a import x\n"}, 1),
        # absolute imports and subpackages; `from pkg import module` is an edge to the module
        ({"p/__init__.py": "", "p/c.py": "import napari_structn2v.d\n",
          "d.py": "from napari_structn2v.p import c\n"}, 1),
        # TYPE_CHECKING imports never run
        ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
          "b.py": "from .a import x\n"}, 0),
        # a package may import its own submodules, which import names from siblings
        ({"p/__init__.py": "from .c import main\n", "p/c.py": "from ._x import log\n", "p/_x.py": ""}, 0),
        # ... but not names from the package itself while it imports them
        ({"p/__init__.py": "def main():\n    from . import c\n", "p/c.py": "from . import log\n"}, 1),
    ],
)
def test_the_cycle_check_sees_cycles(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "__init__.py").write_text("")
    assert len(cycles(import_graph(tmp_path))) == expected
