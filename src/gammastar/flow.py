"""Conditional normalizing flow p(q_T, E | m) of γ* / A′ kinematics (paper Sec. III C, App. A).

The model is a zuko flow: ``transforms`` masked-autoregressive rational-quadratic-spline steps
(MADE hyper-networks, ``bins`` bins on [−5, 5]) with a learnable LU linear transform between
steps, on features x = standardised (ln q_T, ln E) with context c = standardised m. The
preprocessing statistics are stored with the model (``flow/meta.json``); the weights are a plain
``state_dict`` (``flow/model.pt``) loaded with ``torch.load(..., weights_only=True)``.

Speed. zuko's generic spline/autoregressive code is the reference implementation; training and
sampling here use a fused re-implementation of the same mathematics on the same parameters
(:func:`_log_prob_fast`, :class:`_Sampler`), checked against zuko in the tests. For two
features the exact autoregressive inverse needs only one hyper-network evaluation per step:
the first feature's spline depends on the context alone (a constant at a fixed mass), the
second's on the context and the first feature. Sampling is therefore as cheap as density
evaluation, so there is no need for an inverse-autoregressive arrangement (which would make
training twice as expensive); see docs/flow.md.

References:
    Allison & Blinov, Sec. III C and App. A; physics.md §5; Durkan et al. (2019), Neural Spline
    Flows; Papamakarios et al. (2017), MAF.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar import rundir
from gammastar.artifacts import atomic_path, load_json, make_meta, sha256_file
from gammastar.errors import GammastarError, InputError, OutputExistsError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from gammastar.config import AnalysisConfig, FlowConfig

MODEL_FORMAT = "gammastar-flow"
MODEL_FORMAT_VERSION = 1
FEATURES = ("qT", "E")
_BOUND = 5.0  # zuko spline domain [-B, B]
_SLOPE = 1e-3  # zuko's minimum spline slope
_QT_FLOOR = 1e-6  # GeV; ln q_T is finite
PHYSICAL_REDRAWS = 20
"""Redraws of unphysical samples (E² < m² + q_T²) in :meth:`FlowModel.sample`."""


# =========================================================================== architecture


class CheckpointMismatchError(GammastarError):
    """A checkpoint made from another config, data set or seed (``--resume`` refused)."""


def architecture_from_config(cfg: FlowConfig) -> dict[str, Any]:
    """The JSON architecture record that :func:`build_flow` understands."""
    return {
        "kind": "zuko-maf-rqs",
        "features": 2,
        "context": 1,
        "transforms": int(cfg.transforms),
        "bins": int(cfg.bins),
        "hidden_features": [int(h) for h in cfg.hidden_features],
        "linear": bool(cfg.linear),
        "slope": _SLOPE,
        "bound": _BOUND,
    }


def build_flow(arch: Mapping[str, Any]) -> torch.nn.Module:
    """Build the zuko flow described by ``arch`` (see :func:`architecture_from_config`).

    Transforms map data → latent in the order [MAF_0, LU_0, MAF_1, LU_1, ..., MAF_{K−1}];
    the MAF feature orders alternate. The LU transforms start at the identity.
    """
    import torch
    import zuko
    from zuko.flows.autoregressive import MaskedAutoregressiveTransform
    from zuko.lazy import UnconditionalDistribution, UnconditionalTransform
    from zuko.transforms import LULinearTransform, MonotonicRQSTransform

    if arch.get("kind") != "zuko-maf-rqs" or arch.get("features") != 2:
        raise GammastarError(f"unknown flow architecture {arch.get('kind')!r}")
    bins = int(arch["bins"])
    transforms: list[Any] = []
    orders = [torch.arange(2), torch.tensor([1, 0])]
    for i in range(int(arch["transforms"])):
        transforms.append(
            MaskedAutoregressiveTransform(
                features=2,
                context=int(arch["context"]),
                order=orders[i % 2],
                univariate=partial(MonotonicRQSTransform, slope=float(arch["slope"])),
                shapes=[(bins,), (bins,), (bins - 1,)],
                hidden_features=list(arch["hidden_features"]),
            )
        )
        if arch["linear"] and i < int(arch["transforms"]) - 1:
            transforms.append(UnconditionalTransform(LULinearTransform, torch.eye(2)))
    base = UnconditionalDistribution(
        zuko.distributions.DiagNormal, torch.zeros(2), torch.ones(2), buffer=True
    )
    return zuko.flows.Flow(transforms, base)


# =========================================================================== fused kernels
# Layout: parameters and features are "feature-major", (..., N) with N (the points) last and
# contiguous, so every elementwise operation and every reduction over the few spline bins runs
# vectorised along N. (zuko's (N, ..., K) layout spends most of its time in softmax/cumsum/gather
# over a last dimension of size K = 6.)
def _rqs_knots(phi: torch.Tensor, bins: int, slope: float = _SLOPE, bound: float = _BOUND):
    """Knots (x_k, y_k, d_k), each (K+1, ..., N), of zuko's ``MonotonicRQSTransform``.

    ``phi`` is (3K − 1, ..., N): K width, K height and K − 1 derivative parameters.
    """
    import torch

    ls = math.log(slope)
    w = phi[:bins]
    h = phi[bins : 2 * bins]
    d = phi[2 * bins :]
    # bounded (|·| < |ln slope|/2) before the softmax, as in zuko: exp cannot overflow
    ew = torch.exp(w / (1 + (2 / -ls) * w.abs()))
    eh = torch.exp(h / (1 + (2 / -ls) * h.abs()))
    cw = torch.cumsum(ew, dim=0)
    ch = torch.cumsum(eh, dim=0)
    zero = torch.zeros_like(cw[:1])
    xk = torch.cat((zero, cw), 0) * (2 * bound / cw[-1:]) - bound
    yk = torch.cat((zero, ch), 0) * (2 * bound / ch[-1:]) - bound
    one = torch.ones_like(cw[:1])
    dk = torch.cat((one, torch.exp(d / (1 + (1 / -ls) * d.abs())), one), 0)
    return xk, yk, dk


def _take(knots, k):
    """knots[k] along dim 0 (k has the shape of knots without dim 0, or knots is 1-D)."""
    if knots.dim() == 1:
        return knots[k]
    return knots.gather(0, k.unsqueeze(0)).squeeze(0)


def _bin(k, bins, xk, yk, dk):
    mask = (k >= 0) & (k < bins)
    k0 = k.clamp(0, bins - 1)
    k1 = k0 + 1
    return (
        mask,
        _take(xk, k0),
        _take(xk, k1),
        _take(yk, k0),
        _take(yk, k1),
        _take(dk, k0),
        _take(dk, k1),
    )


def _search(knots, v):
    """Index of the bin of v: Σ_j [knot_j < v] − 1 (as zuko)."""
    import torch

    if knots.dim() == 1:
        return torch.searchsorted(knots, v.contiguous()) - 1
    return (knots < v.unsqueeze(0)).sum(0) - 1


def _rqs_forward(x, xk, yk, dk, bins: int):
    """Spline y(x) and ln|dy/dx| (identity outside [−B, B]); same formulae as zuko."""
    import torch

    mask, x0, x1, y0, y1, d0, d1 = _bin(_search(xk, x), bins, xk, yk, dk)
    dx = x1 - x0
    dy = y1 - y0
    s = dy / dx
    z = torch.where(mask, (x - x0) / dx, 0.0)
    zz = z * (1 - z)
    den = s + (d0 + d1 - 2 * s) * zz
    y = y0 + dy * (s * z * z + d0 * zz) / den
    lj = torch.log(s * s * (2 * s * zz + d0 * (1 - z) ** 2 + d1 * z * z)) - 2 * torch.log(den)
    return torch.where(mask, y, x), torch.where(mask, lj, 0.0)


def _rqs_knot_table(phi: torch.Tensor, bins: int, slope: float = _SLOPE, bound: float = _BOUND):
    """The knots of :func:`_rqs_knots` stacked in one (3, K+1, ...) table (x_k, y_k, d_k)."""
    import torch

    ls = math.log(slope)
    table = torch.empty((3, bins + 1, *phi.shape[1:]), dtype=phi.dtype)
    for row, par in ((0, phi[:bins]), (1, phi[bins : 2 * bins])):
        e = torch.exp(par / (1 + (2 / -ls) * par.abs()))
        torch.cumsum(e, dim=0, out=table[row, 1:])
        table[row, 0] = 0.0
        knots = table[row]
        knots.mul_(2 * bound / knots[-1:]).sub_(bound)
    d = phi[2 * bins :]
    torch.exp(d / (1 + (1 / -ls) * d.abs()), out=table[2, 1:-1])
    table[2, 0] = 1.0
    table[2, -1] = 1.0
    return table


def _rqs_inverse_table(y, table, bins: int):
    """Inverse spline x(y) (identity outside [−B, B]; same formulae as zuko), the knots given
    as one (x_k, y_k, d_k) table so that a bin costs two gathers."""
    import torch

    k = _search(table[1], y)
    mask = (k >= 0) & (k < bins)
    k0 = k.clamp(0, bins - 1)
    if table.dim() == 2:
        lo, hi = table.index_select(1, k0), table.index_select(1, k0 + 1)
    else:
        idx = torch.stack((k0, k0 + 1), 0).unsqueeze(0).expand(3, 2, -1)
        lohi = table.gather(1, idx)
        lo, hi = lohi[:, 0], lohi[:, 1]
    x0, y0, d0 = lo
    x1, y1, d1 = hi
    dy = y1 - y0
    s = dy / (x1 - x0)
    y_ = torch.where(mask, y - y0, 0.0)
    t = d0 + d1 - 2 * s
    a = dy * (s - d0) + y_ * t
    b = dy * d0 - y_ * t
    c = -s * y_
    z = 2 * c / (-b - (b * b - 4 * a * c).clamp_min(0).sqrt())
    return torch.where(mask, x0 + z * (x1 - x0), y)


def _split_transforms(flow) -> list[tuple[str, Any]]:
    """[('maf', MaskedAutoregressiveTransform) | ('lu', UnconditionalTransform)] in flow order."""
    out = []
    for t in flow.transform.transforms:
        out.append(("maf", t) if hasattr(t, "hyper") else ("lu", t))
    return out


def _lu_matrix(t) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    lu = next(iter(t.parameters()))
    eye = torch.eye(lu.shape[-1], dtype=lu.dtype)
    return torch.tril(lu), torch.triu(lu, diagonal=1) + eye


def _made_layers(t):
    """(weight ⊙ mask, bias) of the MADE hyper-network's linear layers."""
    import torch

    return [(m.mask * m.weight, m.bias) for m in t.hyper if isinstance(m, torch.nn.Linear)]


