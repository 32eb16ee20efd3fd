"""`gammastar export` (gammastar.formats.export, gammastar.formats.hs3): a run's reach and A′ yields
as a HEPData submission that hepdata-validator accepts, and each mass point's likelihood as HS3
JSON whose likelihood and asymptotic CLs in RooFit/RooStats are pyhf's on the same workspace.

The run directory is synthetic: reach.json, yields.json and two pyhf workspaces written by
gammastar's own writers (``write_json`` with the artifacts' schemas, ``stats.workspace.build_spec``), with
marker numbers; no pipeline runs here.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pyhf
import pytest
import yaml

from gammastar.cli import main
from gammastar.core import rundir
from gammastar.core.artifacts import make_meta
from gammastar.errors import EnvironmentFailure, InputError, OutputExistsError
from gammastar.formats.hs3 import roostats_cls, workspace_to_hs3
from gammastar.reach.stats.model import Channel, Model
from gammastar.reach.stats.workspace import build_spec, quiet_pyhf

pytest.importorskip("hepdata_lib")
from gammastar.formats.export import export_run, validate_submission

MASSES = (0.3, 0.6)


def _model(mass: float) -> Model:
    """A two-channel gammastar model with every kind of nuisance the reach writes: N_POT,
    a named signal nuisance, efficiency, MC statistics (staterror), background κ; observed
    counts near the background so that the CLs are neither 0 nor 1."""
    return Model(
        [
            Channel("ee", [0.6], [1.5], observed=[2], bkg_kappa=1.3, eff_unc=0.029, mc_stat=0.05),
            Channel("mumu", [0.4], [0.8], observed=[1], eff_unc=0.029),
        ],
        n_pot_unc=0.2,
        signal_nuisances={"data_stat": 0.04 + 0.01 * mass},
    )


def write_run(run: Path) -> None:
    """A run directory with what `gammastar export` reads."""
    rd = rundir.RunDir(run)
    meta = make_meta(config_sha256=None, seed=1, stage="reach", method="exact", n_pot=1.4e17)
    band = {"mass": list(MASSES), "eps_low": [1.25e-7, None], "eps_high": [3.5e-5, None]}
    wide = {"mass": list(MASSES), "eps_low": [9.0e-8, 4.0e-7], "eps_high": [5.0e-5, 6.0e-6]}
    rd.write_json(
        rundir.REACH,
        {
            "cl": 0.9,
            "expected": band,
            "bands": {"-2": wide, "-1": wide, "+1": band, "+2": band},
            "observed": {"mass": list(MASSES), "eps_low": [1.5e-7, None], "eps_high": [3e-5, None]},
            "meta": {**meta, "workspaces_poi": "n_signal = expected signal events"},
        },
    )
    y = [2.5e-3, 1.0e-3, 4.0e-4]
    rd.write_json(
        rundir.YIELDS,
        {
            "aprime": {
                "mass": [0.25, 0.35, 0.45],
                "bin_edges": [0.2, 0.3, 0.4, 0.5],
                "per_pot_per_eps2": y,
                "stat_err": [0.1 * v for v in y],
            },
            "uncertainties": {
                "mass": [0.25, 0.35, 0.45],
                "nuisances": {
                    "data_stat": {"kind": "normsys", "rel": [0.1] * 3, "origin": "stat_err"},
                    "like_sign_r": {"kind": "normsys", "rel": [0.02, 0.0, 0.03], "origin": "r"},
                    "eta_mumu": {"kind": "normsys", "rel": [0.0] * 3, "origin": "none"},
                },
            },
            "meta": make_meta(config_sha256=None, seed=None, n_pot=2.0e11),
        },
    )
    index = []
    for m in MASSES:
        name = rundir.workspace_name(m)
        rd.path(name).parent.mkdir(parents=True, exist_ok=True)
        rd.path(name).write_text(json.dumps(build_spec(_model(m))))
        index.append({"mass": m, "file": name})
    rd.write_json(rundir.WORKSPACES_INDEX, {"workspaces": index, "meta": meta})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    write_run(base / "run")
    return base / "run", export_run(base / "run", base / "out")


def _table(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_submission_is_valid_for_hepdata_validator(exported):
    _, res = exported
    assert validate_submission(res.path) == []
    assert validate_submission(res.archive) == []
    assert res.tables == ("Reach", "Aprime yield")


def test_the_reach_table_holds_reach_json(exported):
    run, res = exported
    reach = json.loads((run / "reach.json").read_text())
    table = _table(res.path / "reach.yaml")
    (m,) = table["independent_variables"]
    assert m["header"] == {"name": "m_A'", "units": "GeV"}
    assert [v["value"] for v in m["values"]] == pytest.approx(MASSES)
    columns = {
        d["header"]["name"]: [v["value"] for v in d["values"]] for d in table["dependent_variables"]
    }
    # expected (median), four bands and the observed limit, each a lower and an upper edge
    assert len(columns) == 12
    assert columns["epsilon lower edge, expected (median)"] == [pytest.approx(1.25e-7), "-"]
    assert columns["epsilon upper edge, expected −2σ"] == pytest.approx([5.0e-5, 6.0e-6])
    assert columns["epsilon lower edge, observed"][0] == pytest.approx(
        reach["observed"]["eps_low"][0]
    )
    qualifiers = {q["name"]: q["value"] for q in table["dependent_variables"][0]["qualifiers"]}
    assert qualifiers["CL"] == "90%"
    assert qualifiers["CLs method"] == "exact"


def test_the_yield_table_has_its_bins_and_its_uncertainties(exported):
    _, res = exported
    table = _table(res.path / "aprime_yield.yaml")
    (m,) = table["independent_variables"]
    assert [v["low"] for v in m["values"]] == pytest.approx([0.2, 0.3, 0.4])
    assert [v["high"] for v in m["values"]] == pytest.approx([0.3, 0.4, 0.5])
    (y,) = table["dependent_variables"]
    first = y["values"][0]
    assert first["value"] == pytest.approx(2.5e-3)
    errors = {e["label"]: e["symerror"] for e in first["errors"]}
    # data_stat is the stat error itself (not twice); a nuisance that is 0 everywhere is left
    # out; like_sign_r is its relative size times the yield
    assert errors == pytest.approx({"stat": 2.5e-4, "sys,like_sign_r": 0.02 * 2.5e-3})


def test_the_likelihoods_travel_as_pyhf_and_hs3(exported):
    run, res = exported
    assert (
        [p.name for p in res.pyhf]
        == [p.name for p in res.hs3]
        == [Path(rundir.workspace_name(m)).name for m in MASSES]
    )
    for pyhf_file, hs3_file in zip(res.pyhf, res.hs3, strict=True):
        original = run / rundir.WORKSPACES_DIR / pyhf_file.name
        assert json.loads(pyhf_file.read_text()) == json.loads(original.read_text())
        doc = json.loads(hs3_file.read_text())
        assert doc["metadata"]["hs3_version"] == "0.2"
        assert {d["name"] for d in doc["distributions"] if d["type"] == "histfactory_dist"} == {
            "model_ee",
            "model_mumu",
        }
        assert doc["analyses"][0]["parameters_of_interest"] == ["n_signal"]
    submission = list(yaml.safe_load_all((res.path / "submission.yaml").read_text()))
    resources = submission[0]["additional_resources"]
    assert any(r["location"] == "likelihoods.tar.gz" for r in resources)
    assert (res.path / "likelihoods.tar.gz").is_file()


def test_an_export_is_not_overwritten_without_force(exported, tmp_path):
    run, res = exported
    with pytest.raises(OutputExistsError, match="--force"):
        export_run(run, res.path.parent)
    again = export_run(run, res.path.parent, force=True)
    assert validate_submission(again.path) == []
    assert not list(res.path.parent.glob(".export-*"))  # no staging directory left


def test_the_yields_come_from_the_reachs_input_or_are_left_out(tmp_path):
    write_run(tmp_path / "run")
    moved = tmp_path / "elsewhere" / "yields_mumu.json"
    moved.parent.mkdir()
    (tmp_path / "run" / "yields.json").rename(moved)
    # reach.yields pointed outside the run directory: reach.json names it among its inputs
    reach = json.loads((tmp_path / "run" / "reach.json").read_text())
    reach["meta"]["inputs"] = [{"path": str(moved), "size": moved.stat().st_size}]
    (tmp_path / "run" / "reach.json").write_text(json.dumps(reach))
    res = export_run(tmp_path / "run", tmp_path / "out")
    assert res.tables == ("Reach", "Aprime yield")
    assert str(moved) in res.notes[0]
    moved.unlink()
    res = export_run(tmp_path / "run", tmp_path / "out", force=True)
    assert res.tables == ("Reach",)
    assert "no A′ yield table" in res.notes[0]
    assert validate_submission(res.path) == []


def test_cli_export(tmp_path, capsys):
    write_run(tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Reach, Aprime yield" in out
    assert "2 likelihoods" in out
    # again without --force: one line, exit 2
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--force" in err
    # a directory that is no run: one line, exit 2
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "-o", str(tmp_path / "o2")]) == 2
    assert "run `gammastar reach` first" in capsys.readouterr().err
    with pytest.raises(InputError, match="run directory not found"):
        export_run(tmp_path / "nowhere", tmp_path / "o3")


def test_without_the_extra_the_export_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "hepdata_lib", None)
    with pytest.raises(EnvironmentFailure, match=r"pip install 'gammastar\[export\]'"):
        export_run(tmp_path / "run", tmp_path / "out")
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "gammastar[export]" in err


def test_hs3_keeps_pyhfs_names_and_refuses_what_it_cannot_write():
    doc = workspace_to_hs3(build_spec(_model(0.3)))
    ee = next(d for d in doc["distributions"] if d["name"] == "model_ee")
    signal = next(s for s in ee["samples"] if s["name"] == "signal")
    kinds = {m["name"]: m for m in signal["modifiers"]}
    assert kinds["n_signal"]["type"] == "normfactor"
    assert kinds["n_pot"]["data"] == pytest.approx({"hi": 1.2, "lo": 1 / 1.2})
    assert kinds["n_pot"]["interpolation"] == 4  # pyhf's default normsys code4
    assert kinds["mcstat_ee"]["parameters"] == ["mcstat_ee_bin_0"]
    assert signal["data"]["errors"] == pytest.approx([0.05 * 0.6])  # pyhf's absolute δ
    assert ee["staterror"]["constraint_type"] == "Gauss"  # pyhf's, not RooFit's Poisson
    axes = {d["name"]: d["axes"] for d in doc["domains"]}
    assert [a["name"] for a in axes["reach_parameters_of_interest"]] == ["n_signal"]
    assert "nom_n_pot" in [a["name"] for a in axes["reach_global_observables"]]
    spec = build_spec(_model(0.3))
    with pytest.raises(InputError, match="histosys interpolation 'code0'"):
        workspace_to_hs3(spec, interpolation={"histosys": "code0"})
    spec["channels"][0]["samples"][0]["modifiers"].append(
        {"name": "x", "type": "weird", "data": None}
    )
    with pytest.raises(InputError, match="modifier type 'weird'"):
        workspace_to_hs3(spec)
    spec = build_spec(_model(0.3))
    spec["channels"][0]["name"] = spec["observations"][0]["name"] = "e-e"
    with pytest.raises(InputError, match="channel name 'e-e'"):
        workspace_to_hs3(spec)


# --------------------------------------------------------------------------- HS3 and ROOT
def _pyroot():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the root wheel warns on import
        try:
            import ROOT
        except ImportError:
            pytest.skip("PyROOT not installed (the root extra)")
    return ROOT


# every modifier type the converter knows, on two channels; numbers arbitrary
ALL_MODIFIERS = {
    "channels": [
        {
            "name": "sr",
            "samples": [
                {
                    "name": "signal",
                    "data": [2.0, 1.0, 0.5],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {"name": "n_pot", "type": "normsys", "data": {"hi": 1.2, "lo": 1 / 1.2}},
                        {"name": "mcstat_sr", "type": "staterror", "data": [0.2, 0.15, 0.1]},
                        {"name": "lumi", "type": "lumi", "data": None},
                    ],
                },
                {
                    "name": "background",
                    "data": [3.0, 2.0, 1.0],
                    "modifiers": [
                        {
                            "name": "bkg_shape",
                            "type": "histosys",
                            "data": {"hi_data": [3.6, 2.1, 0.9], "lo_data": [2.5, 1.9, 1.1]},
                        },
                        {"name": "bkg_unc", "type": "shapesys", "data": [0.6, 0.3, 0.2]},
                        {"name": "mcstat_sr", "type": "staterror", "data": [0.3, 0.2, 0.1]},
                        {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.3, "lo": 0.8}},
                    ],
                },
            ],
        },
        {
            "name": "cr",
            "samples": [
                {
                    "name": "signal",
                    "data": [1.5],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {"name": "n_pot", "type": "normsys", "data": {"hi": 1.2, "lo": 1 / 1.2}},
                        {"name": "lumi", "type": "lumi", "data": None},
                    ],
                },
                {
                    "name": "background",
                    "data": [4.0],
                    "modifiers": [
                        {"name": "cr_free", "type": "shapefactor", "data": None},
                        {"name": "k", "type": "normfactor", "data": None},
                    ],
                },
            ],
        },
    ],
    "observations": [{"name": "sr", "data": [5, 3, 1]}, {"name": "cr", "data": [6]}],
    "measurements": [
        {
            "name": "meas",
            "config": {
                "poi": "mu",
                "parameters": [
                    {"name": "mu", "bounds": [[0, 10]], "inits": [1.0]},
                    {
                        "name": "lumi",
                        "auxdata": [1.0],
                        "sigmas": [0.05],
                        "bounds": [[0.5, 1.5]],
                        "inits": [1.0],
                    },
                    {"name": "k", "fixed": True, "inits": [1.0]},
                ],
            },
        }
    ],
    "version": "1.0.0",
}


@pytest.mark.root
@pytest.mark.parametrize("normsys", ["code4", "code1"])
def test_roofit_reads_the_same_likelihood_as_pyhf(normsys):
    """At 30 random parameter points the negative log-likelihood RooFit builds from the HS3 JSON
    differs from pyhf's by the same constant (their normalisation conventions differ) within
    1e-9: every modifier, interpolation code and constraint means the same on both sides (the
    sums of O(10) terms agree to rounding, 1e-13 relative; 1e-9 leaves room, a wrong
    interpolation or constraint differs by 1e-4 or more)."""
    ROOT = _pyroot()
    doc = workspace_to_hs3(ALL_MODIFIERS, interpolation={"normsys": normsys})
    ws = ROOT.RooWorkspace("w")
    ROOT.RooJSONFactoryWSTool(ws).importJSONfromString(json.dumps(doc))
    mc = ws["ModelConfig"]
    nll = mc.GetPdf().createNLL(ws["obsData"], GlobalObservables=mc.GetGlobalObservables())
    with quiet_pyhf():
        workspace = pyhf.Workspace(ALL_MODIFIERS)
        settings = {"normsys": {"interpcode": normsys}, "histosys": {"interpcode": "code4p"}}
        model = workspace.model(modifier_settings=settings)
    data = workspace.data(model)
    names = []  # RooFit's name of each of pyhf's parameters
    for par in model.config.par_order:
        n = model.config.param_set(par).n_parameters
        vector = par in ("mcstat_sr", "bkg_unc", "cr_free")
        names += [f"{par}_bin_{i}" for i in range(n)] if vector else [par]

    def roofit(x):
        for name, v in zip(names, x, strict=True):
            ws.var(name).setVal(float(v))
        return nll.getVal()

    def pyhf_nll(x):
        return -float(model.logpdf(x, data)[0])

    init = np.asarray(model.config.suggested_init(), dtype=float)
    offset = roofit(init) - pyhf_nll(init)
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(30):
        x = init.copy()
        for i, name in enumerate(names):
            if name in ("bkg_norm", "bkg_shape", "n_pot"):  # inside and outside ±1σ
                x[i] = rng.uniform(-2.0, 2.0)
            elif name == "mu":
                x[i] = rng.uniform(0.0, 3.0)
            elif name == "lumi":
                x[i] = rng.uniform(0.9, 1.1)
            elif name != "k":
                x[i] = rng.uniform(0.7, 1.3)
        worst = max(worst, abs(roofit(x) - pyhf_nll(x) - offset))
    assert worst < 1e-9


def _qtilde_cls(q: float, qa: float) -> float:
    """CLs of the one-sided q̃_μ in the asymptotic approximation (Cowan, Cranmer, Gross,
    Vitells, EPJC 71 (2011) 1554, Eqs. 65-66; pyhf's and RooStats's formula)."""
    from scipy.stats import norm

    sq, sqa = math.sqrt(max(q, 0.0)), math.sqrt(qa)
    if q <= qa:
        clsb, clb = norm.sf(sq), norm.cdf(sqa - sq)
    else:
        clsb, clb = norm.sf((q + qa) / (2 * sqa)), norm.sf((q - qa) / (2 * sqa))
    return clsb / clb


def _expected_cls(qa: float, n: float) -> float:
    """The expected CLs at nσ of the background-only test statistic (same reference)."""
    from scipy.stats import norm

    return norm.sf(math.sqrt(qa) - n) / norm.cdf(n)


@pytest.mark.root
def test_roostats_cls_on_the_hs3_likelihood_is_pyhfs():
    """The asymptotic CLs (q̃_μ) RooStats computes on the exported HS3 JSON equals pyhf's on the
    same workspace at 3 signal counts, observed and the expected ±2σ set, within what the
    minimiser allows.

    Tolerance: RooStats's AsymptoticCalculator minimises with Minuit2 at tolerance ≥ 1, which
    stops at EDM < 0.002 · 1 · 0.5 = 1e-3 (errordef 0.5 of an NLL); q = 2 ΔNLL of two fits so
    |δq| ≤ 2 · 2 · 1e-3 (each fit's NLL within its EDM of the minimum, the EDM itself an
    estimate: a factor 2 more), 4e-3, for the data's q and the Asimov q_A alike. pyhf's fits
    (scipy, 1e-6 on the NLL) are far tighter. The CLs tolerance is this δq carried through the
    asymptotic formula (its derivatives by finite differences at pyhf's q and q_A), which
    reproduces pyhf's CLs first (to 1e-9)."""
    _pyroot()  # skips without PyROOT
    spec = build_spec(_model(0.3))
    with quiet_pyhf():
        workspace = pyhf.Workspace(spec)
        model = workspace.model()
    data = workspace.data(model)
    init, bounds = model.config.suggested_init(), model.config.suggested_bounds()
    fixed = model.config.suggested_fixed()
    pois = (1.0, 3.0, 6.0)
    got = roostats_cls(workspace_to_hs3(spec), pois)
    dq = 4e-3
    for poi, root in zip(pois, got, strict=True):
        obs, expected = pyhf.infer.hypotest(
            poi, data, model, test_stat="qtilde", calctype="asymptotics", return_expected_set=True
        )
        q = float(pyhf.infer.test_statistics.qmu_tilde(poi, data, model, init, bounds, fixed))
        asimov = pyhf.infer.calculators.generate_asimov_data(0.0, data, model, init, bounds, fixed)
        qa = float(pyhf.infer.test_statistics.qmu_tilde(poi, asimov, model, init, bounds, fixed))
        assert _qtilde_cls(q, qa) == pytest.approx(float(obs), abs=1e-9)
        tol_obs = (
            abs(_qtilde_cls(q + dq, qa) - _qtilde_cls(max(q - dq, 0.0), qa)) / 2
            + abs(_qtilde_cls(q, qa + dq) - _qtilde_cls(q, qa - dq)) / 2
        )
        assert root.observed == pytest.approx(float(obs), abs=tol_obs)
        for n, want, have in zip((-2, -1, 0, 1, 2), expected, root.expected, strict=True):
            assert _expected_cls(qa, n) == pytest.approx(float(want), abs=1e-9)
            tol = abs(_expected_cls(qa + dq, n) - _expected_cls(qa - dq, n)) / 2
            assert have == pytest.approx(float(want), abs=tol)
