r"""Beam–target normalisation: how many protons interact in a target of given thickness.

One formula, used wherever a yield per proton on target (POT) depends on the target:
the mock generator's equivalent N_POT
(:meth:`gammastar.mock.generator.MockGenerator.n_pot`), the reach's factor that carries a
yield measured with a thin target to a facility's thick target or dump (:func:`yield_scale`,
``reach.target_interaction_lengths``), and the bremsstrahlung estimate
(:class:`gammastar.physics.bremsstrahlung.BremsSettings`).

A proton beam traversing a target of thickness L (in nuclear interaction lengths λ_I)
interacts with probability

.. math:: P_{\rm int}(L) = 1 - e^{-L/\lambda_I},

which is L for a thin target and 1 for a beam dump (L → ∞). Yields per POT scale with it
(docs/explanation/physics.md §2).

A different nucleus (:func:`nucleus_scale`, ``reach.target``): with the production cross
section per nucleus σ_X(pA) = σ_X(pN) A^α and the inelastic cross section σ_inel(A), the yield
per *interacting* proton is σ_X(pA)/σ_inel(pA), so going from the data's nucleus A_d to the
facility's A_f multiplies it by

.. math:: S_A = \left(\frac{A_f}{A_d}\right)^{\alpha}
          \frac{\sigma_{\rm inel}(A_d)}{\sigma_{\rm inel}(A_f)},

with σ_inel = A / (N_A λ_I) from the interaction length λ_I in g/cm²
(:func:`inelastic_cross_section_mb`). The exponent's 1σ error σ_α moves S_A by the factor
(A_f/A_d)^{±σ_α}: a log-normal of width |ln(A_f/A_d)| σ_α (:func:`nucleus_scale_rel_err`, the
reach's ``target_a_dependence`` nuisance).

Not modelled: secondary (cascade) production by the hadrons of the shower in a thick dump
(it adds to the yield of the primary interaction, more at low A′ energy); the absorption of
the produced mesons and A′ parents in the dump beyond the primary proton's P_int; the spread
of the production points along the dump (the decay distances are from one production
point); the change of the A′ kinematics with A (α depends on x_F and p_T: one exponent is
applied to the yield integrated over the data's phase space).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "AVOGADRO",
    "DUMP",
    "inelastic_cross_section_mb",
    "interaction_probability",
    "nucleus_scale",
    "nucleus_scale_rel_err",
    "yield_scale",
]

AVOGADRO = 6.02214076e23
"""Avogadro's number N_A in mol⁻¹ (SI 2019, exact)."""

DUMP = "dump"
"""Target description meaning "every proton interacts" (L = ∞, P_int = 1)."""


def interaction_probability(interaction_lengths: ArrayLike | str) -> NDArray[np.float64] | float:
    """Probability that a beam proton interacts in a target of ``interaction_lengths`` λ_I.

    Arguments:
        interaction_lengths: thickness L/λ_I (> 0; ``inf`` or ``"dump"``: every proton
            interacts).

    Returns:
        P_int = 1 − e^{−L/λ_I} (a float for scalar input).

    Raises:
        ValueError: a thickness that is not positive, or a string other than ``"dump"``.

    References:
        Exponential attenuation of the beam in the target, λ_I = nuclear interaction length
        (PDG Review "Passage of particles through matter", §34.4.1; docs/explanation/physics.md §2).

    Example:
        >>> round(interaction_probability(0.01), 8)   # NA60 Pb sub-target: ~ L for a thin target
        0.00995017
        >>> interaction_probability("dump"), interaction_probability(float("inf"))
        (1.0, 1.0)
    """
    if isinstance(interaction_lengths, str):
        if interaction_lengths != DUMP:
            raise ValueError(f"target thickness {interaction_lengths!r}: a number or 'dump'")
        return 1.0
    lengths = np.asarray(interaction_lengths, dtype=np.float64)
    if np.any(~(lengths > 0)):
        raise ValueError(f"target thickness must be > 0 interaction lengths, not {lengths}")
    p = -np.expm1(-lengths)
    return float(p) if p.ndim == 0 else p


