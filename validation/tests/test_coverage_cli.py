"""The coverage study's refusals (:mod:`gammastar_validation.coverage`): each a one-line error
naming the option, field or file, before any realisation is run. Fast: no chain, no flow, no
truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gammastar_validation import coverage, coverage_flows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cov():
    return coverage


# --------------------------------------------------------------------------- --merge


def _output(seeds, *, points=((0.6, 1.0), (0.6, 100.0)), **header):
    """A minimal output of coverage.py: the stat arm's rows for ``seeds`` at ``points``."""
    rows = [
        {"seed": s, "mass": m, "ctau": ct, "nsig_dd": 1.0 + 0.01 * s, "nsig_truth": 1.0,
         "rel_sigma_truth": 0.01, "sigma": {"data_stat": 0.02, "mc_acceptance": 0.005}}
        for s in seeds for m, ct in points
    ]  # fmt: skip
    out = {
        "benchmark": "coverage", "config": "analysis/na60_like.yaml", "flow": "flow",
        "form_flows": {}, "vary_seed": 2026, "truth_seed": 11, "truth_sources": 1000,
        "response_sources": 1000, "samples": 100,
        "arms": {"stat": {"varied": [], "drawn_forms": [], "drawn": [{} for _ in seeds],
                          "rows": rows}},
    }  # fmt: skip
    out.update(header)
    return out


def _re(path) -> str:
    """``path`` as a regular expression matching it literally."""
    return re.escape(str(path))


def _write(tmp_path, name, out):
    path = tmp_path / name
    path.write_text(json.dumps(out))
    return path


def test_merge_keeps_the_header_rows_and_forms(cov, tmp_path, capsys):
    """Two seed ranges of one run merge into one table of all their realisations; the merged
    output keeps the shared header, each arm's rows, varied and drawn_forms (so that it can be
    merged again) and names the files under ``merged``."""
    a = _write(tmp_path, "a.json", _output([1, 2]))
    b = _write(tmp_path, "b.json", _output([3]))
    out = cov.main(["--merge", str(a), str(b)])
    capsys.readouterr()
    assert out["merged"] == [str(a), str(b)]
    assert (out["config"], out["vary_seed"], out["truth_seed"]) == (
        "analysis/na60_like.yaml",
        2026,
        11,
    )
    arm = out["arms"]["stat"]
    assert arm["realisations"] == 3
    assert (arm["varied"], arm["drawn_forms"]) == ([], [])
    assert sorted({r["seed"] for r in arm["rows"]}) == [1, 2, 3]
    assert all("pulls" not in r for r in arm["rows"])  # as main writes them
    assert [t["n"] for t in arm["table"]] == [3, 3]
    again = cov.main(["--merge", str(_write(tmp_path, "ab.json", out)), str(
        _write(tmp_path, "c.json", _output([4])))])  # fmt: skip
    assert again["arms"]["stat"]["realisations"] == 4


@pytest.mark.parametrize(
    ("changed", "field"),
    [
        ({"vary_seed": 7}, "vary_seed"),
        ({"config": "other.yaml"}, "config"),
        ({"truth_sources": 2000}, "truth_sources"),
        ({"samples": 200}, "samples"),
        ({"flow": "other"}, "flow"),
        ({"form_flows": {"1.2247": "f"}}, "form_flows"),
        ({"own_flow": True}, "own_flow"),  # each realisation's own flow, or one for all
        ({"kinematic_model": {"replicas": 11}}, "kinematic_model"),  # another replica set
    ],
)
def test_merge_refuses_outputs_of_other_runs(cov, tmp_path, changed, field):
    a = _write(tmp_path, "a.json", _output([1]))
    b = _write(tmp_path, "b.json", _output([2], **changed))
    with pytest.raises(
        SystemExit,
        match=rf"--merge: {field} differs: .* in {_re(a)}, .* in {_re(b)}",
    ):
        cov.main(["--merge", str(a), str(b)])


def test_merge_refuses_an_arm_of_another_draw_or_other_points(cov, tmp_path):
    a = _write(tmp_path, "a.json", _output([1]))
    other = _output([2])
    other["arms"]["stat"]["drawn_forms"] = ["mt_boltzmann"]
    b = _write(tmp_path, "b.json", other)
    with pytest.raises(
        SystemExit,
        match=rf"arm 'stat' drawn_forms differs: .* in {_re(a)}, .* in {_re(b)}",
    ):
        cov.main(["--merge", str(a), str(b)])
    c = _write(tmp_path, "c.json", _output([3], points=((0.6, 1.0), (0.9, 1.0))))
    with pytest.raises(
        SystemExit, match=rf"arm 'stat' covers other \(mass, ctau\) points: .*{_re(c)}"
    ):
        cov.main(["--merge", str(a), str(c)])


