"""k-NN KL validation of the kinematics flow against data (paper Sec. III C, Figs. 4–5, App. A).

For each validation mass m₀ the data are the training rows (same selection and weights as the
flow's training) with |m − m₀| < window/2, made unweighted by accept–reject with probability
w/max(w) (rows with negative weight are not data points and are dropped). In each of ``repeats``
independent draws the window's data are split at random into halves A and B:

* data-vs-data: D̂(A‖B) — its 16–84% and 2.5–97.5% quantiles are the 68% / 95% bands;
* model-vs-data: D̂(M‖B), M a flow sample of |A| points at m₀ — ``kl_model`` is its mean.

Both statistics use the same sample sizes, so they share the estimator's finite-sample bias.

Common random numbers: per mass the window's data, the A/B splits and the flow-sample seeds are
drawn once (from the seed's per-mass child stream) and reused for the model and for every member
of a seed ensemble, so that members differ only by their parameters. Identical members give
identical KL values, and ``kl_model_seed_std`` (the spread of the members' mean KL) measures the
initialisation spread plus only the sampling noise that the members do not share;
``kl_model_seed_noise`` estimates that remaining noise from the member × repeat interaction.
The k-NN distances are computed in the flow's standardised (ln q_T, ln E) space (KL is
invariant under this bijection; the space only affects the finite-sample behaviour).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar._api import make_callable as _make_callable
from gammastar.artifacts import atomic_path, check_writable, make_meta, write_json
from gammastar.errors import GammastarError
from gammastar.kl import knn_kl

if TYPE_CHECKING:
    import pandas as pd

    from gammastar.config import AnalysisConfig
    from gammastar.flow import FlowModel, TrainingData


def window_data(
    data: TrainingData, m0: float, window: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted (q_T, E) of the rows with |m − m₀| < window/2 (accept–reject on weights)."""
    sel = (np.abs(data.m - m0) < 0.5 * window) & (data.weight > 0)
    w = data.weight[sel]
    if w.size == 0:
        return np.empty(0), np.empty(0)
    keep = rng.uniform(0, w.max(), w.size) < w
    return data.qT[sel][keep], data.E[sel][keep]


