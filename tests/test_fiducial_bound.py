"""The fiducial region's test at one mass made on the points its table lets pass
(gammastar.yields._fiducial_bound): the same answer as FiducialRegion.contains, point for
point, with ``contains`` evaluated on a fraction of the points."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _tolerance import EPS64, assert_same_decisions, reorder_tol

from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.physics.constants import M_MU
from gammastar.physics.sampling import ParametricSampler
from gammastar.yields._fiducial_bound import inside_at_mass

NA60 = LeptonAcceptance(3.0, 0.035, 0.120)  # the NA60-like spectrometer's lepton cuts


@pytest.fixture(scope="module")
def table():
    return PairAcceptance.build(NA60, lepton_mass=M_MU, mass_range=(0.2113, 1.1), p_max=400.0)


def _points(m, seed):
    """The extrapolation's broad reference sample at mass ``m`` (T = 0.3, ȳ = 3.4, σ_y = 2: most
    points outside the region), and points at the table's edges: no momentum, p beyond p_max,
    θ beyond the table's range, a NaN."""
    s = ParametricSampler(0.3, 3.4, 2.0).sample(m, 50_000, seed=seed)
    qt = np.concatenate([s["qT"], [0.0, 0.0, 1.0, 50.0, np.nan]])
    e = np.concatenate([s["E"], [m, m + 1e-9, 900.0, 60.0, 20.0]])
    return qt, e


def _counting(monkeypatch) -> list[int]:
    """``FiducialRegion.contains`` made to count the points it is asked about (the list's one
    entry)."""
    seen, inner = [0], FiducialRegion.contains

    def contains(region, m, qt, e):
        seen[0] += np.size(qt)
        return inner(region, m, qt, e)

    monkeypatch.setattr(FiducialRegion, "contains", contains)
    return seen


@pytest.mark.parametrize(("lam", "a_min"), [(0.0, 0.05), ("ramp", 0.05), (0.0, 0.3)])
def test_inside_at_mass_answers_as_contains(table, lam, a_min, monkeypatch):
    """:func:`inside_at_mass` gives ``contains``' answer for every point, at masses across the
    table, between its nodes, at a node, below 2 m_μ and above its last node, for a λ_θ that
    varies over the mass nodes (the λ moves' tables) and two ``min_acceptance``: the same
    booleans (a point's A is the same interpolation either way; a bound that dropped a passing
    point would show here), and ``contains`` asked about under half of the points (about a
    quarter pass the bound at 0.05, a fifth pass the region)."""
    if lam == "ramp":
        lam = np.linspace(-0.6, 0.8, table.m_grid.size)
    region = FiducialRegion(table.with_lambda(lam), a_min)
    masses = [0.2, 0.2113, 0.25, float(table.m_grid[7]), 0.55, 0.7731, 1.1, 1.3]
    for i, m in enumerate(masses):
        qt, e = _points(m, seed=i)
        with np.errstate(invalid="ignore"):
            want = region.contains(np.full(qt.size, m), qt, e)
        seen = _counting(monkeypatch)
        got = inside_at_mass(region, m, qt, e)
        monkeypatch.undo()
        with np.errstate(invalid="ignore"):
            assert_same_decisions(got, want, functools.partial(inside_at_mass, region, m), (qt, e))
        assert seen[0] < 0.5 * qt.size
    assert want.any()


def test_inside_at_mass_tests_every_point_where_the_bound_does_not_apply(table, monkeypatch):
    """A region that is not a :class:`FiducialRegion` of a :class:`PairAcceptance` (a duck
    type), or one with ``min_acceptance`` 0 (every point passes): ``contains`` decides every
    point, with the mass as an array of the points' shape."""

    class Duck:
        def contains(self, m, qt, e):
            assert np.shape(m) == np.shape(qt)
            return qt > 1.0

    qt, e = _points(0.5, seed=3)
    qt, e = qt[:-1], e[:-1]  # no NaN: the duck's comparison
    # the duck's own booleans, returned: exact
    np.testing.assert_array_equal(inside_at_mass(Duck(), 0.5, qt, e), qt > 1.0)
    region = FiducialRegion(table, 0.0)
    seen = _counting(monkeypatch)
    assert inside_at_mass(region, 0.5, qt, e).all()
    assert seen[0] == qt.size


