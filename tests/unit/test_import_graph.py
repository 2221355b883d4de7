"""scripts/import_graph.py on a small package written for the test: which imports it sees, and which cycles."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import textwrap
import types

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "import_graph.py"


@pytest.fixture(scope="module")
def import_graph() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script defines them
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def write_package(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    package = root / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return package


def test_each_kind_of_import_is_an_edge_of_its_kind(import_graph: types.ModuleType, tmp_path: pathlib.Path) -> None:
    package = write_package(
        tmp_path,
        {
            "a.py": """\
            import typing
            from pkg import b
            if typing.TYPE_CHECKING:
                from pkg.sub import c
            else:
                import pkg.sub.d

            def later():
                from . import e
        """,
            "b.py": "",
            "e.py": "",
            "sub/__init__.py": "",
            "sub/c.py": "from .. import b\n",
            "sub/d.py": "",
        },
    )
    edges = {(edge.importer, edge.imported, edge.kind, edge.line) for edge in import_graph.import_edges(package)}
    assert edges == {
        ("pkg.a", "pkg.b", "module", 2),
        ("pkg.a", "pkg.sub.c", "type-checking", 4),
        ("pkg.a", "pkg.sub.d", "module", 6),
        ("pkg.a", "pkg.e", "function", 9),
        ("pkg.sub.c", "pkg.b", "module", 1),
    }


def test_a_cycle_through_type_checking_is_reported_with_its_edges_and_fails(
    import_graph: types.ModuleType,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = write_package(
        tmp_path,
        {
            "router.py": "from pkg import runtime_mod\n",
            "runtime_mod.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.router import Router\n",
            "leaf.py": "from pkg import router\n",
        },
    )
    assert import_graph.main(["--package", str(package)]) == 1
    output = capsys.readouterr().out
    assert "cycle 1: 2 modules: pkg.router, pkg.runtime_mod" in output
    assert "pkg.runtime_mod -> pkg.router  [type-checking]" in output and "runtime_mod.py:3" in output
    assert "pkg.leaf" not in output.split("cycle 1")[1], "a module that only reaches the cycle is not in it"
    assert import_graph.main(["--package", str(package), "--ignore-type-checking"]) == 0
    assert "no import cycles" in capsys.readouterr().out


def test_a_cycle_through_a_function_level_import_counts(import_graph: types.ModuleType, tmp_path: pathlib.Path) -> None:
    package = write_package(
        tmp_path,
        {
            "a.py": "from pkg import b\n",
            "b.py": "def f():\n    import pkg.c\n",
            "c.py": "from pkg.a import x\n",
        },
    )
    ((component, edges),) = import_graph.cycles(package, ignore_type_checking=True)
    assert component == ["pkg.a", "pkg.b", "pkg.c"]
    assert [(edge.importer, edge.kind) for edge in edges] == [("pkg.a", "module"), ("pkg.b", "function"), ("pkg.c", "module")]


def test_a_package_without_cycles_passes(import_graph: types.ModuleType, tmp_path: pathlib.Path) -> None:
    package = write_package(tmp_path, {"a.py": "from pkg import b\n", "b.py": "import os\n"})
    assert import_graph.cycles(package) == []
    assert import_graph.main(["--package", str(package)]) == 0
