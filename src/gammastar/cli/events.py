"""`gammastar events`: signal events (HepMC3, parquet or ROOT) for detector simulation."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gammastar.cli.options import (
    ConfigArg,
    ForceOpt,
    OutputOpt,
    SeedOpt,
    choices,
    given,
    load,
)

CHANNELS = ("ee", "mumu", "pipi", "KK", "KSKL")
"""The decays ``--channels`` takes: the keys of :data:`gammastar.source.decays.DECAYS`,
spelled out for the help text (the registry needs numpy; tests/test_documented_commands.py
keeps the two equal). The command checks each given name against the registry."""

if TYPE_CHECKING:  # a class made at run time: mypy reads it as any StrEnum
    Decay = StrEnum
else:
    Decay = choices("Decay", ("data", "isotropic", "transverse"))
"""The γ* polarisation of ``--decay`` (:func:`gammastar.source.setup.polarisation`)."""


# the options of `gammastar events` whose help needs more than a line
_MchiOpt = Annotated[
    float | None,
    typer.Option(
        "--mchi", help="Millicharged-particle mass in GeV: γ* → χχ̄ pairs instead of A′ decays."
    ),
]
_DarkOpt = Annotated[
    bool,
    typer.Option(
        "--dark",
        help="Semi-visible A′ → ψψ, ψ₂ → ψ₁ℓ⁺ℓ⁻ chains of the config's idm section "
        "(iDM or i2DM) at --mass (the A′ mass) and --eps.",
    ),
]
_ChannelsOpt = Annotated[
    str | None,
    typer.Option(
        "--channels",
        help=f"A′ decays to write, comma-separated, of: {', '.join(CHANNELS)} (default: "
        "those of reach.channels open at --mass).",
    ),
]
_DATA = Decay("data")
_DecayOpt = Annotated[
    Decay,
    typer.Option(
        "--decay",
        help="γ* polarisation of the decay angles: data (the λ_θ(m) in yields.json, else the "
        "config's), isotropic or transverse.",
    ),
]


def events_command(
    config: ConfigArg,
    mass: Annotated[
        float | None,
        typer.Option("--mass", help="A′ mass in GeV (required for A′ and --dark events)."),
    ] = None,
    eps: Annotated[
        float | None,
        typer.Option("--eps", help="Kinetic mixing ε, > 0 (required for A′ and --dark events)."),
    ] = None,
    mchi: _MchiOpt = None,
    charge: Annotated[float, typer.Option("--charge", help="Millicharge Q/e (with --mchi).")] = 1.0,
    dark: _DarkOpt = False,
    n: Annotated[
        int | None,
        typer.Option(
            "-n",
            help="Number of events (required): drawn if weighted, written if --unweighted.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="Output file (required): .hepmc or .hepmc3 (HepMC3), .parquet, .root.",
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option("--table", help="Also write the columnar event table (.parquet or .root)."),
    ] = None,
    channels: _ChannelsOpt = None,
    decay: _DecayOpt = _DATA,
    unweighted: Annotated[
        bool, typer.Option("--unweighted", help="Accept-reject to unit-weight events.")
    ] = False,
    extrapolate: Annotated[
        bool,
        typer.Option(
            "--extrapolate", help="Allow a mass outside the flow's range (analytic model)."
        ),
    ] = False,
    seed: SeedOpt = None,
    chunk: Annotated[int, typer.Option("--chunk", help="Events per chunk (memory).")] = 100_000,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Signal events for a detector simulation: A′ decay chains, χχ̄ pairs or dark-sector chains.

    A′ → ℓℓ, ππ, KK at (--mass, --eps): the production vertex, the A′ from the flow, the decay
    vertex forced into the decay volume (weight: the decay probability), the daughters. With
    --mchi: γ* → χχ̄ pairs of millicharged particles (paper Eq. 8). With --dark: the
    semi-visible A′ → ψ₁ψ₂ (ψ₂ψ₂), ψ₂ → ψ₁ℓ⁺ℓ⁻ chains of the config's idm section. Needs a run
    with yields and a trained flow (docs/howto/signal-events.md).
    """
    from gammastar.errors import GammastarError
    from gammastar.events.stage import EventRequest

    if n is None or out is None:
        raise GammastarError("give -n (number of events) and -o (output file)")
    decay = Decay(decay)
    kind = _kind(dark=dark, mchi=mchi, mass=mass, eps=eps, unweighted=unweighted,
                 channels=channels, decay=decay.value)  # fmt: skip
    cfg = load(config, output)
    req = EventRequest(n=n, output=out, table=table, seed=seed, chunk=chunk, force=force,
                       extrapolate=extrapolate)  # fmt: skip
    if kind == "dark":
        from gammastar.events.stage import run_dark_events

        result = run_dark_events(cfg, req, mass=given(mass, "--mass"), eps=given(eps, "--eps"))
    elif kind == "mcp":
        from gammastar.events.stage import run_mcp_events

        result = run_mcp_events(
            cfg, req, m_chi=given(mchi, "--mchi"), charge=charge, decay=decay.value
        )
    else:
        from gammastar.events.stage import run_events

        chans = None if channels is None else _channels(channels)
        result = run_events(
            cfg,
            req,
            mass=given(mass, "--mass"),
            eps=given(eps, "--eps"),
            channels=chans,
            decay=decay.value,
            unweighted=unweighted,
        )
    typer.echo(_summary(kind, result.document))


