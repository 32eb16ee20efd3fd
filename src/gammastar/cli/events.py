"""`gammastar events`: signal events (HepMC3, parquet or ROOT) for detector simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gammastar.cli import ConfigArg, ForceOpt, app, load


@app.command("events")
def events_command(
    config: ConfigArg,
    mass: Annotated[float, typer.Option("--mass", help="A' mass in GeV.")],
    eps: Annotated[float, typer.Option("--eps", help="Kinetic mixing epsilon (> 0).")],
    n: Annotated[int, typer.Option("-n", help="Events (weighted: drawn; unweighted: written).")],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Output: .hepmc/.hepmc3 (HepMC3), .parquet, .root.")
    ],
    table: Annotated[
        Path | None,
        typer.Option("--table", help="Also write the columnar event table (.parquet or .root)."),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(
            "--channels", help="Comma-separated: ee, mumu, pipi, KK, KSKL (default reach.channels)."
        ),
    ] = None,
    decay: Annotated[
        str,
        typer.Option(
            "--decay", help="Decay angles: data (measured lambda_theta), isotropic, transverse."
        ),
    ] = "data",
    unweighted: Annotated[
        bool, typer.Option("--unweighted", help="Accept-reject to unit-weight events.")
    ] = False,
    extrapolate: Annotated[
        bool,
        typer.Option(
            "--extrapolate", help="Allow a mass outside the flow's range (analytic model)."
        ),
    ] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: config seed).")
    ] = None,
    chunk: Annotated[int, typer.Option("--chunk", help="Events per chunk (memory).")] = 100_000,
    force: ForceOpt = False,
) -> None:
    """A' -> ll, pipi, KK decay chains at (m, eps): production vertex, A' from the flow, decay
    vertex forced into the decay volume (weight = decay probability), daughters."""
    from gammastar.events import run_events

    cfg = load(config, None)
    chans = None if channels is None else tuple(c.strip() for c in channels.split(",") if c.strip())
    res = run_events(
        cfg,
        mass=mass,
        eps=eps,
        n=n,
        output=out,
        table=table,
        channels=chans,
        decay=decay,
        unweighted=unweighted,
        extrapolate=extrapolate,
        seed=seed,
        chunk=chunk,
        force=force,
    )
    typer.echo(
        f"events: {res['events']} events, sum of weights {res['sum_weight']:.6g} "
        f"(expected N_sig {res['meta']['n_sig_expected']:.6g}); wrote {', '.join(res['outputs'])}"
    )
