"""The compiled sampler (gammastar.flow._sampling_kernels) vs zuko's inverse transform (the reference)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _flows import randomised_flow
from _tolerance import FLOW_OPS, reorder_tol

from gammastar.config.flow import FlowConfig
from gammastar.errors import GammastarError
from gammastar.flow import _sampling_kernels as S
from gammastar.flow.architecture import BOUND, SLOPE, architecture_from_config, build_flow
from gammastar.flow.data import Preprocessing
from gammastar.flow.model import FlowModel, ZukoSampler

torch.set_num_threads(1)

# Two implementations of the same flow (compiled kernel, zuko; or one of them on another
# batch shape, thread count or CPU kernel set: ATEN_CPU_CAPABILITY=default in .ci/run) agree to
# float32 rounding: FLOW_OPS roundings on outputs |x| ≤ 10 (tests/_tolerance.py): 3.6e-4. (The
# generic kernels gave 1.07e-4 on 1 point of 6000 against the (since removed) torch sampler, beyond the ad-hoc
# 1e-4 used before.) The round trip latent → data → latent goes through the flow twice and
# through the spline's inverse: 3 × that, 1.1e-3.
FLOW_TOL = reorder_tol(FLOW_OPS, 10.0)


def latent(n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g) * 2.0
    # outside the spline box [−5, 5] (identity there), on its edge, in the middle
    z[:8] = torch.tensor(
        [
            [6.0, 0.0],
            [-7.0, 1.0],
            [0.0, 5.5],
            [4.99, -4.99],
            [0.0, 0.0],
            [5.0, -5.0],
            [-9, 9],
            [1, 2],
        ]
    )
    return z


@pytest.mark.parametrize(
    "arch",
    [
        {},  # 3 steps: both feature orders, LU between steps
        {"linear": False, "hidden_features": [8]},
        {"transforms": 2, "hidden_features": [12, 8, 10]},
        # the number of bins is a constant of the compiled kernel (one compilation per value):
        # the default suite keeps to the configuration's 6, the slow suite checks another
        pytest.param({"bins": 4}, marks=pytest.mark.slow),
    ],
)
def test_compiled_sampler_equals_zuko(arch):
    fl, bins = randomised_flow(scale=0.3, seed=1, **arch)
    cs = S.CompiledSampler(fl, bins, SLOPE, BOUND)
    z = latent()
    n = len(z)
    c = torch.randn(n, 1, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for cc, carg in ((torch.full((1, 1), 0.4), 0.4), (c, c[:, 0].numpy())):
            out = cs(z.numpy(), carg)
            assert out.dtype == np.float32
            assert out.shape == (n, 2)
            zk = fl(cc.expand(n, 1)).transform.inv(z).numpy()
            np.testing.assert_allclose(out, zk, atol=FLOW_TOL, rtol=0)
            # and the forward (data → latent) transform brings the samples back
            back = fl(cc.expand(n, 1)).transform(torch.from_numpy(out)).numpy()
            np.testing.assert_allclose(back, z.numpy(), atol=3 * FLOW_TOL, rtol=0)


def test_compiled_sampler_is_independent_of_threads_and_position():
    """Every point goes through the same code: the same output whatever the thread count, the
    number of points and the point's position (block, padding of the last block). Compared to
    float32 rounding, not bit for bit (a result that went through other threads and batch
    shapes; tests/_tolerance.py): the outputs are |x| ≤ 10 (the latent points, tails up to 9,
    pass the identity outside the spline box), so FLOW_OPS roundings allow 300 · eps32 · 10 =
    3.6e-4, while a point mixed up with another or a block computed twice is off by O(1)."""
    fl, bins = randomised_flow(scale=0.3, seed=2)
    cs = S.CompiledSampler(fl, bins, SLOPE, BOUND)
    z = latent(5000, seed=4).numpy()
    c = np.random.default_rng(5).normal(size=len(z)).astype(np.float32)
    perm = np.random.default_rng(6).permutation(len(z))
    tol = {"atol": FLOW_TOL, "rtol": 0}
    for carg, cperm in ((0.3, 0.3), (c, c[perm])):
        one = cs(z, carg, threads=1)
        np.testing.assert_allclose(cs(z, carg, threads=2), one, **tol)
        np.testing.assert_allclose(cs(z, carg, threads=3), one, **tol)
        np.testing.assert_allclose(cs(z[perm], cperm, threads=2), one[perm], **tol)
        part = carg if np.ndim(carg) == 0 else carg[:77]
        np.testing.assert_allclose(cs(z[:77], part), one[:77], **tol)
        # the points are not all alike (the comparison above can tell them apart)
        assert np.std(one) > 100 * tol["atol"]
    assert cs(z[:0], 0.3).shape == (0, 2)


def test_fixed_mass_equals_per_event_mass():
    fl, bins = randomised_flow(scale=0.3, seed=3)
    cs = S.CompiledSampler(fl, bins, SLOPE, BOUND)
    z = latent(2000, seed=7).numpy()
    c = np.float32(-0.7)
    np.testing.assert_allclose(
        cs(z, float(c)), cs(z, np.full(len(z), c, dtype=np.float32)), atol=FLOW_TOL, rtol=0
    )


def test_vectorisable_exp_is_accurate():
    x = np.linspace(-80, 80, 20001, dtype=np.float32)
    got = np.array([S._exp32(v) for v in x[::20]], dtype=np.float64)
    want = np.exp(x[::20].astype(np.float64))
    assert np.max(np.abs(got / want - 1)) < 2.5e-7  # ≤ 2 ulp of float32
    # the spline's arguments: |u| < |ln slope|
    x = np.linspace(-7, 7, 4001, dtype=np.float32)
    got = np.array([S._exp32(v) for v in x], dtype=np.float64)
    assert np.max(np.abs(got / np.exp(x.astype(np.float64)) - 1)) < 1.2e-7


def test_model_sample_uses_compiled_sampler_and_is_reproducible(tmp_path):
    fl, _bins = randomised_flow(scale=0.3, seed=4)
    cfg = FlowConfig(transforms=3, bins=6, hidden_features=[16, 16])
    pre = Preprocessing((0.0, 3.0), (1.0, 0.5), 0.5, 0.2)
    model = FlowModel(fl, pre, architecture_from_config(cfg), (0.2, 1.1))
    assert isinstance(model.sampler, S.CompiledSampler)
    a = model.sample_standardised(0.5, 3000, seed=9)
    torch.set_num_threads(2)
    try:
        b = model.sample_standardised(0.5, 3000, seed=9)
    finally:
        torch.set_num_threads(1)
    # other thread count: equal to float32 rounding of the flow (tests/_tolerance.py; the
    # standardised samples are |x| ≲ 10)
    np.testing.assert_allclose(a, b, atol=FLOW_TOL, rtol=0)
    # the same latent stream through zuko's inverse
    z = torch.randn((3000, 2), generator=torch.Generator().manual_seed(9))
    c = torch.tensor(pre.context(np.array([0.5])), dtype=torch.float32)
    with torch.no_grad():
        ref = ZukoSampler(fl)(z, c).numpy()
    np.testing.assert_allclose(a, ref, atol=FLOW_TOL, rtol=0)
    m = np.linspace(0.25, 1.0, 3000)
    ev = model.sample_standardised(m, 3000, seed=9)
    with torch.no_grad():
        ref = ZukoSampler(fl)(z, torch.tensor(pre.context(m), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(ev, ref, atol=FLOW_TOL, rtol=0)


def test_torch_fallback_path_gives_the_same_samples():
    """A flow the compiled sampler does not handle falls back to zuko's inverse."""
    fl, _bins = randomised_flow(scale=0.3, seed=5)
    cfg = FlowConfig(transforms=3, bins=6, hidden_features=[16, 16])
    pre = Preprocessing((0.0, 3.0), (1.0, 0.5), 0.5, 0.2)
    fast = FlowModel(fl, pre, architecture_from_config(cfg), (0.2, 1.1))
    slow = FlowModel(fl, pre, architecture_from_config(cfg), (0.2, 1.1))
    slow._sampler = ZukoSampler(fl)
    m = np.linspace(0.25, 1.0, 2000)
    for mass in (0.5, m):
        a = fast.sample_standardised(mass, 2000, seed=3)
        b = slow.sample_standardised(mass, 2000, seed=3)
        np.testing.assert_allclose(a, b, atol=FLOW_TOL, rtol=0)
    with pytest.raises(S.UnsupportedFlow):
        S.CompiledSampler(
            build_flow({**architecture_from_config(cfg), "context": 2}), 6, SLOPE, BOUND
        )


