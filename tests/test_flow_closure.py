"""The flow against its own pairs where the detector looks (gammastar.reach.flow_closure):
the paired ratio's error against the scatter of independent samples, a biased flow seen, the
fiducial region and the pairs' mass window applied, the skip without pairs."""

from __future__ import annotations

import numpy as np
import pytest
from _experiment import stated_config

from gammastar.reach.flow_closure import (
    ClosureSettings,
    detector_closure,
    flow_rows,
    moved_energy,
)
from gammastar.source.geometry import Geometry
from gammastar.source.source import Source

# the demo's detector (analysis/na60_like.yaml: a 5 m shield, 35-120 mrad) ending at 25 m, so
# that at long cτ the decay probability inside, 20 m/(γβcτ), depends on the energy
GEO = Geometry(l1=5.0, l2=25.0, theta_min=0.035, theta_max=0.120)
M = 0.5
CTAUS = np.array([0.05, 1.0, 100.0])  # short (the energy tail), middle, long lifetimes
Q_CUT = 4.0  # GeV: a toy fiducial region
WINDOW = ClosureSettings(window=0.03)  # the pairs within ±30 MeV, the full phase space


def _kinematics(rng, n, scale=1.0):
    """A toy γ* spectrum inside a spectrometer like the demo's: lab energy 20-120 GeV, polar
    angle 40-110 mrad (q_T = E θ, the pairs the detector's 35-120 mrad window sees), the
    momenta scaled by ``scale`` (the same angles, a higher γ)."""
    e = rng.uniform(20.0, 120.0, n)
    q = e * rng.uniform(0.040, 0.110, n)
    return scale * q, scale * e


class ToyFlow:
    """Independent draws of the toy spectrum at each requested mass (the kinematics do not
    depend on m), with q_T and E scaled by ``scale``."""

    mass_range = (0.2, 1.2)

    def __init__(self, scale=1.0):
        self.scale = scale

    def sample(self, masses, n, seed=None):
        q, e = _kinematics(np.random.default_rng(seed), n, self.scale)
        return {"qT": q, "E": e}


def _rows(seed, n=1500):
    rng = np.random.default_rng(seed)
    q, e = _kinematics(rng, n)
    m = rng.uniform(M - 0.025, M + 0.025, n)
    w = rng.lognormal(0.0, 0.8, n)  # unfolding weights 1/(A eps) of strongly varying size
    return {"m": m, "qT": q, "E": e, "weight": w}


def test_ratio_error_is_the_scatter_of_independent_samples():
    """An unbiased flow: over 40 independent pair samples the pulls (ratio − 1)/error are
    N(0, 1): mean within 4/√40 of 0, rms within 4/√80 of 1 (the χ² with 40 dof), at each cτ;
    and the mean ratio is 1 within 4 standard errors."""
    out = [detector_closure(ToyFlow(), _rows(s), M, CTAUS, GEO, settings=WINDOW, seed=100 + s)
           for s in range(40)]  # fmt: skip
    pull = np.array([o["pull"] for o in out], dtype=float)
    ratio = np.array([o["ratio"] for o in out], dtype=float)
    assert np.all(np.isfinite(pull))
    assert np.all(np.abs(pull.mean(0)) < 4 / np.sqrt(40))
    rms = np.sqrt((pull**2).mean(0))
    assert np.all(np.abs(rms - 1) < 4 / np.sqrt(80)), rms
    sem = ratio.std(0, ddof=1) / np.sqrt(40)
    assert np.all(np.abs(ratio.mean(0) - 1) < 4 * sem)


def test_a_flow_with_a_harder_spectrum_is_seen():
    """Momenta 15% higher at the same angles: more A′ survive the 5 m shield at short cτ (the
    acceptance exponential in the decay length, paper App. B) and fewer decay inside the
    volume at long cτ (20 m/(γβcτ) ∝ 1/γ: the ratio → 1/1.15); the ratio moves that way by
    many standard errors."""
    out = detector_closure(ToyFlow(scale=1.15), _rows(7, n=4000), M, CTAUS, GEO,
                           settings=WINDOW, seed=3)  # fmt: skip
    assert out["ratio"][0] > 1
    assert out["pull"][0] > 5
    assert out["ratio"][2] < 1
    assert out["pull"][2] < -5
    assert out["ratio"][2] == pytest.approx(1 / 1.15, abs=4 * out["ratio_err"][2])