def _log_prob_fast(flow, x: torch.Tensor, c: torch.Tensor, bins: int) -> torch.Tensor:
    """ln p(x | c) of the zuko ``flow`` for x (N, 2), c (N, 1); fused; differentiable.

    The splines run in one compiled kernel per step with hand-derived gradients
    (:mod:`gammastar._flow_training`); :func:`_log_prob_torch` is the same density in plain
    torch operations (autograd), kept as a reference for the tests.
    """
    from gammastar import _flow_training

    return _flow_training.log_prob(flow, x, c, bins, _BOUND, _SLOPE)


def _log_prob_torch(flow, x: torch.Tensor, c: torch.Tensor, bins: int) -> torch.Tensor:
    """:func:`_log_prob_fast` in feature-major torch operations (autograd; the reference)."""
    import torch

    z = x.T  # (2, N)
    ct = c.T
    ladj = torch.zeros(x.shape[0], dtype=x.dtype)
    for kind, t in _split_transforms(flow):
        if kind == "maf":
            layers = _made_layers(t)
            h = torch.cat((z, ct), 0)
            for i, (w, b) in enumerate(layers):
                if i == len(layers) - 1:
                    # rows f·P + p  →  p·2 + f, so that phi is (P, 2, N)
                    P = w.shape[0] // 2
                    w = w.view(2, P, -1).transpose(0, 1).reshape(2 * P, -1)
                    b = b.view(2, P).T.reshape(-1)
                    h = torch.addmm(b[:, None], w, h)
                else:
                    h = torch.relu(torch.addmm(b[:, None], w, h))
            phi = h.view(-1, 2, h.shape[-1])
            xk, yk, dk = _rqs_knots(phi, bins)
            z, lj = _rqs_forward(z, xk, yk, dk, bins)
            ladj = ladj + lj.sum(0)
        else:
            lower, upper = _lu_matrix(t)
            z = (lower @ upper) @ z
            ladj = ladj + torch.diagonal(lower).abs().log().sum()
    return ladj - 0.5 * (z * z).sum(0) - math.log(2 * math.pi)


