"""The flow against its own data where the detector looks.

``gammastar validate`` compares the flow's p(q_T, E | m) with held-out pairs by a KL
divergence, which weighs every part of (q_T, E) alike. The reach consumes one number per
(m, cτ): the detector's A′ acceptance 𝓔 of those kinematics inside the data's fiducial region
F. On the mock, flows of the demo's recipe lie above their own weighted pairs there
(docs/validation/uncertainties-and-coverage.md): a bias of the flow that the data show without any truth. This module
measures it on the data:

* :func:`flow_rows`: the rows the flow learnt (``flow.data``), weighted as it learnt them;
* :func:`paired_kinematics`: the pairs of a mass window and the flow drawn at each pair's own
  mass, moved to one mass (:class:`Paired`);
* :func:`detector_closure`: 𝓔 of the flow against 𝓔 of the weighted pairs of a mass window
  at given cτ, paired pair by pair (the flow drawn at each pair's own mass), with the
  statistical error of the ratio;
* :func:`closure_record`: the reach's ``flow_closure`` block (``reach.json``) at the
  ``validate.masses``, at the median expected ε_low and ε_high of the scan;
* :func:`plot_closure`: the ratio against the mass, with the ``kinematic_model`` spread.

The pairs are the data at their mass resolution: next to a narrow peak its resolution tail
(pairs that migrated in mass with mis-measured momenta) carries other kinematics than the γ* of
that mass, so there a closure against the pairs is not one against the A′ (docs/explanation/reach.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.core import rundir, urls
from gammastar.core.figures import figure_style, save_figure
from gammastar.errors import GammastarError, InputError
from gammastar.physics import darkphoton
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.reach.acceptance import channel_samples
from gammastar.source.source import Source

log = logging.getLogger(__name__)

AT = ("eps_low", "eps_high", "eps_peak")
"""Where a mass is compared: the median expected ε_low and ε_high, or, at a mass not excluded,
the ε of the largest expected signal."""
MIN_CARRIERS = 10.0
"""The fewest pairs (Kish's effective number of Σ w_i a_i) that must carry 𝓔_pairs for a ratio:
at short cτ a few pairs at the top of the energy spectrum carry it all."""
PULL_WARN = 3.0
"""|ratio − 1| / error above which the reach warns that the flow misses its data."""
WARN_CARRIERS = 50.0
"""The fewest effective pairs behind a pull the warning trusts: the ratio's error is Gaussian
only when many pairs carry 𝓔 (over mock realisations the pulls at ε_high, carried by a few
tens of pairs, have an rms above 1; docs/explanation/reach.md)."""


class _Above:
    """The fiducial region from ``seam`` up, the full phase space below it (``seam`` None:
    the region everywhere)."""

    def __init__(self, fiducial: Any, seam: float | None) -> None:
        self.fiducial, self.seam = fiducial, seam

    def contains(self, m: NDArray, q: NDArray, e: NDArray) -> NDArray[np.bool_]:
        inside = np.asarray(self.fiducial.contains(m, q, e), dtype=bool)
        return inside if self.seam is None else inside | (np.asarray(m) < self.seam)


def moved_energy(q: ArrayLike, e: ArrayLike, m_from: ArrayLike, m_to: float) -> NDArray:
    """The energy of a pair of mass ``m_from`` moved to mass ``m_to`` at its own p_T and
    rapidity: E · m_T(m_to) / m_T(m_from) (E = m_T cosh y; hand-written kinematics).

    Example:
        >>> float(moved_energy(0.0, 10.0, 0.5, 1.0))
        20.0
    """
    q = np.asarray(q, dtype=np.float64)
    return np.asarray(e, dtype=np.float64) * np.sqrt(q**2 + m_to**2) / np.sqrt(
        q**2 + np.asarray(m_from, dtype=np.float64) ** 2
    )


def _pair_acceptance(
    q: NDArray, e: NDArray, mass: float, ctaus: NDArray, geometry: Any, *,
    decays: Mapping[str, float], seed: int,
) -> NDArray[np.float64]:
    """Each A′ of kinematics (q_T, E) at ``mass``: its acceptance at each cτ, the decay
    channels' BR-weighted mean (``decays``: channel → BR), shape (n, len(ctaus)), one decay
    drawn per A′, drawn as the reach draws them
    (:func:`gammastar.reach.acceptance.channel_samples`)."""

    samples = channel_samples(Source.given(q, e), mass, q.size, geometry, seed=seed,
                              channels=tuple(decays))  # fmt: skip
    unique = {id(x): x for x in samples.values()}
    if len(unique) == 1:  # one sample serves every channel
        return next(iter(unique.values())).acceptance_per_sample(ctaus)
    out = sum(br * samples[ch].acceptance_per_sample(ctaus) for ch, br in decays.items())
    return np.asarray(out / float(np.sum(list(decays.values()))), dtype=np.float64)


@dataclass(frozen=True)
class ClosureSettings:
    """How the flow is compared with its pairs (:func:`paired_kinematics`,
    :func:`detector_closure`): the mass window, the fiducial region and its seam, the flow
    samples per pair."""

    window: float
    """Half-width of the mass window (GeV; the reach: ``yields.mass_bin_width``)."""
    fiducial: Any = None
    """The data's fiducial region (``contains(m, q_T, E)``), or ``None``: the flow and the
    pairs in the full phase space."""
    seam: float | None = None
    """A both-channels run's seam (GeV): the region applies to the pairs (and their flow
    samples) at and above it only, the full phase space below."""
    per_pair: int = 4
    """Flow samples per pair."""


@dataclass(frozen=True)
class Paired:
    """The pairs of a mass window and the flow drawn at each pair's own mass, all moved to
    the window's mass (:func:`paired_kinematics`): the pairs' ``q``, ``e``, ``w``; the flow
    samples' ``fq``, ``fe`` and ``idx`` (the pair each belongs to)."""

    q: NDArray
    e: NDArray
    w: NDArray
    fq: NDArray
    fe: NDArray
    idx: NDArray


