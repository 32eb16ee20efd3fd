"""The extrapolation fit's parameter layout (:class:`Layout`) and the N_sig error's one
reweighting (:func:`reweight`)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _tolerance import EPS64, reorder_tol

from gammastar.yields.extrapolation.layout import Layout
from gammastar.yields.extrapolation.nsig.draw import reweight
from gammastar.yields.extrapolation.result import Extrapolation

FLAGS = list(itertools.product((1, 2, 3), (True, False), (True, False), (True, False)))


@pytest.mark.parametrize(("n_groups", "y_mean", "y_sigma", "power"), FLAGS)
def test_layout_names_index_and_pack_agree(n_groups, y_mean, y_sigma, power):
    """Every name sits at the index :meth:`Layout.index` gives it; the vector's length is the
    number of names; unpack inverts pack (the same floats: no arithmetic); a group's rows hold
    its T, the shared parameters and its a in the order (T, ȳ, σ_y, a) that ``local`` names."""
    lay = Layout(n_groups, y_mean, y_sigma, power)
    assert lay.size == len(lay.names) == lay.head + n_groups * (2 if power else 1)
    for i, name in enumerate(lay.names):
        base, _, group = name.partition("_")
        key = name if name in ("y_mean", "y_sigma") else base
        assert lay.index(key, int(group) if group.isdigit() else 0) == i
    t, a = np.array([0.2, 0.25, 0.3])[:n_groups], np.array([0.5, 0.6, 0.7])[:n_groups]
    q = lay.pack(3.37, 1.2, t, a)
    got = lay.unpack(q, y_mean=3.37, y_sigma=1.2, power=0.0)
    assert (got.y_mean, got.y_sigma) == pytest.approx((3.37, 1.2), rel=EPS64, abs=0)
    np.testing.assert_array_equal(got.t, t)
    np.testing.assert_array_equal(got.a, a if power else np.zeros(n_groups))
    for g in range(n_groups):
        rows, local = lay.group_rows(g), lay.local
        assert len(rows) == len(local)
        want = {0: lay.index("T", g)}
        want |= {1: lay.index("y_mean")} if y_mean else {}
        want |= {2: lay.index("y_sigma")} if y_sigma else {}
        want |= {3: lay.index("a", g)} if power else {}
        assert dict(zip(local, rows, strict=True)) == want
    with pytest.raises(KeyError):
        lay.index("T", n_groups)
    if not power:
        with pytest.raises(KeyError):
            lay.index("a", 0)


@pytest.mark.parametrize(("y_mean_fixed", "power"), [(True, False), (False, False), (True, True)])
def test_the_record_names_its_covariance_in_the_layout(y_mean_fixed, power):
    """``yields.json`` ``parameter_covariance.parameters`` is the layout's names, and
    :meth:`Extrapolation.parameter_index` its index: σ_y's row always (zeros where external),
    ȳ's where fitted, the a_g after the T_g."""
    n_groups = 2
    k = (1 if y_mean_fixed else 2) + n_groups * (2 if power else 1)
    ex = Extrapolation(np.array([0.25, 0.35]), np.array([0.2, 0.3, 0.4]), np.full(2, 0.2),
                       np.full(2, 0.2), np.zeros(2), np.ones(2), np.ones(2), {},
                       y_mean_fixed=y_mean_fixed, covariance=np.eye(k),
                       bin_group=np.array([0, 1]), pt_power_fitted=power)  # fmt: skip
    names = ex.as_dict()["parameter_covariance"]["parameters"]
    lay = Layout(n_groups, y_mean=not y_mean_fixed, power=power)
    assert names == list(lay.names)
    assert ex.parameter_index("y_sigma") == names.index("y_sigma")
    assert ex.parameter_index("T", 1) == names.index("T_1")
    if power:
        assert ex.parameter_index("a", 0) == names.index("a_0")


def test_reweighting_is_the_self_normalised_mean_and_cannot_overflow():
    """:func:`reweight` is Σ wᵢaᵢ/Σ wᵢ with the Kish size (Σ wᵢaᵢ)²/Σ (wᵢaᵢ)² per column,
    unchanged by a common factor of the weights, also one of e^800 (beyond float64, where the
    plain formula gives NaN); equal weights and acceptances give n; no finite weight gives 0.
    Tolerance: the two sums' rounding (:func:`reorder_tol` over n terms, and the exponentials'
    argument 800 + x, rounded to 800 ulp(1) ≈ 2e-13 relative in e^x)."""
    rng = np.random.default_rng(3)
    n = 1000
    lw = rng.normal(0.0, 2.0, n)
    a = rng.random((n, 3))
    mean, kish = reweight(lw, a)
    w = np.exp(lw)
    c = w[:, None] * a
    tol = reorder_tol(n, 1.0, EPS64)
    np.testing.assert_allclose(mean, c.sum(axis=0) / w.sum(), rtol=tol)
    np.testing.assert_allclose(kish, c.sum(axis=0) ** 2 / (c**2).sum(axis=0), rtol=2 * tol)
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.all(np.isnan((np.exp(lw + 800.0) @ a) / np.exp(lw + 800.0).sum()))
    shifted = reweight(lw + 800.0, a)
    np.testing.assert_allclose(shifted[0], mean, rtol=tol + 1e-12)
    np.testing.assert_allclose(shifted[1], kish, rtol=2 * tol + 1e-12)
    eq_mean, eq_kish = reweight(np.zeros(n), np.ones((n, 2)))
    np.testing.assert_allclose(eq_mean, 1.0, rtol=tol)
    np.testing.assert_allclose(eq_kish, float(n), rtol=2 * tol)
    none_mean, none_kish = reweight(np.full(n, -np.inf), a)
    assert not np.any(none_mean)
    assert not np.any(none_kish)