def _channels(text: str) -> tuple[str, ...]:
    """The decays of ``--channels`` (comma-separated), each checked against the registry.

    Raises:
        GammastarError: a name that is not a modelled decay, or none given.
    """
    from gammastar.errors import GammastarError
    from gammastar.source.decays import DECAYS

    chans = tuple(c.strip() for c in text.split(",") if c.strip())
    for c in chans:
        if c not in DECAYS:
            raise GammastarError(f"--channels: {c!r} is not one of {', '.join(DECAYS)}")
    if not chans:
        raise GammastarError(f"--channels: give one or more of {', '.join(DECAYS)}")
    return chans


def _kind(
    *,
    dark: bool,
    mchi: float | None,
    mass: float | None,
    eps: float | None,
    unweighted: bool,
    channels: str | None,
    decay: str,
) -> str:
    """Which events the options ask for: ``dark`` (A′ → ψψ chains), ``mcp`` (χχ̄ pairs) or
    ``aprime`` (A′ decay chains).

    Raises:
        GammastarError: options of another kind, or the kind's own missing.
    """
    from gammastar.errors import GammastarError

    if dark:
        if mchi is not None or unweighted or channels is not None or decay != "data":
            raise GammastarError(
                "--dark: not with --mchi, --channels (use idm.channels), --decay or --unweighted"
            )
        if mass is None or eps is None:
            raise GammastarError("--dark: give --mass (the A' mass) and --eps")
        return "dark"
    if mchi is not None:
        if mass is not None or eps is not None or unweighted or channels is not None:
            raise GammastarError("--mchi: not with --mass, --eps, --channels or --unweighted")
        return "mcp"
    if mass is None or eps is None:
        raise GammastarError("give --mass and --eps (A' events) or --mchi (millicharged pairs)")
    return "aprime"


def _summary(kind: str, doc: Any) -> str:
    """The one line printed after the events are written (``doc``: the stage's document)."""
    wrote = ", ".join(doc["outputs"])
    if kind == "dark":
        return (
            f"events: {doc['events']} {doc['meta']['model']} events, sum of weights "
            f"{doc['sum_weight']:.6g} (expected detected events); wrote {wrote}"
        )
    if kind == "mcp":
        return (
            f"events: {doc['events']} chi chibar events, sum of weights {doc['sum_weight']:.6g} "
            f"(expected pairs); wrote {wrote}"
        )
    return (
        f"events: {doc['events']} events, sum of weights {doc['sum_weight']:.6g} "
        f"(expected N_sig {doc['meta']['n_sig_expected']:.6g}); wrote {wrote}"
    )
