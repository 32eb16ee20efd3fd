"""benchmarks/lambda_nsig.py's pure parts (issue 19): the per-bin λ_θ shifts against the
interpolated error of :func:`gammastar.yields.uncertainties.interpolated_error`, the relative changes
and slopes from ln shifts, and a missing input named. Fast: no chain."""

from __future__ import annotations

import numpy as np
import pytest
from _benchmarks import load_benchmark
from _tolerance import EPS64, reorder_tol

from gammastar.corrections.pair_acceptance import LeptonAcceptance, PairAcceptance
from gammastar.physics.constants import M_MU
from gammastar.yields.uncertainties import interpolated_error


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("lambda_nsig")


@pytest.fixture(scope="module")
def table():
    na60 = LeptonAcceptance(3.0, 0.035, 0.120)
    return PairAcceptance.build(na60, lepton_mass=M_MU, mass_range=(0.2113, 1.1), p_max=400.0)


def test_bin_shifts_are_the_interpolation_weights_times_each_error(bench, table):
    """λ_θ(m) = Σ_k T_k(m) λ̂_k between the bins' centres: bin k alone at +σ_k moves the nodes
    by T_k σ_k, so the shifts add up to the interpolated σ (the nuisance's correlated shift,
    ``lambda_nodes(edges, σ)``) and their quadrature is the independent bins' error,
    √(Σ T_k² σ_k²) = ``interpolated_error``. A bin without a value is skipped, as
    ``lambda_nodes`` skips it. Tolerance: a handful of float64 roundings of values ≤ 0.2."""
    edges = [0.2113, 0.3, 0.45, 0.7, 1.1]
    lam = [0.1, None, 0.05, -0.2]
    err = [0.05, 0.08, 0.12, 0.2]
    got = bench.bin_shifts(table, edges, lam, err)
    assert sorted(got) == ["bin0", "bin2", "bin3"]  # bin1 has no λ̂
    e = np.array(edges)
    centres = 0.5 * (e[1:] + e[:-1])[[0, 2, 3]]
    sig = np.array(err)[[0, 2, 3]]
    tol = reorder_tol(8, 0.2, EPS64)
    total = sum(got.values())
    corr = table.lambda_nodes(edges, [0.05, np.nan, 0.12, 0.2])
    assert np.all(np.abs(total - corr) <= tol)
    quad = np.sqrt(sum(v**2 for v in got.values()))
    assert np.all(np.abs(quad - interpolated_error(table.m_grid, centres, sig)) <= tol)
    # between two centres the independent error is below the correlated one
    mid = (table.m_grid > centres[1] + 0.01) & (table.m_grid < centres[2] - 0.01)
    assert mid.any()
    assert np.all(quad[mid] < corr[mid])


def test_parts_relative_changes_and_slope(bench):
    """ln N moved by +0.02 / −0.01 at δλ = 0.1 (two masses, one cτ): relative changes
    e^{±Δ} − 1, r their mean absolute value, slope (up − down)/(2δλ)."""
    nom = {"ln_n": [[1.0], [2.0]]}
    up = {"ln_n": [[1.02], [2.0]]}
    down = {"ln_n": [[0.99], [2.0]]}
    p = bench.parts(nom, up, down, "ln_n", np.array([0.1, 0.1]))
    assert p["up"][0][0] == pytest.approx(np.expm1(0.02), rel=1e-12)
    assert p["down"][0][0] == pytest.approx(np.expm1(-0.01), rel=1e-12)
    assert p["rel"][0][0] == pytest.approx(0.5 * (np.expm1(0.02) - np.expm1(-0.01)), rel=1e-12)
    assert p["slope"][0][0] == pytest.approx(0.15, rel=1e-12)
    assert p["rel"][1][0] == pytest.approx(0.0, abs=EPS64)  # no change (ln 2 − ln 2, e^0 − 1)


def test_missing_run_is_named(bench, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output: run\n")
    with pytest.raises(SystemExit):
        bench.main(["--config", str(cfg), "--workdir", str(tmp_path / "w")])
    assert "--run: " in capsys.readouterr().err  # argparse names the option
    assert not (tmp_path / "w").exists()  # nothing written


def test_lambda_yield_scatter_slope_and_interpolation():
    """benchmarks/lambda_yield_scatter.py's helpers: the least-squares slope and its error on a
    drawn line (y = 0.3 x + noise 0.01, x scatter 0.05, 2000 points: slope within 5 of its
    σ = 0.01/(0.05 √2000)), a covariate that is pure noise leaving it within the same
    tolerance; the interpolation fraction between centres, clipped beyond them."""
    ys = load_benchmark("lambda_yield_scatter")
    rng = np.random.default_rng(5)
    x = rng.normal(0.1, 0.05, 2000)
    y = 0.3 * x + rng.normal(0.0, 0.01, x.size)
    b, e = ys.slope(y, x)
    assert e == pytest.approx(0.01 / (0.05 * np.sqrt(x.size)), rel=0.1)
    assert abs(b - 0.3) < 5 * e
    b2, _ = ys.slope(y, x, rng.normal(size=(x.size, 2)))
    assert abs(b2 - 0.3) < 5 * e
    c = np.array([0.25, 0.35, 0.5])
    assert ys.interp_weights(c, 0.3) == (1, pytest.approx(0.5))
    assert ys.interp_weights(c, 0.45) == (2, pytest.approx(2 / 3))
    j, t_clip = ys.interp_weights(c, 0.9)
    assert j == 2  # an index
    assert t_clip == pytest.approx(1.0, abs=EPS64)  # clipped beyond the last centre
