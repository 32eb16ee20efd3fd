"""Acceptance × efficiency unfolding (docs/explanation/physics.md §4) and optional resolution
unfolding.

Each pair gets the weight 1/ε(m, pT) from the efficiency map (a TH2 with x = mass,
y = pair pT, contents in (0, 1]) and, with ``unfold.acceptance_map``, also 1/A(m, pT) from a
geometric-acceptance map (a TH2 in (m, pT), or a TH3 in (m, pT, y) with y the pair's lab
rapidity: :class:`~gammastar.corrections.unfold.acceptance.AcceptanceMap3D`): the unfolded
spectrum then stands for the full phase space (``phase_space: full``) instead of the inside
of the detector acceptance. Pairs in bins with
A < ``unfold.min_acceptance`` get weight 0, counted and reported with an estimate of the lost
fraction. Pairs outside the map or in a bin with ε = 0 are never
dropped silently: they are counted and either stop the run or get weight 0 and are reported
(``unfold.outside_map``). Resolution unfolding is iterative Bayesian (D'Agostini), off by
default as in the paper.

This module offers the reading of the maps' ROOT histograms (:func:`split_map_spec`,
:func:`read_root_histogram`, the checks of a (mass, pT) grid) and the phase-space labels
(``PHASE_SPACE_*``). The pieces, one concern each:

* :mod:`~gammastar.corrections.unfold.efficiency`: the efficiency map ε(m, pT), its lookup and
  the weights 1/ε with the report of the pairs it cannot unfold;
* :mod:`~gammastar.corrections.unfold.acceptance`: the acceptance map A(m, pT) or A(m, pT, y),
  the weights 1/A and the estimates of the fraction lost below ``unfold.min_acceptance``;
* :mod:`~gammastar.corrections.unfold.resolution`: the response matrix and the iterative
  Bayesian unfolding of bin migrations.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gammastar.errors import ConfigError, GammastarError, InputError

__all__ = [
    "PHASE_SPACE_DETECTOR",
    "PHASE_SPACE_FIDUCIAL",
    "PHASE_SPACE_FULL",
    "read_root_histogram",
    "split_map_spec",
]

PHASE_SPACE_FULL = "full"
PHASE_SPACE_DETECTOR = "detector_acceptance"
PHASE_SPACE_FIDUCIAL = "fiducial"
"""Weights 1/(A ε) with the per-pair acceptance, inside the fiducial region A ≥ min."""


def split_map_spec(spec: str, default_key: str = "acceptance") -> tuple[str, str]:
    """``"path"`` or ``"path:key"`` → ``(path, key)``.

    Example:
        >>> split_map_spec("run/mock.root:acceptance")
        ('run/mock.root', 'acceptance')
        >>> split_map_spec("/data/acc.root")
        ('/data/acc.root', 'acceptance')
    """
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail and "/" not in tail and "\\" not in tail and len(head) > 1:
        return head, tail
    return spec, default_key


def read_root_histogram(path: str, name: str, *, kind: str, key: str, what: str) -> Any:
    """Read the histogram ``name`` of ROOT class ``kind`` (``TH1``/``TH2``) from ``path`` as
    ``hist``, every failure one error naming the config ``key``, the file and the histogram.

    Raises:
        ConfigError: the file or the histogram does not exist; InputError: another class, or
            an unreadable file.
    """
    return _read_root_hist(path, name, kind=kind, key=key, what=what)[1]


def _read_root_hist(
    path: str,
    name: str,
    *,
    kind: str,
    key: str,
    what: str,
    only_of_kind: bool = False,
    missing: type[GammastarError] | None = None,
) -> tuple[str, Any]:
    """:func:`read_root_histogram`, the one ROOT-histogram reader: ``(name read, hist)``.
    ``only_of_kind``: without ``name``, the file's only histogram of class ``kind``;
    ``missing``: the error class of a missing file or histogram (default ConfigError)."""
    import uproot

    missing = missing or ConfigError
    path = os.fspath(path)
    if not os.path.exists(path):
        raise missing(f"{key}: {path} not found (histogram {name!r})")
    try:
        with uproot.open(path) as f:
            classes = {k.split(";")[0]: v for k, v in f.classnames().items()}
            if name not in classes and only_of_kind:
                of_kind = [k for k, v in classes.items() if v.startswith(kind)]
                name = of_kind[0] if len(of_kind) == 1 else name
            if name not in classes:
                raise missing(
                    f"{key}: {path} has no histogram {name!r}: no such histogram "
                    f"(found {sorted(classes)})"
                )
            label = f"{key}: {path}:{name}"
            if not classes[name].startswith(kind):
                raise InputError(f"{label} is a {classes[name]}, not a {kind} ({what})")
            return name, f[name].to_hist()
    except GammastarError:
        raise
    except Exception as err:  # noqa: BLE001  (a broken file: name it, no library traceback)
        raise InputError(
            f"{key}: {path}:{name}: cannot read ({type(err).__name__}: {err})"
        ) from None


def _checked_grid(h: Any, label: str, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges and contents of a (mass, pT) map, checked (:func:`_check_grid`)."""
    m_edges = np.asarray(h.axes[0].edges, dtype=float)
    pt_edges = np.asarray(h.axes[1].edges, dtype=float)
    values = np.asarray(h.values(), dtype=float)
    _check_grid(m_edges, pt_edges, values, label, what)
    return m_edges, pt_edges, values


def _check_grid(
    m_edges: np.ndarray, pt_edges: np.ndarray, values: np.ndarray, label: str, what: str
) -> None:
    """Checks of a (mass, pT[, ...]) map: finite, increasing edges starting at ≥ 0 (GeV);
    finite contents in [0, 1].

    Raises:
        InputError: naming ``label`` (file and histogram) and what is wrong.
    """
    for axis, e in (("x (mass)", m_edges), ("y (pT)", pt_edges)):
        if not (np.all(np.isfinite(e)) and np.all(np.diff(e) > 0)):
            raise InputError(f"{label}: {axis} axis edges are not finite and increasing")
    if pt_edges[0] < 0 or m_edges[0] < 0:
        raise InputError(f"{label}: axes must start at ≥ 0 (mass, pT in GeV)")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{label}: the {what} map holds NaN or infinite values")
    if values.min() < 0 or values.max() > 1:
        raise InputError(
            f"{label}: {what} contents must lie in [0, 1] "
            f"(found {values.min():g}..{values.max():g})"
        )
