"""The flavours of a run with both channels (``input.lepton: [mu, e]``): the ``pairs.parquet``
``flavour`` codes (:data:`FLAVOUR_CODES`) and each flavour's channel name
(:func:`flavour_channel`), light enough for the stages that read a selection's outputs."""

from __future__ import annotations

from gammastar.physics.channels import LEPTON_CHANNELS

__all__ = ["FLAVOUR_CODES", "flavour_channel"]

FLAVOUR_CODES = {"mu": 13, "e": 11}
"""``pairs.parquet`` ``flavour`` (a run with ``input.lepton: [mu, e]``): the |PDG id| of the
pair's leptons."""


def flavour_channel(flavour: str) -> str:
    """The dilepton channel name of a flavour (``mu`` → ``mumu``, ``e`` → ``ee``;
    :data:`gammastar.physics.channels.LEPTON_CHANNELS`): the suffix of its histograms
    (``os_m_ee``) and its key in ``select.json``/``yields.json`` ``flavours``.

    Example:
        >>> flavour_channel("e"), flavour_channel("mu")
        ('ee', 'mumu')
    """

    return next(c.name for c in LEPTON_CHANNELS.values() if c.flavour == flavour)
