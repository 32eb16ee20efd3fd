"""Same-sign (like-sign) combinatorial background and non-γ* removal (physics.md §4).

Bin by bin the combinatorial opposite-sign background is estimated from the like-sign pairs,

    N_comb^{+−} = 2 R √(N^{++} N^{−−}),

(NA60, NA45 and heavy-ion practice; R = 1 for charge-symmetric acceptance, a config value).
Its variance propagates the like-sign variances (Weight storage, so weighted inputs work):

    σ²(N_comb) = R² (N^{−−}/N^{++} σ²_{++} + N^{++}/N^{−−} σ²_{−−}),

and where one of the two like-sign counts is zero (the estimate is 0 there) the variance
falls back to R² (σ²_{++} + σ²_{−−}), the variance of the arithmetic-mean estimate
R (N^{++} + N^{−−}) that agrees with the geometric mean for charge-symmetric background.

Event-level (per-pair) version, for stages that train on subtracted data: SS pairs carry
negative weights. ``constant``: each SS pair weighs −R (Σ_SS = −R (N^{++} + N^{−−}), the
geometric mean to first order in (N^{++} − N^{−−})); ``binwise``: −2R√(N^{++}N^{−−})/(N^{++}+N^{−−})
of the pair's mass bin, which reproduces N_comb exactly in every bin.

η → μμ is not a single virtual photon [paper] and is removed: by truth tag on mock data
(done in the selection), or by rate: N(η → μμ) = BR(η → μμ)/BR(η → γμμ) · N(η → γμμ), a
Gaussian peak at m_η subtracted from the unfolded spectrum (:func:`eta_mumu_rate_peak`).
"""

from __future__ import annotations

import numpy as np

M_ETA = 0.547862
"""η mass in GeV (PDG 2024)."""
M_MU = 0.1056583755
"""μ mass in GeV (PDG 2024)."""


def eta_br_ratio() -> float:
    """BR(η → μμ)/BR(η → γμμ) from :mod:`gammastar.physics.pdgdata` (PDG, ≈ 5.8e-6/3.1e-4)."""
    from gammastar.physics.pdgdata import branching_ratio

    return branching_ratio("eta->mumu").value / branching_ratio("eta->gamma mumu").value


