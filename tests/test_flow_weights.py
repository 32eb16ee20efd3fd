"""Training and validation on strongly varying weights.

Weighted likelihood with the stratified |w| sampler, Kish's effective sample size, the
event-hash hold-out split and overfitting seen on the held-out pairs. The synthetic pairs are
those of tests/test_flow.py (ln q_T, ln E Gaussian with mass-dependent means); the weights
reweight them to another, known density.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from _phys_figures import skip_loss_figure
from test_flow import SIG_QT, make_config, qt_median, synthetic_pairs

from gammastar.config.flow import FlowConfig
from gammastar.core.artifacts import make_meta
from gammastar.errors import InputError
from gammastar.flow.architecture import architecture_from_config
from gammastar.flow.data import effective_sample_size, holdout_mask, training_data
from gammastar.flow.model import load, save_model
from gammastar.flow.stage import train
from gammastar.flow.training import PointSampler, _negative_batches, fit, systematic_resample
from gammastar.flow.validate import validate

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_loss_figure(monkeypatch):
    """The trainings here are checked by their numbers: the loss figure is not drawn
    (tests/_phys_figures.py)."""
    skip_loss_figure(monkeypatch)


# --------------------------------------------------------------------------- n_eff
def test_effective_sample_size():
    assert effective_sample_size(np.ones(7)) == 7.0
    assert effective_sample_size([1.0, 3.0]) == pytest.approx(16 / 10)  # (Σw)²/Σw²
    assert effective_sample_size([1.0, 1.0, -1.0]) == pytest.approx(1 / 3)  # cancellation
    assert effective_sample_size([]) == 0.0
    # w = exp(μx − μ²/2), x ~ N(0, 1) (N(0,1) reweighted to N(μ,1)): E[w] = 1, E[w²] = e^{μ²},
    # so n_eff/N → e^{−μ²}. Relative s.d. of the Σw² estimate: √((E[w⁴]/E[w²]² − 1)/N)
    # = √((e^{4μ²} − 1)/N) = 0.0055 for μ = 0.7, N = 2e5; tolerance 3%: ~4 of those + the Σw term.
    mu, n = 0.7, 200_000
    x = np.random.default_rng(3).normal(size=n)
    w = np.exp(mu * x - mu**2 / 2)
    assert effective_sample_size(w) / n == pytest.approx(np.exp(-(mu**2)), rel=0.03)


# --------------------------------------------------------------------------- hold-out split
def _two_pair_events(n_events: int, seed: int = 0) -> pd.DataFrame:
    """Each event contributes an OS and an SS pair (one event number, two rows)."""
    p = synthetic_pairs(2 * n_events, seed=seed)
    p["event"] = np.repeat(np.arange(n_events) * 7 + 1000, 2)
    p.loc[1::2, "charge"] = 2
    p.loc[1::2, "weight"] = -0.5
    return p


def test_holdout_split_reproducible_disjoint_by_event():
    pairs = _two_pair_events(5000)
    cfg = FlowConfig(data="subtracted", holdout_fraction=0.25)
    tr = training_data(pairs, cfg, seed=1)
    ho = training_data(pairs, cfg, seed=1, part="holdout")
    al = training_data(pairs, cfg, seed=1, part="all")
    assert tr.n + ho.n == al.n == 10_000  # a partition of the rows
    held = holdout_mask(pairs["event"].to_numpy(), 0.25, 1)
    # both pairs of an event on the same side
    assert np.array_equal(held[0::2], held[1::2])
    # disjoint: the held-out masses are exactly the rows the mask picks, none in training
    assert np.array_equal(np.sort(ho.m), np.sort(pairs["m"].to_numpy()[held]))
    assert not np.intersect1d(tr.m, ho.m).size
    # fraction of events: binomial, σ = √(0.25·0.75/5000) = 0.0061; 4σ
    assert abs(held[0::2].mean() - 0.25) < 4 * 0.0061
    # reproducible, independent of the row order; another seed gives another split
    shuffled = pairs.sample(frac=1.0, random_state=3)
    ho2 = training_data(shuffled, cfg, seed=1, part="holdout")
    assert np.array_equal(np.sort(ho2.m), np.sort(ho.m))
    ho3 = training_data(pairs, cfg.model_copy(update={"holdout_seed": 2}), seed=1, part="holdout")
    assert not np.array_equal(np.sort(ho3.m), np.sort(ho.m))
    assert ho.split["seed"] == 1
    assert ho3.split["seed"] == 2
    assert ho.split["key"] == "event"
    assert ho.split["n_events"]["holdout"] + ho.split["n_events"]["train"] == 5000
    # no event column: one key per row; fraction 0: nothing held out
    assert training_data(pairs.drop(columns=["event"]), cfg).split["key"] == "row"
    none = training_data(pairs, cfg.model_copy(update={"holdout_fraction": 0.0}), seed=1)
    assert none.n == 10_000


# --------------------------------------------------------------------------- sampler
def test_systematic_resample_counts():
    """Each row is drawn ⌊λ⌋ or ⌈λ⌉ times (λ = points·p); equal weights: a permutation."""
    gen = torch.Generator().manual_seed(0)
    w = torch.as_tensor(np.random.default_rng(0).pareto(1.5, 3000) + 0.01, dtype=torch.float64)
    p = w / w.sum()
    cum = torch.cumsum(p, 0)
    cum /= cum[-1].clone()
    for points in (3000, 10_000):
        idx = systematic_resample(cum, points, gen)
        counts = torch.bincount(idx, minlength=3000).double()
        lam = points * p
        assert torch.all(counts >= torch.floor(lam) - 1e-9)
        assert torch.all(counts <= torch.ceil(lam) + 1e-9)
    # batches of net weight ≤ 0 are counted: [1, −2] and [−1] of [1, −2 | 3, −1 | −1]
    assert _negative_batches(torch.tensor([1.0, -2.0, 3.0, -1.0, -1.0]), 2) == 2
    eq = torch.cumsum(torch.full((500,), 1 / 500, dtype=torch.float64), 0)
    eq /= eq[-1].clone()
    assert torch.equal(torch.sort(systematic_resample(eq, 500, gen)).values, torch.arange(500))


def _grad_draws(scheme: str, x, c, w, n_batches: int, batch: int, flow, bins: int):
    gen = torch.Generator().manual_seed(1)
    draw = PointSampler(w, scheme)
    params = [p for p in flow.parameters() if p.requires_grad]
    out = []
    idx = draw.epoch(n_batches * batch, gen)
    for s in range(0, len(idx), batch):
        b = idx[s : s + batch]
        lp = flow(c[b]).log_prob(x[b])
        loss = -(draw.loss_weight[b] * lp).sum() / len(b)
        g = torch.autograd.grad(loss, params)
        out.append(torch.cat([gi.reshape(-1) for gi in g]).double())
    return torch.stack(out)


@pytest.mark.slow
def test_stratified_sampler_lowers_gradient_variance():
    """Weights 1/A with A uniform in [0.01, 1] (1/A up to 100): drawing ∝ |w| estimates the same
    gradient with a variance smaller by about E[w²]/E[w]² = 4.7 than weighting uniform draws
    (for per-point gradients independent of w; docs/explanation/flow.md). Both are unbiased: their mean
    gradients agree within 5 standard errors."""
    from _flows import randomised_flow

    flow, bins = randomised_flow(seed=2, scale=0.1)
    rng = np.random.default_rng(4)
    n = 20_000
    x = torch.as_tensor(rng.normal(size=(n, 2)), dtype=torch.float32)
    c = torch.as_tensor(rng.normal(size=(n, 1)), dtype=torch.float32)
    w = torch.as_tensor(1 / rng.uniform(0.01, 1.0, n), dtype=torch.float32)
    w = w / w.mean()
    g = {s: _grad_draws(s, x, c, w, 150, 128, flow, bins) for s in ("likelihood", "stratified")}
    var = {s: float(v.var(0).sum()) for s, v in g.items()}
    ratio = var["likelihood"] / var["stratified"]
    expect = float((w.double() ** 2).mean() / w.double().mean() ** 2)
    assert ratio > 0.5 * expect, (ratio, expect)
    # unbiased: the difference of the mean gradients within 5 s.e. (summed over parameters)
    diff = g["likelihood"].mean(0) - g["stratified"].mean(0)
    se2 = g["likelihood"].var(0) / 150 + g["stratified"].var(0) / 150
    assert float((diff**2).sum()) < 5**2 * float(se2.sum())


# --------------------------------------------------------------------------- weighted training
def _reweighted_pairs(n: int, seed: int, shift: float, width: float) -> pd.DataFrame:
    """Pairs whose ln q_T ~ N(ln median(m), σ = SIG_QT), weighted to the target density
    N(ln median(m) + shift, width): w = N(x; μ + shift, width) / N(x; μ, σ)."""
    p = synthetic_pairs(n, seed=seed)
    t = np.log(p["qT"].to_numpy()) - np.log(qt_median(p["m"].to_numpy()))
    logw = -0.5 * ((t - shift) / width) ** 2 + 0.5 * (t / SIG_QT) ** 2 + np.log(SIG_QT / width)
    return p.assign(weight=np.exp(logw))


@pytest.mark.slow
def test_weighted_training_recovers_the_reweighted_density(tmp_path):
    """The flow trained with weights w = target/sample learns the target: mean and width of
    ln q_T at m = 0.5 GeV equal the target's (shift +0.5, width 0.4 instead of 0.5) within
    4 σ_stat + 0.03 (flow approximation after a few epochs), σ_stat = width/√n_eff of the pairs
    within ±0.05 GeV (for the width: width/√(2 n_eff)); the unweighted answer is 0.5 away.

    Validation uses the weights too: the weighted model's KL to the held-out pairs is inside
    the data-vs-data 95% band, a model trained without the weights (``use_weights: false``,
    i.e. the raw sample's density) is above it at every window."""
    shift, width = 0.5, 0.4
    # 40k pairs (training cost is set by points_per_epoch): ≥ 200 held-out pairs per window
    pairs = _reweighted_pairs(40_000, seed=11, shift=shift, width=width)
    w = pairs["weight"].to_numpy()
    assert w.max() / w.mean() > 5  # strongly varying
    cfg = make_config(
        tmp_path,
        transforms=3,
        hidden_features=[32],
        bins=6,
        epochs=8,
        points_per_epoch=10_000,
        batch_size=1000,
        learning_rate=1e-2,
    )
    model = load(train(cfg, pairs=pairs).path)
    s = model.sample(0.5, 200_000, seed=3)
    t = np.log(s["qT"]) - np.log(qt_median(0.5))
    win = np.abs(pairs["m"].to_numpy() - 0.5) < 0.05
    held = holdout_mask(pairs["event"].to_numpy(), cfg.flow.holdout_fraction, cfg.seed)
    n_eff = effective_sample_size(w[win & ~held])
    tol_mean = 4 * width / np.sqrt(n_eff) + 0.03
    tol_width = 4 * width / np.sqrt(2 * n_eff) + 0.03
    assert abs(t.mean() - shift) < tol_mean, (t.mean(), tol_mean, n_eff)
    assert abs(t.std() - width) < tol_width, (t.std(), tol_width)
    info = json.loads((cfg.output_dir / "flow" / "meta.json").read_text())["meta"]
    assert info["weighting"] == "stratified"
    # the recorded n_eff is Kish's formula on the training rows
    tr = training_data(pairs, cfg.flow, seed=cfg.seed)
    assert info["n_eff"]["train"] == pytest.approx(effective_sample_size(tr.weight))
    assert info["n_eff"]["train"] < 0.7 * tr.n
    res = validate(cfg, pairs=pairs, figures=False).document
    for km, (_, hi) in zip(res["kl_model"], res["kl_data_95"], strict=True):
        assert km <= hi, (res["mass"], res["kl_model"], res["kl_data_95"])
    assert all(ne < 0.7 * n for ne, n in zip(res["n_eff"], res["n_data"], strict=True))
    raw_cfg = make_config(tmp_path / "raw", **{**dict(cfg.flow), "use_weights": False})
    raw = load(train(raw_cfg, pairs=pairs).path)
    bad = validate(cfg, pairs=pairs, model=raw, figures=False, force=True).document
    for km, (_, hi) in zip(bad["kl_model"], bad["kl_data_95"], strict=True):
        assert km > hi, (bad["kl_model"], bad["kl_data_95"])


# the same subtracted training: test_flow.py::test_subtracted_negative_weights_learn_the_signal
@pytest.mark.slow
def test_negative_weights_subtract_a_known_background(tmp_path):
    """OS = signal + background, SS = the same background with weight −1 (tests/test_flow.py
    synthetic_pairs): trained on OS − SS the flow's mean ln q_T at 0.5 GeV is the signal's
    (ln median, tolerance 4 SIG_QT/√n_eff + 0.05) while OS alone is pulled to the background
    (median 1.2 GeV vs the signal's 0.5)."""
    pairs = synthetic_pairs(12_000, seed=5, ss_fraction=0.5)
    kw = {
        "epochs": 8,
        "points_per_epoch": 10_000,
        "transforms": 3,
        "hidden_features": [32],
        "bins": 6,
        "learning_rate": 1e-2,
    }
    cfg = make_config(tmp_path / "s", data="subtracted", **kw)
    sub = load(train(cfg, pairs=pairs).path)
    target = np.log(qt_median(0.5))
    got = np.log(sub.sample(0.5, 100_000, seed=1)["qT"]).mean()
    tr = training_data(pairs, cfg.flow, seed=cfg.seed)
    n_eff = effective_sample_size(tr.weight[np.abs(tr.m - 0.5) < 0.05])
    assert abs(got - target) < 4 * SIG_QT / np.sqrt(n_eff) + 0.05, (got, target, n_eff)
    hist = json.loads((cfg.output_dir / "flow" / "history.json").read_text())
    assert len(hist["negative_batches"]) == len(hist["train"])


def test_training_weights_summing_to_zero_are_refused(tmp_path):
    pairs = synthetic_pairs(2000, seed=2, ss_fraction=1.0)
    pairs.loc[pairs["charge"] != 0, "weight"] = -30.0  # subtraction larger than the OS total
    with pytest.raises(InputError, match="sum to"):
        train(make_config(tmp_path, data="subtracted"), pairs=pairs)


# --------------------------------------------------------------------------- hold-out in use
def test_training_never_sees_the_held_out_pairs(tmp_path):
    """Changing the held-out pairs' kinematics leaves the trained model bit-identical; the
    split and n_eff are recorded in flow/meta.json and validation.json."""
    pairs = synthetic_pairs(4000, seed=9)
    cfg = make_config(tmp_path / "a", epochs=2)
    held = holdout_mask(pairs["event"].to_numpy(), cfg.flow.holdout_fraction, cfg.seed)
    other = pairs.copy()
    other.loc[held, "qT"] *= 3.0
    a = train(cfg, pairs=pairs).path
    b = train(make_config(tmp_path / "b", epochs=2), pairs=other).path
    sa = torch.load(a / "model.pt", weights_only=True)
    sb = torch.load(b / "model.pt", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    info = json.loads((a / "meta.json").read_text())["meta"]
    rec = info["holdout"]
    assert rec["fraction"] == 0.2
    assert rec["seed"] == cfg.seed
    assert rec["key"] == "event"
    assert rec["n_rows"]["holdout"] == int(held.sum())
    assert info["n_train_rows"] == int((~held).sum())
    assert set(info["n_eff"]) >= {"train", "holdout", "fitted", "early_stopping", "windows"}
    assert info["n_eff"]["windows"]["mass"] == [0.3, 0.6]
    assert np.isfinite(info["loss"]["holdout"])
    res = validate(cfg, pairs=pairs, figures=False).document
    assert res["meta"]["holdout"]["matches_training"] is True
    assert res["meta"]["holdout"]["seed"] == cfg.seed
    # the comparison data are the held-out pairs of each window (unit weights: n_eff = n)
    m = pairs["m"].to_numpy()
    for m0, n, ne in zip(res["mass"], res["n_data"], res["n_eff"], strict=True):
        assert n == int((held & (np.abs(m - m0) < 0.02)).sum())
        assert ne == pytest.approx(n)
    assert len(res["nll_holdout"]) == len(res["mass"])


def test_overfitting_shows_on_the_held_out_pairs(tmp_path):
    """A flow far too large for 140 training pairs (weights 1/A up to 10), trained 80 full-batch
    epochs without early stopping, memorises them: its weighted NLL on the held-out pairs is
    above that on its training pairs by more than 4 standard errors (independent sets, so the
    errors add in quadrature), and its KL to the held-out pairs is above the data-vs-data 95%
    band. validation.json reports both."""
    rng = np.random.default_rng(2)
    n = 300
    m = rng.uniform(0.45, 0.55, n)
    pairs = pd.DataFrame(
        {
            "event": np.arange(n),
            "m": m,
            "qT": rng.lognormal(np.log(qt_median(m)), SIG_QT),
            "E": rng.lognormal(np.log(20 + 10 * m), 0.4),
            "charge": np.zeros(n, dtype=np.int8),
            "weight_raw": 1.0,
            "weight": 1 / rng.uniform(0.1, 1.0, n),  # 1/A up to 10
        }
    )
    cfg = make_config(
        tmp_path,
        transforms=3,
        hidden_features=[64, 64],
        bins=6,
        epochs=80,
        points_per_epoch=None,
        batch_size=1024,
        learning_rate=1e-2,
        weight_decay=0.0,
        schedule="constant",
        patience=10_000,
        validation_fraction=0.05,
        holdout_fraction=0.5,
    )
    cfg = cfg.model_copy(
        update={
            "validate_": cfg.validate_.model_copy(
                update={"masses": [0.5], "window": 0.1, "repeats": 8}
            )
        }
    )
    data = training_data(pairs, cfg.flow, seed=cfg.seed)
    res = fit(data, cfg.flow, seed=cfg.seed, restore_best=False)
    held = training_data(pairs, cfg.flow, seed=cfg.seed, part="holdout")
    meta = make_meta(
        config_sha256="", seed=cfg.seed, holdout={**data.split, "holdout_sha256": held.sha256}
    )
    save_model(
        cfg.output_dir / "flow",
        res.flow,
        res.preprocessing,
        architecture_from_config(cfg.flow),
        (0.45, 0.55),
        meta,
        force=True,
    )
    v = validate(cfg, pairs=pairs, figures=False).document
    gap = v["nll_holdout"][0] - v["nll_train"][0]
    err = np.hypot(v["nll_holdout_err"][0], v["nll_train_err"][0])
    assert gap > 4 * err, (gap, err)
    assert v["kl_model"][0] > v["kl_data_95"][0][1]
