"""`gammastar export`: a run's reach and A′ yields as a HEPData submission, its likelihoods as
pyhf and HS3 JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gammastar.cli.options import ForceOpt


def export_command(
    run_dir: Annotated[
        Path, typer.Argument(help="Run directory (with reach.json).", show_default=False)
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output directory.", show_default=False)
    ],
    force: ForceOpt = False,
) -> None:
    """The reach and A′ yields as a HEPData submission, the likelihoods as pyhf and HS3 JSON.

    Writes under OUTPUT: hepdata/ and submission.tar.gz (tables of the reach, expected with its
    ±1σ/±2σ bands and observed, and of the A′ yield per POT per ε²; checked with
    hepdata-validator) and likelihoods/ (each mass point's pyhf workspace and the same as HS3
    JSON, which RooFit's RooJSONFactoryWSTool imports). Needs the `export` extra.
    """
    from gammastar.formats.export import export_run

    res = export_run(run_dir, output, force=force)
    typer.echo(
        f"export: HEPData submission {res.path} ({', '.join(res.tables)}; archive {res.archive}, "
        f"valid); {len(res.hs3)} likelihoods as pyhf and HS3 JSON in "
        f"{res.path.parent / 'likelihoods'}"
    )
    for note in res.notes:
        typer.echo(f"export: note: {note}")
