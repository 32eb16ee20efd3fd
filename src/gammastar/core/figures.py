"""Writing figures: :func:`save_figure` (atomic, the format from the file's suffix) and
:func:`figure_style` (the one look of every figure the package draws).

Every stage writes its figures through :func:`save_figure` (DEVELOPERS.md "Figures"), so that
a killed writer leaves no half-written PNG/PDF in the run directory, and draws them inside
:func:`figure_style`, so that all of them share mplhep's experiment-neutral ROOT style with one
set of sizes while the caller's own matplotlib settings stay as they were.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gammastar.core.artifacts import atomic_path

STYLE_OVERRIDES: dict[str, Any] = {
    "font.size": 16,
    "figure.figsize": (8.0, 6.0),
    "xtick.major.size": 8,
    "xtick.minor.size": 4,
    "ytick.major.size": 8,
    "ytick.minor.size": 4,
    "axes.linewidth": 1.5,
    "axes.titley": 1.0,
}
"""The package's sizes over ``mplhep.style.ROOT`` (whose 26 pt text is made for a 10 × 10 inch
figure): text that reads at the 6–9 inch widths the stages draw, with ROOT's look kept (ticks
inside on all four sides, minor ticks, its fonts and colour cycle). Titles sit at the top of
their axes (``axes.titley``; no tick labels are drawn there): matplotlib otherwise measures
every top-side tick to place each title, a third of a figure's drawing time."""


@contextmanager
def figure_style() -> Iterator[None]:
    """Draw inside the package's figure style: ``mplhep.style.ROOT`` with
    :data:`STYLE_OVERRIDES`, for the block (or the decorated function) only.

    The style is applied with ``matplotlib.pyplot.style.context``, so the rcParams of the
    calling code are restored afterwards, also when drawing raises.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> before = matplotlib.rcParams["font.size"]
        >>> with figure_style():
        ...     matplotlib.rcParams["font.size"]
        16.0
        >>> matplotlib.rcParams["font.size"] == before
        True
    """
    import matplotlib.pyplot as plt
    import mplhep

    with plt.style.context([mplhep.style.ROOT, STYLE_OVERRIDES]):
        yield


def save_figure(
    fig: Any,
    path: str | os.PathLike[str],
    *,
    force: bool = True,
    close: bool = False,
    default_format: str = "png",
    **savefig: Any,
) -> Path:
    """Write the matplotlib figure ``fig`` to ``path`` atomically.

    Arguments:
        fig: a matplotlib figure.
        path: output file (its folder is created); its suffix gives the format
            (``default_format`` without one).
        force: overwrite an existing file (else :class:`gammastar.errors.OutputExistsError`).
        close: close the figure afterwards (``matplotlib.pyplot.close``).
        default_format: the format of a path without a suffix.
        savefig: further ``Figure.savefig`` arguments (``dpi``, ``bbox_inches``, ``metadata``).

    Returns:
        The path written.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt, tempfile
        >>> out = Path(tempfile.mkdtemp()) / "a.png"
        >>> save_figure(plt.figure(), out, close=True).stat().st_size > 0
        True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower() or default_format
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format=fmt, **savefig)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path
