"""Efficiency unfolding and iterative Bayesian resolution unfolding."""

from __future__ import annotations

import numpy as np
import pytest
from _select_data import write_effmap

from gammastar.corrections.unfold.efficiency import (
    EfficiencyMap,
    bin_index,
    efficiency_weights,
    inverse_weights,
    load_efficiency_map,
)
from gammastar.corrections.unfold.resolution import (
    bayesian_unfold,
    bayesian_unfold_variance,
    response_matrix,
)
from gammastar.errors import InputError


def test_map_roundtrip_and_lookup(tmp_path):
    vals = np.linspace(0.1, 1.0, 200).reshape(20, 10)
    write_effmap(tmp_path / "e.root", vals)
    em = load_efficiency_map(tmp_path / "e.root")
    assert em.values.shape == (20, 10)
    # m = 0.55 → bin 5, pT = 1.2 → bin 2
    eff, inside = em.lookup(np.array([0.55, 2.5]), np.array([1.2, 1.0]))
    assert eff[0] == pytest.approx(vals[5, 2])
    assert inside.tolist() == [True, False]


@pytest.mark.parametrize(
    "edges",
    [np.linspace(0.2113, 1.1, 90), np.linspace(0.0, 5.0, 101), np.linspace(-3.0, 3.0, 7),
     np.array([0.0, 1.0, 3.0, 7.0]), np.array([0.0, np.inf])],
)
def test_bin_index_is_searchsorted(edges):
    """The map's bin of each value is searchsorted's (side right, less one) for every value:
    on each edge and its neighbouring floats (where a bin computed from the spacing could
    round to the wrong side), outside the edges, ±inf, NaN, and the largest floats (an
    overflow of the spacing arithmetic); also for uneven and infinite edges (searchsorted
    itself)."""
    rng = np.random.default_rng(5)
    finite = edges[np.isfinite(edges)]
    x = np.concatenate([
        rng.uniform(finite[0] - 1.0, finite[-1] + 1.0, 20_000), finite,
        np.nextafter(finite, -np.inf), np.nextafter(finite, np.inf),
        [np.nan, np.inf, -np.inf, 1.7e308, -1.7e308],
    ])  # fmt: skip
    got = bin_index(edges, x)
    # bin indices (integers) of the same floats against the same edges: exact
    np.testing.assert_array_equal(got, np.searchsorted(edges, x, side="right") - 1)
    assert got.dtype == np.intp


def test_unfolding_closure_on_toy():
    """Accept/reject with ε(m, pT), then weight 1/ε: the generated count comes back
    within its binomial error."""
    rng = np.random.default_rng(7)
    em = EfficiencyMap(np.linspace(0, 1, 11), np.linspace(0, 2, 5), rng.uniform(0.2, 0.9, (10, 4)))
    n = 200_000
    m, pt = rng.uniform(0, 1, n), rng.uniform(0, 2, n)
    eff, _ = em.lookup(m, pt)
    acc = rng.random(n) < eff
    _, inv, rep = efficiency_weights(em, m[acc], pt[acc])
    assert rep.n_outside == rep.n_zero == 0
    err = np.sqrt(np.sum(inv**2 - inv))  # binomial: Σ (1 − ε)/ε²
    assert abs(inv.sum() - n) < 3 * err


def test_missing_pairs_counted_or_error():
    em = EfficiencyMap(np.array([0.0, 1.0]), np.array([0.0, 1.0, 2.0]), np.array([[0.5, 0.0]]))
    m, pt = np.array([0.5, 0.5, 1.5]), np.array([0.5, 1.5, 0.5])
    with pytest.raises(InputError, match="1 selected pair"):
        efficiency_weights(em, m, pt)
    eff, inv, rep = efficiency_weights(em, m, pt, on_missing="drop")
    assert (rep.n_outside, rep.n_zero) == (1, 1)
    assert inv.tolist() == [2.0, 0.0, 0.0]
    assert np.isnan(eff[2])


def test_inverse_weights_of_unusable_efficiencies_are_zero():
    """1/ε where ε is finite and > 0; 0 for NaN (outside the map), 0, negative and infinite ε,
    the finite ε ≤ 0 counted as n_zero (the division is done in place with a mask: the
    same numbers as a boolean gather and scatter, each a single correctly rounded
    division)."""
    eff = np.array([0.5, np.nan, 0.0, -0.2, np.inf, -np.inf, 0.25, 1.0])
    from _tolerance import EPS64

    inv, rep = inverse_weights(eff, n_outside=1, on_missing="drop")
    unusable = np.array([False, True, True, True, True, True, False, False])
    assert np.all(inv[unusable] == 0.0)  # assigned, not computed
    # computed: one division each, within one rounding
    np.testing.assert_allclose(inv[~unusable], [2.0, 4.0, 1.0], rtol=EPS64, atol=0)
    assert (rep.n_pairs, rep.n_outside, rep.n_zero) == (8, 1, 2)  # counts: integers
    rng = np.random.default_rng(3)
    e = rng.uniform(0.01, 1.0, 1000)
    inv, _ = inverse_weights(e, n_outside=0)
    np.testing.assert_allclose(inv, 1.0 / e, rtol=EPS64, atol=0)  # one rounding each side
    with pytest.raises(InputError, match="2 fall in bins"):
        inverse_weights(eff, n_outside=0, on_missing="nearest")


