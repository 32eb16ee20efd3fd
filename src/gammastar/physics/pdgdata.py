"""Branching ratios read from the PDG database (the `pdg` package) at run time.

Every value is looked up by its PDG decay description (e.g. ``"eta --> mu+ mu- gamma"``) in
the edition bundled with the installed `pdg` package, and returned together with the PDG
identifier and the edition, so that artifacts can record exactly what was used
(:func:`edition`, :func:`branching_ratio`, :func:`branching_ratios`).

Fallback: when a mode is missing from the database (or `pdg` cannot be opened), the value
of :data:`FALLBACK` is used instead and the returned :class:`BranchingRatio` says so
(``source="fallback"``). The fallback table holds the PDG 2024 central values quoted in
docs/explanation/physics.md §3.1 and the PDG lifetimes/branching fractions of π± and K± (PDG 2024).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from gammastar.core.cachedir import cached_json

MODES: dict[str, tuple[int, str]] = {
    "eta->gamma mumu": (221, "eta --> mu+ mu- gamma"),
    "eta->mumu": (221, "eta --> mu+ mu-"),
    "eta->gammagamma": (221, "eta --> 2gamma"),
    "eta_prime->gamma mumu": (331, "eta^'(958) --> mu+ mu- gamma"),
    "eta_prime->gammagamma": (331, "eta^'(958) --> gamma gamma"),
    "omega->mumu": (223, "omega(782) --> mu+ mu-"),
    "omega->pi0 mumu": (223, "omega(782) --> pi0 mu+ mu-"),
    "omega->pi0 gamma": (223, "omega(782) --> pi0 gamma"),
    "rho->mumu": (113, "rho(770) --> mu+ mu-"),
    "phi->mumu": (333, "phi(1020) --> mu+ mu-"),
    "pi0->gammagamma": (111, "pi0 --> 2gamma"),
    "pi->munu": (211, "pi+ --> mu+ nu_mu"),
    "K->munu": (321, "K+ --> mu+ nu_mu"),
    "jpsi->ee": (443, "J/psi(1S) --> e+ e-"),
    "pi0->gamma ee": (111, "pi0 --> e+ e- gamma"),
    "eta->gamma ee": (221, "eta --> e+ e- gamma"),
    "eta_prime->gamma ee": (331, "eta^'(958) --> gamma e+ e-"),
    "omega->ee": (223, "omega(782) --> e+ e-"),
    "omega->pi0 ee": (223, "omega(782) --> pi0 e+ e-"),
    "rho->ee": (113, "rho(770) --> e+ e-"),
    "phi->ee": (333, "phi(1020) --> e+ e-"),
}
"""Known modes: key → (PDG Monte Carlo id of the parent, PDG decay description)."""

FALLBACK: dict[str, float] = {
    "eta->gamma mumu": 3.1e-4,
    "eta->mumu": 5.8e-6,
    "eta->gammagamma": 0.394,
    "eta_prime->gamma mumu": 1.09e-4,
    "eta_prime->gammagamma": 0.023,
    "omega->mumu": 7.40e-5,
    "omega->pi0 mumu": 1.34e-4,
    "omega->pi0 gamma": 0.0833,
    "rho->mumu": 4.55e-5,
    "phi->mumu": 2.86e-4,
    "pi0->gammagamma": 0.988,
    "pi->munu": 0.999877,
    "K->munu": 0.636,
    "jpsi->ee": 0.0597,
    "pi0->gamma ee": 0.01174,
    "eta->gamma ee": 6.9e-3,
    "eta_prime->gamma ee": 4.91e-4,
    "omega->ee": 7.39e-5,
    "omega->pi0 ee": 7.7e-4,
    "rho->ee": 4.72e-5,
    "phi->ee": 2.974e-4,
}
"""Documented fallback values (docs/explanation/physics.md §3.1, PDG 2024), used only when `pdg` lacks a mode."""


@dataclass(frozen=True)
class BranchingRatio:
    """One branching ratio and where it came from."""

    value: float
    key: str
    description: str
    pdg_identifier: str | None
    edition: str | None
    source: str
    """``"pdg"`` (read from the database) or ``"fallback"`` (:data:`FALLBACK`)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@cache
def _api() -> Any:
    import pdg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy warnings inside `pdg`, not ours
        return pdg.connect()


