"""Training data of the flow: pairs table → weighted rows, hold-out split, preprocessing.

Offers :func:`training_data` (select and weight the rows of ``pairs.parquet`` for
``flow.data``; the event-hash hold-out split :func:`holdout_mask`), :class:`TrainingData`,
Kish's :func:`effective_sample_size`, :class:`Preprocessing` (log transform and
standardisation stored with the model), :func:`split_indices` (the early-stopping split),
:func:`read_pairs` and :func:`mass_spectrum_from_pairs`. See docs/explanation/flow.md "Hold-out split".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.config import flavour_config
from gammastar.core import rundir
from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.errors import GammastarError, InputError
from gammastar.physics.kinematics import aprime_factor
from gammastar.selection.flavour_codes import FLAVOUR_CODES, flavour_channel
from gammastar.yields.universality import channel_weights

if TYPE_CHECKING:
    import pandas as pd

    from gammastar.config import AnalysisConfig
    from gammastar.config.flow import FlowConfig

FEATURES = ("qT", "E")
QT_FLOOR = 1e-6
"""GeV; ln q_T is finite."""


@dataclass(frozen=True)
class Preprocessing:
    """Log transform and standardisation (stored in ``meta.json``).

    The context is the standardised mass, or with ``mass_transform="log"`` the standardised
    ln m (``flow.mass_context``): over 20 MeV – 1.1 GeV (dielectrons) the linear mass squeezes
    the π⁰-Dalitz region, where most pairs are, into 2% of the context range.
    ``mass_mean``/``mass_std`` are those of the transformed mass.
    """

    feature_mean: tuple[float, float]
    feature_std: tuple[float, float]
    mass_mean: float
    mass_std: float
    mass_transform: str = "linear"

    @classmethod
    def fit(cls, qT, E, m, w, mass_transform: str = "linear") -> Preprocessing:
        u = _log_features(qT, E)
        ww = np.abs(w) / np.abs(w).sum()
        mean = (ww[:, None] * u).sum(0)
        std = np.sqrt((ww[:, None] * (u - mean) ** 2).sum(0))
        mt = _mass_transform(m, mass_transform)
        mm = float((ww * mt).sum())
        ms = float(np.sqrt((ww * (mt - mm) ** 2).sum()))
        return cls(
            (float(mean[0]), float(mean[1])),
            (float(std[0]), float(std[1])),
            mm,
            ms if ms > 0 else 1.0,
            mass_transform,
        )

    def features(self, qT, E) -> np.ndarray:
        return (_log_features(qT, E) - np.asarray(self.feature_mean)) / np.asarray(self.feature_std)

    def context(self, m) -> np.ndarray:
        mt = _mass_transform(m, self.mass_transform)
        return ((mt - self.mass_mean) / self.mass_std)[:, None]

    def inverse(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = x * np.asarray(self.feature_std) + np.asarray(self.feature_mean)
        return np.exp(u[:, 0]), np.exp(u[:, 1])

    def log_jacobian(self, qT, E) -> np.ndarray:
        """ln|∂x/∂(q_T, E)| of the map to standardised log features."""
        return -np.log(np.maximum(qT, QT_FLOOR)) - np.log(E) - np.log(self.feature_std).sum()

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "transform": "log",
            "qT_floor": QT_FLOOR,
            "feature_mean": list(self.feature_mean),
            "feature_std": list(self.feature_std),
            "mass_mean": self.mass_mean,
            "mass_std": self.mass_std,
            "mass_transform": self.mass_transform,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Preprocessing:
        mean, std = d["feature_mean"], d["feature_std"]
        return cls(
            (float(mean[0]), float(mean[1])),
            (float(std[0]), float(std[1])),
            float(d["mass_mean"]),
            float(d["mass_std"]),
            str(d.get("mass_transform", "linear")),  # models written before it: linear
        )


def _mass_transform(m, kind: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if kind == "linear":
        return m
    if kind == "log":
        return np.log(np.maximum(m, 1e-6))  # (masses are > 2 m_e > 1 MeV; no log 0)
    raise GammastarError(f"unknown flow mass transform {kind!r} (use 'linear' or 'log')")


def _log_features(qT, E) -> np.ndarray:
    qT = np.maximum(np.asarray(qT, dtype=np.float64), QT_FLOOR)
    return np.stack([np.log(qT), np.log(np.asarray(E, dtype=np.float64))], axis=1)


# =========================================================================== training data
@dataclass
class TrainingData:
    """Rows used for training: masses, features and weights (weights normalised to mean 1).

    ``split`` records the hold-out split (:func:`holdout_mask`) and which part these rows are.
    """

    m: np.ndarray
    qT: np.ndarray
    E: np.ndarray
    weight: np.ndarray
    description: str = ""
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.m)

    @property
    def n_eff(self) -> float:
        """Kish's effective sample size of the weights (:func:`effective_sample_size`)."""
        return effective_sample_size(self.weight)