def test_jit_compiles_without_a_cache_location():
    """Where numba finds no cache location (here: code without a source file) the kernels are
    compiled without caching instead of failing at import."""
    ns: dict = {}
    exec("def f(x):\n    return x + 1\n", ns)  # noqa: S102 (a function without a file)
    assert S._jit()(ns["f"])(1.0) == 2.0


def _model(feature_mean=(0.0, 3.0), feature_std=(1.0, 0.5)):
    fl, _bins = randomised_flow(scale=0.3, seed=4)
    cfg = FlowConfig(transforms=3, bins=6, hidden_features=[16, 16])
    pre = Preprocessing(feature_mean, feature_std, 0.5, 0.2)
    return FlowModel(fl, pre, architecture_from_config(cfg), (0.2, 1.1))


def test_log_prob_is_minus_inf_outside_the_support():
    """q_T < 0 or E ≤ 0: ln p = −inf, no RuntimeWarning (before: NaN with a warning for E ≤ 0,
    and a finite value for q_T < 0 from the q_T floor); the points inside are unchanged."""
    model = _model()
    qT = np.array([1.0, -0.5, 1.0, 1.0, 0.0, np.nan])
    E = np.array([20.0, 20.0, 0.0, -3.0, 20.0, 20.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lp = model.log_prob(0.5, qT, E)
    assert np.isneginf(lp[1:4]).all()
    assert np.isfinite(lp[[0, 4]]).all()
    assert np.isnan(lp[5])
    inside = model.log_prob(0.5, qT[[0, 4]], E[[0, 4]])
    # another batch shape: equal to float32 rounding, not bit for bit (observed 1.5e-5 at
    # ln p = −62.8 on AMD EPYC and here: 4 ulp). The float32 part of ln p is a sum of
    # log-determinants of magnitude ≲ |ln p| (tests/_tolerance.py: FLOW_OPS · eps32 · |ln p|
    # = 2.2e-3 at −62.8); the q_T floor or the −inf masking done wrong moves it by O(1) or more.
    np.testing.assert_allclose(
        lp[[0, 4]], inside, atol=reorder_tol(FLOW_OPS, float(np.max(np.abs(inside)))), rtol=0
    )


def test_sample_physical_raises_when_redraws_do_not_help():
    """A flow with (almost) all its mass at E < q_T: 99.97% of the first draw is unphysical, so
    after 20 redraws nearly all rows still are; before, 19889 of 20000 such rows came back
    silently. A flow with 18% unphysical in the first draw comes back fully physical."""
    bad = _model(feature_mean=(3.0, -2.0), feature_std=(0.3, 0.3))
    with pytest.raises(GammastarError, match=r"still have E² < m² \+ q_T² after 20 redraws"):
        bad.sample(0.5, 20000, seed=1)
    raw = bad.sample(0.5, 20000, seed=1, physical=False)  # still available on request
    assert np.mean(raw["E"] ** 2 < 0.25 + raw["qT"] ** 2) > 0.99
    ok = _model(feature_mean=(1.0, 0.0), feature_std=(0.3, 0.3))
    first = ok.sample(0.5, 20000, seed=1, physical=False)
    assert np.mean(first["E"] ** 2 < 0.25 + first["qT"] ** 2) > 0.1
    s = ok.sample(0.5, 20000, seed=1)
    assert s["E"].shape == (20000,)
    assert np.all(s["E"] ** 2 >= 0.25 + s["qT"] ** 2)
