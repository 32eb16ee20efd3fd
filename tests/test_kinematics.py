"""The shared four-vector kinematics (gammastar.physics.kinematics) against vector, the users
of the old hand-written copies (the acceptance's daughters) against those copies, and the one
decay-angle sampler (gammastar.physics.sampling.sample_cos_theta) against its CDF.

Tolerances: two float64 evaluations of the same Lorentz transformation in another order differ
by ≲ n · eps · scale (tests/_tolerance.py), n ≈ 30 roundings for a boost (the 4 × 4 transform:
~8 per component, its coefficients ~10, the rotation ~6) and scale the largest energy involved
(the parent's lab energy: every component is a sum of terms up to that size).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _tolerance import EPS64, reorder_tol

from gammastar.core.imports import import_vector
from gammastar.physics import kinematics as K
from gammastar.source.aprime import AprimeKinematics, decay_daughters

vector = import_vector()  # the reference (without SymPy, as gammastar imports it)

N_OPS = 30  # roundings through one boost and one rotation (module docstring)
# the constant of the error estimates where a result is divided by a small momentum (angles,
# directions): n · eps · scale is a typical, not a worst, chain; 10 × leaves room for it and is
# still ~10⁴ below what a wrong frame or convention gives (O(1) in cos θ, φ)
SLACK = 10


def _parents(n=20000, seed=0):
    """Lab four-momenta (4, n) of parents with m ∈ [0.05, 1] GeV, p_T ∈ [0, 2] GeV, y ∈ [0, 6]."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.05, 1.0, n)
    pt = rng.uniform(0.0, 2.0, n)
    y = rng.uniform(0.0, 6.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    return K.four_momentum(m, pt, y, phi), m, pt, y, phi


def _vec(p, mass=None):
    """vector's array of (4, n) four-momenta; with ``mass`` the mass is a coordinate (else
    vector takes √(E² − p²), which loses digits as E²/m²)."""
    if mass is not None:
        return vector.array({"px": p[0], "py": p[1], "pz": p[2], "mass": mass})
    return vector.array({"px": p[0], "py": p[1], "pz": p[2], "E": p[3]})


def _np(v):
    return np.stack([v.px, v.py, v.pz, v.E])


def test_four_momentum_and_rapidity_agree_with_vector():
    p, m, pt, y, phi = _parents()
    v = _vec(p)
    scale = p[3]  # the components are sums of terms up to E
    tol = reorder_tol(N_OPS, 1.0, EPS64)
    np.testing.assert_allclose(v.pt, pt, rtol=0, atol=tol * scale.max())
    np.testing.assert_allclose(v.phi, phi, rtol=0, atol=tol * (scale / np.maximum(pt, 1e-3)).max())
    np.testing.assert_allclose(K.rapidity(p), y, rtol=0, atol=tol * (scale / m).max())
    np.testing.assert_allclose(K.rapidity(p), v.rapidity, rtol=0, atol=tol * (scale / m).max())
    # m² = E² − p² loses digits as E²/m² (catastrophic cancellation)
    np.testing.assert_allclose(K.invariant_mass(p), m, rtol=tol * (scale / m).max() ** 2)


def test_boost_equals_vector_boost_p4():
    par, m, *_ = _parents(seed=1)
    rng = np.random.default_rng(2)
    a, _b = K.back_to_back(
        K.two_body_momentum(m, 0.1057e-1, 0.1057e-1),
        0.1057e-1,
        rng.uniform(-1, 1, m.size),
        rng.uniform(0, 2 * np.pi, m.size),
    )
    got = K.boost(a, par, m)
    ref = _np(_vec(a).boost_p4(_vec(par, m)))
    tol = reorder_tol(N_OPS, 1.0, EPS64) * par[3]
    assert np.all(np.abs(got - ref) <= tol), np.max(np.abs(got - ref) / tol)
    # and the boost's own invariants: mass kept, momentum sum equal to the parent
    np.testing.assert_allclose(got + K.boost(_b, par, m), par, rtol=0, atol=tol.max())


def test_rotation_equals_vector_rotations():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(4, 5000))
    cos_t = rng.uniform(-1, 1, 5000)
    phi = rng.uniform(-np.pi, np.pi, 5000)
    got = K.rotate_from_z(p, cos_t, phi)
    sin_t = np.sqrt(1 - cos_t**2)
    ref = _np(_vec(p).rotateY(np.arctan2(sin_t, cos_t)).rotateZ(phi))
    tol = reorder_tol(N_OPS, 1.0, EPS64) * np.abs(p).sum(axis=0)
    assert np.all(np.abs(got - ref) <= tol), np.max(np.abs(got - ref) / tol)


