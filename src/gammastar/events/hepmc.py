"""HepMC3 Asciiv3 text of the signal events (docs/howto/signal-events.md "HepMC3 layout"): the header and
footer, one record writer per event kind (:func:`hepmc_text`: A′ → a b; :func:`mcp_hepmc_text`:
γ* → χχ̄; :func:`dark_hepmc_text`: A′ → ψψ chains), and the shared pieces they are built from
(the beam + target → mother + remnant production vertex, vertex positions, the event head).

A record is a *program* of parts, literal text or a column (``("f", floats)``, ``("i", ints)``,
``("s", codes)`` into a name table), rendered column-wise with no per-event Python: by the
compiled writer :mod:`gammastar.events._hepmc_ascii` (17 correctly rounded significant digits) or by
pyarrow's string kernels (shortest round-trip decimals; ``backend="pyarrow"`` and the fallback
for values beyond ±1e280 or non-finite ones).

References:
    HepMC3: A. Buckley et al., Comput. Phys. Commun. 260 (2021) 107310 (Asciiv3, status codes
    1, 2, 4; units).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar._version import __version__
from gammastar.errors import GammastarError
from gammastar.events import _hepmc_ascii as ha
from gammastar.physics.constants import M_PROTON
from gammastar.physics.darksector import FINAL_STATES
from gammastar.source.dark_decays import PSI2_CHANNELS
from gammastar.source.dark_events import DarkEventSettings
from gammastar.source.decays import DECAYS
from gammastar.source.eventgen import (
    PDG_PROTON,
    PDG_SYSTEM,
    STATUS_BEAM,
    STATUS_DECAYED,
    STATUS_DOC,
    STATUS_FINAL,
    EventSettings,
)

__all__ = [
    "HEPMC_FOOTER",
    "dark_hepmc_text",
    "hepmc_header",
    "hepmc_text",
    "mcp_hepmc_text",
    "render",
]

MM = 1000.0  # m → mm (HepMC3 lengths)
HEPMC_FOOTER = "HepMC::Asciiv3-END_EVENT_LISTING\n"


def hepmc_header(meta: Mapping[str, Any], weights: str = "weight\\|weight_decay") -> str:
    """The HepMC3 Asciiv3 header: weight names, tool, run attribute ``gammastar_meta``.

    Example:
        >>> hepmc_header({"seed": 1}).splitlines()[-1]
        'A gammastar_meta {"seed":1}'
    """

    js = json.dumps(meta, separators=(",", ":"), default=str).replace("\n", " ")
    return (
        "HepMC::Version 3.02.05\nHepMC::Asciiv3-START_EVENT_LISTING\n"
        f"W {weights}\n"
        f"T gammastar\\|{__version__}\\|signal events\n"
        f"A gammastar_meta {js}\n"
    )


# --------------------------------------------------------------------------- record parts
def _f(x: Any) -> tuple[str, NDArray]:
    return ("f", np.asarray(x, dtype=np.float64))


def _i(x: Any) -> tuple[str, NDArray]:
    return ("i", np.asarray(x, dtype=np.int64))


def _s(x: Any) -> tuple[str, NDArray]:
    return ("s", np.asarray(x, dtype=np.int64))


def _p4(cols: Mapping[str, NDArray], name: str) -> list[Any]:
    """``px py pz E`` of the columns ``<name>_px`` ... ``<name>_E``."""
    return [_f(cols[f"{name}_px"]), " ", _f(cols[f"{name}_py"]), " ", _f(cols[f"{name}_pz"]),
            " ", _f(cols[f"{name}_E"])]  # fmt: skip


def _position(cols: Mapping[str, NDArray], pre: str) -> list[Any]:
    """``x y z t`` (mm) of the columns ``<pre>x``, ``<pre>y``, ``<pre>z`` (m) and ``<pre>t``
    (c t, m), t = 0 where there is no such column."""
    out = [_f(cols[f"{pre}x"] * MM), " ", _f(cols[f"{pre}y"] * MM), " ", _f(cols[f"{pre}z"] * MM)]
    return out + ([" ", _f(cols[f"{pre}t"] * MM)] if f"{pre}t" in cols else [" 0"])


def _head(
    cols: Mapping[str, NDArray],
    counts: tuple[int, int],
    weights: Sequence[str],
    cross_section_pb: float,
    n_attempted: int,
    attributes: Sequence[tuple[str, Any]],
) -> list[Any]:
    """The event line (``counts`` = vertices, particles), units, weights, GenCrossSection (pb,
    ``n_attempted`` trials) and the attributes (name, literal or column part), in order."""
    parts: list[Any] = ["E ", _i(cols["event"]), f" {counts[0]} {counts[1]}\nU GEV MM\nW "]
    for k, name in enumerate(weights):
        parts += [" ", _f(cols[name])] if k else [_f(cols[name])]
    parts.append(f"\nA 0 GenCrossSection {cross_section_pb:.8e} 0 {n_attempted} {n_attempted}")
    for name, value in attributes:
        parts += [f"\nA 0 {name} ", value]
    return parts


def _production(
    cols: Mapping[str, NDArray], beam_energy: float, pdg: int, name: str, mass: Any
) -> list[Any]:
    """Vertex −1 at ``prod_x, prod_y, prod_z`` (t = 0): beam proton (energy ``beam_energy``,
    +z) + target nucleon at rest (status 4) → particle 3 (``pdg``, four-momentum columns
    ``name``, status 2; ``mass`` a literal or a column) + particle 4, the rest X of the collision
    (PDG 90, status 3: four-momentum balance, signed mass √|m²|)."""
    eb = beam_energy
    pb = math.sqrt(max(eb**2 - M_PROTON**2, 0.0))
    ax, ay, az, ae = (cols[f"{name}_{c}"] for c in ("px", "py", "pz", "E"))
    xx, xy, xz, xe = -ax, -ay, pb - az, eb + M_PROTON - ae
    xm2 = xe**2 - xx**2 - xy**2 - xz**2
    xm = np.sign(xm2) * np.sqrt(np.abs(xm2))
    mass_part = [f" {mass}"] if isinstance(mass, str) else [" ", _f(mass)]
    return [
        f"\nP 1 0 {PDG_PROTON} 0 0 {pb!r} {eb!r} {M_PROTON!r} {STATUS_BEAM}",
        f"\nP 2 0 {PDG_PROTON} 0 0 0 {M_PROTON!r} {M_PROTON!r} {STATUS_BEAM}\nV -1 0 [1,2] @ ",
        *_position(cols, "prod_"), f"\nP 3 -1 {pdg} ", *_p4(cols, name), *mass_part,
        f" {STATUS_DECAYED}\nP 4 -1 {PDG_SYSTEM} ", _f(xx), " ", _f(xy), " ", _f(xz), " ",
        _f(xe), " ", _f(xm), f" {STATUS_DOC}",
    ]  # fmt: skip


def render(parts: list[Any], names: list[bytes], n: int, backend: str = "numba") -> bytes:
    """The text of ``n`` records of the program ``parts`` (``names``: the table of the ``"s"``
    columns) with the compiled writer (falling back to pyarrow where it reports values it does
    not write) or with pyarrow (``backend="pyarrow"``).

    Raises:
        GammastarError: an unknown backend.

    Example:
        >>> render(["E ", ("i", np.array([7, 8])), " ", ("f", np.array([0.5, 2.0])), "\\n"], [], 2,
        ...        backend="pyarrow")
        b'E 7 0.5\\nE 8 2\\n'
    """
    if backend == "numba":
        out = _render_numba(parts, names, n)
        if out is not None:
            return out
    elif backend != "pyarrow":
        raise GammastarError(f"hepmc_text: unknown backend {backend!r}")
    return _render_pyarrow(parts, names, n)


def _render_numba(parts: list[Any], names: list[bytes], n: int) -> bytes | None:

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


# --------------------------------------------------------------------------- the writers
def hepmc_text(
    cols: Mapping[str, NDArray], st: EventSettings, n_attempted: int, *, backend: str = "numba"
) -> bytes:
    """HepMC3 Asciiv3 text of a chunk of A′ → a b events (module docstring: backends). Units
    GeV and mm (lengths ×1000); round-trips through ``pyhepmc.io.ReaderAscii``
    (tests/test_events.py).

    Per event: vertex −1 (production) beam proton (status 4) + target nucleon at rest
    (status 4) → A′ (status 2) + X (PDG 90, status 3, the rest of the collision: four-momentum
    balance); vertex −2 (decay) A′ → daughter 1 + daughter 2 (status 1). Weights ``weight``,
    ``weight_decay``; attributes GenCrossSection (pb), ``channel``, ``detected``,
    ``extrapolated``.
    """
    n = cols["weight"].size
    if n == 0:
        return b""
    parts: list[Any] = [
        *_head(cols, (2, 6), ("weight", "weight_decay"), st.sigma_pb_per_event, n_attempted,
               (("channel", _s(cols["channel"])), ("detected", _i(cols["detected"])),
                ("extrapolated", _i(cols["extrapolated"])))),
        *_production(cols, st.beam_energy, st.aprime_pdgid, "aprime", repr(st.mass)),
        "\nV -2 0 [3] @ ", *_position(cols, "decay_"),
        "\nP 5 -2 ", _i(cols["pdg1"]), " ", *_p4(cols, "d1"), " ", _f(cols["m1"]),
        f" {STATUS_FINAL}\nP 6 -2 ", _i(cols["pdg2"]), " ", *_p4(cols, "d2"), " ",
        _f(cols["m2"]), f" {STATUS_FINAL}\n",
    ]  # fmt: skip
    return render(parts, [name.encode() for name in DECAYS], n, backend)


hepmc_text.weight_names = "weight\\|weight_decay"  # type: ignore[attr-defined]


def mcp_hepmc_text(
    cols: Mapping[str, NDArray], st: Any, n_attempted: int, *, backend: str = "numba"
) -> bytes:
    """HepMC3 records of χχ̄ events (``st`` a :class:`gammastar.source.mcp.McpSettings`): vertex
    −1 beam proton + nucleon (status 4) → γ* (PDG 22, status 2, its mass) + X (PDG 90,
    status 3); vertex −2 at the same point (prompt decay) γ* → χ (``events.mcp_pdgid``) + χ̄
    (its negative), status 1. Weight ``weight``; attributes GenCrossSection (pb),
    ``extrapolated``. Units GeV, mm."""
    n = cols["weight"].size
    if n == 0:
        return b""
    mc = repr(float(st.m_chi))
    parts: list[Any] = [
        *_head(cols, (2, 6), ("weight",), st.sigma_pb_per_event, n_attempted,
               (("extrapolated", _i(cols["extrapolated"])),)),
        *_production(cols, st.beam_energy, 22, "gstar", cols["m_gstar"]),
        "\nV -2 0 [3] @ ", *_position(cols, "prod_"),
        f"\nP 5 -2 {st.pdgid} ", *_p4(cols, "chi1"), f" {mc} {STATUS_FINAL}\nP 6 -2 {-st.pdgid} ",
        *_p4(cols, "chi2"), f" {mc} {STATUS_FINAL}\n",
    ]  # fmt: skip
    return render(parts, [], n, backend)


mcp_hepmc_text.weight_names = "weight"  # type: ignore[attr-defined]


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
    """The records of one chain (``two``: ψ₂ψ̄₂, else ψ₁ψ₂) of :func:`dark_hepmc_text`."""

    n = cols["weight"].size
    m1, m2 = repr(float(st.model.m1)), repr(float(st.model.m2))
    ml = np.array([FINAL_STATES[c] for c in PSI2_CHANNELS])
    lpdg = np.array([11, 13], dtype=np.int64)

    def decay(no: int, vtx: int, pre: str, psi1_pdg: NDArray, ch: NDArray) -> list[Any]:
        ch = np.asarray(ch, dtype=np.int64)
        return [
            f"\nV {vtx} 0 [{no}] @ ", *_position(cols, f"{pre}decay_"),
            f"\nP {-3 * vtx - 2} {vtx} ", _i(psi1_pdg), " ", *_p4(cols, f"{pre}psi1"),
            f" {m1} {STATUS_FINAL}\nP {-3 * vtx - 1} {vtx} ", _i(lpdg[ch]), " ",
            *_p4(cols, f"{pre}lminus"), " ", _f(ml[ch]), f" {STATUS_FINAL}\nP {-3 * vtx} {vtx} ",
            _i(-lpdg[ch]), " ", *_p4(cols, f"{pre}lplus"), " ", _f(ml[ch]), f" {STATUS_FINAL}",
        ]  # fmt: skip

    sign = np.sign(np.asarray(cols["psi2_pdg"], dtype=np.int64))
    psi1_a = sign * st.psi1_pdgid
    partner_mass, partner_status = (m2, STATUS_DECAYED) if two else (m1, STATUS_FINAL)
    parts: list[Any] = [
        *_head(cols, (4, 12) if two else (3, 9), ("weight", "weight_decay"),
               st.sigma_pb_per_event, n_attempted,
               (("chain", "psi2_psi2" if two else "psi1_psi2"), ("channel", _s(cols["channel"])),
                ("detected", _i(cols["detected"])), ("extrapolated", _i(cols["extrapolated"])))),
        *_production(cols, st.beam_energy, st.aprime_pdgid, "aprime", repr(st.mass)),
        "\nV -2 0 [3] @ ", *_position(cols, "prod_"), "\nP 5 -2 ", _i(cols["partner_pdg"]), " ",
        *_p4(cols, "partner"), f" {partner_mass} {partner_status}",
        "\nP 6 -2 ", _i(cols["psi2_pdg"]), " ", *_p4(cols, "psi2"), f" {m2} {STATUS_DECAYED}",
        *decay(6, -3, "", psi1_a, cols["channel"]),
    ]  # fmt: skip
    if two:
        parts += decay(5, -4, "b_", -psi1_a, cols["b_channel"])
    parts.append("\n")
    return render(parts, [c.encode() for c in PSI2_CHANNELS], n, backend)
