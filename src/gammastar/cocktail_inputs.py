r"""The hadron-production inputs of the mock's cocktail, each with its value, uncertainty and
source: the one home of these numbers (``mock.*`` config defaults are taken from here and
``docs/reference/mock.md`` prints :data:`INPUTS` as its table).

Every record is a :class:`Input` of one kind: ``measured`` (a published measurement, cited),
``PYTHIA 8.317`` (pythia8mc 8.317.2 at √s_NN = 27.43 GeV: p + p inelastic
(``SoftQCD:inelastic``), 4·10⁴ events, and Angantyr p + Pb, 3·10³ events; where no measurement
could be read) or ``unsourced`` (neither;
its uncertainty covers PYTHIA's value); ``exact`` for a kinematic identity. A record whose
``check`` is set quotes a publication's value that is still to be confirmed against its table.

The multiplicity per inelastic p + A collision follows from the p + p one (:func:`per_collision`):
with σ_m(pA) = σ_m(pp) A^{α_m} and ⟨n⟩ = σ_m/σ_inel,

.. math:: \langle n_m\rangle_{pA} = \langle n_m\rangle_{pp}\, A^{\alpha_m}\,
          \frac{\sigma^{\rm inel}_{pp}}{\sigma^{\rm inel}_{pA}}

(the power law of NA60, Eur. Phys. J. C 79 (2019) 443, arXiv:2012.14385); σ_inel(pA) from the
nucleus' interaction length (:data:`NUCLEI`, :func:`sigma_inel_mb`). :func:`alpha` gives
α_m and its error to any caller (the mock, a PYTHIA p + p → p + A scaling).

No numpy: the config module (which must start without it) takes its defaults from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "INPUTS",
    "MESONS",
    "NUCLEI",
    "Input",
    "Nucleus",
    "alpha",
    "n_omega_rel_uncertainty",
    "per_collision",
    "sigma_inel_mb",
    "value",
]

Kind = Literal["measured", "PYTHIA 8.317", "unsourced", "exact"]

NA27 = (
    "NA27 (LEBC-EHS), M. Aguilar-Benitez et al., Z. Phys. C 50 (1991) 405: "
    "400 GeV p + p inclusive multiplicities"
)
NA60_A = (
    "NA60, Eur. Phys. J. C 79 (2019) 443 (arXiv:2012.14385): sigma_pA ~ A^alpha for eta, omega, "
    "phi in 400 GeV p + Be..U, alpha rising with p_T, alpha_eta ~ alpha_phi > alpha_omega"
)
NA60_FF = (
    "NA60 p + A 400 GeV, Phys. Lett. B 757 (2016) 437 (stat. and syst. errors added in quadrature)"
)
PYTHIA = "PYTHIA 8.317 p + p inelastic, sqrt(s) = 27.43 GeV"


@dataclass(frozen=True)
class Input:
    """One number of the cocktail."""

    name: str
    """Key of :data:`INPUTS`."""
    value: float
    uncertainty: float
    """1σ, absolute, in the unit of ``value``."""
    source: str
    kind: Kind
    meaning: str
    unit: str = ""
    config: str | None = None
    """The config key whose default this is (``None``: used by the code only)."""
    check: bool = False
    """A publication's value not yet confirmed against its table."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.uncertainty >= 0):
            raise ValueError(f"cocktail input {self.name}: bad value or uncertainty")
        if not self.source:
            raise ValueError(f"cocktail input {self.name}: no source")


MESONS = ("eta", "eta_prime", "rho", "omega", "phi", "pi0")
"""The cocktail's parent mesons."""

_ALPHA_PYTHIA = {"eta": 0.866, "eta_prime": 0.901, "rho": 0.863, "omega": 0.861, "phi": 0.836,
                 "pi0": 0.877}  # fmt: skip
