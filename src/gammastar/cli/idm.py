"""`gammastar reach-idm`: inelastic dark matter reach in (m₁, y) (issue 16)."""

from __future__ import annotations

import typer

from gammastar.cli import ConfigArg, ForceOpt, OutputOpt, WaitOpt, app, load


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
    from gammastar.errors import ConfigError
    from gammastar.reach_idm import run_idm_reach

    cfg = load(config, output)
    if cfg.idm is None:
        raise ConfigError(f"{config}: no 'idm' section (docs/darksector.md)")
    load(config, output, lock=True, wait=wait)
    path = run_idm_reach(cfg, force=force)
    import json

    doc = json.loads(path.read_text())
    n = sum(v is not None for v in doc["y_low"]["0"])
    typer.echo(f"reach-idm: {n}/{len(doc['m1'])} masses with a reach; wrote {path}")