def test_merge_refuses_a_missing_or_foreign_file(cov, tmp_path):
    a = _write(tmp_path, "a.json", _output([1]))
    missing = tmp_path / "nowhere.json"
    with pytest.raises(SystemExit, match=rf"--merge: cannot read {_re(missing)}"):
        cov.main(["--merge", str(a), str(missing)])
    log = tmp_path / "run.log"
    log.write_text("full realisation 1/30 ...\n")
    with pytest.raises(SystemExit, match=rf"--merge: {_re(log)} is not JSON"):
        cov.main(["--merge", str(a), str(log)])
    other = _write(tmp_path, "other.json", {"benchmark": "closure", "arms": {}})
    with pytest.raises(SystemExit, match=rf"--merge: {_re(other)} is not an output of"):
        cov.main(["--merge", str(a), str(other)])


# --------------------------------------------------------------------------- --form-flow


def _error(cov, capsys, argv) -> str:
    """The one-line message of ``ap.error`` (exit status 2) for ``argv``."""
    with pytest.raises(SystemExit) as exc:
        cov.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("form_flows", "message"),
    [
        (["abc", "D"], "--form-flow: A must be a number (a drawn mock.pt_mt_power), not 'abc'"),
        (["nan", "D"], "--form-flow: A must be a number (a drawn mock.pt_mt_power), not 'nan'"),
        (["1.2", "D"], ("--form-flow: A = 1.2 is not a drawn p_T form (mock.pt_mt_power 0 + "
                        "FORM_POINTS: -1.2247, 1.2247)")),
        (["0", "D"], "--form-flow: A = 0 is the config's mock.pt_mt_power, whose flow is --flow"),
        (["1.2247", "D", "1.2247", "D"], "--form-flow: A = 1.2247 given twice"),
        (["1.2247", "D"], "--form-flow: no flow for pt_mt_power -1.2247"),
        (["1.2247", "D", "-1.2247", "NOWHERE"], "--form-flow -1.2247: NOWHERE is not a directory"),
    ],
)  # fmt: skip
def test_form_flow_arguments_are_checked(cov, tmp_path, capsys, form_flows, message):
    """A is a number, one of the drawn forms a0 + FORM_POINTS but not the config's a0 (its
    flow is --flow), once; every drawn form has its flow, and DIR is a directory."""
    given = {"D": str(tmp_path), "NOWHERE": str(tmp_path / "nowhere")}
    argv = ["--flow", str(tmp_path)]
    for i in range(0, len(form_flows), 2):
        argv += ["--form-flow", form_flows[i], given[form_flows[i + 1]]]
    assert _error(cov, capsys, argv).endswith(message.replace("NOWHERE", given["NOWHERE"]))


def test_form_flow_needs_the_full_arm(cov, tmp_path, capsys):
    msg = _error(cov, capsys, ["--flow", str(tmp_path), "--arms", "stat",
                               "--form-flow", "1.2247", str(tmp_path)])  # fmt: skip
    assert msg.endswith("--form-flow: only the full arm draws the p_T form (--arms stat)")


def test_own_flow_takes_no_form_flows_and_draw_pt_form_needs_it(cov, tmp_path, capsys):
    """--own-flow: every realisation's own flow follows its drawn p_T form, so form flows are
    refused beside it; --draw-pt-form (the draw without form flows) only with it."""
    msg = _error(cov, capsys, ["--flow", str(tmp_path), "--own-flow",
                               "--form-flow", "1.2247", str(tmp_path)])  # fmt: skip
    assert msg.endswith("--form-flow: not used with --own-flow (each realisation's own flow "
                        "follows its drawn p_T form); give --draw-pt-form instead")  # fmt: skip
    msg = _error(cov, capsys, ["--flow", str(tmp_path), "--draw-pt-form"])
    assert msg.endswith("--draw-pt-form: only with --own-flow (else --form-flow gives the drawn "
                        "forms' flows)")  # fmt: skip


def test_own_flow_trains_one_member_of_the_realisation(cov, base, tmp_path, monkeypatch):
    """The realisation's own flow is the chain's ``train`` on its config (its seed and run
    directory, the config's recipe) with one member, no bootstrap, one worker, retrained
    (``force``), and is loaded from the run's ``flow``."""
    seen = {}

    def train(cfg, **kw):
        seen.update(cfg=cfg, kw=kw)

    monkeypatch.setattr("gammastar.flow.stage.train", train)
    monkeypatch.setattr("gammastar.flow.model.load", lambda path: ("loaded", path))
    cfg = base.model_copy(update={"seed": 1234, "output": str(tmp_path)})
    # exact: a returned stub, integers and flags, and values copied from the config
    assert cov.own_flow(cfg, tmp_path) == ("loaded", tmp_path / "flow")
    f = seen["cfg"].flow
    assert (f.ensemble, f.bootstrap, f.workers) == (1, False, 1)
    assert (f.epochs, f.learning_rate) == (base.flow.epochs, base.flow.learning_rate)
    assert (seen["cfg"].seed, seen["cfg"].output, seen["kw"]) == (1234, str(tmp_path),
                                                                  {"force": True})  # fmt: skip


