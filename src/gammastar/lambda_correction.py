r"""The measured λ_θ's selection bias, corrected with a detector simulation.

The selection fits λ_θ per reconstructed-mass bin (:mod:`gammastar.polarisation`). Where the
mass resolution depends on the decay angles, a reconstructed-mass bin selects its γ* by decay
angle: below the ω's peak window the bin holds the ω's low tail, made of asymmetric decays whose
soft muon scatters most, and the fit returns a λ_θ that is not that of the γ* of the bin's mass
(+0.14–0.16 too high in the NA60-like mock, docs/coverage.md, session 25;
``benchmarks/lambda_selection.py``). The per-pair acceptance at that λ_θ over-corrects the
fiducial yield. A detector simulation measures the response of the fit per polarisation bin b:
its γ* fitted as the data are (:func:`gammastar.polarisation.measure`: the same bins, the
reconstructed mass, kinematics and angles, the isotropic fiducial region, weight 1, since the
simulation has no background and its efficiency is not applied) return λ_r(b), while its
generator's λ_θ of all generated γ* of true mass in b is λ_g(b) (moments,
:func:`gammastar.polarisation.lambdas_from_sums`). Reweighted by their true decay angle,
(1 + (λ_g + Δ) cos²θ*_true)/(1 + λ_g cos²θ*_true), the same γ* stand for a truth λ_g + Δ; the
fits at Δ = ±:data:`STEP` give the response's slope s = dλ_r/dλ_true (about 1.1–1.2: the
selection's shift grows with λ_θ). The data's λ_θ(b) then corresponds to the truth

.. math:: \lambda_\theta^{\rm corr}(b) = \lambda_g(b) + \frac{\lambda_\theta(b) - \lambda_r(b)}{s(b)},

with the error (σ_data/s) ⊕ (σ_r/s) ⊕ σ_g (the slope's own statistical error is left out). It
assumes the simulation's cocktail (how much ω tail a bin holds) and a response linear over the
distance from λ_g; λ_φ and λ_θφ, which the acceptance does not use, are left as measured.

:func:`read_simulation` reads the simulation (ROOT files in the mock's layout, DEVELOPERS.md
"Mock ntuple": the ``truth`` tree's ``m``, ``pT``, ``pz``, ``cos_theta_hel``, ``phi_hel``,
``cos_theta_hel_true`` and the ``truth_all_m`` and ``truth_hel_*`` histograms),
:func:`selection_correction` measures the response, :func:`corrected` applies it to a
``polarisation`` block.

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

__all__ = ["LambdaCorrection", "Simulation", "corrected", "read_simulation", "selection_correction"]

COLUMNS = ("m", "pT", "pz", "cos_theta_hel", "phi_hel", "cos_theta_hel_true")
"""The simulation tree's branches the correction reads (``channel`` too when present)."""

METHOD = "simulation_generator + (lambda_theta - simulation_reco) / simulation_slope"

STEP = 0.2
"""The reweighted truth's shift ±Δ at which the response's slope is measured."""

MIN_SLOPE = 0.5
"""A bin whose fit responds to the truth by less (half as sensitive) is left as measured: the
inversion would blow its error up and rest on a response far from the unit one."""


@dataclass(frozen=True)
class Simulation:
    """A detector simulation's γ* (reconstructed ``m``, ``pT``, ``pz``, ``cos_theta_hel``,
    ``phi_hel``), its generator's counts of all γ* by true mass and their angular sums (3, n),
    on the mass edges ``fine``, and the files."""

    rows: dict[str, NDArray[np.float64]]
    counts: NDArray[np.float64]
    sums: NDArray[np.float64]
    fine: NDArray[np.float64]
    paths: tuple[str, ...]


def read_simulation(
    paths: Sequence[str | Path], *, tree: str = "truth", histogram: str = "truth_all_m"
) -> Simulation:
    """The simulation of ``unfold.polarisation_correction`` (η → μμ, combinatorial and
    non-finite rows dropped, :func:`gammastar.migration.read_simulation_arrays`).

    Raises:
        InputError: a file, tree, branch or histogram is missing or unreadable (naming it).
    """
    from gammastar.migration import read_simulation_arrays
    from gammastar.mock.generate import TRUTH_HELICITY

    rows, hists, fine = read_simulation_arrays(
        paths, tree=tree, histograms=[histogram, *TRUTH_HELICITY], columns=COLUMNS,
        key="unfold.polarisation_correction",
    )  # fmt: skip
    return Simulation(rows, hists[0], np.stack(hists[1:]), fine, tuple(str(p) for p in paths))


