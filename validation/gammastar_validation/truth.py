"""The mock generator's full-phase-space γ* truth, for the closure studies and their tests.

:func:`truth_gstar` draws cocktail sources (no detector: every γ*, every angle and energy)
with the generator of an analysis config and returns their true γ* kinematics with the
equivalent N_POT, so that any data-driven number (yield, fiducial fraction, LLP acceptance,
N_sig) can be compared with what the generator really made. It checks corrections; it never
feeds one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.cocktail_channels import Channel

__all__ = [
    "GstarTruth",
    "TiltedMesons",
    "channels_in_window",
    "empirical_smearing",
    "response_residuals",
    "smearing_from_residuals",
    "true_fiducial_fraction",
    "truth_gstar",
    "truth_polarisation",
]


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
    """:class:`~gammastar.cocktail_channels.Channel` code of the source."""
    n_pot: float
    """Equivalent protons on target of the generated sources (the generator's formula)."""
    weight: NDArray[np.float64] | None = None
    """Importance weight per γ* (mesons from :class:`TiltedMesons`); ``None``: all 1."""

    def in_window(self, mass: float, half_width: float) -> GstarTruth:
        """The γ* with |m − mass| < half_width."""
        k = np.abs(self.m - mass) < half_width
        w = None if self.weight is None else self.weight[k]
        return GstarTruth(self.m[k], self.qT[k], self.E[k], self.pz[k], self.channel[k],
                          self.n_pot, w)  # fmt: skip


def truth_gstar(config, n_sources: int, seed: int, mesons: Any = None, *,
                window: tuple[float, float] | None = None) -> GstarTruth:  # fmt: skip
    """Generate ``n_sources`` cocktail sources of ``config``'s mock and return the γ*: the
    dielectron cocktail's with ``input.lepton: e`` (and ``e`` in ``mock.leptons``), else the
    muon cocktail's.

    With ``window`` (lo, hi) in true γ* mass, GeV, only the channels that can make a γ* in it
    (:func:`channels_in_window`) are generated, by their relative probabilities, and only the
    γ* inside it returned: importance sampling by channel with one weight, the subset's
    probability P_S, carried by ``n_pot`` (the collisions that make ``n_sources``/P_S sources
    of the whole cocktail), so that a yield or acceptance in the window is the whole
    cocktail's; a narrow window far from the π0 (dielectrons) gains a factor 1/P_S in size.

    The mesons are those of ``mock.backend``: with ``pythia`` the PYTHIA pool of the data's
    mock (``mesons``, or the pool of the config's seed, the one ``gammastar generate`` draws),
    so that the true meson yields per POT (PYTHIA's multiplicities), their kinematics and the
    decays P → γγ*, V → Pγ*, V → γ* are the data's.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` with a ``mock`` section.
        n_sources: cocktail sources to generate (all channels, by their probabilities).
        seed: random seed.
        mesons: the meson source (:class:`gammastar.mock.cocktail.MesonSource`) of the data's
            mock; default: ``mock.backend``'s, the PYTHIA pool of ``config.seed``.

    Returns:
        :class:`GstarTruth`.
    """
    from gammastar.mock.generator import MockGenerator
    from gammastar.physics.target import interaction_probability

    if mesons is None and config.mock is not None and config.mock.backend == "pythia":
        from gammastar.mock.pythia import PythiaMesons

        mesons = PythiaMesons(config, config.seed)
    gen = MockGenerator(config, seed=seed, mesons=mesons)
    tilted = isinstance(mesons, TiltedMesons)
    if tilted:  # the generator's set-up (pilot, calibration) drew parents: not the truth's
        mesons.reset()
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    ee = config.input.lepton == "e" and gen.electrons  # the dielectron γ* sources (codes 8–14)
    cocktail = gen.ee_cocktail if ee else gen.cocktail
    prob = np.asarray(cocktail.probabilities, dtype=np.float64)
    p_subset = 1.0
    if window is not None:
        allowed = set(channels_in_window(cocktail.specs, *window))
        use = np.array([int(sp.channel) in allowed for sp in cocktail.specs])
        p_subset = float(prob[use].sum())
        if p_subset <= 0:
            raise ValueError(f"truth_gstar: no cocktail channel makes a γ* in {window} GeV")
        prob = np.where(use, prob, 0.0) / p_subset
    if ee:
        from gammastar.mock.cocktail import Sources

        counts = rng.multinomial(n_sources, prob)
        parts = zip(cocktail.specs, counts, strict=True)
        src = Sources.concatenate([cocktail.generate(rng, sp, int(n)) for sp, n in parts if n])
    else:
        counts = np.concatenate([rng.multinomial(n_sources, prob), [0]])
        src = gen.sources(rng, counts)
    # the collisions that make n_sources of this cocktail (its own ⟨n⟩ BR per collision: no
    # other flavour's sources, conversions or prescale; the generator's n_pot formula), of
    # n_sources / P_S of the whole cocktail with a window
    p_int = interaction_probability(config.beam.interaction_lengths)
    n_pot = n_sources / (p_subset * p_int * cocktail.mesons_per_collision())
    keep = src.channel != int(Channel.ETA_MUMU)
    if window is not None:
        mt = src.gstar[4]
        keep &= (mt > window[0]) & (mt < window[1])
    weight = None
    if tilted:  # one parent per source, drawn in the sources' order
        weight = np.concatenate(mesons.weights) if mesons.weights else np.zeros(0)
        if weight.size != len(src):
            raise RuntimeError(f"truth_gstar: {weight.size} parent weights for {len(src)} sources")
        weight = weight[keep]
    g = src.gstar[:, keep]
    return GstarTruth(
        m=g[4],
        qT=np.hypot(g[0], g[1]),
        E=g[3],
        pz=g[2],
        channel=src.channel[keep],
        n_pot=n_pot,
        weight=weight,
    )


def channels_in_window(specs, lo: float, hi: float) -> list[int]:
    """The codes of the cocktail channels (:class:`gammastar.mock.cocktail.ChannelSpec`) whose
    true γ* mass can fall in (lo, hi), GeV, from each decay's kinematic range: P → γℓℓ below
    m_P, V → π0ℓℓ below m_V − m_π0, V → ℓℓ at m_V (the generator's two-body parents sit at
    their PDG mass), ρ → ℓℓ anywhere (its line shape, above 2m_ℓ); η → μμ never (no γ*).

    Example:
        >>> from gammastar.mock.cocktail import EE_CHANNELS
        >>> from gammastar.cocktail_channels import Channel
        >>> [Channel(c).name for c in channels_in_window(EE_CHANNELS, 0.985, 1.015)]
        ['RHO_EE']
    """
    from gammastar.physics.constants import mass

    out = []
    for sp in specs:
        top = {"p_dalitz": mass(sp.parent), "rho": np.inf}.get(sp.kind)
        if sp.kind == "v_dalitz":
            top = mass(sp.parent) - mass(sp.third or "pi0")
        if sp.kind == "two_body":
            ok = sp.channel != Channel.ETA_MUMU and lo < mass(sp.parent) < hi
        else:
            ok = top is not None and lo < top and hi > 2 * sp.lepton_mass
        if ok:
            out.append(int(sp.channel))
    return out


TRUTH_FIDUCIAL_SOURCES = 1_000_000
"""Cocktail sources :func:`true_fiducial_fraction` draws by default."""


def true_fiducial_fraction(config, fiducial, edges, *, sources: int = TRUTH_FIDUCIAL_SOURCES,
                           seed: int | None = None) -> list[float | None]:  # fmt: skip
    """The mock generator's true fraction of γ* inside the fiducial region per mass bin, the
    truth that the extrapolation's fitted f_F (``yields.json`` ``extrapolation.
    fiducial_fraction``) is checked against.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` with a ``mock`` section.
        fiducial: the fiducial region (:class:`gammastar.pair_acceptance.FiducialRegion`).
        edges: mass bin edges (GeV), true mass.
        sources: cocktail sources of the truth sample.
        seed: its seed (default: the config's seed + 1).

    Returns:
        per bin the fraction inside, ``None`` for a bin without a true γ*.
    """
    if config.mock is None:
        raise ValueError("true_fiducial_fraction: the config has no mock section")
    tr = truth_gstar(config, sources, seed=config.seed + 1 if seed is None else seed)
    inside = fiducial.contains(tr.m, tr.qT, tr.E)
    n_all = np.histogram(tr.m, edges)[0].astype(float)
    n_in = np.histogram(tr.m[inside], edges)[0].astype(float)
    return [float(a / b) if b > 0 else None for a, b in zip(n_in, n_all, strict=True)]


class TiltedMesons:
    """A meson source (:class:`gammastar.mock.cocktail.ParametricMesons` or a PYTHIA pool,
    :class:`gammastar.mock.pythia.PythiaMesons`) whose parents come from a defensive mixture,
    recording each parent's importance weight w = p/q: a third from the source itself, a
    third with the rapidity tilted by e^{κy} (forward mesons: the fast A′ of an on-axis detector
    at short cτ), a third with the transverse momentum tilted (the m_T slope T × ``pt_scale``:
    the fast, wide-angle A′ of an off-axis one), q the mean of the three (w ≤ 3, so that no
    part of the phase space is worse sampled than by a third as many plain draws).

    The parametric rapidity is a Gaussian N(μ, σ) truncated at the kinematic limit
    |y| ≤ arccosh(E_max/m_T) (:func:`gammastar.physics.sampling.limit_rapidity`): its tilt
    is N(μ + κσ², σ) with the same truncation, drawn by the parametric source itself with
    that mean; p(y)/p_κ(y) = e^{−κy} Z_κ e^{κμ + κ²σ²/2} / Z, Z the truncation's
    normalisation; the p_T densities are :func:`gammastar.physics.sampling.log_mt_density`'s
    at T and at T × ``pt_scale``. A fall-off (1 − E/E_max)^n of the spectra rides on the
    weight, f p/(H q) with H its mean over the plain spectra (every component drawn without
    it, so the parents towards E_max are kept, not thinned by f). A pool's members are drawn with
    q_i = (1/N + e^{κ y_i}/Σ_j e^{κ y_j} + e^{λ p_T,i}/Σ_j e^{λ p_T,j})/3 instead of 1/N,
    λ = (1 − 1/``pt_scale``)/⟨p_T⟩ (the same flattening of an exponential p_T spectrum).

    With ``decay_tilt`` κ_d > 0 the Dalitz γ* of these parents (P → γγ*, V → Pγ*) take their
    polar angle in the parent frame from a defensive mixture too (:meth:`gstar_cos`): half
    isotropic, half from e^{κ_d cos θ} (emitted along the beam, so carrying the most of their
    parent's energy: the fastest γ* of a light mass, where an ε_high edge lies), the weight
    p/q ≤ 2 multiplied into their parents'.

    ``weights`` holds one array per :meth:`sample` call since :meth:`reset`, in call order.
    """

    def __init__(self, base: Any, tilt: float, pt_scale: float = 3.0,
                 decay_tilt: float = 0.0) -> None:  # fmt: skip
        self.base = base
        self.tilt = float(tilt)
        self.pt_scale = float(pt_scale)
        self.decay_tilt = float(decay_tilt)
        self.weights: list[NDArray[np.float64]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def reset(self) -> None:
        """Forget the recorded weights."""
        self.weights = []

    def gstar_cos(self, rng: np.random.Generator, n: int) -> NDArray[np.float64]:
        """cos θ of the Dalitz γ* of the last ``n`` parents drawn (:class:`gammastar.mock.
        cocktail.MesonSource`): isotropic without ``decay_tilt``, else from the mixture of the
        class docstring, q(c) = 1/4 + κ e^{κc}/(4 sinh κ) against p(c) = 1/2, the weights
        p/q multiplied into those parents'."""
        k = self.decay_tilt
        if not k:
            return rng.uniform(-1.0, 1.0, n)
        if not self.weights or self.weights[-1].size != n:
            raise RuntimeError(f"TiltedMesons.gstar_cos: {n} γ* for the last parents drawn")
        tilted = rng.random(n) < 0.5
        u = rng.random(n)
        # e^{κc} on [−1, 1] by its inverse CDF, ln(e^{−κ} + u (e^{κ} − e^{−κ}))/κ, written
        # as −1 + ln(1 + u (e^{2κ} − 1))/κ
        c = np.where(tilted, -1.0 + np.log1p(u * np.expm1(2.0 * k)) / k, 2.0 * u - 1.0)
        q = 0.25 + 0.5 * k * np.exp(k * (c - 1.0)) / -np.expm1(-2.0 * k)
        self.weights[-1] = self.weights[-1] * (0.5 / q)
        return np.asarray(c, dtype=np.float64)

    def sample(self, rng: np.random.Generator, masses: NDArray[np.float64], parent: str = ""):
        pool = getattr(self.base, "pool", None)
        out, w = (self._pool if pool is not None else self._parametric)(rng, masses, parent)
        self.weights.append(w)
        return out

    def _pool(self, rng, masses, parent):
        from gammastar.physics.kinematics import four_momentum

        name = parent or "omega"
        pt, y = self.base.pool.pt[name], self.base.pool.y[name]
        n, big = masses.size, pt.size
        if big == 0:
            return self.base.sample(rng, masses, parent), np.ones(n)
        lam = (1.0 - 1.0 / self.pt_scale) / max(float(pt.mean()), 1e-3)
        q_y = np.exp(self.tilt * (y - y.max()))
        q_pt = np.exp(lam * (pt - pt.max()))
        q_y, q_pt = q_y / q_y.sum(), q_pt / q_pt.sum()
        part = rng.integers(0, 3, n)
        i = rng.integers(0, big, n)
        i[part == 1] = rng.choice(big, int((part == 1).sum()), p=q_y)
        i[part == 2] = rng.choice(big, int((part == 2).sum()), p=q_pt)
        w = (1.0 / big) / ((1.0 / big + q_y[i] + q_pt[i]) / 3.0)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        return four_momentum(masses, pt[i], y[i], phi), w

    def _parametric(self, rng, masses, parent):
        from scipy.special import log_ndtr
        from scipy.stats import norm

        from gammastar.mock.cocktail import ParametricMesons
        from gammastar.physics.sampling import log_mt_density

        cfg, e_max = self.base.cfg, self.base.beam_energy
        pi0 = parent == "pi0"
        sig = cfg.electrons.pi0.rapidity_sigma if pi0 else cfg.rapidity_sigma
        temp = cfg.electrons.pi0.pt_temperature if pi0 else cfg.pt_temperature
        mu, k = cfg.rapidity_mean, self.pt_scale
        shift = self.tilt * sig**2
        # every component drawn without the fall-off, which rides on the weight instead (the
        # parents towards E_max all kept rather than thinned by (1 − E/E_max)^n)
        falloff = float(cfg.falloff) if cfg.falloff and e_max is not None else 0.0
        plain = cfg.model_copy(update={"falloff": 0.0})
        shifted = ParametricMesons(plain.model_copy(update={"rapidity_mean": mu + shift}), e_max)
        hot_pi0 = cfg.electrons.pi0.model_copy(update={"pt_temperature": k * cfg.electrons.pi0.pt_temperature})
        hot = ParametricMesons(plain.model_copy(update={
            "pt_temperature": k * cfg.pt_temperature,
            "electrons": cfg.electrons.model_copy(update={"pi0": hot_pi0})}), e_max)  # fmt: skip
        part = rng.integers(0, 3, masses.size)
        out = np.empty((4, masses.size))
        for j, src in enumerate((ParametricMesons(plain, e_max), shifted, hot)):
            out[:, part == j] = src.sample(rng, masses[part == j], parent)
        px, py, pz, en = out
        y = 0.5 * np.log((en + pz) / (en - pz))
        pt = np.hypot(px, py)
        if e_max is None:
            log_z0 = log_z1 = np.zeros(masses.size)
        else:
            y_max = np.arccosh(np.maximum(e_max / np.sqrt(masses**2 + pt**2), 1.0))

            def log_z(m: float) -> NDArray[np.float64]:  # ln(Φ((y_max − m)/σ) − Φ((−y_max − m)/σ))
                hi, lo = log_ndtr((y_max - m) / sig), log_ndtr((-y_max - m) / sig)
                return hi + np.log1p(-np.exp(np.minimum(lo - hi, 0.0)))

            log_z0, log_z1 = log_z(mu), log_z(mu + shift)
        h0 = log_mt_density(pt, masses, temp, cfg.pt_mt_power)
        h2 = log_mt_density(pt, masses, k * temp, cfg.pt_mt_power)
        g0 = norm.logpdf(y, mu, sig) - log_z0
        lp = g0 + h0
        lq = [lp, norm.logpdf(y, mu + shift, sig) - log_z1 + h0, g0 + h2]
        w = 1.0 / (sum(np.exp(q - lp) for q in lq) / 3.0)
        if falloff:  # p: the mesons × (1 − E/E_max)^n / H, H its mean over the plain spectra
            from gammastar.physics.sampling import falloff_weight

            lo, hi = float(np.min(masses)), float(np.max(masses))
            spectra = (temp, cfg.pt_mt_power, sig, falloff, float(e_max))
            nodes, h = _log_mean_falloff(lo, hi, mu, spectra)
            w = w * falloff_weight(en, float(e_max), falloff) * np.exp(-np.interp(masses, nodes, h))
        return out, w


@functools.lru_cache(maxsize=64)
def _log_mean_falloff(lo: float, hi: float, mu: float, spectra: tuple[float, float, float, float, float]
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """ln H(m), H the mean of the fall-off (1 − E/E_max)^n over a parent's (p_T, y) before it
    (p_T ∝ p_T m_T^a e^{−m_T/T}, y Gaussian (``mu``, σ) truncated at the kinematic limit): the
    accept–reject that gives the mock's mesons their fall-off
    (:func:`gammastar.physics.sampling.sample_pt_y`) divides their density by it, one number
    per parent mass, which differs between the plain and the tilted rapidity. By quadrature
    on a grid of masses from ``lo`` to ``hi`` (H is smooth in m; the caller interpolates),
    once per parent's spectra (a generator's every chunk draws the same)."""
    from gammastar.physics.sampling import falloff_weight

    temp, power, sig, n, e_max = spectra
    nodes = np.linspace(lo, hi, 33) if hi > lo else np.array([lo])
    pt = np.linspace(0.0, 8.0, 801)[1:, None]
    y = np.linspace(mu - 8 * sig, mu + 8 * sig, 1601)[None, :]
    out = np.empty(nodes.size)
    for k, m in enumerate(nodes):
        mt = np.sqrt(pt**2 + m * m)
        f = pt * mt**power * np.exp(-(mt - m) / temp)
        f = f / f.sum()
        y_max = np.arccosh(np.maximum(e_max / mt, 1.0))
        g = np.exp(-0.5 * ((y - mu) / sig) ** 2) * (np.abs(y) <= y_max)
        g = g / np.maximum(g.sum(axis=1, keepdims=True), 1e-300)  # truncated, normalised per p_T
        out[k] = float(np.sum(f * g * falloff_weight(mt * np.cosh(y), e_max, n)))
    return nodes, np.log(out)


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


def empirical_smearing(path, *, bin_width: float = 0.01, tree: str = "truth"):
    """The mock detector's mass response, measured on the file's ``truth`` tree (reco ``m``
    against ``m_true`` of the recorded sources; ``tree="truth_ee"``: the dielectrons'):
    :func:`smearing_from_residuals` of those sources. This is the resolution the data-driven
    yield carries (no resolution unfolding).
    """
    import uproot

    with uproot.open(path) as f:
        t = f[tree].arrays(["m", "m_true"], library="np")
    mt = np.asarray(t["m_true"], float)
    return smearing_from_residuals(mt, np.asarray(t["m"], float) - mt, bin_width=bin_width)


def smearing_from_residuals(m_true: ArrayLike, residual: ArrayLike, *, bin_width: float = 0.01):
    """A mass response from recorded sources: returns ``smear(m_true, rng)`` drawing for each
    mass a residual m − m_true of a recorded source of the same ``bin_width`` bin of true
    mass (the nearest populated bin outside).

    Arguments:
        m_true: true masses of the recorded sources (GeV).
        residual: their m − m_true (GeV); non-finite entries are dropped.
        bin_width: width of the true-mass bins (GeV).

    Example:
        >>> smear = smearing_from_residuals([0.5, 0.5, 0.7], [0.01, 0.01, -0.02])
        >>> smear(np.array([0.5, 0.69]), np.random.default_rng(1)).round(3).tolist()
        [0.51, 0.67]
    """
    mt, d = np.asarray(m_true, float), np.asarray(residual, float)
    ok = np.isfinite(mt) & np.isfinite(d)
    mt, d = mt[ok], d[ok]
    if mt.size == 0:
        raise ValueError("smearing_from_residuals: no recorded source with a finite residual")
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


def response_residuals(
    config, n_sources: int, seed: int, *, chunk: int = 1_000_000
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The mock detector's mass response from a sample of its own: ``n_sources`` cocktail
    sources of ``config``'s muon mock (no combinatorial pairs) through its detector, in chunks;
    returns ``(m_true, m − m_true)`` of the recorded ones (in acceptance, efficiency passed),
    what the file's ``truth`` tree holds (:func:`empirical_smearing`) but for as many sources
    as asked: a response sampled from one demo-sized file carries its recorded sources' noise
    into the tails (±5% of the smeared truth at 0.9 GeV between files, between the ω and φ).

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` with a ``mock`` section.
        n_sources: cocktail sources to generate.
        seed: random seed.
        chunk: sources per chunk (memory).
    """
    from gammastar.mock.generator import MockGenerator

    gen = MockGenerator(config, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    mt, d = [], []
    for k0 in range(0, int(n_sources), int(chunk)):
        n = min(int(chunk), int(n_sources) - k0)
        counts = np.concatenate([rng.multinomial(n, gen.cocktail.probabilities), [0]])
        reco = gen.detector.apply(rng, gen.sources(rng, counts))
        ok = reco.accepted
        mt.append(reco.m_true[ok])
        d.append(reco.m[ok] - reco.m_true[ok])
    return np.concatenate(mt), np.concatenate(d)


def truth_polarisation(path, edges) -> dict[str, Any]:
    """The generator's true λ_θ, λ_φ, λ_θφ (γ* lab helicity frame) per mass bin (true mass)
    from the mock file's ``truth_hel_*`` and ``truth_all_m`` histograms, by moments
    (:func:`gammastar.corrections.polarisation.angles.truth_lambdas`' formulas;
    ``lambda_theta_err`` from the spread of cos²θ* of an isotropic-to-transverse decay,
    ≤ √(4/45 / n) × 20/(5⟨c²⟩ − 3)²).

    Arguments:
        path: the mock ROOT file. edges: mass bin edges (GeV; multiples of 1 MeV).
    """
    import uproot

    from gammastar.mock.acceptance import TRUTH_HELICITY

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
    from gammastar.corrections.polarisation.angles import lambdas_from_sums

    return {"mass_edges": edges, **lambdas_from_sums(n, [rebin(h) for h in sums])}
