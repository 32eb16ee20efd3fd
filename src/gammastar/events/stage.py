r"""Signal events for detector simulation: whole A′ decay chains (A′ → ee, μμ,
ππ, K⁺K⁻, K_S K_L) and millicharged γ* → χχ̄ pairs with the data-driven kinematics and
polarisation, written as HepMC3 and as a columnar event table (docs/events.md).

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

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.core.artifacts import make_meta
from gammastar.core.results import StageResult
from gammastar.errors import ConfigError, InputError
from gammastar.events.hepmc import (
    HEPMC_FOOTER,
    dark_hepmc_text,
    hepmc_header,
    hepmc_text,
    mcp_hepmc_text,
)
from gammastar.events.io import TABLE_UNITS, event_outputs, output_kind, write_events
from gammastar.physics import darkphoton
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.acceptance import KinematicSample, draw, draw_dark
from gammastar.reach.stage import signal_events
from gammastar.source.eventgen import (  # the machinery, shared with the acceptance (re-exported)
    APRIME_PDGID,
    CHANNEL_CODE,
    DARK_CHAINS,
    DECAYS,
    EXPECTATION_SAMPLES,
    M_PROTON,
    PDG_PROTON,
    PDG_SYSTEM,
    PSI2_CHANNELS,
    STATUS_BEAM,
    STATUS_DECAYED,
    STATUS_DOC,
    STATUS_FINAL,
    AprimeKinematics,
    DarkEventSettings,
    Decay,
    EventSettings,
    Unweighter,
    aprime_kinematics,
    branching_ratios,
    chunk_seeds,
    decay_coefficients,
    decay_daughters,
    detector_hits,
    generate,
    generate_chunks,
    generate_dark_chunks,
    mass_range,
    numbered_chunks,
    rho00_from_lambda,
)
from gammastar.source.geometry import Geometry
from gammastar.source.mcp import McpSettings, generate_mcp, mcp_bins
from gammastar.source.setup import (
    Labelled,
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
from gammastar.yields.extrapolation import Extrapolation

__all__ = [
    "APRIME_PDGID",
    "CHANNEL_CODE",
    "DARK_CHAINS",
    "DECAYS",
    "EXPECTATION_SAMPLES",
    "HEPMC_FOOTER",
    "M_PROTON",
    "PDG_PROTON",
    "PDG_SYSTEM",
    "PSI2_CHANNELS",
    "STATUS_BEAM",
    "STATUS_DECAYED",
    "STATUS_DOC",
    "STATUS_FINAL",
    "TABLE_UNITS",
    "AprimeKinematics",
    "DarkEventSettings",
    "Decay",
    "EventRequest",
    "EventSettings",
    "McpSettings",
    "Unweighter",
    "aprime_kinematics",
    "branching_ratios",
    "chunk_seeds",
    "dark_hepmc_text",
    "dark_settings",
    "decay_coefficients",
    "decay_daughters",
    "detector_hits",
    "generate",
    "generate_chunks",
    "generate_dark_chunks",
    "generate_mcp",
    "hepmc_header",
    "hepmc_text",
    "mass_range",
    "mcp_bins",
    "mcp_hepmc_text",
    "output_kind",
    "polarisation",
    "rho00_from_lambda",
    "run_dark_events",
    "run_events",
    "run_mcp_events",
    "write_events",
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

    def seed_or(self, config: Any) -> int:
        """The request's seed, else the config's."""
        return config.seed if self.seed is None else int(self.seed)


def run_events(
    config: Any,
    request: EventRequest,
    *,
    mass: float,
    eps: float,
    channels: tuple[str, ...] | None = None,
    decay: str = "data",
    unweighted: bool = False,
    sampler: Any = None,
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
        sampler: override the A′ kinematics sampler.

    Returns:
        An :class:`EventsResult`; its ``document`` holds the ``meta`` written into the files
        and the sums of weights.

    Raises:
        GammastarError: bad arguments (one line naming the option), outputs that exist.
    """

    n, chunk = request.n, request.chunk
    outputs = _aprime_request(config, request, mass, eps)
    src = aprime_source(config, mass, request.extrapolate, sampler)
    y = aprime_yield(src, mass)
    sampler = src["sampler"]
    rc = config.reach
    dark = darkphoton.DarkSector(rc.dark_alpha, rc.dark_mass) if rc.dark_alpha > 0 else None
    if channels:
        chans = tuple(channels)
    else:  # the reach's channels that are open at this mass
        chans = tuple(c for c in rc.channels if mass > DECAYS[c].m1 + DECAYS[c].m2)
        if not chans:
            raise InputError(
                f"--mass {mass:g}: none of reach.channels {list(rc.channels)} is open; "
                "give --channels"
            )
    rho00, pol_info = polarisation(decay, config, mass, src["yields_doc"])
    lengths = src["lengths"]
    geometry = Geometry.from_config(config.detector)
    seed = request.seed_or(config)
    n_pot_eff = src["n_pot"] * src["scale_y"]
    scale = n_pot_eff * y * eps**2
    st = EventSettings(
        mass=float(mass),
        eps=float(eps),
        geometry=geometry,
        scale=scale,
        channels=chans,
        rho00=rho00,
        **beam_settings(config, src),
        aprime_pdgid=int(config.events.aprime_pdgid),
        dark=dark,
    )
    # the expected N_sig with the acceptance machinery (decay z integrated exactly), the same
    # decays and polarisation as the events; for leptons and isotropic decays the reach's
    t0 = time.perf_counter()
    ctau = st.ctau
    n_expect = max(rc.samples, EXPECTATION_SAMPLES)
    n_exp, ref = 0.0, None
    for ch in chans if geometry.both_daughters else chans[:1]:
        smp = draw(sampler, mass, n_expect, geometry, seed=seed, channel=ch, rho00=rho00)
        ref = smp
        acc = float(smp.acceptance(ctau))
        n_exp += scale * (st.br[ch] if geometry.both_daughters else st.br_sum) * acc
    assert ref is not None
    open_vol = KinematicSample(mass, ref.gbc, np.ones((ref.n, 1)), ref.cells[[0, -1]], 1.0)
    p_decay = float(open_vol.acceptance(ctau))
    st.sigma_pb_per_event = cross_section_pb(config, src, n_exp)
    reach_nsig = None
    lep = tuple(c for c in chans if c in darkphoton.LEPTON_CHANNELS)
    if lep:
        smp = draw(sampler, mass, rc.samples, geometry, seed=seed, channel=lep[0])
        parts = signal_events(
            mass, eps, yield_per_pot_eps2=y, n_pot=n_pot_eff, sample=smp, channels=lep,
            dark=dark,
        )  # fmt: skip
        reach_nsig = float(sum(float(v) for v in parts.values()))
    unwritten = {ch: scale * br * p_decay for ch, br in st.br.items() if ch not in chans and br > 0}
    meta = make_meta(
        config_sha256=config.section_sha256("beam", "detector", "reach", "events", "seed"),
        seed=seed,
        inputs=[src["yields_path"]],
        stage="events",
        mass=float(mass),
        eps=float(eps),
        ctau_m=ctau,
        n_requested=n,
        unweighted=unweighted,
        chunk=chunk,
        channels=list(chans),
        channel_codes={c: CHANNEL_CODE[c] for c in DECAYS},
        branching_ratios=st.br,
        polarisation=pol_info,
        sampler=src["desc"],
        aprime_pdgid=st.aprime_pdgid,
        units={"hepmc": "GeV, mm (c t in mm)", "table": TABLE_UNITS},
        **exposure_meta(src),
        aprime_per_pot_per_eps2=y,
        aprime_produced=scale,
        n_sig_expected=n_exp,
        n_sig_expected_samples=n_expect,
        n_sig_reach=reach_nsig,
        p_decay_in_volume=p_decay,
        unwritten_decays_in_volume=unwritten,
        unwritten_note="A' decays in the decay volume (expected, before the detector) into "
        "channels not written, hadrons_other = the hadronic width beyond pipi, KK, KSKL",
        cross_section_pb=st.sigma_pb_per_event,
        cross_section_note="sigma_inel(p target) x N_sig / (N_POT P_int): the cross-section of "
        "p A -> A' X with a detected A' decay",
        **beam_meta(st),
        production_depth_interaction_lengths=None if not math.isfinite(lengths) else lengths,
        geometry=geometry.__dict__,
    )
    unw = Unweighter(n, n_exp, seed) if unweighted else None
    if unw is not None:
        chunks = unw(_chunks_forever(sampler, st, chunk, seed))
    else:
        chunks = generate_chunks(sampler, st, n, seed=seed, chunk=chunk)
    stats = write_events(chunks, outputs, st, meta, force=request.force, n_attempted=n)
    if unw is not None:
        stats["over_max"] = unw.over_max
        stats["generated"] = unw.generated
    return _summary(stats, t0, outputs, meta)