def _tiny_run(tmp_path, name, *, pairs_seed=0, **flow):
    """A run directory with synthetic pairs and its tiny flow config (_tiny_flow)."""
    from _tiny_flow import make_config, synthetic_pairs

    cfg = make_config(tmp_path / name, epochs=1, **flow)
    cfg.output_dir.mkdir(parents=True)
    synthetic_pairs(2000, seed=pairs_seed).to_parquet(cfg.output_dir / "pairs.parquet")
    return cfg


def test_own_flow_is_reused_only_when_it_is_this_training(cov, tmp_path, monkeypatch):
    """--reuse --own-flow: the run's flow is taken as it is only when it is what this training
    would write (the seed, the flow config, one member, the same training rows); each change
    is named, and a changed one is retrained."""
    cfg = _tiny_run(tmp_path, "a")
    run = cfg.output_dir
    cov.own_flow(cfg, run)  # a real (tiny) training
    own = cfg.model_copy(update={"flow": cfg.flow.model_copy(update={"workers": 1})})
    assert cov.own_flow_mismatch(own, run) is None
    calls = []
    monkeypatch.setattr("gammastar.flow.stage.train", lambda c, **kw: calls.append(c.seed))
    cov.own_flow(cfg, run, reuse=True)
    assert calls == []  # reused: not retrained
    other_seed = own.model_copy(update={"seed": 8})
    assert cov.own_flow_mismatch(other_seed, run) == "trained with seed 7, 1 member(s)"
    cov.own_flow(cfg.model_copy(update={"seed": 8}), run, reuse=True)
    assert calls == [8]  # retrained with the realisation's seed
    epochs = own.model_copy(update={"flow": own.flow.model_copy(update={"epochs": 2})})
    assert cov.own_flow_mismatch(epochs, run) == "trained with another flow config"
    from _tiny_flow import synthetic_pairs

    synthetic_pairs(2000, seed=1).to_parquet(run / "pairs.parquet")  # the realisation redone
    assert cov.own_flow_mismatch(own, run) == "trained on other pairs"


def test_replicas_pool_ensembles_of_the_same_training_rows(cov, tmp_path, capsys):
    """--replicas: the bootstrap replicas of more ensembles trained on --flow's training rows
    join its own (2 + 2 here); an ensemble of other pairs, one without replicas, one given
    twice, or one repeating pooled resamples (its bootstrap seed and members) is refused,
    naming it."""
    from gammastar.flow.stage import train as train_stage

    a = train_stage(_tiny_run(tmp_path, "a", ensemble=3, bootstrap=True, workers=1)).path
    b = train_stage(_tiny_run(tmp_path, "b", ensemble=3, bootstrap=True, seed=20, workers=1)).path
    reps = cov.bootstrap_replicas(a, [b])
    # member seeds: 7 + 1, 7 + 2 and 20 + 1, 20 + 2 (integers, exact)
    assert [r.meta["meta"]["seed"] for r in reps] == [8, 9, 21, 22]
    other = train_stage(
        _tiny_run(tmp_path, "c", pairs_seed=5, ensemble=3, bootstrap=True, workers=1)
    ).path
    with pytest.raises(ValueError, match=f"{_re(other)}: trained on other pairs than"):
        cov.bootstrap_replicas(a, [other])
    with pytest.raises(ValueError, match=f"{_re(b)}: given twice"):
        cov.bootstrap_replicas(a, [b, b])
    # the same seed on the same rows: the same resamples, refused
    again = train_stage(_tiny_run(tmp_path, "e", ensemble=3, bootstrap=True, workers=1)).path
    with pytest.raises(ValueError, match=r"replicas \(7, 1\), \(7, 2\) .* already pooled"):
        cov.bootstrap_replicas(a, [again])
    plain = train_stage(_tiny_run(tmp_path, "d", ensemble=2, workers=1)).path
    with pytest.raises(ValueError, match=f"{_re(plain)}: no bootstrap replica"):
        cov.bootstrap_replicas(a, [plain])
    msg = _error(cov, capsys, ["--flow", str(a), "--replicas", str(plain), "--arms", "stat"])
    assert msg.endswith(f"--replicas: {plain}: no bootstrap replica (train it with flow.bootstrap)")


def test_a_directory_without_a_flow_is_named(cov, tmp_path, capsys):
    """A flow directory that exists but holds no flow: gammastar's own error, as the option's."""
    msg = _error(cov, capsys, ["--flow", str(tmp_path), "--arms", "stat"])
    assert msg.endswith(f"--flow: {tmp_path}: no flow model here (expected model.pt and meta.json)")


# --------------------------------------------------------------------------- the p_T form's bound


@pytest.fixture(scope="module")
def base():
    from gammastar.config import load_config

    return load_config(REPO / "analysis" / "na60_like.yaml")