@pytest.mark.parametrize("m", [0.25, 0.55, 1.0])
def test_candidates_hold_every_point_of_an_ok_cell(table, m):
    """The compiled candidates (:func:`candidates`, one pass, no arctangent) hold every point
    whose numpy cell (:func:`cells`) the bound allows: a point may move to a neighbouring cell
    only on a cell edge (an ulp), which the bound's dilation covers, so none of the reference
    sample's is lost (and those between two allowed cells of a row are added: about as many
    candidates as allowed points, under half the sample)."""
    from gammastar.yields._fiducial_bound import candidates, cell_bound, cells

    region = FiducialRegion(table.with_lambda(np.linspace(-0.6, 0.8, table.m_grid.size)), 0.05)
    qt, e = _points(m, seed=11)
    ok = cell_bound(region, m, m)
    with np.errstate(invalid="ignore"):
        want = np.flatnonzero(ok.ravel().take(cells(region, m, qt.copy(), e.copy())))
    got = candidates(region, m, qt, e, ok)
    assert np.all(np.diff(got) > 0)  # in the points' order
    assert np.isin(want, got).all()
    assert want.size <= got.size < min(1.2 * want.size, 0.5 * qt.size)


def test_mt_exponential_candidates_are_the_sampler_numbers(table):
    """The reference sample made only at its candidates (:func:`mt_exponential_candidates`,
    from the draws' mass-independent parts) has the q_T and E of
    :meth:`ParametricSampler.sample_at` at those draws, number for number (the same
    operations), and its candidates are :func:`candidates` of the full sample."""
    from gammastar.yields._fiducial_bound import candidates, cell_bound, mt_exponential_candidates
    from gammastar.yields.extrapolation.reference import REFERENCE, reference_draws

    region = FiducialRegion(table, 0.05)
    draws = reference_draws(4)
    for m in (0.3, 0.7731):
        ok = cell_bound(region, m, m)
        idx, qt, e = mt_exponential_candidates(region, m, ok, draws, REFERENCE[0])
        full = ParametricSampler(*REFERENCE).sample_at(draws, m)
        # products, quotients and square roots of the same parts: equal but for a compiler's
        # fused multiply-add, a rounding per operation (about 8 of them)
        tol = reorder_tol(8, 1.0, EPS64)
        np.testing.assert_allclose(qt, full["qT"][idx], rtol=tol, atol=0)
        np.testing.assert_allclose(e, full["E"][idx], rtol=tol, atol=0)

        def member(q, en, ok=ok, m=m):
            out = np.zeros(q.size, dtype=bool)
            out[candidates(region, m, q, en, ok)] = True
            return out

        got = np.zeros(full["qT"].size, dtype=bool)
        got[idx] = True
        # the same points but those within rounding of a cell edge
        assert_same_decisions(got, member(full["qT"], full["E"]), member, (full["qT"], full["E"]))


@pytest.mark.parametrize("lam", [0.0, "ramp"])
def test_compiled_acceptance_is_the_tables_interpolation(table, lam):
    """The compiled interpolation (:func:`acceptance_at_mass`) gives
    ``PairAcceptance.of_kinematics``' numbers, the same IEEE operations in the same order:
    equal to the last bit at masses between nodes, at a node, at 2 m_μ and beyond the grid, for
    the reference sample and the table's edge points (no momentum, beyond p_max and the θ
    range, a NaN); ``contains_at_mass`` is then ``contains``."""
    from gammastar.yields._fiducial_bound import acceptance_at_mass, contains_at_mass

    if lam == "ramp":
        lam = np.linspace(-0.6, 0.8, table.m_grid.size)
    region = FiducialRegion(table.with_lambda(lam), 0.05)
    for i, m in enumerate([0.2, 0.2113, 0.25, float(table.m_grid[7]), 0.7731, 1.1, 1.3]):
        qt, e = _points(m, seed=20 + i)
        with np.errstate(invalid="ignore"):
            want = region.acceptance.of_kinematics(np.full(qt.size, m), qt, e)
            got = acceptance_at_mass(region, m, qt, e)
            # the same operations, but numpy's vectorised log and trigonometry may differ from
            # libm's by an ulp on another CPU: an ulp of ln p or θ (≤ 1e-15 absolute) times the
            # table's steepest slope (< 10³ per unit) stays below 1e-12
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)
            assert_same_decisions(
                contains_at_mass(region, m, qt, e),
                region.contains(np.full(qt.size, m), qt, e),
                functools.partial(contains_at_mass, region, m),
                (qt, e),
            )


def test_quadrature_grid_in_f_is_the_region_on_the_meshgrid(table):
    """F on the extrapolation's (p_T, y) quadrature grid (``grid_in_f``, E made from m_T per
    p_T and cosh y per y) is ``contains`` on the meshgrid's element-wise (q_T, E = m_T cosh y),
    point for point."""
    from gammastar.yields.extrapolation import model

    region = FiducialRegion(table, 0.05)
    pt, y = np.meshgrid(model._PT, model._Y, indexing="ij")
    for m in (0.25, 0.7731):
        e = np.sqrt(pt**2 + m**2) * np.cosh(y)
        want = region.contains(np.full(pt.shape, m), pt, e)

        def inside(q, en, m=m):
            return region.contains(np.full(q.shape, m), q, en)

        # point for point but where the grid's other rounding of E tips a point at A's cut
        assert_same_decisions(model.grid_in_f(region, m).ravel(), want.ravel(), inside,
                              (pt.ravel(), e.ravel()))  # fmt: skip
        assert want.any()


