r"""Signal events for detector simulation: whole A′ decay chains (A′ → ee, μμ,
ππ, K⁺K⁻, K_S K_L) and millicharged γ* → χχ̄ pairs with the data-driven kinematics and
polarisation, written as HepMC3 and as a columnar event table (docs/howto/signal-events.md).

One event machinery for the events command and the acceptance stage
(:func:`gammastar.reach.acceptance.draw` builds on :func:`aprime_kinematics`,
:func:`decay_daughters` and :func:`detector_hits`): an A′ of mass m with (q_T, E) from the
kinematics sampler (the flow, with its fiducial/extrapolated split), a uniform azimuth,
a two-body decay A′ → a b in its helicity frame (polar axis along the A′ lab momentum, x axis in
the plane of the beam and the A′) with the angular distribution of a vector of spin-density
element ρ₀₀, the decay vertex forced into the decay volume with the decay probability as the
weight, and the detector's verdict at that vertex.

Decay angular distributions (helicity frame, θ of daughter 1):

* fermions (ℓ⁺ℓ⁻), β² = 1 − 4m_ℓ²/m²:
  :math:`W \propto \frac{1-\rho_{00}}{2}\,[1 + \cos^2\theta + (1-\beta^2)\sin^2\theta]
  + \rho_{00}\,[\sin^2\theta + (1-\beta^2)\cos^2\theta]`;
* pseudoscalars (π⁺π⁻, K⁺K⁻, K_S K_L; P wave): :math:`W \propto \rho_{00}\cos^2\theta +
  \frac{1-\rho_{00}}{2}\sin^2\theta`. The form factor (|F_π|², the φ line shape) changes the
  rate (the branching ratio), not the angular distribution of a 1⁻ → 0⁻0⁻ decay.

For massless leptons W ∝ 1 + λ_θ cos²θ with λ_θ = (1 − 3ρ₀₀)/(1 + ρ₀₀); the measured λ_θ
of the data's dileptons (lepton mass ``input.lepton_mass``) fixes ρ₀₀ (:func:`rho00_from_lambda`),
which then gives every channel's distribution. Isotropic: ρ₀₀ = 1/3; transverse: ρ₀₀ = 0
(λ_θ = 1 for massless leptons, sin²θ for pseudoscalars).

References:
    P. Faccioli, C. Lourenço, J. Seixas, H. Wöhri, Eur. Phys. J. C 69 (2010) 657 (λ_θ, frames,
    λ_θ = (1 − 3ρ₀₀)/(1 + ρ₀₀)); K. Gottfried, J.D. Jackson, Nuovo Cim. 33 (1964) 309 (vector
    decay angular distributions in terms of ρ); HepMC3: A. Buckley et al., Comput. Phys. Commun.
    260 (2021) 107310 (status codes 1, 2, 4; units); Pythia 8 Hidden Valley (T. Sjöstrand et al.,
    SciPost Phys. Codebases 8 (2022), ParticleData ``4900022 gammav``) for the A′ PDG id.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.core.artifacts import make_meta
from gammastar.core.results import StageResult
from gammastar.errors import ConfigError, InputError
from gammastar.events.hepmc import (
    dark_hepmc_text,
    mcp_hepmc_text,
)
from gammastar.events.io import TABLE_UNITS, event_outputs, write_events
from gammastar.physics import darkphoton
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.sampling import ParametricSampler, SamplerLike
from gammastar.reach.acceptance import draw
from gammastar.reach.acceptance.dark import draw_dark
from gammastar.reach.signal import signal_events
from gammastar.source.dark_decays import DARK_CHAINS, PSI2_CHANNELS
from gammastar.source.dark_events import generate_dark_chunks
from gammastar.source.decays import CHANNEL_CODE, DECAYS
from gammastar.source.eventgen import (  # the machinery, shared with the acceptance
    EXPECTATION_SAMPLES,
    EventSettings,
    Unweighter,
    generate,
    generate_chunks,
    numbered_chunks,
)
from gammastar.source.geometry import Geometry
from gammastar.source.mcp import McpSettings, expected_total, generate_mcp, mcp_bins
from gammastar.source.setup import (
    aprime_source,
    aprime_yield,
    beam_meta,
    beam_settings,
    check_request,
    cross_section_pb,
    dark_settings,
    exposure_meta,
    polarisation,
    require_events_keys,
)
from gammastar.source.source import Source
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = [
    "EventRequest",
    "run_dark_events",
    "run_events",
    "run_mcp_events",
]


@dataclass(frozen=True)
class EventRequest:
    """What every events command is asked for (:func:`run_events`, :func:`run_mcp_events`,
    :func:`run_dark_events`; built by ``gammastar events``): how many events, where to, and how.

    Attributes:
        n: events to generate (weighted: drawn; unweighted A′ events: written).
        output: the event file (HepMC3, parquet or ROOT by suffix).
        table: also the columnar event table (parquet or ROOT), or None.
        seed: random seed (None: the config's).
        chunk: events per chunk (memory bound).
        force: overwrite existing outputs.
        extrapolate: allow masses outside the flow's range (the analytic model, labelled).
    """

    n: int
    output: str | Path
    table: str | Path | None = None
    seed: int | None = None
    chunk: int = 100_000
    force: bool = False
    extrapolate: bool = False

    def seed_or(self, config: AnalysisConfig) -> int:
        """The request's seed, else the config's."""
        return config.seed if self.seed is None else int(self.seed)

    def with_seed(self, seed: int) -> EventRequest:
        """This request with ``seed``."""
        return dataclasses.replace(self, seed=seed)


def run_events(
    config: AnalysisConfig,
    request: EventRequest,
    *,
    mass: float,
    eps: float,
    channels: tuple[str, ...] | None = None,
    decay: str = "data",
    unweighted: bool = False,
    source: Source | SamplerLike | None = None,
) -> EventsResult:
    """``gammastar events``: signal events at (m, ε) into ``request.output`` (HepMC3, parquet
    or ROOT by suffix) and optionally ``request.table``.

    Arguments:
        config: the analysis config (its reach/yields/flow/detector/beam/events sections).
        request: the :class:`EventRequest` (n, outputs, seed, chunk, force, extrapolate).
        mass, eps: A′ mass (GeV) and kinetic mixing (> 0).
        channels: decays (default: ``reach.channels``).
        decay: ``data``, ``isotropic`` or ``transverse``.
        unweighted: accept-reject to unit-weight events (each N_sig/n; n events written).
        source: the A′ kinematics in place of the config's (a
            :class:`~gammastar.source.source.Source` or a kinematics model).

    Returns:
        An :class:`EventsResult`; its ``document`` holds the ``meta`` written into the files
        and the sums of weights.

    Raises:
        GammastarError: bad arguments (one line naming the option), outputs that exist.
    """

    n, chunk = request.n, request.chunk
    outputs = _aprime_request(config, request, mass, eps)
    src = aprime_source(config, mass, extrapolate=request.extrapolate, source=source)
    y = aprime_yield(src, mass)
    rc = config.reach
    chans = _open_channels(rc.channels, mass, channels)
    rho00, pol_info = polarisation(decay, config, mass, src["yields_doc"])
    seed = request.seed_or(config)
    n_pot_eff = src["n_pot"] * src["scale_y"]
    st = EventSettings(
        mass=float(mass),
        eps=float(eps),
        geometry=Geometry.from_config(config.detector),
        scale=n_pot_eff * y * eps**2,
        channels=chans,
        rho00=rho00,
        **beam_settings(config, src),
        aprime_pdgid=int(config.events.aprime_pdgid),
        dark=darkphoton.DarkSector(rc.dark_alpha, rc.dark_mass) if rc.dark_alpha > 0 else None,
    )
    t0 = time.perf_counter()
    n_expect = max(rc.samples, EXPECTATION_SAMPLES)
    n_exp, p_decay = _expected_signal(src["source"], st, n_expect, seed)
    st.sigma_pb_per_event = cross_section_pb(config, src, n_exp)
    reach_nsig = _reach_nsig(src["source"], st, y, n_pot_eff, rc.samples, seed)
    meta = make_meta(
        config_sha256=config.section_sha256("beam", "detector", "reach", "events", "seed"),
        seed=seed,
        inputs=[src["yields_path"]],
        stage="events",
        mass=float(mass),
        eps=float(eps),
        ctau_m=st.ctau,
        n_requested=n,
        unweighted=unweighted,
        chunk=chunk,
        channels=list(chans),
        channel_codes={c: CHANNEL_CODE[c] for c in DECAYS},
        branching_ratios=st.br,
        polarisation=pol_info,
        sampler=src["source"].description,
        aprime_pdgid=st.aprime_pdgid,
        units={"hepmc": "GeV, mm (c t in mm)", "table": TABLE_UNITS},
        **exposure_meta(src),
        aprime_per_pot_per_eps2=y,
        aprime_produced=st.scale,
        n_sig_expected=n_exp,
        n_sig_expected_samples=n_expect,
        n_sig_reach=reach_nsig,
        p_decay_in_volume=p_decay,
        **_unwritten_meta(st, p_decay),
        cross_section_pb=st.sigma_pb_per_event,
        cross_section_note="sigma_inel(p target) x N_sig / (N_POT P_int): the cross-section of "
        "p A -> A' X with a detected A' decay",
        **beam_meta(st),
        production_depth_interaction_lengths=(
            None if not math.isfinite(src["lengths"]) else src["lengths"]
        ),
        geometry=st.geometry.__dict__,
    )
    stats = _write_aprime(src["source"], st, request.with_seed(seed), outputs, meta,
                          n_exp if unweighted else None)  # fmt: skip
    return _summary(stats, t0, outputs, meta)


def _write_aprime(
    source: Any,
    st: EventSettings,
    request: EventRequest,
    outputs: list[Path],
    meta: dict[str, Any],
    unweighted_to: float | None,
) -> dict[str, Any]:
    """Draw and write the A′ events of ``request`` (its seed set): weighted, or with
    ``unweighted_to`` (the expected N_sig) accept-reject to unit weights of N_sig/n each
    (:class:`Unweighter`, with its counts in the sums). Returns :func:`write_events`'s sums."""
    n, seed, chunk = request.n, request.seed, request.chunk
    unw = Unweighter(n, unweighted_to, seed) if unweighted_to is not None else None
    if unw is not None:
        chunks = unw(_chunks_forever(source, st, chunk, seed))
    else:
        chunks = generate_chunks(source, st, n, seed=seed, chunk=chunk)
    stats = write_events(chunks, outputs, st, meta, force=request.force, n_attempted=n)
    if unw is not None:
        stats["over_max"] = unw.over_max
        stats["generated"] = unw.generated
    return stats


