"""The package's layers: every import of a ``gammastar`` module (deferred ones included) goes
to its own package or to a lower layer, the mock generator is imported only by the generate
stage, and nothing imports the command line. The table is the one-page picture of
DEVELOPERS.md ("Layout")."""

from __future__ import annotations

import pytest
from test_imports import import_graph

# Bottom to top; a module belongs to the longest matching prefix.
LAYERS: dict[str, int] = {
    "gammastar.errors": 0,
    "gammastar._version": 0,
    "gammastar.core": 1,
    "gammastar.physics": 2,
    "gammastar.cocktail_channels": 2,
    "gammastar.io": 2,
    "gammastar.config_checks": 2,  # the config's cross-key rules: plain values, no imports
    "gammastar.cocktail_inputs": 2,  # the mock cocktail's sourced inputs: plain values, no imports
    "gammastar.config": 3,
    "gammastar.corrections": 4,
    "gammastar.formats": 4,  # HS3, HEPData, published bounds: files, no stage
    "gammastar.selection": 5,
    "gammastar.mock": 6,
    "gammastar.yields": 7,
    "gammastar.flow": 8,
    "gammastar.source": 9,
    "gammastar.reach": 10,
    "gammastar.events": 11,
    "gammastar.darksector": 11,  # the mCP and iDM reaches: on the reach, beside events
    "gammastar.report": 12,
    "gammastar.pipeline": 13,
    "gammastar.kernels": 13,  # compiles every stage's kernels: beside the pipeline, not in it
    "gammastar._entry": 14,
    "gammastar": 15,
    "gammastar.cli": 16,
    "gammastar.__main__": 17,
}

# The generate stage: the only importers of the mock generator outside it.
MOCK_IMPORTERS = ("gammastar.cli.generate", "gammastar.pipeline", "gammastar._entry")


# Wrong-way imports still to remove; an entry whose import is gone must be deleted
# (test_known_wrong_way_imports_are_still_there then fails as a reminder).
KNOWN_WRONG_WAY: set[str] = set()


# Entries that hold only the module of that name, not the modules below it: ``gammastar``
# (the package's ``__init__``) would otherwise take in any module missing from the table.
EXACT = frozenset({"gammastar"})


def group(module: str) -> tuple[str, int]:
    """The ``LAYERS`` entry of ``module`` (its longest matching prefix; an ``EXACT`` entry
    only for itself)."""
    best = max(
        (
            p
            for p in LAYERS
            if module == p or (p not in EXACT and module.startswith(p + "."))
        ),
        key=len,
        default=None,
    )
    if best is None:
        raise KeyError(f"{module} is in no layer: add its package to LAYERS")
    return best, LAYERS[best]


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes up a layer, sideways to another package of the same layer, into
    the mock from outside the generate stage, or into the command line from outside it."""
    out = []
    for a in sorted(graph):
        ga, la = group(a)
        for b in sorted(graph[a]):
            gb, lb = group(b)
            if gb == ga:
                continue
            if lb > la or (lb == la and gb != ga):
                out.append(f"{a} -> {b} (layer {la} imports layer {lb})")
            elif gb == "gammastar.mock" and not a.startswith(MOCK_IMPORTERS):
                out.append(f"{a} -> {b} (only the generate stage imports the mock)")
            elif gb == "gammastar.cli" and ga != "gammastar.__main__":
                out.append(f"{a} -> {b} (nothing imports the command line)")
    return out


def test_checker_finds_a_wrong_way_import():
    """The checker itself: physics importing the reach, a stage importing the mock and the
    config importing the CLI are each reported; a downward import is not."""
    graph = {
        "gammastar.physics.kinematics": {"gammastar.reach.stage", "gammastar.core.artifacts"},
        "gammastar.yields.stage": {"gammastar.mock.generate", "gammastar.corrections.unfold"},
        "gammastar.config": {"gammastar.cli"},
        "gammastar.pipeline": {"gammastar.mock.generate"},
        "gammastar.reach.stage": set(),
        "gammastar.core.artifacts": set(),
        "gammastar.mock.generate": set(),
        "gammastar.corrections.unfold": set(),
        "gammastar.cli": set(),
    }
    assert [w.split(" (")[0] for w in wrong_way(graph)] == [
        "gammastar.config -> gammastar.cli",
        "gammastar.physics.kinematics -> gammastar.reach.stage",
        "gammastar.yields.stage -> gammastar.mock.generate",
    ]


def test_every_module_has_a_layer():
    for name in import_graph():
        group(name)


def test_a_module_missing_from_the_table_has_no_layer():
    """The checker itself: a new top-level module is not taken in by ``gammastar``."""
    assert group("gammastar") == ("gammastar", 15)
    with pytest.raises(KeyError, match="no layer"):
        group("gammastar.somethingnew")


def test_imports_go_down_the_layers():
    """No module imports a higher layer, another package of its own layer, the mock (outside
    the generate stage) or the command line."""
    bad = [w for w in wrong_way(import_graph()) if w.split(" (")[0] not in KNOWN_WRONG_WAY]
    assert not bad, "wrong-way imports:\n" + "\n".join(bad)


def test_known_wrong_way_imports_are_still_there():
    found = {w.split(" (")[0] for w in wrong_way(import_graph())}
    gone = sorted(KNOWN_WRONG_WAY - found)
    assert not gone, f"these imports are gone, remove them from KNOWN_WRONG_WAY: {gone}"


@pytest.mark.parametrize("name", ["gammastar.physics", "gammastar.core"])
def test_bottom_layers_import_nothing_above(name):
    """The physics kernels and the infrastructure import only their own layer and below."""
    graph = import_graph()
    for a, deps in graph.items():
        if a.startswith(name):
            assert all(group(b)[1] <= LAYERS[name] for b in deps), (a, deps)
