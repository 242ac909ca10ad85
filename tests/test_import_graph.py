"""No import cycle inside the gitjsonl package, counting the imports that run late.

An import cycle makes the order of start-up matter: which module is half-initialised depends
on which one a program happened to import first, and a lazy import that closes a cycle hides
it until the day a code path runs in a new order. So the graph built here counts every import
statement wherever it sits: at module level, inside functions and methods, inside ``try``
blocks. The one exception is an import under ``if TYPE_CHECKING:``: it never runs, so it is
not an edge (its ``else:`` branch does run, and counts).

A package ``__init__`` that re-exports its names lazily through a ``_HOMES`` table (PEP 562,
``gitjsonl/__init__.py`` and ``gitjsonl/testing/__init__.py``) imports each home on first use,
so the table's entries are edges too: a submodule that took a public name from its package
instead of from the module defining it would close a cycle through the table.

Relative imports are resolved as Python does: ``from . import _x`` is the submodule ``_x``
when there is one (otherwise a name of the package), ``from ._x import y`` is ``_x`` and also
``_x.y`` when that is a submodule.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gitjsonl"

Graph = Mapping[str, Iterable[str]]

#: Cycles that can only be broken in a file someone else is rewriting at the moment, each with
#: why. An entry here is reported by the test; remove it once the cycle is gone.
KNOWN: dict[frozenset[str], str] = {}


def module_names(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package by its own name)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` that can run: all but ``if TYPE_CHECKING:`` bodies."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.orelse:
            yield from _runtime_imports(child)
        return
    for child in ast.iter_child_nodes(node):
        yield from _runtime_imports(child)


def _lazy_table(tree: ast.Module) -> list[str]:
    """The relative module names of a module-level ``_HOMES = {name: module}`` table."""
    homes = []
    for statement in tree.body:
        target = None
        if isinstance(statement, ast.AnnAssign):
            target, value = statement.target, statement.value
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        if isinstance(target, ast.Name) and target.id == "_HOMES" and isinstance(value, ast.Dict):
            homes += [v.value for v in value.values if isinstance(v, ast.Constant)]
    return homes


def _resolve(package: str, level: int, module: str | None) -> str:
    """The absolute name of ``from {'.' * level}{module} import ...`` written in ``package``."""
    if level == 0:
        return module or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _targets(node: ast.Import | ast.ImportFrom, package: str, known: set[str]) -> set[str]:
    """The modules one import statement names, as written (``package`` holds the importer)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = _resolve(package, node.level, node.module)
    submodules = {f"{base}.{alias.name}" for alias in node.names} & known
    if len(submodules) == len(node.names):
        return submodules  # ``from . import _x, _y``: submodules only (the package is running)
    return {base} | submodules  # a name of ``base`` (which may be a lazy-table lookup)


