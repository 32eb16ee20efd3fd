"""The reach's ``mock_normalisation`` nuisance: the mock's ⟨n_ω⟩ uncertainty carried from the
mock file's meta through ``yields.json`` into the workspaces as one normsys that widens the
CLs limit by the log-normal it states; absent for real data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, optimize

from gammastar.config.mock import MockConfig
from gammastar.reach.stats import upper_limit
from gammastar.reach.stats.model import Channel, Model
from gammastar.reach.stats.workspace import build_spec
from gammastar.source.production import MOCK_NUISANCE, with_mock_nuisance
from gammastar.yields.npot import mock_normalisation


def _meta(rel: float | None) -> dict:
    return {"mock_normalisation": {"n_omega_per_collision": 0.69, "target": "Pb",
                                   "rel_uncertainty": rel, "origin": "test"}}  # fmt: skip


def test_added_with_the_recorded_size_and_absent_otherwise():
    m = np.array([0.3, 0.5])
    nu, rec = with_mock_nuisance({"data_stat": np.array([0.1, 0.2])}, None, _meta(0.25), m)
    np.testing.assert_allclose(nu[MOCK_NUISANCE], [0.25, 0.25])
    assert nu["data_stat"].tolist() == [0.1, 0.2]
    assert rec["nuisances"][MOCK_NUISANCE]["rel"] == [0.25, 0.25]
    # real data (no record), an explicit n_omega (no size): nothing added
    for meta in ({}, _meta(None), {"mock_normalisation": None}):
        assert with_mock_nuisance(None, None, meta, m) == (None, None)


def test_workspace_modifier_has_the_size():
    r = MockConfig().normalisation()["rel_uncertainty"]
    model = Model([Channel("mumu", [1.0], [0.5]), Channel("ee", [0.5], [0.2])], n_pot_unc=0.0,
                  signal_nuisances={MOCK_NUISANCE: r})  # fmt: skip
    spec = build_spec(model)
    for ch in spec["channels"]:
        mods = {x["name"]: x for x in ch["samples"][0]["modifiers"]}
        assert mods[MOCK_NUISANCE]["type"] == "normsys"
        assert mods[MOCK_NUISANCE]["data"]["hi"] == pytest.approx(1 + r, rel=1e-12)
        assert mods[MOCK_NUISANCE]["data"]["lo"] == pytest.approx(1 / (1 + r), rel=1e-12)


def _limit_zero_background(sigma: float, cl: float = 0.9) -> float:
    """Zero background, zero observed: CLs(mu) = E[exp(-mu s)] over s log-normal of width
    sigma (median 1); the limit solves CLs = 1 - cl."""

    def cls_mu(mu: float) -> float:
        f = lambda x: (
            math.exp(-mu * math.exp(sigma * x)) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        )
        return integrate.quad(f, -12, 12, epsabs=1e-13, limit=200)[0]

    return optimize.brentq(lambda mu: cls_mu(mu) - (1 - cl), 0.1, 50, xtol=1e-10)


@pytest.mark.parametrize("r", [0.1, 0.5])
def test_widens_the_limit_as_its_log_normal(r):
    ch = [Channel("mumu", [1.0], [1e-9], observed=[0])]
    without = upper_limit(Model(ch, n_pot_unc=0.0), cl=0.9, method="exact").observed
    with_ = upper_limit(
        Model(ch, n_pot_unc=0.0, signal_nuisances={MOCK_NUISANCE: r}), cl=0.9, method="exact"
    ).observed
    # direction: a rate uncertainty widens the limit (no systematics: ln 10 = 2.303)
    assert without == pytest.approx(math.log(10), rel=1e-6)
    assert with_ > without
    # magnitude: the exact construction integrates the log-normal of width ln(1 + r); the
    # quadrature's and root search's tolerances are ~1e-7 (tests/test_uncertainties.py)
    assert with_ == pytest.approx(_limit_zero_background(math.log1p(r)), rel=1e-5)


def test_yields_meta_reads_the_mock_files(tmp_path):
    import uproot

    paths = []
    for i, rel in enumerate((0.2, 0.3)):
        p = tmp_path / f"mock{i}.root"
        with uproot.recreate(p) as f:
            f["meta"] = json.dumps({"n_pot": 1e10, **_meta(rel)})
        paths.append(str(p))
    got = mock_normalisation("input_meta:" + ",".join(paths))
    assert got["rel_uncertainty"] == pytest.approx(0.3)  # the larger of the files
    assert got["target"] == "Pb"
    assert mock_normalisation("config:beam.n_pot") is None
    # a file without the record (real data, an older mock): no nuisance
    p = tmp_path / "data.root"
    with uproot.recreate(p) as f:
        f["meta"] = json.dumps({"n_pot": 1e10})
    assert mock_normalisation(f"input_meta:{paths[0]},{p}") is None
