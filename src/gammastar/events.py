r"""Signal events for detector simulation (issue 15): whole A′ decay chains (A′ → ee, μμ,
ππ, K⁺K⁻, K_S K_L) and millicharged γ* → χχ̄ pairs with the data-driven kinematics and
polarisation, written as HepMC3 and as a columnar event table (docs/events.md).

One event machinery for the events command and the acceptance stage
(:func:`gammastar.acceptance.draw` builds on :func:`aprime_kinematics`,
:func:`decay_daughters` and :func:`detector_hits`): an A′ of mass m with (q_T, E) from the
kinematics sampler (the flow, the fiducial/extrapolated split of issue 12), a uniform azimuth,
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

import json
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar._api import make_callable as _make_callable
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics import darkphoton

__all__ = [
    "APRIME_PDGID",
    "DECAYS",
    "Decay",
    "EventSettings",
    "aprime_kinematics",
    "branching_ratios",
    "decay_coefficients",
    "decay_daughters",
    "detector_hits",
    "generate",
    "generate_chunks",
    "hepmc_text",
    "rho00_from_lambda",
    "run_dark_events",
    "run_events",
    "run_mcp_events",
    "sample_cos_theta",
]

from gammastar.eventgen import (  # the machinery, shared with the acceptance  # the dark-sector chains (issue 16)
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
    rho00_from_lambda,
    sample_cos_theta,
)


def hepmc_header(meta: Mapping[str, Any], weights: str = "weight\\|weight_decay") -> str:
    """The HepMC3 Asciiv3 header: weight names, tool, run attribute ``gammastar_meta``."""
    from gammastar._version import __version__

    js = json.dumps(meta, separators=(",", ":"), default=str).replace("\n", " ")
    return (
        "HepMC::Version 3.02.05\nHepMC::Asciiv3-START_EVENT_LISTING\n"
        f"W {weights}\n"
        f"T gammastar\\|{__version__}\\|signal events (issue 15)\n"
        f"A gammastar_meta {js}\n"
    )


HEPMC_FOOTER = "HepMC::Asciiv3-END_EVENT_LISTING\n"


def _float_column(x: NDArray) -> tuple[str, NDArray]:
    """A float column of a HepMC3 text program (:func:`_render_numba`, :func:`_render_pyarrow`)."""
    return ("f", np.asarray(x, dtype=np.float64))


def _int_column(x: NDArray) -> tuple[str, NDArray]:
    """An integer column of a HepMC3 text program."""
    return ("i", np.asarray(x, dtype=np.int64))


def _beams_and_recoil(
    beam_energy: float, px: NDArray, py: NDArray, pz: NDArray, e: NDArray
) -> tuple[str, tuple[NDArray, NDArray, NDArray, NDArray, NDArray]]:
    """The HepMC3 text of the production vertex's incoming particles (beam proton along +z,
    target nucleon at rest, status 4; up to the vertex position) and the recoil system X of
    each event (beam + target − the produced particle of four-momentum (px, py, pz, e):
    four-momentum balance; its mass signed, √|m²|·sign(m²))."""
    eb = float(beam_energy)
    pb = math.sqrt(max(eb**2 - M_PROTON**2, 0.0))
    xx, xy, xz, xe = -px, -py, pb - pz, eb + M_PROTON - e
    xm2 = xe**2 - xx**2 - xy**2 - xz**2
    xm = np.sign(xm2) * np.sqrt(np.abs(xm2))
    beams = (
        f"\nP 1 0 {PDG_PROTON} 0 0 {pb!r} {eb!r} {M_PROTON!r} {STATUS_BEAM}"
        f"\nP 2 0 {PDG_PROTON} 0 0 0 {M_PROTON!r} {M_PROTON!r} {STATUS_BEAM}"
        "\nV -1 0 [1,2] @ "
    )
    return beams, (xx, xy, xz, xe, xm)


def hepmc_text(
    cols: Mapping[str, NDArray], st: EventSettings, n_attempted: int, *, backend: str = "numba"
) -> bytes:
    """HepMC3 Asciiv3 text of a chunk of events, formatted column-wise (no per-event Python
    loop): a compiled writer (:mod:`gammastar._hepmc_ascii`, 17 correctly rounded significant
    digits) or pyarrow's string kernels (shortest round-trip decimals; ``backend="pyarrow"``,
    and the fallback for values beyond ±1e280 or non-finite ones). Units GeV and mm (lengths
    ×1000); round-trips through ``pyhepmc.io.ReaderAscii`` (tests/test_events.py).

    Per event: vertex −1 (production) beam proton (status 4) + target nucleon at rest
    (status 4) → A′ (status 2) + X (PDG 90, status 3, the rest of the collision: four-momentum
    balance); vertex −2 (decay) A′ → daughter 1 + daughter 2 (status 1). Weights ``weight``,
    ``weight_decay``; attributes GenCrossSection (pb), ``channel``, ``detected``,
    ``extrapolated``.
    """
    n = cols["weight"].size
    if n == 0:
        return b""
    mm = 1000.0
    ax, ay, az, ae = (cols[f"aprime_{c}"] for c in ("px", "py", "pz", "E"))
    beams, (xx, xy, xz, xe, xm) = _beams_and_recoil(st.beam_energy, ax, ay, az, ae)
    xs = st.sigma_pb_per_event

    f, i = _float_column, _int_column

    parts: list[Any] = [
        "E ", i(cols["event"]), " 2 6\nU GEV MM\nW ", f(cols["weight"]), " ",
        f(cols["weight_decay"]),
        f"\nA 0 GenCrossSection {xs:.8e} 0 {n_attempted} {n_attempted}\nA 0 channel ",
        ("s", np.asarray(cols["channel"], dtype=np.int64)), "\nA 0 detected ",
        i(cols["detected"]), "\nA 0 extrapolated ", i(cols["extrapolated"]),
        beams, f(cols["prod_x"] * mm), " ", f(cols["prod_y"] * mm), " ",
        f(cols["prod_z"] * mm), f" 0\nP 3 -1 {st.aprime_pdgid} ",
        f(ax), " ", f(ay), " ", f(az), " ", f(ae), f" {st.mass!r} {STATUS_DECAYED}\nP 4 -1 {PDG_SYSTEM} ",
        f(xx), " ", f(xy), " ", f(xz), " ", f(xe), " ", f(xm), f" {STATUS_DOC}\nV -2 0 [3] @ ",
        f(cols["decay_x"] * mm), " ", f(cols["decay_y"] * mm), " ", f(cols["decay_z"] * mm), " ",
        f(cols["decay_t"] * mm), "\nP 5 -2 ", i(cols["pdg1"]), " ",
        f(cols["d1_px"]), " ", f(cols["d1_py"]), " ", f(cols["d1_pz"]), " ", f(cols["d1_E"]), " ",
        f(cols["m1"]), f" {STATUS_FINAL}\nP 6 -2 ", i(cols["pdg2"]), " ",
        f(cols["d2_px"]), " ", f(cols["d2_py"]), " ", f(cols["d2_pz"]), " ", f(cols["d2_E"]), " ",
        f(cols["m2"]), f" {STATUS_FINAL}\n",
    ]  # fmt: skip
    names = [name.encode() for name in DECAYS]
    if backend == "numba":
        out = _render_numba(parts, names, n)
        if out is not None:
            return out
    elif backend != "pyarrow":
        raise GammastarError(f"hepmc_text: unknown backend {backend!r}")
    return _render_pyarrow(parts, names, n)


def _render_numba(parts: list[Any], names: list[bytes], n: int) -> bytes | None:
    from gammastar import _hepmc_ascii as ha

    program: list[tuple[int, Any]] = []
    fcols: list[NDArray] = []
    icols: list[NDArray] = []
    for part in parts:
        if isinstance(part, str):
            program.append((ha.KIND_LITERAL, part.encode()))
        elif part[0] == "f":
            program.append((ha.KIND_FLOAT, len(fcols)))
            fcols.append(part[1])
        else:
            program.append((ha.KIND_INT if part[0] == "i" else ha.KIND_STRING, len(icols)))
            icols.append(part[1])
    fvals = np.stack(fcols, axis=1) if fcols else np.zeros((n, 0))
    ivals = np.stack(icols, axis=1) if icols else np.zeros((n, 0), dtype=np.int64)
    return ha.render(program, fvals, ivals, names)


def _render_pyarrow(parts: list[Any], names: list[bytes], n: int) -> bytes:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = np.array([x.decode() for x in names])
    args: list[Any] = []
    for part in parts:
        if isinstance(part, str):
            args.append(part)
        elif part[0] == "s":
            args.append(pa.array(table[part[1]]))
        else:
            args.append(pc.cast(pa.array(part[1]), pa.string()))
    joined = pc.binary_join_element_wise(*args, "")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1, offset=0)
    return joined.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


# --------------------------------------------------------------------------- table writers
TABLE_UNITS = "GeV, m (positions), m (decay_t = c t)"


class _TableWriter:
    """Streams chunks into a parquet file (pyarrow) or a ROOT TTree ``events`` (uproot)."""

    def __init__(self, path: Path, kind: str, meta: Mapping[str, Any]) -> None:
        self.path, self.kind, self.meta = path, kind, dict(meta)
        self._w: Any = None
        self._file: Any = None

    def write(self, cols: Mapping[str, NDArray]) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            tab = pa.table(dict(cols))
            if self._w is None:
                schema = tab.schema.with_metadata({"gammastar": json.dumps(self.meta, default=str)})
                self._w = pq.ParquetWriter(str(self.path), schema)
            self._w.write_table(tab.cast(self._w.schema))
        else:
            import uproot

            if self._file is None:
                self._file = uproot.recreate(str(self.path))
                self._file["meta"] = json.dumps(self.meta, default=str)
                self._file.mktree("events", {k: v.dtype for k, v in cols.items()})
            self._file["events"].extend(dict(cols))

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        if self._file is not None:
            self._file.close()


def output_kind(path: str | Path) -> str:
    """``hepmc`` (.hepmc, .hepmc3), ``parquet`` or ``root`` from the file name."""
    suf = Path(path).suffix.lower()
    kinds = {".hepmc": "hepmc", ".hepmc3": "hepmc", ".parquet": "parquet", ".root": "root"}
    if suf not in kinds:
        raise GammastarError(
            f"{path}: unknown output format {suf!r}; use .hepmc/.hepmc3 (HepMC3), .parquet or .root"
        )
    return kinds[suf]


def write_events(
    chunks: Iterator[dict[str, NDArray]],
    outputs: list[Path],
    st: EventSettings,
    meta: Mapping[str, Any],
    *,
    force: bool,
    n_attempted: int,
    text: Any = None,
) -> dict[str, Any]:
    """Stream ``chunks`` into every output (atomically: temporaries renamed at the end);
    ``text(cols, st, n_attempted)`` formats HepMC3 records (default :func:`hepmc_text`)."""
    text = hepmc_text if text is None else text
    from gammastar.artifacts import atomic_paths

    kinds = [output_kind(p) for p in outputs]
    stats = {"events": 0, "sum_weight": 0.0, "sum_weight2": 0.0, "sum_weight_decay": 0.0}
    channels = getattr(st, "channels", ())
    per_channel: dict[str, float] = {c: 0.0 for c in channels}
    with atomic_paths(outputs, force=force) as tmps:
        handles: list[Any] = []
        try:
            for tmp, kind in zip(tmps, kinds, strict=True):
                if kind == "hepmc":
                    fh = open(tmp, "wb")  # noqa: SIM115 (closed below)
                    names = getattr(text, "weight_names", "weight\\|weight_decay")
                    fh.write(hepmc_header(meta, names).encode())
                    handles.append(fh)
                else:
                    handles.append(_TableWriter(tmp, kind, meta))
            for cols in chunks:
                stats["events"] += int(cols["weight"].size)
                stats["sum_weight"] += float(cols["weight"].sum())
                stats["sum_weight2"] += float(np.sum(cols["weight"] ** 2))
                if "weight_decay" in cols:
                    stats["sum_weight_decay"] += float(cols["weight_decay"].sum())
                for ch in channels:
                    sel = cols["channel"] == CHANNEL_CODE[ch]
                    per_channel[ch] += float(cols["weight"][sel].sum())
                for h, kind in zip(handles, kinds, strict=True):
                    if kind == "hepmc":
                        h.write(text(cols, st, n_attempted))
                    else:
                        h.write(cols)
            for h, kind in zip(handles, kinds, strict=True):
                if kind == "hepmc":
                    h.write(HEPMC_FOOTER.encode())
        finally:
            for h in handles:
                h.close()
    stats["sum_weight_by_channel"] = per_channel
    return stats


# --------------------------------------------------------------------------- config → settings
def polarisation(
    mode: str, config: Any, mass: float, yields_doc: Mapping[str, Any] | None
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
        if err is not None and err.size == lam.size:
            info["lambda_theta_err"] = float(np.interp(mass, centres[good], err[good]))
        if pol.get("lambda_phi") is not None:
            info["lambda_phi_note"] = "lambda_phi measured but not applied (uniform azimuth)"
    else:
        lt = float(config.unfold.decay_lambda_theta)
        info = {"decay": "data", "source": "config unfold.decay_lambda_theta", "lambda_theta": lt}
    rho = rho00_from_lambda(lt, mass, ml)
    info["rho00"] = rho
    return rho, info


def run_events(
    config: Any,
    *,
    mass: float,
    eps: float,
    n: int,
    output: str | Path,
    table: str | Path | None = None,
    channels: tuple[str, ...] | None = None,
    decay: str = "data",
    unweighted: bool = False,
    extrapolate: bool = False,
    seed: int | None = None,
    chunk: int = 100_000,
    force: bool = False,
    sampler: Any = None,
) -> dict[str, Any]:
    """``gammastar events``: signal events at (m, ε) into ``output`` (HepMC3, parquet or ROOT
    by suffix) and optionally ``table``.

    Arguments:
        config: the analysis config (its reach/yields/flow/detector/beam/events sections).
        mass, eps: A′ mass (GeV) and kinetic mixing (> 0).
        n: events to generate (weighted: drawn; ``unweighted``: written).
        output, table: output files.
        channels: decays (default: ``reach.channels``).
        decay: ``data``, ``isotropic`` or ``transverse``.
        unweighted: accept-reject to unit-weight events (each N_sig/n).
        extrapolate: allow a mass outside the flow's range (the analytic model, labelled).
        seed: random seed (default: the config's).
        chunk: events per chunk (memory bound).
        force: overwrite existing outputs.
        sampler: override the A′ kinematics sampler.

    Returns:
        Summary dict (also the ``meta`` written into the files, plus sums of weights).

    Raises:
        GammastarError: bad arguments (one line naming the option), outputs that exist.
    """
    from gammastar.artifacts import check_writable, make_meta, read_json
    from gammastar.reach import (
        _sampler_from_config,
        load_yields,
        resolve_yield_scale,
        signal_events,
    )

    if not (isinstance(n, int) and n > 0):
        raise GammastarError(f"-n: the number of events must be a positive integer, not {n}")
    if not (math.isfinite(eps) and eps > 0):
        raise GammastarError(f"--eps: the kinetic mixing must be > 0, not {eps:g}")
    if not (math.isfinite(mass) and mass > 0):
        raise GammastarError(f"--mass: the A' mass must be > 0 GeV, not {mass:g}")
    if chunk <= 0:
        raise GammastarError(f"--chunk must be positive, not {chunk}")
    outputs = [Path(output)] + ([Path(table)] if table is not None else [])
    for p in outputs:
        output_kind(p)
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise GammastarError("--table: the same file as the output")
    for p in outputs:
        check_writable(p, force)
    ev = config.events
    src = config.source or "<config>"
    if ev.beam_spot_sigma is None:
        raise ConfigError(
            f"{src}: events.beam_spot_sigma: not given ([sigma_x, sigma_y] of the beam at the "
            "target in m; [0, 0] for a point beam)"
        )
    if ev.target_interaction_length is None:
        raise ConfigError(
            f"{src}: events.target_interaction_length: not given (nuclear interaction length "
            "of the target material in m, for the depth of the production vertex)"
        )
    yields_path = config.resolve(config.reach.yields)
    yields = load_yields(yields_path)
    if yields.extrapolation is not None and config.reach.extrapolation == "refuse":
        yields = load_yields(yields_path, fiducial=True)  # as the reach: fiducial region only
    yields_doc = read_json(yields_path, what="yields file")
    scale_y, scale_info = resolve_yield_scale(config, yields)
    n_pot = config.reach.n_pot if config.reach.n_pot is not None else config.beam.n_pot
    if not isinstance(n_pot, int | float):
        n_pot = yields.meta.get("n_pot")
    if not isinstance(n_pot, int | float) or not n_pot > 0:
        raise ConfigError(f"{src}: reach.n_pot or beam.n_pot must be a number for the events")
    y, _ = yields.at(mass)
    if not np.isfinite(y):
        lo, hi = yields.mass_range
        raise InputError(
            f"--mass {mass:g}: no A' yield there ({yields_path} covers {lo:g}-{hi:g} GeV)"
        )
    desc = "given"
    if sampler is None:
        sampler, desc = _sampler_from_config(config, yields)
    frange = mass_range(sampler)
    if frange is not None and not frange[0] <= mass <= frange[1]:
        if not extrapolate:
            raise InputError(
                f"--mass {mass:g} GeV is outside the flow's mass range [{frange[0]:g}, "
                f"{frange[1]:g}] GeV; --extrapolate uses the analytic model there (labelled)"
            )
        from gammastar.acceptance import ParametricSampler

        base = ParametricSampler()
        sampler = _Labelled(base)
        desc = "parametric (physics.md §3.2 defaults), outside the flow's range: extrapolated"
    dark = None
    rc = config.reach
    if rc.dark_alpha > 0:
        dark = darkphoton.DarkSector(rc.dark_alpha, rc.dark_mass)
    if channels:
        chans = tuple(channels)
    else:  # the reach's channels that are open at this mass
        chans = tuple(c for c in rc.channels if mass > DECAYS[c].m1 + DECAYS[c].m2)
        if not chans:
            raise InputError(
                f"--mass {mass:g}: none of reach.channels {list(rc.channels)} is open; "
                "give --channels"
            )
    rho00, pol_info = polarisation(decay, config, mass, yields_doc)
    tl = rc.target_interaction_lengths
    if tl is None or tl == "data":
        tl = config.beam.interaction_lengths
    lengths = math.inf if tl == "dump" else float(tl)
    from gammastar.acceptance import Geometry, KinematicSample, draw
    from gammastar.physics.target import interaction_probability

    geometry = Geometry.from_config(config.detector)
    seed = config.seed if seed is None else int(seed)
    n_pot_eff = float(n_pot) * scale_y
    scale = n_pot_eff * float(y) * eps**2
    st = EventSettings(
        mass=float(mass),
        eps=float(eps),
        geometry=geometry,
        scale=scale,
        channels=chans,
        rho00=rho00,
        beam_energy=float(config.beam.energy),
        beam_spot=(float(ev.beam_spot_sigma[0]), float(ev.beam_spot_sigma[1])),
        target_lambda=float(ev.target_interaction_length),
        target_lengths=lengths,
        aprime_pdgid=int(ev.aprime_pdgid),
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
    p_int = float(interaction_probability(lengths if math.isfinite(lengths) else "dump"))
    st.sigma_pb_per_event = config.beam.sigma_inel_mb * 1e9 * n_exp / (float(n_pot) * p_int)
    reach_nsig = None
    lep = tuple(c for c in chans if c in darkphoton.LEPTON_CHANNELS)
    if lep:
        smp = draw(sampler, mass, rc.samples, geometry, seed=seed, channel=lep[0])
        parts = signal_events(
            mass, eps, yield_per_pot_eps2=float(y), n_pot=n_pot_eff, sample=smp,
            channels=lep, dark=dark,
        )  # fmt: skip
        reach_nsig = float(sum(float(v) for v in parts.values()))
    unwritten = {ch: scale * br * p_decay for ch, br in st.br.items() if ch not in chans and br > 0}
    meta = make_meta(
        config_sha256=config.section_sha256("beam", "detector", "reach", "events", "seed"),
        seed=seed,
        inputs=[yields_path],
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
        sampler=desc,
        aprime_pdgid=st.aprime_pdgid,
        units={"hepmc": "GeV, mm (c t in mm)", "table": TABLE_UNITS},
        n_pot=float(n_pot),
        yield_scale=scale_y,
        **scale_info,
        aprime_per_pot_per_eps2=float(y),
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
        beam_spot_sigma_m=list(st.beam_spot),
        target_interaction_length_m=st.target_lambda,
        production_depth_interaction_lengths=None if not math.isfinite(lengths) else lengths,
        geometry=geometry.__dict__,
    )
    unw = Unweighter(n, n_exp, seed) if unweighted else None
    if unw is not None:
        chunks = unw(_chunks_forever(sampler, st, chunk, seed))
    else:
        chunks = generate_chunks(sampler, st, n, seed=seed, chunk=chunk)
    stats = write_events(chunks, outputs, st, meta, force=force, n_attempted=n)
    if unw is not None:
        stats["over_max"] = unw.over_max
        stats["generated"] = unw.generated
    stats["seconds"] = time.perf_counter() - t0
    stats["outputs"] = [str(p) for p in outputs]
    return {**stats, "meta": meta}


# --------------------------------------------------------------------------- millicharged
@dataclass
class McpSettings:
    """Settings of a χχ̄ event sample (:func:`run_mcp_events`); lengths m, energies GeV."""

    m_chi: float
    charge: float
    pdgid: int
    beam_energy: float = 400.0
    beam_spot: tuple[float, float] = (0.0, 0.0)
    target_lambda: float = 0.0
    target_lengths: float = math.inf
    sigma_pb_per_event: float = 0.0


def mcp_bins(
    edges: NDArray, contents: NDArray, m_chi: float, m_lepton: float, q: float,
    mass_range: tuple[float, float] | None,
) -> tuple[NDArray, NDArray, NDArray]:  # fmt: skip
    """(lo, hi, expected χχ̄ pairs) per γ* mass bin: the part of each bin above 2 m_χ (and
    inside ``mass_range``), content × the bin-averaged Eq. 8 factor Q² K_χ/K_ℓ (as
    :func:`gammastar.flow.sample_mcp`, there with a 3-point rule; here Gauss–Legendre after
    m = lo + (hi − lo)u², exact to ~1e-8 also in the threshold bin)."""
    from gammastar.physics.kinematics import mcp_factor

    lo = np.maximum(edges[:-1], 2 * m_chi)
    hi = edges[1:].astype(np.float64).copy()
    if mass_range is not None:
        lo = np.maximum(lo, mass_range[0])
        hi = np.minimum(hi, mass_range[1])
    ok = hi > lo
    # bin average with m = lo + (hi − lo) u²: the √(m − 4m_χ²) threshold becomes smooth in u;
    # 12-point Gauss–Legendre in u ∈ [0, 1]
    x, w = np.polynomial.legendre.leggauss(12)
    u, w = 0.5 * (x + 1), 0.5 * w
    fac = sum(wi * 2 * ui * mcp_factor(lo + (hi - lo) * ui**2, m_chi, m_lepton, q)
              for ui, wi in zip(u, w, strict=True))  # fmt: skip
    frac = np.where(ok, (hi - lo) / (edges[1:] - edges[:-1]), 0.0)
    expected = np.where(ok, contents * fac * frac, 0.0)
    return lo, hi, expected


def generate_mcp(
    sampler: Any,
    st: McpSettings,
    bins: tuple[NDArray, NDArray, NDArray],
    rho00: NDArray,
    n: int,
    *,
    seed: int | None,
    total: float,
    n_norm: int,
) -> dict[str, NDArray]:
    """One chunk of ``n`` χχ̄ events (the paper's recipe, Sec. III C 2, with this module's
    machinery): γ* mass from the data's spectrum × Eq. 8 factor (bin ∝ expected pairs, mass
    uniform in the bin), (q_T, E) from the sampler at the bin centre with E set to the event's
    mass at fixed momentum, the decay γ* → χχ̄ with the bin's ρ₀₀, the production vertex.
    Weight ``total``/``n_norm``: the weights sum to the expected χχ̄ pairs."""
    lo, hi, expected = bins
    ss = np.random.SeedSequence(seed)
    s_bin, s_kin, s_vtx = ss.spawn(3)
    rng_b = np.random.default_rng(s_bin)
    b = rng_b.choice(expected.size, size=n, p=expected / expected.sum())
    m = rng_b.uniform(lo[b], hi[b])
    px, py, pz = np.empty(n), np.empty(n), np.empty(n)
    ok = np.ones(n, dtype=bool)
    extrap = np.zeros(n, dtype=bool)
    rng_k = np.random.default_rng(s_kin)
    for j in np.unique(b):
        idx = np.nonzero(b == j)[0]
        mc = 0.5 * (lo[j] + hi[j])
        k = aprime_kinematics(
            sampler, float(mc), idx.size, seed=int(rng_k.integers(2**63)), rng=rng_k
        )
        px[idx], py[idx], pz[idx] = k.px, k.py, k.pz
        ok[idx] = k.ok
        if k.extrapolated is not None:
            extrap[idx] = k.extrapolated
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    g = AprimeKinematics(m, px, py, pz, e, ok)  # type: ignore[arg-type]  (per-event mass)
    chi = Decay("chichi", st.pdgid, -st.pdgid, st.m_chi, st.m_chi, True)
    coef = np.array([decay_coefficients(float(r), float(0.5 * (lo[j] + hi[j])), chi)
                     for j, r in enumerate(rho00)])  # fmt: skip
    cos_t = sample_cos_theta(coef[b, 0], coef[b, 1], n, rng_k)
    phi = rng_k.uniform(0.0, 2 * np.pi, n)
    d1, d2 = decay_daughters(g, st.m_chi, st.m_chi, cos_t, phi)
    rng_v = np.random.default_rng(s_vtx)
    x0 = rng_v.normal(0.0, st.beam_spot[0], n) if st.beam_spot[0] > 0 else np.zeros(n)
    y0 = rng_v.normal(0.0, st.beam_spot[1], n) if st.beam_spot[1] > 0 else np.zeros(n)
    u = rng_v.uniform(0.0, 1.0, n)
    z0 = (
        -st.target_lambda * np.log1p(u * np.expm1(-st.target_lengths))
        if st.target_lambda > 0
        else np.zeros(n)
    )
    cols = {
        "weight": np.full(n, total / n_norm),
        "extrapolated": extrap,
        "m_gstar": m,
        "prod_x": x0,
        "prod_y": y0,
        "prod_z": z0,
        "gstar_px": px,
        "gstar_py": py,
        "gstar_pz": pz,
        "gstar_E": e,
        "cos_theta": cos_t,
        "phi": phi,
    }
    for name, d in (("chi1", d1), ("chi2", d2)):
        for i, comp in enumerate(("px", "py", "pz", "E")):
            cols[f"{name}_{comp}"] = d[i]
    return {key: np.ascontiguousarray(v[ok]) for key, v in cols.items()}


def mcp_hepmc_text(
    cols: Mapping[str, NDArray], st: McpSettings, n_attempted: int, *, backend: str = "numba"
) -> bytes:
    """HepMC3 records of χχ̄ events: vertex −1 beam proton + nucleon (status 4) → γ* (PDG 22,
    status 2, its mass) + X (PDG 90, status 3); vertex −2 at the same point (prompt decay)
    γ* → χ (``events.mcp_pdgid``) + χ̄ (its negative), status 1. Units GeV, mm."""
    n = cols["weight"].size
    if n == 0:
        return b""
    mm = 1000.0
    gx, gy, gz, ge = (cols[f"gstar_{c}"] for c in ("px", "py", "pz", "E"))
    beams, (xx, xy, xz, xe, xm) = _beams_and_recoil(st.beam_energy, gx, gy, gz, ge)
    xs = st.sigma_pb_per_event

    f = _float_column

    vx, vy, vz = f(cols["prod_x"] * mm), f(cols["prod_y"] * mm), f(cols["prod_z"] * mm)
    mc = repr(float(st.m_chi))
    parts: list[Any] = [
        "E ", ("i", np.asarray(cols["event"], dtype=np.int64)), " 2 6\nU GEV MM\nW ",
        f(cols["weight"]),
        f"\nA 0 GenCrossSection {xs:.8e} 0 {n_attempted} {n_attempted}\nA 0 extrapolated ",
        ("i", cols["extrapolated"].astype(np.int64)),
        beams,
        vx, " ", vy, " ", vz, " 0\nP 3 -1 22 ", f(gx), " ", f(gy), " ", f(gz), " ", f(ge), " ",
        f(cols["m_gstar"]), f" {STATUS_DECAYED}\nP 4 -1 {PDG_SYSTEM} ", f(xx), " ", f(xy), " ",
        f(xz), " ", f(xe), " ", f(xm), f" {STATUS_DOC}\nV -2 0 [3] @ ", vx, " ", vy, " ", vz,
        f" 0\nP 5 -2 {st.pdgid} ", f(cols["chi1_px"]), " ", f(cols["chi1_py"]), " ",
        f(cols["chi1_pz"]), " ", f(cols["chi1_E"]), f" {mc} {STATUS_FINAL}\nP 6 -2 {-st.pdgid} ",
        f(cols["chi2_px"]), " ", f(cols["chi2_py"]), " ", f(cols["chi2_pz"]), " ",
        f(cols["chi2_E"]), f" {mc} {STATUS_FINAL}\n",
    ]  # fmt: skip
    if backend == "numba":
        out = _render_numba(parts, [], n)
        if out is not None:
            return out
    return _render_pyarrow(parts, [], n)


mcp_hepmc_text.weight_names = "weight"  # type: ignore[attr-defined]


def run_mcp_events(
    config: Any,
    *,
    m_chi: float,
    n: int,
    output: str | Path,
    charge: float = 1.0,
    table: str | Path | None = None,
    decay: str = "data",
    extrapolate: bool = False,
    seed: int | None = None,
    chunk: int = 100_000,
    force: bool = False,
    sampler: Any = None,
    spectrum: tuple[NDArray, NDArray, str] | None = None,
) -> dict[str, Any]:
    """``gammastar events --mchi``: γ* → χχ̄ events (millicharged particles, Eq. 8).

    The γ* mass spectrum is the data's unfolded dilepton spectrum (``histograms.root``
    ``unfolded_m``, else ``pairs.parquet``; or ``spectrum`` = (edges, contents, source)) in the
    data's exposure (``yields.json`` ``meta.n_pot``), carried to the config's N_POT and target
    like the A′ yields (``reach.n_pot``/``beam.n_pot``, the yield scale). Weights sum to the
    expected χχ̄ pairs produced (no detector). ``charge`` = Q_χ/e.

    Raises:
        GammastarError: bad arguments, no γ* mass above 2 m_χ, outputs that exist.
    """
    from gammastar.artifacts import check_writable, make_meta, read_json
    from gammastar.physics.target import interaction_probability
    from gammastar.reach import _sampler_from_config, load_yields, resolve_yield_scale

    if not (isinstance(n, int) and n > 0):
        raise GammastarError(f"-n: the number of events must be a positive integer, not {n}")
    if not (math.isfinite(m_chi) and m_chi > 0):
        raise GammastarError(f"--mchi: the millicharged-particle mass must be > 0, not {m_chi:g}")
    if not (math.isfinite(charge) and charge > 0):
        raise GammastarError(f"--charge: Q/e must be > 0, not {charge:g}")
    outputs = [Path(output)] + ([Path(table)] if table is not None else [])
    for p in outputs:
        output_kind(p)
    for p in outputs:
        check_writable(p, force)
    ev = config.events
    src = config.source or "<config>"
    for key in ("mcp_pdgid", "beam_spot_sigma", "target_interaction_length"):
        if getattr(ev, key) is None:
            raise ConfigError(f"{src}: events.{key}: not given (docs/events.md)")
    yields_path = config.resolve(config.reach.yields)
    yields = load_yields(yields_path)
    yields_doc = read_json(yields_path, what="yields file")
    scale_y, scale_info = resolve_yield_scale(config, yields)
    rc = config.reach
    n_pot = rc.n_pot if rc.n_pot is not None else config.beam.n_pot
    n_pot_data = yields.meta.get("n_pot")
    if not isinstance(n_pot, int | float):
        n_pot = n_pot_data
    if not isinstance(n_pot_data, int | float) or not n_pot_data > 0:
        raise InputError(f"{yields_path}: meta.n_pot (the data's exposure) is missing")
    if not isinstance(n_pot, int | float) or not n_pot > 0:
        raise ConfigError(f"{src}: reach.n_pot or beam.n_pot must be a number for the events")
    if spectrum is None:
        from gammastar.flow.data import run_mass_spectrum  # the flow sampler's χχ̄ spectrum

        spectrum = run_mass_spectrum(config)
    edges, contents, spec_src = spectrum
    edges = np.asarray(edges, dtype=np.float64)
    contents = np.clip(np.asarray(contents, dtype=np.float64), 0.0, None)
    phase = "the spectrum's (no extrapolation in the yields)"
    if yields.extrapolation is not None:
        if rc.extrapolation == "label":
            # a fiducial-region spectrum: to the full phase space with the yields' f_F(m); the
            # sampler (ExtrapolatedSampler) draws the outside part from the fitted model
            from gammastar.extrapolation import Extrapolation

            f_f = Extrapolation.from_dict(yields.extrapolation).at(0.5 * (edges[1:] + edges[:-1]))[
                0
            ]
            contents = np.where(f_f > 0, contents / np.where(f_f > 0, f_f, 1.0), 0.0)
            phase = "full: fiducial spectrum / f_F(m) (yields.json extrapolation), labelled"
        else:
            phase = "fiducial region only (reach.extrapolation: refuse)"
    desc = "given"
    if sampler is None:
        sampler, desc = _sampler_from_config(config, yields)
    frange = mass_range(sampler)
    if extrapolate and frange is not None:
        from gammastar.acceptance import ParametricSampler

        inner = sampler

        class _Either:
            mass_range = None

            def sample(self, mass: float, k: int, seed: int | None = None) -> Any:
                if frange[0] <= mass <= frange[1]:
                    return inner.sample(mass, k, seed=seed)
                return _Labelled(ParametricSampler()).sample(mass, k, seed=seed)

        sampler = _Either()
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
    n_pot_eff = float(n_pot) * scale_y
    total = data_total * n_pot_eff / float(n_pot_data)
    centres = 0.5 * (bins[0] + bins[1])
    rho = np.empty(centres.size)
    pol_info: dict[str, Any] = {}
    for j, mc in enumerate(centres):
        rho[j], info = polarisation(decay, config, float(max(mc, 2 * ml + 1e-9)), yields_doc)
        if j == 0 or not pol_info:
            pol_info = {k: v for k, v in info.items() if k in ("decay", "source")}
    seed = config.seed if seed is None else int(seed)
    tl = rc.target_interaction_lengths
    if tl is None or tl == "data":
        tl = config.beam.interaction_lengths
    lengths = math.inf if tl == "dump" else float(tl)
    p_int = float(interaction_probability(lengths if math.isfinite(lengths) else "dump"))
    st = McpSettings(
        m_chi=float(m_chi),
        charge=float(charge),
        pdgid=int(ev.mcp_pdgid),
        beam_energy=float(config.beam.energy),
        beam_spot=(float(ev.beam_spot_sigma[0]), float(ev.beam_spot_sigma[1])),
        target_lambda=float(ev.target_interaction_length),
        target_lengths=lengths,
    )
    st.sigma_pb_per_event = config.beam.sigma_inel_mb * 1e9 * total / (float(n_pot) * p_int)
    meta = make_meta(
        config_sha256=config.section_sha256("beam", "reach", "events", "unfold", "seed"),
        seed=seed,
        inputs=[yields_path],
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
        n_pot=float(n_pot),
        n_pot_data=float(n_pot_data),
        yield_scale=scale_y,
        **scale_info,
        chichi_expected=total,
        chichi_per_pot_per_q2=total / n_pot_eff / charge**2,
        units={"hepmc": "GeV, mm", "table": "GeV, m"},
        cross_section_pb=st.sigma_pb_per_event,
        beam_spot_sigma_m=list(st.beam_spot),
        target_interaction_length_m=st.target_lambda,
    )

    def chunks() -> Iterator[dict[str, NDArray]]:
        first = 0
        for size, s in chunk_seeds(seed, n, chunk):
            cols = generate_mcp(sampler, st, bins, rho, size, seed=s, total=total, n_norm=n)
            yield {"event": np.arange(first, first + cols["weight"].size), **cols}
            first += size

    t0 = time.perf_counter()
    stats = write_events(chunks(), outputs, st, meta, force=force, n_attempted=n,
                         text=mcp_hepmc_text)  # fmt: skip
    stats["seconds"] = time.perf_counter() - t0
    stats["outputs"] = [str(p) for p in outputs]
    return {**stats, "meta": meta}


# --------------------------------------------------------------------------- dark sectors
def dark_hepmc_text(
    cols: Mapping[str, NDArray], st: DarkEventSettings, n_attempted: int, *, backend: str = "numba"
) -> bytes:
    """HepMC3 Asciiv3 records of semi-visible events (rows ordered by chain; units GeV, mm).

    Vertex −1: beam proton + target nucleon (status 4) → A′ (status 2) + X (PDG 90, status 3);
    vertex −2 at the same point (prompt A′ decay): partner (ψ₁, status 1; or the second ψ₂,
    status 2) + ψ₂ (status 2); vertex −3 (ψ₂ decay, in the decay volume): ψ₁ ℓ⁻ ℓ⁺ (status 1);
    for ψ₂ψ̄₂ vertex −4 (the partner's decay): ψ̄₁ ℓ⁻ ℓ⁺. Weights ``weight``, ``weight_decay``;
    attributes GenCrossSection (pb), ``chain``, ``channel``, ``detected``, ``extrapolated``.
    """
    n = cols["weight"].size
    if n == 0:
        return b""
    chain = np.asarray(cols["chain"])
    cut = int(np.searchsorted(chain, 1))
    out = b""
    for lo, hi in ((0, cut), (cut, n)):
        if hi > lo:
            sub = {k: np.asarray(v)[lo:hi] for k, v in cols.items()}
            out += _dark_render(sub, st, n_attempted, two=bool(chain[lo] == 1), backend=backend)
    return out


dark_hepmc_text.weight_names = "weight\\|weight_decay"  # type: ignore[attr-defined]


def _dark_render(
    cols: Mapping[str, NDArray], st: DarkEventSettings, n_attempted: int, *, two: bool,
    backend: str,
) -> bytes:  # fmt: skip
    from gammastar.physics.darksector import FINAL_STATES

    n = cols["weight"].size
    mm = 1000.0
    eb = st.beam_energy
    pb = math.sqrt(max(eb**2 - M_PROTON**2, 0.0))
    ax, ay, az, ae = (cols[f"aprime_{c}"] for c in ("px", "py", "pz", "E"))
    xx, xy, xz, xe = -ax, -ay, pb - az, eb + M_PROTON - ae
    xm2 = xe**2 - xx**2 - xy**2 - xz**2
    xm = np.sign(xm2) * np.sqrt(np.abs(xm2))
    m1, m2 = repr(float(st.model.m1)), repr(float(st.model.m2))
    ml = np.array([FINAL_STATES[c] for c in PSI2_CHANNELS])
    lpdg = np.array([11, 13], dtype=np.int64)

    def f(x: NDArray) -> tuple[str, NDArray]:
        return ("f", np.asarray(x, dtype=np.float64))

    def i(x: NDArray) -> tuple[str, NDArray]:
        return ("i", np.asarray(x, dtype=np.int64))

    def p4(name: str) -> list[Any]:
        return [f(cols[f"{name}_px"]), " ", f(cols[f"{name}_py"]), " ", f(cols[f"{name}_pz"]),
                " ", f(cols[f"{name}_E"])]  # fmt: skip

    def decay(no: int, vtx: int, pre: str, psi1_pdg: NDArray, ch: NDArray) -> list[Any]:
        ch = np.asarray(ch, dtype=np.int64)
        return [
            f"\nV {vtx} 0 [{no}] @ ", f(cols[f"{pre}decay_x"] * mm), " ",
            f(cols[f"{pre}decay_y"] * mm), " ", f(cols[f"{pre}decay_z"] * mm), " ",
            f(cols[f"{pre}decay_t"] * mm), f"\nP {-3 * vtx - 2} {vtx} ", i(psi1_pdg), " ",
            *p4(f"{pre}psi1"), f" {m1} {STATUS_FINAL}\nP {-3 * vtx - 1} {vtx} ", i(lpdg[ch]), " ",
            *p4(f"{pre}lminus"), " ", f(ml[ch]), f" {STATUS_FINAL}\nP {-3 * vtx} {vtx} ",
            i(-lpdg[ch]), " ", *p4(f"{pre}lplus"), " ", f(ml[ch]), f" {STATUS_FINAL}",
        ]  # fmt: skip

    sign = np.sign(np.asarray(cols["psi2_pdg"], dtype=np.int64))
    psi1_a = sign * st.psi1_pdgid
    partner_mass, partner_status = (m2, STATUS_DECAYED) if two else (m1, STATUS_FINAL)
    n_vtx, n_part = (4, 12) if two else (3, 9)
    parts: list[Any] = [
        "E ", i(cols["event"]), f" {n_vtx} {n_part}\nU GEV MM\nW ", f(cols["weight"]), " ",
        f(cols["weight_decay"]),
        (f"\nA 0 GenCrossSection {st.sigma_pb_per_event:.8e} 0 {n_attempted} {n_attempted}"
         f"\nA 0 chain {'psi2_psi2' if two else 'psi1_psi2'}\nA 0 channel "),
        ("s", np.asarray(cols["channel"], dtype=np.int64)), "\nA 0 detected ",
        i(cols["detected"]), "\nA 0 extrapolated ", i(cols["extrapolated"]),
        (f"\nP 1 0 {PDG_PROTON} 0 0 {pb!r} {eb!r} {M_PROTON!r} {STATUS_BEAM}"
         f"\nP 2 0 {PDG_PROTON} 0 0 0 {M_PROTON!r} {M_PROTON!r} {STATUS_BEAM}\nV -1 0 [1,2] @ "),
        f(cols["prod_x"] * mm), " ", f(cols["prod_y"] * mm), " ", f(cols["prod_z"] * mm),
        f" 0\nP 3 -1 {st.aprime_pdgid} ", f(ax), " ", f(ay), " ", f(az), " ", f(ae),
        f" {st.mass!r} {STATUS_DECAYED}\nP 4 -1 {PDG_SYSTEM} ", f(xx), " ", f(xy), " ", f(xz),
        " ", f(xe), " ", f(xm), f" {STATUS_DOC}\nV -2 0 [3] @ ", f(cols["prod_x"] * mm), " ",
        f(cols["prod_y"] * mm), " ", f(cols["prod_z"] * mm), " 0\nP 5 -2 ",
        i(cols["partner_pdg"]), " ", *p4("partner"), f" {partner_mass} {partner_status}",
        "\nP 6 -2 ", i(cols["psi2_pdg"]), " ", *p4("psi2"), f" {m2} {STATUS_DECAYED}",
        *decay(6, -3, "", psi1_a, cols["channel"]),
    ]  # fmt: skip
    if two:
        parts += decay(5, -4, "b_", -psi1_a, cols["b_channel"])
    parts.append("\n")
    names = [c.encode() for c in PSI2_CHANNELS]
    if backend == "numba":
        out = _render_numba(parts, names, n)
        if out is not None:
            return out
    elif backend != "pyarrow":
        raise GammastarError(f"hepmc_text: unknown backend {backend!r}")
    return _render_pyarrow(parts, names, n)


def _aprime_source(
    config: Any, mass: float | None, extrapolate: bool, sampler: Any
) -> dict[str, Any]:
    """The A′ production of the config at ``mass`` for the dark events and the iDM reach: the
    yields (fiducial when ``reach.extrapolation: refuse``), N_POT, the yield scale, the sampler
    (the flow; outside its range only with ``extrapolate``) and the target depth."""
    from gammastar.reach import _sampler_from_config, load_yields, resolve_yield_scale

    src = config.source or "<config>"
    yields_path = config.resolve(config.reach.yields)
    yields = load_yields(yields_path)
    if yields.extrapolation is not None and config.reach.extrapolation == "refuse":
        yields = load_yields(yields_path, fiducial=True)
    scale_y, scale_info = resolve_yield_scale(config, yields)
    n_pot = config.reach.n_pot if config.reach.n_pot is not None else config.beam.n_pot
    if not isinstance(n_pot, int | float):
        n_pot = yields.meta.get("n_pot")
    if not isinstance(n_pot, int | float) or not n_pot > 0:
        raise ConfigError(f"{src}: reach.n_pot or beam.n_pot must be a number")
    desc = "given"
    if sampler is None:
        sampler, desc = _sampler_from_config(config, yields)
    frange = mass_range(sampler)
    if mass is not None and frange is not None and not frange[0] <= mass <= frange[1]:
        if not extrapolate:
            raise InputError(
                f"--mass {mass:g} GeV is outside the flow's mass range [{frange[0]:g}, "
                f"{frange[1]:g}] GeV; --extrapolate uses the analytic model there (labelled)"
            )
        from gammastar.acceptance import ParametricSampler

        sampler = _Labelled(ParametricSampler())
        desc = "parametric (physics.md §3.2 defaults), outside the flow's range: extrapolated"
    tl = config.reach.target_interaction_lengths
    if tl is None or tl == "data":
        tl = config.beam.interaction_lengths
    return {
        "yields_path": yields_path, "yields": yields, "scale_y": scale_y,
        "scale_info": scale_info, "n_pot": float(n_pot), "sampler": sampler, "desc": desc,
        "lengths": math.inf if tl == "dump" else float(tl),
    }  # fmt: skip


def dark_settings(
    config: Any, mass: float, eps: float, src: Mapping[str, Any]
) -> DarkEventSettings:
    """:class:`DarkEventSettings` of the config's ``idm`` section at (m_A′, ε)."""
    from gammastar.acceptance import Geometry
    from gammastar.physics.darksector import aprime_branching_ratios, psi2_ctau, psi2_width

    idm = config.idm
    where = config.source or "<config>"
    if idm is None:
        raise ConfigError(f"{where}: no 'idm' section (docs/darksector.md)")
    model = idm.dark_model(float(mass))
    y, _ = src["yields"].at(mass)
    if not np.isfinite(y):
        lo, hi = src["yields"].mass_range
        raise InputError(
            f"--mass {mass:g}: no A' yield there ({src['yields_path']} covers {lo:g}-{hi:g} GeV)"
        )
    br = aprime_branching_ratios(model, eps)
    br_chain = {c: float(br[c]) for c in DARK_CHAINS if c in br and float(br[c]) > 0}
    tot = float(psi2_width(model, eps, "total"))
    ml_ok = {c: float(psi2_width(model, eps, c)) / tot for c in idm.channels}
    br_psi2 = {c: v for c, v in ml_ok.items() if v > 0}
    if not br_psi2:
        raise InputError(
            f"--mass {mass:g}: psi2 -> psi1 ll is closed for idm.channels {list(idm.channels)} "
            f"(m2 - m1 = {float(model.m2 - model.m1):.4g} GeV)"
        )
    ev = config.events
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
        beam_energy=float(config.beam.energy),
        beam_spot=(float(ev.beam_spot_sigma[0]), float(ev.beam_spot_sigma[1])),
        target_lambda=float(ev.target_interaction_length),
        target_lengths=src["lengths"],
        aprime_pdgid=int(ev.aprime_pdgid),
        psi1_pdgid=int(idm.psi1_pdgid),
        psi2_pdgid=int(idm.psi2_pdgid),
    )


