"""Test helper: the reach stage without its figures, for the tests of its numbers and files.

Drawing and writing ``figures/reach.png`` and ``figures/aprime_decays.png`` (matplotlib's
layout and PNG encoding) is most of a small reach's time. The figures themselves are tested
where a test runs the stage as it is (test_reach.py::test_run_reach_writes_the_contract,
test_figures.py, test_figure_style.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def skip_reach_figures(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace :func:`gammastar.reach.stage.plot_reach_figures` (the stage's figures, and only
    them) for this test by a recorder: the run directories it was called for, in order."""
    from gammastar.reach import stage

    calls: list[Path] = []
    monkeypatch.setattr(stage, "plot_reach_figures", lambda config, out, *a, **k: calls.append(out))
    return calls
