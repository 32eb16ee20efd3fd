"""Coverage of the quoted N_sig uncertainty on the mock.

Independent mock realisations of one config (generator seeds ``--first-seed`` …, the config's
data size) are each taken through ``generate`` → ``select`` → ``yields`` (with the config's
``uncertainties``); at each mass and cτ the data-driven N_sig = Y(m)·𝓔(m, cτ) per POT per ε²
per unit BR (as :func:`gammastar_validation.closure.reach_closure` defines it) gets a quoted relative
error σ, and the truth (the generator's γ*, at the data's mass resolution; ``--truth-sources``)
is inside the ±1σ (±2σ) interval when |N_dd − N_truth| ≤ 1 (2) × √(σ² N_dd² + σ_t² N_truth²),
σ_t the truth's own statistical error. The fractions should be 68% (95%) within their
binomial errors. Two arms (``--arms``), the same generator seeds:

* ``full``: every realisation draws the truth parameters that the named systematics stand for
  from the priors the nuisances quote (:func:`varied_config`): λ_θ of ρ, ω, φ → μμ
  (``mock.decay_lambda_theta``, one common shift ~ N(0, ``uncertainties.lambda_theta_err``),
  clipped to [−1, 1]: ``acceptance_lambda_theta``) and the like-sign normalisation
  (``like_sign_r``: the mock pairs its combinatorial muons independently, so its R is 1 and has
  no knob; the analysis's ``background.r_factor`` is drawn from N(R, R·``r_factor_rel_err``)
  instead, the same mismatch the nuisance describes), and, when the config takes the
  extrapolation's σ_y from outside (``yields.extrapolation_y_sigma``), the mock's rapidity
  width from that prior (:data:`Y_SIGMA_POINTS`; the γ*' truth is recomputed per drawn
  width), and with ``--form-flow`` the mock mesons' p_T form (``mock.pt_mt_power`` a of
  m_T^a e^{−m_T/T}, :data:`FORM_POINTS`): the extrapolation's ``mt_boltzmann`` form (a = 1)
  is its quoted 1σ, so a drawn with mean 0 and variance 1 is the meson-level analogue of the
  form's error (the mock draws the mesons' p_T form, the extrapolation fits the γ*'s; the γ*'
  truth and the fiducial flow per drawn a). σ = √(Σ named² + σ_MC²): every named
  nuisance of ``yields.json`` (``data_stat``, ``like_sign_r``, ``acceptance_lambda_theta``,
  ``eta_mumu``, ``extrapolation``) and the binomial error σ_MC of the A′ samples' acceptance.
  ``extrapolation`` here is the extrapolation's error carried to N_sig itself
  (:func:`gammastar.yields.extrapolation.nsig.nsig_relative_error`: through N/Y_F = 𝓔_in + E_x(θ)/f_F(θ),
  per cτ, √(fit² + external² + forms²) of :func:`~gammastar.yields.extrapolation.nsig.parts.nsig_error_parts`:
  the fit's sandwich covariance, an external σ_y's error, and the model's alternative forms,
  each form once). The ``varied`` σ has ``extrapolation_varied`` in its place, √(fit² +
  external² + Σ form_<drawn>²) with the forms whose truth the arm draws alone (with the p_T
  form's power fitted, ``yields.extrapolation_pt_power: fitted``, no p_T form is an
  alternative: the drawn form's error is the fit's, in ``fit``), and leaves out
  the flow's ``kinematic_model`` (one flow per drawn form for all realisations). ``all_yield`` is
  the ``all`` sum with the yield's δf_F/f_F (``yields.json`` ``uncertainties.extrapolation``,
  what the workspace's ``extrapolation`` normsys holds) in its place, for comparison.
* ``stat``: the config's parameters; the coverage of ``data_stat`` alone (√(data_stat² + σ_MC²))
  and of the statistical part √(data_stat² + extrapolation_fit² + σ_MC²) (the extrapolation's
  error at the N_sig level, the fit's statistical part alone: neither an external σ_y's error
  nor the model's forms, systematics that a fixed truth cannot test), which must cover on
  their own.

Not varied (no mock knob, or not a parameter): ``eta_mumu`` (0 with ``remove_eta_mumu:
truth``, exact; the mock's BR(η → μμ) has no config knob), ``extrapolation``'s rapidity form
(``logistic_y``: the mock's rapidity stays Gaussian; its p_T form is drawn with
``--form-flow``, above), the
acceptance-map statistics (``acceptance_map_stat``: 0 with the config-computed per-lepton
acceptance of this config).
The truth's γ* and their acceptance are computed once (``--truth-sources``, 2·10⁷: 2.6·10⁴ γ*
within ±15 MeV of 0.9 GeV; 𝓔_t's error from resampling them, :func:`truth_side`): neither
varied parameter changes them (λ_θ moves the muons, not the γ*; R is an analysis parameter);
its yield is smeared with the mass response of the realisation's detector and decay angles,
sampled from ``--response-sources`` cocktail sources of its own config (:func:`mass_response`,
one sample per drawn λ_θ, which changes the resolution's tails), and σ_t includes that
sample's own error (:func:`truth_nsig`).

Reduced by default: the A′ kinematics inside the fiducial region come from one fixed flow
(``--flow``, trained on one realisation of the config; a flow ensemble per realisation is not
affordable on this machine), and every realisation draws its A′ samples with the same seed;
each realisation's own extrapolation fit is used outside the fiducial region. With
``--own-flow`` every realisation is taken through the whole chain: it trains its own flow on
its own pairs (:func:`own_flow`: the config's recipe, one member, its own seed; 30–70 s) and
draws its A′ samples with its own seed, so that the flow's error and the samples' binomial
error are realised as often as they are quoted; its σ is ``varied_flow`` (``varied`` with
``kinematic_model``, the quoted size still taken from ``--flow``'s bootstrap replicas, what one
realisation's ensemble quotes), and its p_T form is drawn with ``--draw-pt-form`` (no form
flows: each realisation's flow follows its draw). ``--merge … --against …`` (the same seeds
run with the fixed flow) measures the flow's realised error, :func:`flow_scatter`. That
flow's own quoted error, ``kinematic_model`` (what the reach carries with
``uncertainties.kinematic_model``), is in σ when ``--flow`` holds a bootstrapped ensemble
(``flow.ensemble`` ≥ 3 with ``flow.bootstrap``, as ``gammastar train`` writes it): the relative
spread of 𝓔(m, cτ) over the Poisson-bootstrap replicas
(:func:`gammastar.source.source.ensemble_sources`'s choice; standard deviation / mean, as
:func:`gammastar.reach.scan.mass_signal._relative_spread`), each wrapped in the realisation's
extrapolation with the nominal draw's seed, per realisation. The flow, and so its error, is
common to all realisations: the coverage samples the flow's own error once (a common shift of
the pulls), the rest of σ thirty times.

Usage: python validation/scripts/nsig_coverage.py --flow runs/na60_like/flow [--realisations 30]
[--arms full stat] [--own-flow [--draw-pt-form]]. Output: one progress line per realisation,
the coverage table of each arm as markdown rows, a joint test of each σ variant's twelve
fractions against a calibrated quote (:func:`joint_test`: max |z| against Gaussian toys with
the pulls' correlations; every fraction within its own binomial error, the strict reading, is
met by a calibrated quote in only a few per cent of tables), and as the last line one JSON
object (``arms.<arm>.table``, ``arms.<arm>.joint``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gammastar.yields.extrapolation.model import MODEL_VARIATIONS

REPO = Path(__file__).resolve().parents[2]
"""The repository root (the default config is its analysis/na60_like.yaml)."""


VARIED = ("lambda_theta", "like_sign_r", "y_sigma", "pt_form")
"""The truth parameters the ``full`` arm draws (module docstring; ``pt_form`` with
``--form-flow``)."""
# ±√(3/2) and 0, equally likely: the three points of mean 0 and variance 1 (to 4 decimals,
# as --form-flow A and the flows' directories write them: ±1.2247)
_FORM_Z = round(math.sqrt(1.5), 4)
FORM_POINTS = (-_FORM_Z, 0.0, _FORM_Z)
"""The ``full`` arm's draws of the mock mesons' p_T form a (``mock.pt_mt_power``) in units of
the extrapolation's ``mt_boltzmann`` form (a = 1, its quoted 1σ), each equally likely: ±√(3/2)
and 0, the three-point distribution of mean 0 and variance 1 (the prior's), so that three
fiducial flows and γ* truths (× the σ_y points) serve all realisations."""
DRAWN_FORMS = {"pt_form": "mt_boltzmann"}
"""The model's alternative form whose truth each drawn parameter varies (its N_sig part,
``form_<name>`` of :func:`gammastar.yields.extrapolation.nsig.parts.nsig_error_parts`, joins ``varied``)."""
Y_SIGMA_POINTS = (-1.4652, -0.5935, 0.0, 0.5935, 1.4652)
"""The ``full`` arm's draws of an external σ_y, in units of its error around its value, each
equally likely: the normal quantiles at 0.1, 0.3, …, 0.9 scaled to unit variance (the prior's
mean and variance), so that five truth samples serve all realisations (a truth of 2·10⁷
sources per realisation is not affordable)."""


def pt_mt_power_bounds() -> tuple[float, float]:
    """(lower, upper) of ``mock.pt_mt_power`` a, the config's own bounds: a > lower, a ≤ upper
    (:class:`gammastar.config.mock.MockConfig`; ``model_copy`` does not validate, so a drawn a is
    checked against them here)."""
    from gammastar.config.mock import MockConfig

    meta = MockConfig.model_fields["pt_mt_power"].metadata
    lo = next(float(m.gt) for m in meta if getattr(m, "gt", None) is not None)
    hi = next(float(m.le) for m in meta if getattr(m, "le", None) is not None)
    return lo, hi


def pt_mt_power_error(a: float) -> str | None:
    """Why ``a`` cannot be ``mock.pt_mt_power`` (outside :func:`pt_mt_power_bounds`), or
    ``None``."""
    lo, hi = pt_mt_power_bounds()
    return None if lo < a <= hi else f"a = {a:g} lies outside mock.pt_mt_power's ({lo:g}, {hi:g}]"


def varied_config(
    base: Any, rng: np.random.Generator, *, pt_form: bool = False
) -> tuple[Any, dict[str, float]]:
    """``base`` with the parameters behind the named systematics drawn from their priors.

    Arguments:
        base: the analysis config (its ``uncertainties`` give the priors' widths).
        rng: the realisation's generator.
        pt_form: draw the mock mesons' p_T form ``pt_mt_power`` from :data:`FORM_POINTS`
            (drawn after the others: the other draws of a seed are those without it).

    Returns:
        (the varied config, the drawn values: ``lambda_theta_shift``, ``r_factor``, and with
        an external σ_y of the extrapolation (``yields.extrapolation_y_sigma``) the mock's
        rapidity width ``y_sigma``, drawn from :data:`Y_SIGMA_POINTS` around the stated value:
        the truth the stated error stands for).
    """
    u, mock, bkg = base.uncertainties, base.mock, base.background
    drawn: dict[str, float] = {}
    dl = float(u.lambda_theta_err or 0.0)
    shift = float(rng.normal(0.0, dl)) if dl > 0 else 0.0
    pol = mock.decay_lambda_theta
    lam = {k: float(np.clip(getattr(pol, k) + shift, -1.0, 1.0)) for k in ("rho", "omega", "phi")}
    drawn["lambda_theta_shift"] = shift
    new_mock = mock.model_copy(update={"decay_lambda_theta": pol.model_copy(update=lam)})
    upd: dict[str, Any] = {"mock": new_mock}
    dr = float(u.r_factor_rel_err or 0.0)
    if isinstance(bkg.r_factor, float) and dr > 0:
        r = float(bkg.r_factor * (1.0 + dr * rng.normal()))
        drawn["r_factor"] = r
        upd["background"] = bkg.model_copy(update={"r_factor": r})
    ys = base.yields.extrapolation_y_sigma
    if ys is not None and ys.error > 0:
        z = Y_SIGMA_POINTS[int(rng.integers(len(Y_SIGMA_POINTS)))]
        drawn["y_sigma"] = float(ys.value + ys.error * z)
        new_mock = new_mock.model_copy(update={"rapidity_sigma": drawn["y_sigma"]})
        upd["mock"] = new_mock
    if pt_form:
        z = FORM_POINTS[int(rng.integers(len(FORM_POINTS)))]
        drawn["pt_form"] = float(mock.pt_mt_power + z)
        if (why := pt_mt_power_error(drawn["pt_form"])) is not None:
            raise SystemExit(f"mock.pt_mt_power: the drawn p_T form {why} (the config's "
                             f"{mock.pt_mt_power:g} plus {z:g})")  # fmt: skip
        upd["mock"] = new_mock.model_copy(update={"pt_mt_power": drawn["pt_form"]})
    return base.model_copy(update=upd), drawn


def own_flow(cfg: Any, run: Path, reuse: bool = False) -> Any:
    """The realisation's own flow (``--own-flow``): the chain's ``train`` on its pairs in
    ``run`` (the config's recipe, one member, no bootstrap, one worker; the realisation's seed),
    loaded. Retrained (``force``) unless ``reuse`` and the flow in ``run`` is this training's
    (:func:`own_flow_mismatch`)."""
    from gammastar.flow.model import load as load_flow
    from gammastar.flow.stage import train

    upd = {"ensemble": 1, "bootstrap": False, "workers": 1}
    cfg = cfg.model_copy(update={"flow": cfg.flow.model_copy(update=upd)})
    if not (reuse and own_flow_mismatch(cfg, run) is None):
        train(cfg, force=True)
    return load_flow(run / "flow")


def own_flow_mismatch(cfg: Any, run: Path) -> str | None:
    """Why the flow in ``run`` is not the own flow ``cfg`` would train (``None``: it is): no
    model, one of another seed, flow config (``section_sha256("flow")``), ensemble size or
    training data (the pairs' training rows, hashed as the training hashes them)."""
    from gammastar.errors import GammastarError
    from gammastar.flow.data import read_pairs, training_data
    from gammastar.flow.model import load as load_flow
    from gammastar.flow.stage import holdout_seed_of

    try:
        meta = load_flow(run / "flow").meta.get("meta", {})
    except (GammastarError, OSError) as e:
        return f"no readable flow ({e})"
    seed = int(cfg.flow.seed if cfg.flow.seed is not None else cfg.seed)
    if meta.get("seed") != seed or meta.get("ensemble_size") != 1:
        return f"trained with seed {meta.get('seed')}, {meta.get('ensemble_size')} member(s)"
    if meta.get("config_sha256") != cfg.section_sha256("flow"):
        return "trained with another flow config"
    pairs, src = read_pairs(cfg)
    data = training_data(pairs, cfg.flow, source=str(src), seed=seed,
                         holdout_seed=holdout_seed_of(cfg))  # fmt: skip
    if meta.get("data_sha256") != data.sha256:
        return "trained on other pairs"
    return None


def with_events(base: Any, events: int | None) -> Any:
    """``base`` with ``mock.events`` = ``events`` (``None``: unchanged), the data size of every
    realisation (``--events``: a reduced run)."""
    if events is None:
        return base
    if events < 1:
        raise SystemExit(f"--events: {events} is not a positive number of sources")
    return base.model_copy(update={"mock": base.mock.model_copy(update={"events": events})})


def realisation(cfg: Any) -> None:
    """generate → select → yields for one config (its own seed and run directory)."""
    import gammastar

    gammastar.generate(cfg, force=True)
    gammastar.select(cfg, force=True)
    gammastar.compute_yields(cfg, force=True, plots=False, theory=False)


REUSE_MOCK_FIELDS = ("pt_mt_power", "rapidity_sigma", "decay_lambda_theta")
"""The mock parameters a realisation's truth depends on and the ``full`` arm draws: a run
directory is reused (``--reuse``) only when its mock file was generated with the wanted ones
(:func:`reuse_mismatch`)."""
_MOCK_FIELD_BEFORE = {"pt_mt_power": 0.0}
"""What a mock file written before a field existed generated (the m_T-exponential, a = 0)."""


def _same(a: Any, b: Any) -> bool:
    """``a`` equals ``b``, numbers to 1e-12 relative, dicts key by key."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def reuse_mismatch(run: Path, cfg: Any) -> str | None:
    """Why the realisation in ``run`` cannot be reused for ``cfg`` (``--reuse``), or ``None``
    when it can: it has no ``yields.json``, its mock file's recorded mock section (the file's
    ``meta.mock_config``) is unreadable, or it differs from ``cfg.mock`` in one of
    :data:`REUSE_MOCK_FIELDS` (a realisation of another truth)."""
    from gammastar.core import rundir
    from gammastar.mock.generate import read_meta

    if not (run / rundir.YIELDS).exists():
        return f"no {rundir.YIELDS}"
    try:
        stored = read_meta(run / rundir.MOCK)["mock_config"]
    except (OSError, KeyError, ValueError) as e:  # regenerate rather than trust it
        return f"no readable mock config in {rundir.MOCK} ({type(e).__name__}: {e})"
    if not isinstance(stored, dict):
        return f"no readable mock config in {rundir.MOCK}"
    wanted = cfg.mock.model_dump(mode="json")
    for field in REUSE_MOCK_FIELDS:
        have = stored.get(field, _MOCK_FIELD_BEFORE.get(field))
        if not _same(have, wanted[field]):
            return f"its mock.{field} is {have}, not {wanted[field]}"
    return None


TRUTH_BATCH = 5_000_000
"""Cocktail sources per :func:`~gammastar_validation.truth.truth_gstar` call (memory)."""
BOOTSTRAP = 8
"""Replicas of the truth's γ* behind 𝓔_t's error (:func:`truth_side`)."""


def generator_gstar(cfg: Any, *, sources: int, seed: int) -> Any:
    """The generator's γ* of ``sources`` cocktail sources of ``cfg``'s mock, in batches of
    :data:`TRUTH_BATCH` (batch i seeded ``seed + 1000 i``): the truth of :func:`truth_side`."""
    from gammastar_validation.truth import GstarTruth, truth_gstar

    parts = [truth_gstar(cfg, min(TRUTH_BATCH, sources - k), seed=seed + 1000 * i)
             for i, k in enumerate(range(0, sources, TRUTH_BATCH))]  # fmt: skip
    return GstarTruth(*(np.concatenate([getattr(g, f) for g in parts])
                        for f in ("m", "qT", "E", "pz", "channel")),
                      n_pot=float(sum(g.n_pot for g in parts)))  # fmt: skip


def gstar_masses_only(m, n_pot: float) -> Any:
    """γ* that keep their masses alone (and the POT they stand for): all that the truth's
    yield needs (:func:`truth_nsig`)."""
    from gammastar_validation.truth import GstarTruth

    return GstarTruth(m, *(np.empty(0),) * 3, np.empty(0, int), n_pot)


def truth_side(cfg: Any, masses, ctaus, geo, *, sources: int, samples: int, seed: int,
               masses_only: bool = False):  # fmt: skip
    """The generator's γ* (``sources`` cocktail sources, in batches of :data:`TRUTH_BATCH`)
    and their A′ acceptance 𝓔(m, cτ) with its relative error, per (mass, cτ): the parts of the
    truth that no realisation changes (λ_θ moves the muons, not the γ*; R is an analysis
    parameter). ``masses_only``: the returned γ* keep their masses alone (all that the
    truth's yield needs, :func:`truth_nsig`; one truth per drawn (σ_y, p_T form) is held).
    The error is the spread over :data:`BOOTSTRAP` resamplings of the γ* inside the
    sampler's mass window (each with its own A′ draws): the γ* there are few where the spectrum
    is low (2636 at 0.9 ± 0.015 GeV of 2·10⁶ sources: ±3%, against ±0.7–1% from the draws'
    binomial error alone), and the truth is common to every realisation."""
    from gammastar.reach.acceptance import draw
    from gammastar_validation.truth import GstarTruth, TruthSampler

    gstar = generator_gstar(cfg, sources=sources, seed=seed)
    half = TruthSampler(gstar).half_width
    acc = {}
    rng = np.random.default_rng([seed, 7])
    for m in masses:
        a = draw(TruthSampler(gstar), m, samples, geo, seed=seed + 2).acceptance(ctaus)
        win = gstar.in_window(m, half)
        reps = []
        for b in range(BOOTSTRAP):
            k = rng.integers(0, win.m.size, win.m.size)
            g = GstarTruth(win.m[k], win.qT[k], win.E[k], win.pz[k], win.channel[k], win.n_pot)
            reps.append(draw(TruthSampler(g), m, samples, geo, seed=seed + 3 + b).acceptance(ctaus))
        rel = np.std(reps, axis=0, ddof=1) / np.maximum(np.mean(reps, axis=0), 1e-300)
        for k, ct in enumerate(ctaus):
            acc[(m, float(ct))] = (float(a[k]), float(rel[k]))
    return {
        "gstar": gstar_masses_only(gstar.m, gstar.n_pot) if masses_only else gstar,
        "acceptance": acc,
        "window_gstar": {m: int(gstar.in_window(m, half).m.size) for m in masses},
    }


def cached_truth(cache: Path | None, key: tuple[float, float], fields: dict[str, Any], make):
    """:func:`truth_side`'s result (``masses_only``) for the drawn (σ_y, p_T form) ``key``,
    from ``cache`` (``--truth-cache``: one ``.npy`` of the γ* masses and one ``.json`` of the
    acceptances per key, beside the ``fields`` they were made with) or made by ``make()`` and
    written there, atomically; without ``cache`` simply ``make()``. A cached truth made with
    other ``fields`` (sources, samples, seed, masses, cτ, config) is made again."""

    if cache is None:
        return make()
    fields = {**fields, "key": [float(key[0]), float(key[1])]}
    if fields.get("config") and Path(fields["config"]).is_file():  # its content, not its name
        fields["config"] = hashlib.sha256(Path(fields["config"]).read_bytes()).hexdigest()
    stem = f"truth_ys{key[0]:.6f}_a{key[1]:+.6f}".replace(".", "p")  # no dot: no suffix
    meta_path, m_path = cache / f"{stem}.json", cache / f"{stem}.npy"
    if meta_path.exists() and m_path.exists():
        meta = json.loads(meta_path.read_text())
        m = np.load(m_path) if meta["fields"] == fields else None
        if m is not None and meta.get("masses_sha256") == hashlib.sha256(m.tobytes()).hexdigest():
            acc = {(float(mass), float(ct)): tuple(v) for mass, ct, *v in meta["acceptance"]}
            return {"gstar": gstar_masses_only(m, meta["n_pot"]),
                    "acceptance": acc,
                    "window_gstar": {float(k): v for k, v in meta["window_gstar"].items()}}  # fmt: skip
    out = make()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{stem}.{os.getpid()}.tmp.npy"
    np.save(tmp, out["gstar"].m)
    os.replace(tmp, m_path)
    meta = {"fields": fields, "n_pot": float(out["gstar"].n_pot),
            "masses_sha256": hashlib.sha256(out["gstar"].m.tobytes()).hexdigest(),
            "acceptance": [[m, c, *v] for (m, c), v in out["acceptance"].items()],
            "window_gstar": {str(k): v for k, v in out["window_gstar"].items()}}  # fmt: skip
    tmp_j = cache / f"{stem}.{os.getpid()}.tmp.json"
    tmp_j.write_text(json.dumps(meta))
    os.replace(tmp_j, meta_path)
    return out


_RESPONSES: dict[Any, Any] = {}


def mass_response(cfg: Any, drawn: dict[str, float], sources: int, seed: int):
    """The mass response of ``cfg``'s mock detector from ``sources`` cocktail sources of its own
    (:func:`gammastar_validation.truth.response_residuals`), cached per (drawn λ_θ shift, rapidity
    width, p_T form ``pt_mt_power``), what the sources' kinematics depend on (every realisation
    of the ``stat`` arm has the same detector, decay angles and spectra, so one sample serves
    them all); returns ``(smear, smear_a, smear_b)``: the whole sample's and its two halves'
    (the halves give the response sample's own error, :func:`truth_nsig`)."""
    from gammastar_validation.truth import response_residuals, smearing_from_residuals

    key = (
        round(float(drawn.get("lambda_theta_shift", 0.0)), 12),
        float(cfg.mock.rapidity_sigma),
        float(cfg.mock.pt_mt_power),
    )
    if key not in _RESPONSES:
        _RESPONSES.clear()  # one at a time (memory)
        mt, d = response_residuals(cfg, sources, seed=seed)
        h = mt.size // 2
        _RESPONSES[key] = (smearing_from_residuals(mt, d), smearing_from_residuals(mt[:h], d[:h]),
                           smearing_from_residuals(mt[h:], d[h:]))  # fmt: skip
    return _RESPONSES[key]


def truth_nsig(cfg: Any, run: Path, truth: dict[str, Any], masses, *, seed: int, response):
    """Truth Y(m)·𝓔(m, cτ) and its relative statistical error, per (mass, cτ), for one
    realisation: the γ* of :func:`truth_side` smeared with the mass response of that
    realisation's mock detector (``response``, :func:`mass_response`: the resolution its
    data-driven yield carries; a drawn λ_θ changes it, as the softer muon of an asymmetric
    decay scatters most). The error adds the truth yield's Poisson error, 𝓔_t's
    (:func:`truth_side`) and the response sample's own, (Y_a − Y_b)/2 from its two halves.

    The response of one demo-sized file
    (:func:`gammastar_validation.truth.empirical_smearing`) would not do: its ~4.5·10⁴
    recorded sources sample the ω and φ tails that fill the valley at 0.9 GeV to ±5% between
    files, an error neither removed nor quoted."""
    from gammastar.core import rundir
    from gammastar.source.production import Yields, load_yields
    from gammastar_validation.closure import truth_aprime_yield

    y_dd = load_yields(run / rundir.YIELDS)
    edges = np.asarray(y_dd.extrapolation["bin_edges"]) if y_dd.extrapolation else None
    ys = []
    for smear in response:
        ty = truth_aprime_yield(truth["gstar"], edges, m_lepton=cfg.input.lepton_mass,
                                seed=seed, smear=smear)  # fmt: skip
        ys.append(Yields(ty.mass, ty.per_pot_per_eps2, ty.stat_err, {}))
    out = {}
    for m in masses:
        y, rel = (float(v[0]) for v in ys[0].at([m]))
        ya, yb = (float(t.at([m])[0][0]) for t in ys[1:])
        rel_resp = abs(ya - yb) / 2 / y if y > 0 else 0.0
        for key, (a, rel_a) in truth["acceptance"].items():
            if key[0] == m:
                out[key] = (y * a, math.sqrt(rel**2 + rel_a**2 + rel_resp**2))
    return out


def extrapolation_errors(ep: dict[str, Any], drawn_forms: tuple[str, ...], where: Path):
    """(``extrapolation_fit``, ``extrapolation_varied``, ``extrapolation``) per cτ from the parts
    of :func:`gammastar.yields.extrapolation.nsig.parts.nsig_error_parts` ``ep``: the fit's part; √(fit² +
    external² + Σ form_<drawn>²); √(fit² + external² + forms²), every form once (``forms`` is
    the quadrature sum of the form_<name>, the drawn ones' included). Each holds the fit's
    covariance with the fiducial yield, ``yield_cross`` (2 Cov(ln Y_F, ln(N/Y_F)), signed)
    inside its square root, as :func:`~gammastar.yields.extrapolation.nsig.nsig_relative_error`
    does, so that added in quadrature to ``data_stat`` it gives N_sig's statistical variance
    (``extrapolation_yield_cross`` records it). A drawn form without its
    part (an extrapolation fitted without that variation, ``where`` its ``yields.json``) is a
    one-line SystemExit naming it."""
    for k in drawn_forms:
        if f"form_{k}" not in ep:
            raise SystemExit(f"--form-flow: the yields' extrapolation has no {k} variation "
                             f"({where})")  # fmt: skip
    cross = ep.get("yield_cross", 0.0)
    fit_ext = ep["fit"] ** 2 + ep["external"] ** 2 + cross
    varied = fit_ext + sum(ep[f"form_{k}"] ** 2 for k in drawn_forms)
    return tuple(np.sqrt(np.maximum(v, 0.0))
                 for v in (ep["fit"] ** 2 + cross, varied, fit_ext + ep["forms"] ** 2))  # fmt: skip


def data_side(
    cfg: Any,
    run: Path,
    flow_model: Any,
    masses,
    ctaus,
    geo,
    *,
    samples: int,
    seed: int,
    replicas: list[Any] | None = None,
    drawn_forms: tuple[str, ...] = (),
):
    """Data-driven N_sig per (mass, cτ) and its quoted relative error (module docstring);
    ``drawn_forms``: the model's alternative forms whose truth the arm draws (their N_sig
    parts join ``extrapolation_varied``)."""
    from gammastar.core import rundir
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation.model import FORMS
    from gammastar.yields.extrapolation.nsig import nsig_lambda_theta
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.result import Extrapolation
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler, RecordingSampler
    from gammastar.yields.lambda_theta import lambda_refits_at, lambda_regions
    from gammastar.yields.nuisance import at_masses

    y = load_yields(run / rundir.YIELDS)
    ex = y.extrapolation
    extrap = Extrapolation.from_dict(ex)
    fiducial = FiducialRegion.from_dict(ex["fiducial"])
    sampler = RecordingSampler(ExtrapolatedSampler(flow_model, extrap, fiducial))
    sizes = at_masses(y.uncertainties or {}, masses)
    refits = (y.uncertainties or {}).get("lambda_theta_refits")  # λ_θ at N's level, as the reach
    regions = lambda_regions(refits, fiducial) if refits else None
    out = {}
    for i, m in enumerate(masses):
        ks = draw(sampler, m, samples, geo, seed=seed + 1)
        a = ks.acceptance(ctaus)
        kin = kinematic_spread(replicas, extrap, fiducial, m, ctaus, geo, samples, seed + 1)
        # the fit's error carried to N_sig itself (the model also sets 𝓔 outside F), with and
        # without an external σ_y's (a systematic: only the full arm draws its truth)
        ep = nsig_error_parts(extrap, fiducial, m, sampler.last, ks, ctaus)
        # a fitted m_T power holds the p_T forms: their error is in the fit's part
        forms_here = tuple(k for k in drawn_forms
                           if not (extrap.pt_power_fitted and FORMS[k].maps_to == "T"))  # fmt: skip
        rel_fit, rel_varied, rel_ex = extrapolation_errors(ep, forms_here, run / rundir.YIELDS)
        yv, rel_stat = (float(v[0]) for v in y.at([m]))
        named = {k: float(v[i]) for k, v in sizes.items()}
        if regions is not None and "acceptance_lambda_theta" in named:
            moves = lambda_refits_at(refits, m, regions)
            w = nsig_lambda_theta(extrap, fiducial, m, sampler.last, ks, ctaus, moves)
            named["acceptance_lambda_theta_yield"] = named.pop("acceptance_lambda_theta")
            lam_n = np.expm1(w)  # the reach's r (its _lambda_rel)
        named["data_stat"] = rel_stat
        if "extrapolation" in named:
            named["extrapolation_yield"] = named.pop("extrapolation")
        for k, ct in enumerate(ctaus):
            rel_a = math.sqrt(max(a[k] * (1 - a[k]), 0.0) / samples) / a[k] if a[k] > 0 else 0
            parts = {**named, "mc_acceptance": rel_a}
            if "acceptance_lambda_theta_yield" in parts:
                parts["acceptance_lambda_theta"] = float(lam_n[k])
            if kin is not None:
                parts["kinematic_model"] = float(kin[k])
            if "extrapolation_yield" in named:
                parts["extrapolation"] = float(rel_ex[k])
                parts["extrapolation_fit"] = float(rel_fit[k])
                parts["extrapolation_varied"] = float(rel_varied[k])
                parts["extrapolation_yield_cross"] = float(ep["yield_cross"][k])  # a variance
                parts["extrapolation_external"] = float(ep["external"][k])  # for the record
                for name in MODEL_VARIATIONS:  # each form's own part, for the record (not summed)
                    if f"form_{name}" in ep:
                        parts[f"extrapolation_form_{name}"] = float(ep[f"form_{name}"][k])
            out[(m, float(ct))] = (yv * float(a[k]), parts)
    return out


def migration_at(run: Path, masses) -> dict[float, float]:
    """Per mass, the resolution-migration factor c(m) that the run's A′ yield carries
    (``yields.json`` ``extrapolation.resolution_migration``, ``yields.resolution_migration``):
    the corrected yield over the uncorrected one (each bin divided by its c; the bins the
    yields stage left uncorrected at 1), both interpolated by :meth:`gammastar.source.production.Yields.at`,
    so that Y_corrected(m) = c(m) · Y(m) exactly; 1 where no correction was applied or outside
    the yield's range (where ``Yields.at`` has no yield). Recorded per row (``migration``) so
    that ``--merge --undo-migration`` gives the uncorrected coverage of the same
    realisations."""
    from gammastar.core import rundir
    from gammastar.source.production import load_yields

    return migration_factors(load_yields(run / rundir.YIELDS), masses, where=run / rundir.YIELDS)


def fiducial_yield_at(path: Path, masses) -> dict[float, float | None]:
    """Per mass, the run's fiducial yield Y_F (``yields.json``
    ``aprime.per_pot_per_eps2_fiducial``, interpolated by
    :meth:`gammastar.source.production.Yields.at` as the yield itself), recorded per row
    (``yield_fiducial``) so that N_dd splits into Y_F and N/Y_F from the output alone;
    ``None`` without a positive fiducial yield (yields not extrapolated beyond a fiducial
    region) or outside its masses.

    >>> import json, tempfile
    >>> doc = {"aprime": {"mass": [0.25, 0.35], "per_pot_per_eps2_fiducial": [1.0, 4.0],
    ...                   "stat_err_fiducial": [0.1, 0.4]}}
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    ...     json.dump(doc, f)
    >>> round(fiducial_yield_at(Path(f.name), [0.3])[0.3], 12)
    2.0
    >>> Path(f.name).unlink()
    """
    from gammastar.errors import InputError
    from gammastar.source.production import Yields

    ap = json.loads(Path(path).read_text()).get("aprime", {})

    def column(k):
        return np.asarray([np.nan if v is None else v for v in ap.get(k, [])], dtype=np.float64)

    y_fid = column("per_pot_per_eps2_fiducial")
    err = column("stat_err_fiducial")  # only the value is used: its error may be absent
    try:
        y = Yields(column("mass"), y_fid, err if err.size == y_fid.size else 0 * y_fid, {})
        got = y.at(np.asarray(masses, dtype=np.float64))[0]
    except (InputError, ValueError, IndexError):  # no positive fiducial yield, or none at all
        return {float(m): None for m in masses}
    return {
        float(m): float(v) if np.isfinite(v) else None for m, v in zip(masses, got, strict=True)
    }


def migration_factors(y: Any, masses, *, where: Any = "yields") -> dict[float, float]:
    """:func:`migration_at` of a loaded :class:`gammastar.source.production.Yields` ``y`` (``where`` names
    it in the error of a correction with another number of bins than the yield)."""
    from gammastar.corrections.migration import applied_correction
    from gammastar.source.production import Yields

    mig = (y.extrapolation or {}).get("resolution_migration") or {}
    if not mig.get("applied"):
        return {float(m): 1.0 for m in masses}
    c = applied_correction(mig)[0]
    if c.size != y.mass.size:
        raise SystemExit(f"{where}: resolution_migration has {c.size} bins, the yield "
                         f"{y.mass.size}")  # fmt: skip
    plain = Yields(y.mass, y.per_pot_per_eps2 / c, y.stat_err / c, y.meta)
    ratio = y.at(masses)[0] / plain.at(masses)[0]
    return {
        float(m): float(r) if np.isfinite(r) else 1.0 for m, r in zip(masses, ratio, strict=True)
    }


def bootstrap_replicas(flow_dir: Path, more: list[Path] = ()) -> list[Any] | None:
    """The Poisson-bootstrap replicas of the ensemble in ``flow_dir`` (members ≥ 1 trained with
    ``flow.bootstrap``) and of the ensembles in ``more`` (``--replicas``: more replicas of the
    same training pairs, pooled), or ``None`` when they are fewer than two (no
    ``kinematic_model``).

    Raises:
        ValueError: an ensemble of ``more`` has no replica, was trained on other pairs
            (another training data hash) than ``flow_dir``, is given twice, or repeats a
            replica already pooled (the same bootstrap seed and member).
    """
    from gammastar.flow.ensemble import load_ensemble

    def replicas(d: Path) -> tuple[Any, list[Any]]:
        """The training data hash of ``d``'s ensemble and its replicas (one read)."""
        models = load_ensemble(d).models
        data = models[0].meta.get("meta", {}).get("data_sha256")
        return data, [m for m in models if m.meta.get("meta", {}).get("bootstrap")]

    def key(m: Any) -> tuple[Any, Any]:
        boot = m.meta.get("meta", {}).get("bootstrap") or {}
        return boot.get("seed"), boot.get("member")

    data, reps = replicas(flow_dir)
    seen_dirs = {Path(flow_dir).resolve()}
    for d in more:
        if Path(d).resolve() in seen_dirs:
            raise ValueError(f"{d}: given twice (with --flow or --replicas)")
        seen_dirs.add(Path(d).resolve())
        data_d, extra = replicas(d)
        if not extra:
            raise ValueError(f"{d}: no bootstrap replica (train it with flow.bootstrap)")
        if data_d != data:
            raise ValueError(f"{d}: trained on other pairs than {flow_dir} (data_sha256)")
        have = {key(m) for m in reps}
        if same := sorted(str(k) for k in {key(m) for m in extra} & have):
            raise ValueError(f"{d}: replicas {', '.join(same)} (bootstrap seed, member) are "
                             "already pooled: the same resamples counted twice")  # fmt: skip
        reps += extra
    return reps if len(reps) >= 2 else None


def kinematic_spread(replicas, extrap, fiducial, m, ctaus, geo, samples, seed):
    """Relative spread (standard deviation, ddof 1, / mean) of 𝓔(m, cτ) over the flow's
    bootstrap replicas, each inside the fiducial region with ``extrap`` outside it; ``None``
    without replicas."""
    if not replicas:
        return None
    from gammastar.reach.acceptance import draw
    from gammastar.reach.scan.mass_signal import _relative_spread
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    acc = np.array([
        draw(ExtrapolatedSampler(r, extrap, fiducial), m, samples, geo, seed=seed).acceptance(ctaus)
        for r in replicas
    ])  # fmt: skip
    return _relative_spread(acc)  # the reach's own kinematic_model size


SIGMAS = {
    "all": None,
    "all_yield": None,
    "data_stat": ("data_stat", "mc_acceptance"),
    "stat": ("data_stat", "extrapolation_fit", "mc_acceptance"),
    "varied": None,
    "varied_flow": None,
    "varied_flow_lambda_yield": None,
}
"""Quoted σ variants: every component (``all``: the extrapolation carried to N_sig;
``all_yield``: with the yield's δf_F/f_F instead, what the workspace's ``extrapolation`` normsys
holds today) or the named subset."""
# each row records the N_sig part of every form of the model (MODEL_VARIATIONS),
# ``extrapolation_form_<name>``
_EXTRA = ("extrapolation_fit", "extrapolation_varied", "extrapolation_yield_cross",
          "extrapolation_external", *(f"extrapolation_form_{k}" for k in MODEL_VARIATIONS),
          "acceptance_lambda_theta_yield")  # fmt: skip
# with yields.json uncertainties.lambda_theta_refits a row's acceptance_lambda_theta is at
# N's level (the reach's) and acceptance_lambda_theta_yield the yield's, for the record
EXCLUDE = {
    "all": ("extrapolation_yield", *_EXTRA),
    "all_yield": ("extrapolation", *_EXTRA),
    # what the full arm varies: not the model's forms beyond those it draws (in
    # extrapolation_varied) nor the flow's kinematic_model (one flow per drawn form for all
    # realisations: its error sampled once)
    "varied": (
        "extrapolation_yield",
        "extrapolation",
        "extrapolation_fit",
        "extrapolation_yield_cross",
        "extrapolation_external",
        "kinematic_model",
        *(f"extrapolation_form_{k}" for k in MODEL_VARIATIONS),
        "acceptance_lambda_theta_yield",
    ),
    # ``varied`` with the flow's kinematic_model: what the full arm varies when every
    # realisation trains its own flow (--own-flow), so that the flow's error is realised too
    "varied_flow": (
        "extrapolation_yield",
        "extrapolation",
        "extrapolation_fit",
        "extrapolation_yield_cross",
        "extrapolation_external",
        *(f"extrapolation_form_{k}" for k in MODEL_VARIATIONS),
        "acceptance_lambda_theta_yield",
    ),
}
# ``varied_flow`` with the yield-level λ_θ size in place of the N-level one (older outputs'
# rows have only that one)
EXCLUDE["varied_flow_lambda_yield"] = EXCLUDE["varied_flow"]
SWAP = {"varied_flow_lambda_yield": ("acceptance_lambda_theta", "acceptance_lambda_theta_yield")}
ARM_SIGMAS = {
    "full": ("all", "varied", "varied_flow", "all_yield", "data_stat", "varied_flow_lambda_yield"),
    "stat": ("data_stat", "stat", "all"),
}


def quoted(parts: dict[str, float], which: str) -> float:
    """√ of the sum of squares of the σ components ``SIGMAS[which]`` (every component but
    those of ``EXCLUDE[which]`` for ``all``/``all_yield``/``varied*``), a component swapped for
    another first where ``SWAP[which]`` names one the row has."""
    drop = EXCLUDE.get(which, ())
    if which in SWAP and SWAP[which][1] in parts:
        old, new = SWAP[which]
        parts = {k: v for k, v in parts.items() if k != old} | {old: parts[new]}
    keys = SIGMAS[which] or tuple(k for k in parts if k not in drop)
    return math.sqrt(sum(parts.get(k, 0.0) ** 2 for k in keys))


def coverage_table(rows: list[dict[str, Any]], masses, ctaus, sigmas) -> list[dict[str, Any]]:
    """Per (mass, cτ): the ±1σ/±2σ coverage (binomial errors), pulls, dd/truth, per σ variant."""
    table = []
    for m in masses:
        for ct in ctaus:
            sel = [x for x in rows if x["mass"] == m and x["ctau"] == float(ct)]
            t: dict[str, Any] = {"mass": m, "ctau": float(ct), "n": len(sel)}
            t["mean_ratio_dd_truth"] = float(np.mean([x["nsig_dd"] / x["nsig_truth"] for x in sel]))
            for which in sigmas:
                p = np.array([x["pulls"][which] for x in sel])
                n = p.size
                f1, f2 = float(np.mean(np.abs(p) <= 1)), float(np.mean(np.abs(p) <= 2))
                t[which] = {
                    "cover_1sigma": f1, "cover_1sigma_err": math.sqrt(f1 * (1 - f1) / n),
                    "cover_2sigma": f2, "cover_2sigma_err": math.sqrt(f2 * (1 - f2) / n),
                    "mean_pull": float(np.mean(p)), "rms_pull": float(np.std(p)),
                    "mean_rel_sigma": float(np.mean([quoted(x["sigma"], which) for x in sel])),
                    "pulls": [round(float(v), 4) for v in p],
                }  # fmt: skip
            table.append(t)
    return table


COVER_P = (math.erf(1 / math.sqrt(2)), math.erf(2 / math.sqrt(2)))
"""The ±1σ and ±2σ fractions a calibrated Gaussian quote covers: 0.6827, 0.9545."""
JOINT_TOYS = 20000
"""Toy tables behind :func:`joint_test`'s critical value and p-value (its precision at 5%:
±0.0015)."""


def joint_test(rows: list[dict[str, Any]], which: str, *, toys: int = JOINT_TOYS,
               seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The coverage table's fractions against a calibrated quote, jointly, for σ variant
    ``which`` (``rows`` with their ``pulls``).

    Each of the 2·k fractions (±1σ, ±2σ at k (mass, cτ) points) gets
    z = (f − p)/√(p(1 − p)/n), p of :data:`COVER_P` (the error of the expected fraction, not of
    the observed one, which is 0 at f = 1); the statistic is max |z|. Its distribution for a
    calibrated quote comes from ``toys`` tables of n Gaussian pull vectors with the pulls'
    measured correlation between the points (the cτ of one mass share nearly everything, the
    masses the drawn systematics), so the 5% critical value and the p-value count the 2·k
    looks and their correlations (a Šidák-like bound for correlated tests, by simulation).
    The strict reading, every fraction within its own binomial error, is reported beside it
    with the rate at which a calibrated quote meets it (a few per cent at 2·k = 12: it is
    not a test of the quote).

    Arguments:
        rows: the realisations' rows (``seed``, ``mass``, ``ctau``, ``pulls``); only seeds
            with every point and finite pulls are used (:func:`coverage_table` counts a NaN
            pull as not covered, so its n can be larger).
        which: the σ variant (a key of the rows' ``pulls``).
        toys: toy tables; seed: their generator's seed.

    Returns:
        ``{sigma, n, z: [{mass, ctau, z_1sigma, z_2sigma}], max_abs_z, critical_5pct,
        p_value ((1 + toys at or above it)/(1 + toys)), consistent (max |z| ≤ critical), letter (every fraction within its own
        binomial error), letter_rate_calibrated, toys, seed}``.

    References:
        Z. Šidák, J. Am. Stat. Assoc. 62 (1967) 626 (joint confidence for several looks);
        the binomial error of a coverage fraction as in G. Cowan, Statistical Data Analysis
        (1998), Sec. 9.

    Example (an error quoted 1.5 times too small: the ±1σ fraction is about 0.50, not 0.68,
    which 400 realisations tell apart at about 8σ):
        >>> rng = np.random.default_rng(1)
        >>> rows = [{"seed": s, "mass": 0.5, "ctau": c, "pulls": {"q": float(p)}}
        ...         for s, p in enumerate(1.5 * rng.normal(size=400)) for c in (1.0, 10.0)]
        >>> out = joint_test(rows, "q", toys=2000)
        >>> bool(out["consistent"]), bool(out["max_abs_z"] > 5)
        (False, True)
    """
    points = sorted({(r["mass"], r["ctau"]) for r in rows})
    by_seed: dict[int, dict[tuple[float, float], float]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[(r["mass"], r["ctau"])] = r["pulls"][which]
    full = [[d[pt] for pt in points] for d in by_seed.values() if len(d) == len(points)]
    pulls = np.array(full, dtype=np.float64).reshape(len(full), len(points))
    pulls = pulls[np.all(np.isfinite(pulls), axis=1)]
    n, k = pulls.shape
    if n < 3:
        raise ValueError(f"joint_test: {n} complete realisations for {which!r}, need >= 3")
    p = np.array(COVER_P)
    err = np.sqrt(p * (1 - p) / n)

    def fractions(x):  # (..., n, k) → (..., 2, k)
        return np.stack([np.mean(np.abs(x) <= 1, axis=-2), np.mean(np.abs(x) <= 2, axis=-2)], -2)

    f = fractions(pulls)
    z = (f - p[:, None]) / err[:, None]
    f_err = np.sqrt(f * (1 - f) / n)
    letter = bool(np.all(np.abs(f - p[:, None]) <= f_err))
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant column: NaN, below
        corr = np.nan_to_num(np.corrcoef(pulls.T), nan=0.0) if k > 1 else np.ones((1, 1))
    np.fill_diagonal(corr, 1.0)  # a column of constant pulls: uncorrelated, unit variance
    w, v = np.linalg.eigh(corr + 1e-12 * np.eye(k))
    chol = v * np.sqrt(np.clip(w, 0.0, None))  # a square root of the correlation
    rng = np.random.default_rng(seed)
    stat, met = [], 0
    for start in range(0, toys, 500):
        x = rng.normal(size=(min(500, toys - start), n, k)) @ chol.T
        ft = fractions(x)
        stat.append(np.abs((ft - p[:, None]) / err[:, None]).max(axis=(-2, -1)))
        met += int(np.sum(np.all(np.abs(ft - p[:, None]) <= np.sqrt(ft * (1 - ft) / n),
                                 axis=(-2, -1))))  # fmt: skip
    stat = np.concatenate(stat)
    obs = float(np.abs(z).max())
    crit = float(np.quantile(stat, 0.95))
    return {
        "sigma": which, "n": int(n),
        "z": [{"mass": m, "ctau": c, "z_1sigma": float(z[0, i]), "z_2sigma": float(z[1, i])}
              for i, (m, c) in enumerate(points)],
        "max_abs_z": obs, "critical_5pct": crit,
        "p_value": float((1 + np.sum(stat >= obs)) / (1 + toys)), "consistent": obs <= crit,
        "letter": letter, "letter_rate_calibrated": met / toys, "toys": toys, "seed": seed,
    }  # fmt: skip


def joint_tests(rows: list[dict[str, Any]], sigmas) -> dict[str, dict[str, Any]]:
    """:func:`joint_test` per σ variant of ``sigmas``, those with fewer than 3 complete
    realisations left out (a short run: no joint test)."""
    out = {}
    for w in sigmas:
        try:
            out[w] = joint_test(rows, w)
        except ValueError:
            continue
    return out


def joint_lines(tests: dict[str, dict[str, Any]]) -> list[str]:
    """One printed line per σ variant of :func:`joint_test`."""
    return [f"joint test ({w}): max |z| {t['max_abs_z']:.2f} over {2 * len(t['z'])} fractions "
            f"of {t['n']} realisations, 5% critical {t['critical_5pct']:.2f}, p = "
            f"{t['p_value']:.3f}: {'consistent' if t['consistent'] else 'NOT consistent'} with "
            f"a calibrated quote; every fraction within its own error: "
            f"{'yes' if t['letter'] else 'no'} (a calibrated quote: "
            f"{100 * t['letter_rate_calibrated']:.1f}% of tables)"
            for w, t in tests.items()]  # fmt: skip


def markdown(table: list[dict[str, Any]], sigmas) -> list[str]:
    """The table as markdown rows: per σ variant ±1σ, ±2σ (binomial errors), mean/rms pull,
    quoted σ; N_dd/N_truth."""

    def cov(f: float, e: float) -> str:
        return f"{f:.2f} ± {e:.2f}" if 0 < f < 1 else f"{f:.2f}"

    head = "| m (GeV) | cτ (m) | n | N_dd/N_truth |"
    sep = "| --- | --- | --- | --- |"
    for w in sigmas:
        head += f" ±1σ ({w}) | ±2σ ({w}) | pull mean/rms ({w}) | σ ({w}) |"
        sep += " --- | --- | --- | --- |"
    lines = [head, sep]
    for t in table:
        row = f"| {t['mass']:.2f} | {t['ctau']:g} | {t['n']} | {t['mean_ratio_dd_truth']:.3f} |"
        for w in sigmas:
            c = t[w]
            row += (
                f" {cov(c['cover_1sigma'], c['cover_1sigma_err'])} |"
                f" {cov(c['cover_2sigma'], c['cover_2sigma_err'])} |"
                f" {c['mean_pull']:+.2f} / {c['rms_pull']:.2f} | {100 * c['mean_rel_sigma']:.1f}% |"
            )
        lines.append(row)
    return lines


MERGE_HEADER = ("config", "events", "flow", "form_flows", "own_flow", "kinematic_model",
                "vary_seed", "truth_seed", "truth_sources", "response_sources", "samples",
                "migration_undone")  # fmt: skip
"""The fields of an output that every output merged by :func:`merge` must share: the same
config, flows, draws and truth (only the generator seeds differ). A field absent from a file
(an output written before it existed) reads as ``None``."""
MERGE_ARM_HEADER = ("varied", "drawn_forms")
"""The fields of an arm that every output holding it must share (:func:`merge`)."""


def _read_output(path: Path) -> dict[str, Any]:
    """One output of this script (its JSON object), or a one-line SystemExit naming the file."""
    try:
        out = json.loads(Path(path).read_text())
    except OSError as e:
        raise SystemExit(f"--merge: cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise SystemExit(f"--merge: {path} is not JSON ({e})") from None
    if not (isinstance(out, dict) and out.get("benchmark") == "coverage"
            and isinstance(out.get("arms"), dict)):  # fmt: skip
        raise SystemExit(f"--merge: {path} is not an output of the coverage study "
                         "(no benchmark 'coverage' with arms)")  # fmt: skip
    return out


def _points(arm: dict[str, Any]) -> list[tuple[float, float]]:
    """The (mass, cτ) of an arm's rows, sorted."""
    return sorted({(r["mass"], r["ctau"]) for r in arm.get("rows", [])})


REGRESSORS = ("y_sigma", "pt_form", "lambda_theta_shift", "r_factor")
"""The drawn parameters :func:`drawn_regression` takes as covariates (those a row has)."""


def _draw_design(sel: list[dict[str, Any]], drawn: dict[int, dict[str, float]],
                 centre: dict[str, float]) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """The regressors that every row of ``sel`` has drawn (:data:`REGRESSORS`) and the design
    matrix [1, draw − centre, ...] of the rows (a regressor without a centre: 0)."""
    names = [k for k in REGRESSORS if all(k in drawn[r["seed"]] for r in sel)]
    x = np.array([[1.0] + [drawn[r["seed"]][k] - centre.get(k, 0.0) for k in names]
                  for r in sel])  # fmt: skip
    return names, x.reshape(len(sel), len(names) + 1)


def drawn_regression(rows: list[dict[str, Any]], drawn: dict[int, dict[str, float]],
                     y_sigma: float | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Per (mass, cτ): the least-squares slopes of ln N_truth, ln N_dd and ln(N_dd/N_truth) on
    the full arm's drawn parameters (:data:`REGRESSORS`, each realisation's draws by seed),
    with their standard errors, and the residual scatter of ln(N_dd/N_truth). A systematic's
    quoted size is right when the realised bias slope times the prior's width matches it; for
    σ_y (``y_sigma``: the drawn value's centre) the quoted external part at ±1σ of the prior
    is given beside it (``quoted_external``: √(``extrapolation_varied``² −
    ``extrapolation_fit``²), the median over the rows, exact when ``varied`` holds no model
    form; to compare with the bias slope times the prior's width)."""
    out = []
    for m, ct in sorted({(r["mass"], r["ctau"]) for r in rows}):
        sel = [r for r in rows if (r["mass"], r["ctau"]) == (m, ct) and r["seed"] in drawn]
        names, x = _draw_design(sel, drawn, {"y_sigma": y_sigma or 0.0, "r_factor": 1.0})
        if len(sel) <= len(names) + 1:
            continue
        xtx = np.linalg.inv(x.T @ x)
        row: dict[str, Any] = {"mass": m, "ctau": ct, "n": len(sel), "covariates": names}
        for key, y in (("truth", np.log([r["nsig_truth"] for r in sel])),
                       ("dd", np.log([r["nsig_dd"] for r in sel])),
                       ("bias", np.log([r["nsig_dd"] / r["nsig_truth"] for r in sel]))):  # fmt: skip
            beta = xtx @ x.T @ y
            res = y - x @ beta
            se = np.sqrt(np.diag(xtx) * res.var(ddof=x.shape[1]))
            row[key] = {k: [float(beta[i + 1]), float(se[i + 1])] for i, k in enumerate(names)}
            if key == "bias":
                row["bias_sd"], row["bias_residual_sd"] = float(y.std()), float(res.std())
        parts = [r["sigma"] for r in sel]
        if all("extrapolation_varied" in p and "extrapolation_fit" in p for p in parts):
            ext = [math.sqrt(max(p["extrapolation_varied"] ** 2 - p["extrapolation_fit"] ** 2,
                                 0.0)) for p in parts]  # fmt: skip
            row["quoted_external"] = float(np.median(ext))
        out.append(row)
    return out


def flow_scatter(rows: list[dict[str, Any]], reference: list[dict[str, Any]],
                 drawn: dict[int, dict[str, float]]) -> list[dict[str, Any]]:  # fmt: skip
    """Per (mass, cτ): how much each realisation's own flow (``--own-flow`` ``rows``) moves
    N_dd from the fixed flow's (``reference``: rows of the same seeds from a run without
    ``--own-flow``; the same data, truth and extrapolation, only the flow and the A′ draws
    differ). The standard deviation of ln(N_own/N_fixed) less its least-squares regression on
    the draws (:data:`REGRESSORS`: an own flow follows its realisation's draws, the fixed one
    does not), against the quoted ``kinematic_model`` (rms over the rows) and the own draws'
    binomial error ``mc_acceptance`` (the fixed flow's draws share one seed: inside F they are
    the same sample in every realisation, a common shift); ``flow_realised`` = √(sd² − mc²), the
    flow's error as the realisations show it (all of the rest taken as the flow's)."""
    ref = {(r["seed"], r["mass"], r["ctau"]): r for r in reference}
    out = []
    for m, ct in sorted({(r["mass"], r["ctau"]) for r in rows}):
        sel = [r for r in rows if (r["mass"], r["ctau"]) == (m, ct)
               and (r["seed"], m, ct) in ref and r["seed"] in drawn]  # fmt: skip
        names, x = _draw_design(sel, drawn, {})
        if len(sel) <= len(names) + 2:
            continue
        y = np.log([r["nsig_dd"] / ref[(r["seed"], m, ct)]["nsig_dd"] for r in sel])
        res = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        sd = float(np.sqrt(res @ res / (len(sel) - x.shape[1])))
        kin = float(np.sqrt(np.mean([r["sigma"].get("kinematic_model", 0.0) ** 2 for r in sel])))
        mc = float(np.sqrt(np.mean([r["sigma"]["mc_acceptance"] ** 2 for r in sel])))
        out.append({"mass": m, "ctau": ct, "n": len(sel), "mean": float(y.mean()), "sd": sd,
                    "sd_err": sd / math.sqrt(2 * (len(sel) - x.shape[1])),
                    "quoted_kinematic_model": kin, "mc_acceptance": mc,
                    "flow_realised": math.sqrt(max(sd**2 - mc**2, 0.0))})  # fmt: skip
    return out


def drawn_by_seed(out: dict[str, Any], arm_out: dict[str, Any], arm: str, path: Path):
    """An output's draws of ``arm`` by seed: a run's ``seeds`` range, or a merged output's
    ``drawn_seeds`` (none, ``{}``, from an older merge). Draws that do not match their seeds
    in number, or a seed twice, are a one-line SystemExit naming the file."""
    drawn = arm_out.get("drawn", [])
    if "drawn_seeds" in arm_out:
        seeds = list(arm_out["drawn_seeds"])
    elif (first := (out.get("seeds") or [None])[0]) is not None:
        seeds = list(range(first, first + len(drawn)))
    else:
        return {}
    if len(seeds) != len(drawn) or len(set(seeds)) != len(seeds):
        raise SystemExit(f"coverage: arm {arm!r} of {path}: {len(drawn)} draws for "
                         f"{len(set(seeds))} distinct seeds")  # fmt: skip
    return dict(zip(seeds, drawn, strict=True))


def merge(
    paths: list[Path], against: list[Path] | None = None, *, undo_migration: bool = False
) -> dict[str, Any]:
    """The coverage tables of the realisations of several outputs of this script (each arm's
    ``rows``, pulls recomputed from them as :func:`main` makes them), for seed ranges run in
    separate processes. Refused, with a one-line SystemExit naming the field (or the point set)
    and the two files: outputs whose :data:`MERGE_HEADER` fields differ, an arm whose
    :data:`MERGE_ARM_HEADER` fields or (mass, cτ) points differ between the outputs holding
    it, a seed found twice in an arm, and a file that is missing or not such an output.
    Prints the markdown rows and, last, the JSON object: the shared header fields, ``merged``
    (the files) and per arm ``table``, ``rows``, ``drawn`` (the outputs' in turn) with their
    ``drawn_seeds`` where every output tells them (so that a merged output merges again with
    its draws: :func:`drawn_regression`), ``varied``, ``drawn_forms``.
    ``undo_migration``: each row's N_dd divided by the resolution-migration factor it carries
    (``migration``, :func:`migration_at`) and its ``resolution_migration`` part dropped: the
    same realisations without ``yields.resolution_migration``."""
    outs = [_read_output(p) for p in paths]
    refs_out = [_read_output(p) for p in against or []]  # read once, used per arm
    for field in MERGE_HEADER:
        for p, o in zip(paths[1:], outs[1:], strict=True):
            if o.get(field) != outs[0].get(field):
                raise SystemExit(f"--merge: {field} differs: {outs[0].get(field)!r} in "
                                 f"{paths[0]}, {o.get(field)!r} in {p}")  # fmt: skip
    arms: dict[str, Any] = {}
    for arm in dict.fromkeys(a for o in outs for a in o["arms"]):
        held = [(p, o["arms"][arm]) for p, o in zip(paths, outs, strict=True) if arm in o["arms"]]
        (p_ref, ref), rest = held[0], held[1:]
        for p, a in rest:
            for field in MERGE_ARM_HEADER:
                if a.get(field) != ref.get(field):
                    raise SystemExit(f"--merge: arm {arm!r} {field} differs: {ref.get(field)!r} "
                                     f"in {p_ref}, {a.get(field)!r} in {p}")  # fmt: skip
            if _points(a) != _points(ref):
                raise SystemExit(f"--merge: arm {arm!r} covers other (mass, ctau) points: "
                                 f"{_points(ref)} in {p_ref}, {_points(a)} in {p}")  # fmt: skip
        rows = [r for _, a in held for r in a.get("rows", [])]
        keys = [(r["seed"], r["mass"], r["ctau"]) for r in rows]
        if len(set(keys)) != len(keys):
            raise SystemExit(f"--merge: arm {arm!r} holds a realisation twice (the same seed)")
        for r in rows:
            if undo_migration:
                if "migration" not in r:
                    raise SystemExit(f"--undo-migration: arm {arm!r} seed {r['seed']} has no "
                                     "migration factor (an output of an older coverage.py)")  # fmt: skip
                r["nsig_dd"] /= r["migration"]
                r["migration"] = 1.0
                r["sigma"].pop("resolution_migration", None)
            width = {w: math.hypot(quoted(r["sigma"], w) * r["nsig_dd"],
                                   r["rel_sigma_truth"] * r["nsig_truth"])
                     for w in ARM_SIGMAS[arm]}  # fmt: skip
            r["pulls"] = {w: (r["nsig_dd"] - r["nsig_truth"]) / v if v > 0 else float("nan")
                          for w, v in width.items()}  # fmt: skip
        masses = sorted({r["mass"] for r in rows})
        ctaus = sorted({r["ctau"] for r in rows})
        table = coverage_table(rows, masses, ctaus, ARM_SIGMAS[arm])
        print(f"\n## arm {arm}\n" + "\n".join(markdown(table, ARM_SIGMAS[arm])) + "\n", flush=True)
        joint = joint_tests(rows, ARM_SIGMAS[arm])
        print("\n".join(joint_lines(joint)), flush=True)
        by_seed, complete = {}, True
        for (p, a), o in zip(held, (o for o in outs if arm in o["arms"]), strict=True):
            here = drawn_by_seed(o, a, arm, p)
            complete &= len(here) == len(a.get("drawn", []))
            by_seed.update(here)
        regression = drawn_regression(rows, by_seed, _y_sigma_centre(outs[0]))
        if without := len({r["seed"] for r in rows} - set(by_seed)):
            print(f"arm {arm}: {without} realisations have no draws by seed (a merged output "
                  "without drawn_seeds, or fewer draws than seeds): the regression below leaves "
                  "them out", flush=True)  # fmt: skip
        scatter = None
        if against:
            refs = [r for o in refs_out for r in o["arms"].get(arm, {}).get("rows", [])]
            scatter = flow_scatter(rows, refs, by_seed)
            for g in scatter:
                print(f"m {g['mass']:g} ctau {g['ctau']:g}: ln(N_own/N_fixed) over {g['n']}: mean "
                      f"{g['mean']:+.4f}, sd less the draws {g['sd']:.4f} ± {g['sd_err']:.4f}; "
                      f"quoted kinematic_model {g['quoted_kinematic_model']:.4f}, own draws' MC "
                      f"{g['mc_acceptance']:.4f}: the flow's realised error "
                      f"{g['flow_realised']:.4f}", flush=True)  # fmt: skip
        for g in regression:
            print(f"m {g['mass']:g} ctau {g['ctau']:g}: ln(dd/truth) sd {g['bias_sd']:.4f}, "
                  f"less the draws {g['bias_residual_sd']:.4f}; slopes (truth / dd / bias): "
                  + "; ".join(f"{k} {g['truth'][k][0]:+.3f} / {g['dd'][k][0]:+.3f} / "
                              f"{g['bias'][k][0]:+.3f} ± {g['bias'][k][1]:.3f}"
                              for k in g["covariates"])
                  + (f"; quoted external {g['quoted_external']:.4f}"
                     if "quoted_external" in g else ""), flush=True)  # fmt: skip
        arms[arm] = {
            "realisations": len({r["seed"] for r in rows}),
            **{f: ref.get(f) for f in MERGE_ARM_HEADER},
            "drawn": [d for _, a in held for d in a.get("drawn", [])],
            **({"drawn_seeds": list(by_seed)} if complete else {}),
            "table": table,
            "joint": joint,
            "regression": regression,
            **({"flow_scatter": scatter} if scatter is not None else {}),
            "rows": [{k: v for k, v in r.items() if k != "pulls"} for r in rows],
        }
    out = {"benchmark": "coverage", "merged": [str(p) for p in paths],
           **{f: outs[0].get(f) for f in MERGE_HEADER}, "arms": arms}  # fmt: skip
    if undo_migration:  # not to be merged again with outputs that keep their correction
        out["migration_undone"] = True
    print(json.dumps(out))
    return out


def _y_sigma_centre(out: dict[str, Any]) -> float | None:
    """The config's external σ_y (``yields.extrapolation_y_sigma.value``) of an output, the
    centre of the drawn σ_y (``None``: not readable, or not configured)."""
    from gammastar.config import load_config
    from gammastar.errors import GammastarError

    try:
        ys = load_config(out["config"]).yields.extrapolation_y_sigma
    except (GammastarError, OSError, KeyError, TypeError):  # the config moved: no centre
        return None
    return None if ys is None else float(ys.value)


def add_truth_arguments(ap: argparse.ArgumentParser) -> None:
    """The truth side's options (:func:`truth_side`, :func:`mass_response`, the A′ draws)."""
    ap.add_argument("--truth-sources", type=int, default=20_000_000)
    ap.add_argument(
        "--response-sources", type=int, default=10_000_000,
        help="cocktail sources of the mass-response sample (per drawn lambda_theta)",
    )  # fmt: skip
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--seed", type=int, default=11, help="truth and A′ samples")


def form_flow_arguments(ap: argparse.ArgumentParser, pairs: list[list[str]]) -> dict[float, Path]:
    """``--form-flow A DIR`` pairs as {a: flow directory}; ``ap.error`` when an A is not a
    finite number or is given twice."""
    out: dict[float, Path] = {}
    for text, d in pairs:
        try:
            a = float(text)
        except ValueError:
            a = math.nan
        if not math.isfinite(a):
            ap.error(f"--form-flow: A must be a number (a drawn mock.pt_mt_power), not {text!r}")
        if any(round(a, 6) == round(b, 6) for b in out):
            ap.error(f"--form-flow: A = {text} given twice")
        out[a] = Path(d)
    return out


def check_drawn_forms(ap: argparse.ArgumentParser, a0: float) -> None:
    """``ap.error`` unless every drawn p_T form a0 + z (:data:`FORM_POINTS`) is within
    ``mock.pt_mt_power``'s bounds."""
    for z in FORM_POINTS:
        if (why := pt_mt_power_error(a0 + z)) is not None:
            ap.error(f"mock.pt_mt_power: the drawn p_T form {why} (the config's {a0:g} + "
                     f"FORM_POINTS)")  # fmt: skip


def check_form_flows(ap: argparse.ArgumentParser, form_flows: dict[float, Path], a0: float) -> None:
    """``ap.error`` unless ``form_flows`` holds one flow for each drawn p_T form a0 + z
    (:data:`FORM_POINTS`) other than the config's a0 (whose flow is ``--flow``)."""
    points = {round(a0 + z, 6): a0 + z for z in FORM_POINTS if z != 0.0}
    wanted = ", ".join(f"{a:g}" for a in points.values())
    for a in form_flows:
        if round(a, 6) == round(a0, 6):
            ap.error(f"--form-flow: A = {a:g} is the config's mock.pt_mt_power, whose flow is "
                     f"--flow")  # fmt: skip
        if round(a, 6) not in points:
            ap.error(f"--form-flow: A = {a:g} is not a drawn p_T form (mock.pt_mt_power "
                     f"{a0:g} + FORM_POINTS: {wanted})")  # fmt: skip
    missing = [a for k, a in points.items() if k not in {round(b, 6) for b in form_flows}]
    if missing:
        ap.error(f"--form-flow: no flow for pt_mt_power {', '.join(f'{a:g}' for a in missing)}")


TRUTH_FROM_KEYS = ("truth_seed", "truth_sources", "samples", "vary_seed", "response_sources")
"""What an earlier output (``--truth-from``) must share with this run for its truths to hold."""


def truths_from(ap: Any, args: Any) -> dict[tuple[str, int], dict[str, Any]]:
    """``--truth-from``: per (arm, seed) of the earlier outputs (the benchmark's own last
    lines, one file each), the drawn values and each (mass, cτ)'s ``(N_truth, σ_t)``. A file
    that is unreadable, that differs from this run in one of :data:`TRUTH_FROM_KEYS`, lacks a
    wanted (mass, cτ) or gives a seed twice is a one-line error naming it."""
    here = {"truth_seed": args.seed, "truth_sources": args.truth_sources,
            "samples": args.samples, "vary_seed": args.vary_seed,
            "response_sources": args.response_sources}  # fmt: skip
    wanted = {(float(m), float(c)) for m in args.masses for c in args.ctaus}
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for path in args.truth_from:
        try:
            doc = json.loads(path.read_text().strip().splitlines()[-1])
            first, last = doc["seeds"]
            arms = doc["arms"]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            ap.error(f"--truth-from {path}: not an output of this study ({e})")
        for k in TRUTH_FROM_KEYS:
            if doc.get(k) != here[k]:
                ap.error(f"--truth-from {path}: its {k} is {doc.get(k)}, this run's {here[k]}")
        for arm, data in arms.items():
            seeds = range(first, last + 1)
            truth: dict[int, dict[tuple[float, float], tuple[float, float]]] = {}
            for row in data["rows"]:
                truth.setdefault(row["seed"], {})[(row["mass"], row["ctau"])] = (
                    row["nsig_truth"], row["rel_sigma_truth"])  # fmt: skip
            for seed, drawn in zip(seeds, data["drawn"], strict=True):
                if (arm, seed) in out:
                    ap.error(f"--truth-from {path}: seed {seed} ({arm}) given twice")
                if not wanted <= set(truth.get(seed, {})):
                    ap.error(f"--truth-from {path}: seed {seed} ({arm}) lacks some of the "
                             f"masses and ctaus asked for")  # fmt: skip
                out[(arm, seed)] = {"drawn": drawn, "truth": truth[seed]}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--events", type=int, default=None,
                    help="mock.events of every realisation (default: the config's): a quick run")
    ap.add_argument("--flow", type=Path, help="fixed flow (fiducial kinematics)")
    ap.add_argument("--realisations", type=int, default=30)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    add_truth_arguments(ap)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gammastar_coverage")
    ap.add_argument(
        "--arms", nargs="+", choices=list(ARM_SIGMAS), default=["full", "stat"],
        help="full: systematics' parameters drawn per realisation; stat: the config's",
    )  # fmt: skip
    ap.add_argument("--vary-seed", type=int, default=2026, help="draws of the full arm")
    ap.add_argument(
        "--form-flow", nargs=2, action="append", metavar=("A", "DIR"), default=[],
        help="the full arm draws the mock mesons' p_T form (FORM_POINTS): the fiducial flow "
             "trained on a realisation of pt_mt_power A (one per drawn A other than the "
             "config's, whose flow is --flow)",
    )  # fmt: skip
    ap.add_argument(
        "--own-flow", action="store_true",
        help="every realisation trains its own flow on its own pairs (the chain's train: one "
             "member, the realisation's seed) and its A' draws are seeded per realisation, so "
             "that the flow's and the draws' errors are realised as quoted (varied_flow); "
             "--flow's bootstrap replicas still give the quoted kinematic_model",
    )  # fmt: skip
    ap.add_argument(
        "--replicas", type=Path, nargs="+", metavar="DIR", default=[],
        help="flow ensembles trained with flow.bootstrap on --flow's pairs: their replicas "
             "join --flow's for the quoted kinematic_model (the spread of k replicas is "
             "uncertain by 1/sqrt(2(k-1)))",
    )  # fmt: skip
    ap.add_argument(
        "--draw-pt-form", action="store_true",
        help="with --own-flow: the full arm draws the mock mesons' p_T form (FORM_POINTS) "
             "without --form-flow (each realisation's own flow follows its drawn form)",
    )  # fmt: skip
    ap.add_argument(
        "--reuse", action="store_true",
        help="take a realisation's run directory as it is when it has a yields.json and its "
             "mock file was generated with the wanted mock parameters (REUSE_MOCK_FIELDS; "
             "a rerun of the statistics on the same realisations; recorded in the output); "
             "with --own-flow, also its own flow when it is this training's (own_flow_mismatch)",
    )  # fmt: skip
    ap.add_argument(
        "--redo-yields", action="store_true",
        help="with --reuse: rerun `yields` on each reused selection (the yields' code changed)",
    )  # fmt: skip
    ap.add_argument(
        "--truth-from", type=Path, nargs="+", metavar="JSON",
        help="earlier outputs of this benchmark (the same config, truth seed and sources, "
        "samples, vary seed and drawn forms): each realisation's N_truth and its error are "
        "taken from their rows instead of recomputed (with --reuse --redo-yields, a rerun of "
        "the data side alone)",
    )  # fmt: skip
    ap.add_argument(
        "--truth-cache", type=Path, metavar="DIR",
        help="keep each drawn (sigma_y, p_T form)'s truth in DIR and take it from there in "
             "later runs of the same truth options (seed ranges run one after the other)",
    )  # fmt: skip
    ap.add_argument(
        "--merge", type=Path, nargs="+", metavar="JSON",
        help="no realisations: combine the rows of these runs' outputs (e.g. seed ranges run "
             "in parallel) into one table per arm",
    )  # fmt: skip
    ap.add_argument(
        "--against", type=Path, nargs="+", metavar="JSON",
        help="with --merge of --own-flow outputs: outputs of the same seeds with the fixed flow; "
             "the scatter of ln(N_own/N_fixed) against the quoted kinematic_model "
             "(flow_scatter)",
    )  # fmt: skip
    ap.add_argument(
        "--undo-migration", action="store_true",
        help="with --merge: the rows without their yields.resolution_migration (N_dd / c(m), "
             "its nuisance dropped): the uncorrected coverage of the same realisations",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.undo_migration and not args.merge:
        ap.error("--undo-migration: only with --merge")
    if args.undo_migration and args.against:
        ap.error("--undo-migration: not with --against (its rows would keep their factor)")
    if args.against and not args.merge:
        ap.error("--against: only with --merge")
    if args.merge:
        return merge(args.merge, args.against, undo_migration=args.undo_migration)
    if args.flow is None:
        ap.error("--flow is required (unless --merge)")
    truth_from = truths_from(ap, args) if args.truth_from else {}
    form_flows = form_flow_arguments(ap, args.form_flow)
    if args.own_flow and form_flows:
        ap.error("--form-flow: not used with --own-flow (each realisation's own flow follows "
                 "its drawn p_T form); give --draw-pt-form instead")  # fmt: skip
    if args.draw_pt_form and not args.own_flow:
        ap.error("--draw-pt-form: only with --own-flow (else --form-flow gives the drawn "
                 "forms' flows)")  # fmt: skip
    draw_form = bool(form_flows) or args.draw_pt_form
    if draw_form and "full" not in args.arms:
        ap.error(
            f"--form-flow: only the full arm draws the p_T form (--arms {' '.join(args.arms)})"
        )

    from gammastar.config import load_config
    from gammastar.core import rundir
    from gammastar.errors import GammastarError
    from gammastar.flow.model import load as load_flow
    from gammastar.source.geometry import Geometry

    try:
        base = with_events(load_config(args.config), args.events)
    except GammastarError as e:
        ap.error(f"--config: {e}")
    a0 = float(base.mock.pt_mt_power)
    if draw_form:
        check_drawn_forms(ap, a0)
    if form_flows:
        check_form_flows(ap, form_flows, a0)
    dirs = {"--flow": args.flow} | {f"--form-flow {a:g}": d for a, d in form_flows.items()}
    for opt, d in dirs.items():
        if not d.is_dir():
            ap.error(f"{opt}: {d} is not a directory")

    def load(opt: str, path: Path) -> Any:
        try:
            return load_flow(path)
        except GammastarError as e:
            ap.error(f"{opt}: {e}")

    geo = Geometry.from_config(base.detector)
    model = load("--flow", args.flow)
    try:  # the flow's kinematic_model, when it has replicas
        replicas = bootstrap_replicas(args.flow, args.replicas)
    except (ValueError, GammastarError) as e:
        ap.error(f"--replicas: {e}")
    models = {round(a0, 6): model} | {round(a, 6): load(f"--form-flow {a:g}", d)
                                      for a, d in form_flows.items()}  # fmt: skip
    drawn_forms = tuple(DRAWN_FORMS.values()) if draw_form else ()
    masses, ctaus = list(args.masses), np.asarray(args.ctaus, dtype=float)
    truths: dict[tuple[float, float], Any] = {}  # per (rapidity_sigma, pt_mt_power)
    t0 = time.perf_counter()
    arms: dict[str, Any] = {}
    for arm in args.arms:
        rows: list[dict[str, Any]] = []
        arm_forms = drawn_forms if arm == "full" else ()
        for r in range(args.realisations):
            seed = args.first_seed + r
            run = args.workdir.resolve() / f"{arm}_seed{seed}"
            run.mkdir(parents=True, exist_ok=True)
            cfg, drawn = base, {}
            if arm == "full":
                cfg, drawn = varied_config(base, np.random.default_rng([args.vary_seed, seed]),
                                           pt_form=draw_form)  # fmt: skip
            cfg = cfg.model_copy(update={"seed": seed, "output": str(run)})
            reuse = args.reuse and (why := reuse_mismatch(run, cfg)) is None
            if not reuse:
                if args.reuse:
                    print(f"{arm} seed {seed}: not reused, generated ({why})", flush=True)
                realisation(cfg)
            elif args.redo_yields:
                import gammastar

                gammastar.compute_yields(cfg, force=True, plots=False, theory=False)
            # the γ*' truth moves only with σ_y and the p_T form
            key = (float(cfg.mock.rapidity_sigma), float(cfg.mock.pt_mt_power))
            earlier = truth_from.get((arm, seed))
            if earlier is not None and earlier["drawn"] != drawn:
                raise SystemExit(f"--truth-from: seed {seed} ({arm}) drew {earlier['drawn']} "
                                 f"there, {drawn} here")  # fmt: skip
            if earlier is not None:
                n_truth = earlier["truth"]
            elif key not in truths:
                fields = {"sources": args.truth_sources, "samples": args.samples,
                          "seed": args.seed, "masses": [float(m) for m in masses],
                          "ctaus": [float(c) for c in ctaus], "config": str(args.config)}  # fmt: skip
                make = functools.partial(
                    truth_side, cfg, masses, ctaus, geo,
                    sources=args.truth_sources, samples=args.samples, seed=args.seed,
                    masses_only=True,
                )  # fmt: skip
                truths[key] = cached_truth(args.truth_cache, key, fields, make)
            if earlier is None:
                truth = truths[key]
                response = mass_response(cfg, drawn, args.response_sources, seed=args.seed + 5)
                n_truth = truth_nsig(cfg, run, truth, masses, seed=args.seed, response=response)
            if args.own_flow:  # the chain's flow of this realisation; its draws its own
                model_here, dd_seed = own_flow(cfg, run, reuse=args.reuse), seed
            else:
                model_here, dd_seed = models[round(float(cfg.mock.pt_mt_power), 6)], args.seed
            dd = data_side(
                cfg,
                run,
                model_here,
                masses,
                ctaus,
                geo,
                samples=args.samples,
                seed=dd_seed,
                replicas=replicas,
                drawn_forms=arm_forms,
            )
            c_mig = migration_at(run, masses)
            y_fid = fiducial_yield_at(run / rundir.YIELDS, masses)
            for key, (n_dd, parts) in dd.items():
                n_tr, sig_tr = n_truth[key]
                pulls = {}
                for which in ARM_SIGMAS[arm]:
                    width = math.hypot(quoted(parts, which) * n_dd, sig_tr * n_tr)
                    pulls[which] = (n_dd - n_tr) / width if width > 0 else float("nan")
                rows.append({
                    "seed": seed, "mass": key[0], "ctau": key[1], "nsig_dd": n_dd,
                    "nsig_truth": n_tr, "rel_sigma_truth": sig_tr, "sigma": parts,
                    "pulls": pulls, "drawn": drawn, "migration": c_mig[key[0]],
                    "yield_fiducial": y_fid[key[0]],
                })  # fmt: skip
            print(f"{arm} realisation {r + 1}/{args.realisations} (seed {seed}, drawn {drawn}): "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        table = coverage_table(rows, masses, ctaus, ARM_SIGMAS[arm])
        print(f"\n## arm {arm}\n" + "\n".join(markdown(table, ARM_SIGMAS[arm])) + "\n", flush=True)
        joint = joint_tests(rows, ARM_SIGMAS[arm])
        print("\n".join(joint_lines(joint)), flush=True)
        arms[arm] = {
            "sigmas": {w: list(SIGMAS[w] or ["every named nuisance", "mc_acceptance",
                                             *(f"not {x}" for x in EXCLUDE[w])])
                       for w in ARM_SIGMAS[arm]},
            "varied": [v for v in VARIED if v != "pt_form" or draw_form] if arm == "full" else [],
            "drawn_forms": list(arm_forms),
            "drawn": [x["drawn"] for x in rows[:: len(masses) * len(ctaus)]],
            "table": table,
            "joint": joint,
            # each realisation's numbers, so that another σ variant needs no rerun
            "rows": [{k: x[k] for k in ("seed", "mass", "ctau", "nsig_dd", "nsig_truth",
                                        "rel_sigma_truth", "sigma", "migration",
                                        "yield_fiducial")} for x in rows],
        }  # fmt: skip
    out = {
        "benchmark": "coverage",
        "config": str(args.config),
        "events": args.events,
        "flow": str(args.flow),
        "form_flows": {a: d for a, d in args.form_flow},
        "own_flow": bool(args.own_flow),
        "a_prime_seed": "the realisation's seed" if args.own_flow else args.seed,
        "reused_runs": bool(args.reuse),
        "truth_from": [str(x) for x in args.truth_from or []],
        "redone_yields": bool(args.redo_yields),
        "kinematic_model": None
        if replicas is None
        else {
            "replicas": len(replicas),
            "seeds": [r.meta.get("meta", {}).get("seed") for r in replicas],
            "ensembles": [str(d) for d in [args.flow, *args.replicas]],
            "common": "each realisation trains its own flow: these replicas give the quoted "
            "size only"
            if args.own_flow
            else "one flow for all realisations: its error is sampled once",
        },
        "realisations": args.realisations,
        "seeds": [args.first_seed, args.first_seed + args.realisations - 1],
        "vary_seed": args.vary_seed,
        "truth_seed": args.seed,
        "truth_sources": args.truth_sources,
        "truth_window_gstar": {
            f"y_sigma={ys:g},pt_mt_power={a:g}": {
                str(k): v for k, v in t.get("window_gstar", {}).items()
            }
            for (ys, a), t in truths.items()
        },
        "response_sources": args.response_sources,
        "samples": args.samples,
        "arms": arms,
        "seconds": round(time.perf_counter() - t0, 1),
        "load_average_end": os.getloadavg(),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
