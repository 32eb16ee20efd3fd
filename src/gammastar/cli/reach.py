"""`gammastar reach` and `gammastar acceptance`: LLP acceptance and the CLs reach."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gammastar.cli.options import (
    ConfigArg,
    ForceOpt,
    OutputOpt,
    WaitOpt,
    choices,
    document,
    load,
)

METHODS = ("auto", "exact", "asymptotic", "toys")
"""The values of ``--method``: ``auto`` and the statistics methods of
:data:`gammastar.reach.stats.METHODS`, in its order. Spelled out here, not imported, so that
the command line starts without numpy and pyhf; tests/test_documented_commands.py keeps the
two equal."""

if TYPE_CHECKING:  # a class made at run time: mypy reads it as any StrEnum
    Method = StrEnum
else:
    Method = choices("Method", METHODS)

PRODUCTIONS = ("data_driven", "standard_recipe")
"""The values of ``--production``: the keys of :data:`gammastar.source.modes.PRODUCTIONS`
(spelled out here for a light command line; tests/test_recipe_source.py keeps them equal)."""

if TYPE_CHECKING:
    ProductionChoice = StrEnum
else:
    ProductionChoice = choices("ProductionChoice", PRODUCTIONS)


def _workers(value: str) -> int | str:
    """``--workers``: a number of processes (≥ 1) or ``auto`` (``reach.workers``'s values)."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise typer.BadParameter(f"a number of processes (integer >= 1) or auto; got {value!r}")
    return n


def reach_command(
    config: ConfigArg,
    method: Annotated[
        Method | None,
        typer.Option(
            "--method",
            help="Statistics method: exact (hybrid CLs, enumerated), asymptotic or toys (pyhf), "
            "or auto (the first of these that applies); default: the config's reach.method.",
            show_default=False,
        ),
    ] = None,
    production: Annotated[
        ProductionChoice | None,
        typer.Option(
            "--production",
            help="Where the A′ come from: data_driven (the data) or standard_recipe (meson "
            "decays, mixing and bremsstrahlung with a mock's meson spectra, written to the run "
            "directory's standard_recipe/); default: the config's reach.production.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            parser=_workers,
            metavar="N|auto",
            help="Processes computing the mass points, this one among them (1: this one "
            "alone; auto: as many as repay their start, within the usable CPUs); default: the "
            "config's reach.workers. The results do not depend on it.",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Expected (±1σ, ±2σ) and observed CLs exclusion in (m_A′, ε).

    Writes reach.json, workspaces/*.json (pyhf; `pyhf cls FILE --test-poi S` gives CLs for S
    signal events), acceptance.npz and figures/reach.png in the run directory (with
    `--production standard_recipe` in its standard_recipe/ folder).
    """
    from gammastar.cli.options import lock_run

    # a bad config and the reach's missing inputs: one refusal before the stage's imports
    cfg = load(config, output, reach=True)
    from gammastar.reach.stage import check_config, run_reach

    check_config(cfg)  # a missing statistics input: one line, before the run directory exists
    lock_run(cfg.output_dir, wait=wait)
    update: dict[str, object] = {} if method is None else {"method": method.value}
    if workers is not None:
        update["workers"] = workers
    if production is not None:
        update["production"] = production.value
    if update:
        cfg = cfg.model_copy(update={"reach": cfg.reach.model_copy(update=update)})
    result = run_reach(cfg, force=force)
    res = document(result)
    n_excl = sum(v is not None for v in res["expected"]["eps_low"])
    typer.echo(
        f"reach: {n_excl}/{len(res['expected']['mass'])} masses excluded at "
        f"{res['cl']:.0%} CL (expected, {res['meta']['method']}); wrote {result.path}"
    )


def acceptance_command(
    config: ConfigArg,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="Second flow (e.g. trained without background): Fig. 9/10 analogues.",
        ),
    ] = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Acceptance vs cτ at three masses (and with --compare the relative-difference map).

    Writes acceptance_ctau.npz, figures/acceptance_ctau.png (+ figures/acceptance_reldiff.png).
    """
    cfg = load(config, output, lock=True, wait=wait)  # a bad config: refused before the imports
    from gammastar.reach.acceptance.stage import run_acceptance

    path = run_acceptance(cfg, compare=compare, force=force)
    typer.echo(f"acceptance: wrote {path}")