def kl_window(
    model: FlowModel,
    qT: np.ndarray,
    E: np.ndarray,
    m0: float,
    *,
    k: int,
    repeats: int,
    max_points: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Model-vs-data and data-vs-data KL for one mass window (see the module docstring).

    ``rng`` is consumed in the same order for any model (per repeat: the permutation, then the
    flow-sample seed), so a generator re-created with the same seed gives every model the same
    A/B splits and the same latent points (common random numbers).
    """
    x = model.pre.features(qT, E)
    n = len(x)
    half = min(n // 2, max_points)
    if half <= k + 1:
        return {
            "n_data": int(n),
            "kl_model": float("nan"),
            "kl_model_std": float("nan"),
            "kl_data": [],
        }
    kl_md, kl_dd = [], []
    for _ in range(repeats):
        perm = rng.permutation(n)
        a, b = x[perm[:half]], x[perm[half : 2 * half]]
        kl_dd.append(knn_kl(a, b, k=k))
        s = model.sample(m0, half, seed=int(rng.integers(2**63)), extrapolate=True)
        kl_md.append(knn_kl(model.pre.features(s["qT"], s["E"]), b, k=k))
    return {
        "n_data": int(n),
        "n_half": int(half),
        "kl_model": float(np.mean(kl_md)),
        "kl_model_std": float(np.std(kl_md, ddof=1)),
        "kl_model_draws": [float(v) for v in kl_md],
        "kl_data": [float(v) for v in kl_dd],
    }


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


def validate(
    config: AnalysisConfig,
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    seed: int | None = None,
    model: FlowModel | None = None,
    pairs: pd.DataFrame | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """``gammastar validate``: KL of the flow vs data in mass windows, with data-vs-data bands.

    Writes ``validation.json`` (``mass``, ``kl_model``, ``kl_data_68``, ``kl_data_95``, ``meta``
    and per-window details; with a seed ensemble also ``kl_model_members`` (each member's mean
    KL), ``kl_model_seed_std`` (their standard deviation: the initialisation spread, with common
    random numbers so that identical members give 0) and ``kl_model_seed_noise`` (the sampling
    noise still in each member's mean, see :func:`seed_noise`; the spread is resolved where it
    is well above this)) and, with ``figures``, ``figures/flow_kl.png`` (Fig. 4 analogue) and
    ``figures/flow_kinematics.png`` (Fig. 5 analogue).

    Returns:
        The JSON content as a dict.
    """
    from gammastar.flow import ensemble_size, load, load_ensemble, read_pairs, training_data

    if output is not None:
        config = config.model_copy(update={"output": str(Path(output).resolve())})
    vcfg = config.validate_
    out_json = config.output_dir / "validation.json"
    check_writable(out_json, force)
    if model is None:
        model = load(config.output_dir / "flow")
    inputs: list[Any] = []
    if pairs is None:
        pairs, src = read_pairs(config)
        inputs.append(src)
    s = int(seed if seed is not None else config.seed)
    data = training_data(pairs, config.flow, source="pairs", seed=s)
    lo, hi = model.mass_range
    masses = [float(m) for m in vcfg.masses if lo <= m <= hi]
    skipped = [float(m) for m in vcfg.masses if not lo <= m <= hi]
    if not masses:
        raise GammastarError(
            f"validate.masses {vcfg.masses} are all outside the flow's mass range "
            f"[{lo:.4g}, {hi:.4g}] GeV"
        )
    # common random numbers: per mass one stream for the window data and one for the splits and
    # flow-sample seeds; the second is re-created for every model (module docstring)
    streams = [
        (np.random.default_rng(a), b)
        for a, b in (c.spawn(2) for c in np.random.SeedSequence(s).spawn(len(masses)))
    ]
    wdata = [
        window_data(data, m0, vcfg.window, d_rng)
        for m0, (d_rng, _) in zip(masses, streams, strict=True)
    ]

    def run(fm: FlowModel, i: int) -> dict[str, Any]:
        qT, E = wdata[i]
        return kl_window(
            fm,
            qT,
            E,
            masses[i],
            k=vcfg.k,
            repeats=vcfg.repeats,
            max_points=vcfg.max_points,
            rng=np.random.default_rng(streams[i][1]),
        )

    windows = []
    for i, m0 in enumerate(masses):
        res = run(model, i)
        res["mass"] = m0
        windows.append(res)
    # seed ensemble (flow.ensemble > 1): the spread of the mean KL over members is the
    # initialisation uncertainty (paper App. A: 0.002, 0.006, 0.012 at m = 0.3, 0.7, 1.1 GeV)
    member_runs: list[list[dict[str, Any]]] = []  # [member][mass]
    member_seeds: list[Any] = []
    # only the members flow/meta.json records (ensemble_size): directories left from an older,
    # larger ensemble are not validated
    size = ensemble_size(model)
    if model.path is not None and (
        size > 1 if size is not None else (model.path / "ensemble").is_dir()
    ):
        # member 0 is this model (flow/ itself), scored above on the same random streams
        members = load_ensemble(model.path).models
        for k, member in enumerate(members):
            member_seeds.append(member.meta.get("meta", {}).get("seed"))
            member_runs.append(windows if k == 0 else [run(member, i) for i in range(len(masses))])
    by_mass = list(zip(*member_runs, strict=True)) if member_runs else []
    result: dict[str, Any] = {
        "mass": masses,
        "kl_model": [w["kl_model"] for w in windows],
        "kl_data_68": [_quantiles(w["kl_data"], 0.16, 0.84) for w in windows],
        "kl_data_95": [_quantiles(w["kl_data"], 0.025, 0.975) for w in windows],
        "kl_model_std": [w["kl_model_std"] for w in windows],
        "kl_data_median": [
            float(np.median(w["kl_data"])) if w["kl_data"] else float("nan") for w in windows
        ],
        "n_data": [w["n_data"] for w in windows],
        "kl_model_members": (
            [[r["kl_model"] for r in runs] for runs in by_mass] if member_runs else None
        ),
        "kl_model_seed_std": (
            [float(np.std([r["kl_model"] for r in runs], ddof=1)) for runs in by_mass]
            if member_runs
            else None
        ),
        "kl_model_seed_noise": [seed_noise(runs) for runs in by_mass] if member_runs else None,
        "meta": make_meta(
            config_sha256=config.section_sha256("flow", "validate"),
            seed=s,
            inputs=[*inputs, model.path / "model.pt"] if model.path else inputs,
            k=vcfg.k,
            window=vcfg.window,
            repeats=vcfg.repeats,
            space="standardised (ln qT, ln E)",
            skipped_masses=skipped,
            flow_sha256=model.meta.get("model_sha256"),
            ensemble_seeds=member_seeds or None,
            common_random_numbers=(
                "per mass: window data, A/B splits and flow-sample seeds shared by the model "
                "and every ensemble member (streams spawned from seed)"
            ),
        ),
    }
    write_json(out_json, result, force=force)
    if figures:
        figdir = config.output_dir / "figures"
        plot_kl(result, figdir / "flow_kl.png", force=True)
        fig_masses = [m for m in vcfg.figure_masses if lo <= m <= hi]
        plot_kinematics(model, data, fig_masses, vcfg.window, figdir / "flow_kinematics.png", s)
    return result


def plot_kl(result: dict[str, Any], path: Path, force: bool = True) -> Path:
    """KL vs mass: model vs data with the data-vs-data 68%/95% bands (Fig. 4 analogue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(result["mass"])
    b68 = np.asarray(result["kl_data_68"], dtype=float)
    b95 = np.asarray(result["kl_data_95"], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.fill_between(m, b95[:, 0], b95[:, 1], color="gold", alpha=0.6, label="data vs data 95%")
    ax.fill_between(m, b68[:, 0], b68[:, 1], color="limegreen", alpha=0.7, label="data vs data 68%")
    ax.plot(m, result["kl_data_median"], "g--", lw=1)
    ax.errorbar(
        m, result["kl_model"], yerr=result["kl_model_std"], fmt="k-o", ms=3, label="model vs data"
    )
    ax.set_xlabel(r"$m_{\gamma^*}$ [GeV]")
    ax.set_ylabel("KL divergence")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(2, len(masses), figsize=(3.2 * len(masses), 5.5), squeeze=False)
    for j, m0 in enumerate(masses):
        sel = np.abs(data.m - m0) < 0.5 * window
        n = max(int(sel.sum()), 1000)
        s = model.sample(m0, 10 * n, seed=int(rng.integers(2**63)))
        for i, (key, label) in enumerate((("qT", r"$q_T$ [GeV]"), ("E", "E [GeV]"))):
            ax = axes[i, j]
            vals = getattr(data, key)[sel]
            hi = np.quantile(np.concatenate([vals, s[key]]), 0.995) if vals.size else 1
            lo = 0.0 if key == "qT" else np.quantile(s[key], 0.001)
            bins = np.linspace(lo, hi, 40)
            ax.hist(
                vals,
                bins=bins,
                weights=data.weight[sel],
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
                ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


# ``gammastar.validate(config, ...)`` runs the stage (gammastar._api).
_make_callable(__name__, "validate")
