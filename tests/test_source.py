"""The A′ production of every consumer, :class:`gammastar.source.source.Source`: its yield at a mass,
its kinematics and the ``extrapolated`` label (True exactly where a sample comes from an
extrapolation model: outside the data's fiducial region or outside the kinematics' mass range),
and the config's choices (``reach.extrapolation: label/refuse``)."""

from __future__ import annotations

import numpy as np
import pytest
from _experiment import stated_config
from _tolerance import assert_same_decisions

from gammastar.core.artifacts import make_meta, write_json
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.acceptance import draw
from gammastar.source.geometry import Geometry
from gammastar.source.production import Yields, load_yields
from gammastar.source.source import Source

MASSES = np.linspace(0.215, 1.1, 60)
GEO = Geometry(l1=82.0, l2=157.0, theta_min=0.0, theta_max=0.05)


class InsideOnly:
    """A stand-in for a flow trained in the fiducial region: the analytic sampler's draws
    inside ``region`` only (accept-reject), with a trained mass range."""

    mass_range = (0.25, 1.0)

    def __init__(self, region):
        self.region = region

    def sample(self, mass, n, seed=None):
        rng = np.random.default_rng(seed)
        q, e = np.empty(0), np.empty(0)
        while q.size < n:
            s = ParametricSampler().sample(mass, 4 * n, seed=int(rng.integers(2**63)))
            keep = self.region.contains(np.full(4 * n, mass), s["qT"], s["E"])
            q, e = np.concatenate([q, s["qT"][keep]]), np.concatenate([e, s["E"][keep]])
        return {"qT": q[:n], "E": e[:n]}


class ToyFlow:
    """A flow-like model: a trained mass range, ``extrapolate`` to sample beyond it (else an
    error, as :meth:`gammastar.flow.model.FlowModel.sample`); records the calls' ``extrapolate``."""

    mass_range = (0.3, 0.6)

    def __init__(self):
        self.calls = []

    def sample(self, mass, n, seed=None, *, extrapolate=False):
        self.calls.append(extrapolate)
        if not extrapolate and not self.mass_range[0] <= mass <= self.mass_range[1]:
            raise GammastarError(f"mass {mass} outside the trained range")
        return ParametricSampler().sample(mass, n, seed=seed)


@pytest.fixture(scope="module")
def region():
    """A fiducial region like the demo's (both muons 35-120 mrad with E > 3 GeV, A ≥ 0.05)."""
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
    from gammastar.corrections.pair_acceptance.table import PairAcceptance

    pa = PairAcceptance.build(LeptonAcceptance(3.0, 0.035, 0.12), lepton_mass=0.1057,
                              mass_range=(0.2, 1.1), p_max=200.0, grid=(4, 12, 12),
                              quadrature=(6, 6))  # fmt: skip
    return FiducialRegion(pa, 0.05)


def yields_file(path, region=None, seam=None):
    """The yields of tests/test_reach.py (y = 3e-3 e^{−(m − 0.2)/0.4}, 5% errors), with an
    ``extrapolation`` block (f_F = 0.4, the docs/explanation/physics.md defaults fitted) when ``region``."""
    y = 3e-3 * np.exp(-(MASSES - 0.2) / 0.4)
    doc = {
        "aprime": {"mass": MASSES, "per_pot_per_eps2": y, "stat_err": 0.05 * y},
        "meta": make_meta(config_sha256=None, seed=None, n_pot=1e13),
    }
    if region is not None:
        m = np.linspace(0.2, 1.1, 10)
        doc["extrapolation"] = {
            "mass": m.tolist(), "bin_edges": np.linspace(0.15, 1.15, 11).tolist(),
            "fiducial_fraction": [0.4] * 10, "temperature": [0.2] * 10, "y_mean": [3.37] * 10,
            "y_sigma": [1.2] * 10, "n_eff": [1e3] * 10, "fiducial": region.as_dict(),
            "model": "toy model",
        }  # fmt: skip
        if seam is not None:
            doc["extrapolation"].update(seam=seam, channel="mumu")
    write_json(path, doc, force=True)
    return path