def paired_kinematics(
    flow: Any,
    rows: dict[str, NDArray],
    mass: float,
    *,
    settings: ClosureSettings,
    seed: int = 0,
) -> Paired | str:
    """The weighted pairs within ±``window`` of ``mass`` (inside ``fiducial`` at their own mass
    when given, from ``seam`` up) and ``per_pair`` flow samples at each pair's own mass (inside
    the region there, the flow's leaks dropped), all moved to ``mass`` at their own p_T and
    rapidity (:func:`moved_energy`); or why there is nothing to compare (``settings``:
    :class:`ClosureSettings`).

    Example:
        >>> rows = {"m": np.array([0.49, 0.51]), "qT": np.array([0.3, 0.5]),
        ...         "E": np.array([30.0, 40.0]), "weight": np.array([1.0, 2.0])}
        >>> class Echo:
        ...     def sample(self, masses, n, seed=None):
        ...         return {"qT": np.repeat(rows["qT"], 2), "E": np.repeat(rows["E"], 2)}
        >>> p = paired_kinematics(Echo(), rows, 0.5, settings=ClosureSettings(0.03, per_pair=2))
        >>> p.idx.tolist(), bool(np.allclose(p.fe, np.repeat(p.e, 2)))
        ([0, 0, 1, 1], True)
    """
    window, per_pair = settings.window, settings.per_pair
    m, q, e, w = (np.asarray(rows[k], dtype=np.float64) for k in ("m", "qT", "E", "weight"))
    keep = (np.abs(m - mass) < window) & (w != 0) & np.isfinite(q) & np.isfinite(e)
    lo, hi = getattr(flow, "mass_range", (-np.inf, np.inf))
    keep &= (m >= lo) & (m <= hi)
    region = None if settings.fiducial is None else _Above(settings.fiducial, settings.seam)
    if region is not None and keep.any():
        keep[keep] = region.contains(m[keep], q[keep], e[keep])
    m, q, e, w = m[keep], q[keep], e[keep], w[keep]
    if m.size == 0 or w.sum() <= 0:
        return f"no pairs with a net weight within ±{window:g} GeV"
    m_rep = np.repeat(m, per_pair)
    got = flow.sample(m_rep, m_rep.size, seed=seed)
    fq = np.asarray(got["qT"], dtype=np.float64).ravel()
    fe = np.asarray(got["E"], dtype=np.float64).ravel()
    ok = np.isfinite(fq) & np.isfinite(fe) & (fe > 0)
    if region is not None:
        ok &= region.contains(m_rep, fq, fe)
    if not ok.any():
        return "no flow sample inside the fiducial region"
    return Paired(q, moved_energy(q, e, m, mass), w, fq[ok],
                  moved_energy(fq[ok], fe[ok], m_rep[ok], mass),
                  np.repeat(np.arange(m.size), per_pair)[ok])  # fmt: skip