def test_window_and_fiducial_region_select_the_pairs():
    rows = _rows(1, n=2000)
    rows["m"][:500] = 0.9  # far from M: outside the window
    rows["weight"][500:600] = 0.0  # outside the data's region: weight 0

    class QRegion:  # a fiducial region q_T < Q_CUT at every mass
        def contains(self, m, q, e):
            return np.asarray(q) < Q_CUT

    out = detector_closure(ToyFlow(), rows, M, CTAUS, GEO, settings=WINDOW, seed=1)
    assert out["n_pairs"] == 1400
    inside = detector_closure(ToyFlow(), rows, M, CTAUS, GEO, seed=1,
                              settings=ClosureSettings(0.03, fiducial=QRegion()))  # fmt: skip
    n_in = int(np.sum(rows["qT"][600:] < Q_CUT))
    # a pair inside is kept unless none of its 4 flow samples is inside: binomial, p the
    # toy's fraction outside to the 4th power
    p_out = np.mean(_kinematics(np.random.default_rng(0), 200_000)[0] >= Q_CUT) ** 4
    mean, sd = n_in * (1 - p_out), np.sqrt(n_in * p_out * (1 - p_out))
    assert abs(inside["n_pairs"] - mean) < 5 * sd + 1
    empty = detector_closure(ToyFlow(), rows, 0.3, CTAUS, GEO, settings=WINDOW, seed=1)
    assert empty["n_pairs"] == 0
    assert empty["ratio"] == [None] * 3
    assert "why" in empty


def test_moved_energy_keeps_pt_and_rapidity():
    q, e, m0, m1 = 0.7, 40.0, 0.45, 0.6
    e1 = moved_energy(q, e, m0, m1)
    mt0, mt1 = np.hypot(q, m0), np.hypot(q, m1)
    assert np.arccosh(e1 / mt1) == pytest.approx(np.arccosh(e / mt0), rel=1e-12)


def _flow_dir(tmp_path, cfg, pairs=None, sha=None):
    """A flow directory with only the meta.json that flow_rows reads."""
    import json

    d = tmp_path / "run" / "flow"
    d.mkdir(parents=True, exist_ok=True)
    meta = {"inputs": [{"path": str(pairs or tmp_path / "run" / "pairs.parquet")}],
            "config_sha256": sha or cfg.section_sha256("flow")}  # fmt: skip
    (d / "meta.json").write_text(json.dumps({"meta": meta}))
    return d


def test_flow_rows_needs_the_flow_its_pairs_and_its_recipe(tmp_path):
    """One clear line each: no flow there, no pairs where its meta.json says, a flow trained
    with another flow section (its rows cannot be rebuilt with this one)."""
    from gammastar.errors import InputError

    cfg = stated_config({"name": "t", "output": str(tmp_path / "run")},
                           source=str(tmp_path / "c.yaml"))  # fmt: skip
    with pytest.raises(InputError, match=r"no readable flow meta\.json"):
        flow_rows(cfg, tmp_path / "nowhere")
    d = _flow_dir(tmp_path, cfg)
    with pytest.raises(InputError, match=r"no pairs\.parquet of the flow"):
        flow_rows(cfg, d)
    (tmp_path / "run" / "pairs.parquet").write_bytes(b"")
    _flow_dir(tmp_path, cfg, sha="0" * 64)
    with pytest.raises(InputError, match="trained with another flow section"):
        flow_rows(cfg, tmp_path / "run")  # the run directory: its flow/ is found


def test_closure_record_says_why_it_skips(tmp_path):
    """Without the pairs beside the flow the reach records why (nothing else is lost); without
    a flow in the config there is no record."""
    from types import SimpleNamespace

    from gammastar.reach.flow_closure import closure_record

    cfg = stated_config({"name": "t", "output": str(tmp_path / "run")},
                           source=str(tmp_path / "c.yaml"))  # fmt: skip
    _flow_dir(tmp_path, cfg)
    inp = SimpleNamespace(source=Source.from_model(ToyFlow()), geometry=GEO)
    rec = closure_record(cfg, inp, None)
    assert "no pairs.parquet of the flow" in rec["skipped"]
    no_flow = cfg.model_copy(update={"reach": cfg.reach.model_copy(update={"flow": None})})
    assert closure_record(no_flow, inp, None) is None