class _Sampler:
    """Fast exact sampling from the zuko flow (inverse of every step), no autograd.

    For each autoregressive step with feature order (a, b): x_a from the spline whose
    parameters depend on the context only (computed once for a fixed mass), then x_b from
    the spline whose parameters depend on (x_a, context): one hyper-network evaluation,
    restricted to the outputs of feature b.
    """

    def __init__(self, flow, bins: int) -> None:
        import torch

        self.bins = bins
        self.steps: list[tuple[str, Any]] = []
        with torch.no_grad():
            for kind, t in _split_transforms(flow):
                if kind == "lu":
                    lower, upper = _lu_matrix(t)
                    self.steps.append(("lu", torch.linalg.inv(lower @ upper).contiguous()))
                    continue
                layers = [(w.detach().clone(), b.detach().clone()) for w, b in _made_layers(t)]
                P = layers[-1][0].shape[0] // 2
                order = t.order.tolist()
                a = order.index(min(order))
                b = 1 - a
                w_out, b_out = layers[-1]
                self.steps.append(
                    (
                        "maf",
                        {
                            "a": a,
                            "b": b,
                            "w0x": layers[0][0][:, a : a + 1].contiguous(),  # (H, 1)
                            "w0c": layers[0][0][:, 2:].contiguous(),  # (H, context)
                            "w0_aug": torch.cat(
                                (
                                    layers[0][0][:, a : a + 1],
                                    layers[0][0][:, 2:],
                                    layers[0][1][:, None],
                                ),
                                1,
                            ).contiguous(),
                            "b0": layers[0][1][:, None].contiguous(),
                            "hidden": [(w.contiguous(), bb[:, None]) for w, bb in layers[1:-1]],
                            "wa": w_out[a * P : (a + 1) * P].contiguous(),
                            "ba": b_out[a * P : (a + 1) * P, None].contiguous(),
                            "wb": w_out[b * P : (b + 1) * P].contiguous(),
                            "bb": b_out[b * P : (b + 1) * P, None].contiguous(),
                            # bias as an extra weight column (inputs carry a row of ones): one
                            # matrix product per layer, no broadcast copy of the bias
                            "hidden_aug": [
                                torch.cat((w, bb[:, None]), 1).contiguous()
                                for w, bb in layers[1:-1]
                            ],
                            "wb_aug": torch.cat(
                                (w_out[b * P : (b + 1) * P], b_out[b * P : (b + 1) * P, None]), 1
                            ).contiguous(),
                        },
                    )
                )

    @staticmethod
    def _hidden(st, pre, inplace: bool = False):
        import torch

        h = torch.relu_(pre) if inplace else torch.relu(pre)
        for w, bb in st["hidden"]:
            h = torch.relu_(torch.addmm(bb, w, h))
        return h

    def __call__(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Map latent ``z`` (n, 2) to standardised features (n, 2); ``c`` is (1, 1) or (n, 1)."""
        import torch

        bins = self.bins
        fixed = c.shape[0] == 1
        y = z.T.contiguous()  # (2, n)
        ct = c.T
        n = y.shape[1]
        bufs = None
        # first-layer input: (x_a, 1) at a fixed mass (the context term is a constant bias),
        # else (x_a, context, 1)
        inp = torch.ones((2 if fixed else 2 + ct.shape[0], n), dtype=z.dtype)
        if not fixed:
            inp[1:-1] = ct
        for kind, st in reversed(self.steps):
            if kind == "lu":
                y = st @ y
                continue
            a, b = st["a"], st["b"]
            ctx = torch.addmm(st["b0"], st["w0c"], ct)  # (H, 1 or n)
            phi_a = torch.addmm(st["ba"], st["wa"], self._hidden(st, ctx))
            table = _rqs_knot_table(phi_a, bins)
            if fixed:
                table = table[..., 0].contiguous()
            xa = _rqs_inverse_table(y[a], table, bins)
            if bufs is None:
                # hidden activations with a trailing row of ones (bias folded into the weights)
                bufs = []
                for rows in [ctx.shape[0]] + [w.shape[0] for w in st["hidden_aug"]]:
                    buf = torch.empty((rows + 1, n), dtype=z.dtype)
                    buf[-1] = 1.0
                    bufs.append(buf)
            h = bufs[0]
            # first layer: context part (a constant at a fixed mass) + rank-one x_a part
            inp[0] = xa
            w0 = torch.cat((st["w0x"], ctx), 1) if fixed else st["w0_aug"]
            torch.relu_(torch.mm(w0, inp, out=h[:-1]))
            for w, buf in zip(st["hidden_aug"], bufs[1:], strict=True):
                torch.relu_(torch.mm(w, h, out=buf[:-1]))
                h = buf
            phi_b = torch.mm(st["wb_aug"], h)
            xb = _rqs_inverse_table(y[b], _rqs_knot_table(phi_b, bins), bins)
            y = torch.stack((xa, xb) if a == 0 else (xb, xa), 0)
        return y.T


# =========================================================================== preprocessing
@dataclass(frozen=True)
class Preprocessing:
    """Log transform and standardisation (stored in ``meta.json``)."""

    feature_mean: tuple[float, float]
    feature_std: tuple[float, float]
    mass_mean: float
    mass_std: float

    @classmethod
    def fit(cls, qT, E, m, w) -> Preprocessing:
        u = _log_features(qT, E)
        ww = np.abs(w) / np.abs(w).sum()
        mean = (ww[:, None] * u).sum(0)
        std = np.sqrt((ww[:, None] * (u - mean) ** 2).sum(0))
        mm = float((ww * m).sum())
        ms = float(np.sqrt((ww * (m - mm) ** 2).sum()))
        return cls(
            (float(mean[0]), float(mean[1])),
            (float(std[0]), float(std[1])),
            mm,
            ms if ms > 0 else 1.0,
        )

    def features(self, qT, E) -> np.ndarray:
        return (_log_features(qT, E) - np.asarray(self.feature_mean)) / np.asarray(self.feature_std)

    def context(self, m) -> np.ndarray:
        return ((np.asarray(m, dtype=np.float64) - self.mass_mean) / self.mass_std)[:, None]

    def inverse(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = x * np.asarray(self.feature_std) + np.asarray(self.feature_mean)
        return np.exp(u[:, 0]), np.exp(u[:, 1])

    def log_jacobian(self, qT, E) -> np.ndarray:
        """ln|∂x/∂(q_T, E)| of the map to standardised log features."""
        return -np.log(np.maximum(qT, _QT_FLOOR)) - np.log(E) - np.log(self.feature_std).sum()

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "transform": "log",
            "qT_floor": _QT_FLOOR,
            "feature_mean": list(self.feature_mean),
            "feature_std": list(self.feature_std),
            "mass_mean": self.mass_mean,
            "mass_std": self.mass_std,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Preprocessing:
        return cls(
            tuple(float(v) for v in d["feature_mean"]),
            tuple(float(v) for v in d["feature_std"]),
            float(d["mass_mean"]),
            float(d["mass_std"]),
        )


def _log_features(qT, E) -> np.ndarray:
    qT = np.maximum(np.asarray(qT, dtype=np.float64), _QT_FLOOR)
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
    m = pairs["m"].to_numpy(np.float64)[sel]
    qT = pairs["qT"].to_numpy(np.float64)[sel]
    E = pairs["E"].to_numpy(np.float64)[sel]
    w = w[sel]
    ok = np.isfinite(m) & np.isfinite(qT) & np.isfinite(E) & np.isfinite(w) & (E > 0) & (m > 0)
    m, qT, E, w = m[ok], qT[ok], E[ok], w[ok]
    if cfg.mass_flatten > 0 and len(m):
        # the mass density of all selected rows (train and held-out alike)
        edges = np.linspace(m.min(), m.max() + 1e-12, 51)
        dens, _ = np.histogram(m, bins=edges, weights=np.abs(w))
        dens = np.maximum(dens, dens[dens > 0].min())
        w = w * (dens[np.clip(np.digitize(m, edges) - 1, 0, 49)] / dens.mean()) ** (
            -cfg.mass_flatten
        )
    # hold-out split by event (all pairs of an event on one side)
    if "event" in pairs.columns:
        keys, key_name = pairs["event"].to_numpy(np.int64)[sel][ok], "event"
    else:
        keys, key_name = np.flatnonzero(sel)[ok].astype(np.int64), "row"
    hseed = int(
        holdout_seed
        if holdout_seed is not None
        else (cfg.holdout_seed if cfg.holdout_seed is not None else seed)
    )
    held = holdout_mask(keys, cfg.holdout_fraction, hseed)
    split = {
        "method": HOLDOUT_METHOD,
        "key": key_name,
        "fraction": float(cfg.holdout_fraction),
        "seed": hseed,
        "part": part,
        "n_rows": {"train": int((~held).sum()), "holdout": int(held.sum())},
        "n_events": {
            "train": int(np.unique(keys[~held]).size),
            "holdout": int(np.unique(keys[held]).size),
        },
    }
    if part != "all":
        keep = held if part == "holdout" else ~held
        m, qT, E, w = m[keep], qT[keep], E[keep], w[keep]
    if part != "holdout" and cfg.max_pairs is not None and len(m) > cfg.max_pairs:
        idx = np.sort(np.random.default_rng(seed).choice(len(m), cfg.max_pairs, replace=False))
        m, qT, E, w = m[idx], qT[idx], E[idx], w[idx]
    if part != "holdout":
        if len(m) < 10:
            raise InputError(
                f"{source}: only {len(m)} usable rows for flow training (data={cfg.data}, "
                f"flow.holdout_fraction={cfg.holdout_fraction:g})"
            )
        if w.sum() <= 0:
            raise InputError(
                f"{source}: the training weights sum to {w.sum():g} (must be positive)"
            )
    if len(w) and w.sum() > 0:
        w = w / w.mean()
    h = hashlib.sha256()
    for a in (m, qT, E, w):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return TrainingData(m, qT, E, w, description=cfg.data, sha256=h.hexdigest(), split=split)


# =========================================================================== the model object
class FlowModel:
    """A trained conditional flow with its preprocessing: sample and evaluate p(q_T, E | m)."""

    def __init__(
        self,
        flow,
        preprocessing: Preprocessing,
        arch: Mapping[str, Any],
        mass_range: tuple[float, float],
        meta: Mapping[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        self.flow = flow.eval()
        self.pre = preprocessing
        self.arch = dict(arch)
        self.mass_range = (float(mass_range[0]), float(mass_range[1]))
        self.meta = dict(meta or {})
        self.path = path
        self._sampler: Any = None

    # ----------------------------------------------------------------------- helpers
    def _check_mass(self, m: np.ndarray, extrapolate: bool) -> None:
        lo, hi = self.mass_range
        if extrapolate or m.size == 0:
            return
        if np.any(m < lo) or np.any(m > hi):
            bad = m[(m < lo) | (m > hi)]
            raise GammastarError(
                f"mass {float(bad[0]):.4g} GeV is outside the trained range [{lo:.4g}, {hi:.4g}] "
                f"GeV of the flow{f' {self.path}' if self.path else ''}; "
                "pass extrapolate=True (--extrapolate) to sample there anyway"
            )

    @property
    def sampler(self) -> Any:
        """The exact inverse of the flow: the compiled sampler
        (:class:`gammastar._flow_sampling.CompiledSampler`), or the torch :class:`_Sampler`
        for a flow structure that the compiled one does not handle."""
        if self._sampler is None:
            from gammastar._flow_sampling import CompiledSampler, UnsupportedFlow

            bins = int(self.arch["bins"])
            slope = float(self.arch.get("slope", _SLOPE))
            bound = float(self.arch.get("bound", _BOUND))
            try:
                self._sampler = CompiledSampler(self.flow, bins, slope, bound)
            except UnsupportedFlow:
                self._sampler = _Sampler(self.flow, bins)
        return self._sampler

    # ----------------------------------------------------------------------- API
    def log_prob(self, mass, qT, E, *, extrapolate: bool = False) -> np.ndarray:
        """ln p(q_T, E | m) in GeV⁻² (density in the original variables).

        Outside the support (q_T < 0 or E ≤ 0) the result is −inf, without warnings; q_T = 0
        is evaluated at the floor q_T = 1e-6 GeV of the log transform. NaN inputs give NaN.
        """
        import torch

        qT = np.asarray(qT, dtype=np.float64)
        E = np.asarray(E, dtype=np.float64)
        m = np.broadcast_to(np.asarray(mass, dtype=np.float64), qT.shape).copy()
        self._check_mass(m, extrapolate)
        outside = (qT < 0) | (E <= 0)
        if outside.any():  # evaluate a harmless point there, then overwrite with −inf
            qT = np.where(outside, 1.0, qT)
            E = np.where(outside, 1.0, E)
        x = torch.as_tensor(self.pre.features(qT, E), dtype=torch.float32)
        c = torch.as_tensor(self.pre.context(m), dtype=torch.float32)
        out = np.empty(len(qT))
        with torch.inference_mode():
            for s in range(0, len(qT), 1 << 16):
                sl = slice(s, s + (1 << 16))
                out[sl] = _log_prob_fast(self.flow, x[sl], c[sl], int(self.arch["bins"])).numpy()
        out += self.pre.log_jacobian(qT, E)
        out[outside] = -np.inf
        return out

    def sample_standardised(
        self, mass, n: int, seed: int | None = None, chunk: int = 1 << 16
    ) -> np.ndarray:
        """Samples in the standardised log space (float32), shape (n, 2); no mass check.

        The latent points are drawn from a torch generator seeded with ``seed``, in chunks of
        ``chunk`` points (the stream does not depend on the thread count); the flow's inverse
        runs on ``torch.get_num_threads()`` threads, with a result that does not depend on them.
        """
        import torch

        gen = torch.Generator().manual_seed(
            int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        )
        masses = np.asarray(mass, dtype=np.float64)
        fixed = masses.ndim == 0
        sampler = self.sampler
        z = np.empty((n, 2), dtype=np.float32)
        zt = torch.from_numpy(z)
        for s in range(0, n, chunk):
            k = min(chunk, n - s)
            torch.randn((k, 2), generator=gen, out=zt[s : s + k])
        if fixed:
            c = self.pre.context(masses.reshape(1)).astype(np.float32)
        else:
            c = self.pre.context(masses.reshape(-1)).astype(np.float32)
        if isinstance(sampler, _Sampler):  # torch fallback
            out = np.empty((n, 2), dtype=np.float32)
            with torch.inference_mode():
                for s in range(0, n, chunk):
                    cc = torch.from_numpy(c if fixed else c[s : s + chunk])
                    out[s : s + chunk] = sampler(zt[s : s + chunk], cc).numpy()
            return out
        return sampler(z, float(c[0, 0]) if fixed else c[:, 0], threads=torch.get_num_threads())

    def sample(
        self,
        mass,
        n: int | None = None,
        seed: int | None = None,
        *,
        extrapolate: bool = False,
        four_vectors: bool = False,
        physical: bool = True,
    ) -> dict[str, np.ndarray]:
        """Draw (q_T, E) from p(q_T, E | m).

        Arguments:
            mass: one mass (GeV) for all samples, or an array of n masses.
            n: number of samples (default: ``len(mass)``).
            seed: random seed (``None``: fresh entropy); the same seed gives the same samples.
            extrapolate: allow masses outside the trained range.
            four_vectors: also return ``px``, ``py``, ``pz`` (uniform azimuth, pz > 0) and ``phi``.
            physical: redraw the rare samples with E² < m² + q_T² (no real p_z), up to
                :data:`PHYSICAL_REDRAWS` times; samples still unphysical after that raise
                (the flow then puts most of its probability where no p_z exists).

        Returns:
            dict of float64 arrays ``m``, ``qT``, ``E`` (+ four-vector columns).

        Raises:
            GammastarError: a mass outside the trained range and not ``extrapolate``;
                with ``physical``, samples still unphysical after the redraws.
        """
        masses = np.asarray(mass, dtype=np.float64)
        if masses.ndim == 0:
            if n is None:
                raise GammastarError("sample: give n for a single mass")
            m = np.full(int(n), float(masses))
        else:
            m = masses.ravel()
            if n is not None and n != len(m):
                raise GammastarError(f"sample: n={n} but {len(m)} masses given")
        n = len(m)
        self._check_mass(m, extrapolate)
        rng = np.random.default_rng(seed)
        todo = None  # None: all samples (first attempt, no index arrays); then the redraws
        first_bad = 0
        for _attempt in range(PHYSICAL_REDRAWS + 1):
            sub_seed = int(rng.integers(2**63))
            mt = m if todo is None else m[todo]
            mm = float(masses) if masses.ndim == 0 else mt
            x = self.sample_standardised(mm, len(mt), seed=sub_seed).astype(np.float64)
            q, e = self.pre.inverse(x)
            if todo is None:
                qT, E = q, e
            else:
                qT[todo], E[todo] = q, e
            if not physical:
                break
            bad = np.flatnonzero(e * e < mt * mt + q * q)
            if todo is None:
                first_bad = bad.size
            todo = bad if todo is None else todo[bad]
            if todo.size == 0:
                break
        if physical and todo is not None and todo.size:
            where = f"m = {float(masses):.4g} GeV" if masses.ndim == 0 else "the given masses"
            raise GammastarError(
                f"sample: {todo.size} of {n} samples at {where} still have E² < m² + q_T² after "
                f"{PHYSICAL_REDRAWS} redraws ({first_bad / n:.1%} unphysical in the first "
                f"draw); the flow{f' {self.path}' if self.path else ''} puts most of its "
                "probability outside the physical region there (physical=False keeps them)"
            )
        out = {"m": m, "qT": qT, "E": E}
        if four_vectors:
            phi = rng.uniform(0.0, 2 * np.pi, n)
            out["phi"] = phi
            out["px"] = qT * np.cos(phi)
            out["py"] = qT * np.sin(phi)
            out["pz"] = np.sqrt(np.clip(E**2 - m**2 - qT**2, 0.0, None))
        return out


# =========================================================================== save / load
def save_model(
    directory: str | os.PathLike[str],
    flow,
    pre: Preprocessing,
    arch: Mapping[str, Any],
    mass_range: tuple[float, float],
    meta: Mapping[str, Any],
    *,
    force: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model.pt`` (state_dict) and ``meta.json`` atomically into ``directory``."""
    import torch

    directory = Path(directory)
    model_path = directory / rundir.MODEL_FILE
    with atomic_path(model_path, force=force) as tmp:
        torch.save({k: v.detach().clone() for k, v in flow.state_dict().items()}, tmp)
    info = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "architecture": dict(arch),
        "preprocessing": pre.to_json(),
        "mass_range": [float(mass_range[0]), float(mass_range[1])],
        "model_sha256": sha256_file(model_path),
        **dict(extra or {}),
        "meta": dict(meta),
    }
    rundir.write_artifact(directory / rundir.MODEL_META_FILE, info, "flow_meta.json", force=True)
    return directory


