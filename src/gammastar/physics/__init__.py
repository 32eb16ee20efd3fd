"""Pure physics kernels: functions of numpy arrays, each with its reference.

Submodules: :mod:`~gammastar.physics.constants`, :mod:`~gammastar.physics.kinematics`
(K_f and the Eq. 6 / Eq. 8 factors), :mod:`~gammastar.physics.dalitz` (Kroll–Wada,
V → Pℓℓ, form factors, ρ line shape), :mod:`~gammastar.physics.millicharge`,
:mod:`~gammastar.physics.darkphoton`, :mod:`~gammastar.physics.bremsstrahlung`,
:mod:`~gammastar.physics.target` (protons interacting in a target of given thickness),
:mod:`~gammastar.physics.darksector` (iDM/i2DM widths, ψ₂ → ψ₁ℓℓ),
:mod:`~gammastar.physics.darkchain` (their decay kinematics and chain),
:mod:`~gammastar.physics.decay` (the decay-in-volume probability of a long-lived particle),
:mod:`~gammastar.physics.sampling` (spectra and the decay-angle sampler),
:mod:`~gammastar.physics.scintillator` (a millicharge detector).
"""

from __future__ import annotations
