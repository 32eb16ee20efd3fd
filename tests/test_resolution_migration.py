"""benchmarks/resolution_migration.py: the fiducial fraction by reconstructed against true mass.

Synthetic simulations whose answer is known by counting: no migration (c = 1 exactly) and a
population moved by a constant residual into the next bin with another in-F fraction."""

from __future__ import annotations

import numpy as np
import pytest
from _benchmarks import load_benchmark


class _Acceptance:
    """A per-pair acceptance of 1 for q_T < 1 GeV and 0 above (F: q_T < 1 GeV)."""

    def of_kinematics(self, m, qt, energy):
        return np.where(np.asarray(qt) < 1.0, 1.0, 0.0)


class _Fiducial:
    acceptance = _Acceptance()
    min_acceptance = 0.5


FINE = np.linspace(0.0, 2.0, 2001)  # the mock's truth_all_m axis, 1 MeV
EDGES = np.array([0.2, 0.3, 0.4, 0.5])


def _simulation(n1: int, n2: int, shift: float, in_f2: float):
    """n1 γ* at true 0.3505 GeV reconstructed there, half inside F; n2 at true 0.2505 GeV
    reconstructed ``shift`` higher, a fraction ``in_f2`` inside F; every generated source is
    recorded (``truth_all_m`` = the rows' true masses)."""
    qt1 = np.where(np.arange(n1) % 2 == 0, 0.5, 2.0)
    qt2 = np.where(np.arange(n2) < round(in_f2 * n2), 0.5, 2.0)
    m_true = np.concatenate([np.full(n1, 0.3505), np.full(n2, 0.2505)])
    rows = {"m_true": m_true, "m": m_true + np.concatenate([np.zeros(n1), np.full(n2, shift)]),
            "qT": np.concatenate([qt1, qt2]), "E": np.full(n1 + n2, 10.0)}  # fmt: skip
    gen = np.histogram(m_true, FINE)[0].astype(float)
    return rows, gen


def test_no_migration_gives_one():
    """m = m_true: the reconstructed and true labelling are the same sums, c = 1 to rounding."""
    bench = load_benchmark("resolution_migration")
    rows, gen = _simulation(400, 400, 0.0, 0.25)
    res = bench.migration(rows, gen, FINE, _Fiducial(), EDGES, bootstrap=5, seed=1)
    np.testing.assert_allclose(res["c"][:2], 1.0, rtol=1e-12)
    np.testing.assert_allclose(res["f_reco"][:2], [0.25, 0.5], rtol=1e-12)  # by counting


def test_migrants_with_another_fiducial_fraction():
    """400 natives (half in F) and 400 migrants from the bin below (a quarter in F) in the
    bin 0.3–0.4 GeV: f_reco = (200 + 100)/800, f_true = 200/400, c = 4/3 by counting; the
    bin below keeps no γ* (f_reco = 0/0, NaN) and the bootstrap error is positive."""
    bench = load_benchmark("resolution_migration")
    rows, gen = _simulation(400, 400, 0.1, 0.25)
    res = bench.migration(rows, gen, FINE, _Fiducial(), EDGES, bootstrap=20, seed=2)
    assert res["f_reco"][1] == pytest.approx(300 / 800, rel=1e-12)
    assert res["f_true"][1] == pytest.approx(0.5, rel=1e-12)
    assert res["c"][1] == pytest.approx(4 / 3, rel=1e-12)
    assert np.isnan(res["f_reco"][0])
    assert 0 < res["c_err"][1] < 0.2  # Poisson weights over 800 sources
    sl = bench.slices_at(rows, gen, FINE, res["weights"], EDGES, 0.35, [0.2, 0.3, 0.4])
    assert [s["share"] for s in sl] == pytest.approx([0.5, 0.5], rel=1e-12)
    assert [s["f_reco"] for s in sl] == pytest.approx([0.25, 0.5], rel=1e-12)


def test_smeared_counts_spreads_by_the_residuals():
    """Each source spread over its residuals in equal parts (exact, no draw)."""
    bench = load_benchmark("resolution_migration")
    out = bench.smeared_counts(np.array([10.0, 0.0]), np.array([0.0, 0.1, 0.2]),
                               np.array([0.05, 0.05]), np.array([-0.01, 0.07]),
                               np.array([0.0, 0.1, 0.2]))  # fmt: skip
    np.testing.assert_allclose(out, [5.0, 5.0], rtol=1e-12)
