"""The run report (``gammastar report``): one self-contained HTML page per run directory.

:func:`build_report` reads whatever artifacts a run directory holds (``mock.root``,
``select.json``, ``histograms.root``, ``yields.json``, ``flow/``, ``validation.json``,
``acceptance.npz``, ``reach.json``) and writes ``<run>/report.html``, in this order:

1. a summary: the expected excluded mass and ε range, the ε band and the A′ yield per POT per
   ε² at 3 masses (:func:`summary_masses`), the validation verdicts (the flow's KL, its closure
   in the detector, lepton universality, the yield's flags, what the limits rest on beyond the
   measurement), every warning of the page, and the artifacts the run lacks for it;
2. the reach figure (``figures/reach.png``), beside the summary's text; the summary's table
   at 3 masses and its warnings under both;
3. one section per stage with the numbers behind it, and every other PNG under
   ``<run>/figures/`` and ``<run>/flow/`` placed in the matching section;
4. the run's provenance: config text and hash, package versions, stages, seeds, files.

A stage whose artifacts are missing is shown as "not run"; an unreadable artifact is shown as a
warning in its section and in the summary. Building the report never fails on a partial run.

The page is one file that needs nothing beside it: inline CSS, one small inline script, and
the figures embedded as base64 ``data:`` URIs (mailed or moved, it shows them all). The script
fills ``<pre id="gammastar-selfcheck">`` on ``window.load`` with ``{"images": N, "loaded": K,
"errors": [...], "broken": [...], "layout": {...}}`` (the layout: every table measured against
its column and the figures at the window's width), which the browser test
(``tests/test_report.py``) reads from a headless Chromium.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gammastar._version import __version__
from gammastar.config import AnalysisConfig, load_config
from gammastar.core.artifacts import atomic_path
from gammastar.core.results import StageResult
from gammastar.errors import GammastarError
from gammastar.report.data_sections import (
    _mock_section,
    _selection_section,
    _spectra_section,
    _yields_section,
)
from gammastar.report.flow_sections import (
    _flow_section,
    _validation_section,
)
from gammastar.report.layout import (
    REPORT_NAME,
    SECTIONS,
    TOP_FIGURE,
)
from gammastar.report.markup import (
    CSP,
    CSS,
    SELFCHECK_JS,
    Raw,
    esc,
    not_run,
    warning,
)
from gammastar.report.provenance import (
    _artifact_list,
    _provenance,
    _size,
    _stage_table,
)
from gammastar.report.reach_sections import (
    _acceptance_section,
    _compare_with_table,
    _dark_section,
    _reach_section,
)
from gammastar.report.reading import (
    Section,
    _figure_html,
    _section_of,
    find_figures,
)
from gammastar.report.summary import _summary

__all__ = ["SECTION_BUILDERS", "ReportResult", "build_report", "render", "report_line"]


SECTION_BUILDERS: dict[str, Callable[..., None]] = {
    "selection": _selection_section,
    "spectra": _spectra_section,
    "yields": _yields_section,
    "flow": _flow_section,
    "validation": _validation_section,
    "acceptance": _acceptance_section,
    "reach": _reach_section,
    "darksector": _dark_section,
}


def render(config: AnalysisConfig, run: Path) -> str:
    """The report page for run directory ``run`` as an HTML string."""
    sections = {ident: Section(ident, title) for ident, title in SECTIONS}
    for ident, s in sections.items():
        try:
            if ident == "mock":
                _mock_section(config, run, s)
            elif ident in SECTION_BUILDERS:
                SECTION_BUILDERS[ident](run, s)
            if ident == "reach":
                _compare_with_table(config, s)
        except Exception as err:  # noqa: BLE001 - a report shows, never fails
            s.warn(f"could not build this section ({type(err).__name__}: {err})")
    top_figure = None
    for fig in find_figures(run):
        if fig.rel == TOP_FIGURE:
            top_figure = fig
        else:
            sections[_section_of(fig)].figures.append(fig)
    if top_figure is not None and sections["reach"].ran:
        sections["reach"].add(
            f'<p class="note">The exclusion figure ({esc(TOP_FIGURE)}) is at the top of the '
            'page, under the <a href="#summary">Summary</a>.</p>'
        )
    try:
        summary = _summary(config, run, sections)
        beside, under = "".join(summary.parts), "".join(summary.after)
    except Exception as err:  # noqa: BLE001 - a report shows, never fails
        beside = warning(f"could not build the summary ({type(err).__name__}: {err})")
        under = ""
    figure = (
        _figure_html(top_figure)
        if top_figure is not None
        else not_run(f"{TOP_FIGURE} not found (written by gammastar reach)")
    )
    # the numbers, then the figure: side by side on a wide screen, one under the other else
    summary_html = (
        f'<div class="summary-grid"><div>{beside}</div>'
        f'<div class="figures top">{figure}</div></div>{under}'
    )

    try:
        top, seeds = _provenance(config, run)
    except Exception as err:  # noqa: BLE001
        top, seeds = warning(f"run information failed ({type(err).__name__}: {err})"), Raw("")
    stages = _stage_table(run)

    nav, body = ['<li><a href="#summary">Summary</a></li>'], []
    for ident, s in sections.items():
        if ident in ("other", "darksector") and not s.figures and not s.ran:
            continue
        if ident != "other" and not s.ran and s.figures:
            s.ran = True  # figures without the numbers: still show them
        cls = "warn" if s.warnings else ("" if s.ran or ident == "other" else "notrun")
        label = s.title + ("" if s.ran or ident == "other" else " (not run)")
        nav.append(f'<li><a class="{cls}" href="#{ident}">{esc(label)}</a></li>')
        figs = "".join(_figure_html(f) for f in s.figures)
        body.append(
            f'<section id="{ident}"><h2>{esc(s.title)}</h2>{"".join(s.parts)}'
            + (f'<div class="figures">{figs}</div>' if figs else "")
            + "</section>"
        )

    title = f"gammastar run report: {getattr(config, 'name', 'analysis')}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f"<script>{SELFCHECK_JS}</script></head><body><main>"
        f"<h1>{esc(title)}</h1>"
        f'<nav><ul>{"".join(nav)}<li><a href="#run">Run information</a></li></ul></nav>'
        f'<section id="summary"><h2>Summary</h2>{summary_html}</section>'
        + "".join(body)
        + f'<section id="run"><h2>Run information</h2>{top}'
        + (f"<h3>Pipeline stages</h3>{stages}" if stages is not None else "")
        + f"<h3>Seeds and artifact metadata</h3>{seeds}"
        f"<h3>Files in the run directory</h3>{_artifact_list(run)}</section>"
        + f"<footer>Written by gammastar {esc(__version__)}. Browser self-check: "
        '<pre id="gammastar-selfcheck">pending (needs JavaScript)</pre></footer>'
        "</main></body></html>\n"
    )


@dataclass(frozen=True)
class ReportResult(StageResult):
    """What :func:`build_report` wrote: ``report.html`` (``path``)."""


def report_line(path: Path) -> str:
    """``<path> (<size>)``: how the commands name a report they wrote, its size with it (the
    figures are inside the page)."""
    return f"{path} ({_size(path.stat().st_size)})"


def build_report(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = True,
) -> ReportResult:
    """Write ``<run>/report.html`` for the run directory of ``config``.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` or the path of an analysis YAML.
        output: run directory (default: the config's ``output``).
        force: overwrite an existing report (the default: a report is a view of the run).

    Returns:
        A :class:`ReportResult` naming ``report.html``.

    Raises:
        GammastarError: the run directory does not exist; OutputExistsError: the report
            exists and ``force`` is false.
    """

    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(output).resolve())})
    run = cfg.output_dir
    if not run.is_dir():
        raise GammastarError(f"{run}: run directory not found; run `gammastar run` first")
    page = render(cfg, run)
    path = run / REPORT_NAME
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return ReportResult(path)