def combinatorial(
    n_pp: np.ndarray,
    n_mm: np.ndarray,
    var_pp: np.ndarray | None = None,
    var_mm: np.ndarray | None = None,
    r: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Like-sign estimate of the combinatorial OS background, bin by bin.

    Arguments:
        n_pp, n_mm: like-sign counts (or sums of weights) per bin.
        var_pp, var_mm: their variances (default: the counts, Poisson).
        r: the R factor (acceptance asymmetry), 1 for charge-symmetric acceptance.

    Returns:
        ``(value, variance)`` arrays of the same shape.

    References:
        physics.md §4; NA60, Eur. Phys. J. C 59 (2009) 607.

    Example:
        >>> v, var = combinatorial(np.array([4.0, 0.0]), np.array([9.0, 5.0]))
        >>> v.tolist(), var.tolist()
        ([12.0, 0.0], [13.0, 5.0])
    """
    a = np.asarray(n_pp, dtype=float)
    b = np.asarray(n_mm, dtype=float)
    va = a if var_pp is None else np.asarray(var_pp, dtype=float)
    vb = b if var_mm is None else np.asarray(var_mm, dtype=float)
    both = (a > 0) & (b > 0)
    value = np.where(both, 2.0 * r * np.sqrt(np.where(both, a * b, 0.0)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_both = r**2 * (b / a * va + a / b * vb)
    variance = np.where(both, var_both, r**2 * (va + vb))
    return value, variance


def ss_pair_weights(
    mass: np.ndarray,
    charge: np.ndarray,
    edges: np.ndarray,
    n_pp: np.ndarray,
    n_mm: np.ndarray,
    *,
    r: float = 1.0,
    mode: str = "constant",
) -> np.ndarray:
    """Per-pair subtraction factor: +1 for OS pairs, negative for SS pairs.

    Arguments:
        mass, charge: pair mass and summed charge (0, ±2).
        edges: the mass-axis bin edges of ``n_pp`` and ``n_mm``.
        n_pp, n_mm: like-sign counts per mass bin (for ``binwise``).
        r: the R factor.
        mode: ``constant`` (−R per SS pair) or ``binwise`` (exact per bin).

    Returns:
        The factor each pair's ``weight_raw / eff`` is multiplied with.

    Example:
        >>> w = ss_pair_weights(np.array([0.5, 0.5, 0.5]), np.array([0, 2, -2]),
        ...                     np.array([0.0, 1.0]), np.array([1.0]), np.array([4.0]),
        ...                     mode="binwise")
        >>> w.tolist()   # 2·√(1·4)/(1+4) = 0.8
        [1.0, -0.8, -0.8]
    """
    charge = np.asarray(charge)
    ss = charge != 0
    w = np.ones(len(charge), dtype=float)
    if mode == "constant":
        w[ss] = -r
    elif mode == "binwise":
        comb, _ = combinatorial(n_pp, n_mm, r=r)
        tot = np.asarray(n_pp, float) + np.asarray(n_mm, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(tot > 0, comb / tot, 0.0)
        idx = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, len(ratio) - 1)
        w[ss] = -ratio[idx[ss]]
    else:
        raise ValueError(f"unknown SS weight mode {mode!r}")
    return w


def eta_dalitz_spectrum(m: np.ndarray) -> np.ndarray:
    """Unnormalised dΓ(η → γμμ)/dm: Kroll–Wada with the NA60 pole form factor.

    Uses :func:`gammastar.physics.dalitz.pseudoscalar_dalitz_dgamma_dm` and
    :func:`~gammastar.physics.dalitz.form_factor_pole` (Λ⁻² = 1.934 GeV⁻², NA60 2016).

    Example:
        >>> eta_dalitz_spectrum(np.array([0.1, 0.3]))[0]  # below 2 m_μ
        np.float64(0.0)
    """
    from gammastar.physics.dalitz import (
        ETA_LAMBDA_INV2,
        form_factor_pole,
        pseudoscalar_dalitz_dgamma_dm,
    )

    m = np.asarray(m, dtype=float)
    return pseudoscalar_dalitz_dgamma_dm(
        m, M_ETA, M_MU, lambda x: form_factor_pole(x, ETA_LAMBDA_INV2)
    )


def eta_mumu_rate_peak(
    edges: np.ndarray,
    unfolded: np.ndarray,
    *,
    dalitz_window: tuple[float, float] = (0.2113, 0.45),
    sigma: float = 0.012,
) -> tuple[np.ndarray, float, float]:
    """Predicted η → μμ content per mass bin from the η → γμμ yield ("rate" removal).

    N(η → γμμ) is the unfolded yield in ``dalitz_window`` divided by the Kroll–Wada
    fraction of the η Dalitz spectrum that falls in the window (it assumes η Dalitz dominates
    the window, as it does below 0.45 GeV in p–A cocktails; other sources there bias it up).
    N(η → μμ) = BR(μμ)/BR(γμμ) N(η → γμμ), spread as a Gaussian (width ``sigma``) at m_η.

    Returns:
        ``(per_bin, n_eta_dalitz, n_eta_mumu)``.

    Example:
        >>> e = np.linspace(0.2, 1.0, 81); u = np.ones(80) * 100.0
        >>> peak, nd, nm = eta_mumu_rate_peak(e, u)
        >>> bool(abs(peak.sum() - nm) < 1e-6 * nm) and nm > 0
        True
    """
    from scipy.special import erf

    edges = np.asarray(edges, dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    lo, hi = dalitz_window
    in_win = (centres >= lo) & (centres < hi)
    grid = np.linspace(2 * M_MU, M_ETA, 4001)
    dens = eta_dalitz_spectrum(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    frac = (np.interp(hi, grid, cdf) - np.interp(lo, grid, cdf)) / cdf[-1]
    n_dalitz = float(np.sum(np.asarray(unfolded)[in_win]) / frac) if frac > 0 else 0.0
    n_mumu = eta_br_ratio() * n_dalitz
    z = (edges - M_ETA) / (np.sqrt(2) * sigma)
    per_bin = n_mumu * 0.5 * np.diff(erf(z))
    return per_bin, n_dalitz, n_mumu
