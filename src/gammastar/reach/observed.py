"""The observed counts of a reach: a reconstructed-mass histogram or list of masses counted in
each mass point's windows (:func:`read_mass_histogram`, :func:`observed_counts`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.corrections.unfold import read_root_histogram, split_map_spec
from gammastar.errors import ConfigError, InputError
from gammastar.reach.signal import window_edges

__all__ = ["observed_counts", "read_mass_histogram"]


# --------------------------------------------------------------------------- observed
def read_mass_histogram(
    spec: str, *, key: str = "reach.observed", resolve: Callable[[str], Path] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The observed events of a ROOT TH1 of reconstructed masses.

    Arguments:
        spec: ``"file.root:name"`` (or ``"file.root"`` for a histogram named ``observed``).
        key: the config key named in errors.
        resolve: turns the config's path into a file path (default: as given).

    Returns:
        ``(masses, edges)``: one mass per event (the bin centre, repeated by the bin's count)
        and the histogram's bin edges.

    Raises:
        ConfigError: the file or the histogram does not exist; InputError: not a TH1, or
            contents that are not event counts (negative, non-integer, NaN), or events in the
            under/overflow.
    """

    path, name = split_map_spec(spec, default_key="observed")
    if resolve is not None:
        path = str(resolve(path))
    label = f"{key}: {path}:{name}"
    h = read_root_histogram(path, name, kind="TH1", key=key, what="of masses")
    counts = np.asarray(h.values(flow=True), dtype=np.float64)
    edges = np.asarray(h.axes[0].edges, dtype=np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise InputError(f"{label}: contents must be finite event counts >= 0")
    if np.any(np.abs(counts - np.round(counts)) > 1e-6):
        raise InputError(f"{label}: contents must be integer event counts (unweighted events)")
    n = np.round(counts).astype(np.int64)
    if n[0] or n[-1]:
        raise InputError(
            f"{label}: {n[0]} events in the underflow and {n[-1]} in the overflow; "
            "extend the axis so that every observed event has a mass"
        )
    centres = 0.5 * (edges[1:] + edges[:-1])
    return np.repeat(centres, n[1:-1]), edges


def observed_counts(
    observed: Mapping[str, Any],
    masses: ArrayLike,
    *,
    template: str,
    mass_resolution: float | None,
    window_sigmas: float = 3.0,
    mass_bins: int = 6,
    resolve: Callable[[str], Path] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Observed counts per channel and mass point, in each point's signal window.

    Arguments:
        observed: per channel (``reach.observed``): a count (the same at every mass point), a
            list of counts per mass point, or the observed events' reconstructed masses
            (``{"masses": [...]}``, ``{"histogram": "file.root:name"}`` or an
            :class:`~gammastar.config.reach.ObservedMasses`), counted in the windows of
            :func:`window_edges` (the edges of the likelihood's mass template).
        masses: the mass points of the scan.
        resolve: turns a histogram path of the config into a file path.

    Returns:
        ``{channel: counts}``, counts of shape (masses,) for one count per window or
        (masses, mass_bins) for observed masses with ``template="mass"``.

    Raises:
        GammastarError: a list of the wrong length, a missing mass resolution, a histogram
            coarser than the window's bins (see :func:`read_mass_histogram`).

    Example:
        >>> observed_counts({"mumu": {"masses": [0.305, 0.5]}}, [0.3, 0.4, 0.5],
        ...                 template="counting", mass_resolution=0.01)["mumu"].tolist()
        [1.0, 0.0, 1.0]
    """
    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    out: dict[str, NDArray[np.float64]] = {}
    for ch, spec in observed.items():
        key = f"reach.observed.{ch}"
        if hasattr(spec, "model_dump"):
            spec = spec.model_dump()
        if isinstance(spec, Mapping):
            bin_width = None
            if spec.get("histogram") is not None:
                events, h_edges = read_mass_histogram(
                    str(spec["histogram"]), key=f"{key}.histogram", resolve=resolve
                )
                bin_width = float(np.max(np.diff(h_edges)))
            else:
                events = np.sort(np.asarray(spec.get("masses") or [], dtype=np.float64))
            rows = []
            for m in masses:
                edges = window_edges(
                    float(m),
                    template=template,
                    mass_resolution=mass_resolution,
                    window_sigmas=window_sigmas,
                    mass_bins=mass_bins,
                )
                if bin_width is not None and bin_width > np.min(np.diff(edges)) * (1 + 1e-9):
                    raise InputError(
                        f"{key}.histogram: bins of {bin_width:g} GeV are wider than the signal "
                        f"window's bins ({np.min(np.diff(edges)):g} GeV); use a finer histogram "
                        "or the event masses"
                    )
                rows.append(np.histogram(events, bins=edges)[0])
            counts = np.asarray(rows, dtype=np.float64)
            out[ch] = counts[:, 0] if counts.shape[1] == 1 else counts
        else:
            counts = np.asarray(spec, dtype=np.float64)
            if counts.ndim == 0:
                counts = np.full(masses.size, float(counts))
            if counts.shape != (masses.size,):
                raise ConfigError(
                    f"{key}: {counts.size} counts for {masses.size} mass points "
                    "(one count per mass point: reach.mass_points)"
                )
            if np.any(~np.isfinite(counts)) or np.any(counts < 0):
                raise ConfigError(f"{key}: observed counts must be finite and >= 0")
            out[ch] = counts
    return out
