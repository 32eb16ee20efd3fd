"""The published bounds drawn on the reach figure: :func:`draw_bounds`, in shades of grey."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gammastar.formats.bounds.core import Bound

_GREYS = ("0.45", "0.25", "0.6", "0.15", "0.7")


def draw_bounds(ax: Any, bounds: Sequence[tuple[Bound, str]]) -> list[Any]:
    """Draw ``(bound, style)`` pairs on a matplotlib axis in shades of grey (the field's
    convention for existing limits): ``filled`` a translucent region with its outline,
    ``line`` and ``dashed`` the outline alone.

    Returns:
        The legend handles, one per bound (label, and the reference where the file gives one).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = []  # Patch and Line2D legend handles
    for k, (bound, style) in enumerate(bounds):
        grey = _GREYS[k % len(_GREYS)]
        xs, ys = bound.polygon()
        if bound.closed:
            xs, ys = np.append(xs, xs[0]), np.append(ys, ys[0])
        ls = "--" if style == "dashed" else "-"
        region = style == "filled" and (bound.closed or bound.shape == "above")
        if region and bound.shape == "above":  # up to ε = 1: the axis clips it
            ax.fill_between(xs, ys, 1.0, color=grey, alpha=0.35, lw=0, zorder=1.5)
        elif region:
            ax.fill(xs, ys, color=grey, alpha=0.35, lw=0, zorder=1.5)
        ax.plot(xs, ys, color=grey, ls=ls, lw=1.4, zorder=1.6)
        label = bound.label
        if region:
            handles.append(Patch(facecolor=grey, edgecolor=grey, alpha=0.6, label=label))
        else:
            handles.append(Line2D([], [], color=grey, ls=ls, label=label))
    return handles


__all__ = ["draw_bounds"]
