"""The statistical methods' calculations: the exact hybrid CLs
(:mod:`~gammastar.reach.stats.exact`), pyhf's asymptotic formulae and pyhf's toy calculator,
each as a limit (``Request → LimitResult``) and a CLs at one n_signal, with the rule for
``auto`` of the asymptotic one; the registry :data:`gammastar.reach.stats.METHODS` names them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from gammastar.errors import GammastarError
from gammastar.reach.stats.interface import BANDS, LimitResult, Request
from gammastar.reach.stats.model import Model
from gammastar.reach.stats.workspace import _numpy_seed, quiet_pyhf


def _exact_limit(req: Request) -> LimitResult:
    ex, model = req.exact, req.model
    assert model is not None
    if not ex.feasible:
        raise GammastarError(
            "exact CLs: too many count configurations to enumerate; use method 'toys' "
            "or 'asymptotic'"
        )
    exp: dict[str, float] = {}
    zero_limit: float | None = None
    prev: float | None = req.hint
    for b in BANDS:  # bands whose reference outcome is "no event" share one limit
        if zero_limit is not None and ex.zero_class(b):
            exp[b] = zero_limit
            continue
        exp[b] = prev = ex.limit(req.alpha, band=b, hint=prev)
        if ex.zero_class(b):
            zero_limit = exp[b]
    obs = None
    if model.has_observed:
        obs = (
            zero_limit
            if (zero_limit is not None and ex.zero_class(None))
            else (ex.limit(req.alpha, band=None, hint=exp["0"]))
        )
    return LimitResult(cl=req.cl, method="exact", expected=exp, observed=obs)


def _exact_cls(req: Request, n_signal: float) -> tuple[float | None, list[float]]:
    ex, model = req.exact, req.model
    assert model is not None
    return (
        ex.cls(n_signal, None) if model.has_observed else None,
        [ex.cls(n_signal, b) for b in BANDS],
    )


def _asymptotic_limit(req: Request) -> LimitResult:
    from pyhf.infer.intervals.upper_limits import toms748_scan

    assert req.model is not None
    _, pmodel, data = req.pyhf
    # TOMS 748 root finding on the POI bounds (observed and each band). Called directly:
    # pyhf 0.7.6's upper_limit(scan=None) does not pass `level` on (always 95% CL).
    lo, hi = pmodel.config.suggested_bounds()[pmodel.config.poi_index]
    with quiet_pyhf():
        obs, exp = toms748_scan(data, pmodel, lo, hi, level=req.alpha, rtol=1e-5)
    expd = {b: float(v) for b, v in zip(BANDS, exp, strict=True)}
    return LimitResult(
        cl=req.cl,
        method="asymptotic",
        expected=expd,
        observed=float(obs) if req.model.has_observed else None,
    )


def _asymptotic_cls(req: Request, n_signal: float) -> tuple[float | None, list[float]]:
    import pyhf

    _, pmodel, data = req.pyhf
    with quiet_pyhf():
        r = pyhf.infer.hypotest(float(n_signal), data, pmodel, return_expected_set=True)
    return float(r[0]), [float(x) for x in r[1]]


def _toys_limit(req: Request) -> LimitResult:
    assert req.model is not None
    spec, pmodel, data = req.pyhf
    return _toy_limit(req.model, spec, pmodel, data, req.alpha, req.cl, req.ntoys, req.seed)


def _toys_cls(req: Request, n_signal: float) -> tuple[float | None, list[float]]:
    _, pmodel, data = req.pyhf
    with _numpy_seed(req.seed), quiet_pyhf():
        return _toy_cls(pmodel, data, float(n_signal), req.ntoys)


def _large_background(req: Request) -> bool:
    # a bare workspace: asymptotic (what `pyhf cls` computes)
    return req.model is None or all(np.all(c.background >= 10) for c in req.model.channels)


def _toy_limit(
    model: Model, spec: Any, pmodel: Any, data: Any, alpha: float, cl: float, ntoys: int, seed: Any
) -> LimitResult:
    total_b = sum(float(c.background.sum()) for c in model.channels)
    hi = max(8.0, 4.0 * (2.0 + total_b + 3 * math.sqrt(total_b)))
    scan = np.geomspace(0.5, hi, 12)
    obs_v, exp_v = [], []
    with _numpy_seed(seed), quiet_pyhf():
        for mu in scan:
            o, e = _toy_cls(pmodel, data, float(mu), ntoys)
            obs_v.append(o)
            exp_v.append(e)
    obs_a, exp_a = np.array(obs_v), np.array(exp_v)
    expd = {b: _crossing(scan, exp_a[:, i], alpha) for i, b in enumerate(BANDS)}
    obs = _crossing(scan, obs_a, alpha) if model.has_observed else None
    return LimitResult(cl=cl, method="toys", expected=expd, observed=obs, ntoys=ntoys)


def _crossing(mu: NDArray, cls_v: NDArray, alpha: float) -> float:
    """First μ where CLs drops below α (log-linear interpolation); NaN if never."""
    below = np.nonzero(cls_v < alpha)[0]
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float(mu[0])
    x0, x1 = math.log(mu[i - 1]), math.log(mu[i])
    y0, y1 = math.log(max(cls_v[i - 1], 1e-300)), math.log(max(cls_v[i], 1e-300))
    la = math.log(alpha)
    return float(math.exp(x0 + (la - y0) * (x1 - x0) / (y1 - y0))) if y1 != y0 else float(mu[i])


def _toy_cls(pmodel: Any, data: Any, mu: float, ntoys: int) -> tuple[float, list[float]]:
    """Observed and expected (−2σ…+2σ) CLs from pyhf's toy calculator.

    The expected band is computed here (numpy ≥ 2 removed the ``interpolation`` keyword that
    pyhf 0.7.6's ``ToyCalculator.expected_pvalues`` passes to ``np.percentile``).
    """
    from pyhf.infer.calculators import ToyCalculator

    calc = ToyCalculator(data, pmodel, ntoys=ntoys, track_progress=False)
    t_obs = calc.teststatistic(mu)
    sb, b = calc.distributions(mu)
    obs = float(calc.pvalues(t_obs, sb, b)[2])
    tb_samples = np.asarray(b.samples, dtype=float)
    sb_samples = np.sort(np.asarray(sb.samples, dtype=float))
    b_sorted = np.sort(tb_samples)
    # p-values of each background-only toy: P(q >= q_toy) under s+b and under b
    clsb = 1.0 - np.searchsorted(sb_samples, tb_samples, side="left") / sb_samples.size
    clb = 1.0 - np.searchsorted(b_sorted, tb_samples, side="left") / b_sorted.size
    with np.errstate(divide="ignore", invalid="ignore"):
        cls_v = np.where(clb > 0, clsb / clb, 1.0)
    pct = 100 * stats.norm.cdf([-2.0, -1.0, 0.0, 1.0, 2.0])
    # pyhf orders the band by the percentiles of CLs itself
    exp = [float(x) for x in np.percentile(cls_v, pct, method="linear")]
    return obs, exp
