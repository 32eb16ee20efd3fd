"""The two-sided ``extrapolation`` nuisance: each model form's shift of N_sig on its own side
(:func:`signed_form_variances`, :func:`nsig_error_parts`' ``forms_up``/``forms_down``), the
normsys hi = 1 + r₊, lo = 1/(1 + r₋) in the pyhf workspace, the exact CLs integrating the
skewed signal scale on its own Gauss rule (:func:`shared_log_rule`) against a brute-force
integral, and the symmetric case reducing to the one-sided numbers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from _tolerance import EPS64
from scipy import integrate, stats

from gammastar.reach.stats import upper_limit
from gammastar.reach.stats.exact import _Exact, shared_log_rule
from gammastar.reach.stats.model import Channel, Model
from gammastar.yields.extrapolation.nsig.forms import combine_form_variances, signed_form_variances


def test_each_form_shift_goes_to_its_own_side():
    """Per cτ, signed shifts (of ln N) of three one-sided forms, +0.3, −0.2, +0.1, and of the
    fall-off pair (one parameter's ±1σ): where the pair's shifts have opposite signs
    (+0.5, −0.4) each side takes its own, where both raise N (+0.5, +0.2) the up side takes
    the larger and the down side nothing. The sums are analytic: up = 0.3² + 0.1² + 0.5²,
    down = 0.2² + 0.4² (then 0.2²); a NaN (a form not resolved) makes both sides NaN."""
    d = {"a": np.array([0.3, 0.3, 0.3]), "b": np.array([-0.2, -0.2, np.nan]),
         "c": np.array([0.1, 0.1, 0.1]),
         "falloff_harder": np.array([0.5, 0.5, 0.5]), "falloff_softer": np.array([-0.4, 0.2, -0.4])}  # fmt: skip
    var = {k: v**2 for k, v in d.items()}
    up, down = signed_form_variances(var, {k: np.sign(v) for k, v in d.items()}, 3)
    assert up[:2] == pytest.approx([0.3**2 + 0.1**2 + 0.5**2] * 2, rel=1e-15)
    assert down[:2] == pytest.approx([0.2**2 + 0.4**2, 0.2**2], rel=1e-15)
    assert np.isnan(up[2])
    assert np.isnan(down[2])
    # the symmetrised part counts the pair once, as the mean of its two sizes
    assert combine_form_variances(var, 3)[0] == pytest.approx(
        0.3**2 + 0.2**2 + 0.1**2 + 0.45**2, rel=1e-15
    )


def test_the_signed_parts_of_a_fit_follow_the_form_shifts(monkeypatch):
    """A fit of the toy of ``test_extrapolation`` with two constructed forms that keep the
    nominal's shape but move f_F: ×0.8 (N/Y_F = 1/f_F for a detector that sees everything,
    so N rises by ln 1.25) and ×1.1 (N falls by ln 1.1). The reweighting is exact here (the
    shapes agree), so ``forms_up`` = ln 1.25 and ``forms_down`` = ln 1.1 to rounding,
    ``forms`` their quadrature sum; the reach's two sides share the fit's part."""
    from test_extrapolation import MASS, TRUE, _all_seeing, _fit, _toy, _ToyRegion

    import gammastar.yields.extrapolation.reference as ex_mod
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.nsig import NsigErrorSettings, nsig_relative_sides
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    monkeypatch.setattr(
        ex_mod, "REFERENCE_SAMPLES", 100_000
    )  # the fit's own precision: not tested here
    region = _ToyRegion()
    ex = _fit(region, _toy(region, 5_000, seed=21), compare=False)
    f0, t0 = float(ex.fiducial_fraction[0]), float(ex.temperature[0])

    def form(scale: float) -> dict:
        return {"form": "nominal", "fiducial_fraction": [f0 * scale], "temperature": [t0]}

    exv = dataclasses.replace(ex, covariance_stat=ex.covariance,
                              model_variations={"lower_f": form(0.8), "higher_f": form(1.1)})  # fmt: skip
    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), exv, region).sample(MASS, 20_000, seed=4)
    ks = _all_seeing(kin, np.ones(len(kin["qT"])))
    parts = nsig_error_parts(exv, region, MASS, kin, ks, [1.0, 50.0], log=True)
    # ln of f0/(0.8 f0) and 1.1 f0/f0 through one reweighting by 1 and a few float ops
    assert parts["forms_up"] == pytest.approx(np.full(2, math.log(1.25)), rel=1e-12)
    assert parts["forms_down"] == pytest.approx(np.full(2, math.log(1.1)), rel=1e-12)
    assert parts["forms"] == pytest.approx(
        np.hypot(parts["forms_up"], parts["forms_down"]), rel=1e-12
    )
    st = NsigErrorSettings(propagation="log", yield_cross=False)
    got = nsig_relative_sides(exv, region, MASS, kin, ks, [1.0], settings=st)
    fit = parts["fit"][0] ** 2 + parts["external"][0] ** 2
    assert np.log1p(got["up"][0]) == pytest.approx(math.sqrt(fit + math.log(1.25) ** 2), rel=1e-12)
    assert np.log1p(got["down"][0]) == pytest.approx(math.sqrt(fit + math.log(1.1) ** 2), rel=1e-12)
    assert np.log1p(got["rel"][0]) == pytest.approx(
        math.sqrt(fit + parts["forms"][0] ** 2), rel=1e-12
    )


def _one_bin(b: float, r_up: float, r_down: float, n_pot: float = 0.2) -> Model:
    """One counting channel with background ``b``, N_POT's 20% and a two-sided ``extrapolation``."""
    return Model([Channel("mumu", [1.0], [b])], n_pot_unc=n_pot,
                 signal_nuisances={"extrapolation": r_up}, signal_down={"extrapolation": r_down})  # fmt: skip