def _resolve_model_dir(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_file():
        return p.parent
    if (p / rundir.MODEL_FILE).exists() or (p / rundir.MODEL_META_FILE).exists():
        return p
    if (p / rundir.FLOW_DIR).is_dir():
        return p / rundir.FLOW_DIR
    raise GammastarError(f"{p}: no flow model here (expected model.pt and meta.json)")


def load(path: str | os.PathLike[str]) -> FlowModel:
    """Load a trained flow: the run directory, its ``flow/`` directory or ``flow/model.pt``.

    Raises:
        GammastarError: missing, foreign, tampered or inconsistent files (one clear line).
    """
    import torch

    d = _resolve_model_dir(path)
    meta_path, model_path = d / rundir.MODEL_META_FILE, d / rundir.MODEL_FILE
    info = load_json(meta_path, what="flow metadata file")
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise GammastarError(f"{meta_path}: not a gammastar flow metadata file")
    if info.get("format_version") != MODEL_FORMAT_VERSION:
        raise GammastarError(
            f"{meta_path}: flow format version {info.get('format_version')!r}; "
            f"this gammastar reads {MODEL_FORMAT_VERSION}"
        )
    if not model_path.exists():
        raise GammastarError(f"{model_path}: flow weights not found")
    if sha256_file(model_path) != info.get("model_sha256"):
        raise GammastarError(
            f"{model_path}: checksum does not match {meta_path.name} (modified or foreign file)"
        )
    rundir.validate(info, "flow_meta.json", where=str(meta_path))  # version and schema
    try:
        arch = info["architecture"]
        pre = Preprocessing.from_json(info["preprocessing"])
        mass_range = tuple(info["mass_range"])
        flow = build_flow(arch)
    except GammastarError:
        raise
    except Exception as err:  # noqa: BLE001 (reported as a GammastarError)
        raise GammastarError(f"{meta_path}: invalid flow metadata ({err})") from None
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
        flow.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 (reported as a GammastarError)
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GammastarError(f"{model_path}: not a loadable flow state_dict ({msg})") from None
    return FlowModel(flow, pre, arch, mass_range, meta=info, path=d)


# =========================================================================== training
def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac))


