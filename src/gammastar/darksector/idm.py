r"""Reach for inelastic dark matter in the (m₁, y = ε²α_D(m₁/m_A′)⁴) plane.

Offers :class:`SoftLeptonSelection` (a decay volume along the beam and cuts on the two soft
leptons: energy, angle to the beam), :func:`idm_signal_table` (per m₁: the data-driven A′
kinematics pushed through :func:`gammastar.physics.darkchain.idm_chain` once, with the
ε-dependence of the decay-in-volume weight kept analytic) and :func:`idm_reach` (the expected
boundaries y_low, y_high per m₁ with the exact CLs of :mod:`gammastar.reach.stats`, one counting bin);
:func:`run_idm_reach` (``gammastar reach-idm``) does the same from a config through the events'
machinery for iDM and i2DM (:func:`chain_acceptances`: i2DM's ψ₂ψ̄₂ counted when at least one
ψ₂ is detected), with the A′ spin density measured in the data.

Signal at (m₁, ε), fixed α_D, Δ and m_A′/m₁ (defaults of the literature: 0.1, 0.1, 3;
docs/explanation/physics.md §13):

.. math:: N = N_{\rm POT}\,Y_{A'}(m_{A'})\,\varepsilon^2\,\mathrm{BR}(A'\to\psi_1\psi_2)\,
          \mathrm{BR}(\psi_2\to\psi_1\ell\ell)\,\big\langle a_{\ell\ell}\,
          (e^{-L_1/\lambda} - e^{-L_2/\lambda})\big\rangle,

Y_A′ the A′ yield per POT per ε² (paper Eq. 6, ``yields.json``), λ = βγcτ(ψ₂) ∝ 1/ε², a_ℓℓ
the soft-lepton selection of the event, ⟨⟩ the mean over the sampled chains. The selection is
a function of directions and energies only (angles to the beam from the decay vertex are the
angles from the target), so one set of chains per m₁ serves every ε.

References: Izaguirre, Krnjaic, Schuster, Toro PRD 96 (2017) 055007; Berlin, Gori, Schuster,
Toro PRD 98 (2018) 035011 (the y plane); the seed talk (semi-visible A′).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig, load_config
from gammastar.config.reach import IdmConfig
from gammastar.core import rundir
from gammastar.core.artifacts import make_meta, write_json
from gammastar.core.figures import figure_style, save_figure
from gammastar.errors import ConfigError, GammastarError
from gammastar.physics.darkchain import idm_chain
from gammastar.physics.darksector import I2DM, IDM, aprime_branching_ratios, psi2_ctau, psi2_width
from gammastar.physics.decay import decay_probability
from gammastar.physics.volumes.shapes import Slab
from gammastar.reach import stats
from gammastar.reach.acceptance.dark import DarkPairSample, draw_dark, draw_dark_pair
from gammastar.reach.stats.model import Channel, Model
from gammastar.source.geometry import Geometry
from gammastar.source.setup import aprime_source, polarisation

__all__ = [
    "IdmReachSettings",
    "IdmSignalTable",
    "SoftLeptonSelection",
    "chain_acceptances",
    "idm_acceptance",
    "idm_reach",
    "idm_signal_table",
    "plot_idm_reach",
    "run_idm_reach",
]


@dataclass(frozen=True)
class SoftLeptonSelection:
    """Decay volume and soft-lepton cuts of an iDM search.

    Attributes:
        z_range: (z₁, z₂) of the decay volume along the beam from the target, m.
        theta_min, theta_max: angle of each lepton to the beam, rad.
        min_energy: energy of each lepton, GeV.
        efficiency: other constant efficiencies.
    """

    z_range: tuple[float, float]
    theta_min: float = 0.0
    theta_max: float = np.pi / 2
    min_energy: float = 0.0
    efficiency: float = 1.0

    def __post_init__(self) -> None:
        z1, z2 = self.z_range
        if not (0 <= z1 < z2):
            raise GammastarError(f"idm selection: need 0 <= z1 < z2 (got {self.z_range})")
        if not (0 <= self.theta_min < self.theta_max):
            raise GammastarError("idm selection: need 0 <= theta_min < theta_max")
        if self.min_energy < 0 or not 0 < self.efficiency <= 1:
            raise GammastarError("idm selection: min_energy >= 0 and efficiency in (0, 1]")

    def leptons_ok(self, lminus: NDArray, lplus: NDArray) -> NDArray[np.bool_]:
        """Both leptons (four-momenta (4, n)) inside the energy and angle cuts."""
        ok = np.ones(lminus.shape[1], dtype=bool)
        for p in (lminus, lplus):
            pabs = np.linalg.norm(p[:3], axis=0)
            th = np.arccos(np.clip(p[2] / np.where(pabs > 0, pabs, 1.0), -1, 1))
            ok &= (p[3] >= self.min_energy) & (th >= self.theta_min) & (th <= self.theta_max)
        return ok


@dataclass
class IdmSignalTable:
    """Sampled chains at one m₁: what the signal needs for any ε.

    Attributes:
        model: the :class:`IDM` (scalar).
        l1, l2: proper lengths (L/βγ, m) from the vertex to the volume's planes, per chain
            (l2 = l1 = 0 where the ψ₂ cannot reach the volume).
        accepted: per chain, the soft-lepton selection (0/1) × efficiency × BR(ψ₂ → ψ₁ℓℓ) of
            the chain's channel × the number of channels pooled, so that the mean over all
            chains is Σ_channels BR ⟨selection⟩.
        ctau_ref, eps_ref: cτ(ψ₂) at ε_ref (cτ ∝ ε⁻²).
    """

    model: IDM
    l1: NDArray[np.float64]
    l2: NDArray[np.float64]
    accepted: NDArray[np.float64]
    ctau_ref: float
    eps_ref: float
    meta: dict[str, Any] = field(default_factory=dict)

    def acceptance(self, eps: ArrayLike) -> NDArray[np.float64]:
        """Σ_channels BR(ψ₂ → ψ₁ℓℓ) ⟨a_ℓℓ (e^{−l₁/cτ} − e^{−l₂/cτ})⟩ at each ε."""
        eps = np.atleast_1d(np.asarray(eps, dtype=np.float64))
        ct = self.ctau_ref * (self.eps_ref / eps) ** 2
        w = decay_probability(self.l1[None, :], self.l2[None, :], ct[:, None])
        return np.mean(w * self.accepted[None, :], axis=1)


def idm_signal_table(
    sampler: Any,
    model: IDM,
    selection: SoftLeptonSelection,
    *,
    n: int,
    seed: int,
    channels: tuple[str, ...] = ("ee", "mumu"),
    eps_ref: float = 1e-3,
) -> IdmSignalTable:
    """Sample A′ at m_A′ from ``sampler`` and the chain A′ → ψ₁ψ₂, ψ₂ → ψ₁ℓℓ once.

    Arguments:
        sampler: object with ``sample(mass, n, seed)`` or a callable, returning ``qT``, ``E``
            (the data-driven A′ kinematics: the flow, ``acceptance.ParametricSampler``).
        model: scalar :class:`IDM`.
        selection: the :class:`SoftLeptonSelection`.
        n: chains per channel.
        seed: seed (one stream per channel).
        channels: ψ₂ final states ("ee", "mumu").
        eps_ref: ε at which cτ is computed (any: cτ ∝ ε⁻²).

    Returns:
        :class:`IdmSignalTable` (channels pooled, each weighted by its BR).
    """

    ma = float(model.m_aprime)
    draw = sampler.sample if hasattr(sampler, "sample") else sampler
    ss = np.random.SeedSequence(seed).spawn(1 + len(channels))
    kin = draw(ma, n, int(ss[0].generate_state(1)[0]))
    qt, e = np.asarray(kin["qT"], float), np.asarray(kin["E"], float)
    pz = np.sqrt(np.clip(e**2 - ma**2 - qt**2, 0, None))
    phi = np.random.default_rng(ss[0]).uniform(0, 2 * np.pi, len(qt))
    a = np.stack([qt * np.cos(phi), qt * np.sin(phi), pz, np.sqrt(ma**2 + qt**2 + pz**2)])
    tot = float(psi2_width(model, eps_ref, "total"))
    ctau = float(psi2_ctau(model, eps_ref))
    z1, z2 = selection.z_range
    l1s, l2s, accs = [], [], []
    br_sum = 0.0
    for ch, s in zip(channels, ss[1:], strict=True):
        br = float(psi2_width(model, eps_ref, ch)) / tot if tot > 0 else 0.0
        if br <= 0:
            continue
        out = idm_chain(
            a,
            np.zeros((3, a.shape[1])),
            model,
            eps_ref,
            z_range=(max(z1, 1e-12), z2),
            final_state=ch,
            seed=np.random.default_rng(s),
        )
        p = out["psi2"]
        pabs = np.linalg.norm(p[:3], axis=0)
        bg = pabs / float(model.m2)
        # the proper lengths to the volume's faces: the lab path lengths of the ray from the
        # target (Slab.entry_exit) over βγ; 0 where the ψ₂ misses the volume
        s_in, s_out = Slab(z1=max(z1, 0.0), z2=z2).entry_exit(
            np.zeros((3, p.shape[1])), p[:3] / np.where(pabs > 0, pabs, 1.0)
        )
        hit = ~np.isnan(s_in[0]) & (bg > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            l1 = np.where(hit, s_in[0] / bg, 0.0)
            l2 = np.where(hit, s_out[0] / bg, 0.0)
        l1s.append(l1)
        l2s.append(l2)
        accs.append(br * selection.efficiency * selection.leptons_ok(out["lminus"], out["lplus"]))
        br_sum += br
    if not accs:
        raise GammastarError(
            f"iDM at m1 = {float(model.m1):.4g} GeV: no psi2 channel of {channels} is open"
        )
    acc = np.concatenate(accs) * len(accs)  # pooled channels (see IdmSignalTable.accepted)
    return IdmSignalTable(
        model,
        np.concatenate(l1s),
        np.concatenate(l2s),
        acc,
        ctau,
        eps_ref,
        meta={"br_psi2_ll": br_sum, "channels": list(channels), "n": n, "seed": seed},
    )


@dataclass(frozen=True)
class IdmReachSettings:
    """The facility, the statistics and the dark parameters of :func:`idm_reach`."""

    n_pot: float
    """The facility's protons on target."""
    background: float
    """Expected background events."""
    n_pot_rel_uncertainty: float
    """Log-normal N_POT uncertainty of the likelihood."""
    alpha_d: float = 0.1
    """α_D (the literature's default)."""
    delta: float = 0.1
    """Δ = (m₂ − m₁)/m₁ (the literature's default)."""
    mass_ratio: float = 3.0
    """m_A′/m₁ (the literature's default)."""
    y_range: tuple[float, float] = (1e-16, 1e-2)
    """The y grid's ends (log grid)."""
    y_points: int = 241
    """Points of the y grid."""
    n: int = 20_000
    """Chains per m₁ and channel."""
    seed: int = 12345
    """Seed of the chains (one stream per m₁)."""
    cl: float = 0.9
    """Confidence level."""
    channels: tuple[str, ...] = ("ee", "mumu")
    """ψ₂ → ψ₁ℓℓ channels counted."""


