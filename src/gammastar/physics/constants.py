"""Physical constants and particle masses (GeV, m, s); masses from the `particle` package (PDG)."""

from __future__ import annotations

from functools import cache

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
    """PDG mass in GeV of a particle named as in :data:`PDGID` (`particle`'s PDG table:
    :func:`_pdg_table_masses`, else ``Particle.from_pdgid``; the same numbers).

    Example:
        >>> round(mass("mu"), 7)
        0.1056584
    """
    try:
        pdgid = PDGID[name]
    except KeyError:
        raise KeyError(f"unknown particle {name!r}; known: {sorted(PDGID)}") from None
    m = _pdg_table_masses().get(pdgid)
    if m is None:
        from particle import Particle

        m = float(Particle.from_pdgid(pdgid).mass)
    return m / 1000.0


@cache
def _pdg_table_masses() -> dict[int, float]:
    """{PDG id: mass in MeV} of the particles of :data:`PDGID`, read from `particle`'s own
    PDG table (its newest ``particleYYYY.csv``, the file ``Particle.load_table`` reads by
    default, parsed as it parses it: ``float`` of the ``Mass`` column) without importing
    `particle`: its import and first lookup (which loads that table and the nuclei's,
    ~1800 rows) cost ~0.13 s CPU in every process, 5% of a selection of 2·10⁶ pairs with the
    polarisation bins' peaks (issue 12). Empty where the file is not found (then
    ``Particle.from_pdgid``); ``tests/test_constants.py`` checks every mass against it."""
    import csv
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("particle")
    if spec is None or not spec.submodule_search_locations:
        return {}
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tables = sorted(data.glob("particle[0-9][0-9][0-9][0-9].csv"))
    if not tables:
        return {}
    want = set(PDGID.values())
    out: dict[int, float] = {}
    with tables[-1].open(encoding="utf_8") as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            try:
                pdgid = int(row["ID"])
                if pdgid in want:
                    out[pdgid] = float(row["Mass"])
            except (KeyError, TypeError, ValueError):
                continue
    return out


@cache
def width(name: str) -> float:
    """PDG total width in GeV (read with `particle`).

    Example:
        >>> 0.14 < width("rho") < 0.16
        True
    """
    from particle import Particle

    return float(Particle.from_pdgid(PDGID[name]).width) / 1000.0


M_E: float = 0.51099895e-3
M_MU: float = 0.1056583755
"""Lepton masses in GeV (PDG 2024); also available through :func:`mass`."""
