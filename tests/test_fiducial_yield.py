"""benchmarks/fiducial_yield.py's pieces (issue 19): the stated mock, the measured λ_θ's bin,
the acceptance correction's closure against a truth with a known answer, the means. Fast: no
chain, no truth generation."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _benchmarks import load_benchmark

from gammastar.config import load_config
from gammastar.corrections.migration import fiducial_weights

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fy():
    return load_benchmark("fiducial_yield")


@pytest.fixture(scope="module")
def base():
    return load_config(REPO / "analysis" / "na60_like.yaml")


def test_stated_mock_takes_the_analysis_width_and_the_given_form(fy, base):
    stated = base.yields.extrapolation_y_sigma.value
    cfg = fy.stated_mock(base, 1.2247, None)
    # literals copied into the config: exact
    assert cfg.mock.pt_mt_power == 1.2247
    assert cfg.mock.rapidity_sigma == stated
    assert fy.stated_mock(base, None, 0.9).mock.rapidity_sigma == 0.9
    assert fy.stated_mock(base, None, 0.9).mock.pt_mt_power == base.mock.pt_mt_power


def test_stated_mock_refuses_a_form_outside_the_samplers_range(fy, base):
    with pytest.raises(SystemExit, match="--pt-form"):
        fy.stated_mock(base, -2.5, None)


def test_measured_lambda_reads_the_bin_that_holds_the_mass(fy):
    pol = {"mass_edges": [0.2, 0.45, 0.7, 1.1], "lambda_theta": [0.1, -0.2, 0.3]}
    got = [fy.measured_lambda(pol, m) for m in (0.3, 0.45, 0.6, 1.1, 0.1)]
    # the list's own values, copied: exact; an edge belongs to the bin above, the ends clip
    assert got == [0.1, -0.2, -0.2, 0.3, 0.1]


class _FlatAcceptance:
    """A per-pair acceptance of one value everywhere (the fiducial region is then all or
    nothing)."""

    def __init__(self, a):
        self.a = a

    def of_kinematics(self, m, qt, e):
        return np.full(np.shape(m), self.a)


def test_acceptance_closure_is_one_when_a_is_the_recorded_fraction(fy):
    # 4000 generated γ* spread evenly over 0.50–0.70 GeV (20 per 1 MeV bin), 10 of each bin's
    # 20 recorded: A = 1/2 is the truth, so Σ 1/A over the recorded γ* of true mass in
    # 0.55–0.65 equals the number generated there, 2000, and the closure is 1 (up to the float
    # sums' rounding). Their reconstructed masses are 80 MeV higher: the slice is by true mass
    fine = np.linspace(0.5, 0.7, 201)
    gen = np.full(200, 20.0)
    m_true = np.repeat(0.5 + 0.001 * (np.arange(200) + 0.5), 10)
    rows = {"m": m_true + 0.08, "qT": np.ones(m_true.size), "E": np.full(m_true.size, 10.0),
            "m_true": m_true}  # fmt: skip
    fid = SimpleNamespace(acceptance=_FlatAcceptance(0.5), min_acceptance=0.05)
    got = fy.acceptance_closure(rows, fiducial_weights(rows, fid), gen, fine, 1.0, 0.6, 0.05)
    assert math.isclose(got, 1.0, rel_tol=1e-12)
    # A stated at 0.4 over-corrects by 0.5/0.4; F's true fraction halved doubles it
    fid.acceptance = _FlatAcceptance(0.4)
    w = fiducial_weights(rows, fid)
    assert math.isclose(fy.acceptance_closure(rows, w, gen, fine, 0.5, 0.6, 0.05), 2 * 1.25,
                        rel_tol=1e-12)  # fmt: skip
    # outside F (A below min_acceptance) nothing is counted
    fid.acceptance = _FlatAcceptance(0.01)
    w = fiducial_weights(rows, fid)
    assert math.isclose(fy.acceptance_closure(rows, w, gen, fine, 1.0, 0.6, 0.05), 0.0,
                        abs_tol=1e-15)  # fmt: skip


def test_summary_gives_the_mean_and_its_error_without_the_nans(fy):
    keys = fy.KEYS
    # key i takes (1, 2, 3) + 10 i and one NaN: mean 2 + 10 i, sd 1 of three, error 1/√3
    per = [{"0.6": {k: v + 10 * i for i, k in enumerate(keys)}}
           for v in (1.0, 2.0, 3.0, float("nan"))]  # fmt: skip
    got = fy.summary(per, [0.6])["0.6"]
    for i, k in enumerate(keys):
        assert math.isclose(got[k][0], 2.0 + 10 * i, rel_tol=1e-12)
        assert math.isclose(got[k][1], 1 / math.sqrt(3), rel_tol=1e-12)


def test_reuse_redoes_a_selection_with_another_lambda_correction(fy, base, tmp_path):
    """``--reuse`` keeps a run's mock file but not a selection made with another λ_θ
    correction: no correction asked and none made, or the same files and truth-side tree, keep
    it; anything else (a correction added or dropped, another file, another truth tree, a
    selection made before the tree was recorded) names why it is redone."""
    import json

    sim = tmp_path / "sim.root"
    sc = {"simulation": [str(sim)], "truth_tree": "truth_generated"}

    def why(block, cfg):
        (tmp_path / "select.json").write_text(json.dumps({"polarisation": block}))
        return fy.correction_mismatch(tmp_path, cfg)

    gen = fy.with_lambda_simulation(base, [sim], "truth_generated")
    assert why({}, base) is None
    assert why({"selection_correction": sc}, gen) is None
    assert "does not correct" in why({}, gen)
    assert "this run does not" in why({"selection_correction": sc}, base)
    assert "another λ_θ simulation" in why(
        {"selection_correction": sc | {"simulation": ["x"]}}, gen
    )
    assert "is truth" in why({"selection_correction": sc | {"truth_tree": "truth"}}, gen)
    no_key = {k: v for k, v in sc.items() if k != "truth_tree"}
    assert "not recorded" in why({"selection_correction": no_key}, gen)
