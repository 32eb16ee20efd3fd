"""The reach figure: the expected exclusion with its ±1σ/±2σ bands and the observed one, over
the published bounds of ``reach.compare_with`` (:func:`plot_reach`); the contours of several
``reach.production`` modes in one figure (:func:`plot_reach_productions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.core.artifacts import atomic_path
from gammastar.core.figures import figure_style
from gammastar.reach.scan.settings import ScanResult

__all__ = [
    "BANDS_COINCIDE_NOTE",
    "BANDS_RTOL",
    "bands_coincide",
    "plot_reach",
    "plot_reach_productions",
]


# --------------------------------------------------------------------------- plots
def _polygon(m: NDArray, lo: NDArray, hi: NDArray) -> list[tuple[NDArray, NDArray]]:
    ok = np.isfinite(lo) & np.isfinite(hi)
    out, start = [], None
    for k in range(m.size + 1):
        if k < m.size and ok[k]:
            if start is None:
                start = k
        elif start is not None:
            sl = slice(start, k)
            xs = np.concatenate([m[sl], m[sl][::-1]])
            ys = np.concatenate([lo[sl], hi[sl][::-1]])
            out.append((xs, ys))
            start = None
    return out


def plot_reach(
    result: ScanResult,
    path: str | Path | None = None,
    *,
    title: str = "",
    bounds: Sequence[tuple[Any, str]] = (),
):
    """Brazil-band exclusion contour in (m_A′, ε) with the fixed-event-count lines, and the
    published ``bounds`` (``(Bound, style)`` pairs of
    :func:`gammastar.formats.bounds.read_config_bounds`) over the bands, in the package's
    figure style (:func:`gammastar.core.figures.figure_style`).

    Where the ±1σ, ±2σ bands coincide with the median (:func:`bands_coincide`: no expected
    background, so that no observation but zero events is expected and every quantile of the
    limit is the same) they are neither drawn nor in the legend; the legend says so instead.
    """
    with figure_style():
        return _plot_reach(result, path, title, bounds)


BANDS_RTOL = 1e-6
"""Relative difference of the ε boundaries below which a ±1σ/±2σ band is the median's own
line: orders of magnitude below what a log axis spanning decades can show."""

BANDS_COINCIDE_NOTE = "expected ±1σ, ±2σ coincide\nwith the median: no background"
"""The legend's line in place of the band entries when :func:`bands_coincide`."""


def bands_coincide(result: ScanResult, rtol: float = BANDS_RTOL) -> bool:
    """Whether the ±1σ and ±2σ expected boundaries equal the median's at every mass (within
    ``rtol``; masses not excluded agree when both are): true at zero background, where the
    only expected observation is n = 0 and all quantiles of the limit are one number (Cowan
    et al., Eur. Phys. J. C 71 (2011) 1554, the expected-limit bands as quantiles of the
    limit's distribution under the background-only hypothesis). False when the median
    excludes nothing (nothing to coincide with)."""
    lo0, hi0 = (np.asarray(a, dtype=float) for a in result.boundaries["0"])
    if not np.any(np.isfinite(lo0)):
        return False
    for band in ("-2", "-1", "+1", "+2"):
        if band not in result.boundaries:
            continue
        for edge, ref in zip(result.boundaries[band], (lo0, hi0), strict=True):
            if not np.allclose(np.asarray(edge, float), ref, rtol=rtol, atol=0.0, equal_nan=True):
                return False
    return True


def _eps_view(result: ScanResult, bounds: Sequence[tuple[Any, str]]) -> tuple[float, float]:
    """The ε range of the reach figure: the scan's, widened to show the published bounds in
    its mass range (a factor 2 beyond their extreme ε, at most up to ε = 1)."""
    lo, hi = float(result.eps[0]), float(result.eps[-1])
    m = result.masses
    for bound, _ in bounds:
        inside = (bound.mass >= m[0]) & (bound.mass <= m[-1])
        if not inside.any():
            continue
        top = bound.eps if bound.eps_high is None else bound.eps_high
        lo = min(lo, 0.5 * float(bound.eps[inside].min()))
        hi = min(1.0, max(hi, 2.0 * float(top[inside].max())))
    return lo, hi