def _open_channels(
    channels: tuple[str, ...] | list[str], mass: float, given: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The decays to write: ``given``, else those of ``channels`` (``reach.channels``) open
    at ``mass``.

    Raises:
        InputError: none of ``channels`` is open.
    """
    if given:
        return tuple(given)
    chans = tuple(c for c in channels if mass > DECAYS[c].m1 + DECAYS[c].m2)
    if not chans:
        raise InputError(
            f"--mass {mass:g}: none of reach.channels {list(channels)} is open; give --channels"
        )
    return chans


def _expected_signal(source: Any, st: EventSettings, n: int, seed: int) -> tuple[float, float]:
    """The expected N_sig of the written decays with the acceptance machinery (the decay z
    integrated exactly; ``n`` A′ samples, the events' decays and polarisation) and the
    probability that the A′ decays in the decay volume (before the detector)."""
    both = st.geometry.daughters_seen
    n_exp, ref = 0.0, None
    for ch in st.channels if both else st.channels[:1]:
        smp = draw(source, st.mass, n, st.geometry, seed=seed, channel=ch, rho00=st.rho00)
        ref = smp
        acc = float(smp.acceptance(st.ctau))
        n_exp += st.scale * (st.br[ch] if both else st.br_sum) * acc
    assert ref is not None
    return n_exp, float(ref.in_volume().acceptance(st.ctau))


def _reach_nsig(
    source: Any, st: EventSettings, y: float, n_pot: float, samples: int, seed: int
) -> float | None:
    """N_sig of the written leptonic decays as the reach computes it (``samples`` A′ and
    :func:`gammastar.reach.signal.signal_events`; ``y`` the yield per POT per ε², ``n_pot``
    the effective N_POT), or ``None`` without a leptonic channel."""
    lep = tuple(c for c in st.channels if c in LEPTON_CHANNELS)
    if not lep:
        return None
    smp = draw(source, st.mass, samples, st.geometry, seed=seed, channel=lep[0])
    parts = signal_events(
        st.mass, st.eps, yield_per_pot_eps2=y, n_pot=n_pot, sample=smp, channels=lep,
        dark=st.dark,
    )  # fmt: skip
    return float(sum(float(v) for v in parts.values()))


def _unwritten_meta(st: EventSettings, p_decay: float) -> dict[str, Any]:
    """Meta keys of the A′ decays in the decay volume into channels not written."""
    unwritten = {
        ch: st.scale * br * p_decay for ch, br in st.br.items() if ch not in st.channels and br > 0
    }
    return {
        "unwritten_decays_in_volume": unwritten,
        "unwritten_note": "A' decays in the decay volume (expected, before the detector) into "
        "channels not written, hadrons_other = the hadronic width beyond pipi, KK, KSKL",
    }


# --------------------------------------------------------------------------- millicharged
def run_mcp_events(
    config: AnalysisConfig,
    request: EventRequest,
    *,
    m_chi: float,
    charge: float = 1.0,
    decay: str = "data",
    source: Any = None,
    spectrum: tuple[NDArray[np.float64], NDArray[np.float64], str] | None = None,
) -> EventsResult:
    """``gammastar events --mchi``: γ* → χχ̄ events (millicharged particles, Eq. 8).

    The γ* mass spectrum is the data's unfolded dilepton spectrum (``histograms.root``
    ``unfolded_m``, else ``pairs.parquet``; or ``spectrum`` = (edges, contents, source)) in the
    data's exposure (``yields.json`` ``meta.n_pot``), carried to the config's N_POT and target
    like the A′ yields (``reach.n_pot``/``beam.n_pot``, the yield scale). Weights sum to the
    expected χχ̄ pairs produced (no detector).

    Arguments:
        config: the analysis config.
        request: the :class:`EventRequest` (n, outputs, seed, chunk, force, extrapolate).
        m_chi: χ mass (GeV); charge: Q_χ/e.
        decay: the γ* polarisation, ``data``, ``isotropic`` or ``transverse``.
        source: the γ* kinematics in place of the config's (a
            :class:`~gammastar.source.source.Source` or a kinematics model); spectrum: the
            mass spectrum in place of the data's.

    Raises:
        GammastarError: bad arguments, no γ* mass above 2 m_χ, outputs that exist.
    """

    n, chunk, extrapolate = request.n, request.chunk, request.extrapolate
    check_request(n, chunk, (m_chi, "--mchi: the millicharged-particle mass must be > 0"),
                  (charge, "--charge: Q/e must be > 0"))  # fmt: skip
    outputs = event_outputs(request.output, request.table, request.force)
    require_events_keys(config, ("mcp_pdgid", "beam_spot_sigma", "target_interaction_length"))
    src = aprime_source(config, None, extrapolate=extrapolate, source=source,
                        fiducial_on_refuse=False)  # fmt: skip
    if src["n_pot_data"] is None or not src["n_pot_data"] > 0:
        raise InputError(f"{src['yields_path']}: meta.n_pot (the data's exposure) is missing")
    spectrum = _mcp_spectrum(config, spectrum)
    edges, contents, phase = _full_spectrum(config, src["source"].yields, spectrum)
    frange = src["source"].mass_range
    gstar = _gstar_source(src["source"], extrapolate)
    ml = float(config.input.lepton_mass)
    limit = None if extrapolate else frange
    bins = mcp_bins(edges, contents, m_chi, ml, charge, limit)
    try:
        data_total = expected_total(bins, edges, m_chi, limit, what=f"the spectrum {spectrum[2]}")
    except InputError as err:
        raise InputError(f"--mchi {m_chi:g}: {err}") from None
    n_pot_eff = src["n_pot"] * src["scale_y"]
    total = data_total * n_pot_eff / src["n_pot_data"]
    rho, pol_info = _mcp_polarisation(decay, config, 0.5 * (bins[0] + bins[1]), src["yields_doc"])
    seed = request.seed_or(config)
    st = McpSettings(
        m_chi=float(m_chi),
        charge=float(charge),
        pdgid=int(config.events.mcp_pdgid or 0),  # given: required above
        **beam_settings(config, src),
    )
    st.sigma_pb_per_event = cross_section_pb(config, src, total)
    meta = make_meta(
        config_sha256=config.section_sha256("beam", "reach", "events", "unfold", "seed"),
        seed=seed,
        inputs=[src["yields_path"]],
        stage="events",
        mode="mcp",
        m_chi=float(m_chi),
        charge=float(charge),
        mcp_pdgid=st.pdgid,
        n_requested=n,
        chunk=chunk,
        spectrum_source=spectrum[2],
        phase_space=phase,
        sampler=gstar.description,
        polarisation=pol_info,
        **exposure_meta(src, data=True),
        chichi_expected=total,
        chichi_per_pot_per_q2=total / n_pot_eff / charge**2,
        units={"hepmc": "GeV, mm", "table": "GeV, m"},
        cross_section_pb=st.sigma_pb_per_event,
        **beam_meta(st),
    )
    chunks = numbered_chunks(
        lambda size, s: generate_mcp(gstar, st, bins, rho, size, seed=s, total=total, n_norm=n),
        n, seed=seed, chunk=chunk,
    )  # fmt: skip
    t0 = time.perf_counter()
    stats = write_events(chunks, outputs, st, meta, force=request.force, n_attempted=n,
                         text=mcp_hepmc_text)  # fmt: skip
    return _summary(stats, t0, outputs, meta)


def _mcp_spectrum(
    config: AnalysisConfig, spectrum: tuple[NDArray[np.float64], NDArray[np.float64], str] | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """``spectrum``, else the run's γ* mass spectrum (``histograms.root`` ``unfolded_m``,
    else ``pairs.parquet``: :func:`gammastar.flow.data.run_mass_spectrum`)."""
    if spectrum is not None:
        return spectrum
    from gammastar.flow.data import run_mass_spectrum  # torch: only with a flow

    return run_mass_spectrum(config)


def _gstar_source(source: Source, extrapolate: bool) -> Source:
    """The γ* source of the χχ̄ events: with ``extrapolate`` the analytic model (labelled
    extrapolated) outside the source's mass range."""
    if not extrapolate or source.mass_range is None:
        return source
    return source.extended(ParametricSampler(), description=f"{source.description}; outside "
                           "its mass range the analytic model (labelled extrapolated)")  # fmt: skip


