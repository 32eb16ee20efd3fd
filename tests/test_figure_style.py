"""One figure style for every figure the package draws, and the reach plot's legend at zero
background.

``gammastar.core.figures.figure_style`` is mplhep's ROOT style with the package's sizes
(``STYLE_OVERRIDES``), applied for the drawing only: the caller's rcParams are the same
before and after, also when the drawing raises. The reach plot's ±1σ/±2σ bands are the
quantiles of the limit under the background-only hypothesis; at zero background every quantile
is the same (the only outcome is n = 0), so the bands are the median's line: the legend then
says so instead of showing two entries for regions of zero area.
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep
import numpy as np
import pytest
from _scans import made_up_scan

from gammastar.core.figures import STYLE_OVERRIDES, figure_style
from gammastar.reach.plots import BANDS_COINCIDE_NOTE, bands_coincide, plot_reach
from gammastar.reach.scan.settings import ScanResult

BAND_LABELS = (r"expected $\pm1\sigma$", r"expected $\pm2\sigma$")


def _scan(factors: dict[str, float]) -> ScanResult:
    """A reach on 7 masses whose band ``b`` excludes ε from lo·f to hi/f (``factors[b]``, the
    median's f = 1); masses 0 and 6 are not excluded by any band."""
    lo, hi = np.full(7, 1e-7), np.full(7, 1e-4)
    lo[[0, 6]] = hi[[0, 6]] = np.nan
    return made_up_scan({b: (lo * f, hi / f) for b, f in factors.items()})


BRAZIL = {"0": 1.0, "-2": 0.5, "-1": 0.7, "+1": 1.4, "+2": 2.0}
ZERO_BACKGROUND = {b: 1.0 for b in BRAZIL}


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_bands_coincide_only_when_every_band_is_the_median():
    assert bands_coincide(_scan(ZERO_BACKGROUND))
    assert not bands_coincide(_scan(BRAZIL))
    # a difference far below a pixel of a log axis (relative 1e-9) is the same line
    assert bands_coincide(_scan({**ZERO_BACKGROUND, "+2": 1.0 + 1e-9}))
    # one band 1 % away at the excluded masses is a band
    assert not bands_coincide(_scan({**ZERO_BACKGROUND, "+1": 1.01}))
    # nothing excluded: no median for the bands to coincide with
    empty = _scan(ZERO_BACKGROUND)
    nan = np.full(7, np.nan)
    empty.boundaries.update({b: (nan, nan) for b in BRAZIL})
    assert not bands_coincide(empty)


def test_the_reach_legend_says_the_bands_coincide_at_zero_background():
    fig = plot_reach(_scan(ZERO_BACKGROUND), None)
    try:
        labels = _legend(fig)
        assert not any(b in labels for b in BAND_LABELS)
        assert BANDS_COINCIDE_NOTE in labels
        assert "expected (median)" in labels
        assert len(fig.axes[0].patches) == 0  # no zero-area band drawn either
    finally:
        plt.close(fig)


def test_the_reach_legend_shows_the_bands_when_they_differ():
    fig = plot_reach(_scan(BRAZIL), None)
    try:
        labels = _legend(fig)
        assert all(b in labels for b in BAND_LABELS)
        assert BANDS_COINCIDE_NOTE not in labels
        assert fig.axes[0].patches  # the yellow and green regions
    finally:
        plt.close(fig)


def test_the_reach_figure_of_a_demo_like_run_has_no_empty_legend_entry(tmp_path):
    """Written to a PNG, as the reach stage writes figures/reach.png."""
    path = tmp_path / "reach.png"
    fig = plot_reach(_scan(ZERO_BACKGROUND), path, title="zero background")
    try:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not any(b in _legend(fig) for b in BAND_LABELS)
    finally:
        plt.close(fig)


def test_figure_style_is_mplhep_root_with_the_package_sizes_inside_only():
    before = dict(plt.rcParams)
    with figure_style():
        assert plt.rcParams["font.size"] == pytest.approx(STYLE_OVERRIDES["font.size"])
        assert plt.rcParams["xtick.direction"] == mplhep.style.ROOT["xtick.direction"] == "in"
        assert plt.rcParams["ytick.right"] is True  # ROOT: ticks on all four sides
    assert dict(plt.rcParams) == before

    def failing_drawing() -> None:
        with figure_style():
            plt.rcParams["font.size"] = 3.0
            raise RuntimeError("a drawing that fails")

    with pytest.raises(RuntimeError):
        failing_drawing()
    assert dict(plt.rcParams) == before


def _label_size(fig) -> float:
    return fig.axes[0].xaxis.label.get_fontsize()


def test_the_figures_of_each_stage_share_the_style(tmp_path):
    """Figures drawn by the reach, flow-closure, impact and decay plots have the package's
    text size (the axis label at ``axes.labelsize`` = medium = ``font.size``), and the
    caller's rcParams are unchanged afterwards."""
    from gammastar.physics.darkphoton import plot_decays
    from gammastar.reach.flow_closure import plot_closure
    from gammastar.reach.impact import plot_impact

    before = dict(plt.rcParams)
    point = {"ratio": 1.02, "ratio_err": 0.03}
    closure = {"points": [{"mass": 0.3, "eps_low": point, "eps_high": point}]}
    impact = {
        "mass": [0.3, 0.6],
        "nominal": {"s_up": [2.3, 2.4]},
        "nuisances": {"n_pot": {"+1": {"s_up": [2.0, 2.1]}, "-1": {"s_up": [2.6, 2.7]}}},
    }
    figs = [
        plot_reach(_scan(BRAZIL), None),
        plot_closure(closure, tmp_path / "closure.png"),
        plot_impact(impact, tmp_path / "impact.png"),
        plot_decays(str(tmp_path / "decays.png")),
    ]
    try:
        for fig in figs:
            assert _label_size(fig) == pytest.approx(STYLE_OVERRIDES["font.size"])
    finally:
        for fig in figs:
            plt.close(fig)
    assert dict(plt.rcParams) == before


def test_the_flow_and_yields_figures_are_written_in_the_style(tmp_path, monkeypatch):
    """The flow's KL figure and the yields' A′ figure, which close their figures: the text size
    seen when they are saved."""
    from gammastar.core import figures
    from gammastar.flow import validate
    from gammastar.yields import plots

    seen: list[float] = []

    def record(fig, path, **kwargs):
        seen.append(_label_size(fig))
        plt.close(fig)
        return path

    monkeypatch.setattr(validate, "save_figure", record)
    monkeypatch.setattr(plots, "save_figure", record)
    kl = {"mass": [0.3, 0.5], "kl_data_68": [[-0.1, 0.1]] * 2, "kl_data_95": [[-0.2, 0.2]] * 2,
          "kl_data_median": [0.0, 0.0], "kl_model": [0.05, 0.3], "kl_model_std": [0.02, 0.05]}  # fmt: skip
    validate.plot_kl(kl, tmp_path / "kl.png")
    doc = json.loads(json.dumps({
        "aprime": {"bin_edges": [0.2, 0.3, 0.4], "per_pot_per_eps2": [1e-3, 2e-3],
                   "stat_err": [1e-4, 1e-4]},
        "meta": {"n_pot": 1e11},
    }))  # fmt: skip
    plots.plot_aprime(doc, tmp_path / "aprime.png", force=True)
    assert seen == pytest.approx([figures.STYLE_OVERRIDES["font.size"]] * 2)