def _with_power(cfg, a):
    return cfg.model_copy(update={"mock": cfg.mock.model_copy(update={"pt_mt_power": a})})


def test_drawn_forms_beyond_the_configs_bound_are_refused(cov, base, tmp_path, capsys, monkeypatch):
    """``model_copy`` skips the config's validation: a config a0 whose drawn a0 + 1.2247 passes
    mock.pt_mt_power's upper bound (5) is refused before any work, naming the field, and a
    draw beyond it in :func:`varied_config` too; the draws within it are kept."""
    assert cov.pt_mt_power_bounds() == (-2.0, 5.0)
    monkeypatch.setattr("gammastar.config.load_config", lambda path: _with_power(base, 4.5))
    argv = ["--flow", str(tmp_path), "--form-flow", "3.2753", str(tmp_path),
            "--form-flow", "5.7247", str(tmp_path)]  # fmt: skip
    assert _error(cov, capsys, argv).endswith(
        "mock.pt_mt_power: the drawn p_T form a = 5.7247 lies outside mock.pt_mt_power's (-2, 5] "
        "(the config's 4.5 + FORM_POINTS)"
    )
    high = _with_power(base, 4.5)
    refused = 0
    for seed in range(12):
        _, plain = cov.varied_config(base, np.random.default_rng([2026, seed]), pt_form=True)
        rng = np.random.default_rng([2026, seed])
        if plain["pt_form"] > 0:  # 4.5 + 1.2247
            refused += 1
            with pytest.raises(
                SystemExit, match=r"^mock.pt_mt_power: the drawn p_T form a = 5.7247"
            ):
                cov.varied_config(high, rng, pt_form=True)
        else:
            cfg, drawn = cov.varied_config(high, rng, pt_form=True)
            assert cfg.mock.pt_mt_power == drawn["pt_form"] == 4.5 + plain["pt_form"]
    assert 0 < refused < 12


@pytest.fixture(scope="module")
def flows():
    return coverage_flows


def test_coverage_flows_default_powers_are_the_drawn_forms(flows, base, tmp_path, monkeypatch):
    """Without --powers: the config's a0 (the ensemble, the coverage's --flow), then a0 plus
    the other FORM_POINTS; each realisation and training gets its a (recorded, not run)."""
    seen = []
    monkeypatch.setattr(flows, "load_config", lambda path: _with_power(base, 0.5))
    monkeypatch.setattr(flows.coverage, "realisation", lambda cfg: None)
    monkeypatch.setattr(flows, "train", lambda cfg: seen.append(
        (cfg.mock.pt_mt_power, cfg.flow.ensemble, cfg.flow.bootstrap)))  # fmt: skip
    out = flows.main(["--workdir", str(tmp_path)])
    z = flows.coverage.FORM_POINTS[-1]
    assert [a for a, *_ in seen] == [0.5, 0.5 - z, 0.5 + z]
    assert [s[1:] for s in seen] == [(4, True)] + [(base.flow.ensemble, base.flow.bootstrap)] * 2
    assert list(out["flows"]) == [f"{a:+.4f}" for a, *_ in seen]


def test_coverage_flows_refuses_a_power_beyond_the_bound(flows, capsys):
    """coverage_flows --powers: an a outside (-2, 5] is refused before any
    realisation, naming the option."""
    for a in ("6", "-2"):
        with pytest.raises(SystemExit) as exc:
            flows.main(["--powers", "0", a])
        assert exc.value.code == 2
        msg = capsys.readouterr().err.strip().splitlines()[-1]
        assert msg.endswith(f"--powers: a = {a} lies outside mock.pt_mt_power's (-2, 5]")


# --------------------------------------------------------------------------- --reuse


def _run_dir(path, mock_config):
    """A run directory holding a yields.json and a mock file whose meta records
    ``mock_config`` (what the generator writes)."""
    import uproot

    path.mkdir()
    (path / "yields.json").write_text("{}")
    with uproot.recreate(path / "mock.root") as f:
        f["meta"] = json.dumps({"mock_config": mock_config})
    return path


