"""The 3-D acceptance map A(m, pT, y) (``unfold.acceptance_map`` naming a TH3) on the
NA60-like mock.

The mock writes ``acceptance_3d`` (true γ* mass, pT, lab rapidity y; ``mock.acceptance_y_edges``)
beside the 2-D ``acceptance``. Unfolded with it, the signal pairs' Σ 1/(A ε) is the number of
generated γ* sources in the map's covered (m, pT, y) cells with A ≥ ``unfold.min_acceptance``
(``acceptance_3d_generated``), not the full-phase-space truth; a map with one y bin gives the
2-D map's weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

from gammastar.cocktail_channels import Channel
from gammastar.config import load_config
from gammastar.errors import InputError
from gammastar.selection.stage import select

REPO = Path(__file__).resolve().parents[1]
MIN_ACC = 0.01
Y_EDGES = [2.5, 3.0, 3.5, 4.0, 4.5]
"""The pair rapidity range the NA60-like window (35–120 mrad, E_μ > 3 GeV, 400 GeV beam)
accepts: measured with the mock, no accepted γ* outside 2.75 < y < 4.25; about half of the
generated γ* lie outside 2.5–4.5 (y_cm = 3.37, the generator's width)."""


def config(run: Path, y_edges: list[float], key: str):
    """analysis/na60_like.yaml in ``run``, the mock writing a 3-D map on ``y_edges``, unfolded
    with the map ``key`` of the mock file; pairs outside the map get weight 0 (``drop``)."""
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    mock = cfg.mock.model_copy(update={"acceptance_y_edges": y_edges})
    unfold = cfg.unfold.model_copy(
        update={
            "acceptance_map": f"${{output}}/mock.root:{key}",
            "lepton_acceptance": None,
            "min_acceptance": MIN_ACC,
            "outside_map": "drop",
        }
    )
    return cfg.model_copy(update={"output": str(run), "mock": mock, "unfold": unfold})


def signal_os(pairs):
    """OS pairs of γ* sources (no combinatorial, no η → μμ: the map's sources)."""
    ch = pairs["channel"].to_numpy()
    return (
        (ch != int(Channel.COMBINATORIAL))
        & (ch != int(Channel.ETA_MUMU))
        & (pairs["charge"].to_numpy() == 0)
    )


def test_mock_3d_map_matches_its_sources(tmp_path):
    """``acceptance_3d`` summed over y is the 2-D map's counts where the y axis covers every
    γ* (one bin −50..50: exact equality of the counts), and its contents are within [0, 1]
    with binomial variances A(1 − A)/N."""
    from gammastar.mock.generate import generate_file

    cfg = config(tmp_path, [-50.0, 50.0], "acceptance_3d")
    res = generate_file(cfg, tmp_path / "mock.root", events=20_000, seed=3)
    with uproot.open(tmp_path / "mock.root") as f:
        assert f.classnames()["acceptance_3d;1"] == "TH3D"
        a3, g3 = f["acceptance_3d"].to_hist(), f["acceptance_3d_generated"].to_hist()
        a2, g2 = f["acceptance"].to_hist(), f["acceptance_generated"].to_hist()
    np.testing.assert_array_equal(g3.values()[:, :, 0], g2.values())
    np.testing.assert_array_equal(a3.values()[:, :, 0], a2.values())
    np.testing.assert_array_equal(a3.variances()[:, :, 0], a2.variances())
    assert "acceptance_3d" in res.meta["acceptance_map"]["histograms"]


@pytest.fixture(scope="module")
def unfolded_3d(tmp_path_factory):
    from gammastar.mock.generate import generate_file

    run = tmp_path_factory.mktemp("map3d")
    cfg = config(run, Y_EDGES, "acceptance_3d")
    generate_file(cfg, run / "mock.root", events=200_000, seed=11)
    return cfg, select(cfg)


def test_3d_map_closes_on_the_covered_truth(unfolded_3d):
    """Σ 1/(A ε) over the γ*-source OS pairs at 0.30 ≤ m < 0.70 GeV equals the generated γ*
    in the map's cells with A ≥ min_acceptance in that mass range (the map's rows 0.30–0.70)
    within 3σ, σ² = Σw² (conservative: the map is the same sample, so the accept/reject of the
    geometric cuts does not fluctuate the sum; only ε's accept/reject and migrations do).
    Mass migration across 0.30/0.70 (σ_m = 30 MeV) and y migration were measured with 4 more
    seeds at 200k events: pulls −0.7, 1.2, −1.3, −0.9 (this seed: 0.1). The full-phase-space
    truth (``truth_all_m``) in the same range is 2.9× larger: the map's yield is the covered
    region's, by construction."""
    cfg, res = unfolded_3d
    p = res.pairs
    m = p["m"].to_numpy()
    sel = signal_os(p) & (m >= 0.30) & (m < 0.70)
    w = p["weight"].to_numpy()[sel]
    mock = Path(cfg.output) / "mock.root"
    with uproot.open(mock) as f:
        a = f["acceptance_3d"].to_hist()
        gen = f["acceptance_3d_generated"].values()
        t = f["truth_all_m"].to_hist()
    me = a.axes[0].edges
    rows = (me[:-1] >= 0.30 - 1e-9) & (me[1:] <= 0.70 + 1e-9)
    assert me[:-1][rows][0] == pytest.approx(0.30)
    assert me[1:][rows][-1] == pytest.approx(0.70)
    truth = np.where(a.values() >= MIN_ACC, gen, 0.0)[rows].sum()
    tot, err = w.sum(), np.sqrt(np.sum(w**2))
    assert err < 0.05 * truth  # the test resolves a 15% bias
    assert abs(tot - truth) < 3 * err, (tot, err, truth)
    c = t.axes[0].centers
    full = t.values()[(c >= 0.30) & (c < 0.70)].sum()
    assert full > 2 * truth  # measured: 77012 vs 26658 (y outside 2.5–4.5, A < 1% cells)
    # select.json's report names the 3-D map and its lost fraction from acceptance_3d_generated
    rep = res.unfold["acceptance"]
    assert rep["map"].endswith("mock.root:acceptance_3d")
    assert 0 < rep["lost_fraction_estimate_map"] < 1


def test_3d_map_with_one_y_bin_gives_the_2d_weights(tmp_path, unfolded_3d):
    """A TH3 whose y axis is one bin holding the 2-D map's values gives every pair the 2-D
    map's A and weight, through select (chunks and the driver's pair_weights). The lookups are
    the same bin's value and the weights the same product 1/ε · 1/A · s in the same order:
    tolerance 4 ulp (float64) on each weight."""
    import shutil

    cfg, _ = unfolded_3d
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(Path(cfg.output) / "mock.root", run / "mock.root")
    with uproot.open(run / "mock.root") as f:
        a2 = f["acceptance"].to_hist()
    import hist

    h3 = hist.Hist(*a2.axes, hist.axis.Variable([-50.0, 50.0], name="y"))
    h3.view()[...] = a2.values()[:, :, None]
    with uproot.update(run / "mock.root") as f:
        f["acc3_onebin"] = h3
    res2 = select(config(run, Y_EDGES, "acceptance"))
    res3 = select(config(run, Y_EDGES, "acc3_onebin"), force=True)
    p2, p3 = res2.pairs, res3.pairs
    assert len(p2) == len(p3) > 1000
    np.testing.assert_array_equal(p2["event"].to_numpy(), p3["event"].to_numpy())
    # A is the same stored bin value, copied (no arithmetic): equal
    np.testing.assert_array_equal(p3["acc"].to_numpy(), p2["acc"].to_numpy())
    w2, w3 = p2["weight"].to_numpy(), p3["weight"].to_numpy()
    np.testing.assert_allclose(w3, w2, rtol=4 * np.finfo(float).eps, atol=0)
    assert np.count_nonzero(w2) > 0.9 * len(w2)


# --------------------------------------------------------------------------- bad input
def _write_th3(path, values, m_edges=(0.2, 0.6, 1.2)):
    import hist

    h = hist.Hist(
        hist.axis.Variable(m_edges), hist.axis.Regular(2, 0.0, 2.0), hist.axis.Regular(2, 2.0, 5.0)
    )
    h.view()[...] = values
    with uproot.recreate(path) as f:
        f["acceptance"] = h


@pytest.mark.parametrize("bad", [np.nan, 1.5, -0.1])
def test_3d_map_bad_contents_name_the_file(tmp_path, bad):
    """NaN, > 1, < 0 in any cell: one InputError naming file and histogram (the 2-D checks)."""
    from gammastar.corrections.unfold.acceptance import load_acceptance_map

    v = np.full((2, 2, 2), 0.5)
    v[1, 0, 1] = bad
    _write_th3(tmp_path / "m3.root", v)
    with pytest.raises(InputError, match=r"m3\.root:acceptance: .*acceptance"):
        load_acceptance_map(tmp_path / "m3.root", "acceptance")


def test_3d_map_must_cover_the_selection_mass_range(tmp_path):
    """A TH3 whose mass axis (0.3–1.2 GeV) misses the selection's 0.2113 GeV: one error."""
    from gammastar.corrections.unfold.acceptance import AcceptanceMap3D, load_acceptance_map

    _write_th3(tmp_path / "m3.root", np.full((2, 2, 2), 0.5), m_edges=(0.3, 0.6, 1.2))
    with pytest.raises(InputError, match=r"m3\.root:acceptance: .*does not cover .*0\.2113"):
        load_acceptance_map(tmp_path / "m3.root", "acceptance", mass_range=(0.2113, 1.1))
    am = load_acceptance_map(tmp_path / "m3.root", "acceptance", mass_range=(0.35, 1.1))
    assert isinstance(am, AcceptanceMap3D)
    assert am.values.shape == (2, 2, 2)


def test_acceptance_map_of_wrong_dimension(tmp_path):
    """A TH1 named as the acceptance map: one InputError naming file and dimension."""
    import hist

    from gammastar.corrections.unfold.acceptance import load_acceptance_map

    h = hist.Hist(hist.axis.Regular(3, 0.0, 1.0))
    with uproot.recreate(tmp_path / "m1.root") as f:
        f["acceptance"] = h
    with pytest.raises(InputError, match=r"m1\.root:acceptance is a 1-D histogram"):
        load_acceptance_map(tmp_path / "m1.root", "acceptance")


def test_3d_lookup_outside_map_rules():
    """``nearest`` takes the nearest cell's A (in y too), ``drop``/``error`` give NaN; the
    count of pairs outside is the same; the rapidity is the pair's: y = asinh(pz/m_T)."""
    from gammastar.corrections.unfold.acceptance import AcceptanceMap3D, acceptance_weights

    am = AcceptanceMap3D(
        np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([2.0, 3.0, 4.0]),
        np.array([[[0.2, 0.4]]]), None, "x.root:acc",
    )  # fmt: skip
    m, pt = np.full(3, 0.5), np.full(3, 0.5)
    mt = np.sqrt(0.5)
    pz = mt * np.sinh(np.array([2.5, 3.5, 4.5]))  # y = 2.5, 3.5, 4.5
    acc, inv, rep = acceptance_weights(am, m, pt, pz=pz, min_acceptance=0.01, on_missing="drop")
    np.testing.assert_allclose(acc[:2], [0.2, 0.4])
    assert np.isnan(acc[2])
    assert inv[2] == 0
    assert rep.n_outside == 1
    acc, inv, rep = acceptance_weights(am, m, pt, pz=pz, min_acceptance=0.01, on_missing="nearest")
    np.testing.assert_allclose(acc, [0.2, 0.4, 0.4])
    assert rep.n_outside == 1
    with pytest.raises(InputError, match=r"x\.root:acc: 1 selected pair.*y 2\.\.4"):
        acceptance_weights(am, m, pt, pz=pz, min_acceptance=0.01, on_missing="error")
