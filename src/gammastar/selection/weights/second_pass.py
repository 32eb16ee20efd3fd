"""The second pass of the selection: per-mass-bin factors that need every chunk.

Two weight factors depend on the whole sample: the like-sign factor k_b of
``background.ss_weight: binwise`` (or a mixed-event R), from the summed N++, N−− per mass
bin, and the scale 1 − (predicted η → μμ peak)/(unfolded yield) of
``background.remove_eta_mumu: rate``, from the summed unfolded yield per mass bin. The chunks
weigh their pairs with everything else (SS pairs at −1 where k_b applies) and return the
per-bin sums (:func:`mass_sums`); the driver turns the summed histograms into the factor
table (:func:`plan`, a :class:`Reweight`), and each chunk's pairs are multiplied by their bin's
factors (:meth:`Reweight.weights`): on the workers, each rewriting the ``weight`` column of
its own part of the pair dataset (:func:`reweight_part`), or in memory on the single-process
executor (:func:`reweight_columns`). Both return the chunk's unfolded histograms, which the
driver adds in chunk order: the same numbers on every executor.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.core import urls
from gammastar.selection.pairhists import HistAxes, unfolded_histograms
from gammastar.selection.writer import Packed, unpack

if TYPE_CHECKING:
    import hist


def rescale_like_sign(
    m: np.ndarray, charge: np.ndarray, weight: np.ndarray, edges: np.ndarray, factor: np.ndarray
) -> np.ndarray:
    """SS pairs' chunk weights (like-sign factor −1, ``ss_weight: binwise``) times the
    like-sign factor k_b of their mass bin; OS weights unchanged. The same numbers bit for
    bit as weighting with −k_b directly ((x·(−1))·k = x·(−k) in IEEE arithmetic).

    Example:
        >>> rescale_like_sign(np.array([0.5, 1.5, 0.5]), np.array([2, -2, 0]),
        ...                   np.array([-2.0, -1.0, 3.0]), np.array([0.0, 1.0, 2.0]),
        ...                   np.array([0.5, 0.9])).tolist()
        [-1.0, -0.9, 3.0]
    """
    ss = np.flatnonzero(np.asarray(charge) != 0)
    factor = np.asarray(factor, dtype=np.float64)
    idx = np.searchsorted(edges, np.asarray(m)[ss], side="right") - 1
    np.clip(idx, 0, factor.size - 1, out=idx)
    out = np.array(weight, dtype=np.float64, copy=True)
    out[ss] *= factor[idx]
    return out


def mass_sums(
    m: np.ndarray, charge: np.ndarray, weight: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """Σ weight per mass bin of the OS pairs (row 0) and of the SS pairs (row 1) of a chunk:
    what the η → μμ ``rate`` removal needs of it (the unfolded yield per bin once the SS sums
    carry k_b).

    Example:
        >>> mass_sums(np.array([0.5, 1.5, 0.5]), np.array([0, 2, 0]), np.array([1.0, -2.0, 3.0]),
        ...           np.array([0.0, 1.0, 2.0])).tolist()
        [[4.0, 0.0], [0.0, -2.0]]
    """
    m, w = np.asarray(m), np.asarray(weight, dtype=np.float64)
    os_ = np.asarray(charge) == 0
    return np.stack(
        [np.histogram(m[sel], bins=edges, weights=w[sel])[0] for sel in (os_, ~os_)]
    )


@dataclass(frozen=True)
class Reweight:
    """The per-mass-bin factors of the second pass (picklable: plain arrays).

    Arguments:
        edges: the mass axis's edges.
        ss_factor: k_b per mass bin, multiplying the SS pairs' chunk weights (``None``: the
            chunks' SS factor is final, ``ss_weight: constant``).
        scale: the η → μμ ``rate`` scale per mass bin, multiplying every pair (``None``: no
            rate removal).
        axes: the histograms' binning.
    """

    edges: np.ndarray
    ss_factor: np.ndarray | None
    scale: np.ndarray | None
    axes: HistAxes

    def weights(self, m: np.ndarray, charge: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The final weights of a chunk's pairs from their chunk weights."""
        return self._weights(m, charge, weight)[1]

    def _weights(
        self, m: np.ndarray, charge: np.ndarray, weight: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(weights with k_b, final weights)``."""
        out = np.asarray(weight, dtype=np.float64)
        if self.ss_factor is not None:
            out = rescale_like_sign(m, charge, out, self.edges, self.ss_factor)
        if self.scale is None:
            return out, out
        idx = np.searchsorted(self.edges, m, side="right") - 1
        np.clip(idx, 0, self.scale.size - 1, out=idx)
        return out, out * self.scale[idx]

    def apply(self, cols: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, Any], float]:
        """``(final weights, unfolded histograms, Σ weight taken out by the rate scale)`` of
        one chunk (columns ``m``, ``qT`` (or ``pT``), ``E``, ``charge``, ``weight``)."""
        m, charge = np.asarray(cols["m"]), np.asarray(cols["charge"])
        with_k, new = self._weights(m, charge, cols["weight"])
        # what the rate scale took out (predicted vs removed: select.json eta_mumu)
        removed = float(np.sum(with_k - new)) if self.scale is not None else 0.0
        qt = cols["qT"] if "qT" in cols else cols["pT"]
        hists = unfolded_histograms(self.axes, {"m": m, "qT": qt, "E": cols["E"], "weight": new})
        return new, hists, removed


def reweight_columns(
    rw: Reweight, chunks: Mapping[Any, dict[str, np.ndarray]]
) -> tuple[dict[str, Any] | None, float]:
    """The second pass on chunks held in memory (single process): each chunk's ``weight``
    replaced, in key order; returns the summed unfolded histograms and the rate's removed
    Σ weight."""
    results = []
    for key in sorted(chunks):
        c = chunks[key]
        if not len(c.get("m", ())):
            continue
        c["weight"], hists, removed = rw.apply(c)
        results.append((hists, removed))
    return combine(results)


def reweight_part(rw: Reweight, path: str) -> Packed:
    """The second pass on one part of the pair dataset (run where the part was written: a
    worker): its ``weight`` column replaced in the file
    (:func:`gammastar.core.parquet.replace_column`: the other columns are not re-encoded);
    returns its unfolded histograms and the rate's removed Σ weight (compressed for the way
    to the driver)."""
    if urls.is_url(path):
        return _reweight_remote_part(rw, path)
    import pyarrow.parquet as pq

    from gammastar.core.parquet import replace_column

    pf = pq.ParquetFile(path)
    sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    table = pf.read(columns=["m", "qT", "E", "charge", "weight"])
    pf.close()
    cols = {c: table.column(c).to_numpy() for c in table.column_names}
    new, hists, removed = rw.apply(cols)
    bounds = np.cumsum([0, *sizes])
    replace_column(path, "weight", [new[a:b] for a, b in itertools.pairwise(bounds)])
    return Packed((hists, removed))


def _reweight_remote_part(rw: Reweight, url: str) -> Packed:
    """:func:`reweight_part` on a part at a URL (``selection.pairs_url``): its bytes copied to a
    local temporary file, rewritten there the same way (so the part's bytes are those of the
    local dataset's), and written back whole (:func:`gammastar.core.urls.write_bytes`)."""
    import tempfile

    fs, path = urls.filesystem(url)
    with tempfile.TemporaryDirectory(prefix=".gammastar-reweight-") as tmp:
        local = os.path.join(tmp, "part.parquet")
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out = reweight_part(rw, local)
        with open(local, "rb") as fh:
            urls.write_bytes(url, fh.read())
    return out


def reweight_parts(
    rw: Reweight,
    paths: Sequence[str],
    mapper: Callable[[Callable[[str], Any], Sequence[str]], list[Any]],
) -> tuple[dict[str, Any] | None, float]:
    """The second pass over the parts ``paths`` (in chunk order), each a task of ``mapper``
    (``mapper(fn, items)`` → results in item order: the executor's workers); returns the
    summed unfolded histograms and the rate's removed Σ weight."""
    import functools

    return combine(mapper(functools.partial(reweight_part, rw), list(paths)))


def combine(results: Sequence[Any]) -> tuple[dict[str, Any] | None, float]:
    """The chunks' unfolded histograms and removed sums (``(hists, removed)``, or
    :class:`~gammastar.selection.writer.Packed`) added in chunk order (the same additions on
    every executor)."""
    total: dict[str, hist.Hist] | None = None
    removed = 0.0
    for hists, r in map(unpack, results):
        if total is None:
            total = {k: h.copy() for k, h in hists.items()}
        else:
            for k, h in hists.items():
                total[k] += h
        removed += r
    return total, removed


def plan(
    edges: np.ndarray,
    axes: HistAxes,
    *,
    ss_factor: np.ndarray | None,
    sums: np.ndarray | None,
    rate: Mapping[str, Any] | None,
) -> tuple[Reweight | None, dict[str, Any]]:
    """The factor table of the second pass from the accumulated histograms.

    Arguments:
        edges: the mass axis's edges.
        axes: the histograms' binning.
        ss_factor: k_b per mass bin for the SS pairs (``None``: their chunk weight is final).
        sums: the summed :func:`mass_sums` of the chunks (OS, SS Σ weight per bin); needed
            with ``rate``.
        rate: ``background.remove_eta_mumu: rate`` settings (``dalitz_window``, ``sigma``) of
            :func:`gammastar.corrections.background.eta_mumu_rate_peak`; ``None``: no rate
            removal.

    Returns:
        ``(Reweight or None when nothing is to do, the rate's report: n_eta_dalitz,
        n_eta_mumu_predicted)``.
    """
    from gammastar.corrections.background import eta_mumu_rate_peak

    scale, report = None, {}
    if rate is not None:
        if sums is None:
            raise ValueError("the rate removal needs the chunks' per-bin sums")
        ss = sums[1] if ss_factor is None else sums[1] * np.asarray(ss_factor)
        unf = sums[0] + ss  # the unfolded yield per bin with the final SS factors
        peak, n_dal, n_mumu = eta_mumu_rate_peak(
            edges, unf, dalitz_window=tuple(rate["dalitz_window"]), sigma=rate["sigma"]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(unf > 0, np.clip(1.0 - peak / unf, 0.0, None), 1.0)
        report = {"n_eta_dalitz": n_dal, "n_eta_mumu_predicted": n_mumu}
    if ss_factor is None and scale is None:
        return None, report
    sf = None if ss_factor is None else np.asarray(ss_factor, dtype=np.float64)
    return Reweight(np.asarray(edges, dtype=np.float64), sf, scale, axes), report


__all__ = [
    "Reweight",
    "combine",
    "mass_sums",
    "plan",
    "rescale_like_sign",
    "reweight_columns",
    "reweight_part",
    "reweight_parts",
]