def idm_reach(
    m1: ArrayLike,
    *,
    aprime_yield: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    sampler: Any,
    selection: SoftLeptonSelection,
    settings: IdmReachSettings,
) -> dict[str, Any]:
    """Expected iDM reach: per m₁ the excluded y interval [y_low, y_high] for each band.

    Arguments:
        m1: ψ₁ masses, GeV.
        aprime_yield: Y_A′(m) per POT per ε² (e.g. ``gammastar.source.production.load_yields(p).at(m)[0]``).
        sampler: A′ kinematics (``sample(mass, n, seed)`` → ``qT``, ``E``).
        selection: decay volume and soft-lepton cuts.
        settings: N_POT, background, statistics, dark parameters and the y grid
            (:class:`IdmReachSettings`).

    Returns:
        ``{"m1", "m_aprime", "y_low": {band: [...]}, "y_high": {band: [...]}, "eps_low",
        "eps_high" (the same boundaries in the (m_A′, ε) plane at these dark parameters),
        "s_up", "alpha_d", "delta", "mass_ratio", "cl"}`` with None where nothing is excluded.
    """
    st = settings
    s_up = _expected_s_up(st.background, st.n_pot_rel_uncertainty, st.cl)
    m1 = np.atleast_1d(np.asarray(m1, dtype=np.float64))
    y = np.geomspace(*st.y_range, st.y_points)
    out_lo: dict[str, list[float | None]] = {b: [] for b in s_up}
    out_hi: dict[str, list[float | None]] = {b: [] for b in s_up}
    seeds = np.random.SeedSequence(st.seed).spawn(len(m1))
    for mm, sd in zip(m1, seeds, strict=True):
        model = IDM(m1=float(mm), delta=st.delta, m_aprime=st.mass_ratio * float(mm),
                    alpha_d=st.alpha_d)  # fmt: skip
        ya = float(np.asarray(aprime_yield(np.asarray(model.m_aprime))))
        try:
            tab = idm_signal_table(sampler, model, selection, n=st.n,
                                   seed=int(sd.generate_state(1)[0]),
                                   channels=st.channels)  # fmt: skip
        except GammastarError:
            tab = None
        if tab is None or not np.isfinite(ya) or ya <= 0:
            for b in s_up:
                out_lo[b].append(None)
                out_hi[b].append(None)
            continue
        eps = np.sqrt(y / (st.alpha_d / st.mass_ratio**4))
        br_dark = aprime_branching_ratios(model, eps)["psi1 psi2"]
        sig = st.n_pot * ya * eps**2 * br_dark * tab.acceptance(eps)
        for b, s in s_up.items():
            lo, hi = _edges(y, sig, s)
            out_lo[b].append(lo)
            out_hi[b].append(hi)
    to_eps = st.mass_ratio**4 / st.alpha_d  # ε² = y (m_A′/m₁)⁴ / α_D: the (m_A′, ε) plane
    return {
        "m1": m1.tolist(),
        "m_aprime": (st.mass_ratio * m1).tolist(),
        "y_low": out_lo,
        "y_high": out_hi,
        "eps_low": _eps_of(out_lo, to_eps),
        "eps_high": _eps_of(out_hi, to_eps),
        "s_up": dict(s_up),
        "alpha_d": st.alpha_d,
        "delta": st.delta,
        "mass_ratio": st.mass_ratio,
        "cl": st.cl,
    }


