"""Like-sign combinatorial background and η → μμ removal (docs/explanation/physics.md §4; docs/explanation/method.md
"Background").

Offers the like-sign estimate per mass bin (:func:`like_sign_estimate`: 2R√(N++N−−) or
R(N++ + N−−), with variances and sparse-bin windows; :class:`LikeSignEstimate`), the per-pair
SS factors k_b that reproduce it (:func:`ss_pair_weights`, :func:`pair_factors`), R from
mixed events (:func:`r_factor_mixed`), and the η → μμ peak predicted from the η Dalitz rate
(:func:`eta_mumu_rate_peak`). Formulas, estimator choice and measurements: docs/explanation/method.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gammastar.corrections.unfold import read_root_histogram, split_map_spec
from gammastar.errors import InputError
from gammastar.physics.constants import M_ETA, M_MU
from gammastar.physics.dalitz import (
    ETA_LAMBDA_INV2,
    form_factor_pole,
    pseudoscalar_dalitz_dgamma_dm,
)
from gammastar.physics.pdgdata import branching_ratio


def eta_br_ratio() -> float:
    """BR(η → μμ)/BR(η → γμμ) from :mod:`gammastar.physics.pdgdata` (PDG, ≈ 5.8e-6/3.1e-4)."""

    return branching_ratio("eta->mumu").value / branching_ratio("eta->gamma mumu").value


def _counts_and_variances(n_pp, n_mm, var_pp, var_mm) -> tuple[np.ndarray, ...]:
    """Like-sign counts as float arrays and their variances (default: the counts, Poisson)."""
    a = np.asarray(n_pp, dtype=float)
    b = np.asarray(n_mm, dtype=float)
    va = a if var_pp is None else np.asarray(var_pp, dtype=float)
    vb = b if var_mm is None else np.asarray(var_mm, dtype=float)
    return a, b, va, vb


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
        docs/explanation/physics.md §4; NA60, Eur. Phys. J. C 59 (2009) 607.

    Example:
        >>> v, var = combinatorial(np.array([4.0, 0.0]), np.array([9.0, 5.0]))
        >>> v.tolist(), var.tolist()
        ([12.0, 0.0], [13.0, 5.0])
    """
    a, b, va, vb = _counts_and_variances(n_pp, n_mm, var_pp, var_mm)
    both = (a > 0) & (b > 0)
    value = np.where(both, 2.0 * r * np.sqrt(np.where(both, a * b, 0.0)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_both = r**2 * (b / a * va + a / b * vb)
    variance = np.where(both, var_both, r**2 * (va + vb))
    return value, variance


ESTIMATORS = {"binwise": "geometric", "constant": "arithmetic"}
"""``background.ss_weight`` → the like-sign estimator it stands for."""


@dataclass(frozen=True)
class LikeSignEstimate:
    """The like-sign estimate of the OS combinatorial background along the mass axis.

    ``value``/``variance``: N_comb per bin; ``factor``: k_b ≥ 0 with
    ``value = factor · (N++ + N−−)`` per bin (the per-pair SS weight is −k_b);
    ``half_window``: bins on each side summed for k_b (0: the bin alone; −1: the whole
    axis, which still lacks ``min_counts`` of a sign); ``ratio_all``: 2√(ΣN++ ΣN−−)/ΣN_SS
    of the whole axis.
    """

    estimator: str
    value: np.ndarray
    variance: np.ndarray
    factor: np.ndarray
    half_window: np.ndarray
    ratio_all: float

    def report(self) -> dict[str, object]:
        """The numbers ``select.json`` carries under ``background``."""
        hw = self.half_window
        return {
            "estimator": self.estimator,
            "bins": int(hw.size),
            "bins_widened": int(np.sum(hw != 0)),
            "max_half_window": int(hw.max()) if hw.size else 0,
            "bins_whole_axis": int(np.sum(hw < 0)),
            "like_sign_ratio_all": self.ratio_all,
        }


def like_sign_estimate(
    n_pp: np.ndarray,
    n_mm: np.ndarray,
    var_pp: np.ndarray | None = None,
    var_mm: np.ndarray | None = None,
    *,
    r: float | np.ndarray = 1.0,
    estimator: str = "geometric",
    min_counts: float = 10.0,
) -> LikeSignEstimate:
    r"""Like-sign estimate of the OS combinatorial background per mass bin, as a per-SS-pair
    factor k_b, so that per-pair weights and histograms hold the same estimator.

    ``geometric``: N_comb,b = k_b S_b with S_b = N^{++}_b + N^{−−}_b and
    k_b = 2R√(P M)/(P + M), (P, M) = Σ (N^{++}, N^{−−}) over the bins b−h … b+h, h the
    smallest half-width with P ≥ ``min_counts`` and M ≥ ``min_counts`` (h = 0 where the bin
    has enough of both: N_comb,b = 2R√(N^{++}_b N^{−−}_b) exactly, NA60 practice). Where one
    sign is empty in a sparse bin the plain geometric mean is 0, biased low
    (E[2√(N^{++}N^{−−})] < 2√(μ^{++}μ^{−−}), up to −100% at μ ≲ 1); k_b from the window is
    then a smoothed estimate of the charge-asymmetry factor, and N_comb,b = k_b S_b is
    unbiased in every bin, S_b = 0 included, to the extent that the asymmetry is constant
    over the window. The variance is the linear propagation of the like-sign variances
    through k_b (from the window's bins) and S_b; for h = 0 it is the textbook
    R²(N^{−−}/N^{++} σ²_{++} + N^{++}/N^{−−} σ²_{−−}). Windows of neighbouring bins overlap,
    so their estimates are correlated (the variance of a sum over bins is then not the sum).

    ``arithmetic``: k_b = R, N_comb = R(N^{++} + N^{−−}), variance R²(σ²_{++} + σ²_{−−});
    equal to the geometric mean only for charge-symmetric background: with independent muon
    charges (μ⁺ fraction f), N^{++} : N^{−−} : N^{+−} = f² : (1−f)² : 2f(1−f), and
    R(N^{++} + N^{−−}) exceeds 2R√(N^{++}N^{−−}) by (f² + (1−f)²)/(2f(1−f)) − 1
    (8.3% at f = 0.6).

    Arguments:
        n_pp, n_mm: like-sign counts (or sums of weights) per mass bin, 1-D.
        var_pp, var_mm: their variances (default: the counts, Poisson).
        r: the R factor (acceptance asymmetry), 1 for charge-symmetric acceptance; a number
            or one per bin (:func:`r_factor_mixed`; its uncertainty is not propagated).
        estimator: ``geometric`` or ``arithmetic``.
        min_counts: ``geometric``: like-sign counts of each sign below which a bin's factor
            is taken from a window of neighbouring bins.

    Returns:
        A :class:`LikeSignEstimate`.

    References:
        docs/explanation/physics.md §4; NA60, Eur. Phys. J. C 59 (2009) 607 (2R√(N^{++}N^{−−})).

    Example:
        >>> e = like_sign_estimate(np.array([4.0, 0.0, 9.0]), np.array([9.0, 1.0, 4.0]),
        ...                        min_counts=1)
        >>> e.value.round(3).tolist(), e.half_window.tolist()   # bin 1: from bins 0–2
        ([12.0, 0.999, 12.0], [0, 1, 0])
    """
    a, b, va, vb = _counts_and_variances(n_pp, n_mm, var_pp, var_mm)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError("like_sign_estimate: n_pp and n_mm must be 1-D arrays of one shape")
    n = a.size
    s = a + b
    r_bin = np.broadcast_to(np.asarray(r, dtype=float), (n,))
    tot_a, tot_b = float(a.sum()), float(b.sum())
    ratio_all = 2.0 * np.sqrt(tot_a * tot_b) / (tot_a + tot_b) if tot_a + tot_b > 0 else 0.0
    if estimator == "arithmetic":
        factor = r_bin.copy()
        return LikeSignEstimate(
            estimator, r_bin * s, r_bin**2 * (va + vb), factor, np.zeros(n, dtype=int), ratio_all
        )
    if estimator != "geometric":
        raise ValueError(f"unknown like-sign estimator {estimator!r} (geometric, arithmetic)")
    ca = np.concatenate([[0.0], np.cumsum(a)])
    cb = np.concatenate([[0.0], np.cumsum(b)])
    factor = np.zeros(n)
    variance = np.zeros(n)
    half = np.zeros(n, dtype=int)
    for i in range(n):
        h = 0
        while True:
            lo, hi = max(i - h, 0), min(i + h + 1, n)
            p, m = ca[hi] - ca[lo], cb[hi] - cb[lo]
            whole = lo == 0 and hi == n
            if (p >= min_counts and m >= min_counts) or whole:
                break
            h += 1
        half[i] = -1 if whole and not (p >= min_counts and m >= min_counts) else h
        if p <= 0 or m <= 0:
            # one sign absent from the window: 2√(P M) = 0; the variance falls back to that
            # of the arithmetic estimate (upper bound for charge-symmetric background)
            variance[i] = r_bin[i] ** 2 * (va[i] + vb[i]) if p + m > 0 else 0.0
            continue
        k = 2.0 * np.sqrt(p * m) / (p + m)
        factor[i] = r_bin[i] * k
        # ∂k/∂P = k (M − P)/(2P(P + M)), ∂k/∂M = k (P − M)/(2M(P + M))
        dk_p = k * (m - p) / (2.0 * p * (p + m))
        dk_m = k * (p - m) / (2.0 * m * (p + m))
        ga = np.full(hi - lo, s[i] * dk_p)
        gb = np.full(hi - lo, s[i] * dk_m)
        ga[i - lo] += k
        gb[i - lo] += k
        variance[i] = r_bin[i] ** 2 * (np.sum(ga**2 * va[lo:hi]) + np.sum(gb**2 * vb[lo:hi]))
    value = factor * s
    return LikeSignEstimate(estimator, value, variance, factor, half, ratio_all)


def r_factor_mixed(
    n_pm: np.ndarray, n_pp: np.ndarray, n_mm: np.ndarray, *, min_counts: float = 100.0
) -> tuple[np.ndarray, np.ndarray]:
    r"""R per mass bin from mixed-event pair counts, R = N^{+−}/(2√(N^{++}N^{−−})).

    Pairs of leptons from different events are uncorrelated by construction; their charge
    combinations carry only the single-lepton charge asymmetry of production and acceptance,
    so R measures how far a charge-dependent acceptance breaks N^{+−} = 2√(N^{++}N^{−−}) in
    each mass bin. Bins with fewer than ``min_counts`` mixed pairs of any class sum the
    narrowest symmetric window of neighbours that has them (as :func:`like_sign_estimate`);
    R = 1 where even the whole axis lacks a class.

    Arguments:
        n_pm, n_pp, n_mm: mixed-event +−, ++, −− pair counts per mass bin.
        min_counts: mixed pairs of each class a bin needs for its own R.

    Returns:
        ``(r, half_window)`` per bin (half_window −1: whole axis short; R = 1 there if a class
        is absent).

    References:
        NA60, Eur. Phys. J. C 59 (2009) 607 (R from mixed events); docs/explanation/physics.md §4.

    Example:
        >>> r, h = r_factor_mixed(np.array([44.0, 40.0]), np.array([100.0, 100.0]),
        ...                       np.array([4.0, 4.0]), min_counts=1)
        >>> r.round(3).tolist(), h.tolist()   # 44/(2·√400) = 1.1
        ([1.1, 1.0], [0, 0])
    """
    c = np.asarray(n_pm, dtype=float)
    a = np.asarray(n_pp, dtype=float)
    b = np.asarray(n_mm, dtype=float)
    n = a.size
    cums = [np.concatenate([[0.0], np.cumsum(x)]) for x in (c, a, b)]
    r = np.ones(n)
    half = np.zeros(n, dtype=int)
    for i in range(n):
        h = 0
        while True:
            lo, hi = max(i - h, 0), min(i + h + 1, n)
            pm, pp, mm = (x[hi] - x[lo] for x in cums)
            enough = min(pm, pp, mm) >= min_counts
            if enough or (lo == 0 and hi == n):
                break
            h += 1
        half[i] = h if enough else -1
        if pm > 0 and pp > 0 and mm > 0:
            r[i] = pm / (2.0 * np.sqrt(pp * mm))
    return r, half


def ss_pair_weights(
    mass: np.ndarray,
    charge: np.ndarray,
    edges: np.ndarray,
    n_pp: np.ndarray,
    n_mm: np.ndarray,
    *,
    r: float = 1.0,
    mode: str = "constant",
    min_counts: float = 10.0,
) -> np.ndarray:
    """Per-pair subtraction factor: +1 for OS pairs, −k_b for SS pairs of mass bin b.

    Arguments:
        mass, charge: pair mass and summed charge (0, ±2).
        edges: the mass-axis bin edges of ``n_pp`` and ``n_mm`` (pairs outside take the
            nearest bin's factor).
        n_pp, n_mm: like-sign counts per mass bin (for ``binwise``).
        r: the R factor.
        mode: ``constant`` (−R per SS pair: the arithmetic estimate) or ``binwise`` (the
            geometric estimate of :func:`like_sign_estimate`, exact per populated bin).
        min_counts: ``binwise``: see :func:`like_sign_estimate`.

    Returns:
        The factor each pair's ``weight_raw / eff`` is multiplied with.

    Example:
        >>> w = ss_pair_weights(np.array([0.5, 0.5, 0.5]), np.array([0, 2, -2]),
        ...                     np.array([0.0, 1.0]), np.array([1.0]), np.array([4.0]),
        ...                     mode="binwise", min_counts=1)
        >>> w.tolist()   # 2·√(1·4)/(1+4) = 0.8
        [1.0, -0.8, -0.8]
    """
    if mode not in ESTIMATORS:
        raise ValueError(f"unknown SS weight mode {mode!r}")
    est = like_sign_estimate(n_pp, n_mm, r=r, estimator=ESTIMATORS[mode], min_counts=min_counts)
    return pair_factors(mass, charge, edges, est.factor)


def pair_factors(
    mass: np.ndarray, charge: np.ndarray, edges: np.ndarray, factor: np.ndarray
) -> np.ndarray:
    """+1 for OS pairs, −``factor`` of the pair's mass bin for SS pairs (pairs outside
    ``edges`` take the nearest bin's factor).

    Example:
        >>> pair_factors(np.array([0.5, 1.5, 9.0]), np.array([2, -2, 0]),
        ...              np.array([0.0, 1.0, 2.0]), np.array([0.5, 0.9])).tolist()
        [-0.5, -0.9, 1.0]
    """
    charge = np.asarray(charge)
    ss = charge != 0
    w = np.ones(len(charge), dtype=float)
    factor = np.asarray(factor, dtype=float)
    idx = np.clip(
        np.searchsorted(edges, np.asarray(mass)[ss], side="right") - 1, 0, factor.size - 1
    )
    w[ss] = -factor[idx]
    return w


def eta_dalitz_spectrum(m: np.ndarray) -> np.ndarray:
    """Unnormalised dΓ(η → γμμ)/dm: Kroll–Wada with the NA60 pole form factor.

    Uses :func:`gammastar.physics.dalitz.pseudoscalar_dalitz_dgamma_dm` and
    :func:`~gammastar.physics.dalitz.form_factor_pole` (Λ⁻² = 1.934 GeV⁻², NA60 2016).

    Example:
        >>> eta_dalitz_spectrum(np.array([0.1, 0.3]))[0]  # below 2 m_μ
        np.float64(0.0)
    """

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


@dataclass(frozen=True)
class ConversionTemplate:
    """Photon-conversion subtraction from a template R(m, pT) = conversion pairs / γ* pairs
    per cell of reconstructed mass and pair pT (``background.conversion_template``;
    docs/explanation/method.md "Conversions").

    Conversions γ → ee in material are opposite-sign pairs of a few m_e that the like-sign
    subtraction leaves in; their mass tail reaches the A′ region (10–20 MeV). With R from
    the experiment's simulation of its material (photons of π0 → γγ converting; Tsai, Rev.
    Mod. Phys. 46 (1974) 815), the like-sign subtracted count of a cell, N_γ* + N_conv =
    N_γ*(1 + R), times 1/(1 + R) is N_γ*: every pair (OS and SS, so that the like-sign
    subtraction stays the same estimate) is weighted by :meth:`factor`. Exact per cell for
    the counts, and for the 1/(A ε) weighted sums where A is constant inside a cell (the
    mock's template has the acceptance map's pT edges and 1 MeV mass bins inside its 5 MeV
    rows). A template in m only (a TH1) assumes conversion and γ* pairs of a mass bin share
    their mean 1/A: on the mock their ⟨1/A⟩ differs markedly at 10–20 MeV (conversions sit
    at higher pT), which over-subtracts (tests/test_conversions.py). R's normalisation
    follows the simulated material budget X/X0 and BR(π0 → γγ)/BR(π0 → γee): a real
    experiment's uncertainty on X/X0 scales R.

    Example:
        >>> t = ConversionTemplate(np.array([0.0, 0.01, 0.02]), np.array([0.0, np.inf]),
        ...                        np.array([[1.0], [0.25]]), "x")
        >>> t.factor(np.array([0.005, 0.015, 0.5]), np.zeros(3)).tolist()
        [0.5, 0.8, 1.0]
    """

    m_edges: np.ndarray
    pt_edges: np.ndarray
    ratio: np.ndarray
    """R per (mass, pT) cell, shape (len(m_edges) − 1, len(pt_edges) − 1)."""
    source: str

    def factor(self, m: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """1/(1 + R(m, pT)) per pair; 1 outside the template."""
        m = np.asarray(m, dtype=np.float64)
        pt = np.asarray(pt, dtype=np.float64)
        i = np.searchsorted(self.m_edges, m, side="right") - 1
        j = np.searchsorted(self.pt_edges, pt, side="right") - 1
        nx, ny = self.ratio.shape
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        r = np.where(inside, self.ratio[np.clip(i, 0, nx - 1), np.clip(j, 0, ny - 1)], 0.0)
        return 1.0 / (1.0 + r)

    def summary(self, mass_min: float) -> dict[str, object]:
        """``select.json`` ``background.conversions``: the source and, per mass bin from
        ``mass_min`` with some R > 0, the largest R over pT."""
        r = self.ratio.max(axis=1)
        hi = self.m_edges[1:]
        keep = (hi > mass_min + 1e-9 * max(abs(mass_min), 1.0)) & (r > 0)
        return {
            "template": self.source,
            "mass_low_edges": [round(float(x), 9) for x in self.m_edges[:-1][keep]],
            "max_ratio": [float(x) for x in r[keep]],
        }


def load_conversion_template(spec: str, resolve) -> ConversionTemplate:
    """Read ``background.conversion_template`` (``"path"`` or ``"path:key"``): a TH2
    (x = mass, y = pair pT, GeV) or a TH1 (mass) with contents R ≥ 0.

    Arguments:
        spec: the config value.
        resolve: callable turning the path into a file path (the config's ``resolve``).

    Raises:
        ConfigError: missing file or histogram; InputError: another class, negative or
            non-finite contents (naming the key, file and histogram).
    """

    path, key = split_map_spec(spec, "conversion_ratio_ee")
    path = str(resolve(path))
    try:
        h = read_root_histogram(path, key, kind="TH2", key="background.conversion_template",
                                what="x = mass, y = pair pT (GeV), contents R")  # fmt: skip
        r = np.asarray(h.values(), dtype=np.float64)
        pt_edges = np.asarray(h.axes[1].edges, dtype=np.float64)
    except InputError:  # not a TH2: a template in mass only
        h = read_root_histogram(path, key, kind="TH1", key="background.conversion_template",
                                what="x = mass (GeV), contents R")  # fmt: skip
        r = np.asarray(h.values(), dtype=np.float64)[:, None]
        pt_edges = np.array([0.0, np.inf])
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise InputError(
            f"background.conversion_template: {path}:{key} must hold finite R >= 0 per bin"
        )
    m_edges = np.asarray(h.axes[0].edges, dtype=np.float64)
    return ConversionTemplate(m_edges, pt_edges, r, f"{path}:{key}")


def conversion_template_from_config(cfg) -> ConversionTemplate | None:
    """The config's :class:`ConversionTemplate` (``None`` without one)."""
    spec = cfg.background.conversion_template
    if spec is None:
        return None
    return load_conversion_template(spec, cfg.resolve)