def test_helicity_frame_angles_recovered_with_vector():
    """Undo decay_in_helicity_frame with vector (boost back to the parent's rest frame, turn
    the parent direction back onto z): the first daughter has the given (cos θ, φ)."""
    par, m, *_ = _parents(seed=4)
    rng = np.random.default_rng(5)
    cos_t = rng.uniform(-1, 1, m.size)
    phi = rng.uniform(-np.pi, np.pi, m.size)
    a, b = K.decay_in_helicity_frame(par, 0.1057, cos_t, phi, mass=m)
    v = _vec(par)
    inverse = vector.array({"px": -par[0], "py": -par[1], "pz": -par[2], "mass": m})
    rest = _vec(a).boost_p4(inverse)
    back = rest.rotateZ(-v.phi).rotateY(-v.theta)
    ok = K.two_body_momentum(m, 0.1057, 0.1057) > 0.05  # a direction to speak of
    # the angle's error: the lab components' absolute error (∝ parent energy), amplified by
    # up to 2γ by the boost back to the rest frame, over p*
    gamma = par[3] / m
    # (and the round trip has twice the roundings of one way)
    tol = reorder_tol(2 * N_OPS, 1.0, EPS64) * par[3] * 2 * gamma / np.maximum(back.mag, 1e-300)
    np.testing.assert_array_less(np.abs(back.costheta - cos_t)[ok], SLACK * tol[ok])
    dphi = np.angle(np.exp(1j * (back.phi - phi)))
    sin_t = np.sqrt(1 - cos_t**2)
    sel = ok & (sin_t > 0.05)
    np.testing.assert_array_less(np.abs(dphi)[sel], SLACK * (tol / sin_t)[sel])
    # momentum conservation where the decay is open (m > 2 m_μ)
    open_ = m > 2 * 0.1057
    np.testing.assert_allclose(
        (a + b)[:, open_], par[:, open_], rtol=0, atol=reorder_tol(N_OPS, 1.0, EPS64) * par[3].max()
    )