def effective_sample_size(w) -> float:
    r"""Kish's effective sample size n_eff = (Σ w)² / Σ w² of weighted rows.

    The number of unweighted rows that would give a weighted mean the same variance (for
    weights independent of the quantity averaged). Negative weights (like-sign subtraction)
    enter as they are: the cancellation lowers n_eff, as it raises the variance. 0 for no rows.

    Arguments:
        w: weights.

    Returns:
        n_eff (float); equals the number of rows for equal weights.

    References:
        L. Kish, Survey Sampling (Wiley, 1965), Sec. 11.7.

    Example:
        >>> effective_sample_size([1.0, 1.0, 1.0, 1.0])
        4.0
        >>> effective_sample_size([1.0, 3.0])   # 16 / 10
        1.6
    """
    w = np.asarray(w, dtype=np.float64)
    s2 = float((w * w).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def n_eff_in_windows(m, w, masses: Sequence[float], window: float) -> list[float]:
    """:func:`effective_sample_size` of the rows with |m − m₀| < window/2 for each m₀."""
    m = np.asarray(m, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    return [effective_sample_size(w[np.abs(m - m0) < 0.5 * window]) for m0 in masses]


_U64 = np.uint64


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood, OOPSLA 2014) on a uint64 array (wraps)."""
    z = np.asarray(x, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


HOLDOUT_METHOD = "u = splitmix64(key XOR splitmix64(seed)) / 2^64; held out if u < fraction"


def holdout_mask(keys, fraction: float, seed: int) -> np.ndarray:
    """Rows held out of training: a seeded hash of the event number below ``fraction``.

    u = splitmix64(key ⊕ splitmix64(seed)) / 2⁶⁴ is uniform on [0, 1) and the same for every
    pair of one event, so the pairs of an event (OS and like-sign) land on the same side; the
    split does not depend on the row order, the other rows or the platform.

    Arguments:
        keys: int64 event numbers (or row numbers when the table has no ``event``).
        fraction: expected held-out fraction of the events, in [0, 1).
        seed: split seed.

    Returns:
        Boolean mask, True = held out.

    Example:
        >>> ev = np.arange(100_000)
        >>> bool(abs(holdout_mask(ev, 0.2, 1).mean() - 0.2) < 0.005)
        True
        >>> bool(np.array_equal(holdout_mask(ev[::-1], 0.2, 1), holdout_mask(ev, 0.2, 1)[::-1]))
        True
    """
    k = np.ascontiguousarray(np.asarray(keys, dtype=np.int64)).view(_U64)
    s = _splitmix64(np.array([seed], dtype=np.int64).view(_U64))[0]
    u = (_splitmix64(k ^ s) >> _U64(11)).astype(np.float64) * 2.0**-53
    return u < fraction


def _selected_rows(
    pairs: pd.DataFrame, cfg: FlowConfig, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``flow.data`` trains on (``os``: opposite-sign; ``subtracted``: all, like-sign
    with negative weights; ``os_signal``: the opposite-sign signal of a mock) and every row's
    weight (``weight``, or ``weight_raw`` without ``flow.use_weights``).

    Raises:
        InputError: a missing column, or ``os_signal`` without truth channels.
    """
    need = ["m", "qT", "E", "charge"]
    need.append("weight" if cfg.use_weights else "weight_raw")
    if cfg.data == "os_signal":
        need.append("channel")
    missing = [c for c in need if c not in pairs.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}")
    charge = pairs["charge"].to_numpy()
    if cfg.data == "os":
        sel = charge == 0
    elif cfg.data == "subtracted":
        sel = np.ones(len(pairs), dtype=bool)
    else:
        ch = pairs["channel"].to_numpy()
        if np.all(ch < 0):
            raise InputError(f"{source}: flow.data 'os_signal' needs truth channels (mock input)")
        sel = (charge == 0) & (ch != 0)
    w = (pairs["weight"] if cfg.use_weights else pairs["weight_raw"]).to_numpy(np.float64)
    if not cfg.use_weights and cfg.data == "subtracted":
        w = np.where(charge != 0, -np.abs(w), w)
    return sel, w


def _flatten_mass(m: np.ndarray, w: np.ndarray, exponent: float) -> np.ndarray:
    """The weights times (mass density / its mean)^(−``exponent``) (``flow.mass_flatten``), the
    density of all the rows given in 50 bins."""
    edges = np.linspace(m.min(), m.max() + 1e-12, 51)
    dens, _ = np.histogram(m, bins=edges, weights=np.abs(w))
    dens = np.maximum(dens, dens[dens > 0].min())
    return w * (dens[np.clip(np.digitize(m, edges) - 1, 0, 49)] / dens.mean()) ** (-exponent)


def _holdout_split(
    keys: np.ndarray, key_name: str, cfg: FlowConfig, seed: int, part: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """The held-out rows (:func:`holdout_mask` by ``keys``, all rows of an event on one side)
    and the ``split`` record; ``seed`` the split's seed."""
    held = holdout_mask(keys, cfg.holdout_fraction, seed)
    split = {
        "method": HOLDOUT_METHOD,
        "key": key_name,
        "fraction": float(cfg.holdout_fraction),
        "seed": seed,
        "part": part,
        "n_rows": {"train": int((~held).sum()), "holdout": int(held.sum())},
        "n_events": {
            "train": int(np.unique(keys[~held]).size),
            "holdout": int(np.unique(keys[held]).size),
        },
    }
    return held, split


def _check_training_rows(m: np.ndarray, w: np.ndarray, cfg: FlowConfig, source: str) -> None:
    """Refuse fewer than 10 rows or weights that do not sum to a positive number."""
    if len(m) < 10:
        raise InputError(
            f"{source}: only {len(m)} usable rows for flow training (data={cfg.data}, "
            f"flow.holdout_fraction={cfg.holdout_fraction:g})"
        )
    if w.sum() <= 0:
        raise InputError(f"{source}: the training weights sum to {w.sum():g} (must be positive)")


def training_data(
    pairs: pd.DataFrame,
    cfg: FlowConfig,
    *,
    source: str = "pairs",
    seed: int = 0,
    part: str = "train",
    holdout_seed: int | None = None,
) -> TrainingData:
    """Select and weight the training rows of a pairs table (DEVELOPERS.md "Pairs table").

    The selected rows are split by :func:`holdout_mask` (``flow.holdout_fraction``; the key is
    the ``event`` column, or the row number for a table without one): ``part="train"`` gives
    the rows that training may see, ``"holdout"`` the held-out ones, ``"all"`` both.

    Arguments:
        pairs: the pairs table (columns ``m``, ``qT``, ``E``, ``charge``, ``weight``,
            ``weight_raw``; ``channel`` for ``data: os_signal``; ``event``).
        cfg: the ``flow`` config section.
        source: name of the table in error messages.
        seed: seed of the ``max_pairs`` subset (and of the split when neither
            ``holdout_seed`` nor ``flow.holdout_seed`` is given).
        part: ``train``, ``holdout`` or ``all``.
        holdout_seed: split seed (default ``flow.holdout_seed``, else ``seed``).

    Returns:
        :class:`TrainingData` with weights normalised so that their mean is 1 and ``split``
        recording the split.
    """
    import hashlib

    if part not in ("train", "holdout", "all"):
        raise GammastarError(f"training_data: part must be train, holdout or all, got {part!r}")
    sel, w = _selected_rows(pairs, cfg, source)
    m = pairs["m"].to_numpy(np.float64)[sel]
    qT = pairs["qT"].to_numpy(np.float64)[sel]
    E = pairs["E"].to_numpy(np.float64)[sel]
    w = w[sel]
    ok = np.isfinite(m) & np.isfinite(qT) & np.isfinite(E) & np.isfinite(w) & (E > 0) & (m > 0)
    m, qT, E, w = m[ok], qT[ok], E[ok], w[ok]
    if cfg.mass_flatten > 0 and len(m):  # the density of all selected rows, train and held-out
        w = _flatten_mass(m, w, cfg.mass_flatten)
    if "event" in pairs.columns:
        keys, key_name = pairs["event"].to_numpy(np.int64)[sel][ok], "event"
    else:
        keys, key_name = np.flatnonzero(sel)[ok].astype(np.int64), "row"
    hseed = int(
        holdout_seed
        if holdout_seed is not None
        else (cfg.holdout_seed if cfg.holdout_seed is not None else seed)
    )
    held, split = _holdout_split(keys, key_name, cfg, hseed, part)
    if part != "all":
        keep = held if part == "holdout" else ~held
        m, qT, E, w = m[keep], qT[keep], E[keep], w[keep]
    if part != "holdout" and cfg.max_pairs is not None and len(m) > cfg.max_pairs:
        idx = np.sort(np.random.default_rng(seed).choice(len(m), cfg.max_pairs, replace=False))
        m, qT, E, w = m[idx], qT[idx], E[idx], w[idx]
    if part != "holdout":
        _check_training_rows(m, w, cfg, source)
    if len(w) and w.sum() > 0:
        w = w / w.mean()
    h = hashlib.sha256()
    for a in (m, qT, E, w):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return TrainingData(m, qT, E, w, description=cfg.data, sha256=h.hexdigest(), split=split)


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices of the seeded random split used by :func:`fit`."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(validation_fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def read_pairs(config: AnalysisConfig) -> tuple[pd.DataFrame, Path | str]:
    """The run directory's ``pairs.parquet`` (the kinematic columns checked against the
    contract, :meth:`gammastar.core.rundir.RunDir.read_pairs`; the rest by :func:`training_data`)
    and where it is (a URL where ``select.json`` ``pairs_url`` names one)."""

    rd = rundir.RunDir(config.output_dir)
    pairs = rd.read_pairs(require=("m", "qT", "E", "charge"))
    if len(config.input.flavours) > 1:
        pairs = combination_weighted(pairs, config, rd.read_json(rundir.YIELDS))
    return pairs, rd.pairs_location()


def combination_weighted(pairs: pd.DataFrame, config: AnalysisConfig, yields: Mapping) -> Any:
    """The pairs of a both-channels run (``input.lepton: [mu, e]``) weighted for one flow.

    The γ* kinematics p(q_T, E | m) do not depend on the flavour it decays into, so both
    channels' unfolded pairs train one flow; where both measure a mass bin of the combined
    A′ yield they must not count twice. Each pair's ``weight`` (and ``weight_raw``) is
    multiplied by its channel's share λ_ℓ of that bin's inverse-variance mean
    (``yields.json`` ``aprime.weights``, :func:`gammastar.yields.universality.channel_weights`) and
    by F_ℓ(m)/F_ref(m), F = :func:`gammastar.physics.kinematics.aprime_factor` of the
    channel's lepton mass and of the lightest one's (Eq. 6: a μμ pair stands for
    F_μ/F_e ee pairs of the same γ* mass), and by N_POT / N_POT,ℓ (``yields.json``
    ``meta.n_pot`` over ``meta.n_pot_by_flavour``: a prescaled trigger's pairs stand for k
    times their number; 1 without prescale). Per mass bin the weights then sum to
    N_POT (λ_e y_e + λ_μ y_μ) in ee-pair units, y_ℓ the yields per POT: the combined yield's
    spectrum, each pair counted by its share.

    A channel unfolded to the fiducial region F only (``yields.json``
    ``meta.phase_space_per_flavour``: ``fiducial``, the per-lepton acceptance route) has
    pairs inside F alone, and its yields reach the full phase space through the fitted
    extrapolation model (``yields.json`` ``extrapolation``, with its ``seam``: the lowest
    bin edge of that channel's extrapolation, ≈ 2m_μ). Beside a channel with ``full`` phase
    space the flow is stitched at the seam m_s (docs/howto/both-channels.md):
    below m_s the full-phase-space channels' pairs (shares renormalised among them, 1 where
    one is left) and the fiducial channel's at weight 0; at and above m_s the pairs inside F:
    the fiducial channel's and the full channels' pairs that lie inside F
    (:meth:`gammastar.corrections.pair_acceptance.FiducialRegion.contains`), each at its share λ_ℓ, and
    the full channels' pairs outside F at weight 0. The flow then learns p(q_T, E | m) in the
    full phase space below m_s and inside F above it, where the reach's sampler
    (:class:`gammastar.yields.extrapolation.samplers.ExtrapolatedSampler` with ``seam``) takes it inside F
    and the fitted model outside. Without a fiducial channel's extrapolation (no
    ``extrapolation.seam``) the fiducial channels get weight 0 at every mass.

    Raises:
        InputError: ``pairs.parquet`` has no ``flavour`` column or ``yields.json`` no
            ``aprime.weights`` (run select and yields of this config first).
    """

    ap = yields.get("aprime", {})
    if "flavour" not in pairs.columns or "weights" not in ap:
        raise InputError(
            f"{config.output_dir}: the flow of a both-channels run needs pairs.parquet's "
            "flavour column and yields.json's aprime.weights; run `gammastar select` and "
            "`gammastar yields` of this config first"
        )
    masses = {f: flavour_config(config, f).input.lepton_mass for f in config.input.flavours}
    m_ref = min(masses.values())
    meta = yields.get("meta", {})
    by = meta.get("n_pot_by_flavour") or {}
    phase = meta.get("phase_space_per_flavour") or {}
    full = [flavour_channel(f) for f in masses if phase.get(flavour_channel(f)) == "full"]
    m = pairs["m"].to_numpy(np.float64)
    code = pairs["flavour"].to_numpy()
    seam, in_f = seam_region(pairs, yields) if full else (None, None)
    factor = np.zeros(len(pairs))
    for f, ml in masses.items():
        sel = code == FLAVOUR_CODES[f]
        ch = flavour_channel(f)
        lam = channel_weights(ap, ch, m[sel])
        if full and ch not in full and seam is None:  # fiducial pairs, no seam: not used
            continue
        if full:  # below the seam: the shares among the full-phase-space channels
            tot = sum(channel_weights(ap, c, m[sel]) for c in full)
            below = np.divide(lam, tot, out=np.ones_like(lam), where=tot > 0)
            below = below if ch in full else np.zeros_like(lam)
            if seam is None or in_f is None:  # in_f: given with the seam
                lam = below
            else:  # from the seam up: the pairs inside F, the fiducial channel's all are
                above = lam * in_f[sel] if ch in full else lam
                lam = np.where(m[sel] < seam, below, above)
        # the flavour's exposure relative to the run's (its trigger's prescale)
        expo = float(meta["n_pot"]) / float(by[ch]) if ch in by and meta.get("n_pot") else 1.0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            conv = aprime_factor(m[sel], ml) / aprime_factor(m[sel], m_ref)
            factor[sel] = np.where(np.isfinite(conv), lam * conv * expo, 0.0)  # 0: below 2m_ℓ
    out = pairs.copy()
    for col in ("weight", "weight_raw"):
        if col in out.columns:
            out[col] = out[col].to_numpy(np.float64) * factor
    return out


def seam_region(pairs: pd.DataFrame, yields: Mapping) -> tuple[float | None, np.ndarray | None]:
    """The seam m_s of a both-channels run and which pairs lie inside the fiducial region F.

    ``yields.json`` ``extrapolation`` of a both-channels run is the fiducial channel's, with
    ``seam`` (m_s, GeV) and ``channel``; F is its ``fiducial`` block
    (:class:`gammastar.corrections.pair_acceptance.FiducialRegion`, a region of (m, q_T, E)).

    Returns:
        ``(m_s, inside F per pair)``; ``(None, None)`` without a seam (single-flavour yields,
        or a both-channels run without a fiducial channel).
    """

    ex = yields.get("extrapolation") or {}
    if ex.get("seam") is None or "fiducial" not in ex:
        return None, None
    region = FiducialRegion.from_dict(ex["fiducial"])
    cols = [pairs[c].to_numpy(np.float64) for c in ("m", "qT", "E")]
    return float(ex["seam"]), np.asarray(region.contains(*cols), dtype=bool)


def mass_spectrum_from_pairs(
    pairs: pd.DataFrame, edges: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The unfolded, background-subtracted mass spectrum Σ weight per bin (all rows)."""
    m = pairs["m"].to_numpy(np.float64)
    w = pairs["weight"].to_numpy(np.float64)
    if edges is None:
        edges = np.linspace(m.min(), m.max(), 90)
    counts, _ = np.histogram(m, bins=edges, weights=w)
    return np.asarray(edges, dtype=np.float64), np.clip(counts, 0.0, None)


def run_mass_spectrum(config: AnalysisConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """The run's unfolded mass spectrum: ``histograms.root`` ``unfolded_m`` (schema-checked,
    :meth:`gammastar.core.rundir.RunDir.read_histograms`), else binned from the pairs table.

    Returns:
        (edges, contents clipped at 0, a description of the source).

    Raises:
        InputError: a both-channels run (``input.lepton: [mu, e]``): its ``unfolded_m`` is the
            primary flavour's and its pairs hold two lepton masses and exposures, so the χχ̄
            spectrum (Eq. 8 with one m_ℓ) is not defined from it; use a single-flavour run.
    """

    if len(config.input.flavours) > 1:
        raise InputError(
            f"{config.output_dir}: the chi-chibar mass spectrum of a both-channels run "
            f"(input.lepton: {list(config.input.flavours)}) is not supported; use a "
            "single-flavour run (input.lepton: mu or e)"
        )
    rd = rundir.RunDir(config.output_dir)
    hpath = rd.path(rundir.HISTOGRAMS)
    if hpath.exists():
        hists = rd.read_histograms(["unfolded_m"])
        if "unfolded_m" in hists:
            h = hists["unfolded_m"]
            return h.axes[0].edges, np.clip(h.values(), 0.0, None), f"{hpath}:unfolded_m"
    pairs, ppath = read_pairs(config)
    edges, contents = mass_spectrum_from_pairs(pairs)
    return edges, contents, str(ppath)