def test_reuse_takes_only_a_realisation_of_the_wanted_truth(cov, base, tmp_path):
    """--reuse keeps a run directory only when its mock file was generated with the wanted
    p_T form, rapidity width and λ_θ (the full arm's draws); a file from before pt_mt_power
    existed generated a = 0."""
    cfg = base
    stored = base.mock.model_dump(mode="json")
    assert cov.reuse_mismatch(_run_dir(tmp_path / "same", stored), cfg) is None
    other = {**stored, "pt_mt_power": 1.2247}
    assert cov.reuse_mismatch(_run_dir(tmp_path / "a", other), cfg) == (
        "its mock.pt_mt_power is 1.2247, not 0.0"
    )
    other = {**stored, "rapidity_sigma": 0.95696}
    assert cov.reuse_mismatch(_run_dir(tmp_path / "ys", other), cfg).startswith(
        "its mock.rapidity_sigma is 0.95696, not "
    )
    lam = {k: v + 0.1 for k, v in stored["decay_lambda_theta"].items()}
    other = {**stored, "decay_lambda_theta": lam}
    assert cov.reuse_mismatch(_run_dir(tmp_path / "lam", other), cfg).startswith(
        "its mock.decay_lambda_theta is "
    )
    old = _run_dir(tmp_path / "old", {k: v for k, v in stored.items() if k != "pt_mt_power"})
    assert cov.reuse_mismatch(old, cfg) is None
    assert cov.reuse_mismatch(old, _with_power(base, 1.2247)) == (
        "its mock.pt_mt_power is 0.0, not 1.2247"
    )
    (tmp_path / "none").mkdir()
    assert cov.reuse_mismatch(tmp_path / "none", cfg) == "no yields.json"
    broken = _run_dir(tmp_path / "broken", stored)
    (broken / "mock.root").write_text("not a ROOT file")
    assert cov.reuse_mismatch(broken, cfg).startswith("no readable mock config in mock.root")


# --------------------------------------------------------------------------- --truth-from


def _truth_args(tmp_path, path, *extra):
    return ["--flow", str(tmp_path), "--arms", "stat", "--truth-from", str(path),
            "--seed", "11", "--truth-sources", "1000", "--response-sources", "1000",
            "--samples", "100", "--masses", "0.6", *extra]  # fmt: skip


def test_truth_from_takes_each_seeds_truth_and_draws(cov, tmp_path):
    """An earlier output's truths per (arm, seed) with the drawn values, keyed by (m, cτ)."""
    path = _write(tmp_path, "a.json", _output([7, 8]) | {"seeds": [7, 8]})
    args = cov.argparse.Namespace(truth_from=[path], seed=11, truth_sources=1000, samples=100,
                                  vary_seed=2026, response_sources=1000, masses=[0.6],
                                  ctaus=[1.0, 100.0])  # fmt: skip
    got = cov.truths_from(None, args)
    assert set(got) == {("stat", 7), ("stat", 8)}
    assert got[("stat", 8)]["truth"][(0.6, 100.0)] == (1.0, 0.01)  # the row's, copied
    assert got[("stat", 7)]["drawn"] == {}


@pytest.mark.parametrize(
    ("header", "extra", "message"),
    [
        ({"truth_sources": 999}, (), "its truth_sources is 999, this run's 1000"),
        ({}, ("--masses", "0.9"), "seed 7 (stat) lacks some of the masses and ctaus asked for"),
        ({"seeds": None}, (), "not an output of this study"),
    ],
)  # fmt: skip
def test_truth_from_refuses_another_runs_truth(cov, tmp_path, capsys, header, extra, message):
    """A truth of other sources, points this run needs that it lacks, or a file that is not
    the benchmark's output: one line naming the file, before anything runs."""
    path = _write(tmp_path, "a.json", _output([7]) | {"seeds": [7, 7]} | header)
    msg = _error(cov, capsys, _truth_args(tmp_path, path, *extra))
    assert f"--truth-from {path}: " in msg
    assert message in msg


def test_drawn_regression_recovers_the_slopes_of_the_draws(cov):
    """The merge's regression of ln N on the full arm's draws: rows made with ln N_truth =
    −0.6 (σ_y − 1.25) + 0.05 a exactly and ln(N_dd/N_truth) = 0.1 (σ_y − 1.25) + N(0, 0.01)
    give the truth's slopes to rounding and the bias's within 4 standard errors, which are
    the least-squares ones (0.01/√(Σ(σ_y − mean)²) for σ_y, the draws nearly uncorrelated);
    the residual scatter is the noise's; a row whose seed has no draws is left out."""
    rng = np.random.default_rng(5)
    seeds = list(range(200))
    drawn = {s: {"y_sigma": float(1.25 + 0.2 * rng.standard_normal()),
                 "pt_form": float(rng.choice([-1.2247, 0.0, 1.2247]))} for s in seeds}  # fmt: skip
    rows = []
    for s in [*seeds, 999]:
        d = drawn.get(s, {"y_sigma": 1.25, "pt_form": 0.0})
        truth = np.exp(-0.6 * (d["y_sigma"] - 1.25) + 0.05 * d["pt_form"])
        dd = truth * np.exp(0.1 * (d["y_sigma"] - 1.25) + 0.01 * rng.standard_normal())
        rows.append({"seed": s, "mass": 0.3, "ctau": 1.0, "nsig_dd": dd, "nsig_truth": truth,
                     "sigma": {"extrapolation_varied": 0.05, "extrapolation_fit": 0.03}})  # fmt: skip
    (g,) = cov.drawn_regression(rows, drawn, y_sigma=1.25)
    assert g["n"] == 200
    assert g["covariates"] == ["y_sigma", "pt_form"]
    assert g["truth"]["y_sigma"][0] == pytest.approx(-0.6, abs=1e-9)
    assert g["truth"]["pt_form"][0] == pytest.approx(0.05, abs=1e-9)
    slope, se = g["bias"]["y_sigma"]
    ys = np.array([drawn[s]["y_sigma"] for s in seeds])
    assert se == pytest.approx(0.01 / np.sqrt(np.sum((ys - ys.mean()) ** 2)), rel=0.2)
    assert abs(slope - 0.1) < 4 * se
    assert abs(g["bias"]["pt_form"][0]) < 4 * g["bias"]["pt_form"][1]
    assert g["bias_residual_sd"] == pytest.approx(0.01, rel=0.15)  # 200 draws: ±5%
    assert g["quoted_external"] == pytest.approx(0.04)  # √(0.05² − 0.03²)