def _full_spectrum(
    config: AnalysisConfig, yields: Any, spectrum: tuple[NDArray[np.float64], NDArray[np.float64], str]
) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """The γ* mass spectrum's edges and contents (negative contents clipped) in the phase
    space of the events, and that phase space in words: with fiducial-region yields and
    ``reach.extrapolation: label`` the fiducial spectrum carried to the full phase space with
    the yields' f_F(m) (the source draws the outside part from the fitted model, labelled)."""
    edges = np.asarray(spectrum[0], dtype=np.float64)
    contents = np.clip(np.asarray(spectrum[1], dtype=np.float64), 0.0, None)
    if yields.extrapolation is None:
        return edges, contents, "the spectrum's (no extrapolation in the yields)"
    if config.reach.extrapolation != "label":
        return edges, contents, "fiducial region only (reach.extrapolation: refuse)"
    f_f = Extrapolation.from_dict(yields.extrapolation).full_fraction(
        0.5 * (edges[1:] + edges[:-1]), yields.extrapolation.get("seam")
    )  # 1 below a both-channels run's seam (full phase space there)
    contents = np.where(f_f > 0, contents / np.where(f_f > 0, f_f, 1.0), 0.0)
    return edges, contents, "full: fiducial spectrum / f_F(m) (yields.json extrapolation), labelled"


