r"""The modelled A′ decays: :class:`Decay` and :data:`DECAYS` (two-body channels, daughter PDG
ids and masses, :data:`CHANNEL_CODE`), their branching ratios (:func:`branching_ratios`) and
the angular distribution W(cos θ) ∝ a + b cos²θ of a vector's decay
(:func:`decay_coefficients`, ρ₀₀ from the data's λ_θ:
:func:`gammastar.physics.vector_decay.rho00_from_lambda`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gammastar.physics import darkphoton
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.constants import M_K, M_K0, M_PI
from gammastar.physics.vector_decay import fermion_coefficients


@dataclass(frozen=True)
class Decay:
    """A two-body A′ decay: PDG ids and masses of daughter 1 (θ refers to it) and 2."""

    name: str
    pdg1: int
    pdg2: int
    m1: float
    m2: float
    fermion: bool


DECAYS: dict[str, Decay] = {
    **{
        ch.name: Decay(ch.name, ch.pdgid, -ch.pdgid, ch.lepton_mass, ch.lepton_mass, True)
        for ch in LEPTON_CHANNELS.values()
    },
    "pipi": Decay("pipi", -211, 211, M_PI, M_PI, False),
    "KK": Decay("KK", -321, 321, M_K, M_K, False),
    "KSKL": Decay("KSKL", 310, 130, M_K0, M_K0, False),
}
"""The modelled A′ decays (daughter 1 is the negative particle)."""
CHANNEL_CODE = {name: i for i, name in enumerate(DECAYS)}


# --------------------------------------------------------------------------- branching ratios
def branching_ratios(
    m: float, *, eps: float | None = None, dark: darkphoton.DarkSector | None = None
) -> dict[str, float]:
    """A′ branching ratios of the modelled two-body channels and of the rest.

    ``ee``, ``mumu`` and the hadronic total come from :func:`gammastar.physics.darkphoton
    .branching_ratio`; the hadronic BR is split with the package's R-ratio components: ππ
    = BR_had · R_ππ/R, K⁺K⁻ and K_S K_L = BR_had · R_φ→KK/R (the φ's two-kaon channels of
    :mod:`gammastar.physics.darkphoton`). ``hadrons_other`` is the unmodelled rest (3π, ωπ,
    π⁰γ, the continuum …), ``invisible`` the dark-sector width.

    Arguments:
        m: A′ mass (GeV).
        eps: kinetic mixing (only with ``dark``).
        dark: optional dark sector.

    Returns:
        ``{channel: BR}``, summing to 1 where the A′ can decay.

    Example:
        >>> br = branching_ratios(0.775)
        >>> round(sum(br.values()), 12), br["pipi"] > br["mumu"]
        (1.0, True)
    """
    from gammastar.physics.darkphoton import _PHI, _resonance_r  # the φ's channel split

    out = {
        ch: float(darkphoton.branching_ratio(m, ch, eps=eps if dark else None, dark=dark))
        for ch in ("ee", "mumu", "hadrons")
    }
    had = out.pop("hadrons")
    r_tot = float(darkphoton.r_ratio(m))
    s = np.asarray(float(m) ** 2)
    phi = _resonance_r(s, _PHI)
    parts = {
        "pipi": float(darkphoton.r_ratio_components(m)["pipi"]),
        "KK": float(phi["KK"]) if m > 2 * M_K else 0.0,
        "KSKL": float(phi["KSKL"]) if m > 2 * M_K0 else 0.0,
    }
    for ch, r in parts.items():
        out[ch] = had * r / r_tot if r_tot > 0 else 0.0
    out["hadrons_other"] = max(had - sum(out[c] for c in parts), 0.0)
    inv = 1.0 - had - out["ee"] - out["mumu"]
    out["invisible"] = inv if dark is not None else 0.0
    return {k: (0.0 if not math.isfinite(v) else v) for k, v in out.items()}


# --------------------------------------------------------------------------- angular distribution
def decay_coefficients(rho00: float, m: float, decay: Decay) -> tuple[float, float]:
    """(a, b) of W(cos θ) ∝ a + b cos²θ for ``decay`` of a vector of mass ``m`` (module doc).

    Example:
        >>> a, b = decay_coefficients(0.0, 1.0, DECAYS["pipi"])   # transverse: sin²θ
        >>> round(b / a, 12)
        -1.0
    """
    if decay.fermion:
        return fermion_coefficients(rho00, m, decay.m1)
    return (1 - rho00) / 2, (3 * rho00 - 1) / 2
