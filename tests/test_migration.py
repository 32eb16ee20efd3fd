"""gammastar.corrections.migration: the fiducial fraction by reconstructed against true mass.

Synthetic simulations whose answer is known by counting: no migration (c = 1 exactly) and a
population moved by a constant residual into the next bin with another in-F fraction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _experiment import stated_config

from gammastar.corrections.migration import Simulation, migration_correction


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
    rows, gen = _simulation(400, 400, 0.0, 0.25)
    res = migration_correction(Simulation(rows, gen, FINE), _Fiducial(), EDGES, bootstrap=5, seed=1)
    np.testing.assert_allclose(res.correction[:2], 1.0, rtol=1e-12)
    np.testing.assert_allclose(res.f_reco[:2], [0.25, 0.5], rtol=1e-12)  # by counting


def test_migrants_with_another_fiducial_fraction():
    """400 natives (half in F) and 400 migrants from the bin below (a quarter in F) in the
    bin 0.3–0.4 GeV: f_reco = (200 + 100)/800, f_true = 200/400, c = 4/3 by counting; the
    bin below keeps no γ* (f_reco = 0/0, NaN) and the bootstrap error is positive."""
    rows, gen = _simulation(400, 400, 0.1, 0.25)
    res = migration_correction(Simulation(rows, gen, FINE), _Fiducial(), EDGES, bootstrap=20,
                               seed=2)
    assert res.f_reco[1] == pytest.approx(300 / 800, rel=1e-12)
    assert res.f_true[1] == pytest.approx(0.5, rel=1e-12)
    assert res.correction[1] == pytest.approx(4 / 3, rel=1e-12)
    assert np.isnan(res.f_reco[0])
    assert 0 < res.correction_err[1] < 0.2  # Poisson weights over 800 sources


def test_smeared_counts_spreads_by_the_residuals():
    """10 sources uniform over 0–0.1 GeV, half moved by −0.01 (9 stay in 0–0.1, 1 leaves the
    range) and half by +0.07 (3 stay, 7 go to 0.1–0.2): (9 + 3)/2 and 7/2, exact (no draw)."""
    from gammastar.corrections.migration import smeared_counts

    out = smeared_counts(np.array([10.0, 0.0]), np.array([0.0, 0.1, 0.2]),
                               np.array([0.05, 0.05]), np.array([-0.01, 0.07]),
                               np.array([0.0, 0.1, 0.2]))  # fmt: skip
    np.testing.assert_allclose(out, [6.0, 3.5], rtol=1e-12)


def test_edges_off_the_fine_grid():
    """400 γ* spread uniformly over 0.350–0.351 GeV (one 1 MeV bin of truth_all_m), no
    migration, every other one inside F, and a yield edge at 0.3504 GeV inside that fine bin:
    160 and 240 sources on either side by their exact masses and by the uniform fine bin
    alike, so f_true = f_reco = 1/2 and c = 1 in both bins (labelling the fine bin by its
    centre would put all 400 in the upper bin's denominator)."""
    n = 400
    m = 0.350 + (np.arange(n) + 0.5) / n * 0.001
    rows = {"m_true": m, "m": m.copy(), "qT": np.where(np.arange(n) % 2 == 0, 0.5, 2.0),
            "E": np.full(n, 10.0)}  # fmt: skip
    gen = np.histogram(m, FINE)[0].astype(float)
    edges = np.array([0.2, 0.3504, 0.5])
    res = migration_correction(Simulation(rows, gen, FINE), _Fiducial(), edges, bootstrap=0, seed=1)
    np.testing.assert_allclose(res.f_true, 0.5, rtol=1e-9)
    np.testing.assert_allclose(res.f_reco, 0.5, rtol=1e-9)
    np.testing.assert_allclose(res.y_smeared, [160.0, 240.0], rtol=1e-9)


def test_a_gap_in_the_response_takes_the_next_group_above():
    """Recorded sources only in the 10 MeV true-mass groups at 0.05 and 0.07 GeV (residuals 0
    and +0.1): counts in the empty group between them are smeared by the group above (as
    gammastar_validation.truth.smearing_from_residuals draws them), all 10 moved into 0.1–0.2."""
    from gammastar.corrections.migration import smeared_counts

    fine = np.linspace(0.0, 0.2, 201)
    counts = np.zeros(200)
    counts[65] = 10.0  # 0.065–0.066 GeV: the empty group
    out = smeared_counts(counts, fine, np.array([0.0505, 0.0705]), np.array([0.0, 0.1]),
                         np.array([0.0, 0.1, 0.2]))  # fmt: skip
    np.testing.assert_allclose(out, [0.0, 10.0], rtol=1e-12)


def _write_simulation(path, channel, m_true):
    import hist
    import uproot

    n = m_true.size
    h = hist.Hist(hist.axis.Regular(2000, 0.0, 2.0), storage=hist.storage.Weight())
    h.fill(m_true)
    with uproot.recreate(path) as f:
        f["truth"] = {"channel": np.asarray(channel, np.int32), "m": m_true, "qT": np.full(n, 0.5),
                      "E": np.full(n, 10.0), "m_true": m_true}  # fmt: skip
        f["truth_all_m"] = h


def test_read_simulation_drops_eta_mumu_and_names_the_file(tmp_path):
    """η → μμ and combinatorial rows are not γ* (the data remove them): 3 of 5 rows kept; a
    missing file, tree or branch is one InputError naming the file."""
    import uproot

    from gammastar.cocktail_channels import Channel
    from gammastar.corrections.migration import read_simulation
    from gammastar.errors import InputError

    sim = tmp_path / "sim.root"
    ch = [int(Channel.ETA_MUMU), int(Channel.COMBINATORIAL), int(Channel.OMEGA_DALITZ),
          int(Channel.RHO_MUMU), int(Channel.PHI_MUMU)]  # fmt: skip
    _write_simulation(sim, ch, np.array([0.547, 0.5, 0.6, 0.7, 1.019]))
    rows, gen, _ = read_simulation([sim])
    np.testing.assert_allclose(rows["m_true"], [0.6, 0.7, 1.019], rtol=1e-6)  # float32 copies
    assert gen.sum() == pytest.approx(5.0, abs=1e-12)  # the histogram as written
    with pytest.raises(InputError, match=r"nope\.root"):
        read_simulation([tmp_path / "nope.root"])
    with pytest.raises(InputError, match="no 'other'"):
        read_simulation([sim], tree="other")
    bad = tmp_path / "bad.root"
    with uproot.recreate(bad) as f:
        f["truth"] = {"m": np.ones(2), "qT": np.ones(2), "E": np.ones(2)}
        f["truth_all_m"] = np.histogram(np.ones(2), np.linspace(0, 2, 3))
    with pytest.raises(InputError, match=r"bad\.root: tree 'truth' has no branch 'm_true'"):
        read_simulation([bad])


def test_read_simulation_drops_rows_with_a_non_finite_value(tmp_path):
    """A row with NaN in any column reaches no sum (the weights, the histograms, the response):
    2 of 4 kept."""
    import uproot

    from gammastar.cocktail_channels import Channel
    from gammastar.corrections.migration import read_simulation

    sim = tmp_path / "sim.root"
    with uproot.recreate(sim) as f:  # NaN in m_true of row 2, in E of row 4
        f["truth"] = {"channel": np.full(4, int(Channel.RHO_MUMU), np.int32),
                      "m": np.array([0.6, 0.65, 0.7, 0.8]), "qT": np.full(4, 0.5),
                      "E": np.array([10.0, 10.0, 10.0, np.nan]),
                      "m_true": np.array([0.6, np.nan, 0.7, 0.8])}  # fmt: skip
        f["truth_all_m"] = np.histogram([0.6, 0.7, 0.8], np.linspace(0.0, 2.0, 2001))
    rows, _, _ = read_simulation([sim])
    np.testing.assert_allclose(rows["m_true"], [0.6, 0.7], rtol=1e-15)  # copies


def test_bins_without_a_measured_correction_stay_at_one():
    """A bin whose bootstrap error is not finite (a replica with nothing inside F) is left at
    c = 1 and listed; a pair outside the bins gets 1."""
    from gammastar.corrections.migration import MigrationCorrection

    f = np.full(3, 0.3)
    mc = MigrationCorrection(np.array([0.3, 0.4, 0.5, 0.6]), np.array([1.05, 0.9, 1.2]),
                             np.array([0.01, np.inf, 0.02]), f, f, f, 0, [], 5, 1)  # fmt: skip
    assert mc.uncorrected == [1]
    # copied values, no arithmetic
    np.testing.assert_allclose(mc.at_pairs([0.35, 0.45, 0.55, 0.65]), [1.05, 1.0, 1.2, 1.0],
                               rtol=1e-15)  # fmt: skip
    assert mc.as_dict()["uncorrected_bins"] == [1]


def test_a_written_correction_applies_what_the_yields_applied():
    """:func:`applied_correction` of the written block: c with 1 in its uncorrected bins; a
    block written before ``uncorrected_bins`` gives the same by the object's rule."""
    from gammastar.corrections.migration import MigrationCorrection, applied_correction

    f = np.full(4, 0.3)
    mc = MigrationCorrection(np.linspace(0.3, 0.7, 5), np.array([1.05, 0.9, np.nan, 1.2]),
                             np.array([0.01, np.inf, np.nan, 0.02]), f, f, f, 0, [], 5, 1)  # fmt: skip
    block = json.loads(json.dumps(mc.as_dict()))  # as yields.json holds it (NaN → null)
    old = {k: v for k, v in block.items() if k != "uncorrected_bins"}
    for b in (block, old):
        c, corrected = applied_correction(b)
        # copied values and literals, no arithmetic
        np.testing.assert_allclose(c, [1.05, 1.0, 1.0, 1.2], rtol=1e-15)
        assert corrected.tolist() == [True, False, False, True]


def test_config_refuses_what_the_correction_cannot_serve():
    """Both flavours in one run, no fiducial region, a negative seed: one line naming the key."""
    from gammastar.errors import ConfigError

    mig = {"simulation": ["sim.root"]}
    with pytest.raises(ConfigError, match="resolution_migration: one simulation serves one"):
        stated_config({"input": {"lepton": ["mu", "e"]}, "yields": {"resolution_migration": mig},
                          "unfold": {"lepton_acceptance": {"min_energy": 3.0, "theta_min": 0.035,
                                                           "theta_max": 0.12}}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"needs unfold\.lepton_acceptance"):
        stated_config({"yields": {"resolution_migration": mig}})
    with pytest.raises(ConfigError, match="seed"):
        stated_config({"yields": {"resolution_migration": {**mig, "seed": -1}}})


def test_reach_drops_the_correction_with_the_fiducial_yield():
    """reach.extrapolation: refuse takes the fiducial yield, which no migration correction
    touches: resolution_migration leaves the workspace with extrapolation, said why."""
    from types import SimpleNamespace

    from gammastar.yields.nuisance import reach_nuisances

    unc = {"mass": np.array([0.3, 0.6]), "nuisances": {
        n: {"kind": "normsys", "rel": [0.02, 0.03], "origin": n}
        for n in ("like_sign_r", "extrapolation", "resolution_migration")}}  # fmt: skip
    yields = SimpleNamespace(
        uncertainties=unc, at=lambda m: (np.ones(len(m)), np.full(len(m), 0.05))
    )
    for how, kept in (("refuse", {"like_sign_r"}),
                      ("label", {"like_sign_r", "extrapolation", "resolution_migration"})):  # fmt: skip
        config = SimpleNamespace(uncertainties=SimpleNamespace(enabled=True),
                                 reach=SimpleNamespace(extrapolation=how, yields="y.json"))  # fmt: skip
        sizes, record = reach_nuisances(config, yields, [0.45])
        assert set(sizes) == kept
        if how == "refuse":
            assert set(record["not_included"]) == {"extrapolation", "resolution_migration"}
        np.testing.assert_allclose(sizes["like_sign_r"], [0.025], rtol=1e-12)  # interpolated


def test_the_yields_stage_reads_the_simulation(tmp_path):
    """The pipeline tracks the simulation files as the yields stage's inputs (a changed
    simulation reruns it) and the analysis seed as one of its sections (the bootstrap's
    default seed)."""
    from gammastar.pipeline import STAGES

    la = {"min_energy": 3.0, "theta_min": 0.035, "theta_max": 0.12}
    cfg = stated_config({"output": str(tmp_path / "run"), "unfold": {"lepton_acceptance": la},
                            "yields": {"resolution_migration": {"simulation": [str(tmp_path / "s.root")]}}})  # fmt: skip
    stage = next(s for s in STAGES if s.name == "yields")
    assert tmp_path / "s.root" in stage.inputs(cfg)
    assert "seed" in stage.sections


def test_the_nuisance_refuses_a_correction_on_other_bins():
    """The correction is made on the yield bins: other edges (even as many) are one InputError;
    on the same bins the nuisance is dc/c in the corrected bins and 0 in the uncorrected."""
    from gammastar.errors import InputError
    from gammastar.yields.sources import _migration_nuisance

    mig = {"applied": True, "bin_edges": [0.3, 0.4, 0.5], "correction": [1.1, None],
           "correction_err": [0.022, None], "uncorrected_bins": [1], "bootstrap": 30}  # fmt: skip
    doc = {"extrapolation": {"resolution_migration": mig}}
    out, skipped = {}, {}
    _migration_nuisance(doc, np.array([0.3, 0.4, 0.5]), out, skipped)
    nu = out["resolution_migration"]
    # 0.022 / 1.1 in the corrected bin, 0 in the uncorrected one
    np.testing.assert_allclose(nu.up, [0.02, 0.0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(nu.down, [-0.02, 0.0], rtol=1e-12, atol=1e-15)
    with pytest.raises(InputError, match="other mass bins"):
        _migration_nuisance(doc, np.array([0.3, 0.45, 0.5]), {}, {})