def test_flow_scatter_is_the_own_flows_scatter_less_the_draws(cov):
    """--merge --against: rows whose own flow moves ln N by 0.2 (σ_y − 1.25) (the draws, which
    the fixed flow does not follow) plus N(0, 0.03) give a scatter less the draws of 0.03 within
    15% (300 rows: ±4%), its quoted error the sd/√(2 dof) one, and the flow's realised error
    √(sd² − mc²) with the rows' MC error 0.01; seeds missing from the reference are left out."""
    rng = np.random.default_rng(7)
    drawn = {s: {"y_sigma": float(1.25 + 0.2 * rng.standard_normal())} for s in range(300)}
    rows, ref = [], []
    for s, d in drawn.items():
        fixed = float(np.exp(0.1 * rng.standard_normal()))
        own = fixed * np.exp(0.2 * (d["y_sigma"] - 1.25) + 0.03 * rng.standard_normal())
        sig = {"kinematic_model": 0.005, "mc_acceptance": 0.01}
        rows.append({"seed": s, "mass": 0.9, "ctau": 1.0, "nsig_dd": own, "sigma": sig})
        if s != 0:
            ref.append({"seed": s, "mass": 0.9, "ctau": 1.0, "nsig_dd": fixed, "sigma": sig})
    (g,) = cov.flow_scatter(rows, ref, drawn)
    assert g["n"] == 299
    assert g["sd"] == pytest.approx(0.03, rel=0.15)
    assert g["sd_err"] == pytest.approx(g["sd"] / np.sqrt(2 * (299 - 2)))
    assert g["quoted_kinematic_model"] == pytest.approx(0.005)
    assert g["flow_realised"] == pytest.approx(np.sqrt(g["sd"] ** 2 - 0.01**2))


def test_against_needs_merge(cov, tmp_path, capsys):
    msg = _error(cov, capsys, ["--flow", str(tmp_path), "--against", str(tmp_path / "x.json")])
    assert msg.endswith("--against: only with --merge")


def test_undo_migration_needs_merge(cov, tmp_path, capsys):
    msg = _error(cov, capsys, ["--flow", str(tmp_path), "--undo-migration"])
    assert msg.endswith("--undo-migration: only with --merge")


def test_merge_undoes_the_resolution_migration(cov, tmp_path, capsys):
    """``--merge --undo-migration``: each row's N_dd over the factor it carries and its
    ``resolution_migration`` part gone, so that the pulls are those of the uncorrected chain;
    without it the rows stay as written."""
    out = _output([1, 2])
    factor = {1: 1.05, 2: 0.97}  # per realisation: a mix-up of rows shows
    for r in out["arms"]["stat"]["rows"]:
        r["migration"] = factor[r["seed"]]
        r["sigma"]["resolution_migration"] = 0.01
    path = _write(tmp_path, "a.json", out)
    kept = cov.main(["--merge", str(path)])
    undone = cov.main(["--merge", str(path), "--undo-migration"])
    capsys.readouterr()
    for k, u in zip(kept["arms"]["stat"]["rows"], undone["arms"]["stat"]["rows"], strict=True):
        assert u["nsig_dd"] == pytest.approx(k["nsig_dd"] / factor[k["seed"]], rel=1e-12)
        assert "resolution_migration" not in u["sigma"]
        assert k["sigma"]["resolution_migration"] == 0.01  # copied, untouched
    t = undone["arms"]["stat"]["table"][0]
    want = np.mean([(1.0 + 0.01 * s) / factor[s] for s in (1, 2)])  # nsig_truth = 1
    assert t["mean_ratio_dd_truth"] == pytest.approx(want, rel=1e-12)
    # the widths are taken without the dropped part: `all` is data_stat ⊕ mc_acceptance
    assert t["all"]["mean_rel_sigma"] == pytest.approx(np.hypot(0.02, 0.005), rel=1e-12)
    assert kept["arms"]["stat"]["table"][0]["all"]["mean_rel_sigma"] == pytest.approx(
        np.sqrt(0.02**2 + 0.005**2 + 0.01**2), rel=1e-12
    )
    # an undone output says so, and does not merge with one that keeps its correction
    assert undone["migration_undone"] is True
    both = [str(_write(tmp_path, "u.json", undone)), str(_write(tmp_path, "b.json", _output([3])))]
    with pytest.raises(SystemExit, match="migration_undone differs"):
        cov.main(["--merge", *both])
    capsys.readouterr()


