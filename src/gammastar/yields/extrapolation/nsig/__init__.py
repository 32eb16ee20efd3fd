"""The extrapolation's error on a reach's signal N_sig (:func:`nsig_relative_error`,
:func:`nsig_error_parts`, :func:`nsig_lambda_theta`, :func:`nsig_reach_error`): the model's
acceptance outside F moves with f_F, so N_sig moves far less than Y_F/f_F
(docs/validation/uncertainties-and-coverage.md).

The entry points the reach and the studies call are defined here (:class:`NsigErrorSettings`,
:func:`nsig_relative_error`, :func:`nsig_lambda_theta`, :func:`nsig_reach_error` and the two sides,
:func:`nsig_relative_sides`, :func:`nsig_reach_sides`); the rest one
module per concern (import a name from the module that defines it):

* :mod:`~gammastar.yields.extrapolation.nsig.draw`: the draw, its acceptance, the reweighting;
* :mod:`~gammastar.yields.extrapolation.nsig.steps`: the fit's parameters: gradient and steps;
* :mod:`~gammastar.yields.extrapolation.nsig.forms`: the model's alternative forms;
* :mod:`~gammastar.yields.extrapolation.nsig.direct`: direct draws where reweighting fails;
* :mod:`~gammastar.yields.extrapolation.nsig.lambda_theta`: the measured λ_θ's moves on a draw;
* :mod:`~gammastar.yields.extrapolation.nsig.parts`: the parts (:func:`nsig_error_parts`);
* :mod:`~gammastar.yields.extrapolation.nsig.arm`: below the seam (the model gives every A′),
  and the arm's model normalised in F.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.yields.extrapolation.nsig.arm import nsig_full_space_error
from gammastar.yields.extrapolation.nsig.draw import Redraw, draw_arrays, sample_weight
from gammastar.yields.extrapolation.nsig.lambda_theta import LambdaDraw, lambda_part, yield_ratio
from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = [
    "NsigErrorSettings",
    "nsig_lambda_theta",
    "nsig_reach_error",
    "nsig_reach_sides",
    "nsig_relative_error",
    "nsig_relative_sides",
]


@dataclass(frozen=True)
class NsigErrorSettings:
    """Which parts of the extrapolation's error :func:`nsig_relative_error` includes, and how
    it propagates them to N_sig."""

    external: bool = True
    """Include an external σ_y's error (:attr:`Extrapolation.y_sigma_external`; ``False``: the
    fit's statistical part and the forms only, e.g. for a coverage test at a fixed truth,
    which cannot test a systematic)."""
    forms: bool = True
    """Include the model's forms (:attr:`Extrapolation.model_variations`; ``False``: the fit's
    statistical part and an external σ_y's only, e.g. for a coverage test on a mock whose
    spectra keep one form)."""
    yield_cross: bool = True
    """Add the fit's covariance with the fiducial yield's statistics, 2 Cov(ln Y_F, ln(N/Y_F))
    (:func:`nsig_error_parts` ``yield_cross``), to the variance, so that the result added in
    quadrature to the yield's statistical error is N_sig's whole statistical variance (the
    reach's ``extrapolation`` normsys beside ``mcstat``); the sum is clipped at 0. ``False``:
    the extrapolation's own error."""
    propagation: Literal["linear", "log"] = "linear"
    """``"linear"``: δN/N from the gradient of N (exact for N linear in the parameters);
    ``"log"``: the width w of ln N from ±1σ steps along the covariance's principal axes
    (:func:`nsig_error_parts` ``log=True``), returned as e^w − 1, the r of a log-normal
    ``normsys`` hi = 1 + r (exact for ln N linear in the parameters: a detector that sees only
    a tail of the model, where N moves exponentially, e.g. the NA62-like one behind the
    NA60-like data, docs/explanation/reach.md). The two agree to second order in the parameters'
    errors."""


def nsig_relative_error(
    extrapolation: Extrapolation,
    fiducial: Any,
    mass: float,
    kinematics: dict[str, ArrayLike],
    sample: Any,
    ctau: ArrayLike,
    *,
    settings: NsigErrorSettings | None = None,
    redraw: Redraw | None = None,
    seed: int | None = None,
    e_max: float | None = None,
) -> NDArray[np.float64]:
    r"""The fit's 1σ relative error of N_sig = Y·𝓔 at one mass, per cτ: what the reach's
    signal inherits from the extrapolation, rather than the yield's δf_F/f_F.

    With the full-phase-space yield Y = Y_F / f_F and the acceptance
    𝓔 = f_F 𝓔_in + (1 − f_F) 𝓔_out (:class:`ExtrapolatedSampler`),
    N/Y_F = 𝓔_in + E_x(θ)/f_F(θ), E_x = (1 − f_F) 𝓔_out = ∫_{∉F} p_θ a: only the model's part
    depends on the fit parameters θ = (T, [ȳ], σ_y), and a change of σ_y that moves f_F moves
    E_x nearly in proportion where the detector sees kinematics next to F (the paper's mock
    detector shares the spectrometer's angular window), so N_sig is much less sensitive than Y.
    The gradient of E_x is taken on the drawn samples themselves by reweighting,
    ∂E_x/∂θ = (1/n) Σ_{extrapolated i} a_i ∂ln p_θ(x_i)/∂θ (no resampling noise), that of f_F
    by :func:`fiducial_fraction`'s central differences; the two are propagated linearly through
    the sandwich covariance (:attr:`Extrapolation.covariance_stat`, else
    :attr:`Extrapolation.covariance`: σ_y, [ȳ], and the T_g [and a_g] of the fit groups
    that :meth:`Extrapolation.group_weights` gives at the mass, each with its weight). An
    extrapolation with model-form variations (:func:`fit_model_variations`) adds, in quadrature,
    each alternative form's own change of N/Y_F, E_x,alt/f_alt − E_x/f_F, its E_x by
    reweighting the same extrapolated samples with p_alt/p_nom (its parameters from
    ``model_variations``): exact up to the draw's noise, where the covariance's mapping onto
    the nominal parameters is exact for f_F only (on the mock it overstates N_sig's change,
    docs/explanation/reach.md).

    Arguments:
        extrapolation: the fitted :class:`Extrapolation` with its ``covariance``.
        fiducial: the :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`.
        mass: the A′ mass (GeV).
        kinematics: the sampler's output of the draw (``qT``, ``E``, ``extrapolated``), in
            the order of ``sample``.
        sample: the :class:`~gammastar.reach.acceptance.KinematicSample` drawn from them.
        ctau: proper decay lengths (m).
        settings: which parts are included and how they are propagated
            (:class:`NsigErrorSettings`; default: all of them, linear).
        redraw: builds a sample through the draw's detector (:data:`Redraw`): where a form's
            reweighting has a Kish effective size below :data:`KISH_MIN` its 𝓔_out comes from
            its own samples outside F instead (:func:`form_shifts`); ``None``: reweighting
            everywhere.
        seed: the direct draws' seed (with ``redraw``; each form's drawn from
            ``SeedSequence([seed, 1])``, the nominal's and the forms' with the same seed: common
            random numbers).
        e_max: the sampler's energy bound (:class:`ExtrapolatedSampler` ``e_max``): the
            direct draws truncated there as the nominal's are.

    Returns:
        δN/N per cτ (0 where N = 0; NaN where a form's N is not resolved even by its direct
        draw: no accepted sample, ``forms_unresolved`` of :func:`nsig_error_parts`).

    Raises:
        InputError: the extrapolation has no covariance (written with ``kish_profile`` alone,
            or before the sandwich).

    References:
        Linear error propagation of the sandwich covariance (:func:`sandwich_covariance`);
        the reweighting identity ∫ p_θ a = E_{p_θ0}[a p_θ/p_θ0] (importance sampling).
    """
    return nsig_relative_sides(extrapolation, fiducial, mass, kinematics, sample, ctau, settings=settings,
                               redraw=redraw, seed=seed, e_max=e_max)["rel"]  # fmt: skip


def nsig_relative_sides(
    extrapolation: Extrapolation, fiducial: Any, mass: float, kinematics: dict[str, ArrayLike],
    sample: Any, ctau: ArrayLike, *, settings: NsigErrorSettings | None = None,
    redraw: Redraw | None = None, seed: int | None = None, e_max: float | None = None,
) -> dict[str, NDArray[np.float64]]:  # fmt: skip
    """:func:`nsig_relative_error` (``rel``) and its two sides from the same parts: ``up``
    and ``down``, each with the forms' part of its side alone (``forms_up``, ``forms_down`` of
    :func:`nsig_error_parts`: a form that raises N widens ``up`` only), the symmetric parts
    (the fit's, an external σ_y's, ``yield_cross``) in both. With ``propagation="log"``
    each is e^w − 1 of its side's width w of ln N: a two-sided log-normal ``normsys``
    hi = 1 + up, lo = 1/(1 + down)."""
    st = NsigErrorSettings() if settings is None else settings
    if st.propagation not in ("linear", "log"):
        raise ValueError(f"propagation must be 'linear' or 'log', not {st.propagation!r}")
    log = st.propagation == "log"
    parts = nsig_error_parts(extrapolation, fiducial, mass, kinematics, sample, ctau, log=log,
                             redraw=redraw, seed=seed, e_max=e_max)  # fmt: skip

    def size(forms: str) -> NDArray[np.float64]:
        keep = ("fit",) + (("external",) if st.external else ()) + ((forms,) if st.forms else ())
        var = sum(parts[k] ** 2 for k in keep) + (parts["yield_cross"] if st.yield_cross else 0.0)
        width = np.sqrt(np.maximum(var, 0.0))
        return np.expm1(width) if log else width

    return {"rel": size("forms"), "up": size("forms_up"), "down": size("forms_down")}


def nsig_lambda_theta(
    extrapolation: Extrapolation,
    fiducial: Any,
    mass: float,
    kinematics: dict[str, ArrayLike],
    sample: Any,
    ctau: ArrayLike,
    moves: Sequence[Mapping[str, Any]],
    *,
    log: bool = True,
    yield_only: bool = False,
) -> NDArray[np.float64]:
    """The measured λ_θ's 1σ carried to N_sig at one mass, per cτ: :func:`nsig_error_parts`'
    ``lambda_theta`` part alone (arguments as there; ``moves`` from
    :func:`gammastar.yields.lambda_theta.lambda_refits_at`), without the fit's other parts.
    ``yield_only``: the kinematics come from a model fitted to other pairs (the arm's above
    the seam, ``extrapolation`` then that model normalised in F), so a move changes N through
    Y_F and F alone, N′/N = (1 + δY_F/Y_F) f_F/f_F′, f_F′ the model's fraction in the moved
    region.

    Returns:
        The relative 1σ (of ln N_sig with ``log``) per cτ.
    """
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    if yield_only:
        return lambda_part(moves, partial(yield_ratio, extrapolation, fiducial, mass), ctau.size, log)
    qt, e, out_mask, a = draw_arrays(kinematics, sample, ctau)
    ratio = LambdaDraw(extrapolation, fiducial, mass, qt, e, out_mask, a, sample_weight(sample)).ratio
    return lambda_part(moves, ratio, ctau.size, log)


def nsig_reach_error(
    split: Any, mass: float, kinematics: dict[str, ArrayLike], sample: Any, ctau: ArrayLike,
    *, redraw: Redraw | None = None, seed: int | None = None,
) -> NDArray[np.float64]:  # fmt: skip
    """The reach's symmetrised extrapolation error of N_sig at one mass, per cτ:
    :func:`nsig_reach_sides`' ``rel`` (arguments as there)."""
    return nsig_reach_sides(split, mass, kinematics, sample, ctau, redraw=redraw, seed=seed)["rel"]


def nsig_reach_sides(
    split: Any, mass: float, kinematics: dict[str, ArrayLike], sample: Any, ctau: ArrayLike,
    *, redraw: Redraw | None = None, seed: int | None = None,
) -> dict[str, NDArray[np.float64]]:  # fmt: skip
    """The reach's extrapolation error of N_sig at one mass, per cτ: ``rel``, the r of a
    symmetric log-normal, e^w − 1 with w every part in quadrature, and the sides ``up`` and
    ``down`` of the two-sided normsys hi = 1 + up, lo = 1/(1 + down) that the likelihood
    uses (:func:`nsig_relative_sides`; NaN where a form does not resolve N). ``split``: the source's
    :class:`~gammastar.yields.extrapolation.samplers.ExtrapolatedSampler`. Below a
    both-channels run's seam, with no flow and the model fitted there (``split.below``),
    :func:`nsig_full_space_error` (the yield does not depend on the model); elsewhere
    :func:`nsig_relative_error` with ``propagation="log"`` (arguments as there), of the arm's
    model normalised in F (:func:`arm_in_fiducial`) where it gives the kinematics
    (``split.model_at``): N = Y_F 𝓔/f_F as for the fiducial fit."""
    below = getattr(split, "below", None)
    seam = getattr(split, "seam", None)
    e_max = getattr(split, "e_max", None)  # the sampler's energy bound: the direct draws' too
    if below is not None and seam is not None and mass < seam and split.inside is None:
        p = nsig_full_space_error(below, mass, kinematics, sample, ctau, redraw=redraw, seed=seed,
                                  e_max=e_max)  # fmt: skip
        return {k: np.expm1(np.sqrt(p["fit"] ** 2 + p[f] ** 2))
                for k, f in (("rel", "forms"), ("up", "forms_up"), ("down", "forms_down"))}  # fmt: skip
    return nsig_relative_sides(split.model_at(mass), split.fiducial, mass, kinematics, sample, ctau,
                               settings=NsigErrorSettings(propagation="log"), redraw=redraw,
                               seed=seed, e_max=e_max)  # fmt: skip
