r"""Inelastic dark sectors behind the A′: iDM and i2DM widths, ψ₂ → ψ₁ℓ⁺ℓ⁻ and lifetimes.

Offers typed parameter objects (:class:`IDM`, :class:`I2DM`), the A′ widths into the dark
fermions (:func:`aprime_dark_widths`, combined with the visible widths of
:mod:`gammastar.physics.darkphoton` in :func:`aprime_branching_ratios`), the three-body width
Γ(ψ₂ → ψ₁ f) for f = e⁺e⁻, μ⁺μ⁻, hadrons from the full matrix element (:func:`psi2_width`,
:func:`psi2_dgamma_ds`), and cτ(ψ₂) (:func:`psi2_ctau`). Hand-written physics; formulas:

* A′ → ψ_a ψ̄_b through the vector current g_D ψ̄_a γ^μ ψ_b (derived from the trace
  4[p_a^μ p_b^ν + p_a^ν p_b^μ − g^{μν}(p_a·p_b + m_a m_b)] summed over the A′ polarisations):

  .. math:: \Gamma = \frac{\alpha_D m_{A'}}{3}\Big(1-\frac{\delta^2}{m_{A'}^2}\Big)^{3/2}
            \Big(1-\frac{\sigma^2}{m_{A'}^2}\Big)^{1/2}\Big(1+\frac{\sigma^2}{2m_{A'}^2}\Big),
            \quad \delta = m_b - m_a,\ \sigma = m_a + m_b,

  the published iDM form (Izaguirre, Krnjaic, Schuster, Toro, PRD 96 (2017) 055007) and, for
  m_a = m_b, the Dirac width (α_D m/3)(1 + 2m²/m_A′²)√(1 − 4m²/m_A′²) (docs/explanation/physics.md §13).
* iDM (pseudo-Dirac pair, off-diagonal current ψ̄₂γ^μψ₁; Tucker-Smith & Weiner PRD 64 (2001)
  043502; Izaguirre et al. 2017): A′ → ψ₁ψ₂ only.
* i2DM (the seed talk; Filimonova et al. arXiv:2201.08409): two Dirac fermions, the charged
  state χ = cos θ ψ₂ + sin θ ψ₁, so J^μ = c²ψ̄₂γψ₂ + s c(ψ̄₂γψ₁ + ψ̄₁γψ₂) + s²ψ̄₁γψ₁ and
  A′ → ψ₂ψ̄₂ : (ψ₁ψ̄₂ + ψ₂ψ̄₁) : ψ₁ψ̄₁ = c⁴ : 2s²c² : s⁴ times phase space — the talk's
  1 : θ² : θ⁴ in powers of θ (the 2 counts the two charge-conjugate final states).
* ψ₂(P) → ψ₁(p₁) ℓ⁻(k₁) ℓ⁺(k₂) through an off-shell A′ (it cannot be on shell: m₂ − m₁ <
  m_A′), coupling κ g_D × ε e (κ = 1 for iDM, s c for i2DM), spin-averaged
  (traces as above; the q^μq^ν/m_A′² part vanishes on the conserved lepton current):

  .. math:: \overline{|\mathcal M|^2} = \frac{16\pi^2\kappa^2\alpha_D\varepsilon^2\alpha\cdot 16}
            {(s-m_{A'}^2)^2}\big[(p_1k_1)(Pk_2) + (p_1k_2)(Pk_1)
            + m_\ell^2(p_1P - m_1m_2) - m_1m_2(k_1k_2 + m_\ell^2)\big],

  dΓ = |M̄|² ds dt / (256 π³ m₂³) with s = m_ℓℓ², t = (p₁ + k₁)² (PDG Kinematics review, Eq.
  49.22). The t integral is exact (the integrand is quadratic in t); the s integral is a
  Gauss–Legendre rule in φ with s = s_min + (s_max − s_min) sin²φ, which removes the
  square-root end points, composite over panels refined at the threshold layer s − 4m_ℓ² ~ m_ℓ²
  and, for hadrons, at the ω and φ of R. Small-splitting limit (m_ℓ → 0, Δ → 0, m_A′ ≫ m₁):
  Γ → 4ε²αα_DΔ⁵m₁⁵/(15π m_A′⁴) (Izaguirre et al. 2017; Berlin, Gori, Schuster, Toro PRD 98
  (2018) 035011), :func:`psi2_width_small_splitting`.
* Hadrons: dΓ_had/ds = R(√s) · dΓ_ℓℓ/ds|_{m_ℓ=0} with R of
  :func:`gammastar.physics.darkphoton.r_ratio` (the A′ hadronic width uses the same
  relation); open above the π⁰γ threshold, valid to
  :data:`gammastar.physics.darkphoton.R_VALID_MAX`.

Neglected: ψ₂ → ψ₁γ (loop-suppressed dipole), ψ₂ → ψ₁νν̄ (Z-mixing, suppressed by m²/m_Z²).
Measurements and checks: ``docs/howto/dark-sectors.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError
from gammastar.physics import darkphoton
from gammastar.physics.constants import (
    ALPHA_EM,
    HBARC_GEV_M,
    M_E,
    M_K,
    M_K0,
    M_MU,
    M_PI,
    M_PI0,
)

__all__ = [
    "FINAL_STATES",
    "I2DM",
    "IDM",
    "Psi2Decay",
    "aprime_branching_ratios",
    "aprime_dark_widths",
    "dalitz_limits",
    "pair_width",
    "psi2_ctau",
    "psi2_dgamma_ds",
    "psi2_matrix_element2",
    "psi2_width",
    "psi2_width_small_splitting",
]

FINAL_STATES = {"ee": M_E, "mumu": M_MU, "hadrons": 0.0}
"""ψ₂ → ψ₁ f final states and the mass used in the matrix element (hadrons: R × massless ℓℓ)."""

_N_GL = 8
"""Gauss–Legendre nodes per panel of the s integral (convergence: docs/howto/dark-sectors.md)."""
_N_PANELS = 24
"""Uniform panels in φ; more at the threshold layer (leptons) or the ω, φ (hadrons)."""


def _arr(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def _check_positive(name: str, value: NDArray[np.float64], model: str) -> None:
    if np.any(~np.isfinite(value)) or np.any(value <= 0):
        raise GammastarError(f"{model}: {name} must be positive and finite (got {value})")


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class IDM:
    """Inelastic (pseudo-Dirac) dark matter: A′ → ψ₁ψ₂, ψ₂ → ψ₁ℓ⁺ℓ⁻.

    Fields may be arrays (broadcast together) for vectorised scans.

    Attributes:
        m1: ψ₁ mass, GeV.
        delta: Δ = (m₂ − m₁)/m₁ > 0.
        m_aprime: A′ mass, GeV (≥ m₁ + m₂).
        alpha_d: dark coupling α_D = g_D²/4π > 0.

    Raises:
        GammastarError: Δ ≤ 0, α_D ≤ 0, m₁ ≤ 0, or m_A′ < m₁ + m₂.

    References:
        Tucker-Smith & Weiner PRD 64 (2001) 043502; Izaguirre et al. PRD 96 (2017) 055007.

    Example:
        >>> IDM(m1=0.1, delta=0.1, m_aprime=0.3).m2
        0.11000000000000001
    """

    m1: float | NDArray[np.float64]
    delta: float | NDArray[np.float64]
    m_aprime: float | NDArray[np.float64]
    alpha_d: float | NDArray[np.float64] = 0.1

    name = "iDM"

    def __post_init__(self) -> None:
        for key in ("m1", "delta", "m_aprime", "alpha_d"):
            val = _arr(getattr(self, key))
            object.__setattr__(self, key, val if val.ndim else float(val))
            _check_positive(key, val, self.name)
        if np.any(_arr(self.m_aprime) < _arr(self.m1) + _arr(self.m2)):
            raise GammastarError(
                f"{self.name}: m_aprime ({self.m_aprime!s}) must be >= m1 + m2 "
                f"({_arr(self.m1) + _arr(self.m2)}): A' -> psi1 psi2 must be open"
            )

    @property
    def m2(self) -> float | NDArray[np.float64]:
        """ψ₂ mass m₁(1 + Δ), GeV."""
        m2 = _arr(self.m1) * (1.0 + _arr(self.delta))
        return m2 if m2.ndim else float(m2)

    @property
    def kappa2(self) -> float | NDArray[np.float64]:
        """Square of the ψ̄₂γψ₁ coupling in units of g_D (1 for iDM)."""
        return 1.0

    def y(self, eps: ArrayLike) -> NDArray[np.float64]:
        """The reach variable y = ε²α_D(m₁/m_A′)⁴ (Izaguirre et al. 2015, docs/explanation/physics.md §13)."""
        return _arr(eps) ** 2 * _arr(self.alpha_d) * (_arr(self.m1) / _arr(self.m_aprime)) ** 4


@dataclass(frozen=True)
class I2DM(IDM):
    """i2DM, the dark Dirac seesaw of the seed talk: two Dirac fermions ψ₁ < ψ₂ mixing by θ.

    Attributes:
        theta: mixing angle in rad (0 < θ < π/2); the talk's benchmark θ = 4.5°.

    References:
        Filimonova, Junius, Lopez Honorez, Westhoff, arXiv:2201.08409; seed talk (Hostert).

    Example:
        >>> bool(I2DM(m1=0.1, delta=0.4, m_aprime=0.3, alpha_d=0.5, theta=np.radians(4.5)).kappa2 < 0.01)
        True
    """

    theta: ArrayLike = 0.0

    name = "i2DM"

    def __post_init__(self) -> None:
        super().__post_init__()
        th = _arr(self.theta)
        if np.any(~np.isfinite(th)) or np.any(th <= 0) or np.any(th >= np.pi / 2):
            raise GammastarError(f"i2DM: theta must be in (0, pi/2) rad (got {self.theta})")
        object.__setattr__(self, "theta", th if th.ndim else float(th))

    @property
    def kappa2(self) -> float | NDArray[np.float64]:
        """(sin θ cos θ)²: the ψ̄₂γψ₁ coupling squared in units of g_D²."""
        return (np.sin(self.theta) * np.cos(self.theta)) ** 2


# --------------------------------------------------------------------------- A′ widths
def pair_width(
    m_aprime: ArrayLike, m_a: ArrayLike, m_b: ArrayLike, alpha_d: ArrayLike
) -> NDArray[np.float64]:
    r"""Γ(A′ → ψ_a ψ̄_b) for the vector current g_D ψ̄_aγ^μψ_b (module docstring), GeV.

    Arguments:
        m_aprime: A′ mass, GeV.
        m_a, m_b: fermion masses, GeV.
        alpha_d: g_D²/4π.

    Returns:
        The width; 0 below threshold.

    References:
        Izaguirre, Krnjaic, Schuster, Toro PRD 96 (2017) 055007 (iDM); docs/explanation/physics.md §13.

    Example:
        >>> from gammastar.physics.kinematics import kinematic_factor
        >>> bool(np.isclose(pair_width(1.0, 0.2, 0.2, 0.1), 0.1 / 3 * kinematic_factor(1.0, 0.2)))
        True
    """
    m = _arr(m_aprime)
    d2 = ((_arr(m_b) - _arr(m_a)) / m) ** 2
    s2 = ((_arr(m_a) + _arr(m_b)) / m) ** 2
    open_ = s2 < 1.0
    return np.where(
        open_,
        _arr(alpha_d)
        * m
        / 3
        * np.clip(1 - d2, 0, None) ** 1.5
        * np.sqrt(np.clip(1 - s2, 0, None))
        * (1 + s2 / 2),
        0.0,
    )


def aprime_dark_widths(model: IDM) -> dict[str, NDArray[np.float64]]:
    """A′ widths into the dark fermions, GeV, by final state.

    Arguments:
        model: :class:`IDM` (``"psi1 psi2"``) or :class:`I2DM` (``"psi2 psi2"``,
            ``"psi1 psi2"`` = ψ₁ψ̄₂ + ψ₂ψ̄₁, ``"psi1 psi1"``).

    Returns:
        Dict of widths (broadcast over the model's arrays).

    Example:
        >>> w = aprime_dark_widths(I2DM(m1=1e-4, delta=0.1, m_aprime=1.0, theta=0.1))
        >>> s, c = np.sin(0.1), np.cos(0.1)   # massless limit: c⁴ : 2s²c² : s⁴
        >>> bool(np.isclose(w["psi1 psi2"] / w["psi2 psi2"], 2 * s**2 / c**2, rtol=1e-6))
        True
    """
    m, m1, m2, ad = model.m_aprime, model.m1, model.m2, model.alpha_d
    if isinstance(model, I2DM):
        s2, c2 = np.sin(model.theta) ** 2, np.cos(model.theta) ** 2
        return {
            "psi2 psi2": c2**2 * pair_width(m, m2, m2, ad),
            "psi1 psi2": 2 * s2 * c2 * pair_width(m, m1, m2, ad),
            "psi1 psi1": s2**2 * pair_width(m, m1, m1, ad),
        }
    return {"psi1 psi2": pair_width(m, m1, m2, ad)}


def aprime_branching_ratios(model: IDM, eps: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """A′ branching ratios: the dark final states and the visible ones of darkphoton.

    Arguments:
        model: :class:`IDM` or :class:`I2DM`.
        eps: kinetic mixing ε.

    Returns:
        Dict with the keys of :func:`aprime_dark_widths` and ``"ee"``, ``"mumu"``,
        ``"hadrons"``; they sum to 1.

    References:
        docs/explanation/physics.md §7, §13 (visible BR ≈ ε²α/α_D).

    Example:
        >>> br = aprime_branching_ratios(IDM(m1=0.1, delta=0.1, m_aprime=0.3), 1e-3)
        >>> bool(np.isclose(sum(br.values()), 1.0))
        True
    """
    dark = aprime_dark_widths(model)
    vis = {ch: darkphoton.width(model.m_aprime, eps, ch) for ch in ("ee", "mumu", "hadrons")}
    tot = sum(dark.values()) + sum(vis.values())
    return {k: v / tot for k, v in {**dark, **vis}.items()}


# --------------------------------------------------------------------------- ψ₂ decay
def dalitz_limits(
    x: ArrayLike, M: ArrayLike, m_a: ArrayLike, m_b: ArrayLike, m_c: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Range of m_ab² at fixed m_bc² = x in the decay M → a b c (PDG Kinematics, Eq. 49.23).

    Arguments:
        x: m_bc² (GeV²).
        M: parent mass; m_a, m_b, m_c: daughter masses (GeV).

    Returns:
        (lo, hi) of m_ab²; equal where x is at the edge of its range.

    Example:
        >>> lo, hi = dalitz_limits(0.25, 1.0, 0.0, 0.0, 0.0)   # massless: m_ab² ∈ [0, M² − x]
        >>> float(lo), float(hi)
        (0.0, 0.75)
    """
    x, M, ma, mb, mc = map(_arr, (x, M, m_a, m_b, m_c))
    rx = np.sqrt(np.clip(x, 1e-300, None))
    eb = (x - mc**2 + mb**2) / (2 * rx)
    ea = (M**2 - x - ma**2) / (2 * rx)
    pb = np.sqrt(np.clip(eb**2 - mb**2, 0, None))
    pa = np.sqrt(np.clip(ea**2 - ma**2, 0, None))
    base = (ea + eb) ** 2
    return base - (pa + pb) ** 2, base - (pa - pb) ** 2


@dataclass(frozen=True)
class Psi2Decay:
    """The masses and couplings of ψ₂ → ψ₁ℓ⁻ℓ⁺ through an off-shell A′ (module docstring).

    Fields may be arrays (broadcast together with the Dalitz variables).

    Attributes:
        m1, m2: ψ₁ and ψ₂ masses, GeV.
        m_aprime: A′ mass, GeV.
        m_l: lepton mass, GeV (0: the massless ℓℓ of the hadronic width).
        eps: kinetic mixing ε (1: the shape alone, as the event sampler uses it).
        alpha_d: dark coupling α_D.
        kappa2: ψ̄₂γψ₁ coupling squared in units of g_D² (:attr:`IDM.kappa2`).

    Example:
        >>> d = Psi2Decay.of(IDM(m1=0.1, delta=0.5, m_aprime=0.3), 1e-3, 0.0)
        >>> float(d.m2), d.eps, d.kappa2
        (0.15000000000000002, 0.001, 1.0)
    """

    m1: ArrayLike
    m2: ArrayLike
    m_aprime: ArrayLike
    m_l: ArrayLike
    eps: ArrayLike = 1.0
    alpha_d: ArrayLike = 1.0
    kappa2: ArrayLike = 1.0

    @classmethod
    def of(cls, model: IDM, eps: ArrayLike, m_l: ArrayLike) -> Psi2Decay:
        """The decay of a model's ψ₂ (:class:`IDM` or :class:`I2DM`) at ε into leptons of
        mass ``m_l``."""
        return cls(
            _arr(model.m1), _arr(model.m2), _arr(model.m_aprime), m_l,
            eps=eps, alpha_d=model.alpha_d, kappa2=model.kappa2,
        )  # fmt: skip


def psi2_matrix_element2(s: ArrayLike, t: ArrayLike, decay: Psi2Decay) -> NDArray[np.float64]:
    """Spin-averaged |M|² of ψ₂ → ψ₁ℓ⁻ℓ⁺ (module docstring) at s = m_ℓℓ², t = (p_ψ₁ + p_ℓ⁻)².

    Arguments:
        s, t: Dalitz variables, GeV².
        decay: the masses (GeV) and couplings (ε, α_D, κ²), :class:`Psi2Decay`.

    Returns:
        |M̄|² (dimensionless), broadcast.

    References:
        Module docstring (traces); Izaguirre et al. PRD 96 (2017) 055007.

    Example:
        >>> bool(psi2_matrix_element2(0.01, 0.02, Psi2Decay(0.1, 0.25, 0.6, 0.0)) > 0)
        True
    """
    s, t = _arr(s), _arr(t)
    m1, m2, ma, ml = map(_arr, (decay.m1, decay.m2, decay.m_aprime, decay.m_l))
    ml2 = ml**2
    u = m1**2 + m2**2 + 2 * ml2 - s - t
    p1k1 = (t - m1**2 - ml2) / 2
    p1k2 = (u - m1**2 - ml2) / 2
    pk1 = (m2**2 + ml2 - u) / 2
    pk2 = (m2**2 + ml2 - t) / 2
    p1p = (m2**2 + m1**2 - s) / 2
    k1k2 = (s - 2 * ml2) / 2
    hl = p1k1 * pk2 + p1k2 * pk1 + ml2 * (p1p - m1 * m2) - m1 * m2 * (k1k2 + ml2)
    coupling = 16 * np.pi**2 * _arr(decay.kappa2) * _arr(decay.alpha_d) * _arr(decay.eps) ** 2
    return coupling * ALPHA_EM * 16 * hl / (s - ma**2) ** 2


_T_NODES, _T_WEIGHTS = np.polynomial.legendre.leggauss(3)  # exact for the quadratic in t


def _dgamma_ds_lepton(s, decay):
    m2 = _arr(decay.m2)
    lo, hi = dalitz_limits(s, m2, decay.m1, decay.m_l, decay.m_l)
    half = (hi - lo) / 2
    mid = (hi + lo) / 2
    acc = 0.0
    for x, w in zip(_T_NODES, _T_WEIGHTS, strict=True):
        acc = acc + w * psi2_matrix_element2(s, mid + half * x, decay)
    return acc * half / (256 * np.pi**3 * m2**3)


def psi2_dgamma_ds(
    s: ArrayLike, model: IDM, eps: ArrayLike, final_state: str = "ee"
) -> NDArray[np.float64]:
    """dΓ(ψ₂ → ψ₁ f)/ds, s = m_f² (GeV⁻¹): the t integral of the matrix element done exactly.

    Arguments:
        s: invariant mass squared of the pair, GeV² (broadcast with the model's arrays).
        model: :class:`IDM` or :class:`I2DM`.
        eps: kinetic mixing ε.
        final_state: ``"ee"``, ``"mumu"`` or ``"hadrons"`` (R(√s) × massless ℓℓ).

    Returns:
        The differential width, 0 outside the physical range.

    References:
        Module docstring; PDG Kinematics review Eq. 49.22.

    Example:
        >>> m = IDM(m1=0.1, delta=0.5, m_aprime=0.3)
        >>> bool(psi2_dgamma_ds(1e-3, m, 1e-3) > 0) and float(psi2_dgamma_ds(0.01, m, 1e-3)) == 0.0
        True
    """
    if final_state not in FINAL_STATES:
        raise GammastarError(
            f"unknown psi2 final state {final_state!r}; known: {list(FINAL_STATES)}"
        )
    s = _arr(s)
    ml = FINAL_STATES[final_state]
    m1, m2 = _arr(model.m1), _arr(model.m2)
    s_min = 4 * ml**2 if final_state != "hadrons" else M_PI0**2
    inside = (s > s_min) & (s < (m2 - m1) ** 2)
    sc = np.where(inside, s, (s_min + (m2 - m1) ** 2) / 2)  # any finite point; masked below
    d = _dgamma_ds_lepton(sc, Psi2Decay.of(model, eps, ml))
    if final_state == "hadrons":
        rs = np.sqrt(sc)
        if np.any(inside & (rs > darkphoton.R_VALID_MAX)):
            raise GammastarError(
                f"psi2 -> psi1 hadrons: m_ff above {darkphoton.R_VALID_MAX} GeV, beyond the "
                "R-ratio model (gammastar.physics.darkphoton.r_ratio)"
            )
        d = d * darkphoton.r_ratio(rs)
    return np.where(inside, d, 0.0)


def psi2_width(
    model: IDM, eps: ArrayLike, final_state: str = "ee", *, n_nodes: int = _N_GL
) -> NDArray[np.float64]:
    """Γ(ψ₂ → ψ₁ f), GeV, vectorised over the model's parameter arrays and ε.

    Arguments:
        model: :class:`IDM` or :class:`I2DM`.
        eps: kinetic mixing ε.
        final_state: ``"ee"``, ``"mumu"``, ``"hadrons"`` or ``"total"`` (their sum).
        n_nodes: Gauss–Legendre nodes per panel of the s integral.

    Returns:
        The width (0 where the channel is closed).

    References:
        Module docstring; the small-splitting check :func:`psi2_width_small_splitting`.

    Example:
        >>> m = IDM(m1=10.0, delta=0.01, m_aprime=30.0)
        >>> r = psi2_width(m, 1e-3) / psi2_width_small_splitting(m, 1e-3)
        >>> bool(abs(r - 1) < 0.02)
        True
    """
    if final_state == "total":
        widths = [psi2_width(model, eps, f, n_nodes=n_nodes) for f in FINAL_STATES]
        total = widths[0]
        for w in widths[1:]:  # in the order of FINAL_STATES
            total = total + w
        return total
    if final_state not in FINAL_STATES:
        raise GammastarError(
            f"unknown psi2 final state {final_state!r}; known: [*{list(FINAL_STATES)}, 'total']"
        )
    m1, m2 = _arr(model.m1), _arr(model.m2)
    ml = FINAL_STATES[final_state]
    s_min = 4 * ml**2 if final_state != "hadrons" else M_PI0**2
    s_max = (m2 - m1) ** 2
    span = np.clip(s_max - s_min, 0, None)
    shape = np.broadcast(span, _arr(model.m_aprime), _arr(model.alpha_d), _arr(eps)).shape

    def ex(a: ArrayLike) -> NDArray[np.float64]:
        a = _arr(a)
        return a[..., None] if a.ndim else a

    # panels in φ (s = s_min + span·sin²φ): uniform, refined at the structures of the integrand
    if final_state == "hadrons":  # the narrow ω, φ of R (M ± kΓ) and its thresholds
        ks = np.array([0.0, 1, 2, 4, 8, 16, 32, 64])
        thr = np.array(
            [
                2 * M_PI,
                2 * M_PI + M_PI0,
                4 * M_PI,
                2 * M_K,
                2 * M_K0,
            ]
        )
        brk = np.concatenate(
            [
                (r["mass"] + sg * ks * r["width"]) ** 2
                for r in (darkphoton._OMEGA, darkphoton._PHI)
                for sg in (-1, 1)
            ]
            + [((thr[:, None] + np.array([0, 1e-3, 1e-2, 3e-2, 0.1])) ** 2).ravel()]
        )
    else:  # the threshold layer s − 4m_ℓ² ~ m_ℓ²
        brk = s_min * (1 + 10.0 ** np.arange(-2, 8))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((brk - s_min) / ex(np.where(span > 0, span, 1.0)), 0, 1)
    edges = np.sort(
        np.concatenate(
            [
                np.broadcast_to(
                    np.linspace(0, np.pi / 2, _N_PANELS + 1), (*frac.shape[:-1], _N_PANELS + 1)
                ),
                np.arcsin(np.sqrt(frac)),
            ],
            axis=-1,
        ),
        axis=-1,
    )
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    half = np.diff(edges, axis=-1)[..., None] / 2
    phi = (edges[..., :-1, None] + half * (x + 1)).reshape(*edges.shape[:-1], -1)
    wts = (half * w).reshape(*edges.shape[:-1], -1)
    s = s_min + ex(span) * np.sin(phi) ** 2
    jac = ex(span) * np.sin(2 * phi) * wts  # ds/dφ × quadrature weight

    sub = IDM.__new__(type(model))  # the same model with trailing node axis
    for k in ("m1", "delta", "m_aprime", "alpha_d"):
        object.__setattr__(sub, k, ex(getattr(model, k)))
    if isinstance(model, I2DM):
        object.__setattr__(sub, "theta", ex(model.theta))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = psi2_dgamma_ds(s, sub, ex(eps), final_state)
    out = np.sum(d * jac, axis=-1)
    return np.broadcast_to(np.where(span > 0, out, 0.0), shape).astype(np.float64)


def psi2_width_small_splitting(model: IDM, eps: ArrayLike) -> NDArray[np.float64]:
    """Γ(ψ₂ → ψ₁e⁺e⁻) ≈ 4κ²ε²αα_DΔ⁵m₁⁵/(15π m_A′⁴) (m_ℓ → 0, Δ → 0, m_A′ ≫ m₁), GeV.

    References:
        Izaguirre et al. PRD 96 (2017) 055007; Berlin et al. PRD 98 (2018) 035011; docs/explanation/physics.md §13.

    Example:
        >>> float(psi2_width_small_splitting(IDM(m1=1.0, delta=0.1, m_aprime=3.0), 1.0)) > 0
        True
    """
    return (
        4
        * _arr(model.kappa2)
        * _arr(eps) ** 2
        * ALPHA_EM
        * _arr(model.alpha_d)
        * _arr(model.delta) ** 5
        * _arr(model.m1) ** 5
        / (15 * np.pi * _arr(model.m_aprime) ** 4)
    )


def psi2_ctau(model: IDM, eps: ArrayLike) -> NDArray[np.float64]:
    """Proper decay length of ψ₂, cτ = ħc/Γ_tot (ee + μμ + hadrons), metres (inf where all
    channels are closed: m₂ − m₁ < 2m_e).

    Example:
        >>> m = IDM(m1=0.1, delta=0.1, m_aprime=0.3)
        >>> bool(np.isclose(psi2_ctau(m, 1e-3) * psi2_width(m, 1e-3, "total"), 1.973269804e-16))
        True
    """
    tot = psi2_width(model, eps, "total")
    with np.errstate(divide="ignore"):
        return np.where(tot > 0, HBARC_GEV_M / np.where(tot > 0, tot, 1.0), np.inf)