"""α from PYTHIA 8.317 Angantyr p + Pb (3·10³ events) over p + p (4·10⁴) at √s_NN = 27.43 GeV:
ln(⟨n⟩_pPb σ_pPb / (⟨n⟩_pp σ_pp)) / ln 207.2 with σ_pPb = 1724 mb (:func:`sigma_inel_mb`);
statistical errors 0.003 (ω, η, ρ), 0.009 (η′), 0.017 (φ)."""


def _alpha_source(meson: str) -> str:
    return (
        f"PYTHIA 8.317 Angantyr p + Pb / p + p at sqrt(s_NN) = 27.43 GeV: omega 0.861; this "
        f"meson {_ALPHA_PYTHIA[meson]}. The omega's value for every meson: PYTHIA's differences "
        "(-0.025 phi ... +0.04 eta') lie inside the 0.05, and its phi < omega is opposite to the "
        "measured hierarchy (" + NA60_A + "; its p_T-integrated values not read here). The "
        "0.05 covers the wounded-nucleon estimate (0.91 for p + Pb) and the spread of the mesons"
    )


_RECORDS: tuple[Input, ...] = (
    Input(
        "n_omega_pp", 0.39, 0.024, NA27 + ": ⟨n_omega⟩ = 0.390 ± 0.024; PYTHIA 8.317: 0.66",
        "measured", "⟨n_ω⟩ per inelastic p + p collision at 400 GeV", check=True,
    ),
    Input(
        "sigma_inel_pp", 32.9, 1.0, PYTHIA + " (SaS/DL total minus elastic): 32.88 mb; the "
        "uncertainty covers the measured ~32 mb", "PYTHIA 8.317",
        "inelastic p + p cross section at 400 GeV", "mb",
    ),
    Input(
        "ratio_eta", 0.8, 0.2, PYTHIA + ": ⟨n_eta⟩/⟨n_omega⟩ = 0.531/0.659 = 0.805 (rounded)",
        "PYTHIA 8.317", "σ_η/σ_ω in p + p", config="mock.cross_sections.eta",
    ),
    Input(
        "ratio_eta_prime", 0.12, 0.04, "unsourced (no measurement at this energy read); "
        + PYTHIA + ": 0.0594/0.659 = 0.090, inside the uncertainty", "unsourced",
        "σ_η′/σ_ω in p + p", config="mock.cross_sections.eta_prime",
    ),
    Input(
        "ratio_rho", 1.0, 0.08, NA27 + ": ⟨n_rho0⟩/⟨n_omega⟩ = 0.385/0.390 = 0.99 ± 0.08 "
        "(rounded); PYTHIA 8.317: 0.975", "measured", "σ_ρ/σ_ω in p + p",
        config="mock.cross_sections.rho", check=True,
    ),
    Input(
        "ratio_omega", 1.0, 0.0, "definition (the multiplicities are relative to the omega)",
        "exact", "σ_ω/σ_ω", config="mock.cross_sections.omega",
    ),
    Input(
        "ratio_phi", 0.06, 0.025, "unsourced: NA60 (" + NA60_A + ") sees phi/omega rise from "
        "p + Be to p + U; " + PYTHIA + ": 0.0237/0.659 = 0.036, inside the uncertainty",
        "unsourced", "σ_φ/σ_ω", config="mock.cross_sections.phi",
    ),
    Input(
        "ratio_pi0", 9.0, 1.5, "unsourced: " + NA27 + " gives ⟨n_pi0⟩/⟨n_omega⟩ ~ 10 [check]; "
        + PYTHIA + " (every pi0, decays included): 5.03/0.659 = 7.6; both inside the "
        "uncertainty", "unsourced", "σ_π0/σ_ω (dielectron mock)",
        config="mock.electrons.pi0.sigma_rel",
    ),
    Input(
        "pt_temperature", 0.20, 0.05, "unsourced: " + PYTHIA + ", T from <p_T> of "
        "exp(-m_T/T): eta 0.170, omega 0.152, rho 0.154, phi 0.153, eta' 0.144 GeV (p + p; "
        "p + A spectra are harder, NA60 EPJC 79 (2019) 443)", "unsourced",
        "T of 1/p_T dN/dp_T ∝ exp(−m_T/T), every meson", "GeV", config="mock.pt_temperature",
    ),
    Input(
        "pt_mt_power", 0.0, 1.0, "unsourced: the m_T-exponential form of the p_T spectra "
        "(a = 0); the Boltzmann form a = 1 is the alternative the extrapolation model offers",
        "unsourced", "a of 1/p_T dN/dp_T ∝ m_T^a exp(−m_T/T)", config="mock.pt_mt_power",
    ),
    Input(
        "pi0_pt_temperature", 0.16, 0.03, PYTHIA + ": every pi0, T from <p_T> = 0.345 GeV: "
        "0.159 GeV", "PYTHIA 8.317", "T of the π0 spectrum", "GeV",
        config="mock.electrons.pi0.pt_temperature",
    ),
    Input(
        "rapidity_mean", 3.37, 0.0, "kinematics: y_cm of 400 GeV protons on a nucleon at rest",
        "exact", "mean lab rapidity", config="mock.rapidity_mean",
    ),
    Input(
        "rapidity_sigma", 1.2, 0.25, "unsourced: " + PYTHIA + ", lab-rapidity widths eta 1.33, "
        "omega 1.25, rho 1.26, eta' 1.18, phi 0.97", "unsourced",
        "σ_y of the Gaussian lab rapidity, every meson", config="mock.rapidity_sigma",
    ),
    Input(
        "falloff", 0.0, 0.7, "unsourced: none by default (a Gaussian rapidity cut only at the "
        "beam energy, on which the mock's closure tests are calibrated); forward pion spectra "
        "(NA49, BMPT) give the extrapolation model's n = 3.0 +- 0.7 on such a Gaussian, whose "
        "1 sigma this takes", "unsourced", "n of the mesons' fall-off (1 − E/E_beam)^n",
        config="mock.falloff",
    ),
    Input(
        "pi0_rapidity_sigma", 1.4, 0.1, PYTHIA + ": every pi0, sigma_y = 1.47 (rounded down)",
        "PYTHIA 8.317", "σ_y of the π0", config="mock.electrons.pi0.rapidity_sigma",
    ),
    Input(
        "eta_lambda_inv2", 1.934, 0.084, NA60_FF + ": 1.934 ± 0.067 ± 0.050", "measured",
        "η → γμμ pole Λ⁻²", "GeV⁻²", config="mock.form_factors.eta_lambda_inv2",
    ),
    Input(
        "omega_lambda_inv2", 2.223, 0.045, NA60_FF + ": 2.223 ± 0.026 ± 0.037", "measured",
        "ω → π0μμ pole Λ⁻²", "GeV⁻²", config="mock.form_factors.omega_lambda_inv2",
    ),
    *(
        Input(
            f"alpha_{m}", round(_ALPHA_PYTHIA["omega"], 2), 0.05, _alpha_source(m), "PYTHIA 8.317",
            f"α of σ_{m}(pA) ∝ A^α (p_T-integrated)",
        )
        for m in _ALPHA_PYTHIA
    ),
)  # fmt: skip

