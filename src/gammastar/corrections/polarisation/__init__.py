r"""The lepton decay angular distribution of the γ*, measured from the data.

In the γ* helicity frame (z along the pair's lab momentum, y along beam × z, x = y × z; the
rest frame reached by a pure boost) the decay of a spin-1 state into two leptons is

.. math:: W(\cos\theta^*, \phi^*) \propto 1 + \lambda_\theta\cos^2\theta^*
          + \lambda_\phi\sin^2\theta^*\cos 2\phi^* + \lambda_{\theta\phi}\sin 2\theta^*\cos\phi^*.

The spectrometer sculpts the angles, so they are fitted with the **acceptance-aware
conditional likelihood** of each pair's angles given its kinematics (m, p, θ):

.. math:: P(\Omega^* \mid m, p, \theta) = \frac{W(\Omega^*)\,a(\Omega^*; m, p, \theta)}
          {\langle a\rangle + \lambda_\theta\langle c^2 a\rangle + \lambda_\phi\langle s^2
          \cos 2\phi\, a\rangle + \lambda_{\theta\phi}\langle \sin 2\theta\cos\phi\, a\rangle},

where a is the pair's pass probability and ⟨·⟩ the averages over the uniform decay sphere,
the moment tables of :class:`gammastar.corrections.pair_acceptance.table.PairAcceptance`
(a(Ω*) itself does not depend on the λ and drops out). The production spectrum cancels, so
the fit needs no model of it. Each pair enters with its efficiency-corrected, like-sign-subtracting weight (OS
1/ε, SS −k_b/ε: ``weight · acc`` of ``pairs.parquet``); the errors are the sandwich
covariance of the weighted likelihood, H⁻¹ (Σ w² g gᵀ) H⁻¹, which is right for weights of
both signs. Fitted per mass bin (equal numbers of OS pairs).

This module offers the per-bin measurement, :func:`measure` (:class:`Polarisation`, written
to ``select.json`` and ``yields.json`` → ``polarisation``), and its reading back
(:func:`read_polarisation`, :func:`lambda_for_acceptance`). The pieces, one concern each:

* :mod:`~gammastar.corrections.polarisation.angles`: the pair's helicity angles, the angular
  functions of W and the generator's truth λ from their moments;
* :mod:`~gammastar.corrections.polarisation.fit`: the weighted likelihood fit of the λ of
  one sample with its sandwich covariance;
* :mod:`~gammastar.corrections.polarisation.edges`: the mass bins (equal counts, kept clear of
  the narrow resonances).

References:
    P. Faccioli, C. Lourenço, J. Seixas, H. Wöhri, Eur. Phys. J. C 69 (2010) 657 (frames,
    the general form of W and its positivity);
    C. Langenbruch, Eur. Phys. J. C 82 (2022) 393 (uncertainties of weighted unbinned
    maximum-likelihood fits: the sandwich estimator);
    NA60, Phys. Rev. Lett. 102 (2009) 222301 (λ, μ, ν of low-mass dimuons in the
    Collins–Soper frame, the same acceptance-corrected angular analysis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.corrections.polarisation.angles import angular_functions
from gammastar.corrections.polarisation.fit import fit_lambdas
from gammastar.errors import InputError

__all__ = [
    "FRAME",
    "MIN_PAIRS",
    "Polarisation",
    "lambda_for_acceptance",
    "measure",
    "read_polarisation",
]

FRAME = "helicity"
METHOD = (
    "per mass bin, acceptance-aware conditional likelihood of the helicity-frame decay angles "
    "given each pair's (m, p, theta) (moment tables of the per-pair acceptance), pairs weighted "
    "weight*acc (OS 1/eff, SS -k_b/eff), sandwich covariance"
)
MIN_PAIRS = 200
"""Fewer OS pairs than this in a bin: no measurement (NaN)."""
PARAMS = ("lambda_theta", "lambda_phi", "lambda_theta_phi")


@dataclass(frozen=True)
class Polarisation:
    """λ_θ, λ_φ, λ_θφ per mass bin (helicity frame) with their 1σ errors (NaN: no fit)."""

    mass_edges: NDArray[np.float64]
    lambda_theta: NDArray[np.float64]
    lambda_theta_err: NDArray[np.float64]
    lambda_phi: NDArray[np.float64]
    lambda_phi_err: NDArray[np.float64]
    lambda_theta_phi: NDArray[np.float64]
    lambda_theta_phi_err: NDArray[np.float64]
    n_pairs: NDArray[np.int64]
    n_eff: NDArray[np.float64]
    used_in_acceptance: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The ``polarisation`` block of ``select.json`` / ``yields.json`` (NaN → null by
        :func:`gammastar.core.artifacts.json_text`)."""

        def lst(x):
            return [float(v) for v in np.asarray(x, dtype=np.float64)]

        return {
            "frame": FRAME,
            "mass_edges": lst(self.mass_edges),
            "lambda_theta": lst(self.lambda_theta),
            "lambda_theta_err": lst(self.lambda_theta_err),
            "lambda_phi": lst(self.lambda_phi),
            "lambda_phi_err": lst(self.lambda_phi_err),
            "lambda_theta_phi": lst(self.lambda_theta_phi),
            "lambda_theta_phi_err": lst(self.lambda_theta_phi_err),
            "n_pairs": [int(n) for n in self.n_pairs],
            "n_eff": lst(self.n_eff),
            "method": METHOD,
            "used_in_acceptance": bool(self.used_in_acceptance),
        }


