r"""The measured λ_θ's selection bias, corrected with a detector simulation.

The selection fits λ_θ per reconstructed-mass bin (:mod:`gammastar.corrections.polarisation`). Where the
mass resolution depends on the decay angles, a reconstructed-mass bin selects its γ* by decay
angle: below the ω's peak window the bin holds the ω's low tail, made of asymmetric decays whose
soft muon scatters most, and the fit returns a λ_θ that is not that of the γ* of the bin's mass
(too high in the NA60-like mock: docs/validation/uncertainties-and-coverage.md, docs/explanation/method.md). The per-pair acceptance at that λ_θ over-corrects the
fiducial yield. A detector simulation measures the fit's response per polarisation bin b. Its γ*
are fitted twice (:func:`gammastar.corrections.polarisation.measure`, the data's fit: weight 1, since the
simulation has no background and its efficiency is not applied):

* as the data are: reconstructed mass bins, kinematics and angles, inside the isotropic fiducial
  region at the reconstructed kinematics: λ_r(b);
* at the truth: true mass bins, the true γ*'s kinematics and the true decay angles, inside the
  fiducial region at the true kinematics: λ_t(b), the λ_θ of the γ* of mass in b inside F,
  which the per-pair acceptance needs (outside F the λ_θ of the Dalitz γ* of the
  mock differs).

Reweighted by their true decay angle, (1 + (λ_t + Δ) cos²θ*_true)/(1 + λ_t cos²θ*_true) (λ_t of
the row's true-mass bin; a γ* of true mass outside the bins, which the resolution brings into
the first or last, with the nearest), the same γ* stand for a truth higher by Δ in every bin; the
fits at Δ = ±:data:`STEP` give the response's slope s = Δλ_r/Δλ_t (above 1 where the bin selects
by angle: the shift grows with λ_θ). The data's λ_θ corresponds to the truth

.. math:: \lambda_\theta^{\rm corr}(b) = \lambda_t(b) + \frac{\lambda_\theta(b) - \lambda_r(b)}{s(b)},

with the error (σ/s) ⊕ (σ_r/s) ⊕ σ_t (the two simulation fits share their γ* and are positively
correlated, so this over-states their part; the slope's own statistical error is left out). It
assumes the simulation's cocktail (how much ω tail a bin holds), a response linear over the
distance from λ_t, and a λ_θ(m) whose neighbouring bins move together: the bin below the ω takes
a quarter of its response from the ω's bin and a quarter from the bin below it (the response
matrix of the NA60-like mock, docs/explanation/method.md), so an ω polarised otherwise than the simulation's is booked partly as that
bin's own truth (``tests/test_lambda_correction.py``: a polarised ω in data isotropic
elsewhere, against an isotropic simulation, leaves the bin below it near, not at, its truth).
Inverting the whole matrix instead would remove that, at the price of amplifying the data's
errors (the matrix's diagonal is well below 1 in that bin); λ_φ and λ_θφ, which the
acceptance does not use, are left as measured. The γ* of the simulation's reconstructed tree are
those its detector reconstructs, so a fit at their truth sees the reconstructed selection's edges
(a lepton whose reconstructed momentum crosses an energy or angle cut): below the truth
of every generated γ* in the NA60-like mock (docs/explanation/method.md). A generator-level tree
(``generated``, :func:`read_generated`: every γ* whose true leptons pass the detector's cuts,
reconstructed or not, the mock's ``truth_generated``) removes that: the truth side then fits
those rows, each weighted by the probability that the analysis's lepton cuts accept it at its
truth (:func:`generated_weight`). The simulation's rows are those its detector accepts: its
cuts (and the generated tree's preselection) must be at least as loose as the analysis's lepton
cuts, which the fits' acceptance applies.

:func:`read_simulation` reads the simulation (ROOT files in the mock's layout, DEVELOPERS.md
"Mock ntuple", the ``truth`` tree; :func:`read_generated` its ``truth_generated`` tree),
:func:`selection_correction` measures the response,
:func:`corrected` applies it to a ``polarisation`` block.

References:
    docs/validation/uncertainties-and-coverage.md; docs/explanation/method.md, "Narrow peaks" (the bin edge that selects the
    decay angles through the resolution).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.corrections.migration import read_simulation_arrays
from gammastar.corrections.polarisation import measure
from gammastar.errors import InputError

__all__ = [
    "LambdaCorrection",
    "ResponseFits",
    "corrected",
    "fit_inputs",
    "generated_weight",
    "read_generated",
    "read_simulation",
    "selection_correction",
]

RECO = ("m", "pT", "pz", "cos_theta_hel", "phi_hel")
"""The simulation tree's reconstructed columns (the data's ``pairs.parquet`` names)."""

TRUE = ("m_true", "pT_true", "pz_true", "cos_theta_hel_true", "phi_hel_true")
"""Its true columns, in the order of :data:`RECO`."""

GENERATED = (*TRUE, "E_plus_true", "theta_plus_true", "E_minus_true", "theta_minus_true")
"""The generator-level tree's columns: :data:`TRUE` and the true energy and polar angle of the
positive and of the negative lepton (the mock's ``truth_generated``, DEVELOPERS.md)."""

METHOD = "simulation_truth + (lambda_theta - simulation_reco) / simulation_slope"

STEP = 0.2
"""The reweighted truth's shift ±Δ at which the response's slope is measured."""

MIN_SLOPE = 0.5
"""A bin whose fit responds to its own truth by less (half as sensitive) is left as measured:
the inversion would blow its error up and rest on a response far from the unit one."""

MAX_SIMULATION_SHARE = 0.25
"""Above this share of a corrected λ_θ's variance from the simulation's own statistics, the
selection warns: every analysis of the same simulation shares its fluctuation (it does not
average out over data sets), so the simulation should be several times the data (at 0.25 its
error is 0.58 of the data's). On the NA60-like mock two simulations of 4·10⁷ sources differ by
0.04 in their shift below the ω (+0.25 and +0.21; two data samples' own: +0.19 and +0.14;
docs/explanation/method.md, "The simulation's own statistics")."""


def read_simulation(
    paths: Sequence[str | Path], *, tree: str = "truth"
) -> dict[str, NDArray[np.float64]]:
    """The γ* rows (:data:`RECO` and :data:`TRUE` columns) of ``unfold.polarisation_correction``'s
    files (η → μμ, combinatorial and non-finite rows dropped,
    :func:`gammastar.corrections.migration.read_simulation_arrays`).

    Raises:
        InputError: a file, tree or branch is missing or unreadable (naming it).
    """

    rows, _, _ = read_simulation_arrays(paths, tree=tree, histograms=(), columns=RECO + TRUE,
                                        key="unfold.polarisation_correction")  # fmt: skip
    return rows


def read_generated(paths: Sequence[str | Path], *, tree: str) -> dict[str, NDArray[np.float64]]:
    """The generator-level γ* rows (:data:`GENERATED` columns) of the simulation files' ``tree``
    (``unfold.polarisation_correction.generated_tree``; η → μμ, combinatorial and non-finite
    rows dropped).

    Raises:
        InputError: a file, tree or branch is missing or unreadable (naming it).
    """

    rows, _, _ = read_simulation_arrays(paths, tree=tree, histograms=(), columns=GENERATED,
                                        key="unfold.polarisation_correction.generated_tree")  # fmt: skip
    return rows


@dataclass(frozen=True)
class LambdaCorrection:
    """Per polarisation bin the simulation's fit as the data's λ_r (``reco``), at the truth λ_t
    (``truth``) with their errors, the response's slope s (NaN where a fit fails) and the reco
    fits' pairs."""

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

    def usable(self) -> NDArray[np.bool_]:
        """Bins the simulation corrects: both fits and a slope of at least :data:`MIN_SLOPE`."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.reco) & np.isfinite(self.truth) & (self.slope >= MIN_SLOPE)

    def apply(
        self, lam: ArrayLike, err: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """The truth λ_θ (and its 1σ) that a measured ``lam`` ± ``err`` corresponds to, in the
        :meth:`usable` bins where the data have a value (the third array); the others as given."""
        lam = np.asarray(lam, dtype=np.float64)
        err = np.asarray(err, dtype=np.float64)
        ok = self.usable() & np.isfinite(lam) & np.isfinite(err)
        s = np.where(ok, self.slope, 1.0)
        out = np.where(ok, self.truth + (lam - self.reco) / s, lam)
        e = np.sqrt((err / s) ** 2 + self._simulation_variance(s))
        return out, np.where(ok, e, err), ok

    def _simulation_variance(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        """The simulation's part of the corrected λ_θ's variance, (σ_r/s)² + σ_t²."""
        return (self.reco_err / s) ** 2 + self.truth_err**2

    def simulation_share(self, lam: ArrayLike, err: ArrayLike) -> NDArray[np.float64]:
        """Per bin, the share of the corrected λ_θ's variance (:meth:`apply` of ``lam`` ±
        ``err``) that the simulation's own statistics make; NaN in the bins it leaves as
        measured."""
        _, e, ok = self.apply(lam, err)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = self._simulation_variance(np.where(ok, self.slope, 1.0)) / e**2
        return np.where(ok, share, np.nan)

    @classmethod
    def from_block(cls, block: dict[str, Any]) -> LambdaCorrection:
        """The correction a ``polarisation`` block's ``selection_correction`` records (to apply it
        to another fit on the same bins, e.g. a bootstrap replica's)."""
        sc = block["selection_correction"]

        def arr(key):
            return np.array([np.nan if x is None else x for x in sc[key]], dtype=np.float64)

        return cls(np.asarray(block["mass_edges"], dtype=np.float64), arr("simulation_reco"),
                   arr("simulation_reco_err"), arr("simulation_truth"), arr("simulation_truth_err"),
                   arr("simulation_slope"), np.asarray(sc["simulation_pairs"], dtype=np.int64))  # fmt: skip