def make_config(tmp_path, region=None, seam=None, **reach):
    rc = {"yields": str(yields_file(tmp_path / "yields.json", region, seam)), "flow": None,
          "n_pot": 1.4e17, "target_interaction_lengths": "dump", "channels": ["mumu"], **reach}
    return stated_config(
        {"name": "t", "output": str(tmp_path / "run"), "beam": {"interaction_lengths": 0.01},
         "reach": rc, "events": {"beam_spot_sigma": [0.0, 0.0],
                                 "target_interaction_length": 0.1759}},
        source=str(tmp_path / "cfg.yaml"),
    )  # fmt: skip


# --------------------------------------------------------------------------- labels
def test_a_model_beyond_the_mass_range_is_labelled_there_and_only_there():
    """Inside the kinematics' mass range (its ends included) the kinematics' draws, nothing
    labelled; outside it the model beyond, every sample labelled; the same seeds reach both
    models, so the draws equal theirs."""
    inner = ParametricSampler(mass_range=(0.2, 1.0))
    beyond = ParametricSampler(temperature=0.3)
    src = Source.from_model(inner).extended(beyond)
    assert src.mass_range is None  # any mass: the model beyond covers the rest
    assert src.extrapolates
    for mass, model, labelled in ((0.2, inner, False), (0.5, inner, False), (1.0, inner, False),
                                  (0.1, beyond, True), (1.5, beyond, True)):  # fmt: skip
        out = src.sample(mass, 500, seed=7)
        ref = model.sample(mass, 500, seed=7)
        np.testing.assert_allclose(out["qT"], ref["qT"], rtol=1e-15)
        np.testing.assert_allclose(out["E"], ref["E"], rtol=1e-15)
        assert out["extrapolated"].dtype == bool
        assert out["extrapolated"].tolist() == [labelled] * 500, mass


def test_labelled_source_labels_every_sample_at_every_mass():
    src = Source.labelled(ParametricSampler())
    assert src.mass_range is None
    assert src.extrapolates
    for mass in (0.1, 0.5, 3.0):
        assert src.sample(mass, 200, seed=1)["extrapolated"].all()


def test_the_flow_at_any_mass_extrapolates_itself_and_is_labelled_outside():
    """Source.at_any_mass: the flow as trained inside its range (``extrapolate`` not asked,
    nothing labelled), the flow itself with ``extrapolate=True`` outside (labelled)."""
    flow = ToyFlow()
    src = Source.at_any_mass(flow)
    assert src.mass_range is None
    assert not src.sample(0.45, 100, seed=2)["extrapolated"].any()
    assert src.sample(0.9, 100, seed=2)["extrapolated"].all()
    assert flow.calls == [False, True]
    with pytest.raises(GammastarError, match="outside the trained range"):
        Source.from_model(flow).sample(0.9, 10, seed=2)


def test_labels_are_exactly_the_samples_outside_the_fiducial_region(tmp_path, region):
    """reach.extrapolation: label with a flow that lives in the fiducial region F: a sample is
    labelled extrapolated exactly where it lies outside F (the fitted model's draws are kept
    outside F only), and the labelled share is 1 − f_F = 0.6 within 5 binomial standard
    errors (n = 4000: ±0.039)."""
    cfg = make_config(tmp_path, region)
    yields = load_yields(cfg.resolve(cfg.reach.yields))
    src = Source.from_config(cfg, yields, member=InsideOnly(region))
    assert src.extrapolates
    assert src.split is not None
    assert "inside the fiducial region; toy model fitted to the fiducial data outside" in (
        src.description
    )
    n, mass = 4000, 0.5
    out = src.sample(mass, n, seed=3)
    def outside(q, e):
        return ~region.contains(np.full(q.size, mass), q, e)

    # the source's labels against F's own answer on the same samples (tests/_tolerance.py)
    assert_same_decisions(out["extrapolated"], outside(out["qT"], out["E"]), outside,
                          (out["qT"], out["E"]))  # fmt: skip
    assert abs(out["extrapolated"].mean() - 0.6) < 5 * np.sqrt(0.6 * 0.4 / n)
    # through the acceptance's machinery the labels stay with their samples
    from gammastar.yields.extrapolation.samplers import RecordingSampler

    rec = RecordingSampler(src)
    ks = draw(rec, mass, n, GEO, seed=3)
    got = rec.last
    assert_same_decisions(ks.extrapolated, outside(got["qT"], got["E"]), outside,
                          (got["qT"], got["E"]))  # fmt: skip


