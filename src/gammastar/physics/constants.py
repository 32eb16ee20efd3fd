"""Physical constants and particle masses (GeV, m, s); masses from the `particle` package (PDG)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, cast

from gammastar.core.cachedir import cached_json

ALPHA_EM: float = 1.0 / 137.035999084
"""Fine-structure constant at q² = 0 (CODATA 2018)."""
HBARC_GEV_M: float = 1.973269804e-16
"""ħc in GeV·m."""
HBAR_GEV_S: float = 6.582119569e-25
"""ħ in GeV·s."""
C_M_PER_S: float = 299_792_458.0
MB_TO_CM2: float = 1e-27

PDGID = {
    "e": 11,
    "mu": 13,
    "pi0": 111,
    "pi+": 211,
    "K+": 321,
    "eta": 221,
    "eta_prime": 331,
    "rho": 113,
    "omega": 223,
    "phi": 333,
    "jpsi": 443,
    "psi2S": 100443,
    "upsilon1S": 553,
    "upsilon2S": 100553,
    "upsilon3S": 200553,
    "proton": 2212,
}


@cache
def mass(name: str) -> float:
    """PDG mass in GeV of a particle named as in :data:`PDGID` (`particle`'s
    ``Particle.from_pdgid``, through :func:`_pdg_masses`' cache).

    Example:
        >>> round(mass("mu"), 7)
        0.1056584
    """
    try:
        pdgid = PDGID[name]
    except KeyError:
        raise KeyError(f"unknown particle {name!r}; known: {sorted(PDGID)}") from None
    return _pdg_masses()[pdgid] / 1000.0


def _masses_from_particle() -> dict[int, float]:
    """{PDG id: mass in MeV} of :data:`PDGID`, from ``particle.Particle.from_pdgid``."""
    from particle import Particle

    return {pdgid: _mass_mev(Particle.from_pdgid(pdgid)) for pdgid in PDGID.values()}


def _mass_mev(p: Any) -> float:
    """The particle's mass (MeV); an entry without one is an error in :data:`PDGID`."""
    if p.mass is None:
        raise ValueError(f"PDGID: {p.name} has no mass in the particle package")
    return float(p.mass)


@cache
def _pdg_masses() -> dict[int, float]:
    """:func:`_masses_from_particle`, cached on disk per installed `particle` version
    (:func:`gammastar.core.cachedir.cached_json`, ``constants/particle-<version>.json``).
    Importing `particle` and its first lookup load its whole PDG table, a noticeable CPU cost
    in every process, which a selection that keeps the narrow peaks whole in its polarisation
    bins would pay. The numbers are `particle`'s own, version by version
    (``tests/test_constants.py``)."""

    return cast(dict[int, float], _cached_per_pdgid("constants", _masses_from_particle))


def _cached_per_pdgid(
    folder: str, compute: Callable[[], Mapping[int, float | None]]
) -> dict[int, float | None]:
    """``compute()`` ({PDG id of :data:`PDGID`: a number or ``None``}) cached on disk per
    installed `particle` version, in ``<folder>/particle-<version>.json``."""

    def decode(doc: dict[str, float | None]) -> dict[int, float | None] | None:
        got = {int(k): None if v is None else float(v) for k, v in doc.items()}
        return got if set(got) == set(PDGID.values()) else None

    return cached_json(
        folder,
        "particle",
        lambda: dict(compute()),
        lambda out: {str(k): v for k, v in out.items()},
        decode,
    )


def _widths_from_particle() -> dict[int, float | None]:
    """{PDG id: total width in MeV (``None`` where `particle` has none)} of :data:`PDGID`."""
    from particle import Particle

    out: dict[int, float | None] = {}
    for pdgid in PDGID.values():
        w = Particle.from_pdgid(pdgid).width
        out[pdgid] = None if w is None else float(w)
    return out


@cache
def _pdg_widths() -> dict[int, float | None]:
    """:func:`_widths_from_particle`, cached on disk per installed `particle` version as the
    masses are (``widths/particle-<version>.json``): the mock's line shapes ask for widths in
    every process that generates."""

    return _cached_per_pdgid("widths", _widths_from_particle)


@cache
def width(name: str) -> float:
    """PDG total width in GeV (read with `particle`, through :func:`_pdg_widths`' cache).

    Example:
        >>> 0.14 < width("rho") < 0.16
        True
    """
    w = _pdg_widths()[PDGID[name]]
    if w is None:
        raise KeyError(f"particle {name!r} has no width in the installed `particle` release")
    return w / 1000.0


M_E: float = 0.51099895e-3
M_MU: float = 0.1056583755
"""Lepton masses in GeV (PDG 2024); also available through :func:`mass`."""

M_PROTON: float = 0.93827208816
M_PI: float = 0.13957039
M_PI0: float = 0.1349768
M_K: float = 0.493677
M_K0: float = 0.497611
M_ETA: float = 0.547862
M_OMEGA: float = 0.78266
M_PHI: float = 1.019461
"""Hadron masses in GeV (PDG 2024), for module-level use (thresholds, default arguments,
beam kinematics); :func:`mass` gives the installed `particle` release's numbers
(``tests/test_constants.py`` keeps the two within the PDG's quoted precision)."""
