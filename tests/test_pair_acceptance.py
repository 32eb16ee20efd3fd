"""The per-pair, fully differential acceptance (gammastar.corrections.pair_acceptance).

Checks against an analytic formula (energy cut only), against brute-force Monte Carlo of the
decay (isotropic and 1 + cos²θ*), against the mock detector's own pass/fail (the same
LeptonAcceptance), and the bad-input errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.errors import ConfigError, InputError
from gammastar.physics.constants import M_MU

NA60 = LeptonAcceptance(3.0, 0.035, 0.120)


@pytest.fixture(scope="module")
def table():
    return PairAcceptance.build(NA60, lepton_mass=M_MU, mass_range=(0.2113, 1.1), p_max=400.0)


def mc_acceptance(la, m, p, theta, *, lam=0.0, n=200_000, seed=1):
    """Brute force: decay γ* → μμ with density 1 + λ cos²θ* about its flight direction."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, 4 * n)
    keep = rng.uniform(0, 1 + abs(lam), c.size) < 1 + lam * c**2  # accept–reject
    c = c[keep][:n]
    phi = rng.uniform(0, 2 * np.pi, c.size)
    ps, es = np.sqrt(m * m / 4 - M_MU**2), m / 2
    e = np.hypot(p, m)
    g, bg = e / m, p / m
    s = np.sqrt(1 - c * c)
    ok = np.ones(c.size, bool)
    for sg in (1, -1):
        ppar, el = g * sg * ps * c + bg * es, g * es + bg * sg * ps * c
        px = ppar * np.sin(theta) + sg * ps * s * np.cos(phi) * np.cos(theta)
        py = sg * ps * s * np.sin(phi)
        pz = ppar * np.cos(theta) - sg * ps * s * np.cos(phi) * np.sin(theta)
        ok &= la.probability(el, np.arctan2(np.hypot(px, py), pz)) > 0
    return ok.mean(), c.size


# The points span the window's edges, threshold-near masses and the ω/φ region.
POINTS = [(0.3, 20, 0.06), (0.5, 10, 0.08), (0.78, 30, 0.05), (1.0, 60, 0.1), (0.25, 15, 0.03),
          (0.4, 40, 0.07), (0.6, 12, 0.11)]  # fmt: skip
# Interpolation tolerance: trilinear on the default (40, 96, 160) grid; the largest deviation
# from the exact quadrature measured at these points is 0.013 (docs/explanation/method.md); plus 3σ of
# the Monte Carlo (√(A(1−A)/n) ≤ 0.0011 for n = 2e5).
TOL = 0.02


@pytest.mark.parametrize(("m", "p", "theta"), POINTS)
def test_table_matches_brute_force_decays(table, m, p, theta):
    a_mc, _ = mc_acceptance(NA60, m, p, theta)
    assert float(table(m, p, theta)) == pytest.approx(a_mc, abs=TOL)


def test_energy_cut_alone_is_the_analytic_flat_spectrum():
    """Isotropic decay: each lepton's lab energy is uniform in γ(E* ∓ βp*), so with only an
    energy cut A = clip((E − 2E_min) / (2 γβ p*), 0, 1) (E the pair energy)."""
    la = LeptonAcceptance(3.0, 0.0, 3.2)  # the window contains every angle
    pa = PairAcceptance.build(la, lepton_mass=M_MU, mass_range=(0.25, 1.0), p_max=100.0,
                              grid=(16, 96, 8), quadrature=(64, 8))  # fmt: skip
    m = np.array([0.3, 0.5, 0.7, 0.9, 0.4, 0.6])
    p = np.array([7.0, 9.0, 6.5, 12.0, 30.0, 6.05])
    e = np.hypot(p, m)
    pstar = np.sqrt(m**2 / 4 - M_MU**2)
    exact = np.clip((e - 6.0) / (2 * p / m * pstar), 0, 1)
    # midpoint rule in cos θ* (64 nodes) on a piecewise-linear integrand: error ≤ 1/64 per
    # kink, plus the linear interpolation in log p (96 nodes up to 100 GeV)
    assert pa(m, p, np.zeros(6)) == pytest.approx(exact, abs=0.02)


