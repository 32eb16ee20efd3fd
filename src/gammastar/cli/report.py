"""`gammastar report`: the run report (report.html) of a run directory."""

from __future__ import annotations

import typer

from gammastar.cli.options import ConfigArg, OutputOpt, load


def report_command(config: ConfigArg, output: OutputOpt = None) -> None:
    """Write report.html in the run directory: a summary of the results and checks, the reach
    plot, the numbers and figures of every stage, provenance last.

    Stages whose artifacts are missing are shown as "not run"; the page is one file, its
    figures inside it (open it with any browser, offline, mailed or moved).
    """
    cfg = load(config, output)  # a bad config: refused before the report's imports
    from gammastar.report import build_report, report_line

    typer.echo(f"report: {report_line(build_report(cfg, force=True).path)}")