def run_dark_events(
    config: Any,
    *,
    mass: float,
    eps: float,
    n: int,
    output: str | Path,
    table: str | Path | None = None,
    extrapolate: bool = False,
    seed: int | None = None,
    chunk: int = 100_000,
    force: bool = False,
    sampler: Any = None,
) -> dict[str, Any]:
    """``gammastar events --dark``: semi-visible A′ → ψψ, ψ₂ → ψ₁ℓ⁻ℓ⁺ events of the config's
    ``idm`` section (iDM or i2DM) at A′ mass ``mass`` (m₁ = mass / ``idm.mass_ratio``) and ε.

    Weights sum to the expected detected events (:func:`gammastar.eventgen.generate_dark`);
    the meta carries the expectation from the iDM acceptance
    (:func:`gammastar.acceptance.draw_dark`, the same machinery, the decay integrated exactly)
    for the ψ₁ψ₂ chain.

    Raises:
        GammastarError: bad arguments (one line naming the option or key), outputs that exist.
    """
    from gammastar.acceptance import draw_dark
    from gammastar.artifacts import check_writable, make_meta
    from gammastar.physics.target import interaction_probability

    if not (isinstance(n, int) and n > 0):
        raise GammastarError(f"-n: the number of events must be a positive integer, not {n}")
    if not (math.isfinite(eps) and eps > 0):
        raise GammastarError(f"--eps: the kinetic mixing must be > 0, not {eps:g}")
    if not (math.isfinite(mass) and mass > 0):
        raise GammastarError(f"--mass: the A' mass must be > 0 GeV, not {mass:g}")
    if chunk <= 0:
        raise GammastarError(f"--chunk must be positive, not {chunk}")
    outputs = [Path(output)] + ([Path(table)] if table is not None else [])
    for p in outputs:
        output_kind(p)
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise GammastarError("--table: the same file as the output")
    for p in outputs:
        check_writable(p, force)
    where = config.source or "<config>"
    if config.idm is None:
        raise ConfigError(f"{where}: no 'idm' section: --dark needs it (docs/darksector.md)")
    for key in ("beam_spot_sigma", "target_interaction_length"):
        if getattr(config.events, key) is None:
            raise ConfigError(f"{where}: events.{key}: not given (docs/events.md)")
    src = _aprime_source(config, float(mass), extrapolate, sampler)
    st = dark_settings(config, float(mass), float(eps), src)
    seed = config.seed if seed is None else int(seed)
    t0 = time.perf_counter()
    # expected detected events of the psi1 psi2 chain, decay integrated exactly (the reach's)
    n_exp_12 = None
    if "psi1 psi2" in st.br_chain:
        n_expect = max(config.reach.samples, EXPECTATION_SAMPLES // 5)
        acc = 0.0
        for c, br in st.br_psi2.items():
            smp = draw_dark(src["sampler"], st.model, st.geometry, n_expect, final_state=c,
                              min_opening_angle=st.min_opening_angle, seed=seed)  # fmt: skip
            acc += br * float(smp.acceptance(st.ctau))
        n_exp_12 = st.scale * st.br_chain["psi1 psi2"] * acc
    lengths = src["lengths"]
    p_int = float(interaction_probability(lengths if math.isfinite(lengths) else "dump"))
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
        units={"hepmc": "GeV, mm (c t in mm)", "table": TABLE_UNITS},
        n_pot=src["n_pot"],
        yield_scale=src["scale_y"],
        **src["scale_info"],
        aprime_produced=st.scale,
        n_sig_expected_psi1_psi2=n_exp_12,
        beam_spot_sigma_m=list(st.beam_spot),
        target_interaction_length_m=st.target_lambda,
        geometry=st.geometry.__dict__,
    )
    chunks = list(generate_dark_chunks(src["sampler"], st, n, seed=seed, chunk=chunk))
    total = float(sum(c["weight"].sum() for c in chunks))
    st.sigma_pb_per_event = config.beam.sigma_inel_mb * 1e9 * total / (src["n_pot"] * p_int)
    meta["cross_section_pb"] = st.sigma_pb_per_event
    stats = write_events(iter(chunks), outputs, st, meta, force=force, n_attempted=n,
                         text=dark_hepmc_text)  # fmt: skip
    stats["seconds"] = time.perf_counter() - t0
    stats["outputs"] = [str(p) for p in outputs]
    return {**stats, "meta": meta}


class _Labelled:
    """A sampler whose every sample is labelled extrapolated (outside the data's region)."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        out = dict(self.base.sample(mass, n, seed=seed))
        out["extrapolated"] = np.ones(n, dtype=bool)
        return out


def _chunks_forever(
    sampler: Any, st: EventSettings, chunk: int, seed: int | None, max_chunks: int = 10_000
) -> Iterator[dict[str, NDArray]]:
    ss = np.random.SeedSequence(seed)
    for _ in range(max_chunks):
        (kid,) = ss.spawn(1)
        yield generate(sampler, st, chunk, seed=int(kid.generate_state(1)[0]))


# ``gammastar.events(config, ...)`` runs :func:`run_events` (gammastar._api).
_make_callable(__name__, "run_events")