@dataclass(frozen=True)
class LambdaCorrection:
    """Per polarisation bin the simulation's fit λ_r (``reco``), its generator's λ_g and the
    response's slope s (NaN where a fit fails), with the errors of λ_r and λ_g."""

    mass_edges: NDArray[np.float64]
    reco: NDArray[np.float64]
    reco_err: NDArray[np.float64]
    generator: NDArray[np.float64]
    generator_err: NDArray[np.float64]
    slope: NDArray[np.float64]
    n_reco: NDArray[np.int64]

    @property
    def delta(self) -> NDArray[np.float64]:
        """The shift at the simulation's own truth, λ_r − λ_g."""
        return self.reco - self.generator

    def apply(
        self, lam: ArrayLike, err: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The truth λ_θ (and its 1σ) that a measured ``lam`` ± ``err`` corresponds to."""
        s = self.slope
        lam = np.asarray(lam, dtype=np.float64)
        out = self.generator + (lam - self.reco) / s
        e = np.sqrt((np.asarray(err, np.float64) / s) ** 2 + (self.reco_err / s) ** 2
                    + self.generator_err**2)  # fmt: skip
        return out, e


def selection_correction(
    sim: Simulation, acceptance: Any, edges: ArrayLike, min_acceptance: float
) -> LambdaCorrection:
    """λ_r, λ_g and the slope s of the module docstring in the bins ``edges``.

    Arguments:
        sim: :func:`read_simulation`.
        acceptance: the selection's :class:`~gammastar.pair_acceptance.PairAcceptance` (its
            moment tables; its isotropic A ≥ ``min_acceptance`` is the fit's fiducial region).
        edges: the data's polarisation bins (``polarisation.mass_edges``).
        min_acceptance: ``unfold.min_acceptance``.

    Returns:
        :class:`LambdaCorrection`.

    Example (a detector without cuts measures the truth: λ_r = λ_g within the errors, slope 1):
        >>> import numpy as np
        >>> from gammastar.pair_acceptance import LeptonAcceptance, PairAcceptance
        >>> pa = PairAcceptance.build(LeptonAcceptance(0.0, 0.0, 3.1), lepton_mass=0.1057,
        ...     mass_range=(0.4, 0.6), p_max=100.0, grid=(3, 4, 5))
        >>> rng = np.random.default_rng(1); n = 200_000
        >>> fine = np.linspace(0.4, 0.6, 3); c = rng.uniform(-1, 1, n)
        >>> rows = {"m": rng.uniform(0.4, 0.6, n), "pT": rng.uniform(0.2, 1.5, n),
        ...         "pz": rng.uniform(15.0, 40.0, n), "cos_theta_hel": c,
        ...         "phi_hel": rng.uniform(-np.pi, np.pi, n), "cos_theta_hel_true": c}
        >>> sim = Simulation(rows, np.array([3.0, 3.0]), np.array([[1.0, 1.0], [0, 0], [0, 0]]),
        ...                  fine, ())
        >>> d = selection_correction(sim, pa, [0.4, 0.6], 0.01)
        >>> bool(abs(d.delta[0]) < 3 * np.hypot(d.reco_err[0], d.generator_err[0]))
        True
        >>> bool(abs(d.slope[0] - 1.0) < 0.05)
        True
    """
    from gammastar.migration import binned
    from gammastar.polarisation import lambdas_from_sums, measure

    edges = np.asarray(edges, dtype=np.float64)
    gen = lambdas_from_sums(
        binned(sim.counts, sim.fine, edges), [binned(s, sim.fine, edges) for s in sim.sums]
    )
    r = sim.rows
    k = (r["m"] >= edges[0]) & (r["m"] < edges[-1])
    m, pt, pz = r["m"][k], r["pT"][k], r["pz"][k]
    mom = acceptance.moments_at(m, np.hypot(pt, pz), np.arctan2(pt, pz))
    in_f = (np.clip(mom[0], 0.0, 1.0) >= min_acceptance).astype(np.float64)
    # each row's bin's generator λ_θ: the reweighting to a truth λ_g + Δ
    b = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, edges.size - 2)
    lam_g = np.nan_to_num(gen["lambda_theta"][b])
    c2 = r["cos_theta_hel_true"][k] ** 2
    pairs = {"m": m, "pT": pt, "pz": pz, "charge": np.zeros(m.size, np.int8),
             "cos_theta_hel": r["cos_theta_hel"][k], "phi_hel": r["phi_hel"][k],
             "acc": np.ones(m.size)}  # fmt: skip

    def fit(delta):
        w = in_f * (1.0 + (lam_g + delta) * c2) / (1.0 + lam_g * c2)
        return measure({**pairs, "weight": w}, acceptance, edges, moments=mom)

    nominal, up, down = fit(0.0), fit(STEP), fit(-STEP)
    slope = (up.lambda_theta - down.lambda_theta) / (2 * STEP)
    return LambdaCorrection(edges, nominal.lambda_theta, nominal.lambda_theta_err,
                            gen["lambda_theta"], gen["lambda_theta_err"], slope,
                            nominal.n_pairs)  # fmt: skip


def corrected(block: dict[str, Any], corr: LambdaCorrection) -> dict[str, Any]:
    """The ``polarisation`` block with λ_θ and its error corrected (:meth:`LambdaCorrection.apply`)
    where the simulation has a fit and a slope of at least :data:`MIN_SLOPE` (elsewhere as
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
        ok = np.isfinite(corr.reco) & np.isfinite(corr.generator) & (corr.slope >= MIN_SLOPE)

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
        "simulation_generator": lst(corr.generator),
        "simulation_generator_err": lst(corr.generator_err),
        "simulation_slope": lst(corr.slope),
        "step": STEP,
        "simulation_pairs": [int(n) for n in corr.n_reco],
        "uncorrected_bins": [int(i) for i in np.flatnonzero(~ok)],
    }
    return out
