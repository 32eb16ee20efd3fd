"""Reading a run directory for the report: the artifacts (never failing on a missing or
unreadable one), the figures and the section each belongs to.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gammastar.core import rundir
from gammastar.errors import GammastarError
from gammastar.report.layout import (
    FIGURE_RULES,
    PNG_SIGNATURE,
)
from gammastar.report.markup import (
    Raw,
    _is_number,
    esc,
    fmt,
    not_run,
    warning,
)

__all__ = ["Figure", "Section", "find_figures"]


# =========================================================================== reading
@dataclass
class Section:
    """Content of one report section."""

    ident: str
    title: str
    parts: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    ran: bool = False
    warning_texts: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> int:
        """How many warnings the section shows."""
        return len(self.warning_texts)

    def add(self, html_text: str) -> None:
        self.parts.append(html_text)

    def warn(self, text: str) -> None:
        self.warning_texts.append(text)
        self.parts.append(warning(text))


@dataclass(frozen=True)
class Figure:
    """A PNG in the run directory."""

    path: Path
    rel: str  # relative to the run directory, with '/' separators

    @property
    def caption(self) -> str:
        return _caption(self.rel)


def _read_json(run: Path, name: str, section: Section) -> dict[str, Any] | None:
    """JSON artifact ``name`` of the run directory, read and checked by
    :meth:`gammastar.core.rundir.RunDir.read_optional`; ``None`` when absent, and when it
    cannot be read: then its one-line reason (naming the file) is a warning in ``section``.
    A document of an unknown schema version or that breaks its schema is shown as far as it
    goes, with that error as a warning (a report shows, never fails)."""
    try:
        return rundir.RunDir(run).read_optional(name, invalid=lambda err: section.warn(str(err)))
    except GammastarError as err:
        section.warn(str(err))
        return None


def _get(d: Any, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else []


def _num(v: Any) -> float | None:
    return float(v) if _is_number(v) else None


def _per_flavour(d: Any) -> str:
    """``{flavour: N_POT}`` (``meta.n_pot_by_flavour``, a prescaled trigger's N_POT / k) as
    ``mu 1.2e11, e 4.0e8``; ``n/a`` without it."""
    if not isinstance(d, dict) or not d:
        return "n/a"
    return ", ".join(f"{k} {fmt(_num(v), '.4e')}" for k, v in d.items())


# =========================================================================== figures
def _caption(rel: str) -> str:
    stem = Path(rel).stem
    known = {
        "mock_mass": "Mock dimuon mass spectra: OS by source channel, ++ and −− pairs",
        "mock_pt": "Mock pair-pT spectra",
        "yields_aprime": "A′ yield per POT per ε² (paper Fig. 2 analogue)",
        "yields_mcp": "χχ̄ yield per POT per Q² (paper Fig. 3 analogue)",
        "yields_standard_recipe": "Data-driven A′ yield beside the standard recipe (meson "
        "decays, vector-meson mixing, bremsstrahlung) and their ratio against mass",
        "flow_loss": "Flow training and validation loss per epoch",
        "flow_kl": "k-NN KL divergence of the flow vs data, with data-vs-data bands (Fig. 4)",
        "flow_kinematics": "qT and E of the flow vs data in mass windows (Fig. 5 analogue)",
        "acceptance": "LLP detector acceptance",
        "reach": "Expected CLs reach in (m_A′, ε)",
        "reach_flow_closure": "The flow's A′ acceptance over its own pairs' inside the data's "
        "fiducial region, at the expected ε boundaries (reach.json flow_closure)",
        "reach_mcp": "Millicharged-particle detection reach: expected Q_low(m_χ) (reach_mcp.json)",
        "reach_idm": "iDM / i2DM reach: expected excluded y = ε²α_D(m₁/m_A′)⁴ per m₁ (reach_idm.json)",
    }
    if rel.startswith("flow/") and stem == "loss":
        return "Flow training and validation loss per epoch (flow/loss.png)"
    text = known.get(stem, stem.replace("_", " "))
    return f"{text} ({rel})"


def _section_of(fig: Figure) -> str:
    stem = Path(fig.rel).stem.lower()
    for ident, prefixes in FIGURE_RULES:
        if any(stem == p or stem.startswith(p + "_") for p in prefixes):
            return ident
    if fig.rel.startswith("flow/"):
        return "flow"
    return "other"


def find_figures(run: Path) -> list[Figure]:
    """Every ``*.png`` in ``<run>/figures/`` (recursively) and ``<run>/flow/`` (top level)."""
    found: list[Figure] = []
    figdir = run / rundir.FIGURES_DIR
    if figdir.is_dir():
        found += [Figure(p, p.relative_to(run).as_posix()) for p in sorted(figdir.rglob("*.png"))]
    flowdir = run / rundir.FLOW_DIR
    if flowdir.is_dir():
        found += [Figure(p, p.relative_to(run).as_posix()) for p in sorted(flowdir.glob("*.png"))]
    return [f for f in found if f.path.is_file()]


def _figure_html(fig: Figure) -> Raw:
    """``fig`` as a ``<figure>`` whose image is embedded as a base64 ``data:`` URI (the page
    needs no file beside it); a file that is not a PNG is a warning in its place."""
    try:
        data = fig.path.read_bytes()
    except OSError as err:
        body = str(warning(f"{fig.rel}: cannot read ({err.strerror})"))
    else:
        if data[:8] != PNG_SIGNATURE:
            body = str(warning(f"{fig.rel} is not a valid PNG file"))
        else:
            src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            body = f'<img src="{src}" alt="{esc(fig.caption)}" loading="eager">'
    return Raw(f"<figure>{body}<figcaption>{esc(fig.caption)}</figcaption></figure>")


# =========================================================================== sections
def _section_json(run: Path, name: str, s: Section) -> dict[str, Any] | None:
    """The JSON artifact behind a section: "not run" when absent, a warning when unusable."""
    if not (run / name).exists():
        s.add(not_run(f"{name} not found"))
        return None
    s.ran = True
    return _read_json(run, name, s)


def _pick(n: int, k: int) -> list[int]:
    """About ``k`` indices spread evenly over ``range(n)`` (all when n ≤ k)."""
    if n <= k:
        return list(range(n))
    step = (n - 1) / (k - 1)
    return sorted({round(i * step) for i in range(k)})
