"""The per-pair weights of the selection: the one function (:func:`pair_weights`: 1/ε, 1/A, the
like-sign and conversion factors), what a chunk needs to weigh its own pairs (:class:`WeightSpec`,
:func:`weight_chunk`), the report counts and sums that add over chunks, and the column types of
``pairs.parquet``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.corrections.background import conversion_template_from_config, ss_pair_weights
from gammastar.corrections.unfold.acceptance import acceptance_weights
from gammastar.corrections.unfold.efficiency import inverse_weights

if TYPE_CHECKING:
    from gammastar.config import AnalysisConfig


@dataclass(frozen=True)
class WeightSpec:
    """What a chunk needs to compute its pairs' final weights itself (picklable).

    Every factor of ``weight`` is chunk-local (1/ε and 1/A are per-pair map lookups) except
    the like-sign factor of ``ss_weight: binwise``, which needs the whole sample's N++, N−−
    per mass bin, and the η → μμ ``rate`` scale, which needs its unfolded yield per mass bin:
    there the chunks weigh SS pairs with −1 (``r_factor`` 1) and the second pass multiplies
    the weights by the mass bin's factors (:mod:`gammastar.selection.weights.second_pass`).
    """

    r_factor: float = 1.0
    """The SS factor the chunks apply: R (``constant``) or 1 (``binwise``, provisional)."""
    outside_map: str = "error"
    acceptance: Any = None
    """The :class:`~gammastar.corrections.unfold.acceptance.AcceptanceMap` (``None``: A = 1)."""
    min_acceptance: float = 0.01
    conversion: Any = None
    """The :class:`~gammastar.corrections.background.ConversionTemplate` (``None``: no subtraction)."""
    moments: bool = False
    """The chunk also returns the per-pair acceptance's four decay-angle moments at its pairs
    (``_moments``, (4, n), from the lookup of A:
    :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.lookup_moments`), for
    the driver's polarisation measurement (chunks kept in this process only). Kept in single
    precision, half the memory (the fit's λ move by ~10⁻⁷ of their errors, as a measured
    λ_θ's from :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.pair_moments`
    in float32)."""

    @classmethod
    def from_config(cls, cfg: AnalysisConfig, am: Any = None) -> WeightSpec | None:

        b = cfg.background
        chunk_local = b.ss_weight == "constant" and b.r_factor != "mixed"
        r = float(b.r_factor) if chunk_local else 1.0
        return cls(r, cfg.unfold.outside_map, am, cfg.unfold.min_acceptance,
                   conversion_template_from_config(cfg))  # fmt: skip


@dataclass(frozen=True)
class _AtPairs:
    """A per-pair acceptance already evaluated at the pairs of the table, in its row order
    (the isotropic A of a measured λ_θ, from the moments at every pair; a chunk's A looked up
    with its moments, :class:`WeightSpec` ``moments``): what
    :func:`gammastar.corrections.unfold.acceptance.acceptance_weights` looks up, without a second
    lookup."""

    values: np.ndarray
    source: str

    def lookup(self, m: np.ndarray, pt: np.ndarray, pz: np.ndarray) -> np.ndarray:
        if len(m) != len(self.values):
            raise ValueError(f"{len(m)} pairs for {len(self.values)} acceptance values")
        return self.values


WEIGHT_COUNTS = (
    "n_zero_efficiency",
    "acc_n_pairs",
    "acc_n_outside",
    "acc_n_below_min",
    "acc_n_below_min_os",
    "acc_n_below_min_ss",
    "acc_n_zero",
)
"""Report counts :func:`weight_chunk` returns (they add over chunks)."""

WEIGHT_SUMS = ("lost_kept", "lost_kept2", "lost_lost", "lost_lost2")
"""Report sums :func:`weight_chunk` returns (Σw, Σw² of the kept and of the lost pairs)."""


def pair_weights(
    pairs: Mapping[str, np.ndarray],
    inv_eff: np.ndarray,
    ss_factor: np.ndarray,
    *,
    acceptance: Any = None,
    min_acceptance: float = 0.01,
    outside_map: str = "error",
    conversion: Any = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int], dict[str, float]]:
    """The per-pair weights: the one implementation, used by the chunks
    (:func:`weight_chunk`) and by the driver (:func:`gammastar.selection.stage.select` when the weights
    need the whole sample).

    ``weight = weight_raw · 1/ε · 1/A · s`` (DEVELOPERS.md "Pairs table"; weight_raw = 1 for
    data), with 1/A = 0 below ``min_acceptance`` and outside the map (unless ``nearest``);
    the counts and the sums Σw, Σw² of the kept pairs and of the lost ones at their nominal
    weight 1/(A ε) (:func:`gammastar.corrections.unfold.acceptance.lost_fraction_from_sums`) add
    over chunks. Pairs outside the map are counted, never raised on here: the caller raises on
    the total (:func:`gammastar.corrections.unfold.acceptance.check_acceptance_outside`) for
    ``outside_map: error``.

    Arguments:
        pairs: columns ``m``, ``pT``, ``pz``, ``charge``.
        inv_eff: 1/ε per pair (0 where ε cannot be used).
        ss_factor: s per pair: 1 (OS) or the like-sign factor −k (SS).
        acceptance: an :class:`~gammastar.corrections.unfold.acceptance.AcceptanceMap` or
            per-pair acceptance (``None``: A = 1).
        min_acceptance: ``unfold.min_acceptance``.
        outside_map: ``unfold.outside_map`` (``error`` and ``drop``: weight 0 outside).
        conversion: a :class:`~gammastar.corrections.background.ConversionTemplate`: s times its
            1/(1 + R(m, pT)) (``None``: no conversion subtraction).

    Returns:
        ``(acc, weight, counts, sums)``: A and the weight per pair, the acceptance counts of
        :data:`WEIGHT_COUNTS` (``acc_*``; 0 without an acceptance) and the
        :data:`WEIGHT_SUMS`.

    Example:
        >>> acc, w, counts, sums = pair_weights(
        ...     {"m": np.array([0.5, 0.6]), "pT": np.zeros(2), "pz": np.ones(2),
        ...      "charge": np.array([0, 2])}, np.array([2.0, 4.0]), np.array([1.0, -0.5]))
        >>> w.tolist(), acc.tolist(), counts["acc_n_pairs"]
        ([2.0, -2.0], [1.0, 1.0], 0)
    """

    n = len(pairs["m"])
    if conversion is not None:
        ss_factor = ss_factor * conversion.factor(pairs["m"], pairs["pT"])
    counts = {k: 0 for k in WEIGHT_COUNTS if k.startswith("acc_")}
    sums = dict.fromkeys(WEIGHT_SUMS, 0.0)
    if acceptance is not None:
        q = np.asarray(pairs["charge"])
        acc, inv_acc, arep = acceptance_weights(
            acceptance,
            np.asarray(pairs["m"], dtype=np.float64),
            np.asarray(pairs["pT"], dtype=np.float64),
            min_acceptance=min_acceptance,
            on_missing="drop" if outside_map == "error" else outside_map,
            pz=np.asarray(pairs["pz"], dtype=np.float64),
        )
        below = np.isfinite(acc) & (acc < min_acceptance)
        kept_w = inv_eff * inv_acc * ss_factor
        naive = below & (acc > 0)
        kept = kept_w[inv_acc > 0]
        lost = (inv_eff * ss_factor)[naive] / acc[naive]
        counts.update(
            acc_n_pairs=arep.n_pairs,
            acc_n_outside=arep.n_outside,
            acc_n_below_min=arep.n_below_min,
            acc_n_below_min_os=int((below & (q == 0)).sum()),
            acc_n_below_min_ss=int((below & (q != 0)).sum()),
            acc_n_zero=arep.n_zero_acceptance,
        )
        sums.update(
            lost_kept=float(np.sum(kept)),
            lost_kept2=float(np.sum(kept**2)),
            lost_lost=float(np.sum(lost)),
            lost_lost2=float(np.sum(lost**2)),
        )
        weight = kept_w
    else:
        acc, weight = np.ones(n), inv_eff * ss_factor
    # weight_raw = 1 (data): the products without it (and without 1/A = 1) are the same
    # numbers (1 · x = x)
    return acc, weight, counts, sums


def weight_chunk(
    pairs: Mapping[str, np.ndarray], spec: WeightSpec
) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, float]]:
    """The final columns of one chunk's pairs, with its report counts and sums.

    1/ε from the chunk's ``eff`` (weight 0 at ε = 0, counted), s = 1 (OS) or −R (SS; −1 for
    ``ss_weight: binwise``, which the driver multiplies by k_b), then :func:`pair_weights`,
    the same function the driver uses on the whole table; the driver raises on the summed
    counts as ``unfold.outside_map`` says.

    Arguments:
        pairs: :data:`~gammastar.selection.chunk.PAIR_COLUMNS` of the chunk (``eff`` looked up).
        spec: the weighting.

    Returns:
        ``(columns, counts, sums)``: the columns of ``pairs.parquet`` in its order, the
        :data:`WEIGHT_COUNTS` and the :data:`WEIGHT_SUMS`.
    """

    inv, rep = inverse_weights(pairs["eff"], n_outside=0, on_missing="drop")
    acceptance, moments = spec.acceptance, None
    if spec.moments:  # A and the moments from one interpolation cell per pair
        a, moments = acceptance.lookup_moments(
            pairs["m"], pairs["pT"], pairs["pz"], dtype=np.float32
        )
        acceptance = _AtPairs(a, acceptance.source)
    ss_factor = ss_pair_weights(
        np.asarray(pairs["m"], dtype=np.float64),
        np.asarray(pairs["charge"]),
        np.array([0.0, 1.0]),
        np.zeros(1),
        np.zeros(1),
        r=spec.r_factor,
        mode="constant",
    )
    acc, weight, acc_counts, sums = pair_weights(
        pairs,
        inv,
        ss_factor,
        acceptance=acceptance,
        min_acceptance=spec.min_acceptance,
        outside_map=spec.outside_map,
        conversion=spec.conversion,
    )
    counts = {"n_zero_efficiency": rep.n_zero, **acc_counts}
    out = {c: np.asarray(pairs["pT" if c == "qT" else c], dtype=t) for c, t in _DTYPES.items()}
    out["acc"] = acc
    out["weight_raw"] = np.ones(len(weight))
    out["weight"] = weight
    if moments is not None:
        out["_moments"] = moments
    return out, counts, sums


_DTYPES = {
    "event": np.int64,
    "m": np.float64,
    "qT": np.float64,
    "E": np.float64,
    "y": np.float64,
    "pT": np.float64,
    "charge": np.int8,
    "channel": np.int8,
    "pz": np.float64,
    "eff": np.float64,
    "cos_theta_hel": np.float64,
    "phi_hel": np.float64,
}
_FINAL_EXTRA = ("acc", "weight_raw", "weight")
"""Columns of ``pairs.parquet`` after :data:`_DTYPES`."""