def yield_scale(facility: float | str, data: float | str) -> float:
    """Factor that carries a yield per POT measured with the data's target to a facility's target.

    Arguments:
        facility: the facility target's thickness in λ_I (or ``"dump"``).
        data: the thickness of the target the yield was measured with, in λ_I.

    Returns:
        P_int(facility) / P_int(data).

    References:
        :func:`interaction_probability`; the yield per interacting proton is taken to be the
        same on both targets (docs/explanation/reach.md).

    Example:
        >>> round(yield_scale("dump", 0.01), 4)   # a dump behind the NA60 0.01 λ_I sub-target
        100.5008
        >>> yield_scale(0.01, 0.01)
        1.0
    """
    return float(interaction_probability(facility)) / float(interaction_probability(data))


def inelastic_cross_section_mb(mass_number: float, interaction_length_g_cm2: float) -> float:
    """Inelastic proton–nucleus cross section from the nuclear interaction length.

    Arguments:
        mass_number: A of the material (g/mol: its standard atomic weight).
        interaction_length_g_cm2: λ_I in g/cm² (PDG "Atomic and nuclear properties of
            materials").

    Returns:
        σ_inel = A / (N_A λ_I) in mb.

    References:
        PDG Review of Particle Physics, "Passage of particles through matter" §34.4.1
        (λ_I = A / (N_A σ_inel)).

    Example:
        >>> round(inelastic_cross_section_mb(207.2, 199.6))   # Pb
        1724
        >>> round(inelastic_cross_section_mb(63.546, 137.3), 1)   # Cu
        768.5
    """
    if not (mass_number > 0 and interaction_length_g_cm2 > 0):
        raise ValueError("mass number and interaction length must be > 0")
    return mass_number / (AVOGADRO * interaction_length_g_cm2) / 1e-27


def nucleus_scale(
    a_facility: float,
    sigma_facility_mb: float,
    a_data: float,
    sigma_data_mb: float,
    alpha: float,
) -> float:
    """Factor on the yield per interacting proton from the data's nucleus to the facility's.

    Arguments:
        a_facility, sigma_facility_mb: mass number A_f and inelastic p–A cross section (mb)
            of the facility's target material.
        a_data, sigma_data_mb: the same for the data's target.
        alpha: exponent of σ_X(pA) = σ_X(pN) A^α for the produced A′ parents.

    Returns:
        S_A = (A_f/A_d)^α σ_inel(A_d)/σ_inel(A_f) (1 for the same nucleus).

    References:
        The power law σ_pA ∝ A^α of inclusive meson production: NA60, "Nuclear dependence of
        light neutral meson production in p-A collisions at 400 GeV with NA60",
        arXiv:2012.14385 (η, ω, φ on Be, Cu, In, W, Pb, U); module docstring.

    Example:
        >>> s_pb = inelastic_cross_section_mb(207.2, 199.6)
        >>> s_cu = inelastic_cross_section_mb(63.546, 137.3)
        >>> round(nucleus_scale(63.546, s_cu, 207.2, s_pb, 0.85), 4)   # Pb data -> Cu dump
        0.8213
        >>> nucleus_scale(207.2, s_pb, 207.2, s_pb, 0.85)
        1.0
    """
    for name, v in (
        ("a_facility", a_facility),
        ("sigma_facility_mb", sigma_facility_mb),
        ("a_data", a_data),
        ("sigma_data_mb", sigma_data_mb),
    ):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, not {v}")
    return float((a_facility / a_data) ** alpha * sigma_data_mb / sigma_facility_mb)


def nucleus_scale_rel_err(a_facility: float, a_data: float, alpha_err: float) -> float:
    """Relative (log-normal) size of :func:`nucleus_scale`'s uncertainty from that of α.

    Arguments:
        a_facility, a_data: the two mass numbers.
        alpha_err: 1σ error of the exponent α.

    Returns:
        r = exp(|ln(A_f/A_d)| σ_α) − 1: moving α by ±σ_α multiplies S_A by (1 + r)^{±1}, the
        reach's normsys (hi = 1 + r, lo = 1/(1 + r)).

    Example:
        >>> round(nucleus_scale_rel_err(63.546, 207.2, 0.15), 4)   # Cu vs Pb, σ_α = 0.15
        0.194
        >>> nucleus_scale_rel_err(207.2, 207.2, 0.15)
        0.0
    """
    if not (a_facility > 0 and a_data > 0):
        raise ValueError("mass numbers must be > 0")
    if not alpha_err >= 0:
        raise ValueError(f"alpha_err must be >= 0, not {alpha_err}")
    return float(math.expm1(abs(math.log(a_facility / a_data)) * alpha_err))
