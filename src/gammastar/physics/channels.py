"""The leptonic A′ decay channels, A′ → ℓ⁺ℓ⁻: :class:`LeptonChannel` and the registry
:data:`LEPTON_CHANNELS`.

numpy-free at import (the width imports it when called), so that the config can check
``reach.channels`` and ``input.lepton`` against the registry in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gammastar.physics.constants import ALPHA_EM, M_E, M_MU

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["LEPTON_CHANNELS", "LeptonChannel"]


@dataclass(frozen=True)
class LeptonChannel:
    """One leptonic A′ decay channel, A′ → ℓ⁺ℓ⁻: the one place its numbers live.

    The acceptance's daughters (:func:`gammastar.reach.acceptance.draw`), the reach's open channels
    (:attr:`threshold`), the partial width (:meth:`width`) and the config's allowed
    ``reach.channels`` all come from its entry in :data:`LEPTON_CHANNELS`.

    Attributes:
        name: the channel's key (``reach.channels``).
        lepton_mass: the daughter lepton's mass, GeV.
        label: LaTeX label of the final state (plots).
        pdgid: PDG id of the negative lepton (its antiparticle is ``-pdgid``; events).
        flavour: the lepton's name in ``input.lepton`` (``"e"``, ``"mu"``).
    """

    name: str
    lepton_mass: float
    label: str
    pdgid: int
    flavour: str

    @property
    def threshold(self) -> float:
        """The A′ mass above which the channel is open, 2 m_ℓ (GeV)."""
        return 2 * self.lepton_mass

    def width(self, m: ArrayLike, eps: ArrayLike) -> NDArray[np.float64]:
        r"""Γ(A′ → ℓ⁺ℓ⁻) = ε² α m/3 · K_f(m, m_ℓ) in GeV (docs/explanation/physics.md §7, Eq. of
        Bjorken et al. PRD 80 (2009) 075018; :func:`gammastar.physics.kinematics.kinematic_factor`).

        Example:
            >>> import numpy as np
            >>> bool(np.isclose(LEPTON_CHANNELS["ee"].width(1.0, 1e-3), 1e-6 * ALPHA_EM / 3,
            ...                 rtol=1e-5))
            True
        """
        import numpy as np

        from gammastar.physics.kinematics import kinematic_factor

        m = np.asarray(m, dtype=np.float64)
        eps2 = np.asarray(eps, dtype=np.float64) ** 2
        return eps2 * ALPHA_EM * m / 3 * kinematic_factor(m, self.lepton_mass)


LEPTON_CHANNELS: dict[str, LeptonChannel] = {
    ch.name: ch
    for ch in (
        LeptonChannel("ee", M_E, "$e^+e^-$", 11, "e"),
        LeptonChannel("mumu", M_MU, r"$\mu^+\mu^-$", 13, "mu"),
    )
}
"""The leptonic A′ decay channels (the registry: one :class:`LeptonChannel` each)."""
