"""`gammastar reach-mcp`: millicharged-particle detection reach in (m_χ, Q) (issue 16)."""

from __future__ import annotations

import typer

from gammastar.cli import ConfigArg, ForceOpt, OutputOpt, WaitOpt, app, load


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
    from gammastar.errors import ConfigError
    from gammastar.reach_mcp import run_mcp_reach

    cfg = load(config, output)
    if cfg.mcp is None:
        raise ConfigError(f"{config}: no 'mcp' section (see analysis/mcp_submet_like.yaml)")
    load(config, output, lock=True, wait=wait)
    path = run_mcp_reach(cfg, force=force)
    import json

    doc = json.loads(path.read_text())
    n = sum(q is not None for q in doc["q_low"]["0"])
    typer.echo(f"reach-mcp: {n}/{len(doc['mass'])} masses with a reach; wrote {path}")