INPUTS: dict[str, Input] = {r.name: r for r in _RECORDS}
"""Every input by name (the order of ``docs/reference/mock.md``'s table)."""


def value(name: str) -> float:
    """The value of :data:`INPUTS` ``[name]`` (the config's defaults read it)."""
    return INPUTS[name].value


def alpha(meson: str) -> tuple[float, float]:
    """α of σ_m(pA) = σ_m(pp) A^α for ``meson`` and its 1σ error.

    Example:
        >>> alpha("omega")
        (0.86, 0.05)
    """
    if meson not in MESONS:
        raise KeyError(f"no A-dependence for {meson!r}; known: {', '.join(MESONS)}")
    r = INPUTS[f"alpha_{meson}"]
    return r.value, r.uncertainty


@dataclass(frozen=True)
class Nucleus:
    """A target material: mass number and nuclear interaction length (PDG "Atomic and
    nuclear properties of materials")."""

    mass_number: float
    interaction_length_g_cm2: float | None
    """λ_I in g/cm²; ``None`` for the proton (σ_inel from :data:`INPUTS` ``sigma_inel_pp``)."""


NUCLEI: dict[str, Nucleus] = {
    "p": Nucleus(1.0, None),
    "Be": Nucleus(9.0122, 77.8),
    "C": Nucleus(12.011, 85.8),
    "Al": Nucleus(26.982, 107.2),
    "Fe": Nucleus(55.845, 132.1),
    "Cu": Nucleus(63.546, 137.3),
    "Mo": Nucleus(95.95, 152.9),
    "W": Nucleus(183.84, 191.9),
    "Pb": Nucleus(207.2, 199.6),
    "U": Nucleus(238.03, 209.0),
}
"""Targets the mock knows (``mock.target``)."""

