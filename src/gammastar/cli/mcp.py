"""`gammastar reach-mcp`: millicharged-particle detection reach in (m_χ, Q)."""

from __future__ import annotations

from pathlib import Path

from gammastar.cli._darksector_reach import reach_command
from gammastar.config import AnalysisConfig


def _run(cfg: AnalysisConfig, force: bool) -> Path:
    from gammastar.darksector.mcp import run_mcp_reach

    return run_mcp_reach(cfg, force=force)


reach_mcp_command = reach_command(
    "reach-mcp",
    doc="""Expected (±1σ, ±2σ) lower edge Q_low(m_χ) of a scintillator detector (config `mcp`).

    Writes reach_mcp.json and figures/reach_mcp.png in the run directory (docs/howto/dark-sectors.md).
    """,
    section="mcp",
    hint="see analysis/mcp_submet_like.yaml",
    run=_run,
    axis="mass",
    edge="q_low",
)
