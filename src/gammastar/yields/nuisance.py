r"""The ``uncertainties`` block's record: one named nuisance, written and read back.

:class:`Nuisance` (a source's relative effect per mass bin, its kind and correlation:
:data:`NUISANCE_KIND`, :data:`CORRELATED`, :data:`PER_BIN`) and :func:`symmetrised`; the
reading side: :func:`read_uncertainties` (the block of a ``yields.json``, checked),
:func:`at_masses` (the sizes interpolated) and :func:`reach_nuisances` (a reach's nuisances
and their ``reach.json`` record).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.errors import GammastarError, InputError

__all__ = [
    "NUISANCE_KIND",
    "Nuisance",
    "at_masses",
    "read_uncertainties",
    "symmetrised",
]


NUISANCE_KIND = "normsys"
CORRELATED = "one parameter shared by all channels and mass points"
PER_BIN = "one parameter per mass point (independent between the yield's mass bins)"


@dataclass
class Nuisance:
    """One source: its relative effect on the yield per mass bin (up = +1σ, down = −1σ)."""

    name: str
    up: NDArray[np.float64]
    down: NDArray[np.float64]
    origin: str
    correlation: str = CORRELATED
    kind: str = NUISANCE_KIND

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "up": _list(self.up),
            "down": _list(self.down),
            "rel": _list(symmetrised(self.up, self.down)),
            "origin": self.origin,
            "correlation": self.correlation,
        }


def _list(a: ArrayLike) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]


def symmetrised(up: ArrayLike, down: ArrayLike) -> NDArray[np.float64]:
    """The symmetric relative size r = (|up| + |down|)/2 (NaN → 0).

    Example:
        >>> symmetrised([0.1, np.nan], [-0.3, 0.0]).tolist()
        [0.2, 0.0]
    """
    u = np.nan_to_num(np.abs(np.asarray(up, dtype=float)))
    d = np.nan_to_num(np.abs(np.asarray(down, dtype=float)))
    return 0.5 * (u + d)


def read_uncertainties(doc: Mapping[str, Any], *, source: str = "yields.json") -> dict[str, Any]:
    """The ``uncertainties`` block of a ``yields.json`` document, checked ({} if absent).

    Raises:
        InputError: a nuisance without ``rel`` per mass, or a negative size.
    """
    unc = doc.get("uncertainties")
    if unc is None:
        return {}
    try:
        mass = np.asarray(unc["mass"], dtype=float)
        out = {}
        for name, n in unc["nuisances"].items():
            rel = np.asarray([np.nan if v is None else v for v in n["rel"]], dtype=float)
            if rel.size != mass.size:
                raise InputError(f"{source}: uncertainties.nuisances.{name}.rel: wrong length")
            if np.any(rel[np.isfinite(rel)] < 0):
                raise InputError(f"{source}: uncertainties.nuisances.{name}.rel: negative size")
            out[name] = {**n, "rel": rel}
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{source}: invalid uncertainties block ({err})") from None
    block = {"mass": mass, "nuisances": out}
    refits = unc.get("lambda_theta_refits")
    if refits is not None:
        _check_refits(refits, f"{source}: uncertainties.lambda_theta_refits")
        block["lambda_theta_refits"] = refits
    return block


def _check_refits(refits: Any, where: str) -> None:
    """Refuse a ``lambda_theta_refits`` block that
    :func:`~gammastar.yields.lambda_theta.lambda_refits_at` cannot read (one-line
    :class:`InputError` naming ``where`` and the key)."""
    if not isinstance(refits, Mapping):
        raise InputError(f"{where}: not a mapping")
    for key in ("mass", "lambda_edges", "moves"):
        if not isinstance(refits.get(key), list):
            raise InputError(f"{where}.{key}: missing or not a list")
    for i, mv in enumerate(refits["moves"]):
        if not isinstance(mv, Mapping):
            raise InputError(f"{where}.moves[{i}]: not a mapping")
        fit = mv.get("fit")
        checks = (
            ("sign", mv.get("sign") in (1, -1), "±1"),
            ("yield_shift", isinstance(mv.get("yield_shift"), list)
             and len(mv["yield_shift"]) == len(refits["mass"]), "one value per mass"),
            ("lambda_shift", isinstance(mv.get("lambda_shift"), list)
             and len(mv["lambda_shift"]) == len(refits["lambda_edges"]) - 1,
             "one value per polarisation bin"),
            ("fit", isinstance(fit, Mapping)
             and {"fiducial_fraction", "temperature", "y_sigma"} <= set(fit),
             "fiducial_fraction, temperature, y_sigma"),
        )  # fmt: skip
        for key, ok, want in checks:
            if not ok:
                raise InputError(f"{where}.moves[{i}].{key}: needs {want}")


def at_masses(unc: Mapping[str, Any], masses: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Each nuisance's symmetric relative size at ``masses`` (linear interpolation between
    the yield's mass bins, NaN bins skipped, 0 where none is finite).

    Example:
        >>> u = {"mass": np.array([0.3, 0.5]),
        ...      "nuisances": {"a": {"rel": np.array([0.1, 0.3])}}}
        >>> at_masses(u, [0.4])["a"].round(6).tolist()
        [0.2]
    """
    masses = np.atleast_1d(np.asarray(masses, dtype=float))
    out = {}
    for name, n in unc.get("nuisances", {}).items():
        rel = np.asarray(n["rel"], dtype=float)
        good = np.isfinite(rel)
        if not np.any(good):
            out[name] = np.zeros(masses.size)
            continue
        out[name] = np.interp(masses, unc["mass"][good], rel[good])
    return out


