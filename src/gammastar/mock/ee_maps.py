"""The electron arm's maps, each simulated on its own random stream apart from the events':
the conversion template ``conversion_ratio_ee`` (:func:`conversion_template`: recorded
conversion / γ* pairs per reconstructed (m, pT) cell) and the single-electron acceptance
``lepton_acceptance_ee`` (:func:`lepton_acceptance_ee`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gammastar.cocktail_channels import Channel
from gammastar.mock.acceptance import EE_GSTAR
from gammastar.mock.generator import MockGenerator

CONVERSION_TEMPLATE_AXIS = (60, 0.0, 0.06)
"""``conversion_ratio_ee``: 1 MeV bins of the reconstructed ee mass, 0–60 MeV (conversions
above 40 MeV: < 10⁻⁵ of them, docs/reference/mock.md)."""

CONVERSION_TEMPLATE_STREAM = 0x636F6E76
"""Entropy word of the conversion template's seed sequence ([seed, this]): a stream apart
from the events' (``SeedSequence(seed).spawn``)."""

LEPTON_MAP_P_EDGES = (0.5, 500.0, 181)
"""``lepton_acceptance_ee`` momentum edges: ``np.geomspace(0.5, 500, 181)`` GeV (4% steps;
the 1 GeV threshold's radiative and resolution smearing spans several)."""

LEPTON_MAP_STREAM = 0x6C6D6170
"""Entropy word of ``lepton_acceptance_ee``'s seed sequence ([seed, this])."""


def conversion_template(gen: MockGenerator, n: int | None = None) -> Any:
    """The conversion template ``conversion_ratio_ee`` of the generator ``gen``: R(m, pT) =
    recorded conversion pairs / recorded γ* pairs per cell of reconstructed mass
    (:data:`CONVERSION_TEMPLATE_AXIS`) and pair pT (``mock.acceptance_pt_edges``, the
    acceptance map's: inside a cell the conversion and γ* pairs then share their 1/A), from a
    separate simulation of ``n`` dielectron sources (cocktail and conversions at their rates
    per collision, no combinatorial; default ``mock.electrons.conversion_template_sources``)
    through the electron detector, on its own random stream (the data's events are not used:
    the experiment's simulation of its material). Variances R²(1/N_conv + 1/N_γ*); R = 0
    where no γ* pair was simulated.

    Returns:
        A 2-D ``hist.Hist`` (Weight storage), or ``None`` without electrons, conversions
        or with ``n`` = 0.
    """
    import hist

    n = gen.cfg.electrons.conversion_template_sources if n is None else int(n)
    if not gen.electrons:
        return None
    cocktail, backgrounds, detector = gen.electron_arm()
    if backgrounds.conversion_weight == 0.0 or n <= 0:
        return None
    w = np.append(cocktail.weights, backgrounds.conversion_weight)
    nb, lo, hi = CONVERSION_TEMPLATE_AXIS
    m_edges = np.linspace(lo, hi, nb + 1)
    pt_edges = np.asarray(gen.cfg.acceptance_pt_edges, dtype=np.float64)
    conv = np.zeros((nb, len(pt_edges) - 1))
    gstar = np.zeros_like(conv)
    size = int(gen.cfg.chunk_size)
    ss = np.random.SeedSequence([gen.seed, CONVERSION_TEMPLATE_STREAM])
    for i, child in enumerate(ss.spawn(max(1, -(-n // size)))):
        rng = np.random.default_rng(child)
        counts = np.append(rng.multinomial(min(size, n - i * size), w / w.sum()), 0)
        src = gen.ee_sources(rng, counts)
        reco = detector.apply(rng, src)
        ok = reco.accepted
        for out, sel in (
            (conv, ok & (src.channel == int(Channel.CONVERSION))),
            (gstar, ok & np.isin(src.channel, list(EE_GSTAR))),
        ):
            out += np.histogram2d(reco.m[sel], reco.pt[sel], (m_edges, pt_edges))[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(gstar > 0, conv / gstar, 0.0)
        var = np.where((gstar > 0) & (conv > 0), r**2 * (1.0 / conv + 1.0 / gstar), 0.0)
    h = hist.Hist(
        hist.axis.Regular(nb, lo, hi, name="m", label="m [GeV]"),
        hist.axis.Variable(pt_edges, name="pT", label="p_T [GeV]"),
        storage=hist.storage.Weight(),
        name="conversion template: recorded conversion / gamma* ee pairs per (m, pT) cell",
    )
    h.view()["value"] = r
    h.view()["variance"] = var
    return h


def lepton_acceptance_ee(gen: MockGenerator, n_per_bin: int = 5_000) -> Any:
    """``lepton_acceptance_ee``: the single-electron acceptance of the generator ``gen``'s
    electron arm in (true p, true θ)
    (:meth:`~gammastar.mock.electrons.ElectronDetector.lepton_acceptance`;
    :data:`LEPTON_MAP_P_EDGES`, θ edges 0, θ_min, θ_max, π), on its own random stream.

    Returns:
        A 2-D ``hist.Hist`` (Weight storage), or ``None`` without electrons.
    """
    import hist

    if not gen.electrons:
        return None
    c = gen.cfg.electrons.detector
    p_edges = np.geomspace(*LEPTON_MAP_P_EDGES)
    t_edges = np.array([0.0, c.theta_min, c.theta_max, np.pi])
    rng = np.random.default_rng(np.random.SeedSequence([gen.seed, LEPTON_MAP_STREAM]))
    prob, var = gen.electron_arm()[2].lepton_acceptance(rng, p_edges, t_edges, n_per_bin)
    h = hist.Hist(
        hist.axis.Variable(p_edges, name="p", label="p [GeV]"),
        hist.axis.Variable(t_edges, name="theta", label="theta [rad]"),
        storage=hist.storage.Weight(),
        name="single-electron acceptance (radiation, resolution, E and angle cuts)",
    )
    h.view()["value"] = prob
    h.view()["variance"] = var
    return h
