"""The setup shared by the event commands (:mod:`gammastar.events.stage`) and the iDM reach: checks
of a request, the production of a config (:func:`aprime_source`: the
:class:`~gammastar.source.source.Source`, N_POT, the yield scale, the target), the beam
settings and meta common to every event kind, the decay polarisation (:func:`polarisation`)
and the dark-sector settings (:func:`dark_settings`). Pure functions of the config and the
inputs; no random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.core.artifacts import read_json
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics.darksector import aprime_branching_ratios, psi2_ctau, psi2_width
from gammastar.physics.sampling import ParametricSampler
from gammastar.physics.target import interaction_probability
from gammastar.physics.vector_decay import rho00_from_lambda
from gammastar.source.dark_decays import DARK_CHAINS
from gammastar.source.dark_events import DarkEventSettings
from gammastar.source.geometry import Geometry
from gammastar.source.production import check_refuse, load_yields, resolve_yield_scale
from gammastar.source.source import PARAMETRIC, Source
from gammastar.yields.lambda_theta import interpolated_error

__all__ = [
    "aprime_source",
    "aprime_yield",
    "beam_meta",
    "beam_settings",
    "check_request",
    "cross_section_pb",
    "dark_settings",
    "exposure_meta",
    "polarisation",
    "require_events_keys",
]

# what each events.* key is, for the error when a command needs it and the config lacks it
EVENTS_KEYS = {
    "beam_spot_sigma": "[sigma_x, sigma_y] of the beam at the target in m; [0, 0] for a point beam",
    "target_interaction_length": "nuclear interaction length of the target material in m, for "
    "the depth of the production vertex",
    "mcp_pdgid": "the PDG id of the millicharged particle, docs/howto/signal-events.md",
}


def check_request(n: Any, chunk: int, *positive: tuple[float, str]) -> None:
    """Check the numbers of a request: ``n`` events (a positive integer), each (value,
    message) of ``positive`` finite and > 0, ``chunk`` > 0.

    Raises:
        GammastarError: the first bad one, naming its option.

    Example:
        >>> check_request(10, 5, (1e-6, "--eps: the kinetic mixing must be > 0"))
        >>> check_request(10, 5, (0.0, "--eps: the kinetic mixing must be > 0"))
        Traceback (most recent call last):
        ...
        gammastar.errors.GammastarError: --eps: the kinetic mixing must be > 0, not 0
    """
    if not (isinstance(n, int) and n > 0):
        raise GammastarError(f"-n: the number of events must be a positive integer, not {n}")
    for value, message in positive:
        if not (math.isfinite(value) and value > 0):
            raise GammastarError(f"{message}, not {value:g}")
    if chunk <= 0:
        raise GammastarError(f"--chunk must be positive, not {chunk}")


def require_events_keys(config: AnalysisConfig, keys: Iterable[str]) -> None:
    """Raise :class:`ConfigError` naming the first ``events.<key>`` of ``keys`` not given."""
    where = config.source or "<config>"
    for key in keys:
        if getattr(config.events, key) is None:
            raise ConfigError(f"{where}: events.{key}: not given ({EVENTS_KEYS[key]})")


def aprime_source(
    config: AnalysisConfig,
    mass: float | None,
    *,
    extrapolate: bool = False,
    source: Any = None,
    fiducial_on_refuse: bool = True,
) -> dict[str, Any]:
    """The A′ (γ*) production of the config, one setup for every event kind and the iDM reach.

    Arguments:
        config: the analysis config (``reach``, ``beam``, ``flow`` sections).
        mass: the A′ mass (GeV): its yield must be there (checked here, before the flow is
            loaded) and outside the flow's mass range the source is the analytic model,
            labelled extrapolated, with ``extrapolate`` (else an error); None: no mass checks.
        extrapolate: allow a mass outside the flow's range.
        source: the A′ kinematics (a :class:`~gammastar.source.source.Source` or a kinematics
            model, with the config's yields), or None for the config's
            (:meth:`Source.from_config <gammastar.source.source.Source.from_config>`).
        fiducial_on_refuse: with ``reach.extrapolation: refuse``, the fiducial yields (as the
            reach); False keeps the full yields file (the χχ̄ events use its extrapolation).

    Returns:
        dict with ``yields_path``, ``yields_doc`` (the raw JSON), ``scale_y`` and
        ``scale_info`` (:func:`gammastar.source.production.resolve_yield_scale`), ``n_pot``
        (the config's, else the data's), ``n_pot_data`` (the data's exposure, ``yields.json``
        ``meta.n_pot``, or None), ``source`` (the :class:`~gammastar.source.source.Source`:
        the yields, the kinematics and their description), ``lengths`` (target depth in
        interaction lengths, inf for a dump) and ``p_int`` (the interaction probability).

    Raises:
        ConfigError: no N_POT.  InputError: no yield at ``mass``, ``mass`` outside the flow's
        range without ``extrapolate``.
    """

    where = config.source or "<config>"
    yields_path = config.resolve(config.reach.yields)
    yields = load_yields(yields_path)
    refuse = config.reach.extrapolation == "refuse"
    if refuse and yields.extrapolation is not None:
        check_refuse(config, yields)
    if fiducial_on_refuse and refuse and yields.extrapolation is not None:
        yields = load_yields(yields_path, fiducial=True)  # as the reach: fiducial region only
    yields_doc = read_json(yields_path, what="yields file")
    scale_y, scale_info = resolve_yield_scale(config, yields)
    n_pot_data = yields.meta.get("n_pot")
    stated = config.reach.n_pot if config.reach.n_pot is not None else config.beam.n_pot
    n_pot = stated if isinstance(stated, int | float) else n_pot_data
    if not isinstance(n_pot, int | float) or not n_pot > 0:
        raise ConfigError(f"{where}: reach.n_pot or beam.n_pot must be a number for the events")
    if mass is not None:
        _yield_at(yields, yields_path, mass)
    if source is None:
        source = Source.from_config(config, yields)
    else:
        source = Source.from_model(source, yields)
    frange = source.mass_range
    if mass is not None and frange is not None and not frange[0] <= mass <= frange[1]:
        if not extrapolate:
            raise InputError(
                f"--mass {mass:g} GeV is outside the flow's mass range [{frange[0]:g}, "
                f"{frange[1]:g}] GeV; --extrapolate uses the analytic model there (labelled)"
            )
        source = Source.labelled(
            ParametricSampler(), yields,
            description=f"{PARAMETRIC}, outside the flow's range: extrapolated",
        )  # fmt: skip
    tl = config.reach.target_interaction_lengths
    if tl is None or tl == "data":
        tl = config.beam.interaction_lengths
    lengths = math.inf if tl == "dump" else float(tl)
    return {
        "yields_path": yields_path, "yields_doc": yields_doc, "scale_y": scale_y,
        "scale_info": scale_info, "n_pot": float(n_pot),
        "n_pot_data": float(n_pot_data) if isinstance(n_pot_data, int | float) else None,
        "source": source, "lengths": lengths,
        "p_int": float(interaction_probability(lengths if math.isfinite(lengths) else "dump")),
    }  # fmt: skip


def aprime_yield(src: Mapping[str, Any], mass: float) -> float:
    """The A′ yield per POT per ε² of ``src`` (:func:`aprime_source`) at ``mass``.

    Raises:
        InputError: no yield there (outside the yields file's masses).
    """
    return _yield_at(src["source"].yields, src["yields_path"], mass)


def _yield_at(yields: Any, path: Any, mass: float) -> float:
    """The yield per POT per ε² of ``yields`` (read from ``path``) at ``mass``.

    Raises:
        InputError: no yield there (outside the yields file's masses).
    """
    y, _ = yields.at(mass)
    if not np.isfinite(y):
        lo, hi = yields.mass_range
        raise InputError(f"--mass {mass:g}: no A' yield there ({path} covers {lo:g}-{hi:g} GeV)")
    return float(y)


def beam_settings(config: AnalysisConfig, src: Mapping[str, Any]) -> dict[str, Any]:
    """The beam and target fields of every event settings class: ``beam_energy`` (GeV),
    ``beam_spot`` (σ_x, σ_y in m), ``target_lambda`` (m) and ``target_lengths``."""
    ev = config.events
    spot, length = ev.beam_spot_sigma, ev.target_interaction_length
    if spot is None or length is None:  # the event commands require both (require_events_keys)
        require_events_keys(config, ("beam_spot_sigma", "target_interaction_length"))
        raise AssertionError("unreachable: require_events_keys raised")
    return {
        "beam_energy": float(config.beam.energy),
        "beam_spot": (float(spot[0]), float(spot[1])),
        "target_lambda": float(length),
        "target_lengths": src["lengths"],
    }


def cross_section_pb(config: AnalysisConfig, src: Mapping[str, Any], expected: float) -> float:
    """σ_inel(p target) × ``expected`` / (N_POT P_int), pb: the cross-section of the written
    process for the HepMC3 GenCrossSection (``expected`` events per N_POT). The target is the
    facility's (``reach.target``) when the config names one, else the data's (``beam``)."""
    target = getattr(config.reach, "target", None)
    sigma_mb = config.beam.sigma_inel_mb if target is None else target.sigma_inel_mb
    return sigma_mb * 1e9 * expected / (src["n_pot"] * src["p_int"])


def exposure_meta(src: Mapping[str, Any], *, data: bool = False) -> dict[str, Any]:
    """Meta keys of the exposure: ``n_pot`` (``n_pot_data`` with ``data``), ``yield_scale``
    and the yield scale's provenance, in this order (the order of the written meta).

    Example:
        >>> src = {"n_pot": 1e17, "n_pot_data": 1e13, "scale_y": 2.0, "scale_info": {"a": 1}}
        >>> list(exposure_meta(src, data=True))
        ['n_pot', 'n_pot_data', 'yield_scale', 'a']
    """
    out: dict[str, Any] = {"n_pot": src["n_pot"]}
    if data:
        out["n_pot_data"] = src["n_pot_data"]
    return {**out, "yield_scale": src["scale_y"], **src["scale_info"]}


def beam_meta(st: Any) -> dict[str, Any]:
    """Meta keys of the beam spot and the target material of the settings ``st``."""
    return {
        "beam_spot_sigma_m": list(st.beam_spot),
        "target_interaction_length_m": st.target_lambda,
    }


def polarisation(
    mode: str, config: AnalysisConfig, mass: float, yields_doc: Mapping[str, Any] | None
) -> tuple[float, dict[str, Any]]:
    """ρ₀₀ for ``--decay data|isotropic|transverse`` and where it came from.

    ``data``: ``yields.json`` ``polarisation.lambda_theta`` (helicity frame, per mass bin,
    linear interpolation between bin centres, constant beyond the outer ones) when present,
    else the config's ``unfold.decay_lambda_theta``; converted with :func:`rho00_from_lambda`
    (lepton mass ``input.lepton_mass``).
    """
    if mode == "isotropic":
        return 1.0 / 3.0, {"decay": "isotropic", "rho00": 1.0 / 3.0}
    if mode == "transverse":
        return 0.0, {"decay": "transverse", "rho00": 0.0, "lambda_theta": 1.0}
    if mode != "data":
        raise GammastarError(f"--decay: {mode!r} is not one of data, isotropic, transverse")
    pol = (yields_doc or {}).get("polarisation")
    ml = float(config.input.lepton_mass)
    if pol:
        try:
            frame = pol.get("frame", "helicity")
            edges = np.asarray(pol["mass_edges"], dtype=np.float64)
            lam = np.asarray([np.nan if v is None else v for v in pol["lambda_theta"]], float)
            err = pol.get("lambda_theta_err")
            err = np.asarray([np.nan if v is None else v for v in err], float) if err else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{config.reach.yields}: bad polarisation block ({exc})") from None
        if frame != "helicity":
            raise InputError(
                f"{config.reach.yields}: polarisation.frame {frame!r}; the events need helicity"
            )
        centres = 0.5 * (edges[1:] + edges[:-1])
        good = np.isfinite(lam)
        if centres.size != lam.size or not np.any(good):
            raise InputError(f"{config.reach.yields}: polarisation: no usable lambda_theta")
        lt = float(np.interp(mass, centres[good], lam[good]))
        info: dict[str, Any] = {
            "decay": "data",
            "source": "yields.json polarisation (helicity frame)",
            "lambda_theta": lt,
        }
        if err is not None and err.size == lam.size and np.isfinite(err[good]).all():

            # the error of the interpolated λ_θ (the bins are independent)
            e = interpolated_error(mass, centres[good], err[good])
            info["lambda_theta_err"] = float(e)
        if pol.get("lambda_phi") is not None:
            info["lambda_phi_note"] = "lambda_phi measured but not applied (uniform azimuth)"
    else:
        lt = float(config.unfold.decay_lambda_theta)
        info = {"decay": "data", "source": "config unfold.decay_lambda_theta", "lambda_theta": lt}
    rho = rho00_from_lambda(lt, mass, ml)
    info["rho00"] = rho
    return rho, info


def dark_settings(
    config: AnalysisConfig, mass: float, eps: float, src: Mapping[str, Any]
) -> DarkEventSettings:
    """:class:`DarkEventSettings` of the config's ``idm`` section at (m_A′, ε)."""

    idm = config.idm
    where = config.source or "<config>"
    if idm is None:
        raise ConfigError(f"{where}: no 'idm' section (docs/howto/dark-sectors.md)")
    model = idm.dark_model(float(mass))
    y = aprime_yield(src, mass)
    br = aprime_branching_ratios(model, eps)
    br_chain = {c: float(br[c]) for c in DARK_CHAINS if c in br and float(br[c]) > 0}
    tot = float(psi2_width(model, eps, "total"))
    ml_ok = {c: float(psi2_width(model, eps, c)) / tot for c in idm.channels}
    br_psi2: dict[str, float] = {c: v for c, v in ml_ok.items() if v > 0}
    if not br_psi2:
        raise InputError(
            f"--mass {mass:g}: psi2 -> psi1 ll is closed for idm.channels {list(idm.channels)} "
            f"(m2 - m1 = {float(model.m2 - model.m1):.4g} GeV)"
        )
    return DarkEventSettings(
        mass=float(mass),
        eps=float(eps),
        model=model,
        geometry=Geometry.from_config(config.detector),
        scale=src["n_pot"] * src["scale_y"] * float(y) * eps**2,
        br_chain=br_chain,
        br_psi2=br_psi2,
        ctau=float(psi2_ctau(model, eps)),
        min_opening_angle=float(idm.min_opening_angle),
        **beam_settings(config, src),
        aprime_pdgid=int(config.events.aprime_pdgid),
        psi1_pdgid=int(idm.psi1_pdgid),
        psi2_pdgid=int(idm.psi2_pdgid),
    )