def measure(
    pairs: Any,
    acceptance: Any,
    edges: ArrayLike,
    *,
    used_in_acceptance: bool = False,
    min_pairs: int = MIN_PAIRS,
    moments: NDArray[np.float64] | None = None,
) -> Polarisation:
    """λ_θ, λ_φ, λ_θφ per mass bin from the pairs (helicity frame).

    Each pair's bin is the number of edges at or below its mass, less one (``searchsorted``'s
    bin, by comparisons: 2-byte integers, 5× less memory and a third of the time on 2·10⁶
    pairs), −1 for a pair without a fit weight; each bin's pairs are then found in that
    small array.

    Arguments:
        pairs: mapping with the ``pairs.parquet`` columns ``m``, ``pT``, ``pz``, ``charge``,
            ``cos_theta_hel``, ``phi_hel``, ``weight``, ``acc``.
        acceptance: the :class:`~gammastar.corrections.pair_acceptance.table.PairAcceptance`
            of the selection (its moment tables).
        edges: mass bin edges.
        used_in_acceptance: recorded (whether the selection's weights follow this λ_θ).
        min_pairs: fewer OS pairs with weight in a bin: NaN there.
        moments: (4, n) the acceptance's moments at every pair (``acceptance.moments_at``
            of their (m, p, θ)) when already computed (a measured λ_θ computes them for its
            isotropic weights; the chunks with A, as a list of (4, n_i) blocks, the pairs in
            order): taken instead of looking them up per bin, the same numbers
            (float64; or float32,
            :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.pair_moments`:
            gathered in it, the fit in float64 from them).

    Returns:
        :class:`Polarisation`.
    """
    edges = np.asarray(edges, dtype=np.float64)
    col = {k: np.asarray(pairs[k]) for k in ("m", "pT", "pz", "charge", "weight", "acc")}
    c = np.asarray(pairs["cos_theta_hel"], dtype=np.float64)
    ph = np.asarray(pairs["phi_hel"], dtype=np.float64)
    # the efficiency-corrected, like-sign-subtracting weight (the acceptance is in the fit)
    w_all = col["weight"] * col["acc"]
    nb = edges.size - 1
    out = {k: np.full(nb, np.nan) for k in PARAMS}
    err = {k: np.full(nb, np.nan) for k in PARAMS}
    n_pairs = np.zeros(nb, dtype=np.int64)
    n_eff = np.zeros(nb)
    idx = np.full(w_all.shape, -1, dtype=np.int16 if nb < 2**15 - 1 else np.int64)
    for e in edges:  # NaN: in no bin
        idx += col["m"] >= e
    unused = w_all == 0
    unused |= ~np.isfinite(w_all)
    unused |= ~np.isfinite(c)
    unused |= ~np.isfinite(ph)
    idx[unused] = -1
    for b in range(nb):
        k = np.flatnonzero(idx == b)
        n_pairs[b] = int(np.count_nonzero(_at(col["charge"], k) == 0))
        w = _at(w_all, k)
        n_eff[b] = float(w.sum() ** 2 / np.sum(w**2)) if k.size else 0.0
        if n_pairs[b] < min_pairs:
            continue
        if moments is not None:
            mom = _rows(moments, k)
        else:
            pt_k, pz_k = _at(col["pT"], k), _at(col["pz"], k)  # gathered once for both
            mom = acceptance.moments_at(
                _at(col["m"], k), np.hypot(pt_k, pz_k), np.arctan2(pt_k, pz_k)
            )
        ok = mom[0] > 0
        if not ok.all():
            k, mom, w = k[ok], mom[:, ok], w[ok]
        u = angular_functions(_at(c, k), _at(ph, k))
        try:
            lam, cov = fit_lambdas(u, mom[0], mom[1:], w, n_params=3)
        except ValueError:
            continue
        for i, name in enumerate(PARAMS):
            out[name][b] = lam[i]
            err[name][b] = float(np.sqrt(cov[i, i]))
    return Polarisation(
        edges, out["lambda_theta"], err["lambda_theta"], out["lambda_phi"], err["lambda_phi"],
        out["lambda_theta_phi"], err["lambda_theta_phi"], n_pairs, n_eff, used_in_acceptance,
    )  # fmt: skip