@dataclass
class TrainResult:
    """What :func:`fit` returns."""

    flow: Any
    preprocessing: Preprocessing
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    wall_s: float
    train_nll: float = float("nan")
    """Weighted NLL of the returned flow on the rows it was fitted on (not the early-stopping
    rows); compare with the held-out NLL for overfitting."""
    n_eff: dict[str, float] = field(default_factory=dict)
    """Kish n_eff of the fitted and the early-stopping rows."""


def _weighted_nll(flow, x, c, w, bins: int, chunk: int = 1 << 16) -> float:
    """−Σ w ln p / Σ w (standardised space); NaN where Σ w ≤ 0 (no density to compare with)."""
    import torch

    tot = 0.0
    wsum = float(w.sum()) if len(w) else 0.0
    if wsum <= 0:
        return float("nan")
    with torch.inference_mode():
        for s in range(0, len(x), chunk):
            lp = _log_prob_fast(flow, x[s : s + chunk], c[s : s + chunk], bins)
            tot += float(-(w[s : s + chunk] * lp).sum())
    return tot / wsum


def weighted_nll(flow, pre: Preprocessing, data: TrainingData, bins: int) -> float:
    """Weighted NLL −Σ w ln p(x|m) / Σ w of ``data`` in the standardised space (the training
    loss's scale); NaN for no rows or Σ w ≤ 0."""
    import torch

    if data.n == 0:
        return float("nan")
    x = torch.as_tensor(pre.features(data.qT, data.E), dtype=torch.float32)
    c = torch.as_tensor(pre.context(data.m), dtype=torch.float32)
    w = torch.as_tensor(data.weight, dtype=torch.float64)
    return _weighted_nll(flow, x, c, w, bins)


def systematic_resample(cum: torch.Tensor, points: int, gen: torch.Generator) -> torch.Tensor:
    """``points`` indices drawn ∝ the probabilities whose cumulative sum is ``cum`` (float64,
    ending at 1) by systematic resampling, in random order.

    Row i is drawn ⌊λᵢ⌋ or ⌈λᵢ⌉ times, λᵢ = points·pᵢ (multinomial draws vary by ≈ √λᵢ), so
    every pair with λᵢ ≥ 1 is used in every epoch; with equal probabilities and ``points`` =
    rows it is a permutation.

    References:
        G. Kitagawa, J. Comput. Graph. Stat. 5 (1996) 1; R. Douc, O. Cappé, E. Moulines,
        ISPA 2005 (systematic resampling, variance of the counts).
    """
    import torch

    u = torch.rand(1, generator=gen, dtype=torch.float64)
    pos = (torch.arange(points, dtype=torch.float64) + u) / points
    idx = torch.searchsorted(cum, pos, right=True).clamp_(max=len(cum) - 1)
    return idx[torch.randperm(points, generator=gen)]


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices of the seeded random split used by :func:`fit`."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(validation_fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _negative_batches(wb: torch.Tensor, batch: int) -> int:
    """Number of batches (consecutive ``batch`` loss weights) with net weight ≤ 0."""
    import torch

    nb = math.ceil(len(wb) / batch)
    pad = torch.zeros(nb * batch, dtype=wb.dtype)
    pad[: len(wb)] = wb
    return int((pad.view(nb, batch).sum(1) <= 0).sum())


class PointSampler:
    """The points of an epoch and their loss weights for ``flow.weighting`` (see :func:`fit`).

    All three schemes estimate the same loss −Σ wᵢ ln pᵢ / N (weights normalised to
    Σw/N = 1) without bias: ``likelihood`` draws a permutation and weights the loss by wᵢ;
    ``sampler`` (multinomial) and ``stratified`` (:func:`systematic_resample`) draw ∝ |wᵢ| and
    weight by sign(wᵢ)·Σ|w|/N.

    Arguments:
        w: weights of the fitted rows, normalised to Σw/N = 1 (torch tensor).
        scheme: ``stratified``, ``sampler`` or ``likelihood``.
    """

    def __init__(self, w: torch.Tensor, scheme: str) -> None:
        import torch

        if scheme not in ("stratified", "sampler", "likelihood"):
            raise GammastarError(f"flow.weighting: unknown scheme {scheme!r}")
        self.scheme = scheme
        self.n = len(w)
        if scheme == "likelihood":
            self.loss_weight = w
            return
        # draw ∝ |w|, carry sign(w)·Σ|w|/N: E[loss] = −Σ w ln p / N, as the uniform estimator
        absw = w.abs().double()
        self.probs = absw / absw.sum()
        self.cum = torch.cumsum(self.probs, 0)
        self.cum /= self.cum[-1].clone()
        self.loss_weight = torch.sign(w) * w.abs().mean()

    def epoch(self, points: int, gen: torch.Generator) -> torch.Tensor:
        """Indices of the ``points`` rows of one epoch, in the order they are used."""
        import torch

        if self.scheme == "stratified":
            return systematic_resample(self.cum, points, gen)
        if self.scheme == "sampler":
            return torch.multinomial(self.probs, points, replacement=True, generator=gen)
        if points >= self.n:
            return torch.randperm(self.n, generator=gen)
        return torch.randperm(self.n, generator=gen)[:points]


