"""Paper Fig. 3: data-driven χχ̄ yield per POT per Q² vs m_χ, with bremsstrahlung, π0, J/ψ.

Runs ``generate`` (mock configs), ``select`` and ``yields`` (reused when up to date), then
draws ``yields.json`` with :func:`gammastar.yields.plots.plot_mcp`.

Usage: ``python analysis/figures/fig3_mcp_yield.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _common as c


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig3.png`` (and ``.pdf``); return the PNG path."""
    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 3, force=args.force)
    c.ensure(cfg, ("generate", "select", "yields"))
    from gammastar.core.artifacts import read_json
    from gammastar.yields.plots import plot_mcp

    doc = read_json(cfg.output_dir / "yields.json", what="yields")
    for p in paths:
        plot_mcp(doc, p, force=True)
    return c.done(paths[0], t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