def _at(a: NDArray[Any], k: NDArray[np.intp]) -> NDArray[Any]:
    """The rows ``k`` of ``a`` (rows of it: take's mode "clip" gives ``a[k]`` without the
    bounds check)."""
    return a.take(k, mode="clip")


def _rows(table: Any, k: NDArray[np.intp]) -> NDArray[np.float64]:
    """The columns ``k`` (ascending) of a (rows, n) table, gathered row by row (1-d gathers:
    faster than ``table[:, k]``), in the table's dtype. A transposed view of rows
    (:attr:`~gammastar.corrections.pair_acceptance.table.PairMoments.values`): one gather of
    the rows (a transposed view of them returned). A list of (rows, n_i) blocks, the table's
    columns in order (per chunk): each block's share of ``k`` gathered from it (the blocks
    are not joined first, a copy of the whole table). ``k`` are columns of the table: mode
    "clip" takes the same values as "raise", which gathers into ``out`` through a buffer
    (slower)."""
    if isinstance(table, list):
        out = np.empty((table[0].shape[0], k.size), dtype=table[0].dtype)
        at = lo = 0  # the block's first column; its first position in k
        for part in table:
            hi = int(np.searchsorted(k, at + part.shape[1]))
            if hi > lo:
                kk = k[lo:hi] - at
                for r in range(part.shape[0]):
                    part[r].take(kk, out=out[r, lo:hi], mode="clip")
            at, lo = at + part.shape[1], hi
        return out
    if table.T.flags.c_contiguous and not table.flags.c_contiguous:
        return table.T.take(k, axis=0, mode="clip").T
    out = np.empty((table.shape[0], k.size), dtype=table.dtype)
    for r in range(table.shape[0]):
        table[r].take(k, out=out[r], mode="clip")
    return out


def read_polarisation(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``polarisation`` block of ``<run_dir>/select.json`` (``None`` when absent)."""
    path = Path(run_dir) / "select.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("polarisation")


def lambda_for_acceptance(block: dict[str, Any], source: str) -> tuple[NDArray, NDArray]:
    """(mass edges, λ_θ per bin) from a ``polarisation`` block, for the acceptance.

    Raises:
        InputError: the block has no usable λ_θ (naming ``source``).
    """
    edges = np.asarray(block.get("mass_edges") or [], dtype=np.float64)
    lam = np.array([np.nan if x is None else x for x in block.get("lambda_theta") or []])
    if edges.size < 2 or lam.size != edges.size - 1 or not np.any(np.isfinite(lam)):
        raise InputError(
            f"{source}: unfold.decay_lambda_theta is 'measured' but the polarisation "
            f"measurement has no valid mass bin (it needs {MIN_PAIRS} opposite-sign pairs "
            "inside the fiducial region); give a number instead"
        )
    return edges, lam
