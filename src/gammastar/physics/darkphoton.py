r"""Dark-photon (A′) decays: partial widths, branching ratios, lifetime (docs/explanation/physics.md §7).

Hand-written physics; every formula below cites its source.

* Leptonic widths (e.g. Bjorken, Essig, Schuster, Toro, PRD 80 (2009) 075018, Eq. 2;
  docs/explanation/physics.md §7):

  .. math:: \Gamma(A' \to \ell\ell) = \frac{\varepsilon^2 \alpha m}{3} K_\ell(m),
            \qquad K_\ell = \sqrt{1 - 4m_\ell^2/m^2}\,(1 + 2m_\ell^2/m^2).

* Hadronic width from the R ratio (Batell, Pospelov, Ritz PRD 79 (2009) 115008; Buschmann et al.
  arXiv:1505.07459; DarkCast arXiv:1801.04847 uses the same relation):

  .. math:: \Gamma(A' \to \text{hadrons}) = \frac{\varepsilon^2 \alpha m}{3} R(m^2),
            \qquad R = \sigma(e^+e^- \to \text{hadrons}) / \sigma_{\rm pt}(e^+e^- \to \mu\mu).

* ``cτ = ħc / Γ_tot`` (metres).

The R parametrisation (:func:`r_ratio`) is this package's own model, valid from 2m_e to 2.5 GeV
(below the charm threshold). It is the sum of

1. e⁺e⁻ → π⁺π⁻: ``R_ππ = β_π³ |F_π(s)|² / 4`` with the Gounaris–Sakurai (GS) pion form factor
   (Gounaris & Sakurai, PRL 21 (1968) 244) with ρ(770), ρ(1450), ρ(1700) and the parameters of the
   Belle τ → ππ⁰ν fit with F_π(0) = 1 (Fujikawa et al., PRD 78 (2008) 072006, Table VII), plus ρ–ω
   mixing ``× (1 + δ_ω s/m_ω² BW_ω)`` with |δ_ω| = 1.9e-3, arg δ_ω = 0.1 rad (typical of the e⁺e⁻
   fits, e.g. CMD-2 PLB 648 (2007) 28, BaBar PRD 86 (2012) 032013);
2. the narrow ω(782) and φ(1020) in their non-ππ channels (ω → 3π, π⁰γ; φ → K⁺K⁻, K_SK_L, 3π, ηγ)
   as relativistic Breit–Wigners with energy-dependent partial widths (P-wave q³ for two-body
   channels, (Q/Q_M)² near the 3π threshold), normalised to the PDG 2024 Γ_ee and branching
   ratios: ``R_V,f(s) = 9 M² Γ_ee Γ_f(s) / (α² [(s − M²)² + M² Γ(s)²])`` (so that the peak
   cross-section is 12π B_ee B_f / M²);
3. the multi-hadron continuum (4π, ωπ, KKπ, ηππ, …) as the three-flavour perturbative QCD value
   ``R_pQCD = 2 (1 + a + 1.64 a²)``, a = α_s/π with one-loop α_s(μ) (n_f = 3) run from
   α_s(m_τ) = 0.33 (PDG), switched on by a logistic turn-on centred at 1.25 GeV (width 0.10 GeV)
   and a threshold factor [1 − (4m_π/√s)⁶]³ (≈ 1 above 1 GeV).

Validation (``tests/test_darkphoton.py``): the ρ peak of |F_π|² (≈ 45 measured), the φ-peak
hadronic cross-section, the 3π and K K̄ peak cross-sections from the PDG, and R at 2.2324 GeV
against BESIII (R = 2.286 ± 0.068, PRL 128 (2022) 062004). The continuum between 1.1 and 1.5 GeV is
the least accurate part (a smooth turn-on, no ρ′/ω′ structure); the 2π, ω and φ regions, which
produce the dips in BR(A′ → ℓℓ), are resonance models fitted to data.

A semi-visible/invisible A′ (docs/explanation/physics.md §7): :class:`DarkSector` adds
``Γ(A′ → χχ̄) = α_D m/3 · K_χ(m)`` (Dirac fermion) or ``α_D m/12 · β_χ³`` (complex scalar), not
suppressed by ε², which lowers the visible fraction to ~ ε²α/α_D.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core.figures import figure_style, save_figure
from gammastar.errors import GammastarError
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.constants import (
    ALPHA_EM,
    HBARC_GEV_M,
    M_ETA,
    M_K,
    M_K0,
    M_OMEGA,
    M_PHI,
    M_PI,
    M_PI0,
)
from gammastar.physics.kinematics import kinematic_factor, two_body_momentum

__all__ = [
    "CHANNELS",
    "DarkSector",
    "branching_ratio",
    "ctau",
    "pion_form_factor",
    "plot_decays",
    "r_ratio",
    "r_ratio_components",
    "width",
]

# ---------------------------------------------------------------- particle data (PDG 2024)
GEV2_TO_NB = 0.3893794e6
"""(ħc)² in nb·GeV²."""

# Gounaris–Sakurai ρ, ρ′, ρ″ (Belle PRD 78 (2008) 072006, Table VII, F_π(0) = 1 fixed):
# mass, width (GeV), |coefficient|, phase (degrees)
_RHO = (0.7746, 0.1481)
_RHO1 = (1.446, 0.434, 0.15, 202.0)
_RHO2 = (1.728, 0.164, 0.037, 24.0)
# ρ–ω mixing (e+e- fits: |δ| ≈ 1.9e-3, arg ≈ 0.1 rad)
_DELTA_OMEGA = 1.9e-3 * np.exp(0.1j)


class _Resonance(TypedDict):
    """A narrow vector meson: mass, total width (GeV), B(ee), {channel: B}, and the
    branching fraction of the channels only in its total width (``other``)."""

    mass: float
    width: float
    bee: float
    channels: dict[str, float]
    other: float


# Narrow vector mesons, PDG 2024: mass, total width (GeV), B(ee), {channel: B}
_OMEGA: _Resonance = {
    "mass": M_OMEGA,
    "width": 8.68e-3,
    "bee": 7.38e-5,
    "channels": {"3pi": 0.892, "pi0gamma": 0.0835},
    "other": 0.0153 + 7.38e-5 + 0.0,  # ππ (in F_π) and ee: only in the total width
}
_PHI: _Resonance = {
    "mass": M_PHI,
    "width": 4.249e-3,
    "bee": 2.979e-4,
    "channels": {"KK": 0.491, "KSKL": 0.339, "3pi": 0.1524, "etagamma": 0.01303},
    "other": 2.979e-4 + 2.86e-4 + 1.32e-3,  # ee, μμ, π0γ
}

# continuum
_ALPHAS_MTAU = 0.33
_M_TAU = 1.77686
_TURN_ON = (1.25, 0.10)
R_VALID_MAX = 2.5
"""Upper end (GeV) of the validity range of :func:`r_ratio` (below open charm / J/ψ)."""


# ---------------------------------------------------------------- pion form factor
def _gs_bw(s: NDArray, m: float, g: float) -> NDArray:
    """Gounaris–Sakurai Breit–Wigner normalised to 1 at s = 0 (GS PRL 21 (1968) 244)."""
    mpi2 = M_PI**2
    sq = np.sqrt(s)
    p = 0.5 * np.sqrt(np.clip(s - 4 * mpi2, 0.0, None))
    pm = 0.5 * np.sqrt(m**2 - 4 * mpi2)

    def h(p_: NDArray | float, rs: NDArray | float) -> NDArray | float:
        return (2 / np.pi) * (p_ / rs) * np.log((rs + 2 * p_) / (2 * M_PI))

    hm = h(pm, m)
    dhds = hm * (1 / (8 * pm**2) - 1 / (2 * m**2)) + 1 / (2 * np.pi * m**2)
    above = s > 4 * mpi2
    rs = np.where(s > 0, sq, 1.0)
    h_above = h(np.where(above, p, 1.0), rs)
    # Below 2mπ: analytic continuation of β ln((1+β)/(1−β)) − iπβ with β = i b:
    # h(s) = (b/π) arctan(1/b), b = sqrt(4mπ²/s − 1); h(0) = 1/π; k² = s/4 − mπ² < 0.
    b = np.sqrt(np.clip(4 * mpi2 / np.where(s > 0, s, 1.0) - 1, 0.0, None))
    h_below = np.where(s > 0, b / np.pi * np.arctan2(1.0, b), 1 / np.pi)
    hs = np.where(above, h_above, h_below)
    k2 = s / 4 - mpi2
    f = g * m**2 / pm**3 * (k2 * (hs - hm) + (m**2 - s) * pm**2 * dhds)
    d = (
        3 / np.pi * mpi2 / pm**2 * np.log((m + 2 * pm) / (2 * M_PI))
        + m / (2 * np.pi * pm)
        - mpi2 * m / (np.pi * pm**3)
    )
    gs = np.where(above, g * m**2 / rs * (p / pm) ** 3, 0.0)
    return (m**2 + d * m * g) / (m**2 - s + f - 1j * gs)


def pion_form_factor(s: ArrayLike) -> NDArray[np.complex128]:
    r"""Electromagnetic pion form factor F_π(s) (timelike), GS model with ρ–ω mixing.

    .. math:: F_\pi = \frac{BW_\rho (1 + \delta_\omega \tfrac{s}{m_\omega^2} BW_\omega)
              + \beta BW_{\rho'} + \gamma BW_{\rho''}}{1 + \beta + \gamma}

    Arguments:
        s: invariant mass squared, GeV².

    Returns:
        Complex F_π(s), F_π(0) = 1.

    References:
        Gounaris & Sakurai PRL 21 (1968) 244; Belle PRD 78 (2008) 072006 (Table VII).

    Example:
        >>> round(abs(complex(pion_form_factor(0.0))), 6)
        1.0
    """
    s = np.asarray(s, dtype=np.float64)
    m_w, g_w = _OMEGA["mass"], _OMEGA["width"]
    bw_w = m_w**2 / (m_w**2 - s - 1j * m_w * g_w)
    beta = _RHO1[2] * np.exp(1j * np.deg2rad(_RHO1[3]))
    gamma = _RHO2[2] * np.exp(1j * np.deg2rad(_RHO2[3]))
    num = (
        _gs_bw(s, *_RHO) * (1 + _DELTA_OMEGA * s / m_w**2 * bw_w)
        + beta * _gs_bw(s, *_RHO1[:2])
        + gamma * _gs_bw(s, *_RHO2[:2])
    )
    return num / (1 + beta + gamma)


# ---------------------------------------------------------------- narrow resonances
def _channel_scale(s: NDArray, m: float, channel: str) -> NDArray:
    """Energy dependence Γ_f(s)/Γ_f(M²) of a partial width (phenomenological, see module doc)."""
    two_body = {
        "pi0gamma": (M_PI0, 0.0),
        "KK": (M_K, M_K),
        "KSKL": (M_K0, M_K0),
        "etagamma": (M_ETA, 0.0),
    }
    if channel in two_body:
        q = two_body_momentum(np.sqrt(np.clip(s, 0.0, None)), *two_body[channel])
        q0 = two_body_momentum(m, *two_body[channel])
        return (q / q0) ** 3  # P-wave
    if channel == "3pi":
        thr = 2 * M_PI + M_PI0
        q = np.clip(np.sqrt(s) - thr, 0.0, None)
        return np.minimum((q / (m - thr)) ** 2, 4.0)
    raise ValueError(channel)


def _resonance_r(s: NDArray, res: _Resonance) -> dict[str, NDArray]:
    m, g, bee = res["mass"], res["width"], res["bee"]
    gee = bee * g
    partial = {c: b * g * _channel_scale(s, m, c) for c, b in res["channels"].items()}
    g_tot = sum(partial.values()) + res["other"] * g
    den = (s - m**2) ** 2 + m**2 * g_tot**2
    return {c: 9 * m**2 * gee * gp / (ALPHA_EM**2 * den) for c, gp in partial.items()}


def _summed(parts: dict[str, NDArray], like: NDArray) -> NDArray[np.float64]:
    """Σ of the parts, in their order (0 of the shape of ``like`` for none)."""
    total = np.zeros_like(like, dtype=np.float64)
    for part in parts.values():
        total = total + part
    return total


def _alpha_s(mu: NDArray) -> NDArray:
    """One-loop α_s(μ), n_f = 3, from α_s(m_τ) = 0.33; frozen below 1 GeV."""
    mu = np.maximum(mu, 1.0)
    b0 = 11 - 2 / 3 * 3
    return _ALPHAS_MTAU / (1 + _ALPHAS_MTAU * b0 / (4 * np.pi) * np.log(mu**2 / _M_TAU**2))


def r_ratio_components(m: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """The parts of :func:`r_ratio`: ``"pipi"``, ``"omega"``, ``"phi"``, ``"continuum"``.

    Arguments:
        m: centre-of-mass energy √s (= A′ mass), GeV.

    Returns:
        Dict of arrays of R contributions; their sum is :func:`r_ratio`.

    References:
        See the module docstring (GS/Belle, PDG 2024, pQCD).

    Example:
        >>> sorted(r_ratio_components(1.0))
        ['continuum', 'omega', 'phi', 'pipi']
    """
    m = np.asarray(m, dtype=np.float64)
    s = m**2
    beta = np.sqrt(np.clip(1 - 4 * M_PI**2 / np.where(s > 0, s, 1.0), 0.0, None))
    pipi = np.where(m > 2 * M_PI, beta**3 * np.abs(pion_form_factor(s)) ** 2 / 4, 0.0)
    omega = _summed(_resonance_r(s, _OMEGA), s)
    phi = _summed(_resonance_r(s, _PHI), s)
    a = _alpha_s(m) / np.pi
    r_pqcd = 2.0 * (1 + a + 1.64 * a**2)
    x0, w = _TURN_ON
    thr = 4 * M_PI
    with np.errstate(over="ignore"):
        turn_on = 1 / (1 + np.exp(-(m - x0) / w))
    thr_factor = np.clip(1 - (thr / np.where(m > 0, m, 1.0)) ** 6, 0.0, None) ** 3
    cont = np.where(m > thr, r_pqcd * turn_on * thr_factor, 0.0)
    return {"pipi": pipi, "omega": omega, "phi": phi, "continuum": cont}


def r_ratio(m: ArrayLike) -> NDArray[np.float64]:
    r"""R(s) = σ(e⁺e⁻ → hadrons)/σ_pt(e⁺e⁻ → μμ) at √s = m (this package's parametrisation).

    Valid from 0 to :data:`R_VALID_MAX` = 2.5 GeV; 0 below the π⁰γ threshold.

    Arguments:
        m: √s in GeV.

    Returns:
        R, same shape as ``m``.

    References:
        Module docstring; BESIII PRL 128 (2022) 062004 for the 2.2 GeV check.

    Example:
        >>> 2.0 < float(r_ratio(2.0)) < 2.4
        True
        >>> float(r_ratio(0.1))
        0.0
    """
    m = np.asarray(m, dtype=np.float64)
    comp = r_ratio_components(m)
    return np.where(m > M_PI0, sum(comp.values()), 0.0)


# ---------------------------------------------------------------- dark sector
@dataclass(frozen=True)
class DarkSector:
    """An A′ coupled to a dark state χ with coupling α_D (semi-visible/invisible A′).

    Attributes:
        alpha_d: dark fine-structure constant g_D²/4π.
        m_chi: dark-state mass in GeV (decays open for m_A′ > 2 m_χ).
        kind: ``"fermion"`` (Dirac) or ``"scalar"`` (complex scalar).
    """

    alpha_d: float
    m_chi: float
    kind: Literal["fermion", "scalar"] = "fermion"

    def __post_init__(self) -> None:
        if not (self.alpha_d >= 0 and self.m_chi >= 0):
            raise GammastarError(
                f"dark sector: alpha_d ({self.alpha_d}) and m_chi ({self.m_chi}) must be >= 0"
            )
        if self.kind not in ("fermion", "scalar"):
            raise GammastarError(
                f"dark sector: kind must be 'fermion' or 'scalar', not {self.kind!r}"
            )

    def width(self, m: ArrayLike) -> NDArray[np.float64]:
        """Γ(A′ → χχ̄) in GeV (independent of ε)."""
        m = np.asarray(m, dtype=np.float64)
        if self.kind == "fermion":
            return self.alpha_d * m / 3 * kinematic_factor(m, self.m_chi)
        r = np.clip(1 - 4 * self.m_chi**2 / np.where(m > 0, m**2, 1.0), 0.0, None)
        return np.where(m > 2 * self.m_chi, self.alpha_d * m / 12 * r**1.5, 0.0)


# ---------------------------------------------------------------- widths
CHANNELS = (*LEPTON_CHANNELS, "hadrons", "total")
"""Channels of :func:`width` / :func:`branching_ratio` (``"invisible"`` too with a dark sector)."""


@cache
def _known() -> tuple[str, ...]:
    return (*CHANNELS, "invisible")


def width(
    m: ArrayLike, eps: ArrayLike, channel: str = "total", *, dark: DarkSector | None = None
) -> NDArray[np.float64]:
    r"""Partial or total A′ width in GeV.

    Arguments:
        m: A′ mass, GeV.
        eps: kinetic mixing ε.
        channel: ``"ee"``, ``"mumu"``, ``"hadrons"``, ``"total"`` (or ``"invisible"``).
        dark: optional :class:`DarkSector` (adds the invisible width to ``"total"``).

    Returns:
        Γ in GeV, broadcast over ``m`` and ``eps``.

    Raises:
        GammastarError: unknown channel.

    References:
        docs/explanation/physics.md §7; Bjorken et al. PRD 80 (2009) 075018; module docstring for R.

    Example:
        >>> from gammastar.physics.constants import ALPHA_EM
        >>> bool(np.isclose(width(1.0, 1e-3, "ee"), 1e-6 * ALPHA_EM / 3, rtol=1e-5))
        True
    """
    if channel not in _known():
        raise GammastarError(f"unknown A' decay channel {channel!r}; known: {list(_known())}")
    m = np.asarray(m, dtype=np.float64)
    eps2 = np.asarray(eps, dtype=np.float64) ** 2
    pref = eps2 * ALPHA_EM * m / 3
    if channel in LEPTON_CHANNELS:
        return LEPTON_CHANNELS[channel].width(m, eps)
    if channel == "hadrons":
        return pref * r_ratio(m)
    inv = dark.width(m) if dark is not None else np.zeros_like(m)
    if channel == "invisible":
        return np.broadcast_to(inv, np.broadcast(m, eps2).shape).astype(np.float64)
    vis = sum(kinematic_factor(m, ch.lepton_mass) for ch in LEPTON_CHANNELS.values()) + r_ratio(m)
    return pref * vis + inv


def branching_ratio(
    m: ArrayLike,
    channel: str,
    *,
    eps: ArrayLike | None = None,
    dark: DarkSector | None = None,
) -> NDArray[np.float64]:
    """Branching ratio of A′ → ``channel`` (``"ee"``, ``"mumu"``, ``"hadrons"``, ``"total"``).

    Without a dark sector the BRs do not depend on ε. With one, ``eps`` is needed: the
    invisible width is not suppressed by ε².

    Arguments:
        m: A′ mass, GeV.
        channel: decay channel (``"invisible"`` allowed with ``dark``).
        eps: kinetic mixing (needed only with ``dark``).
        dark: optional :class:`DarkSector`.

    Returns:
        BR in [0, 1]; NaN where the A′ cannot decay (m < 2 m_e, no dark sector).

    Example:
        >>> round(float(branching_ratio(0.1, "ee")), 6)
        1.0
        >>> bool(0.3 < branching_ratio(0.5, "mumu") < 0.5)
        True
    """
    if dark is not None and eps is None:
        raise GammastarError("branching_ratio: eps is needed when a dark sector is given")
    e = 1.0 if eps is None else eps
    tot = width(m, e, "total", dark=dark)
    part = width(m, e, channel, dark=dark)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, part / np.where(tot > 0, tot, 1.0), np.nan)


def ctau(m: ArrayLike, eps: ArrayLike, *, dark: DarkSector | None = None) -> NDArray[np.float64]:
    """Proper decay length cτ = ħc/Γ_tot in metres (inf where Γ_tot = 0).

    Arguments:
        m: A′ mass, GeV.
        eps: kinetic mixing ε.
        dark: optional :class:`DarkSector`.

    Returns:
        cτ in m.

    References:
        docs/explanation/physics.md §7.

    Example:
        >>> from gammastar.physics.constants import ALPHA_EM, HBARC_GEV_M
        >>> c = ctau(0.01, 1e-5)    # ee only: cτ = 3ħc/(ε² α m K_e)
        >>> bool(np.isclose(c, 3 * HBARC_GEV_M / (1e-10 * ALPHA_EM * 0.01), rtol=1e-2))
        True
    """
    tot = width(m, eps, "total", dark=dark)
    with np.errstate(divide="ignore"):
        return np.where(tot > 0, HBARC_GEV_M / np.where(tot > 0, tot, 1.0), np.inf)


# ---------------------------------------------------------------- plots
@figure_style()
def plot_decays(path: str | None = None, *, m_min: float = 0.002, m_max: float = 2.5):
    """Plot BR(A′ → ee, μμ, hadrons) and cτ·(ε/1e-6)² against m; save to ``path`` if given.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    m = np.geomspace(m_min, m_max, 2000)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 8), sharex=True)
    labels = {c.name: c.label for c in LEPTON_CHANNELS.values()} | {"hadrons": "hadrons"}
    for ch, lab in labels.items():
        ax1.plot(m, branching_ratio(m, ch), label=lab)
    ax1.set_ylabel(r"BR($A' \to X$)")
    ax1.set_ylim(1e-3, 1.5)
    ax1.set_yscale("log")
    ax1.legend()
    ax2.plot(m, ctau(m, 1e-6), color="k")
    ax2.set_yscale("log")
    ax2.set_xscale("log")
    ax2.set_xlabel(r"$m_{A'}$ [GeV]")
    ax2.set_ylabel(r"$c\tau$ [m] at $\varepsilon = 10^{-6}$")
    fig.tight_layout()
    if path is not None:

        save_figure(fig, path)
    return fig
