"""Source-channel codes of the mock cocktail, shared by the generator and the selection."""

from __future__ import annotations

import enum


class Channel(enum.IntEnum):
    """Truth source of a dimuon in the mock data (branch ``truth_channel``).

    ``COMBINATORIAL`` pairs are random muons from π/K decays; ``ETA_MUMU`` is not a
    single-virtual-photon process and must be removed before Eq. 6 (docs/explanation/physics.md §4).
    """

    COMBINATORIAL = 0
    ETA_DALITZ = 1  # η → γ μμ
    ETA_MUMU = 2  # η → μμ
    ETAPRIME_DALITZ = 3  # η′ → γ μμ
    OMEGA_MUMU = 4  # ω → μμ
    OMEGA_DALITZ = 5  # ω → π0 μμ
    RHO_MUMU = 6  # ρ → μμ
    PHI_MUMU = 7  # φ → μμ
    # dielectrons (mock.leptons holding "e")
    PI0_DALITZ_EE = 8  # π0 → γ ee
    ETA_DALITZ_EE = 9  # η → γ ee
    ETAPRIME_DALITZ_EE = 10  # η′ → γ ee
    OMEGA_EE = 11  # ω → ee
    OMEGA_DALITZ_EE = 12  # ω → π0 ee
    RHO_EE = 13  # ρ → ee
    PHI_EE = 14  # φ → ee
    CONVERSION = 15  # γ → ee in material (photons of π0 → γγ)
    COMBINATORIAL_EE = 16  # two unrelated electrons

    @property
    def label(self) -> str:
        """A LaTeX label for plots."""
        return _LABELS[self]


_LABELS = {
    Channel.COMBINATORIAL: "combinatorial",
    Channel.ETA_DALITZ: r"$\eta \to \gamma\mu\mu$",
    Channel.ETA_MUMU: r"$\eta \to \mu\mu$",
    Channel.ETAPRIME_DALITZ: r"$\eta' \to \gamma\mu\mu$",
    Channel.OMEGA_MUMU: r"$\omega \to \mu\mu$",
    Channel.OMEGA_DALITZ: r"$\omega \to \pi^0\mu\mu$",
    Channel.RHO_MUMU: r"$\rho \to \mu\mu$",
    Channel.PHI_MUMU: r"$\phi \to \mu\mu$",
    Channel.PI0_DALITZ_EE: r"$\pi^0 \to \gamma ee$",
    Channel.ETA_DALITZ_EE: r"$\eta \to \gamma ee$",
    Channel.ETAPRIME_DALITZ_EE: r"$\eta' \to \gamma ee$",
    Channel.OMEGA_EE: r"$\omega \to ee$",
    Channel.OMEGA_DALITZ_EE: r"$\omega \to \pi^0 ee$",
    Channel.RHO_EE: r"$\rho \to ee$",
    Channel.PHI_EE: r"$\phi \to ee$",
    Channel.CONVERSION: r"$\gamma \to ee$ (conversion)",
    Channel.COMBINATORIAL_EE: "combinatorial ee",
}

NOT_SINGLE_PHOTON = frozenset(
    {Channel.COMBINATORIAL, Channel.ETA_MUMU, Channel.CONVERSION, Channel.COMBINATORIAL_EE}
)
"""Channels that are not γ* → ℓℓ and never enter the A′/χ predictions."""

ELECTRON_CHANNELS = frozenset(c for c in Channel if c >= Channel.PI0_DALITZ_EE)
"""Channels whose two leptons are electrons (the others: muons)."""
