"""`gammastar yields`: data-driven A′ and χχ̄ yields per POT (paper Eqs. 6, 8)."""

from __future__ import annotations

from typing import Annotated

import typer

from gammastar.cli.options import ConfigArg, ForceOpt, OutputOpt, WaitOpt, document, load


def yields_command(
    config: ConfigArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Draw the Fig. 2/3 analogues.")
    ] = True,
) -> None:
    """A′ yield per POT per ε² and χχ̄ yield per POT per Q² from the unfolded spectrum.

    Reads histograms.root (and pairs.parquet) in the run directory; writes yields.json,
    yields_aprime.csv, yields_mcp.csv (and figures/yields_aprime.png, figures/yields_mcp.png).
    """
    import logging

    cfg = load(config, output, lock=True, wait=wait)  # a bad config: refused before the stage
    from gammastar.yields.stage import compute_yields

    logging.basicConfig(level=logging.WARNING, format="gammastar: %(levelname)s: %(message)s")
    doc = document(compute_yields(cfg, force=force, plots=plots))
    meta = doc["meta"]
    typer.echo(
        f"yields: {len(doc['aprime']['mass'])} A′ mass bins, {len(doc['mcp']['mass'])} χ masses; "
        f"N_POT = {meta['n_pot']:.4g} ({meta['n_pot_source'].split(':')[0]}) → {cfg.output_dir}"
    )
