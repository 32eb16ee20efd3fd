"""The A′ yield's whole error per mass bin: its named parts and their quadrature sum.

One reading of ``yields.json`` for every table that shows the yield (``yields_aprime.csv``,
the report's summary, the summary of ``gammastar run``): the parts are the ``uncertainties``
block's nuisances (the sizes the reach's likelihood takes, symmetrised: ``rel``) and the mock's
normalisation (``meta.mock_normalisation.rel_uncertainty``, a nuisance the reach adds to a mock
run's yields); without the block (``uncertainties.enabled: false``) the yield's own errors
(``stat_err``, ``syst_err``: the ee–μμ disagreement, ``extrapolation_err``). The total is the
parts in quadrature, the reach's log-normal widths being independent parameters.

Plain Python (no numpy): the report reads it too. :func:`error_parts` gives the parts;
:data:`PART_LABELS` names them for a reader.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PART_LABELS", "ErrorParts", "error_parts"]

PART_LABELS: dict[str, str] = {
    "data_stat": "stat",
    "like_sign_r": "background subtraction (R)",
    "universality": "channel disagreement",
    "acceptance_lambda_theta": "acceptance λ_θ",
    "acceptance_map_stat": "acceptance map stat",
    "eta_mumu": "η → μμ removal",
    "extrapolation": "extrapolation",
    "resolution_migration": "resolution migration",
    "mock_normalisation": "normalisation (mock)",
    "n_pot": "N_POT",
    "signal_efficiency": "signal efficiency",
}
"""A reader's name of each part (a stated ``uncertainties.extra`` keeps its own name)."""

MOCK_NORMALISATION = "mock_normalisation"
"""The part of the mock's meson normalisation (the reach's nuisance of that name)."""


@dataclass(frozen=True)
class ErrorParts:
    """The A′ yield's error per mass bin: ``rel[name][i]`` the relative size of part ``name``
    in bin ``i`` (``None`` where the yield has no number), ``total_rel`` their quadrature sum,
    ``y`` the yield per POT per ε²."""

    y: list[float | None]
    rel: dict[str, list[float | None]]

    @property
    def total_rel(self) -> list[float | None]:
        """The parts in quadrature, per bin."""
        out: list[float | None] = []
        for i, y in enumerate(self.y):
            sizes = [r[i] for r in self.rel.values()]
            ok = y is not None and all(s is not None for s in sizes)
            out.append(math.sqrt(sum(s * s for s in sizes if s is not None)) if ok else None)
        return out

    def absolute(self, name: str | None = None) -> list[float | None]:
        """Part ``name`` (``None``: the total) in the yield's unit, per POT per ε²."""
        rel = self.total_rel if name is None else self.rel[name]
        return [None if y is None or r is None else abs(y) * r for y, r in zip(self.y, rel, strict=True)]

    def nonzero(self) -> list[str]:
        """The parts that are not 0 in every bin."""
        return [k for k, r in self.rel.items() if any(s for s in r if s is not None)]

    def with_part(self, name: str, rel: float) -> ErrorParts:
        """These parts and one more of the same relative size in every bin (the reach's
        N_POT and signal efficiency in the report)."""
        size = [None if y is None else float(rel) for y in self.y]
        return ErrorParts(self.y, {**self.rel, name: size})


def _number(v: Any) -> float | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _ratio(err: Any, y: float | None) -> float | None:
    e = _number(err)
    return None if e is None or y is None or y == 0 else abs(e / y)


def _mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _seq(values: Any) -> list[Any]:
    """A column as a list (a JSON list, or an array of the document being written)."""
    ok = hasattr(values, "__len__") and not isinstance(values, str | bytes | Mapping)
    return list(values) if ok else []


def _column(values: Any, n: int) -> list[Any]:
    out = _seq(values)
    return out if len(out) == n else []


def error_parts(doc: Mapping[str, Any]) -> ErrorParts:
    """The named parts of the A′ yield's error in each of ``doc['aprime']``'s mass bins.

    Arguments:
        doc: a ``yields.json`` document (``aprime``, optionally ``uncertainties`` and
            ``meta.mock_normalisation``).

    Returns:
        The parts (module docstring), in the block's order, the mock's normalisation last.

    Example:
        >>> doc = {"aprime": {"per_pot_per_eps2": [2.0, 4.0], "stat_err": [0.06, 0.4]},
        ...        "meta": {"mock_normalisation": {"rel_uncertainty": 0.08}}}
        >>> p = error_parts(doc)
        >>> list(p.rel), [round(t, 6) for t in p.total_rel], p.absolute("data_stat")
        (['data_stat', 'mock_normalisation'], [0.08544, 0.128062], [0.06, 0.4])
    """
    ap = _mapping(doc.get("aprime"))
    y = [_number(v) for v in _seq(ap.get("per_pot_per_eps2"))]
    n = len(y)
    rel: dict[str, list[float | None]] = {}
    unc = doc.get("uncertainties")
    nuis = unc.get("nuisances") if isinstance(unc, Mapping) else None
    if isinstance(nuis, Mapping) and nuis:
        for name, entry in nuis.items():
            sizes = _column(_mapping(entry).get("rel"), n)
            if sizes:
                rel[str(name)] = [
                    None if yi is None else _number(s) for yi, s in zip(y, sizes, strict=True)
                ]
    else:
        for name, key in (
            ("data_stat", "stat_err"),
            ("universality", "syst_err"),
            ("extrapolation", "extrapolation_err"),
        ):
            errs = _column(ap.get(key), n)
            if errs:
                rel[name] = [_ratio(e, yi) for e, yi in zip(errs, y, strict=True)]
    norm = _mapping(_mapping(doc.get("meta")).get(MOCK_NORMALISATION))
    r = _number(norm.get("rel_uncertainty"))
    if r is not None and r > 0 and MOCK_NORMALISATION not in rel:
        rel[MOCK_NORMALISATION] = [None if yi is None else r for yi in y]
    return ErrorParts(y, rel)
