"""The dark-sector reach commands (`reach-idm`, `reach-mcp`) are one command shape:
:func:`reach_command` registers one (check the config section, lock the run directory, run,
print one summary line)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from gammastar.cli.options import ConfigArg, ForceOpt, OutputOpt, WaitOpt, load


def reach_command(
    name: str, *, doc: str, section: str, hint: str, run: Callable[..., Path], axis: str, edge: str
) -> Any:
    """Register the command ``name`` (help text ``doc``) that runs the reach ``run(cfg,
    force=force)`` (returning the JSON path; it imports the reach module when called, so that
    ``--help`` stays fast) on a config with a ``section`` section, and
    echoes ``<name>: k/N masses with a reach; wrote <path>`` (k: masses whose median ``edge``
    is set, N: the length of the ``axis`` list in that JSON).

    Returns:
        The command function. A config without ``section`` is a ConfigError (``hint`` says
        where the section is described).
    """

    def command(
        config: ConfigArg,
        output: OutputOpt = None,
        force: ForceOpt = False,
        wait: WaitOpt = False,
    ) -> None:
        from gammastar.errors import ConfigError

        cfg = load(config, output)
        if getattr(cfg, section) is None:
            raise ConfigError(f"{config}: no '{section}' section ({hint})")
        load(config, output, lock=True, wait=wait)
        path = run(cfg, force=force)
        doc_json = json.loads(path.read_text())
        n = sum(v is not None for v in doc_json[edge]["0"])
        typer.echo(f"{name}: {n}/{len(doc_json[axis])} masses with a reach; wrote {path}")

    command.__doc__ = doc
    command.__name__ = command.__qualname__ = f"{name.replace('-', '_')}_command"
    return command