# --------------------------------------------------------------------------- old copies
def _old_daughter_directions(m, p, qt, pz, m_l, rng):
    """The hand-written acceptance._daughter_directions, kept as a frozen reference."""
    n = p.size
    pstar = 0.5 * math.sqrt(max(m**2 - 4 * m_l**2, 0.0))
    estar = 0.5 * m
    cth = rng.uniform(-1, 1, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sth = np.sqrt(1 - cth**2)
    pl = pstar * cth
    px_, py_ = pstar * sth * np.cos(phi), pstar * sth * np.sin(phi)
    e_a = np.sqrt(p**2 + m**2)
    gamma, gb = e_a / m, p / m
    out = []
    sa, ca = qt / p, pz / p
    for sign in (1.0, -1.0):
        pl_lab = gamma * sign * pl + gb * estar
        e_lab = gamma * estar + gb * sign * pl
        tx, ty = sign * px_, sign * py_
        vx = pl_lab * sa + tx * ca
        vz = pl_lab * ca - tx * sa
        vy = ty
        norm = np.sqrt(vx**2 + vy**2 + vz**2)
        out.append((e_lab, vx / norm, vy / norm, vz / norm))
    return out


def _daughter_directions(m, p, qt, pz, m_l, rng):
    """The acceptance's daughters (events.decay_daughters, the A′ in the x–z plane) with
    the old copy's draws: cos θ then φ, uniform."""
    n = p.size
    cth = rng.uniform(-1, 1, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    k = AprimeKinematics(m, qt, np.zeros(n), pz, np.sqrt(p**2 + m**2), np.ones(n, bool))
    out = []
    for d in decay_daughters(k, m_l, m_l, cth, phi):
        norm = np.sqrt((d[:3] ** 2).sum(axis=0))
        out.append((d[3], d[0] / norm, d[1] / norm, d[2] / norm))
    return out


@pytest.mark.parametrize(("mass", "m_l"), [(0.05, 0.000511), (0.3, 0.1057), (0.9, 0.1057)])
def test_acceptance_daughters_equal_the_old_copy(mass, m_l):
    rng = np.random.default_rng(6)
    n = 20000
    qt = rng.exponential(0.4, n)
    e = rng.uniform(5.0, 300.0, n)
    p = np.sqrt(e**2 - mass**2)
    qt = np.minimum(qt, 0.9 * p)
    pz = np.sqrt(p**2 - qt**2)
    new = _daughter_directions(mass, p, qt, pz, m_l, np.random.default_rng(7))
    old = _old_daughter_directions(mass, p, qt, pz, m_l, np.random.default_rng(7))
    for (en, *un), (eo, *uo) in zip(new, old, strict=True):
        tol_e = reorder_tol(N_OPS, 1.0, EPS64) * e  # absolute, the parent energy's scale
        np.testing.assert_array_less(np.abs(en - eo), tol_e)
        # a direction's error: the momentum's absolute error over the daughter's momentum
        p_lab = np.sqrt(np.clip(en**2 - m_l**2, 1e-300, None))
        for a, b in zip(un, uo, strict=True):
            np.testing.assert_array_less(np.abs(a - b), SLACK * tol_e / p_lab)


@pytest.mark.parametrize(
    ("a", "b"),
    [(1.0, 1.0), (1.0, 0.3), (1.0, 1e-9), (1.0, 0.0), (1.0, -1e-9), (1.0, -0.7), (1.0, -1.0),
     (0.0, 1.0), (1e-20, 1.0), (1.7, 0.3)],
)  # fmt: skip
def test_cos_theta_sampler_inverts_the_cdf(a, b):
    """sample_cos_theta is the exact inverse of the CDF of a + b cos²θ: each value c solves
    a c + b c³/3 = (2u − 1)(a + b/3) for its own uniform u (the next ``rng.random``) to a few
    float64 roundings of terms ≤ a + |b| (10 eps · (a + |b|)), across the hyperbolic (b > 0),
    trigonometric (b < 0), flat (b = 0) and pure cos²θ (a = 0) cases, |b| ≪ a included; and it
    draws exactly one uniform per value (the mock's λ_θ scans rely on it)."""
    from gammastar.physics.sampling import sample_cos_theta

    n = 200_000
    rng = np.random.default_rng(17)
    c = sample_cos_theta(rng, a, b, n)
    ref = np.random.default_rng(17)
    u = ref.random(n)
    assert rng.random() == ref.random()  # one uniform per value, nothing else
    assert np.all((c >= -1.0) & (c <= 1.0))
    resid = a * c + b * c**3 / 3 - (2 * u - 1) * (a + b / 3)
    assert np.max(np.abs(resid)) <= 10 * EPS64 * (a + abs(b))
    # the moment: <c²> = (a/3 + b/5)/(a + b/3), within 5 standard errors of the mean
    want = (a / 3 + b / 5) / (a + b / 3)
    assert abs(np.mean(c**2) - want) < 5 * np.std(c**2) / np.sqrt(n)


def test_cos_theta_sampler_takes_arrays_and_keeps_the_dalitz_case():
    """Per-value coefficients broadcast; sample_dalitz_cos is the case (1 + r, 1 − r) of the
    same sampler on the same uniforms."""
    from gammastar.physics.sampling import sample_cos_theta, sample_dalitz_cos

    r = np.linspace(0.0, 0.9, 1000)
    c1 = sample_dalitz_cos(np.random.default_rng(3), r)
    c2 = sample_cos_theta(np.random.default_rng(3), 1.0 + r, 1.0 - r)
    np.testing.assert_allclose(c1, c2, rtol=0, atol=4 * EPS64)  # the same operations
    a = np.where(np.arange(1000) % 2, 1.0, 0.5)
    b = np.where(np.arange(1000) % 2, -1.0, 0.5)
    c = sample_cos_theta(np.random.default_rng(4), a, b, 1000)
    u = np.random.default_rng(4).random(1000)
    resid = a * c + b * c**3 / 3 - (2 * u - 1) * (a + b / 3)
    assert np.max(np.abs(resid)) <= 10 * EPS64 * 2.0


@pytest.mark.parametrize("power", [0.0, 0.7])
def test_parametric_sampler_from_its_draws(power):
    """:class:`ParametricSampler` draws p_T by :func:`sample_mt_power` and then the rapidities
    from one generator; :meth:`~ParametricSampler.sample_at` makes the same sample at any mass
    from :meth:`~ParametricSampler.draws` (common random numbers, drawn once): the same
    arithmetic on the same numbers, so equal bit for bit on arrays of the same length, and at
    an ``index`` the same values to the last ulp (an elementwise function on a shorter array:
    4 eps allowed)."""
    from gammastar.physics.sampling import ParametricSampler, sample_mt_power

    n, t, mu, sig = 20_000, 0.25, 3.4, 1.5
    s = ParametricSampler(t, mu, sig, power=power)
    d = s.draws(n, seed=5)
    idx = np.array([0, 17, 999, n - 1])
    for m in (0.2, 0.77):
        rng = np.random.default_rng(5)
        pt = sample_mt_power(rng, np.full(n, m), t, power)
        e = np.sqrt(pt**2 + m**2) * np.cosh(rng.normal(mu, sig, n))
        for got in (s.sample(m, n, seed=5), s.sample_at(d, m)):
            # the same draws through the same formulas: equal to the float precision
            # (vectorised transcendental functions may differ in the last bit across CPUs)
            np.testing.assert_allclose(got["qT"], pt, rtol=1e-14, atol=0)
            np.testing.assert_allclose(got["E"], e, rtol=1e-14, atol=0)
        sub = s.sample_at(d, m, idx)
        np.testing.assert_allclose(sub["qT"], pt[idx], rtol=4 * EPS64, atol=0)
        np.testing.assert_allclose(sub["E"], e[idx], rtol=4 * EPS64, atol=0)
