"""The draw that the N_sig error works on: each sample's acceptance per cτ
(:func:`per_sample_acceptance`), the draw's extrapolated samples with the model at the mass
(:class:`OutSamples`), the one self-normalised reweighting of them to other parameters or forms
(:func:`reweight`) and the Kish effective size that says where it is trusted (:data:`KISH_MIN`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.decay import decay_probability
from gammastar.yields.extrapolation.model import NOMINAL, ModelForm, grid_in_f
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["KISH_MIN", "OutSamples", "Redraw", "draw_arrays", "kish_size", "out_samples", "per_sample_acceptance", "resolved_ratio", "reweight", "sample_weight"]


KISH_MIN = 30.0
"""The Kish effective size, (Σ wᵢaᵢ)²/Σ (wᵢaᵢ)², of a model form's reweighted contributing
samples (weight p_alt/p_nom × acceptance, per cτ) below which :func:`form_shifts` does not
trust the reweighting and draws the form's own samples outside F instead (``redraw``): at
n_eff ≈ 1 a single sample's weight is the whole 𝓔_out,alt, and ln(N_alt/N) is that sample's
weight, not the forms' difference (a forward detector that sees only the model's far tail)."""


Redraw = Callable[[Callable[..., dict[str, Any]], int, int], Any]
"""``redraw(sampler, n, seed)``: the :class:`~gammastar.reach.acceptance.KinematicSample` of ``n``
A′ samples of ``sampler`` (a callable ``(mass, n, seed) → {"qT", "E", "extrapolated"}``) at the
draw's mass, through the same detector and decay channel as the nominal draw's
(:func:`gammastar.reach.acceptance.draw`)."""


def sample_weight(sample: Any) -> NDArray[np.float64]:
    """The samples' importance weights (:attr:`KinematicSample.weight`; 1 where it has none)."""
    w = getattr(sample, "weight", None)
    return np.ones(sample.n) if w is None else np.asarray(w, dtype=np.float64)


def per_sample_acceptance(sample: Any, ctau: ArrayLike) -> NDArray[np.float64]:
    """Each sample's term of the acceptance at the proper decay lengths ``ctau``: its
    importance weight (:func:`sample_weight`) × the detector efficiency × Σ_cells hit ×
    (survival to the cell's start − to its end), the per-sample term of
    :meth:`gammastar.reach.acceptance.KinematicSample.acceptance` (whose mean it is).

    Returns:
        shape (n, len(ctau)).
    """
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    if hasattr(sample, "acceptance_per_sample"):  # a KinematicSample: over its edges only
        a = np.asarray(sample.acceptance_per_sample(ctau), dtype=np.float64)
        w = getattr(sample, "weight", None)
        return a if w is None else a * np.asarray(w, dtype=np.float64)[:, None]

    z = np.asarray(sample.cells, dtype=np.float64)
    out = np.empty((sample.n, ctau.size))
    for j, c in enumerate(ctau):
        p = decay_probability(z[None, :-1], z[None, 1:], sample.gbc[:, None] * c)
        out[:, j] = np.sum(sample.hits * p, axis=1)
    return np.asarray(sample.efficiency * out, dtype=np.float64)