def fit_inputs(rows, names, acceptance, min_acceptance):
    """One side's fit input from the simulation ``rows``: the pairs mapping of
    :func:`~gammastar.corrections.polarisation.measure` for ``names`` (:data:`RECO` or :data:`TRUE`), the
    acceptance's moments at them and the isotropic F indicator (1 inside, 0 outside)."""
    m, pt, pz, c, phi = (rows[k] for k in names)
    mom = acceptance.moments_at(m, np.hypot(pt, pz), np.arctan2(pt, pz))
    in_f = (np.clip(mom[0], 0.0, 1.0) >= min_acceptance).astype(np.float64)
    pairs = {"m": m, "pT": pt, "pz": pz, "cos_theta_hel": c, "phi_hel": phi,
             "charge": np.zeros(m.size, np.int8), "acc": np.ones(m.size)}  # fmt: skip
    return pairs, mom, in_f


def _fit(side, acceptance, edges, w):
    """:func:`~gammastar.corrections.polarisation.measure` of one side (:func:`fit_inputs`) with the rows
    weighted by ``w`` inside F."""

    pairs, mom, in_f = side
    return measure({**pairs, "weight": in_f * w}, acceptance, edges, moments=mom)


def generated_weight(rows: dict[str, NDArray[np.float64]], acceptance: Any) -> NDArray[np.float64]:
    """Each generator-level row's probability that the analysis's lepton cuts accept both its
    leptons at their true energies and polar angles (``acceptance.lepton``,
    :meth:`~gammastar.corrections.pair_acceptance.lepton.LeptonAcceptance.probability`): the fit's acceptance
    model then describes the rows exactly."""
    lep, m_l = acceptance.lepton, acceptance.lepton_mass
    w = np.ones(rows["E_plus_true"].size)
    for e, th in (("E_plus_true", "theta_plus_true"), ("E_minus_true", "theta_minus_true")):
        p = np.sqrt(np.maximum(rows[e] ** 2 - m_l**2, 0.0))
        w *= lep.probability(rows[e], rows[th], p)
    return w


