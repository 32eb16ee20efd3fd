"""The shared body of the dark-sector reach commands (`reach-idm`, `reach-mcp`): check the
config section, lock the run directory, run, and print one summary line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from gammastar.cli import load


def run_reach_command(
    command: str,
    config: Path,
    output: Path | None,
    *,
    force: bool,
    wait: bool,
    section: str,
    hint: str,
    run: Callable[..., Path],
    axis: str,
    edge: str,
) -> None:
    """Run the reach ``run(cfg, force=force)`` of config section ``section`` and echo
    ``<command>: k/N masses with a reach; wrote <path>`` (k: masses whose median ``edge`` is
    set, N: the length of the ``axis`` list in the written JSON).

    Raises:
        ConfigError: the config has no ``section`` (``hint`` says where it is described).
    """
    from gammastar.errors import ConfigError

    cfg = load(config, output)
    if getattr(cfg, section) is None:
        raise ConfigError(f"{config}: no '{section}' section ({hint})")
    load(config, output, lock=True, wait=wait)
    path = run(cfg, force=force)
    doc: dict[str, Any] = json.loads(path.read_text())
    n = sum(v is not None for v in doc[edge]["0"])
    typer.echo(f"{command}: {n}/{len(doc[axis])} masses with a reach; wrote {path}")
