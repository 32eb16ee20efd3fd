r"""Fully differential pair acceptance from a per-lepton acceptance description, and the
fiducial region it states.

This module offers :class:`FiducialRegion` (the part of (m, q) space the data see: pairs with
A ≥ ``min_acceptance``; it reproduces it for any sample of kinematics) and
:func:`fiducial_from_config` (an analysis config's). The pieces, one concern each:

* :mod:`~gammastar.corrections.pair_acceptance.lepton`: the single-lepton acceptance
  (:class:`~gammastar.corrections.pair_acceptance.lepton.LeptonAcceptance`, its map);
* :mod:`~gammastar.corrections.pair_acceptance.table`: the pair acceptance A(m, p, θ)
  (:class:`~gammastar.corrections.pair_acceptance.table.PairAcceptance`), averaged over the
  lepton decay angles for a polar anisotropy λ_θ (helicity frame: polar axis along the γ* lab
  momentum; the detector is azimuthally symmetric, so A does not depend on the γ* azimuth);
* :mod:`~gammastar.corrections.pair_acceptance.tabulation`: the numba kernel of its
  decay-angle moments on a (m, log p, θ) grid;
* :mod:`~gammastar.corrections.pair_acceptance.interpolation`: the trilinear lookup per pair.

References:
    P. Faccioli et al., Eur. Phys. J. C 69 (2010) 657 (λ_θ and the helicity frame);
    NA60, Eur. Phys. J. C 59 (2009) 607 (per-muon acceptance of the dimuon spectrometer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.errors import InputError

__all__ = ["FiducialRegion", "fiducial_from_config"]


@dataclass(frozen=True)
class FiducialRegion:
    """The part of (m, q) space the data see: A(m, q) ≥ ``min_acceptance``.

    Example:
        >>> la = LeptonAcceptance(0.0, 0.0, 3.1)
        >>> pa = PairAcceptance.build(la, lepton_mass=0.1057, mass_range=(0.3, 0.5),
        ...     p_max=10.0, grid=(3, 4, 5), quadrature=(4, 4))
        >>> FiducialRegion(pa, 0.01).contains(np.array([0.4]), np.array([0.1]),
        ...     np.array([5.0])).tolist()
        [True]
    """

    acceptance: PairAcceptance
    min_acceptance: float

    def contains(self, m: ArrayLike, qt: ArrayLike, energy: ArrayLike) -> NDArray[np.bool_]:
        """Whether γ* of (m, q_T, E) lie inside the region."""
        return self.acceptance.of_kinematics(m, qt, energy) >= self.min_acceptance

    def as_dict(self) -> dict[str, Any]:
        return {"min_acceptance": self.min_acceptance, **self.acceptance.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FiducialRegion:
        """Rebuild from :meth:`as_dict` (maps are not stored: a mapped acceptance must be
        rebuilt from its config)."""
        la = d["lepton_acceptance"]
        if la.get("map"):
            raise InputError(
                "the fiducial region uses a lepton acceptance map; rebuild it from the config"
            )
        lepton = LeptonAcceptance(la["min_energy"], la["theta_min"], la["theta_max"])
        pa = PairAcceptance.build(
            lepton,
            lepton_mass=d["lepton_mass"],
            mass_range=tuple(d["mass_range"]),
            p_max=d["p_max"],
            lambda_theta=d["lambda_theta"],
            grid=tuple(d["grid"]),
            quadrature=tuple(d["quadrature"]),
        )
        return cls(pa, float(d["min_acceptance"]))


def fiducial_from_config(cfg: AnalysisConfig, lambda_theta: Any = None) -> FiducialRegion | None:
    """The fiducial region of an analysis config (``unfold.lepton_acceptance`` with the
    selection's lepton cuts on top, ``unfold.decay_lambda_theta``, ``unfold.min_acceptance``;
    mass range of the selection, momenta up to the beam energy); ``None`` without
    ``unfold.lepton_acceptance``.

    Arguments:
        cfg: the analysis config.
        lambda_theta: λ_θ to use instead of the config's (one, or one per mass node). With
            ``decay_lambda_theta: measured`` and none given, the measured λ_θ(m) that the
            selection used is read from ``<output>/select.json`` (``unfold.fiducial``).

    Raises:
        InputError: ``measured`` and the run directory has no selection that measured it.
    """
    u = cfg.unfold
    if u.lepton_acceptance is None:
        return None
    sel = cfg.selection
    lepton = LeptonAcceptance.from_config(u.lepton_acceptance, resolve=cfg.resolve).intersect(
        sel.lepton_min_energy, sel.lepton_theta_min, sel.lepton_theta_max
    )
    lam = u.decay_lambda_theta if lambda_theta is None else lambda_theta
    if isinstance(lam, str):  # "measured": the selection's
        lam = _selected_lambda(cfg.output_dir / "select.json")
    pa = PairAcceptance.build(
        lepton,
        lepton_mass=cfg.input.lepton_mass,
        mass_range=(sel.mass_min, sel.mass_max),
        p_max=cfg.beam.energy,
        lambda_theta=lam,
    )
    return FiducialRegion(pa, float(u.min_acceptance))


def _selected_lambda(path: Any) -> Any:
    """The λ_θ per mass node the selection of ``path`` (``select.json``) used."""
    import json

    try:
        fid = json.loads(path.read_text())["unfold"]["fiducial"]
        lam = fid["lambda_theta"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: unfold.decay_lambda_theta is 'measured' but this run directory has no "
            "selection with a fiducial region that measured it; run 'gammastar select' first"
        ) from exc
    return lam