def draw_arrays(
    kinematics: dict[str, ArrayLike], sample: Any, ctau: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    """The draw's (q_T, E, extrapolated mask) from the sampler's ``kinematics`` and each
    sample's acceptance per cτ (:func:`per_sample_acceptance`, shape (n, len(ctau)))."""
    qt = np.asarray(kinematics["qT"], dtype=np.float64)
    e = np.asarray(kinematics["E"], dtype=np.float64)
    out_mask = np.asarray(kinematics["extrapolated"], dtype=bool)
    return qt, e, out_mask, per_sample_acceptance(sample, ctau)


def kish_size(s1: NDArray[np.float64], s2: NDArray[np.float64]) -> NDArray[np.float64]:
    """The Kish effective size (Σc)²/Σc² from the sums ``s1`` = Σc and ``s2`` = Σc² (0 where
    nothing contributes).

    >>> kish_size(np.array([4.0, 0.0]), np.array([4.0, 0.0])).tolist()
    [4.0, 0.0]
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(s2 > 0, s1**2 / np.where(s2 > 0, s2, 1.0), 0.0)


def reweight(log_w: NDArray[np.float64], a: NDArray[np.float64],
             weight: NDArray[np.float64] | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """The samples' acceptances ``a`` (n, n_ct) reweighted by w ∝ e^``log_w`` (p_θ/p_θ₀ of
    other parameters, or p_alt/p_nom of another form), self-normalised: Σ wᵢaᵢ/Σ wᵢ per cτ,
    and the Kish effective size of the contributions wᵢaᵢ (:func:`kish_size`). Importance-
    weighted draws: ``a`` the terms with their weights vᵢ (:func:`per_sample_acceptance`) and
    ``weight`` the vᵢ, Σ wᵢaᵢ/Σ wᵢvᵢ. The weights are
    taken relative to the largest finite one, e^(log_w − max): neither result changes under a
    common factor, and no weight overflows (a form whose tail is many e-folds heavier than
    the nominal's far out); 0 where no sample has a finite log-weight. Where the draw's own
    density is p_θ₀, Σ wᵢaᵢ/Σ wᵢ → ∫ p_θ a / ∫ p_θ over the draw's region.

    References:
        The reweighting identity ∫ p_θ a = E_{p_θ₀}[a p_θ/p_θ₀] (importance sampling),
        self-normalised: A. B. Owen, *Monte Carlo theory, methods and examples* (2013), §9.2;
        the effective size: L. Kish, *Survey Sampling* (Wiley, 1965).

    >>> m, k = reweight(np.array([0.0, 1000.0]), np.array([[1.0], [3.0]]))
    >>> m.tolist(), k.tolist()
    ([3.0], [1.0])
    """
    log_w = np.asarray(log_w, dtype=np.float64)
    finite = np.isfinite(log_w)
    if not np.any(finite):
        return np.zeros(a.shape[1]), np.zeros(a.shape[1])
    w = np.exp(log_w - np.max(log_w[finite]))
    s1 = w @ a
    norm = float(w.sum()) if weight is None else float(w @ weight)
    return s1 / norm, kish_size(s1, (w**2) @ (a**2))


def out_samples(ex: Extrapolation, fiducial: Any, mass: float,
                kin: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]],
                a: NDArray[np.float64], weight: NDArray[np.float64] | None = None) -> OutSamples:  # fmt: skip
    """The draw's extrapolated samples (``kin`` = the draw's q_T, E and extrapolated flag,
    ``a`` its acceptance terms per cτ, ``weight`` its importance weights) with the model's
    parameters at the mass."""
    qt, e, out_mask = kin
    f0, t, mu, s = (float(v) for v in ex.at(mass))
    mt = np.sqrt(qt[out_mask] ** 2 + mass**2)
    # without a flow the model stands for the data inside F too: its samples there are
    # labelled extrapolated, and they cover the whole phase space
    full = bool(np.any(fiducial.contains(np.full(int(out_mask.sum()), mass), qt[out_mask],
                                         e[out_mask])))  # fmt: skip
    return OutSamples(mass, qt[out_mask], np.arccosh(np.maximum(e[out_mask] / mt, 1.0)),
                       a[out_mask], a.mean(axis=0), out_mask, (t, mu, s, float(ex.power_at(mass))),
                       f0, grid_in_f(fiducial, mass), full, ex.form,
                       None if weight is None else weight[out_mask])  # fmt: skip


class OutSamples(NamedTuple):
    """The extrapolated samples of a draw at one mass (:func:`nsig_error_parts`): their q_T,
    rapidity and acceptance per cτ (n_out, n_ct); the whole draw's mean acceptance per cτ and
    which of its samples are extrapolated; the model's (T, ȳ, σ_y, a) at the mass, f_F there
    and F on the mass's quadrature grid (:func:`grid_in_f`)."""

    mass: float
    qt: NDArray[np.float64]
    y: NDArray[np.float64]
    a: NDArray[np.float64]
    tot: NDArray[np.float64]
    out_mask: NDArray[np.bool_]
    nominal: tuple[float, float, float, float]
    f0: float
    inside: NDArray[np.bool_]
    full: bool = False
    """Whether the extrapolated samples cover the whole phase space (no flow: the model inside
    F too), so that N/Y_F = 𝓔/f_F; else they lie outside F and N/Y_F = 𝓔_in + (1 − f_F)/f_F
    𝓔_out."""
    form: ModelForm = NOMINAL
    """The model's form (:attr:`Extrapolation.form`: with its fall-off)."""
    w: NDArray[np.float64] | None = None
    """The extrapolated samples' importance weights (mean 1; in ``a`` already: the
    denominators of :func:`reweight`); ``None``: unweighted."""


def resolved_ratio(nominal: tuple[NDArray[np.float64], NDArray[np.float64]],
                   alt: tuple[NDArray[np.float64], NDArray[np.float64]]) -> NDArray[np.float64]:  # fmt: skip
    """N_alt/N per cτ from (N, its Kish effective size) of each draw; NaN where either is
    not positive or not resolved (an effective size below :data:`KISH_MIN`)."""
    (n0, k0), (n1, k1) = nominal, alt
    ok = (n0 > 0) & (n1 > 0) & (k0 >= KISH_MIN) & (k1 >= KISH_MIN)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, n1 / np.where(ok, n0, 1.0), np.nan)