@dataclass(frozen=True)
class ResponseFits:
    """The simulation's γ* in ``edges`` ready for both fits (:func:`fit_inputs`), their nominal
    fits, and the reweighting of the module docstring (:meth:`weight`): what
    :func:`selection_correction` and the response matrix of docs/explanation/method.md share.
    The truth side's rows are the reconstructed γ* (``generated`` not given) or the
    generator-level ones, each weighted by the probability that the analysis's lepton cuts
    accept it at its truth (:func:`generated_weight`)."""

    edges: NDArray[np.float64]
    acceptance: Any
    reco: tuple[dict[str, Any], NDArray[np.float64], NDArray[np.float64]]
    true: tuple[dict[str, Any], NDArray[np.float64], NDArray[np.float64]]
    true_weight: NDArray[np.float64]
    """The truth side's rows' own weights (1, or their lepton cuts' pass probability)."""
    nominal_reco: Any
    nominal_truth: Any
    true_bin: NDArray[np.intp]
    """Each reconstructed row's true-mass bin (rows of true mass outside the bins: the nearest)."""
    truth_bin: NDArray[np.intp]
    """Each truth-side row's true-mass bin (``true_bin`` without ``generated``)."""
    reco_c2: NDArray[np.float64]
    """The reconstructed rows' true cos²θ*."""

    @classmethod
    def build(
        cls, rows: dict[str, NDArray[np.float64]], acceptance: Any, edges: ArrayLike,
        min_acceptance: float, generated: dict[str, NDArray[np.float64]] | None = None,
    ) -> ResponseFits:  # fmt: skip
        """The rows with a reconstructed or true mass inside ``edges``, both sides' inputs and
        nominal fits; the truth side from ``generated`` (:func:`read_generated`) when given.

        Raises:
            InputError: the simulation has no γ* in the bins.
        """
        edges = np.asarray(edges, dtype=np.float64)

        def within(m):
            return (m >= edges[0]) & (m < edges[-1])

        def bins(m):
            return np.clip(np.searchsorted(edges, m, side="right") - 1, 0, edges.size - 2)

        k = within(rows["m"]) | within(rows["m_true"])
        if not k.any():
            raise InputError(
                f"unfold.polarisation_correction: the simulation has no γ* in the polarisation "
                f"bins {edges[0]:g}–{edges[-1]:g} GeV (another mass range or flavour?)"
            )
        sub = {c: v[k] for c, v in rows.items()}
        reco = fit_inputs(sub, RECO, acceptance, min_acceptance)
        true_bin = bins(sub["m_true"])
        if generated is None:
            true, truth_bin = fit_inputs(sub, TRUE, acceptance, min_acceptance), true_bin
            tw = np.ones(truth_bin.size)
        else:
            g = {c: v[within(generated["m_true"])] for c, v in generated.items()}
            tw = generated_weight(g, acceptance)
            g = {c: v[tw > 0] for c, v in g.items()}
            tw = tw[tw > 0]
            if tw.size == 0:
                raise InputError(
                    "unfold.polarisation_correction.generated_tree: no generated γ* passes the "
                    f"lepton cuts in the polarisation bins {edges[0]:g}–{edges[-1]:g} GeV"
                )
            true, truth_bin = fit_inputs(g, TRUE, acceptance, min_acceptance), bins(g["m_true"])
        return cls(edges, acceptance, reco, true, tw, _fit(reco, acceptance, edges, 1.0),
                   _fit(true, acceptance, edges, tw), true_bin, truth_bin,
                   sub["cos_theta_hel_true"] ** 2)  # fmt: skip

    def fit_reco(self, w: NDArray[np.float64]) -> Any:
        """The fit as the data's with the reconstructed rows weighted by ``w``
        (:class:`~gammastar.corrections.polarisation.Polarisation`)."""
        return _fit(self.reco, self.acceptance, self.edges, w)

    def fit_truth(self, w: NDArray[np.float64]) -> Any:
        """The fit at the truth with the truth side's rows weighted by ``w``."""
        return _fit(self.true, self.acceptance, self.edges, self.true_weight * w)

    def weight(
        self, delta: float, true_bin: int | None = None, *, side: str = "reco"
    ) -> NDArray[np.float64]:
        """Per row of ``side`` (``"reco"``: the reconstructed rows, ``"truth"``: the truth
        side's): (1 + (λ_t + δ) cos²θ*_true)/(1 + λ_t cos²θ*_true), λ_t the nominal truth fit of
        the row's true-mass bin, kept where the weights of λ_t ± :data:`STEP` stay positive over
        the sphere; 1 for rows outside true-mass bin ``true_bin``, when given."""
        lam_t = np.clip(np.nan_to_num(self.nominal_truth.lambda_theta), -1.0 + STEP, 1.0 - STEP)
        if side == "reco":
            c2, b = self.reco_c2, self.true_bin
        elif side == "truth":
            c2, b = self.true[0]["cos_theta_hel"] ** 2, self.truth_bin
        else:
            raise ValueError(f"side must be 'reco' or 'truth', not {side!r}")
        w = 1.0 + delta * c2 / (1.0 + lam_t[b] * c2)
        return w if true_bin is None else np.where(b == true_bin, w, 1.0)


