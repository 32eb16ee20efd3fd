"""k-NN KL validation of the kinematics flow against data (paper Sec. III C, Figs. 4–5, App. A).

Offers :func:`validate` (the ``gammastar validate`` stage: per validation mass the weighted
k-NN KL of flow samples to the held-out pairs against the data-vs-data band, the held-out vs
training NLL, common random numbers across the members of a seed ensemble; writes
``validation.json`` and the Fig. 4/5 analogues), :func:`plot_kl` and :func:`plot_kinematics`.
The stage is a thin orchestration over :func:`validation_inputs` (typed
:class:`ValidationInputs`) and :func:`validation_document`. The method, the outputs and the
checks are described in docs/explanation/flow.md "Validation".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from gammastar.config.flow import ValidateConfig
from gammastar.core import rundir
from gammastar.core.artifacts import check_writable, make_meta
from gammastar.core.figures import figure_style, save_figure
from gammastar.core.results import StageResult
from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.errors import GammastarError
from gammastar.flow.data import effective_sample_size, read_pairs, training_data
from gammastar.flow.ensemble import ensemble_size, load_ensemble
from gammastar.flow.kl import knn_kl
from gammastar.flow.model import load
from gammastar.yields.extrapolation.samplers import sample_accepted

if TYPE_CHECKING:
    import pandas as pd

    from gammastar.config import AnalysisConfig
    from gammastar.flow.data import TrainingData
    from gammastar.flow.model import FlowModel


class Window(NamedTuple):
    """The pairs of one mass window: (q_T, E, weight) (``weight`` ``None``: unweighted)."""

    qT: np.ndarray
    E: np.ndarray
    weight: np.ndarray | None = None


@dataclass(frozen=True)
class KLSettings:
    """The k-NN KL's sizes (:func:`kl_window`; ``validate`` keys of the same names)."""

    k: int = 2
    """Nearest neighbour used by the estimator (:func:`gammastar.flow.kl.knn_kl`)."""
    repeats: int = 50
    """Draws of the two halves (data-vs-data band) and of the flow samples."""
    max_points: int = 20_000
    """At most this many points per compared sample."""

    @classmethod
    def from_config(cls, vcfg: ValidateConfig) -> KLSettings:
        """The sizes of a :class:`~gammastar.config.flow.ValidateConfig`."""
        return cls(k=vcfg.k, repeats=vcfg.repeats, max_points=vcfg.max_points)


def window_data(
    data: TrainingData, m0: float, window: float, rng: np.random.Generator | None = None
) -> Window:
    """(q_T, E, weight) of the rows with |m − m₀| < window/2 and weight > 0, all of them.

    ``rng`` is not used (accepted so that callers that pass one keep working).
    """
    del rng
    sel = (np.abs(data.m - m0) < 0.5 * window) & (data.weight > 0)
    return Window(data.qT[sel], data.E[sel], data.weight[sel])


def window_nll(
    model: FlowModel, data: TrainingData, m0: float, window: float
) -> tuple[float, float, float]:
    """Weighted mean −ln p(q_T, E | m) (GeV⁻² density) of the window's rows with weight > 0,
    its standard error √(Σw²(ℓ − ℓ̄)²)/Σw, and Kish's n_eff; NaN without rows."""

    sel = (np.abs(data.m - m0) < 0.5 * window) & (data.weight > 0)
    w = data.weight[sel]
    if w.size < 2:
        return float("nan"), float("nan"), effective_sample_size(w)
    nll = -model.log_prob(data.m[sel], data.qT[sel], data.E[sel], extrapolate=True)
    ok = np.isfinite(nll)
    w, nll = w[ok], nll[ok]
    mean = float((w * nll).sum() / w.sum())
    err = float(np.sqrt((w**2 * (nll - mean) ** 2).sum()) / w.sum())
    return mean, err, effective_sample_size(w)