def imports_of(source: str, name: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """The modules among ``known`` that the module ``name`` (whose text is ``source``) imports."""
    known = set(known)
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(source)
    named: set[str] = set()
    for node in _runtime_imports(tree):
        named |= _targets(node, package, known)
    if is_package:
        named |= {_resolve(package, 1, home.lstrip(".")) for home in _lazy_table(tree)}
    # Importing ``a.b.c`` runs ``a`` and ``a.b`` first. The importer's own parents are already
    # running (every submodule has them), so they are edges only when named outright.
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    parents = {
        ".".join(module.split(".")[:i]) for module in named for i in range(1, module.count(".") + 1)
    }
    return (named | (parents - own)) & known


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """The runtime import graph of the package under ``root``: module -> modules it imports."""
    modules = module_names(root)
    return {
        name: imports_of(path.read_text(), name, path.name == "__init__.py", modules)
        for name, path in modules.items()
    }


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """Each import cycle as a component of two or more modules, or one importing itself."""
    return [
        component
        for component in strongly_connected(graph)
        if len(component) > 1 or component[0] in graph.get(component[0], ())
    ]


def cycle_path(graph: Graph, component: Iterable[str], start: str) -> list[str]:
    """A shortest closed walk from ``start`` back to it inside the component: ``a, b, c, a``."""
    members = set(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is on no cycle in {sorted(members)}")


def describe(graph: Graph, found: Iterable[Iterable[str]]) -> str:
    """Each component's cycles as ``a -> b -> c -> a`` lines: a shortest one through each module.

    A component may hold several cycles; listing one through every module shows each import
    that has to go (breaking one cycle may leave another).
    """
    lines = []
    for component in found:
        seen: set[frozenset[str]] = set()
        for start in sorted(component):
            path = cycle_path(graph, component, start)
            edges = frozenset(itertools.pairwise(path))
            if edges not in seen:
                seen.add(edges)
                lines.append(" -> ".join(path))
    return "\n".join(lines)


class TestTheCycleFinder:
    GRAPH: dict[str, set[str]] = {  # noqa: RUF012
        "a": {"b"},
        "b": {"c", "d"},
        "c": {"a"},
        "d": {"e"},
        "e": set(),
        "f": {"f"},
        "g": {"e"},
    }

    def test_it_finds_a_three_module_cycle_and_a_self_import(self) -> None:
        assert cycles(self.GRAPH) == [["a", "b", "c"], ["f"]]

    def test_it_prints_each_cycle_as_a_path(self) -> None:
        assert describe(self.GRAPH, cycles(self.GRAPH)) == "a -> b -> c -> a\nf -> f"

    def test_each_cycle_of_a_component_is_printed(self) -> None:
        graph = {"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}
        assert describe(graph, cycles(graph)) == "a -> b -> a\nc -> a -> c"

    def test_a_graph_without_cycles_has_none(self) -> None:
        acyclic = {node: children - {"a", "f"} for node, children in self.GRAPH.items()}
        assert cycles(acyclic) == []

    def test_a_long_chain_needs_no_recursion(self) -> None:
        chain = {str(i): {str(i + 1)} for i in range(5000)}
        chain["5000"] = {"0"}
        assert [len(component) for component in cycles(chain)] == [5001]


KNOWN_MODULES = {"p", "p.a", "p.b", "p.c", "p.sub", "p.sub.d"}


class TestTheGraphBuilder:
    def test_an_import_inside_a_function_is_an_edge(self) -> None:
        source = "def f() -> None:\n    from .b import thing\n    thing()\n"
        assert imports_of(source, "p.a", False, KNOWN_MODULES) == {"p.b"}

    def test_an_import_inside_a_method_and_a_try_is_an_edge(self) -> None:
        source = (
            "class K:\n"
            "    def m(self) -> None:\n"
            "        try:\n"
            "            import p.c\n"
            "        except ImportError:\n"
            "            from p import b\n"
        )
        assert imports_of(source, "p.a", False, KNOWN_MODULES) == {"p.b", "p.c"}

    def test_an_import_for_type_checkers_is_no_edge_but_its_else_is(self) -> None:
        source = (
            "import typing\n"
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from .b import B\n"
            "else:\n"
            "    from .c import C\n"
            "if typing.TYPE_CHECKING:\n"
            "    from . import sub\n"
        )
        assert imports_of(source, "p.a", False, KNOWN_MODULES) == {"p.c"}

    def test_relative_imports_resolve_to_submodules_or_the_package(self) -> None:
        source = "from . import b\nfrom .. import c\nfrom ..a import name\n"
        assert imports_of(source, "p.sub.d", False, KNOWN_MODULES) == {"p.sub", "p.c", "p.a"}
        names = "from . import a_name_of_p\nfrom .sub import d\n"
        assert imports_of(names, "p.a", False, KNOWN_MODULES) == {"p", "p.sub", "p.sub.d"}

    def test_a_package_imports_its_lazy_table(self) -> None:
        source = '_HOMES: dict[str, str] = {"Thing": ".a", "Other": ".sub.d"}\n'
        assert imports_of(source, "p", True, KNOWN_MODULES) == {"p.a", "p.sub", "p.sub.d"}

    def test_a_self_import_is_an_edge(self) -> None:
        assert imports_of("import p.a\n", "p.a", False, KNOWN_MODULES) == {"p.a"}

    def test_it_sees_the_whole_package(self) -> None:
        graph = import_graph()
        assert {"gitjsonl", "gitjsonl._migrate.run", "gitjsonl.testing._hub"} <= set(graph)
        assert "gitjsonl._config" in graph["gitjsonl"]  # through the lazy table


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    known = [component for component in found if frozenset(component) in KNOWN]
    new = [component for component in found if frozenset(component) not in KNOWN]
    for component in known:
        print(f"known cycle: {describe(graph, [component])} ({KNOWN[frozenset(component)]})")
    stale = [sorted(cycle) for cycle in KNOWN if sorted(cycle) not in found]
    assert not new, "import cycles:\n" + describe(graph, new)
    assert not stale, f"KNOWN lists cycles that are gone, remove them: {stale}"
