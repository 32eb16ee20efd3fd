r"""Millicharged-particle (χχ̄) production in meson decays.

Hand-written from docs/explanation/physics.md §1 (Allison & Blinov Eq. 8 integrated over the decay phase space;
it matches Magill, Plestid, Pospelov & Tsai arXiv:1806.03310, the paper's ref. [36]):

* P → γχχ̄ (π0, η, η′), per unit BR(P → γγ):

  .. math:: \frac{\mathrm{BR}(P\to\gamma\chi\bar\chi)}{\mathrm{BR}(P\to\gamma\gamma)}
     = \frac{2Q^2\alpha}{3\pi}\int_{4m_\chi^2}^{M^2}\frac{ds}{s}\Big(1-\frac{s}{M^2}\Big)^3
       K_\chi(\sqrt s)\,|F(s)|^2

* V → Pχχ̄ (ω → π0, φ → η), per unit BR(V → Pγ):

  .. math:: \frac{\mathrm{BR}(V\to P\chi\bar\chi)}{\mathrm{BR}(V\to P\gamma)}
     = \frac{Q^2\alpha}{3\pi}\int\frac{ds}{s} K_\chi(\sqrt s)
       \Big[\Big(1+\frac{s}{M_V^2-M_P^2}\Big)^2 - \frac{4M_V^2 s}{(M_V^2-M_P^2)^2}\Big]^{3/2}|F(s)|^2

* V → χχ̄ (ρ, ω, φ, J/ψ):

  .. math:: \mathrm{BR}(V\to\chi\bar\chi) = Q^2\,\mathrm{BR}(V\to ee)\,
     \frac{(M^2+2m_\chi^2)\sqrt{M^2-4m_\chi^2}}{(M^2+2m_e^2)\sqrt{M^2-4m_e^2}}

The integrals reuse the Dalitz shapes of :mod:`gammastar.physics.dalitz` with the lepton mass
replaced by m_χ and α by Q²α (Eq. 8). Channels included per meson (:data:`CHANNELS`):
π0, η, η′: γχχ̄; ρ: χχ̄ (ρ → π0χχ̄, BR(ρ → π0γ) = 4.7e-4, is left out); ω: χχ̄ + π0χχ̄;
φ: χχ̄ + ηχχ̄ (φ → π0χχ̄ left out, BR(φ → π0γ) = 1.3e-3); J/ψ: χχ̄.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.aprime_meson import default_form_factor, pdg_branching_ratio
from gammastar.physics.constants import M_E, mass
from gammastar.physics.dalitz import pseudoscalar_dalitz_dgamma_dm, vector_dalitz_dgamma_dm

MESONS = ("pi0", "eta", "eta_prime", "rho", "omega", "phi", "jpsi")
"""Mesons known to :func:`meson_branching_ratio`."""

CHANNELS: dict[str, tuple[str, ...]] = {
    "pi0": ("gamma chichi",),
    "eta": ("gamma chichi",),
    "eta_prime": ("gamma chichi",),
    "rho": ("chichi",),
    "omega": ("chichi", "pi0 chichi"),
    "phi": ("chichi", "eta chichi"),
    "jpsi": ("chichi",),
}
"""Decay channels summed by :func:`meson_branching_ratio`."""

_EE_KEYS = {"rho": "rho->ee", "omega": "omega->ee", "phi": "phi->ee", "jpsi": "jpsi->ee"}
_GG_KEYS = {
    "pi0": "pi0->gammagamma",
    "eta": "eta->gammagamma",
    "eta_prime": "eta_prime->gammagamma",
}
_VP = {"omega": ("pi0", "omega->pi0 gamma"), "phi": ("eta", "phi->eta gamma")}


def _check_mchi(m_chi: ArrayLike) -> NDArray[np.float64]:
    m_chi = np.asarray(m_chi, dtype=np.float64)
    if np.any(~np.isfinite(m_chi)) or np.any(m_chi <= 0):
        raise ValueError("m_chi must be positive and finite (the Dalitz integrals diverge at 0)")
    return m_chi


def _integrate_dm(
    density: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]],
    m_chi: NDArray[np.float64],
    hi: float,
    points: tuple[float, ...] = (),
) -> NDArray[np.float64]:
    """∫_{2m_χ}^{hi} density(m, m_χ) dm for every m_χ (0 where 2m_χ ≥ hi).

    In t = ln(m/2m_χ) (smooth near threshold, where the density ∝ 1/m), split at ``points``
    (narrow peaks of a form factor), by tanh-sinh quadrature (``scipy.integrate.tanhsinh``:
    every m_χ at once, ``density`` elementwise in both arguments; the square-root edges at
    threshold and at a Dalitz end point are within its scope) to 10⁻¹⁰ relative.

    Raises:
        ArithmeticError: the quadrature does not converge.
    """
    from scipy.integrate import tanhsinh

    out = np.zeros(m_chi.shape)
    inside = 2.0 * m_chi < hi
    if not inside.any():
        return out
    mc = m_chi[inside]
    lo = 2.0 * mc
    t_hi = np.log(hi / lo)
    cuts = [np.clip(np.log(p / lo), 0.0, t_hi) for p in points]
    edges = np.sort(np.stack([np.zeros_like(t_hi), *cuts, t_hi]), axis=0)

    def g(t, lo, mc):
        m = lo * np.exp(t)
        return density(m, mc) * m

    total = np.zeros(mc.shape)
    for a, b in itertools.pairwise(edges):
        res = tanhsinh(g, a, b, args=(lo, mc), rtol=1e-10, atol=0.0)
        if not np.all(res.success | (a == b)):
            raise ArithmeticError(f"Dalitz integral for m_chi {mc[~res.success]} did not converge")
        total += np.where(a < b, res.integral, 0.0)
    out[inside] = total
    return out


def pseudoscalar_ratio(
    m_parent: float, m_chi: ArrayLike, q: float = 1.0, form_factor2: ArrayLike | Callable = 1.0
) -> NDArray[np.float64]:
    r"""BR(P → γχχ̄)/BR(P → γγ) (Eq. 8 integrated; see the module docstring).

    Arguments:
        m_parent: pseudoscalar mass, GeV.
        m_chi: χ masses (> 0), GeV.
        q: millicharge in units of e.
        form_factor2: |F(m²)|² of the P → γγ* transition (number or callable of m).

    Returns:
        The ratio per m_χ; 0 where 2m_χ ≥ M.

    References:
        docs/explanation/physics.md §1 (test values, F = 1: π0 at m_χ = 0.01/0.05 GeV: 2.79e-3/1.16e-5).

    Example:
        >>> round(float(pseudoscalar_ratio(0.1349768, 0.01)), 5)
        0.00279
    """

    m_chi = _check_mchi(m_chi)
    out = _integrate_dm(
        lambda m, mc: pseudoscalar_dalitz_dgamma_dm(m, m_parent, mc, form_factor2),
        m_chi.ravel(),
        m_parent,
        points=(0.764,),
    )
    return q**2 * out.reshape(m_chi.shape)


def vector_dalitz_ratio(
    m_parent: float,
    m_daughter: float,
    m_chi: ArrayLike,
    q: float = 1.0,
    form_factor2: ArrayLike | Callable = 1.0,
) -> NDArray[np.float64]:
    """BR(V → Pχχ̄)/BR(V → Pγ) (Eq. 8 applied to the V → Pℓℓ spectrum).

    Example:
        >>> r = vector_dalitz_ratio(0.78266, 0.1349768, 0.1056583755)  # = ω → π0μμ / π0γ, F = 1
        >>> bool(5e-4 < float(r) < 1.2e-3)
        True
    """

    m_chi = _check_mchi(m_chi)
    out = _integrate_dm(
        lambda m, mc: vector_dalitz_dgamma_dm(m, m_parent, m_daughter, mc, form_factor2),
        m_chi.ravel(),
        m_parent - m_daughter,
    )
    return q**2 * out.reshape(m_chi.shape)


def vector_direct_ratio(m_parent: float, m_chi: ArrayLike, q: float = 1.0) -> NDArray[np.float64]:
    r"""BR(V → χχ̄)/BR(V → ee) = Q² (M²+2m_χ²)√(M²−4m_χ²) / [(M²+2m_e²)√(M²−4m_e²)].

    Limits: → Q² (up to m_e²/M²) for m_χ → 0; 0 at and above 2m_χ = M.

    Example:
        >>> float(vector_direct_ratio(3.0969, 0.51099895e-3))
        1.0
    """
    m_chi = np.asarray(m_chi, dtype=np.float64)
    if np.any(m_chi < 0):
        raise ValueError("m_chi must not be negative")
    mm = m_parent**2
    num = (mm + 2 * m_chi**2) * np.sqrt(np.clip(mm - 4 * m_chi**2, 0.0, None))
    den = (mm + 2 * M_E**2) * np.sqrt(mm - 4 * M_E**2)
    return q**2 * num / den


def channel_branching_ratios(
    meson: str, m_chi: ArrayLike, q: float = 1.0, *, form_factors: bool = True
) -> dict[str, NDArray[np.float64]]:
    """BR(meson → χχ̄ + X) per channel of :data:`CHANNELS` (PDG photon/ee modes).

    Arguments:
        meson: one of :data:`MESONS`.
        m_chi: χ masses (> 0), GeV.
        q: millicharge in units of e.
        form_factors: use the default transition form factors
            (:func:`gammastar.physics.aprime_meson.default_form_factor`), else |F| = 1.
    """
    if meson not in MESONS:
        raise KeyError(f"unknown meson {meson!r}; known: {list(MESONS)}")
    m_chi = _check_mchi(m_chi)
    out: dict[str, NDArray[np.float64]] = {}
    if meson in _GG_KEYS:
        ff = default_form_factor(meson) if form_factors else 1.0
        out["gamma chichi"] = pdg_branching_ratio(_GG_KEYS[meson]) * pseudoscalar_ratio(
            mass(meson), m_chi, q, ff
        )
    if meson in _EE_KEYS:
        out["chichi"] = pdg_branching_ratio(_EE_KEYS[meson]) * vector_direct_ratio(
            mass(meson), m_chi, q
        )
    if meson in _VP:
        daughter, key = _VP[meson]
        ff = default_form_factor(meson) if form_factors else 1.0
        out[f"{daughter} chichi"] = pdg_branching_ratio(key) * vector_dalitz_ratio(
            mass(meson), mass(daughter), m_chi, q, ff
        )
    return out


def meson_branching_ratio(
    meson: str, m_chi: ArrayLike, q: float = 1.0, *, form_factors: bool = True
) -> NDArray[np.float64]:
    """BR(meson → χχ̄ + anything): the sum over the channels of :data:`CHANNELS` (public contract).

    Arguments:
        meson: ``"pi0"``, ``"eta"``, ``"eta_prime"``, ``"rho"``, ``"omega"``, ``"phi"``, ``"jpsi"``.
        m_chi: χ masses (> 0), GeV; vectorised.
        q: millicharge Q_χ in units of e (the BR scales as Q²).
        form_factors: default transition form factors (True) or |F| = 1.

    Returns:
        The branching ratio, same shape as ``m_chi``.

    References:
        docs/explanation/physics.md §1; Allison & Blinov Eq. (8); Magill et al. arXiv:1806.03310.

    Example:
        >>> br = meson_branching_ratio("jpsi", [0.1, 2.0], q=0.1)
        >>> bool(br[0] > br[1] == 0.0)
        True
    """
    chans = channel_branching_ratios(meson, m_chi, q, form_factors=form_factors)
    return np.sum(list(chans.values()), axis=0)