def test_pull_with_the_quoted_kinematic_model():
    """With the reach's ensemble spread the pull is against it and the pairs' statistics in
    quadrature (relative sizes: the model's r times the ratio)."""
    from types import SimpleNamespace

    from gammastar.reach.flow_closure import _with_model

    kin = {"rel": [0.1, 0.03], "at_eps_low": [0.1, 0.02], "at_eps_high": [0.1, None]}
    inp = SimpleNamespace(masses=np.array([0.3, 0.5]))
    row = {"ratio": 1.05, "ratio_err": 0.03, "pull": 0.05 / 0.03}
    _with_model(row, kin, inp, 0.49, "eps_low")
    assert row["kinematic_model"] == pytest.approx(0.02, rel=1e-15)  # copied from kin
    assert row["pull_with_model"] == pytest.approx(0.05 / np.hypot(0.03, 1.05 * 0.02), rel=1e-12)
    high = {"ratio": 1.05, "ratio_err": 0.03, "pull": 0.05 / 0.03}
    _with_model(high, kin, inp, 0.49, "eps_high")  # no size there: nothing added
    assert "pull_with_model" not in high
    _with_model(high, None, inp, 0.49, "eps_low")
    assert "pull_with_model" not in high


def test_no_ratio_from_a_handful_of_pairs():
    """Five pairs carry at most five effective pairs' worth of acceptance (Kish): below
    MIN_CARRIERS no ratio is quoted, the pairs' acceptance still is."""
    from gammastar.reach.flow_closure import MIN_CARRIERS

    out = detector_closure(ToyFlow(), _rows(2, n=5), M, CTAUS, GEO, settings=WINDOW, seed=1)
    assert out["ratio"] == [None] * 3
    assert out["pull"] == [None] * 3
    assert all(c <= 5 < MIN_CARRIERS for c in out["carriers"])
    assert all(p is not None and p > 0 for p in out["pairs"])


def test_the_warning_trusts_only_pulls_carried_by_many_pairs(monkeypatch, tmp_path, caplog):
    """A 4σ pull warns once per mass when at least WARN_CARRIERS effective pairs carry it, not
    when 20 do (heavy-tailed ratios: the ε_high pulls' rms 1.1-1.6 on the mock)."""
    from types import SimpleNamespace

    import gammastar.reach.flow_closure as fc
    from gammastar.errors import GammastarError
    from gammastar.physics import darkphoton

    cfg = stated_config({"name": "t", "output": str(tmp_path / "run"),
                            "validate": {"masses": [0.5]}},
                           source=str(tmp_path / "c.yaml"))  # fmt: skip
    monkeypatch.setattr(fc, "flow_rows", lambda config, path: ({}, tmp_path / "p.parquet"))

    def fake(carriers):
        def closure(flow, rows, mass, ctaus, geometry, **kw):
            n = len(ctaus)
            return {"n_pairs": 100, "pairs": [0.5] * n, "flow": [0.6] * n, "ratio": [1.2] * n,
                    "ratio_err": [0.05] * n, "pull": [4.0] * n, "carriers": [carriers] * n}

        return closure

    res = SimpleNamespace(masses=np.array([0.5]), eps=np.array([1e-8, 1e-7, 1e-6]),
                          boundaries={"0": (np.array([1e-8]), np.array([1e-6]))},
                          nsig=np.ones((1, 3)))  # fmt: skip
    inp = SimpleNamespace(source=Source.from_model(ToyFlow()), geometry=GEO,
                          masses=np.array([0.5]), nuisance_record=None)  # fmt: skip

    def warned():
        return [r for r in caplog.records if "differs from its own pairs" in r.getMessage()]

    monkeypatch.setattr(fc, "detector_closure", fake(20.0))
    with caplog.at_level("WARNING", logger="gammastar.reach.flow_closure"):
        rec = fc.closure_record(cfg, inp, res)
    assert not warned()
    assert rec["n_compared"] == 2
    assert rec["ndf"] == 0  # χ² only over the pulls the warning trusts
    assert rec["max_abs_pull"] is None
    low, high = rec["points"][0]["eps_low"], rec["points"][0]["eps_high"]
    assert low["carriers"] == pytest.approx(20.0, rel=1e-15)  # copied from the fake closure
    # each boundary at its own ε and that ε's cτ (darkphoton.ctau at the mass)
    # copied from res.boundaries
    assert (low["eps"], high["eps"]) == pytest.approx((1e-8, 1e-6), rel=1e-15)
    assert low["ctau"] == pytest.approx(float(darkphoton.ctau(0.5, 1e-8)), rel=1e-12)
    assert high["ctau"] == pytest.approx(float(darkphoton.ctau(0.5, 1e-6)), rel=1e-12)
    monkeypatch.setattr(fc, "detector_closure", fake(fc.WARN_CARRIERS))
    with caplog.at_level("WARNING", logger="gammastar.reach.flow_closure"):
        rec = fc.closure_record(cfg, inp, res)
    assert len(warned()) == 1
    assert rec["ndf"] == 2
    assert rec["max_abs_pull"] == pytest.approx(4.0, rel=1e-15)  # the fake closure's pull

    def broken(*args, **kwargs):
        raise GammastarError("the flow's samples stay unphysical")

    monkeypatch.setattr(fc, "detector_closure", broken)  # a check never stops the reach
    rec = fc.closure_record(cfg, inp, res)
    assert "unphysical" in rec["points"][0]["why"]
    assert rec["n_compared"] == 0


