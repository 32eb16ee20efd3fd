"""`gammastar reach-idm`: inelastic dark matter reach in (m₁, y) (issue 16)."""

from __future__ import annotations

from gammastar.cli import ConfigArg, ForceOpt, OutputOpt, WaitOpt, app


@app.command("reach-idm")
def reach_idm_command(
    config: ConfigArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Expected (±1σ, ±2σ) excluded y = ε²α_D(m₁/m_A′)⁴ band per m₁ (config `idm`).

    Writes reach_idm.json and figures/reach_idm.png in the run directory (docs/darksector.md).
    """
    from gammastar.cli._darksector_reach import run_reach_command
    from gammastar.reach_idm import run_idm_reach

    run_reach_command("reach-idm", config, output, force=force, wait=wait, section="idm",
                      hint="docs/darksector.md", run=run_idm_reach, axis="m1", edge="y_low")  # fmt: skip