def test_lambda_theta_matches_polarised_decays():
    """With 1 + cos²θ* (transverse γ*) the table must follow the polarised decays, which
    differ from the isotropic ones by more than the tolerance at these points."""
    pa1 = PairAcceptance.build(NA60, lepton_mass=M_MU, mass_range=(0.2113, 1.1), p_max=400.0,
                               lambda_theta=1.0)  # fmt: skip
    pa0 = PairAcceptance.build(NA60, lepton_mass=M_MU, mass_range=(0.2113, 1.1), p_max=400.0)
    for m, p, theta, differs in [(0.5, 10, 0.08, True), (0.78, 30, 0.05, True),
                                 (0.6, 12, 0.11, False)]:  # fmt: skip
        a1, _ = mc_acceptance(NA60, m, p, theta, lam=1.0, seed=3)
        assert float(pa1(m, p, theta)) == pytest.approx(a1, abs=TOL)
        if differs:  # the last point sits at A < 0.01, where λ cannot move A by 0.02
            assert abs(float(pa0(m, p, theta)) - a1) > TOL


def test_outside_the_kinematic_range_is_zero(table):
    assert table(0.2, 20.0, 0.06) == 0.0  # below 2 m_μ
    assert table(0.5, 20.0, 1.0) == 0.0  # beyond the tabulated angles (≫ θ_max)
    assert table(0.5, 2.0, 0.06) == 0.0  # below 2 E_min: neither lepton can pass


def test_mock_detector_and_per_pair_acceptance_agree():
    """The mock detector uses the same LeptonAcceptance: for the isotropic two-body decays
    (ρ, ω, φ → μμ: λ_θ = 0 exactly) Σ A(γ*) over generated sources equals the number whose
    two muons pass, within the Poisson error and the 2.5% interpolation tolerance."""
    from gammastar.cocktail_channels import Channel
    from gammastar.config import AnalysisConfig
    from gammastar.config.mock import MockConfig
    from gammastar.mock.generator import MockGenerator

    # a small combinatorial pilot: it sets only the combinatorial rate, which the cocktail
    # sources drawn here do not use
    cfg = AnalysisConfig(mock=MockConfig(efficiency_map=None, combinatorial={"pilot_events": 1000}))
    gen = MockGenerator(cfg, seed=5)
    det = gen.detector
    assert det.lepton == NA60
    rng = np.random.default_rng(6)
    counts = np.concatenate([rng.multinomial(600_000, gen.cocktail.probabilities), [0]])
    src = gen.sources(rng, counts)
    two_body = np.isin(src.channel, [Channel.RHO_MUMU, Channel.OMEGA_MUMU, Channel.PHI_MUMU])
    g = src.gstar[:, two_body]
    passed = det.passes(src.mu1[:, two_body]) & det.passes(src.mu2[:, two_body])
    pa = PairAcceptance.build(det.lepton, lepton_mass=M_MU, mass_range=(0.2113, 1.1),
                              p_max=400.0)  # fmt: skip
    a = pa.lookup(g[4], np.hypot(g[0], g[1]), g[2])
    n = passed.sum()
    assert n > 2000
    assert a.sum() == pytest.approx(n, rel=0.025 + 3 / np.sqrt(n))


def test_lepton_map_multiplies_the_cuts(tmp_path):
    """A (p, θ) map of 0.5 everywhere halves each lepton: A = A_cuts / 4."""
    import hist
    import uproot

    h = hist.Hist(hist.axis.Regular(10, 0, 400, name="p"), hist.axis.Regular(10, 0, 0.3,
                  name="theta"))  # fmt: skip
    h.view()[...] = 0.5
    with uproot.recreate(tmp_path / "lep.root") as f:
        f["acc"] = h
    from types import SimpleNamespace

    la = LeptonAcceptance.from_config(
        SimpleNamespace(
            min_energy=3.0, theta_min=0.035, theta_max=0.12, map=str(tmp_path / "lep.root:acc")
        )
    )
    kw = {"lepton_mass": M_MU, "mass_range": (0.3, 0.6), "p_max": 100.0, "grid": (4, 16, 32)}
    a_map = PairAcceptance.build(la, **kw)(0.4, 20.0, 0.07)
    a_cut = PairAcceptance.build(NA60, **kw)(0.4, 20.0, 0.07)
    assert a_map == pytest.approx(a_cut / 4, rel=1e-9)


