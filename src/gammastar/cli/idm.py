"""`gammastar reach-idm`: inelastic dark matter reach in (m₁, y)."""

from __future__ import annotations

from pathlib import Path

from gammastar.cli._darksector_reach import reach_command
from gammastar.config import AnalysisConfig


def _run(cfg: AnalysisConfig, force: bool) -> Path:
    from gammastar.darksector.idm import run_idm_reach

    return run_idm_reach(cfg, force=force)


reach_idm_command = reach_command(
    "reach-idm",
    doc="""Expected (±1σ, ±2σ) excluded y = ε²α_D(m₁/m_A′)⁴ band per m₁ (config `idm`).

    Writes reach_idm.json and figures/reach_idm.png in the run directory (docs/howto/dark-sectors.md).
    """,
    section="idm",
    hint="docs/howto/dark-sectors.md",
    run=_run,
    axis="m1",
    edge="y_low",
)