def check_unique(names: list[str], *, key: str) -> None:
    """Refuse a nuisance name given twice (``key``: the config key named in the error)."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise GammastarError(f"{key}: nuisance {n!r} given twice")
        seen.add(n)


def reach_nuisances(
    config: AnalysisConfig, yields: Any, masses: ArrayLike
) -> tuple[dict[str, NDArray[np.float64]] | None, dict[str, Any] | None]:
    """The named signal nuisances of a reach at ``masses`` and their ``reach.json`` record.

    ``data_stat`` is the loaded yield's own relative error (the fiducial one with
    ``reach.extrapolation: refuse``), ``extrapolation`` and ``resolution_migration`` only where
    the reach uses the extrapolated yield (``label``); the others are the ``yields.json``
    sizes, interpolated.

    Returns:
        ``(None, None)`` with ``uncertainties.enabled: false``; else ``({name: r(m)}, record)``.

    Raises:
        InputError: ``uncertainties.enabled`` but the yields file has no ``uncertainties``.
    """
    if not config.uncertainties.enabled:
        return None, None
    unc = yields.uncertainties
    if not unc:
        raise InputError(
            f"{config.reach.yields}: no 'uncertainties' block, but uncertainties.enabled is "
            "true; rerun `gammastar yields` with the uncertainties section"
        )
    masses = np.atleast_1d(np.asarray(masses, dtype=float))
    sizes = at_masses(unc, masses)
    refuse = config.reach.extrapolation == "refuse"
    full_ps_only = ("extrapolation", "resolution_migration")  # corrections of Y_F → Y only
    if refuse:
        for name in full_ps_only:
            sizes.pop(name, None)
    if "data_stat" in sizes:
        sizes["data_stat"] = np.nan_to_num(yields.at(masses)[1])
    record: dict[str, Any] = {"mass": masses.tolist(), "nuisances": {}}
    for name, r in sizes.items():
        n = unc["nuisances"][name]
        record["nuisances"][name] = {
            "kind": n.get("kind", NUISANCE_KIND),
            "rel": [float(v) for v in r],
            "origin": n.get("origin", ""),
            "correlation": n.get("correlation", CORRELATED),
            "modifier": "normsys on the signal of every channel, hi = 1 + rel, lo = 1/(1 + rel)",
        }
    dropped = [n for n in full_ps_only if refuse and n in unc["nuisances"]]
    if dropped:
        record["not_included"] = {n: "reach.extrapolation: refuse (fiducial only)" for n in dropped}
    return sizes, record