def test_undo_migration_refuses_rows_without_a_factor_and_against(cov, tmp_path, capsys):
    path = _write(tmp_path, "a.json", _output([1]))  # rows of an older coverage.py
    with pytest.raises(SystemExit, match="seed 1 has no migration factor"):
        cov.main(["--merge", str(path), "--undo-migration"])
    msg = _error(cov, capsys, ["--merge", str(path), "--undo-migration", "--against", str(path)])
    assert msg.endswith("--undo-migration: not with --against (its rows would keep their factor)")


def test_migration_at_interpolates_ln_c_as_the_yield(cov):
    """:func:`migration_factors` (what :func:`migration_at` gives for a run's yields.json) is
    the corrected yield over the uncorrected one, both by :meth:`gammastar.source.production.Yields.at`
    (ln y linear between the bins' centres): c(m) with ln c linear, so that a yield corrected
    bin by bin is c(m) × the uncorrected one at every mass; 1 where no correction was
    applied. The expected values are computed here independently from ln c."""
    from gammastar.source.production import Yields

    mass = np.array([0.3, 0.4, 0.5])
    c = np.array([1.0, 1.1, 0.9])
    y = np.array([2.0, 1.0, 0.5])
    rel = np.full(3, 0.1)
    mig = {"resolution_migration": {"applied": True, "correction": c.tolist()}}
    at = cov.migration_factors(Yields(mass, y * c, rel, {}, extrapolation=mig), [0.3, 0.35, 0.47])
    for m, cm in at.items():
        want = np.exp(np.interp(m, mass, np.log(c)))
        assert cm == pytest.approx(float(want), rel=1e-12)
    assert at[0.35] != pytest.approx(1.05, rel=1e-4)  # not c interpolated linearly
    off = {"resolution_migration": {"applied": False}}
    assert cov.migration_factors(Yields(mass, y, rel, {}, extrapolation=off), [0.35]) == {
        0.35: 1.0  # the literal 1 of an uncorrected yield
    }
    # a bin the yields stage left uncorrected counts as 1 (its finite c is not applied), and a
    # bin without a positive yield is skipped, as Yields.at skips it
    mass4, c4 = np.array([0.3, 0.4, 0.5, 0.6]), np.array([1.0, 1.2, 1.1, 0.9])
    y4 = np.array([2.0, 0.0, 0.5, 0.25])
    applied = c4.copy()
    applied[2] = 1.0
    mig4 = {"resolution_migration": {"applied": True, "correction": c4.tolist(),
                                     "uncorrected_bins": [2]}}  # fmt: skip
    at4 = cov.migration_factors(Yields(mass4, y4 * applied, np.full(4, 0.1), {},
                                       extrapolation=mig4), [0.3, 0.42, 0.55])  # fmt: skip
    keep = y4 > 0  # Yields.at's nodes
    for m, cm in at4.items():
        want = np.exp(np.interp(m, mass4[keep], np.log(applied[keep])))
        assert cm == pytest.approx(float(want), rel=1e-12)
    bad = {"resolution_migration": {"applied": True, "correction": [1.0, 1.1]}}
    with pytest.raises(SystemExit, match="2 bins, the yield 3"):
        cov.migration_factors(Yields(mass, y, rel, {}, extrapolation=bad), [0.35])


def test_truth_cache_returns_what_was_made_and_remakes_on_other_fields(cov, tmp_path):
    """``--truth-cache``: a truth made once is read back equal (the γ* masses bit for bit, a
    file copy; the acceptances and window counts as made), a second call does not make it
    again, and other truth options make it anew."""
    from gammastar_validation.truth import GstarTruth

    made = []

    def make():
        made.append(1)
        m = np.random.default_rng(3).uniform(0.2, 1.1, 1000)
        return {"gstar": GstarTruth(m, *(np.empty(0),) * 3, np.empty(0, int), 123.5),
                "acceptance": {(0.6, 1.0): (0.25, 0.01), (0.6, 100.0): (0.5, 0.02)},
                "window_gstar": {0.6: 42}}  # fmt: skip

    fields = {"sources": 1000, "samples": 10, "seed": 11, "masses": [0.6], "ctaus": [1.0, 100.0],
              "config": "c.yaml"}  # fmt: skip
    first = cov.cached_truth(tmp_path, (1.25, 0.0), fields, make)
    again = cov.cached_truth(tmp_path, (1.25, 0.0), fields, make)
    assert len(made) == 1
    assert np.array_equal(again["gstar"].m, first["gstar"].m)  # a file copy: the same bits
    assert again["gstar"].n_pot == 123.5  # copied through JSON, exact
    assert again["acceptance"] == first["acceptance"]
    assert again["window_gstar"] == {0.6: 42}
    cov.cached_truth(tmp_path, (1.25, 0.0), fields | {"sources": 2000}, make)
    cov.cached_truth(tmp_path, (1.05, 0.0), fields, make)  # another drawn σ_y
    assert len(made) == 3
    for a in (0.5, 0.25, 1.2247):  # keys that differ after their first decimal: other files
        cov.cached_truth(tmp_path, (1.25, a), fields, make)
    assert len(made) == 6
    cov.cached_truth(tmp_path, (1.25, 1.2247 + 1e-8), fields, make)  # the same file name:
    assert len(made) == 7  # the recorded key tells them apart, the truth is made again
    assert len(list(tmp_path.glob("*.npy"))) == 5  # the remade (1.25, 0) rewrote its own file
    cov.cached_truth(None, (1.25, 0.0), fields, make)  # no cache: always made
    assert len(made) == 8


