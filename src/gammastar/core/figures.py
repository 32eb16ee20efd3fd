"""Writing figures: :func:`save_figure` (atomic, the format from the file's suffix).

Every stage writes its figures through it (DEVELOPERS.md "Figures"), so that a killed writer
leaves no half-written PNG/PDF in the run directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gammastar.core.artifacts import atomic_path


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