def _brute_cls(mu: float, b: float, n_ref: int, w_sym: float, w_up: float, w_down: float) -> float:
    """CLs = P_μ(n ≤ n_ref) / P_0(n ≤ n_ref) of one bin (t = n ln(1 + μ/b) rises with n), the
    signal scale e^{w_sym z₀ + g(z)} with g(z) = w_up z (z > 0), w_down z (z < 0): z by
    adaptive quadrature (scipy ``quad``) on each half line, z₀ (a narrow normal, w_sym ≈ 0.18)
    by a 100-point Gauss–Hermite rule (the Poisson CDF is entire in z₀: exact to rounding)."""
    x0, p0 = np.polynomial.hermite_e.hermegauss(100)
    p0 = p0 / p0.sum()

    def p_sb(z: float) -> float:
        g = (w_up if z > 0 else w_down) * z
        lam = mu * np.exp(w_sym * x0 + g) + b
        return float(p0 @ stats.poisson.cdf(n_ref, lam)) * float(stats.norm.pdf(z))

    sb = sum(
        integrate.quad(p_sb, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        for lo, hi in ((-12, 0), (0, 12))
    )
    return sb / float(stats.poisson.cdf(n_ref, b))


@pytest.mark.parametrize(("r_up", "r_down"), [(1.5, 0.2), (0.1, 2.0)])
def test_exact_cls_integrates_the_two_sided_nuisance(r_up, r_down):
    """The exact CLs of one bin (b = 3, median expected band: n_ref the background's median, 3)
    with N_POT's 20% and a two-sided nuisance equals the brute-force integral of the two
    half-normals. Tolerance: the 20-point Gauss rule's error on this integrand, bounded by its
    distance from a 40-point rule (measured 1.3e-8 and 5e-12: the Poisson CDF is smooth in
    the log scale on widths ≲ 1; asserted < 1e-7), ×10, beside quad's 1e-12."""
    b, mu = 3.0, 4.0
    model = _one_bin(b, r_up, r_down)
    ex = _Exact(model)
    n_ref = int(stats.poisson.ppf(0.5, b))
    got = ex.cls(mu, "0")
    assert ex._t_ref(mu, "0") == pytest.approx(n_ref * math.log1p(mu / b), rel=1e-12)
    w = (math.log1p(0.2), math.log1p(r_up), math.log1p(r_down))
    want = _brute_cls(mu, b, n_ref, *w)
    fine = _Exact(model, nodes=(40, 5, 20)).cls(mu, "0")
    quad_err = abs(fine - got)
    assert quad_err < 1e-7
    assert got == pytest.approx(want, abs=10 * quad_err + 1e-10)
    # and the skew matters: the symmetric nuisance of either side's size gives another CLs
    for r in (r_up, r_down):
        assert abs(_Exact(_one_bin(b, r, r)).cls(mu, "0") - got) > 1e-3


def test_a_symmetric_two_sided_nuisance_is_the_one_sided_one():
    """r₋ = r₊: the model, its exact limits and its pyhf spec are those of the one-sided
    nuisance, within a few ulp (the same computation: the down side is read as the up
    side's); a
    down side differing by 1e-12 relative goes through the skewed rule (Lanczos) and gives
    the same limits to 1e-9 relative (the rule is Gauss–Hermite's to rounding: its nodes
    and weights to ~1e-13, the limit's root-finding to 1e-7 on a warm start at the same
    point)."""
    from gammastar.reach.stats.workspace import build_spec

    sym = Model(
        [Channel("mumu", [1.0], [0.5])], n_pot_unc=0.2, signal_nuisances={"extrapolation": 0.7}
    )
    two = _one_bin(0.5, 0.7, 0.7)
    assert two.signal_log_sides == []
    assert two.signal_log_width == pytest.approx(sym.signal_log_width, rel=4 * EPS64)
    lo = [m["data"]["lo"] for s in (two, sym) for m in build_spec(s)["channels"][0]["samples"][0]["modifiers"]
          if m["name"] == "extrapolation"]  # fmt: skip
    assert lo[0] == pytest.approx(lo[1], rel=4 * EPS64)
    a = upper_limit(sym, cl=0.9, method="exact")
    b = upper_limit(two, cl=0.9, method="exact")
    assert b.expected == pytest.approx(a.expected, rel=4 * EPS64)
    near = _one_bin(0.5, 0.7, 0.7 * (1 + 1e-12))
    assert len(near.signal_log_sides) == 1
    c = upper_limit(near, cl=0.9, method="exact")
    assert c.expected == pytest.approx(a.expected, rel=1e-6)
    x, p = shared_log_rule(near.signal_log_width, near.signal_log_sides, 20)
    h, q = np.polynomial.hermite_e.hermegauss(20)
    s = math.sqrt(math.log1p(0.2) ** 2 + math.log1p(0.7) ** 2)
    assert x == pytest.approx(s * h, abs=1e-9)
    assert p == pytest.approx(q / q.sum(), abs=1e-12)


def test_the_workspace_normsys_is_two_sided():
    """pyhf's model of the workspace scales the signal by hi = 1 + r₊ at α = +1 and by
    lo = 1/(1 + r₋) at α = −1 (its default normsys interpolation, ``code4``, is exactly
    hi^α, lo^{−α} for |α| ≥ 1), and by hi² at α = 2: the exact method's two half-normals."""
    from gammastar.reach.stats.workspace import _pyhf_model_data, build_spec

    model = _one_bin(2.0, 3.0, 0.25, n_pot=0.0)
    spec = build_spec(model)
    mod = next(
        m for m in spec["channels"][0]["samples"][0]["modifiers"] if m["name"] == "extrapolation"
    )
    assert mod["data"] == {"hi": 4.0, "lo": 0.8}
    pmodel, _ = _pyhf_model_data(spec)
    j = pmodel.config.par_slice("extrapolation").start
    pars = np.asarray(pmodel.config.suggested_init(), dtype=float)
    for alpha, scale in ((1.0, 4.0), (-1.0, 0.8), (2.0, 16.0), (-2.0, 0.64)):
        p = pars.copy()
        p[j] = alpha
        # signal 1 (n_signal = 1) plus the background 2: the expected count
        assert float(pmodel.expected_actualdata(p)[0]) == pytest.approx(scale + 2.0, rel=1e-12)


def test_impact_fixes_each_side():
    """The impact of a two-sided nuisance: s_up with it fixed at +1σ is the limit without it
    over 1 + r₊, at −1σ times 1 + r₋ (the signal scaled by hi, lo)."""
    from gammastar.reach.impact import impact

    model = _one_bin(0.5, 2.0, 0.3)
    without = Model([Channel("mumu", [1.0], [0.5])], n_pot_unc=0.2)
    base = upper_limit(without, cl=0.9, method="exact").expected["0"]
    got = impact(model, lambda s: (s, s), cl=0.9, method="exact", seed=1, s_up=base)[
        "extrapolation"
    ]
    # the same limit computed again from a warm start at itself: brentq's 1e-7 relative
    assert got["+1"]["s_up"] == pytest.approx(base / 3.0, rel=1e-6)
    assert got["-1"]["s_up"] == pytest.approx(base * 1.3, rel=1e-6)


def test_the_scan_takes_each_side_at_each_edge():
    """The per-edge toy of ``test_reach`` with sides given: up 0.1 at long lifetimes and 5 at
    short ones, down 0.1 everywhere. The ε_high limit is the one a constant two-sided (5, 0.1)
    gives, the same computation (equal to rounding); ε_low the symmetric 0.1's. Up = down =
    the symmetric array reduces to the one-sided scan: the same boundaries and rows within a
    few ulp (the same computation). The rows record each side at each edge, the symmetrised
    ``rel`` as before."""
    from test_reach import _edge_toy

    from gammastar.reach.scan.mass_limit import _mass_limit, _MassInputs

    eps, sig, st = _edge_toy()
    masses = np.array([0.3])

    def run(rel, sides=None):
        point = _MassInputs(0, {"extrapolation": 0.1}, 0.0, None, ex_rel=rel, ex_sides=sides)
        return _mass_limit(sig, point, masses, eps, st)

    up = np.where(eps < 1e-5, 0.1, 5.0)
    down = np.full(eps.size, 0.1)
    sym = np.where(eps < 1e-5, 0.1, 2.0)  # the symmetrised size: records only
    got = run(sym, np.stack([up, down]))
    high = run(np.full(eps.size, 5.0), np.stack([np.full(eps.size, 5.0), down]))
    low = run(down)
    assert got.boundaries["0"][1] == pytest.approx(high.boundaries["0"][1], rel=1e-12)
    assert got.boundaries["0"][0] == pytest.approx(low.boundaries["0"][0], rel=1e-12)
    assert got.high is not None
    assert got.high[0].signal_down == {"extrapolation": pytest.approx(0.1)}
    row = got.extrapolation
    assert row["eps_high"] == pytest.approx(2.0, rel=1e-12)  # the symmetrised record
    assert row["up"]["eps_high"] == pytest.approx(5.0, rel=1e-12)
    assert row["down"]["eps_high"] == pytest.approx(0.1, rel=1e-12)
    # a symmetric (5, 5) at ε_high claims less than (5, 0.1): the down side matters there
    assert run(up).boundaries["0"][1] < high.boundaries["0"][1]
    # sides equal to the symmetric array: today's one-sided scan
    one = run(up)
    both = run(up, np.stack([up, up]))
    ulp = 4 * EPS64
    for k, v in one.boundaries.items():
        assert both.boundaries[k] == pytest.approx(v, rel=ulp, nan_ok=True)
    assert both.limit.expected == pytest.approx(one.limit.expected, rel=ulp)
    for k, v in one.extrapolation.items():
        if isinstance(v, float):
            assert both.extrapolation[k] == pytest.approx(v, rel=ulp)
        else:
            assert both.extrapolation[k] == v  # flags and names


def test_reach_json_records_both_sides():
    """``reach.json``'s record of the two-sided ``extrapolation``: per mass each side's size
    at each edge (``up``, ``down``), the symmetrised ``rel`` and ``at_eps_*`` as before, the
    modifier's hi and lo named; rows without sides (``acceptance_lambda_theta``) keep none."""
    from types import SimpleNamespace

    from test_reach import _edge_toy

    from gammastar.reach.scan.mass_limit import _mass_limit, _MassInputs
    from gammastar.reach.stage import _record_nsig_level

    eps, sig, st = _edge_toy()
    up = np.where(eps < 1e-5, 0.1, 5.0)
    sides = np.stack([up, np.full(eps.size, 0.1)])
    point = _MassInputs(0, {"extrapolation": 0.1}, 0.0, None, ex_rel=up, ex_sides=sides)
    row = _mass_limit(sig, point, np.array([0.3]), eps, st).extrapolation
    rec = {"rel": [0.3], "kind": "normsys", "origin": "yield", "modifier": "hi = 1 + rel"}
    inp = SimpleNamespace(
        masses=np.array([0.3]), nuisance_record={"nuisances": {"extrapolation": rec}}
    )
    _record_nsig_level(inp, [row], "extrapolation", "test")
    assert rec["up"]["at_eps_high"] == pytest.approx([5.0], rel=1e-12)
    assert rec["down"]["at_eps_high"] == pytest.approx([0.1], rel=1e-12)
    assert rec["up"]["at_eps_low"] == pytest.approx([0.1], rel=1e-12)
    assert rec["at_eps_high"] == pytest.approx([5.0], rel=1e-12)  # the symmetrised array's
    assert "1/(1 + down)" in rec["modifier"]
    lam = {"rel": [0.3], "kind": "normsys", "origin": "yield"}
    inp.nuisance_record["nuisances"]["acceptance_lambda_theta"] = lam
    bare = {k: v for k, v in row.items() if k not in ("up", "down")}
    _record_nsig_level(inp, [bare], "acceptance_lambda_theta", "test")
    assert "up" not in lam