def test_merge_of_merges_keeps_the_draws_by_seed(cov, tmp_path, capsys):
    """A merged output records its draws' seeds (``drawn_seeds``), so that merged again with
    a run's output the regression on the draws holds every realisation; a merged output
    without them (an older merge) is said in one line and left out of the regression, not
    silently; draws that do not match their seeds in number, or a seed twice, name the file."""

    def full(seeds):
        out = _output(seeds, points=((0.3, 1.0),))
        out["seeds"] = [seeds[0], seeds[-1]]
        arm = out["arms"].pop("stat")
        arm["drawn"] = [
            {"y_sigma": 1.25 + 0.01 * s, "pt_form": 1.2247 * (s % 3 - 1)} for s in seeds
        ]
        for r in arm["rows"]:
            r["sigma"] |= {"extrapolation_varied": 0.05, "extrapolation_fit": 0.03}
        out["arms"]["full"] = arm
        return out

    a, b, c = (_write(tmp_path, f"{k}.json", full(s))
               for k, s in (("a", [1, 2, 3, 4]), ("b", [5, 6, 7]), ("c", list(range(8, 14)))))  # fmt: skip
    ab = cov.main(["--merge", str(a), str(b)])
    assert ab["arms"]["full"]["drawn_seeds"] == [1, 2, 3, 4, 5, 6, 7]
    again = cov.main(["--merge", str(_write(tmp_path, "ab.json", ab)), str(c)])
    assert again["arms"]["full"]["regression"][0]["n"] == 13
    assert again["arms"]["full"]["drawn_seeds"] == list(range(1, 14))
    capsys.readouterr()
    del ab["arms"]["full"]["drawn_seeds"]  # as an older merge wrote it
    old = cov.main(["--merge", str(_write(tmp_path, "old.json", ab)), str(c)])
    assert old["arms"]["full"]["regression"][0]["n"] == 6
    assert "drawn_seeds" not in old["arms"]["full"]
    assert "arm full: 7 realisations have no draws by seed" in capsys.readouterr().out
    ab["arms"]["full"]["drawn_seeds"] = [1, 2]
    bad = _write(tmp_path, "bad.json", ab)
    with pytest.raises(
        SystemExit, match=rf"arm .full. of {_re(bad)}: 7 draws for 2 distinct seeds"
    ):
        cov.main(["--merge", str(bad), str(c)])
    ab["arms"]["full"]["drawn_seeds"] = [1, 1, 2, 3, 4, 5, 6]  # a seed twice
    bad = _write(tmp_path, "bad2.json", ab)
    with pytest.raises(SystemExit, match=rf"of {_re(bad)}: 7 draws for 6 distinct seeds"):
        cov.main(["--merge", str(bad), str(c)])


def test_the_yield_level_lambda_variant_swaps_one_part(cov):
    """``varied_flow_lambda_yield``: ``varied_flow`` with the yield-level λ_θ size in place of
    the N-level one (newer rows carry both); a row with only one λ_θ size (an older output)
    gives ``varied_flow`` itself. Quadrature sums of three parts (float64)."""
    both = {"data_stat": 0.03, "acceptance_lambda_theta": 0.04,
            "acceptance_lambda_theta_yield": 0.02, "extrapolation_fit": 0.5}  # fmt: skip
    assert cov.quoted(both, "varied_flow") == pytest.approx(0.05, rel=1e-12)
    assert cov.quoted(both, "varied_flow_lambda_yield") == pytest.approx(
        np.hypot(0.03, 0.02), rel=1e-12
    )
    old = {"data_stat": 0.03, "acceptance_lambda_theta": 0.04}
    assert cov.quoted(old, "varied_flow_lambda_yield") == pytest.approx(
        cov.quoted(old, "varied_flow"), rel=1e-12
    )

