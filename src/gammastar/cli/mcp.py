"""`gammastar reach-mcp`: millicharged-particle detection reach in (m_χ, Q) (issue 16)."""

from __future__ import annotations

from gammastar.cli import ConfigArg, ForceOpt, OutputOpt, WaitOpt, app


@app.command("reach-mcp")
def reach_mcp_command(
    config: ConfigArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Expected (±1σ, ±2σ) lower edge Q_low(m_χ) of a scintillator detector (config `mcp`).

    Writes reach_mcp.json and figures/reach_mcp.png in the run directory (docs/darksector.md).
    """
    from gammastar.cli._darksector_reach import run_reach_command
    from gammastar.reach_mcp import run_mcp_reach

    run_reach_command("reach-mcp", config, output, force=force, wait=wait, section="mcp",
                      hint="see analysis/mcp_submet_like.yaml", run=run_mcp_reach, axis="mass",
                      edge="q_low")  # fmt: skip