def test_label_without_a_flow_labels_everything_and_refuse_keeps_the_flow_alone(
    tmp_path, region
):
    """label without reach.flow: the fitted model everywhere, every sample labelled; refuse:
    the flow alone (nothing labelled: the acceptance carries no extrapolated part, None)."""
    cfg = make_config(tmp_path, region)
    yields = load_yields(cfg.resolve(cfg.reach.yields))
    model = Source.from_config(cfg, yields)
    assert "(everywhere: no flow)" in model.description
    assert model.sample(0.5, 300, seed=4)["extrapolated"].all()
    refuse = cfg.model_copy(update={"reach": cfg.reach.model_copy(update={"extrapolation":
                                                                          "refuse"})})  # fmt: skip
    flow = InsideOnly(region)
    alone = Source.from_config(refuse, yields, member=flow)
    assert alone.kinematics is flow
    assert not alone.extrapolates
    assert alone.description.endswith("(fiducial region only: reach.extrapolation refuse)")
    assert not alone.sample(0.5, 300, seed=4)["extrapolated"].any()
    assert draw(alone, 0.5, 300, GEO, seed=4).extrapolated is None


def test_refuse_without_a_flow_and_refuse_on_a_both_channels_run_are_config_errors(
    tmp_path, region
):
    from gammastar.source.setup import aprime_source

    cfg = make_config(tmp_path, region, extrapolation="refuse")
    yields = load_yields(cfg.resolve(cfg.reach.yields))
    with pytest.raises(ConfigError, match=r"reach\.extrapolation: 'refuse' needs reach\.flow"):
        Source.from_config(cfg, yields)
    cfg = make_config(tmp_path, region, seam=0.4, extrapolation="refuse")
    with pytest.raises(ConfigError, match=r"'refuse' does not apply to a both-channels run"):
        aprime_source(cfg, 0.5)


def test_a_mass_outside_the_range_is_refused_or_labelled_with_extrapolate(tmp_path):
    """The events' set-up: a mass outside the kinematics' range is an error naming
    --extrapolate; with it the analytic model there, every sample labelled."""
    from gammastar.source.setup import aprime_source

    cfg = make_config(tmp_path)
    narrow = ParametricSampler(mass_range=(0.3, 0.6))
    with pytest.raises(InputError, match=r"outside the flow's mass range.*--extrapolate"):
        aprime_source(cfg, 0.8, source=narrow)
    src = aprime_source(cfg, 0.8, extrapolate=True, source=narrow)["source"]
    assert src.description.endswith("outside the flow's range: extrapolated")
    assert src.sample(0.8, 100, seed=5)["extrapolated"].all()
    inside = aprime_source(cfg, 0.5, source=narrow)["source"]
    assert inside.kinematics is narrow
    assert inside.description == "given"
    with pytest.raises(InputError, match="no A' yield there"):
        aprime_source(cfg, 1.5, extrapolate=True, source=narrow)


# --------------------------------------------------------------------------- yields
def test_yield_through_the_source_is_the_log_linear_interpolation():
    """y = 4 at 1 GeV and 16 at 2 GeV with 10% and 20%: at 1.5 GeV √(4·16) = 8 with
    √(0.5²·0.1² + 0.5²·0.2²) (independent bins); NaN outside; none without yields."""
    y = Yields(np.array([1.0, 2.0]), np.array([4.0, 16.0]), np.array([0.4, 3.2]), {})
    src = Source.from_model(ParametricSampler(), y)
    val, rel = src.yield_at([1.0, 1.5, 2.5])
    np.testing.assert_allclose(val[:2], [4.0, 8.0], rtol=1e-12)
    np.testing.assert_allclose(rel[:2], [0.1, np.hypot(0.05, 0.1)], rtol=1e-12)
    assert np.isnan(val[2])
    assert np.isnan(rel[2])
    with pytest.raises(GammastarError, match="no yields"):
        Source.from_model(ParametricSampler()).yield_at(1.5)


