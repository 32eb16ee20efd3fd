"""benchmarks/stat_scatter.py's summary (issue 19): on drawn realisations whose scatters,
covariance and λ_θ slope are known, each realised figure is recovered within its statistical
error, and a bad option is refused with the option's name. Fast: no chain."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("stat_scatter")


def test_summary_recovers_known_scatters_covariance_and_slope(bench):
    """4000 drawn realisations at one mass and two cτ: ln Y_F = s + 0.2 δλ (σ_s 0.02), λ scatter
    0.06, ln(N/Y_F) with σ 0.03 and Corr(s, ·) 0.4; ln N = ln Y_F + ln(N/Y_F). Tolerances: 5
    standard errors (a scatter's 1/√(2n); a slope's σ_resid/(σ_λ √n); a covariance's
    √((σ₁²σ₂² + c²)/n))."""
    rng = np.random.default_rng(3)
    n, sl, sa, sy, rho, k = 4000, 0.06, 0.03, 0.02, 0.4, 0.2
    lam = rng.normal(0.1, sl, n)
    z = rng.normal(size=(2, n))
    s = sy * z[0]
    a = sa * (rho * z[0] + math.sqrt(1 - rho**2) * z[1])
    ln_yf = s + k * (lam - 0.1)
    runs = [[{
        "ln_n": [ln_yf[i] + a[i], ln_yf[i] + 2 * a[i]], "ln_yf": ln_yf[i],
        "ln_n_over_yf": [a[i], 2 * a[i]], "stat": sy, "fit": [sa, 2 * sa],
        "cross": [2 * rho * sy * sa, 4 * rho * sy * sa], "lambda_part": k * sl,
        "lambda": lam[i], "lambda_err": sl,
    }] for i in range(n)]  # fmt: skip
    t = bench.summary(runs, [0.3], [1.0, 100.0])
    se = 1 / math.sqrt(2 * (n - 1))
    assert t[0]["scatter_rel_se"] == pytest.approx(se)
    one = t[0]
    assert one["sd_ln_yf"] == pytest.approx(math.hypot(sy, k * sl), rel=5 * se)
    assert one["quoted_stat_lambda"] == pytest.approx(math.hypot(sy, k * sl))
    assert one["sd_ln_n_over_yf"] == pytest.approx(sa, rel=5 * se)
    assert one["sd_lambda"] == pytest.approx(sl, rel=5 * se)
    assert one["slope_lambda_nuisance"] == pytest.approx(k)
    # ln N on λ: slope k, the rest √(σ_s² + σ_a² + 2ρσ_sσ_a), the quoted one exactly that
    rest = math.sqrt(sy**2 + sa**2 + 2 * rho * sy * sa)
    assert one["slope_ln_n_on_lambda"] == pytest.approx(k, abs=5 * rest / (sl * math.sqrt(n)))
    assert one["sd_ln_n_less_lambda"] == pytest.approx(rest, rel=5 * se)
    assert one["quoted_stat_fit_cross"] == pytest.approx(rest)
    cov = rho * sy * sa
    assert one["two_cov"] == pytest.approx(
        2 * cov, abs=10 * math.sqrt((sy * sa) ** 2 + cov**2) / math.sqrt(n)
    )
    assert t[1]["sd_ln_n_over_yf"] == pytest.approx(2 * sa, rel=5 * se)
    assert "| 0.3 | 100 |" in "\n".join(bench.markdown(t))


def test_too_few_realisations_are_refused(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--flow", "x", "--workdir", "y", "--realisations", "2"])
    assert "--realisations: at least 3" in capsys.readouterr().err


def test_bin_summary_recovers_the_yield_scatter_less_lambda(bench):
    """600 drawn realisations, 3 yield bins, 4 polarisation bins (their centres moving a
    little between realisations, as equal-count edges do): ln Y_F,j = s_j + Σ_k c_jk δλ_k with
    σ(s) = (0.02, 0.03, 0.04), the quoted data_stat 1.25× that in bin 0 (an over-quote to be
    found) and exact in the others, λ̂_k scattering by 0.1; one realisation's bin 3 has no fit
    (NaN: skipped in the interpolation). The residual of the regression on all λ̂ is σ(s)
    within 5 standard errors (1/√(2(n − k − 1))), the raw scatter √(σ(s)² + Σ_k (0.1 c_jk)²)."""
    rng = np.random.default_rng(11)
    n, sig = 600, np.array([0.02, 0.03, 0.04])
    coef = np.array([[0.2, 0.1, 0.0, 0.0], [0.05, 0.2, 0.1, 0.0], [0.0, 0.0, 0.1, 0.2]])
    centres = np.array([0.25, 0.35, 0.5, 0.8])
    rows = []
    for i in range(n):
        dl = rng.normal(0.0, 0.1, 4)
        c = centres + rng.uniform(-0.002, 0.002, 4)
        lam = 0.05 + dl
        if i == 7:
            lam[3] = np.nan
        # the truth follows λ at the reference centres (to the interpolation's small shift)
        ln_y = sig * rng.normal(size=3) + coef @ dl
        rows.append({"mass": [0.3, 0.33, 0.36], "ln_yf": ln_y.tolist(),
                     "rel_stat": (sig * [1.25, 1.0, 1.0]).tolist(), "lambda": lam.tolist(),
                     "lambda_centres": c.tolist()})  # fmt: skip
    rows[0]["lambda_centres"] = centres.tolist()
    out = bench.bin_summary(rows)
    assert [b["mass"] for b in out] == [0.3, 0.33, 0.36]  # copied from the rows, not computed
    se = 1 / math.sqrt(2 * (n - 5))
    assert out[0]["ratio_se"] == pytest.approx(se)
    total = np.sqrt(sig**2 + ((0.1 * coef) ** 2).sum(axis=1))  # the raw scatter
    for b, s, over, t in zip(out, sig, (1.25, 1.0, 1.0), total, strict=True):
        assert b["sd_less_lambda"] == pytest.approx(s, rel=5 * se + 0.01)  # + the λ̂ at i = 7
        assert b["ratio"] == pytest.approx(1 / over, rel=5 * se + 0.01)
        assert b["sd_ln_yf"] == pytest.approx(t, rel=5 * se + 0.01)  # λ̂'s part included
