"""Source-channel codes of the mock cocktail, shared by the generator and the selection."""

from __future__ import annotations

import enum


class Channel(enum.IntEnum):
    """Truth source of a dimuon in the mock data (branch ``truth_channel``).

    ``COMBINATORIAL`` pairs are random muons from π/K decays; ``ETA_MUMU`` is not a
    single-virtual-photon process and must be removed before Eq. 6 (physics.md §4).
    """

    COMBINATORIAL = 0
    ETA_DALITZ = 1  # η → γ μμ
    ETA_MUMU = 2  # η → μμ
    ETAPRIME_DALITZ = 3  # η′ → γ μμ
    OMEGA_MUMU = 4  # ω → μμ
    OMEGA_DALITZ = 5  # ω → π0 μμ
    RHO_MUMU = 6  # ρ → μμ
    PHI_MUMU = 7  # φ → μμ

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
}

NOT_SINGLE_PHOTON = frozenset({Channel.COMBINATORIAL, Channel.ETA_MUMU})
"""Channels that are not γ* → μμ and never enter the A′/χ predictions."""
