"""`gammastar generate`: the NA60-like mock ntuple (docs/reference/mock.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gammastar.cli.options import ConfigArg, ForceOpt, OutputOpt, SeedOpt, WaitOpt, load, lock_run


def generate_command(
    config: ConfigArg,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Output ROOT file (default: RUN_DIR/mock.root)."),
    ] = None,
    events: Annotated[
        int | None,
        typer.Option("--events", help="Generated sources (default: the config's mock.events)."),
    ] = None,
    seed: SeedOpt = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots", help="Also draw the OS/SS mass and pT spectra into this directory."
        ),
    ] = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Generate NA60-like mock dimuon data (cocktail + combinatorial, detector effects)."""
    from gammastar.errors import GammastarError

    if events is not None and events <= 0:
        raise GammastarError(f"--events must be a positive integer, got {events}")
    if seed is not None and seed < 0:
        raise GammastarError(f"--seed must be a non-negative integer, got {seed}")
    cfg = load(config, output)  # a bad config: refused before the generator's imports
    from gammastar.core import rundir
    from gammastar.mock.generate import generate_file

    path = out if out is not None else cfg.output_dir / rundir.MOCK
    if path.absolute().is_relative_to(cfg.output_dir.absolute()):  # a file of the run directory
        lock_run(cfg.output_dir, wait=wait)
    res = generate_file(cfg, path, events=events, seed=seed, force=force)
    total = sum(res.n_generated.values())
    typer.echo(
        f"gammastar: wrote {res.path}: {res.n_events_written} events recorded of {total} "
        f"generated sources (N_POT = {res.n_pot:.4g}, seed {res.meta['seed']}, "
        f"{res.seconds:.1f} s)"
    )
    if plots is not None:
        from gammastar.mock.plots import plot_file

        for p in plot_file(res.path, plots, force=True):
            typer.echo(f"gammastar: wrote {p}")