def test_from_model_keeps_a_source_and_puts_the_yields_in():
    y = Yields(np.array([1.0, 2.0]), np.array([4.0, 16.0]), np.array([0.4, 3.2]), {})
    src = Source.from_model(ParametricSampler(), description="mine")
    assert Source.from_model(src) is src
    with_y = Source.from_model(src, y)
    assert with_y.yields is y
    assert with_y.description == "mine"
    assert with_y.kinematics is src.kinematics


# --------------------------------------------------------------------------- kinematics
def test_given_arrays_come_back_in_order():
    q, e = np.array([0.1, 0.2, 0.3, 0.4]), np.array([30.0, 40.0, 50.0, 60.0])
    src = Source.given(q, e)
    out = src.sample(0.5, 3, seed=None)
    np.testing.assert_array_equal(out["qT"], q[:3])  # returned, not computed: exact
    np.testing.assert_array_equal(out["E"], e[:3])
    assert not out["extrapolated"].any()
    assert not src.extrapolates
    assert src.mass_range is None
    with pytest.raises(GammastarError, match="2 qT but 3 E"):
        Source.given([0.1, 0.2], [1.0, 2.0, 3.0])


def test_a_seeded_sample_is_reproducible():
    src = Source.from_model(ParametricSampler())
    a, b = src.sample(0.5, 1000, seed=11), src.sample(0.5, 1000, seed=11)
    for k in ("qT", "E"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-15)
    c = src.sample(0.5, 1000, seed=12)
    assert not np.allclose(a["qT"], c["qT"])


def test_the_pairs_as_kinematics():
    """Source.from_pairs: the pairs within the window, drawn ∝ their weight (negative
    weights never), E set to the asked mass at the pair's momentum: E² − m² = E_pair² −
    m_pair² (rounding of the squares: 1e-12 relative)."""
    m = np.array([0.49, 0.5, 0.51, 0.7])
    qt = np.array([0.1, 0.2, 0.3, 0.4])
    e = np.array([20.0, 30.0, 40.0, 50.0])
    w = np.array([1.0, -1.0, 3.0, 1.0])
    src = Source.from_pairs(m, qt, e, w, half_width=0.05)
    assert src.mass_range == (0.49, 0.7)  # the positive-weight pairs
    out = src.sample(0.5, 4000, seed=6)
    assert set(np.round(out["qT"], 12)) == {0.1, 0.3}
    p2 = {0.1: 20.0**2 - 0.49**2, 0.3: 40.0**2 - 0.51**2}
    want = np.array([p2[round(float(x), 12)] for x in out["qT"]])
    np.testing.assert_allclose(out["E"] ** 2 - 0.25, want, rtol=1e-12)
    share = np.mean(np.isclose(out["qT"], 0.3))  # 3/4, within 5 binomial standard errors
    assert abs(share - 0.75) < 5 * np.sqrt(0.75 * 0.25 / 4000)
    with pytest.raises(InputError, match="no pair within"):
        src.sample(0.6, 10, seed=1)


def test_bad_kinematics_and_an_empty_source_are_errors():
    with pytest.raises(InputError, match="mapping with 'qT' and 'E'"):
        Source.from_model(lambda mass, n, seed: {"q": np.zeros(n)}).sample(0.5, 3)
    with pytest.raises(GammastarError, match="give the kinematics"):
        Source(None)


def test_a_source_that_cannot_extrapolate_gives_the_acceptance_no_labels():
    """The reach tells 'nothing extrapolated' (an all-False label) from 'no extrapolation
    model' (``None``: reach.json says fiducial region only) by the source."""
    assert draw(Source.from_model(ParametricSampler()), 0.4, 200, GEO, seed=1).extrapolated is None
    lab = draw(Source.labelled(ParametricSampler()), 0.4, 200, GEO, seed=1).extrapolated
    assert lab is not None
    assert lab.all()