# --------------------------------------------------------------------------- millicharged
def run_mcp_events(
    config: Any,
    request: EventRequest,
    *,
    m_chi: float,
    charge: float = 1.0,
    decay: str = "data",
    sampler: Any = None,
    spectrum: tuple[NDArray, NDArray, str] | None = None,
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
        sampler: override the γ* kinematics sampler; spectrum: override the mass spectrum.

    Raises:
        GammastarError: bad arguments, no γ* mass above 2 m_χ, outputs that exist.
    """

    n, chunk, extrapolate = request.n, request.chunk, request.extrapolate
    check_request(n, chunk, (m_chi, "--mchi: the millicharged-particle mass must be > 0"),
                  (charge, "--charge: Q/e must be > 0"))  # fmt: skip
    outputs = event_outputs(request.output, request.table, request.force)
    require_events_keys(config, ("mcp_pdgid", "beam_spot_sigma", "target_interaction_length"))
    src = aprime_source(config, None, extrapolate, sampler, fiducial_on_refuse=False)
    yields = src["yields"]
    if src["n_pot_data"] is None or not src["n_pot_data"] > 0:
        raise InputError(f"{src['yields_path']}: meta.n_pot (the data's exposure) is missing")
    rc = config.reach
    if spectrum is None:
        from gammastar.flow.data import run_mass_spectrum  # torch: only with a flow

        spectrum = run_mass_spectrum(config)
    edges, contents, spec_src = spectrum
    edges = np.asarray(edges, dtype=np.float64)
    contents = np.clip(np.asarray(contents, dtype=np.float64), 0.0, None)
    phase = "the spectrum's (no extrapolation in the yields)"
    if yields.extrapolation is not None:
        if rc.extrapolation == "label":
            # a fiducial-region spectrum: to the full phase space with the yields' f_F(m); the
            # sampler (ExtrapolatedSampler) draws the outside part from the fitted model

            f_f = Extrapolation.from_dict(yields.extrapolation).full_fraction(
                0.5 * (edges[1:] + edges[:-1]), yields.extrapolation.get("seam")
            )  # 1 below a both-channels run's seam (full phase space there)
            contents = np.where(f_f > 0, contents / np.where(f_f > 0, f_f, 1.0), 0.0)
            phase = "full: fiducial spectrum / f_F(m) (yields.json extrapolation), labelled"
        else:
            phase = "fiducial region only (reach.extrapolation: refuse)"
    sampler, desc = src["sampler"], src["desc"]
    frange = mass_range(sampler)
    if extrapolate and frange is not None:
        sampler = _FlowOrAnalytic(sampler, frange)
        desc += "; outside its mass range the analytic model (labelled extrapolated)"
    ml = float(config.input.lepton_mass)
    bins = mcp_bins(edges, contents, m_chi, ml, charge, None if extrapolate else frange)
    data_total = float(bins[2].sum())
    if not (np.isfinite(data_total) and data_total > 0):
        where = "" if extrapolate or frange is None else f" inside the flow's range {frange}"
        raise InputError(
            f"--mchi {m_chi:g}: no gamma* mass above 2 m_chi = {2 * m_chi:g} GeV in the spectrum "
            f"{spec_src} [{edges[0]:g}, {edges[-1]:g}] GeV{where}"
        )
    n_pot_eff = src["n_pot"] * src["scale_y"]
    total = data_total * n_pot_eff / src["n_pot_data"]
    centres = 0.5 * (bins[0] + bins[1])
    rho = np.empty(centres.size)
    pol_info: dict[str, Any] = {}
    for j, mc in enumerate(centres):
        rho[j], info = polarisation(decay, config, float(max(mc, 2 * ml + 1e-9)), src["yields_doc"])
        if j == 0 or not pol_info:
            pol_info = {k: v for k, v in info.items() if k in ("decay", "source")}
    seed = request.seed_or(config)
    st = McpSettings(
        m_chi=float(m_chi),
        charge=float(charge),
        pdgid=int(config.events.mcp_pdgid),
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
        spectrum_source=spec_src,
        phase_space=phase,
        sampler=desc,
        polarisation=pol_info,
        **exposure_meta(src, data=True),
        chichi_expected=total,
        chichi_per_pot_per_q2=total / n_pot_eff / charge**2,
        units={"hepmc": "GeV, mm", "table": "GeV, m"},
        cross_section_pb=st.sigma_pb_per_event,
        **beam_meta(st),
    )
    chunks = numbered_chunks(
        lambda size, s: generate_mcp(sampler, st, bins, rho, size, seed=s, total=total, n_norm=n),
        n, seed=seed, chunk=chunk,
    )  # fmt: skip
    t0 = time.perf_counter()
    stats = write_events(chunks, outputs, st, meta, force=request.force, n_attempted=n,
                         text=mcp_hepmc_text)  # fmt: skip
    return _summary(stats, t0, outputs, meta)


class _FlowOrAnalytic:
    """The flow ``inner`` inside its mass range ``frange``, the analytic model (labelled
    extrapolated) outside: the χχ̄ events' sampler with ``--extrapolate``."""

    mass_range = None

    def __init__(self, inner: Any, frange: tuple[float, float]) -> None:
        self.inner, self.frange = inner, frange

    def sample(self, mass: float, k: int, seed: int | None = None) -> Any:
        if self.frange[0] <= mass <= self.frange[1]:
            return self.inner.sample(mass, k, seed=seed)

        return Labelled(ParametricSampler()).sample(mass, k, seed=seed)


# --------------------------------------------------------------------------- dark sectors
def run_dark_events(
    config: Any,
    request: EventRequest,
    *,
    mass: float,
    eps: float,
    sampler: Any = None,
) -> EventsResult:
    """``gammastar events --dark``: semi-visible A′ → ψψ, ψ₂ → ψ₁ℓ⁻ℓ⁺ events of the config's
    ``idm`` section (iDM or i2DM) at A′ mass ``mass`` (m₁ = mass / ``idm.mass_ratio``) and ε.

    Weights sum to the expected detected events (:func:`gammastar.source.eventgen.generate_dark`);
    the meta carries the expectation from the iDM acceptance
    (:func:`gammastar.reach.acceptance.draw_dark`, the same machinery, the decay integrated exactly)
    for the ψ₁ψ₂ chain.

    Arguments:
        config: the analysis config (with an ``idm`` section).
        request: the :class:`EventRequest` (n, outputs, seed, chunk, force, extrapolate).
        mass, eps: A′ mass (GeV) and kinetic mixing (> 0).
        sampler: override the A′ kinematics sampler.

    Raises:
        GammastarError: bad arguments (one line naming the option or key), outputs that exist.
    """

    n, chunk = request.n, request.chunk
    outputs = _aprime_request(config, request, mass, eps)
    if config.idm is None:
        where = config.source or "<config>"
        raise ConfigError(f"{where}: no 'idm' section: --dark needs it (docs/darksector.md)")
    src = aprime_source(config, float(mass), request.extrapolate, sampler)
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
            smp = draw_dark(src["sampler"], st.model, st.geometry, n_expect, final_state=c,
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
        sampler=src["desc"],
        polarisation=pol_info,
        units={"hepmc": "GeV, mm (c t in mm)", "table": TABLE_UNITS},
        **exposure_meta(src),
        aprime_produced=st.scale,
        n_sig_expected_psi1_psi2=n_exp_12,
        **beam_meta(st),
        geometry=st.geometry.__dict__,
    )
    chunks = list(generate_dark_chunks(src["sampler"], st, n, seed=seed, chunk=chunk))
    total = float(sum(c["weight"].sum() for c in chunks))
    st.sigma_pb_per_event = cross_section_pb(config, src, total)
    meta["cross_section_pb"] = st.sigma_pb_per_event
    stats = write_events(iter(chunks), outputs, st, meta, force=request.force, n_attempted=n,
                         text=dark_hepmc_text)  # fmt: skip
    return _summary(stats, t0, outputs, meta)


def _aprime_request(config: Any, request: EventRequest, mass: float, eps: float) -> list[Path]:
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
) -> Iterator[dict[str, NDArray]]:
    """Chunks of ``chunk`` events from independent child seeds of ``seed``, until the consumer
    (:class:`Unweighter`) stops."""
    ss = np.random.SeedSequence(seed)
    for _ in range(max_chunks):
        (kid,) = ss.spawn(1)
        yield generate(sampler, st, chunk, seed=int(kid.generate_state(1)[0]))