def _closure_ratio(p: Paired, a_pairs: NDArray, a_flow: NDArray, n_ctau: int) -> dict[str, Any]:
    """:func:`detector_closure`'s numbers from the pairs' acceptances ``a_pairs`` and their flow
    samples' ``a_flow``: the pairs compared, and per cτ the two acceptances, the ratio, its
    error and pull, the effective pairs carrying 𝓔 (or why none)."""
    kept = np.bincount(p.idx, minlength=p.w.size)
    sums = np.zeros((p.w.size, n_ctau))
    np.add.at(sums, p.idx, a_flow)
    has = kept > 0  # a pair none of whose flow samples stayed inside F is left out
    a_bar = sums[has] / kept[has, None]
    w, a_pairs = p.w[has], a_pairs[has]
    W = w.sum()
    num = (w[:, None] * a_bar).sum(0)
    den = (w[:, None] * a_pairs).sum(0)
    if W <= 0:
        return {"n_pairs": int(has.sum()), "why": "no net weight left inside the fiducial region"}
    wa = w[:, None] * a_pairs
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where(den > 0, den**2 / (wa**2).sum(0), 0.0)  # Kish: pairs carrying 𝓔
    e_pairs = den / W
    den = np.where(n_eff >= MIN_CARRIERS, den, 0.0)  # a ratio of a handful is no figure
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, num / den, np.nan)
        err = np.sqrt((w[:, None] ** 2 * (a_bar - r * a_pairs) ** 2).sum(0)) / den
        pull = (r - 1.0) / err

    def clean(x: NDArray) -> list[float | None]:
        return [float(v) if np.isfinite(v) else None for v in x]

    return {"n_pairs": int(has.sum()), "carriers": [float(x) for x in n_eff],
            "pairs": clean(e_pairs), "flow": clean(num / W), "ratio": clean(r),
            "ratio_err": clean(np.where(den > 0, err, np.nan)),
            "pull": clean(np.where(den > 0, pull, np.nan))}  # fmt: skip


