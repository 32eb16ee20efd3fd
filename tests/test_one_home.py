"""One home per name: a module of the package offers only what it defines. A name a module
imports from another package module is not offered again (in its ``__all__``, or imported or
used as ``module.name`` by other code, tests, validation, benchmarks, analysis scripts or the
API reference); importers name the defining module. The one exception is the top-level package
``gammastar``, whose ``__all__`` is the documented public API (``tests/test_api.py``).

Static (ast), no package module is imported.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from test_imports import SRC, modules

ROOT = SRC.parent
# where the package's names are used (besides the package itself)
USERS = ("src", "tests", "validation", "benchmarks", "analysis", "docs")
# mkdocstrings entries of the API reference: ``::: gammastar.flow.model.load``
API_ENTRY = re.compile(r"^:::\s+(gammastar(?:\.\w+)+)", re.MULTILINE)


@functools.cache
def _tree(path: Path) -> ast.Module:
    """The file's syntax tree (each file parsed once per session)."""
    return ast.parse(path.read_text())


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of ``from ... import`` in ``module`` (file ``path``)."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def imported_names(known: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Per package module, the names it binds at module level by importing them from another
    package module (name → that module); submodules are not names of this kind."""
    out: dict[str, dict[str, str]] = {}
    for name, path in known.items():
        found: dict[str, str] = {}

        def visit(
            body: list[ast.stmt], name: str = name, path: Path = path, found: dict = found
        ) -> None:
            for node in body:
                if isinstance(node, ast.ImportFrom):
                    base = _base(name, path, node)
                    if base.split(".")[0] != "gammastar":
                        continue
                    for a in node.names:
                        if f"{base}.{a.name}" not in known:
                            found[a.asname or a.name] = base
                elif isinstance(node, ast.If | ast.Try):
                    visit(node.body, found=found)
                    visit(node.orelse, found=found)

        visit(_tree(path).body)
        out[name] = found
    return out


def _all(path: Path) -> list[str]:
    for node in _tree(path).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return []


def _uses(path: Path, known: dict[str, Path]) -> set[tuple[str, str]]:
    """(module, name) pairs a Python file takes from package modules: ``from m import name``
    and ``alias.name`` where ``alias`` is a package module it imported."""
    tree = _tree(path)
    rel = path.relative_to(SRC).with_suffix("").parts if path.is_relative_to(SRC) else ()
    me = ".".join(rel[:-1] if rel and rel[-1] == "__init__" else rel)
    out: set[tuple[str, str]] = set()
    aliases: dict[str, str] = {}
    attributes: list[ast.Attribute] = []  # alias.name candidates, resolved once aliases are known
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            attributes.append(node)
        elif isinstance(node, ast.ImportFrom):
            base = _base(me, path, node) if me else (node.module or "")
            for a in node.names:
                if f"{base}.{a.name}" in known:
                    aliases[a.asname or a.name] = f"{base}.{a.name}"
                else:
                    out.add((base, a.name))
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in known})
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            # mod = pytest.importorskip("gammastar.x") or importlib.import_module("gammastar.x")
            call, target = node.value, node.targets[0]
            name = getattr(call.func, "attr", getattr(call.func, "id", ""))
            if (
                name in ("importorskip", "import_module")
                and isinstance(target, ast.Name)
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and call.args[0].value in known
            ):
                aliases[target.id] = call.args[0].value
    for node in attributes:
        if node.value.id in aliases:  # type: ignore[attr-defined]
            out.add((aliases[node.value.id], node.attr))  # type: ignore[attr-defined]
    return out


def reexports() -> dict[tuple[str, str], str]:
    """Every name offered by a second home outside the top-level package: (module, name) →
    where it was seen offered."""
    known = modules()
    imported = imported_names(known)
    out: dict[tuple[str, str], str] = {}
    for module, names in imported.items():
        if module == "gammastar":
            continue
        for n in _all(known[module]):
            if n in names:
                out[(module, n)] = f"{module}.__all__"
    for folder in USERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module, n in _uses(path, known):
                mine = known.get(module) == path
                if module != "gammastar" and n in imported.get(module, {}) and not mine:
                    out.setdefault((module, n), str(path.relative_to(ROOT)))
        for path in sorted((ROOT / folder).rglob("*.md")):
            for ref in API_ENTRY.findall(path.read_text()):
                module, _, n = ref.rpartition(".")
                if module in known and module != "gammastar" and n in imported[module]:
                    out.setdefault((module, n), str(path.relative_to(ROOT)))
    return out


def test_every_name_has_one_home():
    found = reexports()
    assert not found, "imported from a second home (import it from its defining module): " + (
        "; ".join(f"{m}.{n} ({where})" for (m, n), where in sorted(found.items()))
    )


def test_the_check_sees_a_reexport(tmp_path):
    """The detection itself: a name imported from another module and listed in ``__all__``,
    and a test importing a name through a module that only imports it."""
    known = {"gammastar.a": tmp_path / "a.py", "gammastar.b": tmp_path / "b.py"}
    known["gammastar.a"].write_text("def f(): pass\n")
    known["gammastar.b"].write_text("from gammastar.a import f\n__all__ = ['f', 'g']\ng = 1\n")
    imported = imported_names(known)
    assert imported["gammastar.b"] == {"f": "gammastar.a"}
    assert [n for n in _all(known["gammastar.b"]) if n in imported["gammastar.b"]] == ["f"]
    user = tmp_path / "t.py"
    user.write_text(
        "from gammastar.b import f, g\nimport gammastar.b as B\nB.f\n"
        "C = pytest.importorskip('gammastar.b')\nC.h\n"
    )
    assert _uses(user, known) >= {("gammastar.b", "f"), ("gammastar.b", "g"), ("gammastar.b", "h")}
