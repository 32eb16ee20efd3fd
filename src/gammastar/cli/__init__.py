"""The ``gammastar`` command line: one sub-command per stage, one for the whole chain.

Each stage registers its command in its own module (``gammastar.cli.<stage>``) on the
shared :data:`app`; heavy imports happen inside the command so that ``--help`` is fast.
User errors (:class:`~gammastar.errors.GammastarError`) print one line and exit with 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gammastar.errors import ChunkError, GammastarError

if TYPE_CHECKING:
    from gammastar.config import AnalysisConfig

app = typer.Typer(
    name="gammastar",
    help="Data-driven dark-photon and millicharged-particle predictions from dilepton data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Shared option types, so that every command spells them the same way.
ConfigArg = Annotated[Path, typer.Argument(help="Analysis YAML file.", show_default=False)]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", help="Run directory (default: the config's `output`).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default: the config's).")]


def load(config: Path, output: Path | None = None) -> AnalysisConfig:
    """Load a config for a command, applying ``--output`` if given."""
    from gammastar.config import load_config

    cfg = load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(output.resolve())})
    return cfg


_ORDER = ("run", "generate", "select", "yields", "flow", "reach", "report")
"""Command modules in workflow order (``--help`` lists commands in registration order)."""


def _register() -> None:
    # Import for side effects: each module adds its commands to `app`.
    import importlib
    import pkgutil

    found = [m.name for m in pkgutil.iter_modules(__path__)]
    for name in sorted(found, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n)):
        importlib.import_module(f"{__name__}.{name}")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from gammastar import __version__

        typer.echo(__version__)
        raise typer.Exit()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gammastar`` script."""
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except GammastarError as err:
        typer.echo(f"gammastar: error: {err}", err=True)
        return 2
    except ChunkError as err:
        if os.environ.get("GAMMASTAR_DEBUG"):
            raise
        typer.echo(f"gammastar: error: {err} (GAMMASTAR_DEBUG=1 shows the traceback)", err=True)
        return 1
    except KeyboardInterrupt:
        typer.echo("gammastar: interrupted", err=True)
        return 130
    except SystemExit as exc:  # typer.Exit
        return int(exc.code or 0)
    except Exception as exc:
        # Usage errors of the (possibly vendored) click inside typer: show them like click does.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return int(exc.exit_code)
        if type(exc).__name__ in {"Exit", "Abort"}:
            return int(getattr(exc, "exit_code", 1))
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