_AVOGADRO = 6.02214076e23


def sigma_inel_mb(target: str) -> float:
    """Inelastic p + target cross section in mb: A/(N_A λ_I) (the formula of
    :func:`gammastar.physics.target.inelastic_cross_section_mb`), σ_inel(pp) for ``p``.

    Example:
        >>> round(sigma_inel_mb("Pb"))
        1724
    """
    nuc = NUCLEI[target]
    if nuc.interaction_length_g_cm2 is None:
        return value("sigma_inel_pp")
    return nuc.mass_number / (_AVOGADRO * nuc.interaction_length_g_cm2) / 1e-27


def per_collision(meson: str, target: str, n_pp: float | None = None) -> float:
    """⟨n_m⟩ per inelastic p + target collision from the p + p multiplicity.

    Arguments:
        meson: one of :data:`MESONS`.
        target: a key of :data:`NUCLEI`.
        n_pp: ⟨n_m⟩ per p + p collision (default: ⟨n_ω⟩_pp × the record's σ_m/σ_ω).

    Returns:
        ⟨n_m⟩_pp A^α_m σ_inel(pp)/σ_inel(pA) (module docstring; ⟨n_m⟩_pp for ``p``).

    Example:
        >>> round(per_collision("omega", "p"), 3)
        0.39
        >>> round(per_collision("omega", "Pb"), 3)
        0.731
    """
    if n_pp is None:
        n_pp = value("n_omega_pp") * value(f"ratio_{meson}")
    a = NUCLEI[target].mass_number
    return n_pp * a ** alpha(meson)[0] * value("sigma_inel_pp") / sigma_inel_mb(target)


def n_omega_rel_uncertainty(target: str) -> float:
    """Relative (log-normal) uncertainty of ⟨n_ω⟩ per collision of ``target``: ⟨n_ω⟩_pp,
    σ_inel(pp) and α_ω (its error moves A^α by the factor A^{±σ_α}) in quadrature of the logs,
    r = exp(√(Σ ln²(1 + rᵢ))) − 1 (the reach's normsys of size r). For ``p`` only ⟨n_ω⟩_pp
    counts (A^α σ_pp/σ_pA is then 1).

    Example:
        >>> round(n_omega_rel_uncertainty("p"), 4)   # 0.024/0.39
        0.0615
    """
    n = INPUTS["n_omega_pp"]
    s = INPUTS["sigma_inel_pp"]
    a_err = alpha("omega")[1]
    terms = [math.log1p(n.uncertainty / n.value)]
    if NUCLEI[target].interaction_length_g_cm2 is not None:
        terms += [math.log1p(s.uncertainty / s.value), math.log(NUCLEI[target].mass_number) * a_err]
    return math.expm1(math.sqrt(sum(t * t for t in terms)))
