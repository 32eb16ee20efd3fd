r"""Dark-photon production in meson decays: P → γA′ and V → PA′ branching ratios.

Hand-written from docs/explanation/physics.md §1 (which follows Allison & Blinov Eq. 6 applied to decay rates;
see also Batell, Pospelov & Ritz arXiv:0906.5614 and Gorbunov et al. for P → γA′):

.. math::

    \mathrm{BR}(P \to \gamma A') = 2\varepsilon^2 |F_P(m^2)|^2 (1 - m^2/M_P^2)^3\,
        \mathrm{BR}(P \to \gamma\gamma)

    \mathrm{BR}(V \to P A') = \varepsilon^2 |F_{VP}(m^2)|^2\, \mathrm{BR}(V \to P\gamma)\,
        \left[\left(1 + \frac{m^2}{M_V^2 - M_P^2}\right)^2
        - \frac{4 M_V^2 m^2}{(M_V^2 - M_P^2)^2}\right]^{3/2}

These are exactly what Eq. 6 returns when fed the Kroll–Wada P → γℓℓ and the V → Pℓℓ spectra
of :mod:`gammastar.physics.dalitz` (the closure tests in ``tests/test_aprime_meson.py``).

Branching ratios of the photon modes come from the PDG database through
:mod:`gammastar.physics.pdgdata` (or :func:`pdg_branching_ratio` for the modes it lacks).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics import dalitz, pdgdata
from gammastar.physics.constants import mass
from gammastar.physics.dalitz import on_support, vector_to_pseudoscalar_phase_space

# Modes needed here that gammastar.physics.pdgdata does not list:
# key → (PDG MC id of the parent, PDG description, fallback value (PDG 2024/2026)).
EXTRA_MODES: dict[str, tuple[int, str, float]] = {
    "phi->eta gamma": (333, "phi(1020) --> eta gamma", 1.303e-2),
    "rho->pi0 gamma": (113, "rho(770) --> pi0 gamma", 4.7e-4),
    "jpsi->mumu": (443, "J/psi(1S) --> mu+ mu-", 5.961e-2),
}


@cache
def pdg_branching_ratio(key: str) -> float:
    """A branching ratio by key: :mod:`~gammastar.physics.pdgdata` modes or :data:`EXTRA_MODES`.

    Read from the installed PDG database; the documented fallback when it lacks the mode.

    Example:
        >>> 0.05 < pdg_branching_ratio("jpsi->ee") < 0.07
        True
    """

    if key in pdgdata.MODES:
        return float(pdgdata.branching_ratio(key).value)
    if key not in EXTRA_MODES:
        known = sorted(set(pdgdata.MODES) | set(EXTRA_MODES))
        raise KeyError(f"unknown decay mode {key!r}; known: {known}")
    mcid, description, fallback = EXTRA_MODES[key]
    value = pdgdata.measured_fraction(mcid, description)
    return float(value) if value is not None else fallback


def _ff2(form_factor2: ArrayLike | Callable, m: NDArray[np.float64]) -> NDArray[np.float64]:
    value = form_factor2(m) if callable(form_factor2) else form_factor2
    return np.asarray(value, dtype=np.float64)


def pseudoscalar_to_gamma_aprime(
    m: ArrayLike,
    m_parent: float,
    br_gammagamma: float = 1.0,
    form_factor2: ArrayLike | Callable = 1.0,
    eps: ArrayLike = 1.0,
) -> NDArray[np.float64]:
    r"""BR(P → γA′) = 2ε²|F(m²)|²(1 − m²/M²)³ BR(P → γγ); 0 for m ≥ M.

    Arguments:
        m: A′ mass, GeV.
        m_parent: pseudoscalar mass M, GeV.
        br_gammagamma: BR(P → γγ) (1 gives the ratio to the two-photon mode).
        form_factor2: |F(m²)|², number or callable of m.
        eps: kinetic mixing ε.

    References:
        docs/explanation/physics.md §1; Allison & Blinov Eq. (6); Batell, Pospelov, Ritz arXiv:0906.5614.

    Example:
        >>> float(pseudoscalar_to_gamma_aprime(0.0, 0.135))
        2.0
    """
    m = np.asarray(m, dtype=np.float64)

    def value(ms):
        return 2.0 * np.asarray(eps) ** 2 * _ff2(form_factor2, ms) * (1 - ms**2 / m_parent**2) ** 3

    return on_support(m, (m >= 0) & (m < m_parent), 0.0, value) * br_gammagamma


def vector_to_pseudoscalar_aprime(
    m: ArrayLike,
    m_parent: float,
    m_daughter: float,
    br_pgamma: float = 1.0,
    form_factor2: ArrayLike | Callable = 1.0,
    eps: ArrayLike = 1.0,
) -> NDArray[np.float64]:
    r"""BR(V → PA′) = ε²|F|² BR(V → Pγ) [(1 + m²/Δ)² − 4M_V²m²/Δ²]^{3/2}, Δ = M_V² − M_P².

    Arguments:
        m: A′ mass, GeV.
        m_parent, m_daughter: vector and pseudoscalar masses, GeV.
        br_pgamma: BR(V → Pγ).
        form_factor2: |F_VP(m²)|², number or callable of m.
        eps: kinetic mixing ε.

    References:
        docs/explanation/physics.md §1; Landsberg, Phys. Rep. 128 (1985) 301.

    Example:
        >>> float(vector_to_pseudoscalar_aprime(0.0, 0.78, 0.135))
        1.0
    """
    m = np.asarray(m, dtype=np.float64)

    def value(ms):
        phase_space = vector_to_pseudoscalar_phase_space(ms, m_parent, m_daughter)
        return np.asarray(eps) ** 2 * _ff2(form_factor2, ms) * phase_space

    return on_support(m, (m >= 0) & (m < m_parent - m_daughter), 0.0, value) * br_pgamma


def default_form_factor(meson: str) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """|F(m²)|² used by default for a meson's γ* transition (from :mod:`~gammastar.physics.dalitz`).

    π0: pole with Λ⁻² = a_π/m_π², a_π = 0.0332 (PDG slope of the π0 TFF) [lit];
    η: NA60 pole 1.934 GeV⁻²; η′: NA60 Breit–Wigner-like form; ω → π0: NA60 pole 2.223 GeV⁻²;
    φ → η: VMD pole at the φ mass (Λ⁻² = 1/m_φ²) [default].
    """

    if meson == "pi0":
        inv2 = 0.0332 / mass("pi0") ** 2
        return lambda m: dalitz.form_factor_pole(m, inv2)
    if meson == "eta":
        return lambda m: dalitz.form_factor_pole(m, dalitz.ETA_LAMBDA_INV2)
    if meson == "eta_prime":
        return dalitz.form_factor_eta_prime
    if meson == "omega":
        return lambda m: dalitz.form_factor_pole(m, dalitz.OMEGA_LAMBDA_INV2)
    if meson == "phi":
        inv2 = 1.0 / mass("phi") ** 2
        return lambda m: dalitz.form_factor_pole(m, inv2)
    raise KeyError(f"no transition form factor for {meson!r}")


PSEUDOSCALARS = {
    "pi0": "pi0->gammagamma",
    "eta": "eta->gammagamma",
    "eta_prime": "eta_prime->gammagamma",
}
VECTOR_DALITZ = {"omega": ("pi0", "omega->pi0 gamma"), "phi": ("eta", "phi->eta gamma")}


def branching_ratio(
    meson: str, m_aprime: ArrayLike, eps: ArrayLike = 1.0, *, form_factors: bool = True
) -> NDArray[np.float64]:
    """BR(meson → X A′) for ``"pi0"``, ``"eta"``, ``"eta_prime"`` (→ γA′), ``"omega"`` (→ π0A′),
    ``"phi"`` (→ ηA′), with PDG photon-mode branching ratios and the default form factors.

    Arguments:
        meson: parent name.
        m_aprime: A′ masses, GeV.
        eps: kinetic mixing.
        form_factors: use :func:`default_form_factor` (else |F| = 1).

    Example:
        >>> br = branching_ratio("pi0", [0.0], form_factors=False)
        >>> bool(abs(br[0] / 2 - 0.988) < 0.002)
        True
    """
    ff = default_form_factor(meson) if form_factors else 1.0
    if meson in PSEUDOSCALARS:
        return pseudoscalar_to_gamma_aprime(
            m_aprime, mass(meson), pdg_branching_ratio(PSEUDOSCALARS[meson]), ff, eps
        )
    if meson in VECTOR_DALITZ:
        daughter, key = VECTOR_DALITZ[meson]
        return vector_to_pseudoscalar_aprime(
            m_aprime, mass(meson), mass(daughter), pdg_branching_ratio(key), ff, eps
        )
    known = sorted(PSEUDOSCALARS) + sorted(VECTOR_DALITZ)
    raise KeyError(f"unknown meson {meson!r} for A′ production; known: {known}")