@pytest.mark.parametrize(
    ("values", "words"),
    [(np.nan, "NaN"), (-0.1, "[0, 1]"), (0.0, "zero everywhere"), (1.5, "[0, 1]")],
)
def test_bad_lepton_map_is_one_error_naming_the_file(tmp_path, values, words):
    import hist
    import uproot

    from gammastar.corrections.pair_acceptance.lepton import load_lepton_map

    h = hist.Hist(hist.axis.Regular(4, 0, 400), hist.axis.Regular(4, 0, 0.3))
    h.view()[...] = 0.5
    h.view()[1, 2] = values
    if values == 0.0:
        h.view()[...] = 0.0
    with uproot.recreate(tmp_path / "bad.root") as f:
        f["acc"] = h
    with pytest.raises(InputError, match=r"bad\.root") as err:
        load_lepton_map(str(tmp_path / "bad.root:acc"))
    assert words in str(err.value)
    with pytest.raises(ConfigError, match=r"unfold\.lepton_acceptance\.map"):
        load_lepton_map(str(tmp_path / "missing.root:acc"))


def test_config_errors_name_the_key(tmp_path):
    from gammastar.config import config_from_dict

    base = {"unfold": {"lepton_acceptance": {"min_energy": 3, "theta_min": 0.035,
                                             "theta_max": 0.12}}}  # fmt: skip
    for bad, key in [
        ({"min_acceptance": 1.0}, "unfold.min_acceptance"),
        ({"min_acceptance": 0.0}, "unfold.min_acceptance"),
        ({"acceptance_map": "x.root"}, "exclusive"),
        ({"decay_lambda_theta": 2.0}, "unfold.decay_lambda_theta"),
        ({"lepton_acceptance": {"min_energy": 3, "theta_min": 0.2, "theta_max": 0.1}},
         "theta_max"),
        ({"lepton_acceptance": {"theta_min": 0.0, "theta_max": 0.1}}, "min_energy"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            config_from_dict({"unfold": {**base["unfold"], **bad}}, source="c.yaml")


def test_moments_at_equals_one_interpolation_per_table(table):
    """moments_at computes each point's trilinear cell once and contracts it with the four
    moment tables together, against interpolating each table on its own
    (``_interpolate(moments[k], ...)``). The same formula with the same roundings per table:
    equal to the float64 roundings of one trilinear interpolation (8 corners: ≲ 16 products
    and sums, tests/_tolerance.py) times the moments' magnitude (≤ 1). Points: the pairs'
    kinematic range and beyond it (below 2 m_μ, beyond the tabulated angles, below the p
    range), where both give 0."""
    from _tolerance import EPS64, reorder_tol

    from gammastar.corrections.pair_acceptance.interpolation import _interpolate
    from gammastar.corrections.pair_acceptance.tabulation import N_MOMENTS

    n = 20_000
    m, p, th = _pair_points(n, seed=7)
    got = table.moments_at(m, p, th)
    ref = np.stack([_interpolate(table.moments[k], m, p, th, table._grid, clip=False)
                    for k in range(N_MOMENTS)])  # fmt: skip
    assert got.shape == (N_MOMENTS, n)
    assert np.all(np.abs(got - ref) <= reorder_tol(16, 1.0, EPS64))
    dead = (m < 2 * M_MU) | (th > table.theta_grid[-1]) | (th < 0)
    assert dead.sum() > 100
    assert np.all(got[:, dead] == 0.0)
    assert np.count_nonzero(got[0] > 0.05) > 1000  # the comparison covers accepted points
    # the first moment is the isotropic A itself (the table at λ_θ = 0), unclipped
    np.testing.assert_allclose(np.clip(got[0], 0, 1), table(m, p, th), rtol=0,
                               atol=reorder_tol(16, 1.0, EPS64))  # fmt: skip

@pytest.mark.parametrize("lam", [0.0, 0.4])
def test_lookup_moments_equals_the_lookup_and_moments_at(table, lam):
    """lookup_moments (the chunks' A with the moments the polarisation measurement takes)
    against lookup and moments_at at the same pairs, for λ_θ = 0 (the table is the first
    moment: four tables contracted) and λ_θ = 0.4 (the table and the four moments). One cell
    per point contracted with every table: the same roundings as each table's own trilinear
    interpolation (8 corners: ≲ 16 products and sums, tests/_tolerance.py), values ≤ 1."""
    from _tolerance import EPS32, EPS64, reorder_tol

    n = 20_000
    m, p, th = _pair_points(n, seed=11)
    pt, pz = p * np.sin(th), p * np.cos(th)
    acc = table.with_lambda(lam)
    a, mom = acc.lookup_moments(m, pt, pz)
    assert mom.shape == (4, n)
    assert a.shape == (n,)
    tol = reorder_tol(16, 1.0, EPS64)
    assert np.all(np.abs(a - acc.lookup(m, pt, pz)) <= tol)
    assert np.all(np.abs(mom - acc.moments_at(m, np.hypot(pt, pz), np.arctan2(pt, pz))) <= tol)
    assert np.count_nonzero(a > 0.05) > 1000  # accepted points compared, not only zeros
    assert np.all((a >= 0) & (a <= 1))  # clipped as the lookup is
    # the moments in single precision (the chunks keep them so): the same numbers, each
    # rounded once to float32 (half an ulp: EPS32/2 relative), and the same A
    a32, mom32 = acc.lookup_moments(m, pt, pz, dtype=np.float32)
    assert mom32.dtype == np.float32
    # A itself is not rounded to float32: the same float64 interpolation, computed block by
    # block there (another batch shape), so within the interpolation's roundings of it
    assert np.all(np.abs(a32 - a) <= tol)
    assert np.all(np.abs(mom32 - mom) <= 0.5 * EPS32 * np.abs(mom))


def test_rows_of_blocks_equal_rows_of_the_joined_table():
    """measure's gather of a bin's pairs from the chunks' moment blocks (a list of (4, n_i)):
    the columns of the joined table (copies of the same numbers), blocks of any size, empty
    ones and a bin without pairs in some block included."""
    from gammastar.corrections.polarisation import _rows

    rng = np.random.default_rng(3)
    blocks = [rng.uniform(size=(4, n)) for n in (5, 0, 17, 1, 9)]
    joined = np.concatenate(blocks, axis=1)
    for k in (np.flatnonzero(rng.uniform(size=32) < 0.4), np.arange(5, 23), np.array([31]),
              np.arange(32), np.array([], dtype=np.intp)):  # fmt: skip
        # a gather copies the numbers: exactly equal, no arithmetic
        np.testing.assert_array_equal(_rows(blocks, k), joined[:, k])


def _pair_points(n, seed):
    """``n`` pairs' (m, p, θ) spread over the table and beyond it (masses below 2m_μ, θ < 0
    and above the table's last θ), for the moment tests."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.18, 1.2, n)
    p = np.exp(rng.uniform(np.log(0.5), np.log(450.0), n))
    return m, p, rng.uniform(-0.01, 0.5, n)



@pytest.mark.parametrize("kind", ["per_node", "one", "table_default"])
def test_acceptance_at_equals_the_lookup_of_with_lambda(table, kind):
    """acceptance_at (A of a λ_θ per mass node from the moments interpolated once,
    pair_moments) against the lookup of with_lambda's table at the same points. The lookup
    interpolates (⟨a⟩ + λ⟨c² a⟩)/(1 + λ⟨c²⟩) per node; acceptance_at the two moments, split by
    the cell's mass node, and combines them after: the same terms regrouped, so equal to the
    roundings of one trilinear interpolation (≲ 16 of a value ≤ 1) plus those of the
    regrouping (the lower node's share as the sum less the upper's, the combination's 4
    products and sums: ≲ 8 more), tests/_tolerance.py. pair_moments' moments are
    moments_at's bit for bit (one contraction, the same arithmetic in the same order, in the
    same (4, n) layout). Points: 3 blocks and a
    partial one, inside the table and beyond it (0 there, as the lookup); a λ_θ(m) that
    changes sign over the mass nodes (each cell's two λ differ), one λ_θ, and the table's
    own."""
    from _tolerance import EPS64, reorder_tol

    from gammastar.corrections.pair_acceptance import interpolation as pa

    n = 3 * pa._BLOCK + 77
    m, p, th = _pair_points(n, seed=23)
    pm = table.pair_moments(m, p, th)
    # elementwise operations in the same order: the same numbers to the float precision
    # (a compiled kernel and numpy may contract a multiply-add differently on another CPU)
    np.testing.assert_allclose(pm.values, table.moments_at(m, p, th), rtol=1e-13, atol=1e-15)
    assert pm.values.shape == (4, n)
    assert pm.values.flags.c_contiguous  # the package's (4, n) layout, not a transposed view
    assert pm.upper.shape == (2, n)
    assert pm.upper.flags.c_contiguous
    assert pm.node.shape == (n,)
    assert pm.node.min() >= 0
    assert pm.node.max() <= table.m_grid.size - 2
    if kind == "per_node":
        lam = table.lambda_nodes([0.2, 0.5, 0.8, 1.1], [0.9, -0.6, 0.4])
        ref_table, got = table.with_lambda(lam), table.acceptance_at(pm, lam)
    elif kind == "one":
        ref_table, got = table.with_lambda(-0.7), table.acceptance_at(pm, -0.7)
    else:
        ref_table = table.with_lambda(0.5)
        got = ref_table.acceptance_at(ref_table.pair_moments(m, p, th))
    ref = ref_table(m, p, th)
    assert np.all(np.abs(got - ref) <= reorder_tol(24, 1.0, EPS64))
    assert np.count_nonzero(ref > 0.05) > 1000  # accepted points are compared
    dead = (m < 2 * M_MU) | (th > table.theta_grid[-1]) | (th < 0)
    assert dead.sum() > 100
    assert np.all(got[dead] == 0.0)  # assigned, not computed: exactly 0
    assert np.all((got >= 0.0) & (got <= 1.0))


def test_pair_moments_in_single_precision(table):
    """pair_moments(dtype=float32) (the measured λ_θ's moments at every pair): the moments,
    and A of a λ_θ(m) from them (acceptance_at, computed in float64), within ≲ 20 float32
    roundings of a value ≤ 1 of the float64 numbers (the tables rounded to float32, the
    cell's offsets, 8 corners × 2 products and their sum; tests/_tolerance.py), plus the
    float64 regrouping's 24 roundings for A; 0 outside the kinematic range as in float64; the
    same mass nodes. Another dtype is an error."""
    from _tolerance import EPS32, EPS64, reorder_tol

    from gammastar.corrections.pair_acceptance import interpolation as pa

    n = 2 * pa._BLOCK + 5
    m, p, th = _pair_points(n, seed=29)
    p64 = table.pair_moments(m, p, th)
    p32 = table.pair_moments(m, p, th, dtype=np.float32)
    assert p32.values.dtype == np.float32
    assert p32.upper.dtype == np.float32
    tol = reorder_tol(20, 1.0, EPS32)
    assert np.all(np.abs(p32.values - p64.values) <= tol)
    assert np.all(np.abs(p32.upper - p64.upper) <= tol)
    np.testing.assert_array_equal(p32.node, p64.node)
    # outside the table the moments are assigned 0 (not computed): the same points in both
    np.testing.assert_array_equal(p32.values == 0.0, p64.values == 0.0)
    lam = table.lambda_nodes([0.2, 0.5, 0.8, 1.1], [0.9, -0.6, 0.4])
    got = table.acceptance_at(p32, lam)
    assert got.dtype == np.float64
    ref = table.with_lambda(lam)(m, p, th)
    assert np.all(np.abs(got - ref) <= tol + reorder_tol(24, 1.0, EPS64))
    assert np.count_nonzero(ref > 0.05) > 1000  # accepted points are compared
    assert np.max(np.abs(got - ref)) > 0  # single precision: not the float64 numbers
    with pytest.raises(ValueError, match="float16"):
        table.pair_moments(m, p, th, dtype=np.float16)
    # the single-precision copy of the tables is not pickled (the table travels to the workers)
    import pickle

    back = pickle.loads(pickle.dumps(table))
    assert "_moments32" in table.__dict__
    assert "_moments32" not in back.__dict__
    # rebuilt caches give the same numbers up to the float32 interpolation's roundings
    np.testing.assert_allclose(back.pair_moments(m, p, th, dtype=np.float32).values,
                               p32.values, rtol=0, atol=tol)  # fmt: skip


def test_blocked_interpolation_equals_an_independent_trilinear_one(table):
    """The lookup computes each block's cells and contracts them while they are in the cache
    (pair_acceptance.interpolation._trilinear; the clip and the NaN → 0 of the offsets in one fmax/fmin).
    Reference: scipy's RegularGridInterpolator (linear) on the same nodes, p* of the mass,
    log p, θ: an independent trilinear interpolation. Tolerance (tests/_tolerance.py): the
    8 corners' sum rounds in another order (≲ 16 roundings of a value ≤ 1), and the offsets
    in a cell are computed another way, ours in units of the node spacing, where a point
    sits up to n − 1 = 159 cells from the first node (≲ 4 roundings of a number ≤ 159,
    times the table's change across a cell, ≤ 1). The points: 3 blocks and a partial one
    (block edges), inside the table; and points outside the kinematic range (0 there, as
    documented), among them NaN and negative p."""
    from _tolerance import EPS64, reorder_tol
    from scipy.interpolate import RegularGridInterpolator

    from gammastar.corrections.pair_acceptance import interpolation as pa
    from gammastar.corrections.pair_acceptance.tabulation import N_MOMENTS

    rng = np.random.default_rng(11)
    n = 3 * pa._BLOCK + 123
    ps_lo, ps_hi = table._ps_range
    ps = rng.uniform(ps_lo, ps_hi, n)
    m = 2.0 * np.sqrt(ps**2 + M_MU**2)
    logp = rng.uniform(table.logp_grid[0], table.logp_grid[-1], n)
    th = rng.uniform(0.0, table.theta_grid[-1], n)
    nodes = (pa._pstar(table.m_grid, M_MU), table.logp_grid, table.theta_grid)
    nodes[0][[0, -1]] = ps_lo, ps_hi  # the end nodes exactly (the table's own range)
    got = table.moments_at(m, np.exp(logp), th)
    # the coordinates as the lookup computes them from (m, p) (their round trips differ by
    # an ulp, which the table's slopes would amplify)
    at = np.column_stack([pa._pstar(m, M_MU), np.log(np.exp(logp)), th])
    for k in range(N_MOMENTS):
        ref = RegularGridInterpolator(nodes, table.moments[k])(at)
        tol = reorder_tol(16, 1.0, EPS64) + reorder_tol(4, max(table.moments.shape) - 1, EPS64)
        assert np.all(np.abs(got[k] - ref) <= tol), k
    assert np.count_nonzero(got[0] > 0.05) > 1000  # accepted points are compared
    # the table of λ_θ = 0 is the first moment, clipped to [0, 1]
    np.testing.assert_allclose(table(m, np.exp(logp), th), np.clip(got[0], 0.0, 1.0), rtol=0,
                               atol=reorder_tol(16, 1.0, EPS64))  # the trilinear sum's roundings
    # outside the range: 0, also for p ≤ 0 or NaN (log p NaN or −∞: no NaN index)
    bad_p = np.array([0.0, -1.0, np.nan, 10.0, 10.0, 10.0])
    bad_th = np.array([0.05, 0.05, 0.05, np.nan, -0.01, table.theta_grid[-1] + 0.1])
    out = table.moments_at(np.full(6, 0.5), bad_p, bad_th)
    np.testing.assert_array_equal(out, 0.0)  # exact zeros by construction (masked)