def test_mt_exponential_superset_holds_every_moves_candidates(table):
    """One pass for several (region, mass) pairs of close masses
    (:func:`mt_exponential_superset`, the λ_θ moves of one fit group) keeps every point that any
    pair's own pass (:func:`mt_exponential_candidates`) keeps, and the pass made on the kept
    points alone finds each pair's candidates with their q_T and E (the same operations on the
    same draws: exact); masses a cell's move apart are refused. The masses straddle a table
    node and lie 0.4% apart (near the most this table's cells allow, 0.46% in ln m; the demo's
    moves: 10⁻⁵), the regions three λ_θ tables."""
    from gammastar.yields._fiducial_bound import (
        cell_bound,
        mt_exponential_candidates,
        mt_exponential_superset,
    )
    from gammastar.yields.extrapolation.reference import REFERENCE, reference_draws

    ramp = np.linspace(-0.6, 0.8, table.m_grid.size)
    regions = [FiducialRegion(table.with_lambda(lam), 0.05) for lam in (0.0, ramp, -ramp)]
    draws = reference_draws(5)
    t = REFERENCE[0]
    for centre in (0.3, float(table.m_grid[7])):
        masses = [centre * (1 - 2e-3), centre, centre * (1 + 2e-3)]
        pairs = [(f, m) for f in regions for m in masses]
        sub = mt_exponential_superset([f for f, _ in pairs], [m for _, m in pairs], draws, t)
        assert sub is not None
        assert np.all(np.diff(sub) > 0)
        part = {k: draws[k][sub] for k in ("r", "u_exp", "u_gamma", "cosh_y")}
        for f, m in pairs:
            ok = cell_bound(f, m, m)
            idx, qt, e = mt_exponential_candidates(f, m, ok, draws, t)
            assert np.isin(idx, sub).all()
            i2, q2, e2 = mt_exponential_candidates(f, m, ok, part, t)
            np.testing.assert_array_equal(sub[i2], idx)  # indices: integers
            # the same few float64 operations per draw: equal within a few ulps
            np.testing.assert_allclose(q2, qt, rtol=4 * np.finfo(float).eps, atol=0)
            np.testing.assert_allclose(e2, e, rtol=4 * np.finfo(float).eps, atol=0)
        # about the candidates of one pair, far fewer than the sample
        assert sub.size < 0.5 * draws["r"].size
    assert mt_exponential_superset(regions[:1] * 2, [0.3, 0.6], draws, t) is None


def test_inside_at_mass_each_answers_as_inside_at_mass(table):
    """F of several regions at one mass with the candidates found once for all of them
    (:func:`inside_at_mass_each`, the λ_θ moves on one bin's quadrature grid) gives each
    region's :func:`inside_at_mass`: a point no region's bound allows fails each one's
    ``contains`` (but where a decision rounds at A's cut)."""
    from gammastar.yields._fiducial_bound import inside_at_mass_each

    ramp = np.linspace(-0.6, 0.8, table.m_grid.size)
    regions = [FiducialRegion(table.with_lambda(lam), 0.05) for lam in (0.0, ramp, -ramp)]
    for i, m in enumerate((0.25, 0.7731)):
        qt, e = _points(m, seed=40 + i)
        with np.errstate(invalid="ignore"):
            got = inside_at_mass_each(regions, m, qt, e)
            for f, g in zip(regions, got, strict=True):
                decide = functools.partial(inside_at_mass, f, m)
                assert_same_decisions(g, decide(qt, e), decide, (qt, e))
    assert any(g.any() for g in got)


def test_cell_bound_kept_answers_for_its_own_table(table):
    """The bound's kept table maxima (:func:`_top`) answer only for the table they were made
    from: regions of other λ_θ tables made one after another (a gone table's address may be
    reused) get the bound computed afresh, cell for cell."""
    from gammastar.yields import _fiducial_bound as fb

    ramp = np.linspace(-0.6, 0.8, table.m_grid.size)
    for lam in (0.0, ramp, -ramp, 0.5 * ramp):
        region = FiducialRegion(table.with_lambda(lam), 0.05)
        for m in (0.25, 0.7731):
            kept = fb.cell_bound(region, m, m)
            fb._TOPS.clear()
            # booleans of the same table compared with the same bound: exact
            np.testing.assert_array_equal(kept, fb.cell_bound(region, m, m))
            np.testing.assert_array_equal(kept, fb.cell_bound(region, m, m))  # from the store
        del region
