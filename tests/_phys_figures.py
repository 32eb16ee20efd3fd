"""Test helper: a stage without its figures, for the tests of its numbers, files and commands.

Drawing and writing a stage's figures (matplotlib's layout and PNG encoding) is most of a
small reach's or validation's time. The figures themselves are tested where a test runs the
stage as it is (test_reach.py::test_run_reach_writes_the_contract, test_dark_events.py's first
run of each iDM reach, test_mcp_detector.py::test_run_mcp_reach, test_validate.py's closure
test, test_figures.py, test_figure_style.py; the training's loss figure: test_flow.py's
``trained`` flow, test_train_writes_artifacts).
"""

from __future__ import annotations

from typing import Any

import pytest


def skip_plot(monkeypatch: pytest.MonkeyPatch, target: str) -> list[Any]:
    """Replace the plotting function ``target`` ("module.function", looked up by the stage at
    its call) for this test by a recorder: the second argument of each call (where the stage
    would draw), in order."""
    calls: list[Any] = []
    monkeypatch.setattr(target, lambda first, where, *a, **k: calls.append(where))
    return calls


def skip_reach_figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """:func:`gammastar.reach.stage.plot_reach_figures` (the ``reach`` stage's figures, and
    only them) replaced by a recorder: the run directories it was called for."""
    return skip_plot(monkeypatch, "gammastar.reach.stage.plot_reach_figures")


def skip_loss_figure(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The training's loss figure (``flow/loss.png``, two thirds of a small training's time)
    replaced by a recorder: the paths it would have been written to."""
    return skip_plot(monkeypatch, "gammastar.flow.stage.plot_losses")
