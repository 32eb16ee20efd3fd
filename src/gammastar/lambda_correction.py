r"""The measured λ_θ's selection bias, corrected with a detector simulation.

The selection fits λ_θ per reconstructed-mass bin (:mod:`gammastar.polarisation`). Where the
mass resolution depends on the decay angles, a reconstructed-mass bin selects its γ* by decay
angle: below the ω's peak window the bin holds the ω's low tail, made of asymmetric decays whose
soft muon scatters most, and the fit returns a λ_θ that is not that of the γ* of the bin's mass
(+0.14–0.16 too high in the NA60-like mock, docs/coverage.md, session 25;
``benchmarks/lambda_selection.py``). The per-pair acceptance at that λ_θ over-corrects the
fiducial yield. A detector simulation measures the fit's response per polarisation bin b. Its γ*
are fitted twice (:func:`gammastar.polarisation.measure`, the data's fit: weight 1, since the
simulation has no background and its efficiency is not applied):

* as the data are: reconstructed mass bins, kinematics and angles, inside the isotropic fiducial
  region at the reconstructed kinematics: λ_r(b);
* at the truth: true mass bins, the true γ*'s kinematics and the true decay angles, inside the
  fiducial region at the true kinematics: λ_t(b), the λ_θ of the γ* of mass in b inside F,
  which the per-pair acceptance needs (outside F the λ_θ of the Dalitz γ* differs: 0.05
  against 0.15 at 0.3–0.44 GeV in the mock).

Reweighted by their true decay angle, (1 + (λ_t + Δ) cos²θ*_true)/(1 + λ_t cos²θ*_true) (λ_t
of the row's true-mass bin), the same γ* stand for another truth; the fits at Δ = ±:data:`STEP`
give the response's slope s = Δλ_r/Δλ_t (above 1 where the bin selects by angle: the shift
grows with λ_θ). The data's λ_θ(b) corresponds to the truth

.. math:: \lambda_\theta^{\rm corr}(b) = \lambda_t(b) + \frac{\lambda_\theta(b) - \lambda_r(b)}{s(b)},

with the error (σ_data/s) ⊕ (σ_r/s) ⊕ σ_t (the two simulation fits share their γ* and are
positively correlated, so this over-states their part; the slope's own statistical error is left
out). It assumes the simulation's cocktail (how much ω tail a bin holds) and a response linear
over the distance from λ_t; λ_φ and λ_θφ, which the acceptance does not use, are left as
measured. The γ* of the simulation's tree are those its detector reconstructs, so the fit at the
truth sees the reconstructed selection's edges (a lepton that crosses an energy or angle cut);
``benchmarks/lambda_selection.py`` measures how far that is from the truth of every generated γ*.

:func:`read_simulation` reads the simulation (ROOT files in the mock's layout, DEVELOPERS.md
"Mock ntuple", the ``truth`` tree), :func:`selection_correction` measures the response,
:func:`corrected` applies it to a ``polarisation`` block.

References:
    docs/coverage.md, sessions 25–26; docs/selection.md, "Narrow peaks" (the bin edge that
    selects the decay angles through the resolution).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["LambdaCorrection", "corrected", "read_simulation", "selection_correction"]

RECO = ("m", "pT", "pz", "cos_theta_hel", "phi_hel")
"""The simulation tree's reconstructed columns (the data's ``pairs.parquet`` names)."""

TRUE = ("m_true", "pT_true", "pz_true", "cos_theta_hel_true", "phi_hel_true")
"""Its true columns, in the order of :data:`RECO`."""

METHOD = "simulation_truth + (lambda_theta - simulation_reco) / simulation_slope"

STEP = 0.2
"""The reweighted truth's shift ±Δ at which the response's slope is measured."""

MIN_SLOPE = 0.5
"""A bin whose fit responds to the truth by less (half as sensitive) is left as measured: the
inversion would blow its error up and rest on a response far from the unit one."""


def read_simulation(
    paths: Sequence[str | Path], *, tree: str = "truth"
) -> dict[str, NDArray[np.float64]]:
    """The γ* rows (:data:`RECO` and :data:`TRUE` columns) of ``unfold.polarisation_correction``'s
    files (η → μμ, combinatorial and non-finite rows dropped,
    :func:`gammastar.migration.read_simulation_arrays`).

    Raises:
        InputError: a file, tree or branch is missing or unreadable (naming it).
    """
    from gammastar.migration import read_simulation_arrays

    rows, _, _ = read_simulation_arrays(paths, tree=tree, histograms=(), columns=RECO + TRUE,
                                        key="unfold.polarisation_correction")  # fmt: skip
    return rows


@dataclass(frozen=True)
class LambdaCorrection:
    """Per polarisation bin the simulation's fit as the data's λ_r (``reco``), at the truth λ_t
    (``truth``), the response's slope s (NaN where a fit fails) and the fits' pairs."""

    mass_edges: NDArray[np.float64]
    reco: NDArray[np.float64]
    reco_err: NDArray[np.float64]
    truth: NDArray[np.float64]
    truth_err: NDArray[np.float64]
    slope: NDArray[np.float64]
    n_reco: NDArray[np.int64]

    @property
    def delta(self) -> NDArray[np.float64]:
        """The shift at the simulation's own truth, λ_r − λ_t."""
        return self.reco - self.truth

    def apply(
        self, lam: ArrayLike, err: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The truth λ_θ (and its 1σ) that a measured ``lam`` ± ``err`` corresponds to."""
        s = self.slope
        out = self.truth + (np.asarray(lam, dtype=np.float64) - self.reco) / s
        e = np.sqrt((np.asarray(err, np.float64) / s) ** 2 + (self.reco_err / s) ** 2
                    + self.truth_err**2)  # fmt: skip
        return out, e


def _side(rows, names, acceptance, edges, min_acceptance):
    """One side's fit input: the pairs mapping of :func:`~gammastar.polarisation.measure` for
    ``names`` (:data:`RECO` or :data:`TRUE`), the moments and the isotropic F indicator."""
    m, pt, pz, c, phi = (rows[k] for k in names)
    mom = acceptance.moments_at(m, np.hypot(pt, pz), np.arctan2(pt, pz))
    in_f = (np.clip(mom[0], 0.0, 1.0) >= min_acceptance).astype(np.float64)
    pairs = {"m": m, "pT": pt, "pz": pz, "cos_theta_hel": c, "phi_hel": phi,
             "charge": np.zeros(m.size, np.int8), "acc": np.ones(m.size)}  # fmt: skip
    return pairs, mom, in_f


def selection_correction(
    rows: dict[str, NDArray[np.float64]], acceptance: Any, edges: ArrayLike, min_acceptance: float
) -> LambdaCorrection:
    """λ_r, λ_t and the slope s of the module docstring in the bins ``edges``.

    Arguments:
        rows: :func:`read_simulation`.
        acceptance: the selection's :class:`~gammastar.pair_acceptance.PairAcceptance` (its
            moment tables; its isotropic A ≥ ``min_acceptance`` is the fits' fiducial region).
        edges: the data's polarisation bins (``polarisation.mass_edges``).
        min_acceptance: ``unfold.min_acceptance``.

    Returns:
        :class:`LambdaCorrection`.

    Example (a detector without cuts and resolution measures the truth: shift 0, slope 1):
        >>> import numpy as np
        >>> from gammastar.pair_acceptance import LeptonAcceptance, PairAcceptance
        >>> pa = PairAcceptance.build(LeptonAcceptance(0.0, 0.0, 3.1), lepton_mass=0.1057,
        ...     mass_range=(0.4, 0.6), p_max=100.0, grid=(3, 4, 5))
        >>> rng = np.random.default_rng(1); n = 100_000
        >>> reco = {"m": rng.uniform(0.4, 0.6, n), "pT": rng.uniform(0.2, 1.5, n),
        ...         "pz": rng.uniform(15.0, 40.0, n), "cos_theta_hel": rng.uniform(-1, 1, n),
        ...         "phi_hel": rng.uniform(-np.pi, np.pi, n)}
        >>> rows = reco | {t: reco[r] for r, t in zip(RECO, TRUE)}
        >>> d = selection_correction(rows, pa, [0.4, 0.6], 0.01)
        >>> float(d.delta[0]), round(float(d.slope[0]), 9)
        (0.0, 1.0)
    """
    from gammastar.polarisation import measure

    edges = np.asarray(edges, dtype=np.float64)

    def within(m):
        return (m >= edges[0]) & (m < edges[-1])

    k = within(rows["m"]) | within(rows["m_true"])
    sub = {c: v[k] for c, v in rows.items()}
    reco, mom_r, in_r = _side(sub, RECO, acceptance, edges, min_acceptance)
    true, mom_t, in_t = _side(sub, TRUE, acceptance, edges, min_acceptance)
    nominal_t = measure({**true, "weight": in_t}, acceptance, edges, moments=mom_t)
    # the reweighting to a truth λ_t + Δ: λ_t of each row's true-mass bin
    b = np.clip(np.searchsorted(edges, true["m"], side="right") - 1, 0, edges.size - 2)
    lam_t = np.nan_to_num(nominal_t.lambda_theta)[b]
    c2 = true["cos_theta_hel"] ** 2

    def fits(delta):
        w = (1.0 + (lam_t + delta) * c2) / (1.0 + lam_t * c2)
        return (measure({**reco, "weight": in_r * w}, acceptance, edges, moments=mom_r),
                measure({**true, "weight": in_t * w}, acceptance, edges, moments=mom_t))  # fmt: skip

    nominal_r = fits(0.0)[0]
    (up_r, up_t), (down_r, down_t) = fits(STEP), fits(-STEP)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (up_r.lambda_theta - down_r.lambda_theta) / (
            up_t.lambda_theta - down_t.lambda_theta
        )
    return LambdaCorrection(edges, nominal_r.lambda_theta, nominal_r.lambda_theta_err,
                            nominal_t.lambda_theta, nominal_t.lambda_theta_err, slope,
                            nominal_r.n_pairs)  # fmt: skip


def corrected(block: dict[str, Any], corr: LambdaCorrection) -> dict[str, Any]:
    """The ``polarisation`` block with λ_θ and its error corrected (:meth:`LambdaCorrection.apply`)
    where the simulation has both fits and a slope of at least :data:`MIN_SLOPE` (elsewhere as
    measured, listed in ``uncorrected_bins``); the measured values and the simulation's numbers
    under ``selection_correction``.

    Raises:
        ValueError: ``corr`` was measured on other bins than the block's.

    Example:
        >>> c = LambdaCorrection(np.array([0.4, 0.5, 0.6]), np.array([0.2, np.nan]),
        ...     np.array([0.03, np.nan]), np.array([0.05, 0.0]), np.array([0.04, 0.04]),
        ...     np.array([1.25, np.nan]), np.array([900, 10]))
        >>> b = corrected({"mass_edges": [0.4, 0.5, 0.6], "lambda_theta": [0.3, 0.1],
        ...                "lambda_theta_err": [0.12, 0.2]}, c)
        >>> [round(x, 3) for x in b["lambda_theta"]], [round(x, 3) for x in b["lambda_theta_err"]]
        ([0.13, 0.1], [0.107, 0.2])
        >>> b["selection_correction"]["uncorrected_bins"]
        [1]
    """
    edges = np.asarray(block["mass_edges"], dtype=np.float64)
    if edges.shape != corr.mass_edges.shape or not np.allclose(
        edges, corr.mass_edges, rtol=0, atol=1e-12
    ):
        raise ValueError("the λ_θ correction was measured on other mass bins than the block's")

    def arr(key):
        return np.array([np.nan if x is None else x for x in block[key]], dtype=np.float64)

    lam, err = arr("lambda_theta"), arr("lambda_theta_err")
    new, new_err = corr.apply(lam, err)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(corr.reco) & np.isfinite(corr.truth) & (corr.slope >= MIN_SLOPE)

    def lst(x):
        return [float(v) for v in x]

    out = dict(block)
    out["lambda_theta"] = lst(np.where(ok, new, lam))
    out["lambda_theta_err"] = lst(np.where(ok, new_err, err))
    out["selection_correction"] = {
        "method": METHOD,
        "lambda_theta_measured": lst(lam),
        "lambda_theta_measured_err": lst(err),
        "simulation_reco": lst(corr.reco),
        "simulation_reco_err": lst(corr.reco_err),
        "simulation_truth": lst(corr.truth),
        "simulation_truth_err": lst(corr.truth_err),
        "simulation_slope": lst(corr.slope),
        "step": STEP,
        "simulation_pairs": [int(n) for n in corr.n_reco],
        "uncorrected_bins": [int(i) for i in np.flatnonzero(~ok)],
    }
    return out