def _mcp_polarisation(
    decay: str, config: AnalysisConfig, centres: NDArray[np.float64], yields_doc: Any
) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """ρ₀₀ of the γ* per mass bin (:func:`polarisation` at each bin centre, at least just
    above the dilepton threshold) and the meta of where it came from."""
    ml = float(config.input.lepton_mass)
    rho = np.empty(centres.size)
    pol_info: dict[str, Any] = {}
    for j, mc in enumerate(centres):
        rho[j], info = polarisation(decay, config, float(max(mc, 2 * ml + 1e-9)), yields_doc)
        if j == 0 or not pol_info:
            pol_info = {k: v for k, v in info.items() if k in ("decay", "source")}
    return rho, pol_info


# --------------------------------------------------------------------------- dark sectors
def run_dark_events(
    config: AnalysisConfig,
    request: EventRequest,
    *,
    mass: float,
    eps: float,
    source: Any = None,
) -> EventsResult:
    """``gammastar events --dark``: semi-visible A′ → ψψ, ψ₂ → ψ₁ℓ⁻ℓ⁺ events of the config's
    ``idm`` section (iDM or i2DM) at A′ mass ``mass`` (m₁ = mass / ``idm.mass_ratio``) and ε.

    Weights sum to the expected detected events
    (:func:`gammastar.source.dark_events.generate_dark`); the meta carries the expectation from the iDM acceptance
    (:func:`gammastar.reach.acceptance.dark.draw_dark`, the same machinery, the decay integrated
    exactly) for the ψ₁ψ₂ chain.

    Arguments:
        config: the analysis config (with an ``idm`` section).
        request: the :class:`EventRequest` (n, outputs, seed, chunk, force, extrapolate).
        mass, eps: A′ mass (GeV) and kinetic mixing (> 0).
        source: the A′ kinematics in place of the config's (a
            :class:`~gammastar.source.source.Source` or a kinematics model).

    Raises:
        GammastarError: bad arguments (one line naming the option or key), outputs that exist.
    """

    n, chunk = request.n, request.chunk
    outputs = _aprime_request(config, request, mass, eps)
    if config.idm is None:
        where = config.source or "<config>"
        raise ConfigError(f"{where}: no 'idm' section: --dark needs it (docs/howto/dark-sectors.md)")
    src = aprime_source(config, float(mass), extrapolate=request.extrapolate, source=source)
    aprime = src["source"]
    st = dark_settings(config, float(mass), float(eps), src)
    # the A′ inherits the γ* polarisation measured in the data (as --decay data for A′ → ℓℓ)
    st.rho00, pol_info = polarisation("data", config, float(mass), src["yields_doc"])
    seed = request.seed_or(config)
    t0 = time.perf_counter()
    # expected detected events of the psi1 psi2 chain, decay integrated exactly (the reach's)
    n_exp_12 = None
    if "psi1 psi2" in st.br_chain:
        n_expect = max(config.reach.samples, EXPECTATION_SAMPLES // 5)
        acc = 0.0
        for c, br in st.br_psi2.items():
            smp = draw_dark(aprime, st.model, st.geometry, n_expect, final_state=c,
                            min_opening_angle=st.min_opening_angle, seed=seed,
                            rho00=st.rho00)  # fmt: skip
            acc += br * float(smp.acceptance(st.ctau))
        n_exp_12 = st.scale * st.br_chain["psi1 psi2"] * acc
    model = st.model
    meta = make_meta(
        config_sha256=config.section_sha256("beam", "detector", "reach", "events", "idm", "seed"),
        seed=seed,
        inputs=[src["yields_path"]],
        stage="events",
        mode="dark",
        model=config.idm.model,
        mass=float(mass),
        eps=float(eps),
        m1=float(model.m1),
        m2=float(model.m2),
        alpha_d=float(model.alpha_d),
        delta=float(model.delta),
        theta=getattr(model, "theta", None),
        y=float(model.y(eps)),
        ctau_psi2_m=st.ctau,
        n_requested=n,
        chunk=chunk,
        chain_codes={c: i for i, c in enumerate(DARK_CHAINS)},
        channel_codes={c: i for i, c in enumerate(PSI2_CHANNELS)},
        branching_ratios_aprime=st.br_chain,
        branching_ratios_psi2=st.br_psi2,
        aprime_pdgid=st.aprime_pdgid,
        psi1_pdgid=st.psi1_pdgid,
        psi2_pdgid=st.psi2_pdgid,
        min_opening_angle=st.min_opening_angle,
        sampler=aprime.description,
        polarisation=pol_info,
        units={"hepmc": "GeV, mm (c t in mm)", "table": TABLE_UNITS},
        **exposure_meta(src),
        aprime_produced=st.scale,
        n_sig_expected_psi1_psi2=n_exp_12,
        **beam_meta(st),
        geometry=st.geometry.__dict__,
    )
    chunks = list(generate_dark_chunks(aprime, st, n, seed=seed, chunk=chunk))
    total = float(sum(c["weight"].sum() for c in chunks))
    st.sigma_pb_per_event = cross_section_pb(config, src, total)
    meta["cross_section_pb"] = st.sigma_pb_per_event
    stats = write_events(iter(chunks), outputs, st, meta, force=request.force, n_attempted=n,
                         text=dark_hepmc_text)  # fmt: skip
    return _summary(stats, t0, outputs, meta)


def _aprime_request(config: AnalysisConfig, request: EventRequest, mass: float, eps: float) -> list[Path]:
    """The checks of an A′ events request (:func:`run_events`, :func:`run_dark_events`)
    before any work: the numbers, the outputs, the ``events`` keys; returns the outputs."""
    check_request(request.n, request.chunk, (eps, "--eps: the kinetic mixing must be > 0"),
                  (mass, "--mass: the A' mass must be > 0 GeV"))  # fmt: skip
    outputs = event_outputs(request.output, request.table, request.force)
    require_events_keys(config, ("beam_spot_sigma", "target_interaction_length"))
    return outputs


@dataclass(frozen=True)
class EventsResult(StageResult):
    """What an events command wrote: the first output (``path``), every output (``outputs``)
    and the ``document``: the sums of :func:`write_events`, the seconds taken and the meta
    written into the files."""

    outputs: tuple[Path, ...] = ()


def _summary(
    stats: dict[str, Any], t0: float, outputs: list[Path], meta: dict[str, Any]
) -> EventsResult:
    """The result of an events command: the sums of :func:`write_events`, the seconds since
    ``t0``, the outputs and the meta."""
    doc = {**stats, "seconds": time.perf_counter() - t0, "outputs": [str(p) for p in outputs],
           "meta": meta}  # fmt: skip
    return EventsResult(Path(outputs[0]), doc, tuple(Path(p) for p in outputs))


def _chunks_forever(
    sampler: Any, st: EventSettings, chunk: int, seed: int | None, max_chunks: int = 10_000
) -> Iterator[dict[str, NDArray[Any]]]:
    """Chunks of ``chunk`` events from independent child seeds of ``seed``, until the consumer
    (:class:`Unweighter`) stops."""
    ss = np.random.SeedSequence(seed)
    for _ in range(max_chunks):
        (kid,) = ss.spawn(1)
        yield generate(sampler, st, chunk, seed=int(kid.generate_state(1)[0]))