def fit(
    data: TrainingData,
    cfg: FlowConfig,
    *,
    seed: int,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    stop_after: int | None = None,
    identity: Mapping[str, Any] | None = None,
    callback: Any = None,
    restore_best: bool = True,
) -> TrainResult:
    """Weighted maximum-likelihood training (the engine of :func:`train`).

    The loss is the weighted NLL L = −Σ wᵢ ln p(xᵢ|mᵢ) / Σ wᵢ over the fitted rows (negative
    like-sign weights included: the background-subtracted density). Each batch gives an
    unbiased estimate of L normalised by the *global* Σ w, never by the batch's own sum, so a
    batch whose net weight is negative or near zero cannot flip or blow up the loss (such
    batches are counted in ``history["negative_batches"]``). With ``flow.weighting:
    stratified`` (default) the points are drawn ∝ |w| by :func:`systematic_resample` and carry
    sign(w)·Σ|w|/Σw: the lowest-variance choice that does not depend on the (unknown)
    per-point gradients; see docs/flow.md "Strongly varying weights".

    Arguments:
        data: training rows (weights may be negative; normalised to mean 1).
        cfg: ``flow`` config section (architecture and optimisation).
        seed: seeds the split, the initialisation and the batch order.
        checkpoint: file for periodic checkpoints (every ``cfg.checkpoint_every`` epochs).
        resume: continue from ``checkpoint``; gives the same result as an uninterrupted run.
        progress: show a progress bar with the train/validation loss.
        stop_after: stop (as if interrupted) after this many epochs, writing a checkpoint.
        identity: data/config hashes that a resumed checkpoint must match.
        callback: ``callback(epoch, train_loss, val_loss)`` after each epoch; a true return
            value stops the training there.
        restore_best: return the best-validation state (early stopping); ``False`` returns
            the last state (tests of overfitting).

    Returns:
        :class:`TrainResult` with the best-validation flow (early stopping).
    """
    t_start = time.perf_counter()
    import torch

    from gammastar import _flow_training

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    arch = architecture_from_config(cfg)
    bins = int(arch["bins"])
    tr_idx, val_idx = split_indices(data.n, cfg.validation_fraction, seed)
    pre = Preprocessing.fit(data.qT[tr_idx], data.E[tr_idx], data.m[tr_idx], data.weight[tr_idx])

    def tensors(idx):
        x = torch.as_tensor(pre.features(data.qT[idx], data.E[idx]), dtype=torch.float32)
        c = torch.as_tensor(pre.context(data.m[idx]), dtype=torch.float32)
        w = torch.as_tensor(data.weight[idx], dtype=torch.float32)
        return x, c, w

    x_tr, c_tr, w_tr = tensors(tr_idx)
    x_va, c_va, w_va = tensors(val_idx)
    wsum_tr = float(data.weight[tr_idx].sum())
    if wsum_tr <= 0 or float(data.weight[val_idx].sum()) <= 0:
        raise InputError(
            "the training weights sum to ≤ 0 on the fitted or the early-stopping rows "
            f"(flow.validation_fraction={cfg.validation_fraction:g}): too few rows or too much "
            "like-sign subtraction"
        )
    n_eff = {
        "fitted": effective_sample_size(data.weight[tr_idx]),
        "early_stopping": effective_sample_size(data.weight[val_idx]),
    }
    # global normalisation: Σ w / N = 1 on the fitted rows (never a batch's own sum)
    w_tr = w_tr / (wsum_tr / len(tr_idx))
    n_tr = len(tr_idx)
    points = n_tr if cfg.points_per_epoch is None else int(cfg.points_per_epoch)
    batch = min(int(cfg.batch_size), points)
    steps_per_epoch = max(1, math.ceil(points / batch))
    total_steps = steps_per_epoch * cfg.epochs
    warmup = cfg.warmup_epochs * steps_per_epoch
    draw = PointSampler(w_tr, cfg.weighting)
    loss_w = draw.loss_weight

    _flow_training.warm_up()  # one-time kernel loading, before the first step's clock
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    flow = build_flow(arch)
    # one flat parameter tensor for the optimizer (the module's parameters are views of it)
    flat = _flow_training.FlatParameters(flow)
    opt = torch.optim.AdamW(
        [flat.param], lr=cfg.learning_rate, weight_decay=cfg.weight_decay, foreach=False
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(s, total_steps, warmup, cfg.schedule)
    )
    history: dict[str, list[float]] = {
        "train": [],
        "val": [],
        "lr": [],
        "train_s": [],
        "negative_batches": [],
    }
    train_s = 0.0  # optimisation time, excluding the validation passes
    best = {"loss": math.inf, "epoch": -1, "state": None}
    bad_epochs = 0
    start_epoch = 0
    resumed_stopped = False
    ident = dict(identity or {})
    ident.update(
        {
            "data_sha256": data.sha256,
            "seed": seed,
            "arch": json.dumps(arch),
            "optimizer": _flow_training.OPTIMIZER_LAYOUT,
        }
    )

    if resume:
        if checkpoint is None or not Path(checkpoint).exists():
            raise GammastarError(f"{checkpoint}: no checkpoint to resume from")
        try:
            ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 (reported as a GammastarError)
            raise GammastarError(f"{checkpoint}: unreadable checkpoint ({err})") from None
        saved = json.loads(ck.get("identity", "{}"))
        if saved != json.loads(json.dumps(ident)):
            diff = sorted(k for k in set(saved) | set(ident) if saved.get(k) != ident.get(k))
            raise CheckpointMismatchError(
                f"{checkpoint}: checkpoint does not match this config/data ({', '.join(diff)}); "
                "train without --resume"
            )
        flow.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        history = {k: list(v) for k, v in json.loads(ck["history"]).items()}
        history.setdefault("negative_batches", [])
        best = {"loss": float(ck["best_loss"]), "epoch": int(ck["best_epoch"]), "state": None}
        best["state"] = ck["best_state"] if ck["best_state"] else None
        bad_epochs = int(ck["bad_epochs"])
        train_s = history["train_s"][-1] if history.get("train_s") else 0.0
        start_epoch = int(ck["epoch"])
        resumed_stopped = bool(ck.get("stopped_early", False))

    def save_checkpoint(epoch: int) -> None:
        if checkpoint is None:
            return
        ck = {
            "identity": json.dumps(ident),
            "model": flow.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(history),
            "best_loss": best["loss"],
            "best_epoch": best["epoch"],
            "best_state": best["state"] or {},
            "bad_epochs": bad_epochs,
            "epoch": epoch,
            "stopped_early": stopped_early,
        }
        with atomic_path(checkpoint, force=True) as tmp:
            torch.save(ck, tmp)

    stopped_early = resumed_stopped
    epoch = start_epoch
    with _progress(progress, cfg.epochs, start_epoch) as bar:
        for epoch in range(start_epoch, cfg.epochs):
            if stopped_early or (stop_after is not None and epoch >= stop_after):
                break
            flow.train()
            idx = draw.epoch(points, gen)
            negative = _negative_batches(loss_w[idx], batch)
            tot, wsum = 0.0, 0.0
            t_epoch = time.perf_counter()
            for s in range(0, len(idx), batch):
                b = idx[s : s + batch]
                lp = _log_prob_fast(flow, x_tr[b], c_tr[b], bins)
                wb = loss_w[b]
                # normalised by the global Σw/N = 1 (above), not by this batch's Σw
                loss = -(wb * lp).sum() / len(b)
                flat.backward(loss)
                opt.step()
                sched.step()
                tot += loss.detach().item() * len(b)
                wsum += len(b)
            train_s += time.perf_counter() - t_epoch
            flow.eval()
            train_loss = tot / wsum
            val_loss = _weighted_nll(flow, x_va, c_va, w_va, bins)
            history["train"].append(train_loss)
            history["val"].append(val_loss)
            history["lr"].append(float(opt.param_groups[0]["lr"]))
            history["train_s"].append(train_s)
            history["negative_batches"].append(negative)
            if val_loss < best["loss"]:
                best = {
                    "loss": val_loss,
                    "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in flow.state_dict().items()},
                }
                bad_epochs = 0
            else:
                bad_epochs += 1
            if callback is not None and callback(epoch, train_loss, val_loss):
                break
            bar(epoch + 1, train_loss, val_loss)
            done = epoch + 1
            if bad_epochs >= cfg.patience:
                stopped_early = True
            if (
                done % cfg.checkpoint_every == 0
                or done == cfg.epochs
                or stopped_early
                or (stop_after is not None and done >= stop_after)
            ):
                save_checkpoint(done)
            if stopped_early:
                break
    if restore_best and best["state"] is not None:
        flow.load_state_dict(best["state"])
    flow.eval()
    w_fit = torch.as_tensor(data.weight[tr_idx], dtype=torch.float64)
    return TrainResult(
        flow=flow,
        preprocessing=pre,
        history=history,
        best_epoch=int(best["epoch"]),
        epochs_run=len(history["val"]),
        stopped_early=stopped_early,
        wall_s=time.perf_counter() - t_start,
        train_nll=_weighted_nll(flow, x_tr, c_tr, w_fit, bins),
        n_eff=n_eff,
    )


@contextlib.contextmanager
def _progress(enabled: bool, total: int, start: int) -> Iterator[Any]:
    if not enabled:
        yield lambda *a: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("flow"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} epochs"),
        TextColumn("train {task.fields[tl]}  val {task.fields[vl]}"),
        TimeElapsedColumn(),
    ) as prog:
        task = prog.add_task("train", total=total, completed=start, tl="-", vl="-")

        def update(done: int, tl: float, vl: float) -> None:
            prog.update(task, completed=done, tl=f"{tl:.4f}", vl=f"{vl:.4f}")

        yield update