def detector_closure(
    flow: Any,
    rows: dict[str, NDArray],
    mass: float,
    ctaus: ArrayLike,
    geometry: Any,
    *,
    settings: ClosureSettings,
    decays: Mapping[str, float] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The A′ acceptance of the flow against that of its weighted pairs near ``mass``.

    The pairs within ±``window`` of ``mass`` (inside ``fiducial`` at their own mass when
    given) and ``per_pair`` flow samples at each pair's own mass (inside ``fiducial`` there,
    the flow's leaks dropped) are all moved to ``mass`` at their own p_T and rapidity
    (:func:`moved_energy`) and decayed in the detector; per cτ

        𝓔_pairs = Σ w_i a_i / Σ w_i,   𝓔_flow = Σ w_i ā_i / Σ w_i,

    a_i the pair's acceptance, ā_i the mean of its flow samples'. Pairing each pair with
    flow samples at its own mass removes the window's mass distribution from the comparison
    (a window across the ω holds mostly ω pairs). The ratio's error is the ratio estimator's,
    √(Σ w_i² (ā_i − r a_i)²) / Σ w_i a_i, the pairs the independent units (what a bootstrap of
    the pairs gives with the flow held fixed): the data's statistics and the flow samples'.

    Arguments:
        flow: the flow (``sample(masses, n, seed)`` with one mass per sample).
        rows: the weighted pairs, ``{"m", "qT", "E", "weight"}`` (:func:`flow_rows`).
        mass: the A′ mass (GeV).
        ctaus: proper decay lengths (m).
        geometry: the detector (:class:`gammastar.source.geometry.Geometry`).
        settings: the window, fiducial region, seam and flow samples per pair
            (:class:`ClosureSettings`).
        decays: the decay channels and their branching ratios (default ``{"mumu": 1.0}``).
        seed: seed of the flow samples and of the decays.

    Returns:
        ``{"mass", "n_pairs", "ctau", "pairs", "flow", "ratio", "ratio_err", "pull",
        "carriers"}``, the last six per cτ (``None`` where no pair, no net weight or no
        acceptance is left, or fewer than :data:`MIN_CARRIERS` effective pairs carry it;
        ``carriers`` that number), and ``"why"`` when nothing could be compared.

    Example:
        >>> from gammastar.source.geometry import Geometry
        >>> rng = np.random.default_rng(1)
        >>> rows = {"m": np.full(500, 0.5), "qT": rng.exponential(0.4, 500),
        ...         "E": rng.uniform(20, 80, 500), "weight": np.ones(500)}
        >>> class Echo:  # a "flow" that returns the pairs themselves: ratio 1
        ...     def sample(self, masses, n, seed=None):
        ...         return {"qT": np.repeat(rows["qT"], 4), "E": np.repeat(rows["E"], 4)}
        >>> geo = Geometry(l1=5.0, l2=None, theta_min=0.0, theta_max=0.1)
        >>> out = detector_closure(Echo(), rows, 0.5, [1.0], geo, settings=ClosureSettings(0.03))
        >>> out["n_pairs"], abs(out["ratio"][0] - 1) < 0.05
        (500, True)
    """
    ctaus = np.atleast_1d(np.asarray(ctaus, dtype=np.float64))
    ss = np.random.SeedSequence(seed)
    s_flow, s_pairs, s_fdec = (int(x.generate_state(1)[0]) for x in ss.spawn(3))
    p = paired_kinematics(flow, rows, mass, settings=settings, seed=s_flow)
    none = [None] * ctaus.size
    out: dict[str, Any] = {"mass": float(mass), "n_pairs": 0 if isinstance(p, str) else p.w.size,
                           "ctau": ctaus.tolist(), "pairs": none, "flow": none,
                           "ratio": none, "ratio_err": none, "pull": none}  # fmt: skip
    if isinstance(p, str):
        out["why"] = p
        return out
    decays = dict(decays or {"mumu": 1.0})
    a_pairs = _pair_acceptance(p.q, p.e, mass, ctaus, geometry, decays=decays, seed=s_pairs)
    a_flow = _pair_acceptance(p.fq, p.fe, mass, ctaus, geometry, decays=decays, seed=s_fdec)
    out.update(_closure_ratio(p, a_pairs, a_flow, ctaus.size))
    return out


def flow_rows(config: AnalysisConfig, flow_path: Path) -> tuple[dict[str, NDArray], Path | str]:
    """The rows the flow at ``flow_path`` (a run directory, its ``flow/`` or ``model.pt``)
    learnt, with the weights it learnt them with: the pairs its ``meta.json`` names (else
    ``pairs.parquet`` beside ``flow/``; both channels combined as
    :func:`gammastar.flow.data.read_pairs` does), every row of ``flow.data`` (the training rows
    and the held-out ones: the closure tests a bias, which needs the statistics). The rows are
    rebuilt with ``config``'s ``flow`` section, so that must be the one the flow was trained
    with (its ``meta.config_sha256``).

    Raises:
        InputError: no flow there, no pairs, or a flow trained with another ``flow`` section.
    """
    import json

    from gammastar.flow.data import read_pairs, training_data  # torch: only when a flow is used
    from gammastar.flow.model import resolve_model_dir  # torch: only when a flow is used

    try:
        model_dir = resolve_model_dir(flow_path).resolve()
        meta = json.loads((model_dir / "meta.json").read_text()).get("meta", {})
    except (GammastarError, OSError, ValueError) as exc:
        raise InputError(f"{flow_path}: no readable flow meta.json ({exc})") from None
    inputs = meta.get("inputs") or [{}]
    recorded = inputs[0].get("path") or str(model_dir.parent / "pairs.parquet")
    # a dataset at a URL (select.json pairs_url) is found through the flow's run directory
    run_dir = model_dir.parent if urls.is_url(recorded) else Path(recorded).parent
    if not rundir.RunDir(run_dir).has_pairs():
        raise InputError(f"{recorded}: no pairs.parquet of the flow {model_dir}: "
                         "the flow's closure needs the pairs it was trained on")  # fmt: skip
    if meta.get("config_sha256") not in (None, config.section_sha256("flow")):
        raise InputError(f"{model_dir}: trained with another flow section than this config's, "
                         "so its training rows cannot be rebuilt here")  # fmt: skip
    cfg = config.model_copy(update={"output": str(run_dir.resolve())})
    pairs, path = read_pairs(cfg)
    td = training_data(pairs, config.flow, source=str(path), seed=config.seed or 0, part="all")
    return {"m": td.m, "qT": td.qT, "E": td.E, "weight": td.weight}, path


def _boundary_ctau(res: Any, mass: float, side: int,
                   dark: Any = None) -> tuple[float | None, float | None]:
    """The median expected ε boundary ``side`` (0: ε_low, 1: ε_high) of the scan mass nearest
    ``mass`` and its cτ at ``mass``: (ε, cτ), or (None, None) where that mass is not
    excluded."""

    j = int(np.argmin(np.abs(res.masses - mass)))
    eps = res.boundaries["0"][side][j]
    if not np.isfinite(eps):
        return None, None
    return float(eps), float(darkphoton.ctau(mass, eps, dark=dark))


def _with_model(row: dict[str, Any], kin: dict[str, Any] | None, inp: Any, mass: float,
                key: str) -> None:
    """Add the quoted ``kinematic_model`` size at this mass and boundary (nearest reach mass)
    and the pull against the pairs' statistics and it together, when the reach quotes it: the
    flow differs from its data by its training's variance as well (the pull's rms over mock
    realisations, docs/explanation/reach.md)."""
    if not kin:
        return
    j = int(np.argmin(np.abs(np.asarray(inp.masses) - mass)))
    vals = kin.get("rel") if key == "eps_peak" else kin.get(f"at_{key}")
    size = vals[j] if vals is not None and j < len(vals) else None
    if size is None:
        return
    row["kinematic_model"] = float(size)
    tot = math.hypot(row["ratio_err"], row["ratio"] * float(size))
    row["pull_with_model"] = (row["ratio"] - 1.0) / tot if tot > 0 else None


def _closure_targets(
    res: Any, mass: float, dark: Any = None
) -> dict[str, tuple[float, float]] | None:
    """Where a mass is compared (:data:`AT`): ``{key: (ε, cτ)}`` at the median expected ε_low
    and ε_high of the scan mass nearest ``mass``, else (a mass not excluded) at the ε of the
    largest expected signal; ``None`` without any expected signal there."""

    at: dict[str, tuple[float, float]] = {}
    for key, j in (("eps_low", 0), ("eps_high", 1)):
        eps, ct = _boundary_ctau(res, mass, j, dark=dark)
        if eps is not None and ct is not None:  # both or neither
            at[key] = (eps, ct)
    if at:
        return at
    j = int(np.argmin(np.abs(res.masses - mass)))
    k = int(np.argmax(res.nsig[j]))
    if not res.nsig[j, k] > 0:
        return None
    eps = float(res.eps[k])
    return {"eps_peak": (eps, float(darkphoton.ctau(mass, eps, dark=dark)))}


def _closure_point(
    mass: float,
    at: dict[str, tuple[float, float]],
    one: dict[str, Any],
    inside: bool,
    kin: dict[str, Any] | None,
    inp: Any,
) -> tuple[dict[str, Any], list[float]]:
    """One mass's row of the record from its :func:`detector_closure` ``one`` at the targets
    ``at`` (with the ``kinematic_model`` size ``kin`` where the reach quotes it), and the pulls
    the warning trusts (carried by at least :data:`WARN_CARRIERS` effective pairs)."""
    point = {"mass": mass, "n_pairs": one["n_pairs"], "inside_fiducial": inside}
    if "why" in one:
        point["why"] = one["why"]
    pulls = []
    for k, (key, (eps, ct)) in enumerate(at.items()):
        point[key] = {"eps": eps, "ctau": ct,
                      **{f: one[f][k] for f in ("flow", "pairs", "ratio", "ratio_err", "pull")},
                      "carriers": one.get("carriers", [None] * len(at))[k]}  # fmt: skip
        if one["pull"][k] is not None:
            _with_model(point[key], kin, inp, mass, key)
            if (point[key]["carriers"] or 0) >= WARN_CARRIERS:  # the trusted ones
                pulls.append(point[key].get("pull_with_model", point[key]["pull"]))
    return point, pulls


def _warn_pulls(points: list[dict[str, Any]]) -> None:
    """Warn at each mass where a trusted pull exceeds :data:`PULL_WARN`."""
    big = [p for p in points if any(
        k in p and p[k]["pull"] is not None and (p[k]["carriers"] or 0) >= WARN_CARRIERS
        and abs(p[k].get("pull_with_model", p[k]["pull"])) > PULL_WARN for k in AT)]  # fmt: skip
    for p in big:
        log.warning(
            "reach: the flow's A′ acceptance differs from its own pairs' at m = %.3g GeV "
            "beyond %g sigma (reach.json flow_closure; docs/explanation/reach.md \"The flow against its "
            "data where the detector looks\")", p["mass"], PULL_WARN,
        )


def _closure_flow(source: Source) -> tuple[Any, Any, float | None]:
    """The reach source's flow, fiducial region and seam (a fiducial split: the flow inside
    F, the fitted model outside; else its kinematics in the full phase space)."""
    split = source.split
    if split is not None:
        return split.inside, split.fiducial, split.seam
    return source.kinematics, None, None


def closure_record(config: AnalysisConfig, inp: Any, res: Any, *, per_pair: int = 4) -> dict[str, Any] | None:
    """The reach's ``flow_closure`` block: :func:`detector_closure` at each of
    ``validate.masses`` inside the scan's range, at the cτ of the median expected ε_low and
    ε_high of the scan (nearest scan mass; at a mass not excluded, the ε of the largest
    expected signal, ``eps_peak``), the window ± ``yields.mass_bin_width``.

    The pull is against the pairs' statistics alone; with the reach's ``kinematic_model``
    (an ensemble) each row also holds that size and ``pull_with_model``, against both in
    quadrature, which the warning then uses. The reach warns at a mass where a pull carried by
    at least :data:`WARN_CARRIERS` effective pairs exceeds :data:`PULL_WARN`.

    Returns:
        ``{"masses", "window", "pairs", "method", "points", "chi2", "ndf", "max_abs_pull",
        "n_compared"}`` (χ² over the pulls the warning trusts, ``n_compared`` every ratio),
        or ``{"skipped": why}`` where it cannot apply (no flow, no pairs), or ``None``
        without a flow in the config.
    """

    rc = config.reach
    if rc.flow is None:
        return None
    flow, fiducial, seam = _closure_flow(inp.source)
    if flow is None or not hasattr(flow, "sample"):
        return {"skipped": "no flow in the reach's sampler"}
    try:
        rows, path = flow_rows(config, Path(config.resolve(rc.flow)))
    except InputError as exc:
        return {"skipped": str(exc)}
    kin = ((getattr(inp, "nuisance_record", None) or {}).get("nuisances") or {}).get(
        "kinematic_model")  # the ensemble's spread, when the reach quotes it
    st = ClosureSettings(float(config.yields.mass_bin_width), fiducial, seam, per_pair)
    lo, hi = float(res.masses.min()), float(res.masses.max())
    masses = [float(x) for x in config.validate_.masses if lo <= x <= hi]
    seeds = np.random.SeedSequence(config.seed).spawn(max(len(masses), 1))
    points: list[dict[str, Any]] = []
    pulls: list[float] = []
    for mass, ss in zip(masses, seeds, strict=False):
        open_ch = tuple(ch for ch in rc.channels
                        if mass > LEPTON_CHANNELS[ch].threshold)  # fmt: skip
        if not open_ch:
            continue
        at = _closure_targets(res, mass, dark=getattr(inp, "dark", None))
        if at is None:
            points.append({"mass": mass, "why": "no expected signal at this mass"})
            continue
        decays = {ch: float(darkphoton.branching_ratio(mass, ch)) for ch in open_ch}
        try:
            one = detector_closure(flow, rows, mass, [ct for _, ct in at.values()],
                                   inp.geometry, settings=st, decays=decays,
                                   seed=int(ss.generate_state(1)[0]))  # fmt: skip
        except GammastarError as exc:  # a check: it never stops the reach
            points.append({"mass": mass, "why": f"not compared: {exc}"})
            continue
        inside = fiducial is not None and (seam is None or mass >= seam)
        point, trusted = _closure_point(mass, at, one, inside, kin, inp)
        points.append(point)
        pulls += trusted
    _warn_pulls(points)
    return {
        "method": "detector acceptance of the flow (per_pair samples at each pair's own mass) "
        "against the flow's own weighted pairs within +-window of the mass, both moved to the "
        "mass at their own p_T and rapidity, inside the fiducial region where the reach's "
        "flow is; at the median expected eps_low and eps_high of the scan; ratio error from "
        "the pairs as independent units (gammastar.reach.flow_closure.detector_closure)",
        "pairs": str(path),
        "window": st.window,
        "per_pair": per_pair,
        "masses": masses,
        "points": points,
        # over the pulls the warning trusts (>= WARN_CARRIERS effective pairs; with the
        # ensemble's spread where the reach has one)
        "chi2": float(np.sum(np.square(pulls))) if pulls else None,
        "ndf": len(pulls),
        "max_abs_pull": float(np.max(np.abs(pulls))) if pulls else None,
        "chi2_carriers_min": WARN_CARRIERS,
        "n_compared": sum(p.get(k, {}).get("ratio") is not None for p in points for k in AT),
    }


@figure_style()
def plot_closure(record: dict[str, Any], path: str | Path | None = None, *,
                 kinematic: dict[str, Any] | None = None, title: str = "") -> Any:
    """The flow's acceptance over its pairs' against the mass, at ε_low and ε_high, with the
    quoted ``kinematic_model`` spread (``reach.json`` ``nuisances.kinematic_model``) as a band
    when given; saved through :func:`gammastar.core.figures.save_figure` when ``path`` is given.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for key, mk, dx, lab in (("eps_low", "o", -0.004, r"at $\varepsilon_\mathrm{low}$ (long lifetimes)"),
                             ("eps_high", "s", 0.004, r"at $\varepsilon_\mathrm{high}$ (short lifetimes)"),
                             ("eps_peak", "D", 0.0, "where the signal peaks (not excluded)")):  # fmt: skip
        pts = [p for p in record.get("points", []) if p.get(key, {}).get("ratio") is not None]
        if pts:
            ax.errorbar([p["mass"] + dx for p in pts], [p[key]["ratio"] for p in pts],
                        yerr=[p[key]["ratio_err"] for p in pts], fmt=mk, ms=4, capsize=2,
                        label=lab)  # fmt: skip
    if kinematic is not None and kinematic.get("rel"):
        km = np.asarray(kinematic.get("mass", []), dtype=float)
        kr = np.asarray([np.nan if v is None else v for v in kinematic["rel"]], dtype=float)
        ok = np.isfinite(kr)
        if ok.any() and km.size == kr.size:
            ax.fill_between(km[ok], 1 - kr[ok], 1 + kr[ok], color="0.85",
                            label="±1σ kinematic_model (quoted)")  # fmt: skip
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel(r"$m_{A'}$ (GeV)")
    ax.set_ylabel(r"$\mathcal{E}_\mathrm{flow}\,/\,\mathcal{E}_\mathrm{pairs}$ inside F")
    ax.set_title(title or "The flow against its data where the detector looks", fontsize="small")
    ax.legend(fontsize="x-small")
    if path is not None:

        save_figure(fig, path)
    return fig