def selection_correction(
    rows: dict[str, NDArray[np.float64]], acceptance: Any, edges: ArrayLike, min_acceptance: float,
    generated: dict[str, NDArray[np.float64]] | None = None,
) -> LambdaCorrection:  # fmt: skip
    """λ_r, λ_t and the slope s of the module docstring in the bins ``edges``.

    Arguments:
        rows: :func:`read_simulation`.
        acceptance: the selection's :class:`~gammastar.corrections.pair_acceptance.table.PairAcceptance` (its
            moment tables; its isotropic A ≥ ``min_acceptance`` is the fits' fiducial region).
        edges: the data's polarisation bins (``polarisation.mass_edges``).
        min_acceptance: ``unfold.min_acceptance``.
        generated: the simulation's generator-level γ* (:func:`read_generated`) for the truth
            side; without them the truth side is the reconstructed γ* at their truth.

    Returns:
        :class:`LambdaCorrection`.

    Raises:
        InputError: the simulation has no γ* in the bins.

    Example (a detector without cuts and resolution measures the truth: shift 0, slope 1):
        >>> import numpy as np
        >>> from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
        >>> from gammastar.corrections.pair_acceptance.table import PairAcceptance
        >>> pa = PairAcceptance.build(LeptonAcceptance(0.0, 0.0, 3.1), lepton_mass=0.1057,
        ...     mass_range=(0.4, 0.6), p_max=100.0, grid=(3, 4, 5))
        >>> rng = np.random.default_rng(1); n = 100_000
        >>> reco = {"m": rng.uniform(0.4, 0.6, n), "pT": rng.uniform(0.2, 1.5, n),
        ...         "pz": rng.uniform(15.0, 40.0, n), "cos_theta_hel": rng.uniform(-1, 1, n),
        ...         "phi_hel": rng.uniform(-np.pi, np.pi, n)}
        >>> rows = reco | {t: reco[r] for r, t in zip(RECO, TRUE)}
        >>> d = selection_correction(rows, pa, [0.4, 0.6], 0.01)
        >>> round(float(d.delta[0]), 9), round(float(d.slope[0]), 9)
        (0.0, 1.0)
    """
    f = ResponseFits.build(rows, acceptance, edges, min_acceptance, generated)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (f.fit_reco(f.weight(STEP)).lambda_theta
                 - f.fit_reco(f.weight(-STEP)).lambda_theta) / (
            f.fit_truth(f.weight(STEP, side="truth")).lambda_theta
            - f.fit_truth(f.weight(-STEP, side="truth")).lambda_theta
        )  # fmt: skip
    r, t = f.nominal_reco, f.nominal_truth
    return LambdaCorrection(f.edges, r.lambda_theta, r.lambda_theta_err, t.lambda_theta,
                            t.lambda_theta_err, slope, r.n_pairs)  # fmt: skip