def plot_losses(history: Mapping[str, Sequence[float]], path: Path, force: bool = True) -> Path:
    """Training and validation loss vs epoch (paper Fig. 7 analogue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ep = np.arange(1, len(history["train"]) + 1)
    ax.plot(ep, history["train"], label="training")
    ax.plot(ep, history["val"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative log-likelihood")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path


def read_pairs(config: AnalysisConfig) -> tuple[pd.DataFrame, Path]:
    """The run directory's ``pairs.parquet`` (the kinematic columns checked against the
    contract, :meth:`gammastar.rundir.RunDir.read_pairs`; the rest by :func:`training_data`)."""
    rd = rundir.RunDir(config.output_dir)
    return rd.read_pairs(require=("m", "qT", "E", "charge")), rd.path(rundir.PAIRS)


def train(
    config: AnalysisConfig,
    *,
    output: str | os.PathLike[str] | None = None,
    resume: bool = False,
    force: bool = False,
    seed: int | None = None,
    progress: bool = False,
    pairs: pd.DataFrame | None = None,
    stop_after: int | None = None,
) -> Path:
    """``gammastar train``: fit the flow on the run directory's pairs table.

    The pairs of the held-out events (``flow.holdout_fraction``, :func:`holdout_mask`) are not
    used; ``meta.json`` records the split (``holdout``), Kish's effective sample sizes
    (``n_eff``: overall, per mass bin, per validation window) and the weighted NLL of the
    fitted, early-stopping and held-out pairs (``loss``).

    Writes ``flow/model.pt``, ``flow/meta.json``, ``flow/loss.png`` and ``flow/history.json``
    (and ``flow/ensemble/<i>/`` for ``flow.ensemble > 1``; member directories of an older,
    larger ensemble are removed once the new members are written). ``flow/checkpoint.pt`` holds
    the latest checkpoint (``resume=True`` continues from it).

    Arguments:
        config: the analysis config.
        output: run directory (default: the config's).
        resume: continue an interrupted training from its checkpoint.
        force: overwrite an existing model.
        seed: training seed (default ``flow.seed`` or the top-level ``seed``).
        progress: show a progress bar.
        pairs: use this table instead of ``pairs.parquet`` (tests, notebooks).
        stop_after: stop after this many epochs (simulates an interruption; no model written).

    Returns:
        The ``flow`` directory.
    """
    if output is not None:
        config = config.model_copy(update={"output": str(Path(output).resolve())})
    cfg = config.flow
    out = config.output_dir / rundir.FLOW_DIR
    if pairs is None:
        pairs, src = read_pairs(config)
        inputs: list[Any] = [src]
    else:
        src, inputs = Path("<pairs table>"), []
    seed0 = int(seed if seed is not None else (cfg.seed if cfg.seed is not None else config.seed))
    if (out / rundir.MODEL_FILE).exists() and not (force or resume):
        raise OutputExistsError(f"{out / rundir.MODEL_FILE}: output exists already; use --force")
    hseed = holdout_seed_of(config)
    data = training_data(pairs, cfg, source=str(src), seed=seed0, holdout_seed=hseed)
    held = training_data(
        pairs, cfg, source=str(src), seed=seed0, part="holdout", holdout_seed=hseed
    )
    mass_range = (float(data.m.min()), float(data.m.max()))
    vcfg = config.validate_
    cfg_hash = config.section_sha256("flow")
    for member in range(cfg.ensemble):
        s = seed0 + member
        d = out if member == 0 else out / rundir.ENSEMBLE_DIR / str(member)
        if member > 0 and (d / rundir.MODEL_FILE).exists() and not (force or resume):
            raise OutputExistsError(f"{d / rundir.MODEL_FILE}: output exists already; use --force")
        ck = d / rundir.CHECKPOINT_FILE
        res = fit(
            data,
            cfg,
            seed=s,
            checkpoint=ck,
            resume=resume and ck.exists(),
            progress=progress,
            stop_after=stop_after,
            identity={"config_sha256": cfg_hash},
        )
        if stop_after is not None and res.epochs_run < cfg.epochs and not res.stopped_early:
            return out
        arch = architecture_from_config(cfg)
        holdout_nll = weighted_nll(res.flow, res.preprocessing, held, int(arch["bins"]))
        meta = make_meta(
            config_sha256=cfg_hash,
            seed=s,
            inputs=inputs,
            data_sha256=data.sha256,
            n_train_rows=data.n,
            training_data=data.description,
            weighting=cfg.weighting,
            holdout={
                **{k: v for k, v in data.split.items() if k != "part"},
                "holdout_sha256": held.sha256,
            },
            n_eff=weight_report(data, held, res, mass_range, vcfg.masses, vcfg.window),
            loss={
                "fitted": res.train_nll,
                "early_stopping": min(res.history["val"]) if res.history["val"] else None,
                "holdout": holdout_nll,
                "note": "weighted NLL −Σw ln p/Σw in the standardised space; holdout well "
                "above fitted (beyond its statistical error) signals overfitting",
            },
            best_epoch=res.best_epoch,
            epochs_run=res.epochs_run,
            stopped_early=res.stopped_early,
            best_val_loss=min(res.history["val"]) if res.history["val"] else None,
            train_wall_s=res.wall_s,
            ensemble_member=member,
            ensemble_size=cfg.ensemble,
        )
        save_model(d, res.flow, res.preprocessing, arch, mass_range, meta, force=True)
        rundir.write_artifact(
            d / rundir.HISTORY_FILE, {**res.history, "meta": meta}, "flow_history.json", force=True
        )
        plot_losses(res.history, d / "loss.png")
    _remove_stale_members(out / rundir.ENSEMBLE_DIR, cfg.ensemble)
    return out


def holdout_seed_of(config: AnalysisConfig) -> int:
    """The hold-out split seed: ``flow.holdout_seed``, else the top-level ``seed``."""
    hs = config.flow.holdout_seed
    return int(hs if hs is not None else config.seed)


def weight_report(
    data: TrainingData,
    held: TrainingData,
    res: TrainResult | None,
    mass_range: tuple[float, float],
    masses: Sequence[float],
    window: float,
    bins: int = 20,
) -> dict[str, Any]:
    """Kish n_eff (:func:`effective_sample_size`) of the training and held-out rows: overall,
    in ``bins`` equal mass bins of the trained range and in the validation windows."""
    edges = np.linspace(mass_range[0], mass_range[1], bins + 1)

    def per_bin(d: TrainingData) -> list[float]:
        k = np.clip(np.searchsorted(edges, d.m, side="right") - 1, 0, bins - 1)
        return [effective_sample_size(d.weight[k == i]) for i in range(bins)]

    inside = [float(m0) for m0 in masses if mass_range[0] <= m0 <= mass_range[1]]
    return {
        "formula": "Kish (Σw)²/Σw²",
        "train": data.n_eff,
        **(res.n_eff if res is not None else {}),
        "holdout": held.n_eff,
        "rows": {"train": data.n, "holdout": held.n},
        "mass_bins": {"edges": edges.tolist(), "train": per_bin(data), "holdout": per_bin(held)},
        "windows": {
            "mass": inside,
            "window": float(window),
            "train": n_eff_in_windows(data.m, data.weight, inside, window),
            "holdout": n_eff_in_windows(held.m, held.weight, inside, window),
        },
    }


def _remove_stale_members(ens: Path, size: int) -> None:
    """Delete ``ensemble/<i>`` for i ≥ ``size`` (an older, larger ensemble), after the new
    members are written; the ``ensemble`` directory too when nothing is left in it."""
    import shutil

    if not ens.is_dir():
        return
    for sub in ens.iterdir():
        if sub.is_dir() and sub.name.isdigit() and int(sub.name) >= size:
            shutil.rmtree(sub)
    if not any(ens.iterdir()):
        ens.rmdir()


# =========================================================================== ensembles
class Ensemble:
    """Models trained with different seeds; their spread is a model uncertainty."""

    def __init__(self, models: Sequence[FlowModel]) -> None:
        if not models:
            raise GammastarError("empty flow ensemble")
        self.models = list(models)

    def __len__(self) -> int:
        return len(self.models)

    def sample(self, mass, n: int, seed: int | None = None, **kw: Any) -> dict[str, np.ndarray]:
        """n samples from each member: arrays of shape (members, n)."""
        ss = np.random.SeedSequence(seed)
        outs = [
            m.sample(mass, n, seed=int(c.generate_state(1)[0]), **kw)
            for m, c in zip(self.models, ss.spawn(len(self.models)), strict=True)
        ]
        return {k: np.stack([o[k] for o in outs]) for k in outs[0]}

    def spread(self, statistic: Any, mass, n: int, seed: int | None = None) -> tuple[float, float]:
        """Mean and standard deviation over members of ``statistic(samples_dict)``."""
        s = self.sample(mass, n, seed)
        vals = np.array(
            [statistic({k: v[i] for k, v in s.items()}) for i in range(len(self.models))]
        )
        return float(vals.mean()), float(vals.std(ddof=1) if len(vals) > 1 else 0.0)


def ensemble_size(model: FlowModel) -> int | None:
    """The ensemble size recorded in the model's ``meta.json`` (``None``: not recorded)."""
    size = model.meta.get("meta", {}).get("ensemble_size")
    return int(size) if isinstance(size, int) and size > 0 else None


def load_ensemble(path: str | os.PathLike[str]) -> Ensemble:
    """Load ``flow/`` and the members ``flow/ensemble/<i>/``, i = 1 … ensemble_size − 1.

    Only the members that ``flow/meta.json`` records (``ensemble_size``) are loaded: a directory
    beyond them is left from an older, larger ensemble and ignored. A model without a recorded
    size (older gammastar) loads every member directory found.

    Raises:
        GammastarError: a recorded member is missing, or was trained with another flow config
            or data set than ``flow/`` (left from an interrupted or older training).
    """
    d = _resolve_model_dir(path)
    first = load(d)
    size = ensemble_size(first)
    ens = d / rundir.ENSEMBLE_DIR
    if size is None:
        subs = (
            sorted((p for p in ens.iterdir() if p.is_dir()), key=lambda p: int(p.name))
            if ens.is_dir()
            else []
        )
    else:
        subs = [ens / str(i) for i in range(1, size)]
    models = [first]
    ref = first.meta.get("meta", {})
    for sub in subs:
        if size is not None and not (sub / rundir.MODEL_META_FILE).exists():
            raise GammastarError(
                f"{sub}: ensemble member missing ({d / rundir.MODEL_META_FILE} records {size} members)"
            )
        member = load(sub)
        got = member.meta.get("meta", {})
        for key in ("config_sha256", "data_sha256"):
            if size is not None and got.get(key) != ref.get(key):
                raise GammastarError(
                    f"{sub}: ensemble member of another training ({key} differs from "
                    f"{d / rundir.MODEL_META_FILE}); retrain with --force"
                )
        models.append(member)
    return Ensemble(models)


# =========================================================================== mCP recipe
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


def decay_two_body(
    parent: Mapping[str, np.ndarray], m_daughter: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""Decay γ* → χχ̄ in its rest frame with dN/dcosθ ∝ 1 + cos²θ + (4m²/M²) sin²θ.

    θ is measured from the γ* flight direction (helicity frame); the azimuth is uniform.

    Arguments:
        parent: arrays ``px``, ``py``, ``pz``, ``E``, ``m`` of the γ*.
        m_daughter: the χ mass (GeV).
        rng: numpy generator.

    Returns:
        Two (n, 4) arrays (px, py, pz, E) of χ and χ̄ in the lab.

    References:
        Allison & Blinov Sec. III C 2; the angular distribution of a transversely
        polarised vector decaying to a fermion pair (e.g. Landsberg, Phys. Rep. 128 (1985) 301).

    Example:
        >>> g = {"px": np.array([0.3]), "py": np.array([0.0]), "pz": np.array([20.0]),
        ...      "m": np.array([0.5])}
        >>> g["E"] = np.sqrt(0.3**2 + 20.0**2 + 0.5**2)
        >>> a, b = decay_two_body(g, 0.1, np.random.default_rng(1))
        >>> bool(np.allclose(a + b, [[0.3, 0.0, 20.0, g["E"]]]))
        True
        >>> bool(np.isclose(a[0, 3] ** 2 - (a[0, :3] ** 2).sum(), 0.1**2))
        True
    """
    M = np.atleast_1d(np.asarray(parent["m"], dtype=np.float64))
    n = len(M)
    r = np.clip(4 * m_daughter**2 / M**2, 0.0, 1.0)
    cos = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        c = rng.uniform(-1, 1, todo.size)
        u = rng.uniform(0, 2.0, todo.size)  # max of 1 + c² + r(1 − c²) is 2
        acc = u < 1 + c**2 + r[todo] * (1 - c**2)
        cos[todo[acc]] = c[acc]
        todo = todo[~acc]
    phi = rng.uniform(0, 2 * np.pi, n)
    p = 0.5 * M * np.sqrt(np.clip(1 - r, 0.0, None))
    sin = np.sqrt(1 - cos**2)
    # rest-frame momentum in a frame whose z axis is the γ* direction
    local = np.stack([p * sin * np.cos(phi), p * sin * np.sin(phi), p * cos], axis=1)
    P = np.stack(
        [
            np.broadcast_to(np.asarray(parent[k], dtype=np.float64), (n,))
            for k in ("px", "py", "pz")
        ],
        axis=1,
    )
    pabs = np.linalg.norm(P, axis=1)
    ez = P / np.where(pabs > 0, pabs, 1.0)[:, None]
    ez[pabs == 0] = [0.0, 0.0, 1.0]
    helper = np.where(np.abs(ez[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    ex = np.cross(helper, ez)
    ex /= np.linalg.norm(ex, axis=1)[:, None]
    ey = np.cross(ez, ex)
    k = local[:, :1] * ex + local[:, 1:2] * ey + local[:, 2:3] * ez
    e_rest = np.sqrt(p**2 + m_daughter**2)
    E = np.broadcast_to(np.asarray(parent["E"], dtype=np.float64), (n,))
    beta = P / E[:, None]
    gamma = E / M
    out = []
    for sign in (+1, -1):
        kk = sign * k
        bk = (beta * kk).sum(1)
        b2 = (beta**2).sum(1)
        coef = np.where(b2 > 0, (gamma - 1) * bk / np.where(b2 > 0, b2, 1), 0.0)
        plab = kk + (coef + gamma * e_rest)[:, None] * beta
        elab = gamma * (e_rest + bk)
        out.append(np.column_stack([plab, elab]))
    return out[0], out[1]


def sample_mcp(
    model: FlowModel,
    m_chi: float,
    n: int,
    *,
    spectrum: tuple[np.ndarray, np.ndarray],
    m_lepton: float,
    q: float = 1.0,
    seed: int | None = None,
    extrapolate: bool = False,
) -> dict[str, np.ndarray]:
    """The paper's mCP recipe (Sec. III C 2): γ* mass, (q_T, E) from the flow, γ* → χχ̄.

    1. γ* masses from the unfolded dilepton spectrum above 2 m_χ (and inside the flow's trained
       mass range unless ``extrapolate``), weighted by the Eq. 8 factor
       Q² K_χ(m)/K_ℓ(m) (:func:`gammastar.physics.kinematics.mcp_factor`): a bin is chosen with
       probability ∝ content × factor, the mass uniformly inside it;
    2. (q_T, E) of the γ* from the flow at that mass, with a uniform azimuth;
    3. the decay γ* → χχ̄ (:func:`decay_two_body`).

    Every event has weight Σ_bins(content × factor)/n, so the weights sum to the expected number
    of χχ̄ pairs in the normalisation of ``spectrum``.

    Returns:
        dict of arrays: ``m_gstar``, ``qT``, ``E``, ``px``, ``py``, ``pz`` (γ*), ``chi1_*`` and
        ``chi2_*`` (px, py, pz, E), ``weight``.
    """
    from gammastar.physics.kinematics import mcp_factor

    edges, contents = (np.asarray(a, dtype=np.float64) for a in spectrum)
    rng = np.random.default_rng(seed)
    lo = np.maximum(edges[:-1], 2 * m_chi)
    hi = edges[1:].copy()
    if not extrapolate:  # only the part of the spectrum inside the flow's trained range
        lo = np.maximum(lo, model.mass_range[0])
        hi = np.minimum(hi, model.mass_range[1])
    ok = hi > lo
    # mean of the Eq. 8 factor across the part of each bin above threshold (5-point rule)
    tpts = np.linspace(0, 1, 5)[1:-1]
    fac = np.mean([mcp_factor(lo + t * (hi - lo), m_chi, m_lepton, q) for t in tpts], axis=0)
    frac = np.where(ok, (hi - lo) / (edges[1:] - edges[:-1]), 0.0)
    expected = contents * fac * frac
    expected[~ok] = 0.0
    total = expected.sum()
    if not np.isfinite(total) or total <= 0:
        raise GammastarError(
            f"no γ* mass above 2 m_χ = {2 * m_chi:.4g} GeV in the mass spectrum "
            f"[{edges[0]:.4g}, {edges[-1]:.4g}] GeV"
        )
    b = rng.choice(len(expected), size=n, p=expected / total)
    m = rng.uniform(lo[b], hi[b])
    g = model.sample(m, seed=int(rng.integers(2**63)), extrapolate=extrapolate, four_vectors=True)
    c1, c2 = decay_two_body({**g, "m": m}, m_chi, rng)
    out = {
        "m_gstar": m,
        "qT": g["qT"],
        "E": g["E"],
        "px": g["px"],
        "py": g["py"],
        "pz": g["pz"],
        "weight": np.full(n, total / n),
    }
    for name, arr in (("chi1", c1), ("chi2", c2)):
        for i, comp in enumerate(("px", "py", "pz", "E")):
            out[f"{name}_{comp}"] = arr[:, i]
    return out


def write_samples(
    path: str | os.PathLike[str],
    columns: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    *,
    force: bool = False,
) -> Path:
    """Write samples as parquet (``.parquet``) or a ROOT TTree ``samples`` (``.root``).

    The metadata goes into the parquet schema metadata (key ``gammastar``) or, in ROOT, a
    TObjString ``meta`` holding the JSON.
    """
    path = Path(path)
    text = json.dumps(meta, default=str)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".root"):
        raise GammastarError(f"{path}: output must end in .parquet or .root")
    with atomic_path(path, force=force) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({k: np.asarray(v) for k, v in columns.items()})
            table = table.replace_schema_metadata({"gammastar": text})
            pq.write_table(table, tmp)
        else:
            import uproot

            with uproot.recreate(tmp) as f:
                f["samples"] = {k: np.asarray(v) for k, v in columns.items()}
                f["meta"] = text
    return path
