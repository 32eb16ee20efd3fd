"""The package's import structure: every module imports on its own, and the module
import graph has no cycles.

The graph counts every ``import`` statement of a module (top level and inside functions: a
lazy import only hides a cycle until the function runs), those under ``if TYPE_CHECKING:``,
and package modules named in strings (``importlib.import_module``, ``"module:attr"``
registries); an import of ``pkg.sub`` is an edge to ``pkg.sub`` (the implicit import of the
parent package, which every submodule has, is not counted).
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gammastar

SRC = Path(gammastar.__file__).resolve().parent.parent

# Cycles tolerated (none: processor/select share the pure chunk modules of gammastar.selection, the report
# orders stages by rundir.STAGE_ORDER); an entry whose cycle is gone must be removed
# (test_known_cycles_are_still_there then fails as a reminder).
KNOWN_CYCLES: set[frozenset[str]] = set()


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name → file."""
    out = {}
    for p in sorted((SRC / "gammastar").rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imported_modules(
    name: str, path: Path, known: dict[str, Path], *, typing: bool = True
) -> set[str]:
    """The package modules that module ``name`` (file ``path``) imports anywhere in its code:
    ``import`` statements (inside functions too), ``importlib.import_module`` or registry
    strings that name a package module (``"gammastar.reach.stats"``,
    ``"gammastar.reach.stats:METHODS"``), and, with ``typing``, the imports under
    ``if TYPE_CHECKING:`` (a type annotation is a dependency too: what it names must exist
    below)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child) and not typing:
                for c in child.orelse:
                    visit(c)
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names if a.name in known)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join(parts + ([child.module] if child.module else []))
                for a in child.names:
                    if f"{base}.{a.name}" in known:  # a submodule
                        out.add(f"{base}.{a.name}")
                    elif base in known:
                        out.add(base)
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                # a module named in a string: importlib.import_module, a "module:attr"
                # registry entry, a stage table
                target = child.value.partition(":")[0]
                if target in known and target.startswith("gammastar."):
                    out.add(target)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    out.discard(name)
    return out


@functools.cache
def _graph() -> tuple[tuple[str, frozenset[str]], ...]:
    known = modules()
    return tuple((n, frozenset(imported_modules(n, p, known))) for n, p in known.items())


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports. Parsed once per test process (the sources do
    not change during a run; every test of this file and of test_layers.py reads it), each
    caller getting its own copy."""
    return {n: set(deps) for n, deps in _graph()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def test_cycle_finder_finds_a_cycle():
    """The checker itself: a → b → c → a and a self-contained d are told apart."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


def test_import_parser_sees_lazy_relative_and_submodule_imports(tmp_path):
    """Imports inside functions count, ``TYPE_CHECKING`` ones and modules named in strings
    (``importlib.import_module``) too; ``from pkg import sub`` is an edge to the submodule."""
    code = textwrap.dedent(
        """
        from typing import TYPE_CHECKING
        from gammastar import flow
        if TYPE_CHECKING:
            from gammastar.selection import stage as select
        def f():
            from gammastar.errors import GammastarError
            from .data import training_data
        def g():
            return importlib.import_module("gammastar.reach.stats")
        REGISTRY = "gammastar.yields.stage:compute_yields"
        NOT_A_MODULE = "gammastar.nothing"
        """
    )
    p = tmp_path / "mod.py"
    p.write_text(code)
    known = {k: Path() for k in ("gammastar.flow", "gammastar.selection.stage", "gammastar.errors",
                                 "gammastar.flow.data", "gammastar.flow.x", "gammastar.reach.stats",
                                 "gammastar.yields.stage")}  # fmt: skip
    got = imported_modules("gammastar.flow.x", p, known)
    assert got == {"gammastar.flow", "gammastar.errors", "gammastar.flow.data",
                   "gammastar.selection.stage", "gammastar.reach.stats",
                   "gammastar.yields.stage"}  # fmt: skip
    runtime = imported_modules("gammastar.flow.x", p, known, typing=False)
    assert got - runtime == {"gammastar.selection.stage"}


def test_no_import_cycles():
    """No cycle in the module graph, apart from the ones listed in KNOWN_CYCLES."""
    found = set(cycles(import_graph()))
    new = [sorted(c) for c in found - KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"


def test_known_cycles_are_still_there():
    """A KNOWN_CYCLES entry whose cycle has been removed must be deleted from the list."""
    found = set(cycles(import_graph()))
    gone = [sorted(c) for c in KNOWN_CYCLES - found]
    assert not gone, f"these cycles are gone, remove them from KNOWN_CYCLES: {gone}"


# Heavy third-party libraries and the package itself (``gammastar/__init__``, which Python runs
# before any ``gammastar.X``, so that what it loads is the common start of every import) are
# imported once in the parent; every child then imports one module with no other gammastar
# module loaded before it.
_DRIVER = """
import os, sys, traceback
import numpy, scipy, pandas, pyarrow, awkward, uproot, hist, torch, zuko, numba, matplotlib
import pydantic, yaml, typer, vector, distributed, scipy.stats, scipy.optimize, scipy.interpolate
matplotlib.use("Agg")
import matplotlib.pyplot
import gammastar
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed.append(name)
print("FAILED", " ".join(failed))
"""


@pytest.mark.slow  # ~25 s of forks; the static cycle check above runs in the default suite
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_in_isolation():
    """Each module imports on its own, first in its interpreter (an import-order dependence or
    a cycle that breaks at import time fails here)."""
    names = [n for n in modules() if n != "gammastar.__main__"]
    env = {**__import__("os").environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _DRIVER, *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    failed = res.stdout.strip().splitlines()[-1].removeprefix("FAILED").split()
    assert not failed, f"{failed}\n{res.stderr[-3000:]}"


REPO = SRC.parent
SCRIPT_DIRS = ("benchmarks", "validation/scripts", "analysis", "analysis/figures", "data")
"""Folders of scripts run as ``python <dir>/X.py``, which puts ``<dir>`` first on ``sys.path``."""


def _scripts() -> list[Path]:
    return sorted(p for d in SCRIPT_DIRS for p in (REPO / d).glob("*.py"))


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_scripts_shadow_no_module_and_leave_sys_path_alone(script):
    """A script named like a standard-library module (``select.py``) shadows it for every
    library that imports it once its folder is first on ``sys.path``, so no script takes such a
    name, and no script edits ``sys.path`` (gammastar and gammastar_validation are installed
    packages; a sibling script is imported by its name)."""
    assert script.stem not in sys.stdlib_module_names, f"{script} shadows the stdlib"
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "path":
            assert ast.unparse(node) != "sys.path", f"{script}: line {node.lineno} edits sys.path"


def test_no_test_loads_a_script_by_its_path_and_the_product_never_imports_validation():
    """Tests import package code (gammastar, gammastar_validation), never a script from its
    file or from a folder they put on ``sys.path`` (a script is run as a user runs it, in a
    subprocess); the product imports nothing of validation/ (the mock's truth and the
    closure studies stay out of the wheel)."""
    loaders = {"spec_from_file_location", "run_path"}  # importlib.util's, runpy's
    for folder in (REPO / "tests", REPO / "validation" / "tests"):
        for p in folder.glob("*.py"):
            text = p.read_text()
            if "sys.path" in text:  # pytest puts the tests' own folder there already
                for node in ast.walk(ast.parse(text)):
                    edits = isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path"
                    assert not edits, f"{p}: line {getattr(node, 'lineno', '?')} uses sys.path"
            # a name, attribute or alias node spells its identifier in the source: a file
            # without either loader's name has none of them (its tree need not be walked)
            if not any(name in text for name in loaders):
                continue
            for node in ast.walk(ast.parse(text)):
                name = (node.attr if isinstance(node, ast.Attribute)
                        else node.id if isinstance(node, ast.Name)
                        else node.name if isinstance(node, ast.alias) else None)  # fmt: skip
                assert name not in loaders, f"{p}: line {getattr(node, 'lineno', '?')}: {name}"
    for name, path in modules().items():
        imports = _all_imports(path, only="gammastar_validation")
        bad = {n for n in imports if n.split(".")[0] == "gammastar_validation"}
        assert not bad, f"{name} imports {sorted(bad)}"


def _all_imports(path: Path, only: str | None = None) -> set[str]:
    """The absolute modules ``path`` imports anywhere in its code; with ``only``, those of a
    file whose source mentions ``only`` (an import of a module spells the module's name:
    any other file imports nothing of it, and its tree is not walked)."""
    out: set[str] = set()
    text = path.read_text()
    if only is not None and only not in text:
        return out
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out