def kl_window(
    model: FlowModel,
    window: Window,
    m0: float,
    *,
    settings: KLSettings,
    rng: np.random.Generator,
    train: Window | None = None,
    keep: Any = None,
) -> dict[str, Any]:
    """Model-vs-data and data-vs-data KL for one mass window (see the module docstring).

    Arguments:
        model: the flow.
        window: the window's comparison data (held-out pairs; :class:`Window`).
        m0: the mass.
        settings: k, repeats, max_points (:class:`KLSettings`).
        rng: random stream.
        train: the window's training pairs: A is drawn from them and B is the comparison
            data; ``None``: A and B are random halves of the comparison data.
        keep: ``None``, or a ``(qT, E) → mask``: only the flow samples it keeps are compared
            (:func:`sample_kept`; the flow inside the fiducial region above a seam).

    ``rng`` is consumed in the same order for any model (the B subset; per repeat the A
    draw, then the flow-sample seed), so a generator re-created with the same seed gives every
    model the same data draws and the same latent points (common random numbers).
    """

    k, repeats, max_points = settings.k, settings.repeats, settings.max_points
    x = model.pre.features(window.qT, window.E)
    w = np.ones(len(x)) if window.weight is None else np.asarray(window.weight, dtype=np.float64)
    n = len(x)
    nan = float("nan")
    if train is None:
        half = min(n // 2, max_points)
    else:
        xt = model.pre.features(train.qT, train.E)
        wt = np.asarray(train.weight, dtype=np.float64)
        half = min(n, len(xt), max_points)
    out: dict[str, Any] = {"n_data": int(n), "n_eff": effective_sample_size(w)}
    if half <= k + 1:
        return {**out, "kl_model": nan, "kl_model_std": nan, "kl_data": []}
    kl_md, kl_dd, neff_b = [], [], []
    if train is not None:
        pick = np.sort(rng.permutation(n)[:half]) if n > half else np.arange(n)
        xb, wb = x[pick], w[pick]
    for _ in range(repeats):
        if train is None:
            perm = rng.permutation(n)
            ia, ib = perm[:half], perm[half : 2 * half]
            xa, wa, xb, wb = x[ia], w[ia], x[ib], w[ib]
        else:
            ia = rng.permutation(len(xt))[:half]
            xa, wa = xt[ia], wt[ia]
        kl_dd.append(knn_kl(xa, xb, k=k, p_weights=wa, q_weights=wb))
        s = sample_kept(model, m0, half, int(rng.integers(2**63)), keep)
        xm = model.pre.features(s["qT"], s["E"])
        kl_md.append(knn_kl(xm, xb, k=k, q_weights=wb))
        neff_b.append(effective_sample_size(wb))
    out.update(
        {
            "n_half": int(half),
            "n_eff_compared": float(np.mean(neff_b)),
            "kl_model": float(np.mean(kl_md)),
            "kl_model_std": float(np.std(kl_md, ddof=1)),
            "kl_model_draws": [float(v) for v in kl_md],
            "kl_data": [float(v) for v in kl_dd],
        }
    )
    return out


def seed_noise(runs: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> float:
    """Sampling noise left in the members' mean KL at one mass, under common random numbers.

    With K[j, r] the KL of member j in repeat r (same data split and latent points for every j),
    the member × repeat interaction e = K − K̄_j − K̄_r + K̄ is the part of each value that the
    members do not share; σ_e² = Σe²/((J−1)(R−1)) and the noise in a member's mean over the R
    repeats is σ_e/√R (two-way ANOVA without replication). It is 0 for identical members.
    NaN where the window has too few points or there are fewer than 2 members or repeats.
    """
    draws = [r.get("kl_model_draws") for r in runs]
    if len(draws) < 2 or any(not d for d in draws):
        return float("nan")
    k = np.asarray(draws, dtype=float)
    n_m, n_r = k.shape
    if n_r < 2:
        return float("nan")
    e = k - k.mean(1, keepdims=True) - k.mean(0, keepdims=True) + k.mean()
    return float(np.sqrt((e**2).sum() / ((n_m - 1) * (n_r - 1)) / n_r))


def _quantiles(v: list[float], lo: float, hi: float) -> list[float]:
    if not v:
        return [float("nan"), float("nan")]
    q = np.quantile(np.asarray(v), [lo, hi])
    return [float(q[0]), float(q[1])]


@dataclass
class ValidationInputs:
    """What :func:`validate` compares, per validation mass (:func:`validation_inputs`)."""

    seed: int
    masses: list[float]
    skipped: list[float]
    """Validation masses outside the flow's mass range."""
    held: TrainingData | None
    data: TrainingData
    split: dict[str, Any] | None
    streams: list[np.random.SeedSequence]
    """Per mass one stream, re-created for every model (common random numbers)."""
    wdata: list[Window]
    """Per mass the compared pairs' window (qT, E, weights)."""
    tdata: list[Window] | None
    """Per mass the training pairs' window, with a hold-out."""
    keep: list[Any] = field(default_factory=list)
    """Per mass ``None`` or a ``(qT, E) → inside`` mask for the flow's samples: a
    both-channels run stitched at a seam (:func:`fiducial_above_seam`) trains and uses its
    flow inside the fiducial region F above the seam, so it is compared there (the sampler,
    :class:`gammastar.yields.extrapolation.samplers.ExtrapolatedSampler`, keeps those samples alone too)."""

    @property
    def compare(self) -> TrainingData:
        """The pairs the flow is compared with: the held-out ones, else the training ones."""
        return self.held if self.held is not None else self.data


def validation_inputs(
    config: AnalysisConfig, model: FlowModel, pairs: pd.DataFrame, seed: int
) -> ValidationInputs:
    """The hold-out split the model records, the masses inside its range and their windows.

    Raises:
        GammastarError: every ``validate.masses`` lies outside the flow's mass range.
    """
    vcfg = config.validate_
    held, data, split = _split_data(model, config, pairs, seed)
    lo, hi = model.mass_range
    masses = [float(m) for m in vcfg.masses if lo <= m <= hi]
    skipped = [float(m) for m in vcfg.masses if not lo <= m <= hi]
    if not masses:
        raise GammastarError(
            f"validate.masses {vcfg.masses} are all outside the flow's mass range "
            f"[{lo:.4g}, {hi:.4g}] GeV"
        )
    # common random numbers: per mass one stream for the data draws and the flow-sample seeds,
    # re-created for every model (module docstring)
    compare = held if held is not None else data
    above = fiducial_above_seam(config)
    keep = [
        None
        if above is None or m0 < above[0]
        else (lambda q, e, m0=m0: above[1].contains(np.full(len(q), m0), q, e))
        for m0 in masses
    ]
    return ValidationInputs(
        keep=keep,
        seed=seed,
        masses=masses,
        skipped=skipped,
        held=held,
        data=data,
        split=split,
        streams=np.random.SeedSequence(seed).spawn(len(masses)),
        wdata=[window_data(compare, m0, vcfg.window) for m0 in masses],
        tdata=[window_data(data, m0, vcfg.window) for m0 in masses] if held is not None else None,
    )


def _score(fm: FlowModel, inp: ValidationInputs, vcfg: ValidateConfig, i: int) -> dict[str, Any]:
    """:func:`kl_window` of model ``fm`` at mass ``i`` on that mass's re-created stream."""
    # the per-mass stream is re-created for every model (common random numbers)
    rng = np.random.default_rng(inp.streams[i])
    return kl_window(
        fm,
        inp.wdata[i],
        inp.masses[i],
        settings=KLSettings.from_config(vcfg),
        rng=rng,
        train=inp.tdata[i] if inp.tdata is not None else None,
        keep=inp.keep[i] if inp.keep else None,
    )


def fiducial_above_seam(config: AnalysisConfig) -> tuple[float, Any] | None:
    """``(m_s, F)`` of a both-channels run stitched at a seam (``yields.json``
    ``extrapolation.seam`` and its ``fiducial`` region,
    :class:`gammastar.corrections.pair_acceptance.FiducialRegion`), else ``None``."""
    if len(config.input.flavours) < 2:
        return None
    rd = rundir.RunDir(config.output_dir)
    if not rd.path(rundir.YIELDS).exists():
        return None

    ex = rd.read_json(rundir.YIELDS).get("extrapolation") or {}
    if ex.get("seam") is None or "fiducial" not in ex:
        return None
    return float(ex["seam"]), FiducialRegion.from_dict(ex["fiducial"])


def sample_kept(model: FlowModel, m0: float, n: int, seed: int, keep: Any = None) -> Any:
    """``n`` flow samples at ``m0`` (``seed``), those for which ``keep(qT, E)`` holds when
    given (:func:`gammastar.yields.extrapolation.samplers.sample_accepted`, batches seeded from ``seed``).

    Raises:
        InputError: fewer than ``n`` kept after 100 batches.
    """
    if keep is None:
        return model.sample(m0, n, seed=seed, extrapolate=True)

    q, e = sample_accepted(
        lambda k, s: model.sample(m0, k, seed=s, extrapolate=True),
        n,
        np.random.default_rng(seed),
        keep,
        f"validate: at m = {m0:g} GeV",
    )
    return {"qT": q, "E": e}


def _model_windows(model: FlowModel, inp: ValidationInputs, vcfg: ValidateConfig) -> list[dict[str, Any]]:
    """Per mass the model's KL (:func:`_score`) with ``mass`` and the held-out/training NLL."""
    windows = []
    for i, m0 in enumerate(inp.masses):
        res = _score(model, inp, vcfg, i)
        res["mass"] = m0
        held = inp.held is not None
        nll_h = window_nll(model, inp.compare, m0, vcfg.window) if held else None
        nll_t = window_nll(model, inp.data, m0, vcfg.window)
        res["nll"] = {"holdout": nll_h, "train": nll_t}
        windows.append(res)
    return windows


def _member_runs(
    model: FlowModel, windows: list[dict[str, Any]], inp: ValidationInputs, vcfg: ValidateConfig
) -> tuple[list[list[dict[str, Any]]], list[Any]]:
    """The seed ensemble's scores ``[member][mass]`` and the members' training seeds (empty
    without an ensemble).

    The spread of the mean KL over members is the initialisation uncertainty (paper App. A:
    0.002, 0.006, 0.012 at m = 0.3, 0.7, 1.1 GeV). Only the members flow/meta.json records
    (``ensemble_size``) are scored: directories left from an older, larger ensemble are not.
    """

    runs: list[list[dict[str, Any]]] = []
    seeds: list[Any] = []
    size = ensemble_size(model)
    if model.path is not None and (
        size > 1 if size is not None else (model.path / rundir.ENSEMBLE_DIR).is_dir()
    ):
        # member 0 is this model (flow/ itself), scored above on the same random streams
        for k, member in enumerate(load_ensemble(model.path).models):
            seeds.append(member.meta.get("meta", {}).get("seed"))
            runs.append(
                windows
                if k == 0
                else [_score(member, inp, vcfg, i) for i in range(len(inp.masses))]
            )
    return runs, seeds


def _validation_meta(
    config: AnalysisConfig,
    model: FlowModel,
    inp: ValidationInputs,
    inputs: list[Any],
    member_seeds: list[Any],
) -> dict[str, Any]:
    """``validation.json`` ``meta``."""
    vcfg = config.validate_
    return make_meta(
        config_sha256=config.section_sha256("flow", "validate"),
        seed=inp.seed,
        inputs=[*inputs, model.path / rundir.MODEL_FILE] if model.path else inputs,
        k=vcfg.k,
        window=vcfg.window,
        repeats=vcfg.repeats,
        space="standardised (ln qT, ln E)",
        kl_estimator="weighted k-NN (gammastar.flow.kl.knn_kl with the pairs' weights)",
        validated_on=(
            "held-out pairs (B) vs training pairs (A)"
            if inp.held is not None
            else "training pairs (the model records no hold-out): random halves"
        ),
        holdout=inp.split,
        skipped_masses=inp.skipped,
        flow_sha256=model.meta.get("model_sha256"),
        ensemble_seeds=member_seeds or None,
        common_random_numbers=(
            "per mass: window data, A/B splits and flow-sample seeds shared by the model "
            "and every ensemble member (streams spawned from seed)"
        ),
    )


def validation_document(
    inp: ValidationInputs,
    windows: list[dict[str, Any]],
    member_runs: list[list[dict[str, Any]]],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The ``validation.json`` content (keys described in :func:`validate`)."""

    held = inp.held is not None
    by_mass = list(zip(*member_runs, strict=True)) if member_runs else []
    return {
        "mass": inp.masses,
        "kl_model": [w["kl_model"] for w in windows],
        "kl_data_68": [_quantiles(w["kl_data"], 0.16, 0.84) for w in windows],
        "kl_data_95": [_quantiles(w["kl_data"], 0.025, 0.975) for w in windows],
        "kl_model_std": [w["kl_model_std"] for w in windows],
        "kl_data_median": [
            float(np.median(w["kl_data"])) if w["kl_data"] else float("nan") for w in windows
        ],
        "n_data": [w["n_data"] for w in windows],
        "n_eff": [w["n_eff"] for w in windows],
        "n_eff_train": (
            [effective_sample_size(t[2]) for t in inp.tdata]
            if inp.tdata is not None
            else [w["n_eff"] for w in windows]
        ),
        "n_eff_total": {
            "train": inp.data.n_eff,
            "holdout": inp.held.n_eff if inp.held is not None else None,
        },
        "nll_holdout": [w["nll"]["holdout"][0] for w in windows] if held else None,
        "nll_holdout_err": [w["nll"]["holdout"][1] for w in windows] if held else None,
        "nll_train": [w["nll"]["train"][0] for w in windows],
        "nll_train_err": [w["nll"]["train"][1] for w in windows],
        "kl_model_members": (
            [[r["kl_model"] for r in runs] for runs in by_mass] if member_runs else None
        ),
        "kl_model_seed_std": (
            [float(np.std([r["kl_model"] for r in runs], ddof=1)) for runs in by_mass]
            if member_runs
            else None
        ),
        "kl_model_seed_noise": [seed_noise(runs) for runs in by_mass] if member_runs else None,
        "meta": meta,
    }


@dataclass(frozen=True)
class ValidationResult(StageResult):
    """What :func:`validate` wrote: ``validation.json`` (``path``) and its ``document``."""


def validate(
    config: AnalysisConfig,
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    seed: int | None = None,
    model: FlowModel | None = None,
    pairs: pd.DataFrame | None = None,
    figures: bool = True,
) -> ValidationResult:
    """``gammastar validate``: KL of the flow vs data in mass windows, with data-vs-data bands.

    Writes ``validation.json`` (``mass``, ``kl_model``, ``kl_data_68``, ``kl_data_95``, ``meta``
    and per-window details: ``n_data``, Kish's ``n_eff`` of the compared (held-out) pairs and
    ``n_eff_train`` of the window's training pairs, ``n_eff_total``, the weighted NLL of the
    held-out and training pairs ``nll_holdout``/``nll_train`` with ``_err`` (overfitting shows
    as held-out ≫ training); ``meta.holdout`` the split used; with a seed ensemble also ``kl_model_members`` (each member's mean
    KL), ``kl_model_seed_std`` (their standard deviation: the initialisation spread, with common
    random numbers so that identical members give 0) and ``kl_model_seed_noise`` (the sampling
    noise still in each member's mean, see :func:`seed_noise`; the spread is resolved where it
    is well above this)) and, with ``figures``, ``figures/flow_kl.png`` (Fig. 4 analogue) and
    ``figures/flow_kinematics.png`` (Fig. 5 analogue).

    A thin orchestration: :func:`validation_inputs`, the model's and the ensemble members'
    windows, :func:`validation_document`, writing and figures.

    Returns:
        A :class:`ValidationResult`: ``validation.json`` and its document.
    """

    if output is not None:
        config = config.model_copy(update={"output": str(Path(output).resolve())})
    vcfg = config.validate_
    rd = rundir.RunDir(config.output_dir)
    check_writable(rd.path(rundir.VALIDATION), force)
    if model is None:
        model = load(rd.path(rundir.FLOW_DIR))
    inputs: list[Any] = []
    if pairs is None:
        pairs, src = read_pairs(config)
        inputs.append(src)
    s = int(seed if seed is not None else config.seed)
    inp = validation_inputs(config, model, pairs, s)
    windows = _model_windows(model, inp, vcfg)
    member_runs, member_seeds = _member_runs(model, windows, inp, vcfg)
    meta = _validation_meta(config, model, inp, inputs, member_seeds)
    result = validation_document(inp, windows, member_runs, meta)
    rd.write_json(rundir.VALIDATION, result, force=force)  # schema-checked
    if figures:
        kl_png, kin_png = map(rd.path, rundir.stage_figures("validate"))
        plot_kl(result, kl_png, force=True)
        lo, hi = model.mass_range
        fig_masses = [m for m in vcfg.figure_masses if lo <= m <= hi]
        plot_kinematics(model, inp.compare, fig_masses, vcfg.window, kin_png, s)
    return ValidationResult(rd.path(rundir.VALIDATION), result)



def _split_data(
    model: FlowModel, config: AnalysisConfig, pairs: pd.DataFrame, seed: int
) -> tuple[TrainingData | None, TrainingData, dict[str, Any] | None]:
    """(held-out rows or ``None``, training rows, the split record) as the model records them.

    The split (fraction, seed) is taken from the model's ``meta.json`` (``meta.holdout``), not
    from the config, so that validation uses exactly the pairs that training left out; the
    training rows are rebuilt with the training seed (same ``max_pairs`` subset). A model
    without a record (older gammastar) or with ``holdout_fraction: 0`` is validated on all rows.
    """

    info = model.meta.get("meta", {})
    rec = info.get("holdout")
    tseed = info.get("seed")
    tseed = int(tseed) if isinstance(tseed, int) else seed
    if not rec or not rec.get("fraction"):
        cfg = config.flow.model_copy(update={"holdout_fraction": 0.0})
        return None, training_data(pairs, cfg, source="pairs", seed=tseed, part="all"), rec
    cfg = config.flow.model_copy(update={"holdout_fraction": float(rec["fraction"])})
    hs = int(rec["seed"])
    data = training_data(pairs, cfg, source="pairs", seed=tseed, holdout_seed=hs)
    held = training_data(pairs, cfg, source="pairs", seed=tseed, part="holdout", holdout_seed=hs)
    if held.n == 0:
        raise GammastarError(
            f"validate: no held-out pairs (flow.holdout_fraction={rec['fraction']:g}, "
            f"seed {hs}); retrain with more data or a larger fraction"
        )
    split = {k: v for k, v in rec.items() if k not in ("part", "holdout_sha256")}
    split["holdout_sha256"] = held.sha256
    split["matches_training"] = held.sha256 == rec.get("holdout_sha256")
    return held, data, split


@figure_style()
def plot_kl(result: dict[str, Any], path: Path, force: bool = True) -> Path:
    """KL vs mass: model vs data with the data-vs-data 68%/95% bands (Fig. 4 analogue)."""
    from matplotlib.figure import Figure

    m = np.asarray(result["mass"])
    b68 = np.asarray(result["kl_data_68"], dtype=float)
    b95 = np.asarray(result["kl_data_95"], dtype=float)
    fig = Figure(figsize=(8, 5.5))
    ax = fig.subplots()
    ax.fill_between(m, b95[:, 0], b95[:, 1], color="gold", alpha=0.6, label="data vs data 95%")
    ax.fill_between(m, b68[:, 0], b68[:, 1], color="limegreen", alpha=0.7, label="data vs data 68%")
    ax.plot(m, result["kl_data_median"], "g--", lw=1)
    ax.errorbar(
        m, result["kl_model"], yerr=result["kl_model_std"], fmt="k-o", ms=3, label="model vs data"
    )
    ax.set_xlabel(r"$m_{\gamma^*}$ [GeV]")
    ax.set_ylabel("KL divergence")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.25 * (hi - lo))  # headroom: the legend above the bands
    ax.legend(fontsize="x-small", ncols=3, loc="upper center")
    fig.tight_layout()
    return save_figure(fig, path, force=force, close=True, dpi=120)


@figure_style()
def plot_kinematics(
    model: FlowModel,
    data: TrainingData,
    masses: list[float],
    window: float,
    path: Path,
    seed: int,
    force: bool = True,
) -> Path | None:
    """q_T and E of flow samples vs data in mass windows (Fig. 5 analogue)."""
    if not masses:
        return None
    from matplotlib.figure import Figure

    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(4.5 * len(masses), 8))
    axes = fig.subplots(2, len(masses), squeeze=False)
    for j, m0 in enumerate(masses):
        sel = np.abs(data.m - m0) < 0.5 * window
        n = max(int(sel.sum()), 1000)
        s = model.sample(m0, 10 * n, seed=int(rng.integers(2**63)))
        for i, (key, label) in enumerate((("qT", r"$q_T$ [GeV]"), ("E", "E [GeV]"))):
            ax = axes[i, j]
            vals, wts = getattr(data, key)[sel], data.weight[sel]
            both = np.concatenate([vals, s[key]])
            both = both[np.isfinite(both)]
            hi = float(np.quantile(both, 0.995)) if both.size else 1.0
            lo = 0.0 if key == "qT" else float(np.quantile(both, 0.001)) if both.size else 0.0
            if not hi > lo:  # a window without spread (sparse data): nothing to draw
                ax.set_xlabel(label)
                continue
            bins = np.linspace(lo, hi, 40)
            if vals.size and wts.sum() > 0:  # density needs a positive total (SS-subtracted)
                ax.hist(
                    vals,
                    bins=bins,
                    weights=wts,
                    density=True,
                    histtype="step",
                    color="k",
                    label="data",
                )
            ax.hist(s[key], bins=bins, density=True, histtype="step", color="C1", label="flow")
            ax.set_xlabel(label)
            if i == 0:
                ax.set_title(f"m = {m0:.3g} GeV")
            if i == 0 and j == 0:
                ax.legend(fontsize="x-small")
    fig.tight_layout()
    return save_figure(fig, path, force=force, close=True, dpi=110)
