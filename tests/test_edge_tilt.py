"""Draws fitted to a detector's ε_high edge (:mod:`gammastar.reach.tilt`): the
cross-entropy component of :meth:`ParametricSampler.fit_part`, the edge on an N_sig curve, and
:func:`fitted_tilt` resolving an edge that the default mixture leaves to a few A′."""

from __future__ import annotations

import numpy as np
import pytest
from test_tilted_draws import _Model, _Region

from gammastar.physics.sampling import ParametricSampler, Tilt
from gammastar.reach.acceptance import channel_samples
from gammastar.reach.tilt import edge_contributions, edge_ctau, edge_tilt, fitted_tilt, kish
from gammastar.source.geometry import Geometry
from gammastar.source.source import Source
from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler


def test_fit_part_recovers_the_density_it_is_given():
    """Draws of a model with the rapidity 2σ_y forward, 0.6 σ_y wide and T × 2, weighted
    equally: the fitted component relative to the unshifted model is (2, 0.6, 2) within
    5 standard errors of 10⁵ draws (the mean's σ/√n, the width's σ/√(2n), T's ≈ T/√(2n))."""
    base = ParametricSampler(0.2, 3.37, 1.1)
    n = 100_000
    d = ParametricSampler(0.4, 3.37 + 2 * 1.1, 0.6 * 1.1).sample(0.3, n, seed=4)
    dy, sy, ts = base.fit_part(0.3, d["qT"], d["E"], np.ones(n))
    assert dy == pytest.approx(2.0, abs=5 * 0.6 / np.sqrt(n))
    assert sy == pytest.approx(0.6, abs=5 * 0.6 / np.sqrt(2 * n))
    assert ts == pytest.approx(2.0, abs=5 * 2.0 / np.sqrt(2 * n))


def test_edge_ctau_finds_the_falling_crossing():
    """The ε_high edge: the last fall through the level, log–log interpolated (exact on a
    power law N ∝ ε⁻⁴ between the grid points); none where N never reaches the level or the
    grid ends above it."""
    eps = np.array([1e-6, 1e-5, 1e-4, 1e-3])
    n = np.array([0.5, 50.0, 5.0, 5e-4])  # N ∝ ε^-4 from 1e-4 on
    got = edge_ctau(eps, n, 2.0, 1.0)
    eps_edge = 1e-4 * 5.0**0.25  # 5 (ε/1e-4)^-4 = 1
    assert got == pytest.approx(2.0 / eps_edge**2, rel=1e-12)
    assert edge_ctau(eps, n, 2.0, 100.0) is None
    assert edge_ctau(eps, np.full(4, 5.0), 2.0, 1.0) is None


def _source() -> Source:
    """A fitted model everywhere outside a region below 60 GeV (no flow)."""
    return Source.from_model(ExtrapolatedSampler(None, _Model(), _Region(), e_max=400.0))


def test_fitted_tilt_resolves_an_off_axis_edge():
    """An annulus at 60–100 mrad, 80–160 m, cτ = 3 cm (only fast, wide-angle A′ reach it):
    the default mixture's 20,000 draws leave a Kish size below 100 there; with the fitted
    component it passes 100 and triples (measured 34 → 279), and the acceptance agrees with
    10× more draws of the default mixture within 4σ (σ from the per-sample terms of both)."""
    src = _source()
    geo = Geometry(l1=80.0, l2=160.0, theta_min=0.06, theta_max=0.1)
    ctau, ch = 0.03, ("ee",)
    tilt = fitted_tilt(src, 0.3, 20_000, geo, ch, ctau, seed=1)
    assert tilt is not None
    assert len(tilt.extra) >= 1
    before = channel_samples(src.tilted(), 0.3, 20_000, geo, seed=2, channels=ch)
    after = channel_samples(src.tilted(tilt), 0.3, 20_000, geo, seed=2, channels=ch)
    big = channel_samples(src.tilted(), 0.3, 200_000, geo, seed=3, channels=ch)
    c0, c1, cb = (edge_contributions(s, {"ee": 1.0}, ctau) for s in (before, after, big))
    assert kish(c0) < 100
    assert kish(c1) >= 100
    assert kish(c1) > 3 * kish(c0)
    err = np.hypot(c1.std() / np.sqrt(c1.size), cb.std() / np.sqrt(cb.size))
    assert abs(c1.mean() - cb.mean()) < 4 * err


