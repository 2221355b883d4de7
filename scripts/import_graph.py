"""durio's module import graph, and the cycles in it.

    python scripts/import_graph.py [--ignore-type-checking] [--package DIR]

Reads every module of the package with `ast` (nothing is imported) and draws an edge for each
import of another module of the package, of one of three kinds:

- `module`: at the top of a module (also inside try/except or a plain `if`), run on import;
- `function`: inside a function body, run when the function first runs (a deferred import);
- `type-checking`: under `if TYPE_CHECKING:`, never run, but a dependency all the same: the layering of
  issue 15 counts it, and mypy and a reader follow it.

It prints each strongly connected component of more than one module (a set of modules each of which
reaches all the others, so every edge between two of them lies on a cycle) with those edges as
file:line, and exits 1 if there is any, 0 otherwise. `--ignore-type-checking` leaves the TYPE_CHECKING
edges out, to see the graph as the interpreter runs it.

`from package import name` is an edge to `package.name` when that is a module, else to `package`.
Importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`; those implicit edges to parent
packages are left out (as import-linter leaves them out): they would put every package's `__init__`
in a cycle with any of its submodules that it imports.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import sys
import typing
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
KINDS = ("module", "function", "type-checking")


@dataclass(frozen=True, order=True)
class Edge:
    importer: str
    imported: str
    path: str  # relative to the repository root
    line: int
    kind: str  # one of KINDS


def module_names(package_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name; a package is its `__init__.py`."""
    modules: dict[str, pathlib.Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _ImportCollector(ast.NodeVisitor):
    """The imports of one module, each with its line and the context it runs in."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str, list[str], int, str]] = []  # (line, module, names, level, kind)
        self._in_function = 0
        self._in_type_checking = 0

    def _kind(self) -> str:
        if self._in_type_checking:
            return "type-checking"
        return "function" if self._in_function else "module"

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self._in_type_checking += 1
        for statement in node.body:
            self.visit(statement)
        self._in_type_checking -= 1
        for statement in node.orelse:  # the `else:` of TYPE_CHECKING runs
            self.visit(statement)

    def _visit_function(self, node: ast.AST) -> None:
        self._in_function += 1
        self.generic_visit(node)
        self._in_function -= 1

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function
    visit_Lambda = _visit_function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((node.lineno, alias.name, [], 0, self._kind()))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        names = [alias.name for alias in node.names]
        self.found.append((node.lineno, node.module or "", names, node.level, self._kind()))


def _absolute(importer: str, is_package: bool, module: str, level: int) -> str:
    if level == 0:
        return module
    base = importer.split(".")
    if not is_package:
        base.pop()
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _deepest_known(name: str, modules: typing.Container[str]) -> str | None:
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_edges(package_dir: pathlib.Path) -> list[Edge]:
    modules = module_names(package_dir)
    edges: set[Edge] = set()
    for importer, path in modules.items():
        collector = _ImportCollector()
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        shown_path = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        for line, module, names, level, kind in collector.found:
            base = _absolute(importer, path.name == "__init__.py", module, level)
            targets = [f"{base}.{name}" if f"{base}.{name}" in modules else base for name in names] or [base]
            for target in targets:
                imported = _deepest_known(target, modules)
                if imported is not None and imported != importer:
                    edges.add(Edge(importer, imported, shown_path, line, kind))
    return sorted(edges)


def strongly_connected(nodes: typing.Iterable[str], edges: typing.Iterable[Edge]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (no recursion limit to worry about)."""
    successors: dict[str, set[str]] = {node: set() for node in nodes}
    for edge in edges:
        successors.setdefault(edge.importer, set()).add(edge.imported)
        successors.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(successors):
        if root in index:
            continue
        work = [(root, iter(sorted(successors[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(successors[child]))))
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
                components.append(sorted(component))
    return components


def cycles(package_dir: pathlib.Path, ignore_type_checking: bool = False) -> list[tuple[list[str], list[Edge]]]:
    """Each component of more than one module, with the edges between its modules."""
    edges = [edge for edge in import_edges(package_dir) if not (ignore_type_checking and edge.kind == "type-checking")]
    found = []
    for component in strongly_connected(module_names(package_dir), edges):
        if len(component) > 1:
            members = set(component)
            found.append((component, [edge for edge in edges if edge.importer in members and edge.imported in members]))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the import cycles among a package's modules; exit 1 if any.")
    parser.add_argument(
        "--ignore-type-checking", action="store_true", help="leave out imports under `if TYPE_CHECKING:` (the graph as it runs)"
    )
    parser.add_argument("--package", type=pathlib.Path, default=ROOT / "durio", help="the package directory (default: durio/)")
    args = parser.parse_args(argv)
    package_dir = args.package.resolve()
    if not (package_dir / "__init__.py").is_file():
        parser.error(f"{args.package} is not a package directory (no __init__.py)")
    edges = import_edges(package_dir)
    found = cycles(package_dir, args.ignore_type_checking)
    counted = "runtime imports only" if args.ignore_type_checking else "TYPE_CHECKING imports included"
    print(f"{len(module_names(package_dir))} modules, {len(edges)} import edges ({counted})")
    if not found:
        print("no import cycles")
        return 0
    for number, (component, cycle_edges) in enumerate(found, 1):
        print(f"\ncycle {number}: {len(component)} modules: {', '.join(component)}")
        for edge in cycle_edges:
            print(f"  {edge.importer} -> {edge.imported}  [{edge.kind}]  {edge.path}:{edge.line}")
    print(f"\n{len(found)} import cycle(s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