def test_bayesian_unfolding_recovers_truth():
    """A peak on a falling continuum, smeared by a Gaussian wider than a bin; the measured
    spectrum is the expected (Asimov) one. D'Agostini iterations converge to the truth:
    the distance to it drops with the iterations and by > 10× after 200."""
    rng = np.random.default_rng(3)
    edges = np.linspace(0.2, 1.1, 31)
    n = 600_000
    m_true = np.concatenate([rng.exponential(0.25, n) + 0.2, rng.normal(0.78, 0.03, n // 3)])
    m_true = m_true[(m_true > 0.2) & (m_true < 1.1)]
    m_reco = m_true + rng.normal(0, 0.04, m_true.size)
    resp = response_matrix(m_true, m_reco, edges)
    truth = np.histogram(m_true, edges)[0].astype(float)
    meas = truth @ resp

    def dist(x):
        return np.sum((x - truth) ** 2 / truth)

    d = [dist(bayesian_unfold(meas, resp, it)) for it in (5, 50, 200)]
    assert d[0] > d[1] > d[2]
    assert d[2] < 0.1 * dist(meas)
    # the unfolded spectrum keeps the total
    assert bayesian_unfold(meas, resp, 200).sum() == pytest.approx(meas.sum(), rel=1e-6)


@pytest.mark.parametrize("bad", [np.nan, 1.5, -0.1])
@pytest.mark.parametrize("kind", ["efficiency", "acceptance"])
def test_invalid_map_contents_name_file_and_histogram(tmp_path, kind, bad) -> None:
    """Both maps go through one checker: contents must be finite and within [0, 1]."""
    import hist
    import uproot

    from gammastar.corrections.unfold.acceptance import load_acceptance_map
    from gammastar.corrections.unfold.efficiency import load_efficiency_map

    h = hist.Hist(hist.axis.Regular(4, 0.2, 1.2), hist.axis.Regular(3, 0.0, 3.0))
    h.view()[...] = 0.5
    h.view()[1, 2] = bad
    path = tmp_path / "map.root"
    with uproot.recreate(path) as f:
        f[kind] = h
    load = load_efficiency_map if kind == "efficiency" else load_acceptance_map
    with pytest.raises(InputError, match=rf"map\.root:{kind}: .*{kind}"):
        load(path, kind)


@pytest.mark.parametrize("iterations", [1, 4])
def test_bayesian_unfolding_variance_matches_toys(iterations):
    """The propagated variance equals the spread of the unfolded spectrum over Poisson toys
    of the measured spectrum (prior = the measured spectrum, as in the selection). 4000 toys: the
    toy variance is known to sqrt(2/4000) = 2.2%; tolerance 10% per bin (first-order
    propagation, a mildly non-linear function). The input variance alone (what was kept
    before) is off by far more in the bins that migrations mix."""
    rng = np.random.default_rng(11)
    truth = np.array([400.0, 900.0, 600.0, 300.0, 150.0])
    resp = np.array(
        [
            [0.7, 0.2, 0.0, 0.0, 0.0],
            [0.15, 0.6, 0.15, 0.0, 0.0],
            [0.0, 0.15, 0.6, 0.15, 0.0],
            [0.0, 0.0, 0.2, 0.6, 0.15],
            [0.0, 0.0, 0.0, 0.2, 0.7],
        ]
    )
    expected = truth @ resp
    toys = np.array(
        [
            bayesian_unfold(m, resp, iterations)
            for m in rng.poisson(expected, (4000, 5)).astype(float)
        ]
    )
    var = bayesian_unfold_variance(expected, expected, resp, iterations)
    np.testing.assert_allclose(var, toys.var(axis=0), rtol=0.10)
    assert np.max(np.abs(expected / toys.var(axis=0) - 1)) > 0.3


def test_efficiency_map_cached_by_its_bytes(tmp_path, monkeypatch) -> None:
    """A map read once is cached (its checked arrays, keyed by the file's bytes and the
    histogram's name): read again without the ROOT reader, the same arrays exactly; a file
    written again with other contents is read again; no cache (GAMMASTAR_CACHE="") reads the
    file each time."""
    from gammastar.corrections.unfold import _read_root_hist as read
    from gammastar.corrections.unfold import efficiency

    monkeypatch.setenv("GAMMASTAR_CACHE", str(tmp_path / "cache"))
    vals = np.linspace(0.1, 1.0, 200).reshape(20, 10)
    path = tmp_path / "e.root"
    write_effmap(path, vals)
    assert not efficiency.efficiency_map_cached(path)
    first = load_efficiency_map(path)
    assert efficiency.efficiency_map_cached(path)  # the driver then loads no ROOT reader

    def no_reader(*a, **k):
        raise AssertionError("the ROOT file was read again")

    monkeypatch.setattr(efficiency, "_read_root_hist", no_reader)
    again = load_efficiency_map(path)
    for k in ("m_edges", "pt_edges", "values"):
        np.testing.assert_array_equal(getattr(again, k), getattr(first, k))  # bit for bit
        assert getattr(again, k).dtype == getattr(first, k).dtype
    assert again.source == first.source == str(path)
    monkeypatch.setattr(efficiency, "_read_root_hist", read)
    write_effmap(path, vals[::-1].copy())  # the same size, other values
    assert not efficiency.efficiency_map_cached(path)
    # the written float64 values read back: a copy, exact
    np.testing.assert_array_equal(load_efficiency_map(path).values, vals[::-1])
    monkeypatch.setenv("GAMMASTAR_CACHE", "")
    monkeypatch.setattr(efficiency, "_read_root_hist", no_reader)
    with pytest.raises(AssertionError, match="read again"):
        load_efficiency_map(path)