class MassFlow:
    """A flow whose kinematics scale with the mass (q_T and E × (1 + 10 (m − 0.5))); with
    ``centre`` it ignores the masses it is given and samples there: an unpaired comparison."""

    mass_range = (0.2, 1.2)

    def __init__(self, centre=None):
        self.centre = centre

    def sample(self, masses, n, seed=None):
        m = np.full(n, self.centre) if self.centre is not None else np.asarray(masses)
        q, e = _kinematics(np.random.default_rng(seed), n)
        scale = 1 + 10 * (m - 0.5)
        return {"qT": q * scale, "E": e * scale}


def test_pairing_each_pair_with_its_own_mass():
    """80% of the window's pairs sit at 0.52 GeV, whose kinematics are 1.2× those at 0.5 GeV:
    the flow drawn at each pair's mass closes (|pull| < 4), the same flow drawn at the window's
    centre does not (|pull| > 5 at every cτ; 8.8-11 in four trials)."""
    rng = np.random.default_rng(5)
    n = 3000
    m = np.where(rng.random(n) < 0.8, rng.normal(0.52, 0.003, n), rng.uniform(0.47, 0.53, n))
    q, e = _kinematics(rng, n)
    scale = 1 + 10 * (m - 0.5)
    rows = {"m": m, "qT": q * scale, "E": e * scale, "weight": rng.uniform(0.5, 2.0, n)}
    paired = detector_closure(MassFlow(), rows, M, CTAUS, GEO, settings=WINDOW, seed=2)
    centre = detector_closure(MassFlow(0.5), rows, M, CTAUS, GEO, settings=WINDOW, seed=2)
    assert np.all(np.abs(paired["pull"]) < 4)
    assert np.all(np.abs(centre["pull"]) > 5)


def test_no_flow_sample_inside_the_region():
    """A flow all of whose samples leak out of the fiducial region: said, no ratio (not the
    error of a draw of no samples)."""

    class Leaky:
        mass_range = (0.2, 1.2)

        def sample(self, masses, n, seed=None):
            return {"qT": np.full(n, 50.0), "E": np.full(n, 60.0)}

    class QRegion:
        def contains(self, m, q, e):
            return np.asarray(q) < Q_CUT

    out = detector_closure(Leaky(), _rows(3, n=50), M, CTAUS, GEO, seed=1,
                           settings=ClosureSettings(0.03, fiducial=QRegion()))  # fmt: skip
    assert out["why"] == "no flow sample inside the fiducial region"
    assert out["ratio"] == [None] * 3


def test_the_region_applies_from_the_seam_up():
    """Below a both-channels seam the pairs are the full phase space: none is cut there."""

    class Nothing:
        def contains(self, m, q, e):
            return np.zeros(np.shape(m), dtype=bool)

    rows = _rows(4, n=300)
    below = detector_closure(ToyFlow(), rows, M, CTAUS, GEO, seed=1,
                             settings=ClosureSettings(0.03, Nothing(), seam=0.6))  # fmt: skip
    assert below["n_pairs"] == 300
    above = detector_closure(ToyFlow(), rows, M, CTAUS, GEO, seed=1,
                             settings=ClosureSettings(0.03, Nothing(), seam=0.4))  # fmt: skip
    assert above["n_pairs"] == 0


def test_a_given_source_is_not_compared_with_the_configs_flow(tmp_path, monkeypatch):
    """run_reach(source=...) draws another source's kinematics: the closure of the config's
    flow (reach.flow, its default) does not apply to it and is not computed."""
    from _phys_figures import skip_reach_figures
    from test_reach import make_config

    from gammastar.physics.sampling import ParametricSampler
    from gammastar.reach.stage import run_reach

    skip_reach_figures(monkeypatch)  # the document (the figures: test_reach.py)
    cfg = make_config(tmp_path, mass_points=3, channels=["mumu"],
                      flow=str(tmp_path / "run" / "flow"))  # fmt: skip
    doc = run_reach(cfg, source=ParametricSampler()).document
    assert "flow_closure" not in doc