def _expected_s_up(background: float, n_pot_rel_uncertainty: float, cl: float) -> dict:
    """The expected upper limit on the signal per band (exact CLs, one counting bin,
    :mod:`gammastar.reach.stats`)."""

    model_b = Model(
        [Channel("idm", [1.0], [max(background, 1e-9)])], n_pot_unc=n_pot_rel_uncertainty
    )
    return stats.upper_limit(model_b, cl=cl, method="exact").expected


def _eps_of(d: dict[str, list[float | None]], to_eps: float) -> dict[str, list[float | None]]:
    """y boundaries per band as ε (ε² = y · ``to_eps``, ``to_eps`` = (m_A′/m₁)⁴/α_D)."""
    return {
        k: [None if v is None else float(np.sqrt(v * to_eps)) for v in vs] for k, vs in d.items()
    }


def plot_idm_reach(result: dict[str, Any], path: Any = None, *, title: str = ""):
    """Plot the excluded y band per m₁ of :func:`idm_reach` (median and ±1σ, ±2σ edges).

    Arguments:
        result: the dict of :func:`idm_reach`.
        path: PNG path (written atomically) or None.
        title: axes title.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    m = np.asarray(result["m1"], dtype=np.float64)

    def arr(key: str, band: str) -> NDArray[np.float64]:
        return np.array([np.nan if v is None else v for v in result[key][band]], dtype=float)

    with figure_style():
        fig, ax = plt.subplots(figsize=(8, 6))
        for band, color in (("-2", "#FFDF00"), ("-1", "#00CC00")):
            other = "+" + band[1:]
            for key in ("y_low", "y_high"):
                ax.fill_between(m, arr(key, band), arr(key, other), color=color, lw=0)
        ax.plot(m, arr("y_low", "0"), "k--", label="expected (median)")
        ax.plot(m, arr("y_high", "0"), "k--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$m_1$ [GeV]")
        ax.set_ylabel(r"$y = \varepsilon^2 \alpha_D (m_1/m_{A'})^4$")
        ax.set_title(
            title
            or rf"iDM: $\alpha_D$ = {result['alpha_d']}, $\Delta$ = {result['delta']}, "
            rf"$m_{{A'}}$ = {result['mass_ratio']} $m_1$",
            fontsize=14,
        )
        ax.legend(fontsize=14)
        if path is not None:

            save_figure(fig, path, bbox_inches="tight", dpi=110)
    plt.close(fig)
    return fig


def _edges(y: NDArray, sig: NDArray, s_up: float) -> tuple[float | None, float | None]:
    """First and last crossing of sig = s_up on the log grid (log-linear interpolation)."""
    above = sig >= s_up
    if not np.any(above):
        return None, None
    i, j = int(np.argmax(above)), len(above) - 1 - int(np.argmax(above[::-1]))

    def cross(k0: int, k1: int) -> float:
        ls = np.log(np.maximum(sig[[k0, k1]], 1e-300))
        ly = np.log(y[[k0, k1]])
        t = (np.log(s_up) - ls[0]) / (ls[1] - ls[0]) if ls[1] != ls[0] else 0.0
        return float(np.exp(ly[0] + t * (ly[1] - ly[0])))

    lo = cross(i - 1, i) if i > 0 else float(y[0])
    hi = cross(j, j + 1) if j < len(y) - 1 else float(y[-1])
    return lo, hi


def idm_acceptance(
    sampler: Any,
    model: IDM,
    geometry: Any,
    *,
    channels: tuple[str, ...],
    n: int,
    seed: int,
    min_opening_angle: float = 0.0,
    rho00: float | None = None,
) -> Callable[[ArrayLike], NDArray[np.float64]]:
    """Σ_ℓ BR(ψ₂ → ψ₁ℓℓ) · P(ψ₂ decays in the volume and is detected) as a function of ε,
    from the event machinery (:func:`gammastar.reach.acceptance.dark.draw_dark`: the events'
    chains and :func:`gammastar.source.hits.dark_hits`, the decay position integrated exactly per
    cell);
    ``rho00``: the A′ spin density of A′ → ψψ (None: isotropic).

    The branching fractions do not depend on ε (every ψ₂ width is ∝ ε²), cτ(ψ₂) ∝ ε⁻².

    Returns:
        ``acc(eps)``, vectorised; zero where no channel is open.
    """

    eps_ref = 1e-3
    tot = float(psi2_width(model, eps_ref, "total"))
    ctau_ref = float(psi2_ctau(model, eps_ref))
    parts = []
    kids = np.random.SeedSequence(seed).spawn(len(channels))
    for ch, kid in zip(channels, kids, strict=True):
        br = float(psi2_width(model, eps_ref, ch)) / tot if tot > 0 else 0.0
        if br > 0:
            smp = draw_dark(sampler, model, geometry, n, final_state=ch,
                              min_opening_angle=min_opening_angle,
                              seed=int(kid.generate_state(1)[0]), rho00=rho00)  # fmt: skip
            parts.append((br, smp))

    def acc(eps: ArrayLike) -> NDArray[np.float64]:
        e = np.asarray(eps, dtype=np.float64)
        ct = ctau_ref * (eps_ref / e) ** 2
        return sum((br * smp.acceptance(ct) for br, smp in parts), np.zeros(e.shape))

    return acc


def chain_acceptances(
    sampler: Any,
    model: IDM,
    geometry: Any,
    *,
    channels: tuple[str, ...],
    n: int,
    seed: int,
    min_opening_angle: float = 0.0,
    rho00: float | None = None,
) -> dict[str, Callable[[ArrayLike], NDArray[np.float64]]]:
    """The acceptance of each visible A′ → dark-fermion chain as a function of ε: the signal is
    N_POT Y_A′ ε² Σ_chain BR(A′ → chain)(ε) · acc_chain(ε).

    * ``psi1 psi2`` (iDM; i2DM's ψ₁ψ̄₂ + ψ₂ψ̄₁): :func:`idm_acceptance`, ``n`` chains per ψ₂
      channel (for iDM with ``seed`` itself, so iDM results do not depend on this function);
    * ``psi2 psi2`` (i2DM, where m_A′ > 2m₂): P(at least one of the two ψ₂ decays in the volume
      into a counted channel and is detected) × the event efficiency,
      :func:`gammastar.reach.acceptance.dark.draw_dark_pair` (``n`` chains, each ψ₂'s channel
      drawn ∝ BR; no double counting: X_a + X_b − X_aX_b per chain).

    ``psi1 psi1`` is invisible (no entry). BRs of ψ₂ do not depend on ε, cτ(ψ₂) ∝ ε⁻².

    Arguments:
        sampler: A′ kinematics. model: scalar :class:`IDM` or :class:`I2DM`.
        geometry: :class:`gammastar.source.geometry.Geometry`. channels: ψ₂ → ψ₁ℓℓ final states.
        n: chains. seed: seed. min_opening_angle: rad.
        rho00: A′ spin density ρ₀₀ of A′ → ψψ (None: isotropic).

    Returns:
        ``{chain: acc(eps)}``; empty where no ψ₂ channel is open.
    """

    if not isinstance(model, I2DM):
        return {"psi1 psi2": idm_acceptance(sampler, model, geometry, channels=channels, n=n,
                                            seed=seed, min_opening_angle=min_opening_angle, rho00=rho00)}  # fmt: skip
    eps_ref = 1e-3
    tot = float(psi2_width(model, eps_ref, "total"))
    brs = {c: float(psi2_width(model, eps_ref, c)) / tot if tot > 0 else 0.0 for c in channels}
    if not any(v > 0 for v in brs.values()):
        return {}
    ctau_ref = float(psi2_ctau(model, eps_ref))
    s12, s22 = (int(k.generate_state(1)[0]) for k in np.random.SeedSequence(seed).spawn(2))
    out = {"psi1 psi2": idm_acceptance(sampler, model, geometry, channels=channels, n=n,
                                       seed=s12, min_opening_angle=min_opening_angle, rho00=rho00)}  # fmt: skip
    if float(model.m_aprime) > 2 * float(model.m2):
        pair = draw_dark_pair(sampler, model, geometry, n, channels=brs,
                              min_opening_angle=min_opening_angle, seed=s22, rho00=rho00)  # fmt: skip

        out["psi2 psi2"] = _PairChainAcceptance(pair, ctau_ref, eps_ref)
    return out


@dataclass(frozen=True)
class _PairChainAcceptance:
    """acc(ε) of the ψ₂ψ̄₂ chain of :func:`chain_acceptances` from its draw ``sample``
    (:func:`~gammastar.reach.acceptance.dark.draw_dark_pair`'s), cτ(ψ₂) ∝ ε⁻² from
    ``ctau_ref`` at ``eps_ref``."""

    sample: DarkPairSample
    ctau_ref: float
    eps_ref: float

    def __call__(self, eps: ArrayLike) -> NDArray[np.float64]:
        e = np.asarray(eps, dtype=np.float64)
        return self.sample.acceptance(self.ctau_ref * (self.eps_ref / e) ** 2)


def run_idm_reach(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    force: bool = False,
    output: str | os.PathLike[str] | None = None,
) -> Path:
    """``gammastar reach-idm``: the expected iDM reach of ``config.idm`` in the (m₁, y) plane
    (and (m_A′, ε) at these dark parameters); writes ``reach_idm.json`` and
    ``figures/reach_idm.png``.

    Signal per (m₁, ε): N_POT · yield scale · Y_A′(m_A′) ε² · BR(A′ → ψ₁ψ₂)(ε) ·
    :func:`idm_acceptance` (the decay volume and cuts of ``detector`` plus
    ``idm.min_opening_angle``: the events' definition of a detected event); the exact CLs of
    :mod:`gammastar.reach.stats` with ``idm.background`` and ``idm.n_pot_rel_uncertainty``, one bin.
    With ``model: i2dm`` the signal sums the visible chains (:func:`chain_acceptances`):
    BR(ψ₁ψ̄₂ + ψ₂ψ̄₁) · acc₁₂ + BR(ψ₂ψ̄₂) · P(≥ 1 of the two ψ₂ detected); the A′ branching
    fractions c⁴ : 2s²c² : s⁴ × phase space are :func:`aprime_branching_ratios`'.

    Raises:
        ConfigError: no ``idm`` section.
    """
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    where = cfg.source or "<config>"
    idm = cfg.idm
    if idm is None:
        raise ConfigError(f"{where}: no 'idm' section (docs/howto/dark-sectors.md)")
    src = aprime_source(cfg, None)
    scan = _idm_scan(cfg, idm, src)
    out = Path(output) if output is not None else cfg.output_dir / rundir.REACH_IDM
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = _idm_doc(cfg, idm, src, scan)
    rundir.validate(doc, rundir.REACH_IDM, where=str(out))
    written = write_json(out, doc, force=force)
    plot_idm_reach(doc, out.parent / "figures" / "reach_idm.png", title=cfg.name)
    return written


class _IdmScan(NamedTuple):
    """The scan of :func:`run_idm_reach`: the m₁ grid, the expected limit per band, the
    boundaries y_low, y_high per band and m₁, i2DM's ψ₂ψ̄₂ share of the signal and the share
    of its events with both ψ₂ detected at the median y_low, the A′ spin density per m₁."""

    m1: NDArray[np.float64]
    s_up: dict
    y_low: dict[str, list[float | None]]
    y_high: dict[str, list[float | None]]
    share: list[float | None]
    double: list[float | None]
    pols: list[dict[str, Any]]


def _idm_scan(cfg: AnalysisConfig, idm: IdmConfig, src: Mapping[str, Any]) -> _IdmScan:
    """Per m₁ of ``idm``'s grid (``cfg.idm``), the chains' acceptances
    (:func:`chain_acceptances`, the A′ spin density from the data) and the excluded y
    interval per band; ``src`` the A′ source (:func:`gammastar.source.setup.aprime_source`:
    its :class:`~gammastar.source.source.Source`)."""

    source = src["source"]
    geometry = Geometry.from_config(cfg.detector)
    if idm.m1_range is not None:
        lo, hi = idm.m1_range
    else:
        lo, hi = (m / idm.mass_ratio for m in source.yields.mass_range)
    m1 = np.geomspace(lo, hi, idm.m1_points)
    frange = source.mass_range
    s_up = _expected_s_up(idm.background, idm.n_pot_rel_uncertainty, idm.cl)
    y = np.geomspace(*idm.y_range, idm.y_points)
    scan = _IdmScan(m1, s_up, {b: [] for b in s_up}, {b: [] for b in s_up}, [], [], [])
    n_pot_eff = src["n_pot"] * src["scale_y"]
    seeds = np.random.SeedSequence([cfg.seed, 16]).spawn(len(m1))
    for mm, sd in zip(m1, seeds, strict=True):
        model = idm.dark_model(float(mm) * idm.mass_ratio)
        ma = float(model.m_aprime)
        ya = float(np.asarray(source.yield_at(ma)[0]))
        inside = frange is None or frange[0] <= ma <= frange[1]
        accs = {}
        if inside and np.isfinite(ya) and ya > 0:
            rho00, pol = polarisation("data", cfg, ma, src["yields_doc"])
            scan.pols.append({"m_aprime": ma, **pol})
            accs = chain_acceptances(source, model, geometry, channels=tuple(idm.channels),
                                     n=idm.samples, seed=int(sd.generate_state(1)[0]),
                                     min_opening_angle=idm.min_opening_angle,
                                     rho00=rho00)  # fmt: skip
        for b in s_up:
            scan.y_low[b].append(None)
            scan.y_high[b].append(None)
        scan.share.append(None)
        scan.double.append(None)
        if not accs:
            continue
        eps = np.sqrt(y / (idm.alpha_d / idm.mass_ratio**4))
        br = aprime_branching_ratios(model, eps)
        parts = {c: n_pot_eff * ya * eps**2 * br[c] * f(eps) for c, f in accs.items()}
        sig = sum(parts.values())
        for b, s in s_up.items():
            scan.y_low[b][-1], scan.y_high[b][-1] = _edges(y, sig, s)
        ylo = scan.y_low["0"][-1] if "0" in scan.y_low else None
        if "psi2 psi2" in parts and ylo is not None:
            i = int(np.argmin(np.abs(np.log(y / ylo))))
            scan.share[-1] = float(parts["psi2 psi2"][i] / sig[i]) if sig[i] > 0 else None
            pair_acc = accs["psi2 psi2"]
            assert isinstance(pair_acc, _PairChainAcceptance)  # chain_acceptances' entry
            smp = pair_acc.sample
            ct = float(psi2_ctau(model, eps[i]))
            scan.double[-1] = float(smp.double_share(ct)[0])
    return scan


def _idm_doc(
    cfg: AnalysisConfig, idm: IdmConfig, src: Mapping[str, Any], scan: _IdmScan
) -> dict[str, Any]:
    """The ``reach_idm.json`` document of a scan (:data:`gammastar.core.rundir.REACH_IDM`;
    ``idm`` is ``cfg.idm``)."""

    to_eps = idm.mass_ratio**4 / idm.alpha_d
    i2dm = {"psi2psi2_share": scan.share, "both_detected_share": scan.double}
    return {
        "model": idm.model,
        "theta": idm.theta,
        "alpha_d": idm.alpha_d,
        "delta": idm.delta,
        "mass_ratio": idm.mass_ratio,
        "cl": idm.cl,
        "background": idm.background,
        "m1": scan.m1.tolist(),
        "m_aprime": (idm.mass_ratio * scan.m1).tolist(),
        "s_up": {k: float(v) for k, v in scan.s_up.items()},
        "y_low": scan.y_low,
        "y_high": scan.y_high,
        "eps_low": _eps_of(scan.y_low, to_eps),
        "eps_high": _eps_of(scan.y_high, to_eps),
        **(i2dm if idm.model == "i2dm" else {}),
        "meta": make_meta(
            config_sha256=cfg.section_sha256("beam", "detector", "reach", "idm", "seed"),
            seed=cfg.seed,
            inputs=[src["yields_path"]],
            n_pot=src["n_pot"],
            yield_scale=src["scale_y"],
            sampler=src["source"].description,
            channels=list(idm.channels),
            min_opening_angle=idm.min_opening_angle,
            samples=idm.samples,
            acceptance=(
                "gammastar.reach.acceptance.dark.draw_dark (the events' chains and dark_hits)"
            ),
            aprime_polarisation=scan.pols,
        ),
    }
