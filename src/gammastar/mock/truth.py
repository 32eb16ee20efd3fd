"""The mock generator's full-phase-space γ* truth, for closure tests and benchmarks.

:func:`truth_gstar` draws cocktail sources (no detector: every γ*, every angle and energy)
with the generator of an analysis config and returns their true γ* kinematics with the
equivalent N_POT, so that any data-driven number (yield, fiducial fraction, LLP acceptance,
N_sig) can be compared with what the generator really made. It checks corrections; it never
feeds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.channels import Channel

__all__ = ["GstarTruth", "truth_gstar", "truth_polarisation"]


@dataclass(frozen=True)
class GstarTruth:
    """True γ* of ``n_sources`` generated cocktail sources (η → μμ excluded: no γ*)."""

    m: NDArray[np.float64]
    """True γ* mass, GeV."""
    qT: NDArray[np.float64]
    E: NDArray[np.float64]
    pz: NDArray[np.float64]
    """Lab transverse momentum, energy and longitudinal momentum of the γ*, GeV."""
    channel: NDArray[np.int32]
    """:class:`~gammastar.channels.Channel` code of the source."""
    n_pot: float
    """Equivalent protons on target of the generated sources (the generator's formula)."""

    def in_window(self, mass: float, half_width: float) -> GstarTruth:
        """The γ* with |m − mass| < half_width."""
        k = np.abs(self.m - mass) < half_width
        return GstarTruth(self.m[k], self.qT[k], self.E[k], self.pz[k], self.channel[k],
                          self.n_pot)  # fmt: skip


def truth_gstar(config, n_sources: int, seed: int) -> GstarTruth:
    """Generate ``n_sources`` cocktail sources of ``config``'s mock and return the γ*: the
    dielectron cocktail's with ``input.lepton: e`` (and ``e`` in ``mock.leptons``), else the
    muon cocktail's.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` with a ``mock`` section.
        n_sources: cocktail sources to generate (all channels, by their probabilities).
        seed: random seed.

    Returns:
        :class:`GstarTruth`.
    """
    from gammastar.mock.generate import MockGenerator
    from gammastar.physics.target import interaction_probability

    gen = MockGenerator(config, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    if config.input.lepton == "e" and gen.electrons:  # the dielectron γ* sources (codes 8–14)
        from gammastar.mock.cocktail import Sources

        cocktail = gen.ee_cocktail
        counts = rng.multinomial(n_sources, cocktail.probabilities)
        parts = zip(cocktail.specs, counts, strict=True)
        src = Sources.concatenate([cocktail.generate(rng, sp, int(n)) for sp, n in parts if n])
    else:
        cocktail = gen.cocktail
        counts = np.concatenate([rng.multinomial(n_sources, gen.cocktail.probabilities), [0]])
        src = gen.sources(rng, counts)
    # the collisions that make n_sources of this cocktail (its own ⟨n⟩ BR per collision: no
    # other flavour's sources, conversions or prescale; the generator's n_pot formula)
    p_int = interaction_probability(config.beam.interaction_lengths)
    n_pot = n_sources / (p_int * cocktail.mesons_per_collision())
    keep = src.channel != int(Channel.ETA_MUMU)
    g = src.gstar[:, keep]
    return GstarTruth(
        m=g[4],
        qT=np.hypot(g[0], g[1]),
        E=g[3],
        pz=g[2],
        channel=src.channel[keep],
        n_pot=n_pot,
    )


class TruthSampler:
    """The generator's γ* at mass m as an A′ kinematics sampler (for closure tests).

    ``sample(mass, n, seed)`` resamples (q_T, E) of the true γ* with
    |m_true − mass| < ``half_width`` (with replacement), rescaling E at fixed momentum
    direction and |q| to the exact mass; ``mass_range`` is that of the truth.
    """

    def __init__(self, truth: GstarTruth, half_width: float = 0.015) -> None:
        self.truth = truth
        self.half_width = half_width
        self.mass_range = (float(truth.m.min()), float(truth.m.max()))

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        t = self.truth.in_window(mass, self.half_width)
        if t.m.size == 0:
            raise ValueError(f"no true gamma* within {self.half_width} GeV of {mass} GeV")
        k = np.random.default_rng(seed).integers(0, t.m.size, n)
        p2 = t.E[k] ** 2 - t.m[k] ** 2
        return {"qT": t.qT[k], "E": np.sqrt(p2 + mass**2)}


def empirical_smearing(path, *, bin_width: float = 0.01):
    """The mock detector's mass response, measured on the file's ``truth`` tree (reco ``m``
    against ``m_true`` of the recorded sources): returns ``smear(m_true, rng)`` drawing for
    each mass a residual m − m_true of a recorded source of the same ``bin_width`` bin of true
    mass (the nearest populated bin outside). This is the resolution the data-driven yield
    carries (no resolution unfolding).
    """
    import uproot

    with uproot.open(path) as f:
        t = f["truth"].arrays(["m", "m_true"], library="np")
    mt, d = np.asarray(t["m_true"], float), np.asarray(t["m"] - t["m_true"], float)
    ok = np.isfinite(mt) & np.isfinite(d)
    mt, d = mt[ok], d[ok]
    lo = float(mt.min())
    idx = np.floor((mt - lo) / bin_width).astype(np.int64)
    order = np.argsort(idx, kind="stable")
    idx, d = idx[order], d[order]
    nbin = int(idx.max()) + 1
    start = np.searchsorted(idx, np.arange(nbin))
    count = np.bincount(idx, minlength=nbin)
    filled = np.flatnonzero(count > 0)

    def smear(m_true: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.float64]:
        b = np.clip(np.floor((m_true - lo) / bin_width).astype(np.int64), 0, nbin - 1)
        near = filled[np.clip(np.searchsorted(filled, b), 0, filled.size - 1)]
        b = np.where(count[b] > 0, b, near)
        pick = start[b] + (rng.random(b.size) * count[b]).astype(np.int64)
        return m_true + d[pick]

    return smear


def truth_polarisation(path, edges) -> dict[str, Any]:
    """The generator's true λ_θ, λ_φ, λ_θφ (γ* lab helicity frame) per mass bin (true mass)
    from the mock file's ``truth_hel_*`` and ``truth_all_m`` histograms, by moments
    (:func:`gammastar.polarisation.truth_lambdas`' formulas; ``lambda_theta_err`` from the
    spread of cos²θ* of an isotropic-to-transverse decay, ≤ √(4/45 / n) × 20/(5⟨c²⟩ − 3)²).

    Arguments:
        path: the mock ROOT file. edges: mass bin edges (GeV; multiples of 1 MeV).
    """
    import uproot

    from gammastar.mock.generate import TRUTH_HELICITY

    edges = np.asarray(edges, dtype=np.float64)
    with uproot.open(path) as f:
        n_all = f["truth_all_m"].to_hist()
        sums = [f[name].to_hist() for name in TRUTH_HELICITY]
    centres = n_all.axes[0].centers
    idx = np.searchsorted(edges, centres, side="right") - 1
    ok = (idx >= 0) & (idx < edges.size - 1)
    nb = edges.size - 1

    def rebin(h):
        return np.bincount(idx[ok], weights=np.asarray(h.values())[ok], minlength=nb)

    n = rebin(n_all)
    s = np.stack([rebin(h) for h in sums])
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = s[0] / n
        lt = (5.0 - 15.0 * c2) / (5.0 * c2 - 3.0)
        norm = 1.0 + lt / 3.0
        err = np.sqrt(4.0 / 45.0 / n) * 20.0 / (5.0 * c2 - 3.0) ** 2
        return {
            "mass_edges": edges,
            "lambda_theta": lt,
            "lambda_theta_err": err,
            "lambda_phi": s[1] / n * norm * 3.75,
            "lambda_theta_phi": s[2] / n * norm * 3.75,
            "n": n,
        }