def corrected(block: dict[str, Any], corr: LambdaCorrection) -> dict[str, Any]:
    """The ``polarisation`` block with λ_θ and its error corrected (:meth:`LambdaCorrection.apply`)
    in the bins the simulation corrects and the data have a fit (elsewhere as measured, listed
    in ``uncorrected_bins``); the measured values and the simulation's numbers under
    ``selection_correction``.

    Raises:
        ValueError: ``corr`` was measured in other bins than the block's.

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
        >>> [round(x, 3) for x in b["selection_correction"]["simulation_share"]]  # (0.024² + 0.04²)/0.107²
        [0.191, nan]
    """
    edges = np.asarray(block["mass_edges"], dtype=np.float64)
    if edges.shape != corr.mass_edges.shape or not np.allclose(
        edges, corr.mass_edges, rtol=0, atol=1e-12
    ):
        raise ValueError("the λ_θ correction was measured in other mass bins than the block's")

    def arr(key):
        return np.array([np.nan if x is None else x for x in block[key]], dtype=np.float64)

    lam, err = arr("lambda_theta"), arr("lambda_theta_err")
    new, new_err, ok = corr.apply(lam, err)

    def lst(x):
        return [float(v) for v in x]

    out = dict(block)
    out["lambda_theta"] = lst(new)
    out["lambda_theta_err"] = lst(new_err)
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
        "simulation_share": lst(corr.simulation_share(lam, err)),
    }
    return out