def test_fitted_tilt_leaves_a_resolved_edge_alone():
    """At cτ = 1 m the default mixture resolves the same annulus (Kish ≥ 100): no
    component is fitted, and a flow that gives every sample (no model) is never tilted."""
    geo = Geometry(l1=80.0, l2=160.0, theta_min=0.06, theta_max=0.1)
    assert fitted_tilt(_source(), 0.3, 20_000, geo, ("ee",), 1.0, seed=1) is None


def test_edge_tilt_needs_the_models_samples():
    """No component where fewer than three model samples contribute, or where the flow's
    samples (no tilt moves them) carry most of the edge."""
    model = ParametricSampler(0.2, 3.37, 1.1)
    kin = {"qT": np.full(6, 0.5), "E": np.full(6, 100.0),
           "extrapolated": np.array([True, True, False, False, False, False])}  # fmt: skip
    assert edge_tilt(model, 0.3, kin, np.ones(6)) is None  # 2 model samples
    kin["extrapolated"] = np.array([True, True, True, False, False, False])
    assert edge_tilt(model, 0.3, kin, np.array([1, 1, 1, 2, 2, 2.0])) is None  # a third
    got = edge_tilt(model, 0.3, kin, np.array([2, 2, 2, 1, 1, 1.0]), Tilt(1.0, 2.0))
    assert got is not None
    assert got[:2] == pytest.approx((1.0, 2.0), rel=1e-15)  # the given parts, copied
    assert len(got.extra) == 1


def test_scan_fits_the_edge_where_its_draw_leaves_few_a_prime(tmp_path, monkeypatch):
    """The reach's scan on the off-axis annulus with N_POT = 10²⁵ (the ε_high edge at
    cτ ≈ 5 cm, where the first draw's Kish size is about 60): a component is fitted and the
    mass drawn again (one refit at least), and
    the expected ε_high agrees with the unfitted draw's within 5% (near the edge
    Δ ln ε ≈ ln R / (2x − 2), x ≳ 5 the lifetimes to the volume: a 2× N_sig spread moves ε by
    under 9%; the two draws' spreads are far smaller)."""
    from test_reach import synthetic_yields

    from gammastar.reach import tilt as reach_tilt
    from gammastar.reach.scan import mass_signal, scan
    from gammastar.reach.scan.settings import ScanSettings
    from gammastar.source.production import load_yields

    settings = ScanSettings(
        geometry=Geometry(l1=80.0, l2=160.0, theta_min=0.06, theta_max=0.1),
        yields=load_yields(synthetic_yields(tmp_path / "y.json")),
        n_pot=1e25, channels=("mumu",), background={"mumu": 0.016}, background_kappa={"mumu": 1.125},
        n_pot_unc=0.2, efficiency_uncertainty=0.029, samples=20_000,
    )  # fmt: skip
    eps = np.geomspace(1e-9, 1e-3, 40)
    fitted = []
    def counting(*a, **k):
        got = reach_tilt.refit(*a, **k)
        fitted.append(got is not None)
        return got

    monkeypatch.setattr(mass_signal, "refit", counting)
    with_fit = scan([0.3], eps, sampler=_source(), settings=settings)
    assert any(fitted)
    monkeypatch.setattr(mass_signal, "EDGE_ROUNDS", 0)
    without = scan([0.3], eps, sampler=_source(), settings=settings)
    hi_fit, hi = with_fit.boundaries["0"][1][0], without.boundaries["0"][1][0]
    assert np.isfinite(hi_fit)
    assert hi_fit == pytest.approx(hi, rel=0.05)