def _plot_reach(
    result: ScanResult, path: str | Path | None, title: str, bounds: Sequence[tuple[Any, str]] = ()
):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, ScalarFormatter

    from gammastar.formats.bounds.draw import draw_bounds

    fig, ax = plt.subplots(figsize=(8, 6))
    m = result.masses
    collapsed = bands_coincide(result)
    colors = {"-2": "#FFDF00", "-1": "#00CC00", "+1": "#FFDF00", "+2": "white"}
    for band in () if collapsed else ("-2", "-1", "+1", "+2"):
        for xs, ys in _polygon(m, *result.boundaries[band]):
            ax.fill(xs, ys, color=colors[band], lw=0, label=None)
    bound_handles = draw_bounds(ax, bounds)  # over the bands, under the contours
    for xs, ys in _polygon(m, *result.boundaries["0"]):
        ax.plot(np.append(xs, xs[0]), np.append(ys, ys[0]), "k--", lw=1.2)
    if "obs" in result.boundaries:
        for xs, ys in _polygon(m, *result.boundaries["obs"]):
            ax.plot(np.append(xs, xs[0]), np.append(ys, ys[0]), "k-", lw=1.5)
    styles = [":", "-."]
    for k, key in enumerate(sorted(x for x in result.boundaries if x.startswith("events_"))):
        for xs, ys in _polygon(m, *result.boundaries[key]):
            ax.plot(
                np.append(xs, xs[0]),
                np.append(ys, ys[0]),
                color="C0" if k == 0 else "C3",
                ls=styles[k % 2],
                lw=1,
            )
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Line2D([], [], color="k", ls="--", label="expected (median)")]
    if collapsed:  # nothing to see: a line of text (no marker) says why
        handles.append(Patch(visible=False, label=BANDS_COINCIDE_NOTE))
    else:
        handles += [
            Patch(color="#00CC00", label=r"expected $\pm1\sigma$"),
            Patch(color="#FFDF00", label=r"expected $\pm2\sigma$"),
        ]
    if "obs" in result.boundaries:
        handles.append(Line2D([], [], color="k", label="observed"))
    for k, key in enumerate(sorted(x for x in result.boundaries if x.startswith("events_"))):
        handles.append(
            Line2D(
                [],
                [],
                color="C0" if k == 0 else "C3",
                ls=styles[k % 2],
                label=f"{key.split('_', 1)[1]} events",
            )
        )
    handles += bound_handles
    # with published bounds the upper right is rarely empty: let matplotlib place it
    ax.legend(
        handles=handles,
        fontsize=11 if bound_handles else 14,
        loc="best" if bound_handles else "upper right",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlim(m[0], m[-1])
    ax.set_ylim(*_eps_view(result, bounds))
    ax.set_xlabel(r"$m_{A'}$ [GeV]")
    ax.set_ylabel("kinetic mixing ε")
    if title:
        ax.set_title(title, fontsize=16)
    if path is not None:

        with atomic_path(path, force=True) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], bbox_inches="tight", dpi=110)
    return fig


def plot_reach_productions(
    contours: Sequence[tuple[str, dict[str, Any]]],
    path: str | Path,
    *,
    title: str = "",
    bounds: Sequence[tuple[Any, str]] = (),
):
    """The median expected (dashed) and, where given, observed (solid) contours of several
    ``reach.json`` documents in one figure, one colour each (``contours``: (label, document)
    pairs, e.g. the data-driven and the standard-recipe reach), over the published ``bounds``.
    """
    with figure_style():
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        from gammastar.formats.bounds.draw import draw_bounds

        fig, ax = plt.subplots(figsize=(8, 6))
        handles: list[Any] = list(draw_bounds(ax, bounds))
        lo_m, hi_m = np.inf, 0.0
        for k, (label, doc) in enumerate(contours):
            for key, ls in (("expected", "--"), ("observed", "-")):
                band = doc.get(key)
                if not isinstance(band, dict):
                    continue
                m = np.asarray(band["mass"], dtype=float)
                lo_m, hi_m = min(lo_m, m[0]), max(hi_m, m[-1])
                lo, hi = (np.array([np.nan if v is None else v for v in band[e]], dtype=float)
                          for e in ("eps_low", "eps_high"))  # fmt: skip
                for xs, ys in _polygon(m, lo, hi):
                    ax.plot(np.append(xs, xs[0]), np.append(ys, ys[0]), color=f"C{k}", ls=ls)
                handles.append(Line2D([], [], color=f"C{k}", ls=ls, label=f"{label}, {key}"))
        ax.set(xscale="log", yscale="log", xlabel=r"$m_{A'}$ [GeV]", ylabel="kinetic mixing ε")
        if np.isfinite(lo_m):
            ax.set_xlim(lo_m, hi_m)
        ax.legend(handles=handles, fontsize=11, loc="best")
        if title:
            ax.set_title(title, fontsize=16)
        with atomic_path(path, force=True) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], bbox_inches="tight", dpi=110)
    return fig