def edition() -> str | None:
    """The PDG edition of the installed `pdg` database (e.g. ``"2026"``), None if unavailable.

    Example:
        >>> isinstance(edition(), str | None)
        True
    """
    try:
        return _tables()[0]
    except Exception:  # noqa: BLE001 - no database: the edition is unknown
        return None


def _read_tables() -> tuple[str, dict[int, dict[str, tuple[float, str]]]]:
    """The edition and, per parent of :data:`MODES`, its measured branching fractions
    (description → (value, PDG identifier)), read from the database."""
    api = _api()
    modes: dict[int, dict[str, tuple[float, str]]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mcid in sorted({m for m, _ in MODES.values()}):
            particle = api.get_particle_by_mcid(mcid)
            modes[mcid] = {
                bf.description: (float(bf.value), str(bf.pdgid))
                for bf in particle.branching_fractions()
                if bf.value is not None and not bf.is_limit
            }
    return str(api.default_edition), modes


Tables = tuple[str, dict[int, dict[str, tuple[float, str]]]]


def _decode_tables(doc: dict[str, Any]) -> Tables | None:
    modes = {
        int(m): {d: (float(v), str(i)) for d, (v, i) in table.items()}
        for m, table in doc["modes"].items()
    }
    if set(modes) != {m for m, _ in MODES.values()}:
        return None
    return str(doc["edition"]), modes


@cache
def _tables() -> Tables:
    """:func:`_read_tables`, cached on disk per installed `pdg` version (the database ships
    with the package; :func:`gammastar.core.cachedir.cached_json`,
    ``pdgdata/pdg-<version>.json``). Opening the database and walking the parents' decays
    costs about a second of CPU in every process that generates mock data; the values are the
    database's own (``tests/test_mock.py``)."""
    return cached_json(
        "pdgdata",
        "pdg",
        _read_tables,
        lambda found: {"edition": found[0], "modes": found[1]},
        _decode_tables,
    )


def _modes_of(mcid: int) -> dict[str, tuple[float, str]]:
    """The measured branching fractions of one parent of :data:`MODES`."""
    return _tables()[1][mcid]


def measured_fraction(mcid: int, description: str) -> float | None:
    """The database's measured branching fraction of one decay of a parent of :data:`MODES`
    (by PDG MC id and decay description), from the tables cached on disk (:func:`_tables`);
    ``None`` when the database lacks it (or cannot be opened), or for another parent.

    Example:
        >>> 0.05 < measured_fraction(443, "J/psi(1S) --> mu+ mu-") < 0.07
        True
    """
    try:
        found = _tables()[1].get(mcid, {}).get(description)
    except Exception:  # noqa: BLE001 - database unusable: the caller's fallback
        return None
    return None if found is None else found[0]


@cache
def branching_ratio(key: str) -> BranchingRatio:
    """A branching ratio from the PDG database, or the documented fallback.

    Arguments:
        key: one of :data:`MODES` (e.g. ``"eta->gamma mumu"``).

    Returns:
        A :class:`BranchingRatio` with the value, the PDG identifier and edition, and the
        source (``"pdg"`` or ``"fallback"``).

    Raises:
        KeyError: unknown mode key.

    References:
        Particle Data Group, Review of Particle Physics (edition as returned); docs/explanation/physics.md §3.1.

    Example:
        >>> br = branching_ratio("eta->gamma mumu")
        >>> 2.5e-4 < br.value < 3.5e-4
        True
    """
    try:
        mcid, description = MODES[key]
    except KeyError:
        raise KeyError(f"unknown decay mode {key!r}; known: {sorted(MODES)}") from None
    try:
        found = _modes_of(mcid).get(description)
    except Exception:  # noqa: BLE001 - database unusable: documented fallback table
        found = None
    if found is not None:
        return BranchingRatio(found[0], key, description, found[1], edition(), "pdg")
    logging.getLogger(__name__).warning(
        "PDG database has no value for %r (%s); using the documented fallback %.3g",
        key,
        description,
        FALLBACK[key],
    )
    return BranchingRatio(FALLBACK[key], key, description, None, "fallback", "fallback")


def branching_ratios(keys: list[str] | None = None) -> dict[str, BranchingRatio]:
    """Several branching ratios (all of :data:`MODES` when ``keys`` is None)."""
    return {k: branching_ratio(k) for k in (keys or list(MODES))}
